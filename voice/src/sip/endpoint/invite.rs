//! INVITE server side of the endpoint: new calls (with or without an SDP
//! offer), CANCEL, re-INVITE and UPDATE (hold, unhold, session refresh),
//! the answer's 2xx retransmissions and their ACK.

use std::net::SocketAddr;
use std::time::Instant;

use rand::Rng;

use super::{
    ALLOW, Call, CallHandle, CallInfo, CallState, CommandError, EndReason, Endpoint, Event,
    OkRetransmit, SUPPORTED, ServerEntry, ServerTx, TimerRef, Transport,
};
use crate::sdp::{self, Direction, NegotiatedMedia, SessionDescription};
use crate::sip::message::{NameAddr, Request, reason_phrase};
use crate::sip::transaction::{ServerInvite, ServerInviteState, TxKey, TxOutput};

impl Endpoint {
    /// Opens the server INVITE transaction for `req` and answers 100 Trying
    /// at once, so the caller stops retransmitting while we decide.
    fn start_invite_tx(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        key: &TxKey,
        req: &Request,
    ) {
        let mut tx = ServerInvite::new(transport.reliable(), self.cfg.timers);
        let mut out = Vec::new();
        tx.send_response(
            now,
            &self.with_common(req.response(100, "Trying", None)),
            &mut out,
        );
        self.server.insert(
            key.clone(),
            ServerEntry {
                tx: ServerTx::Invite(tx),
                to: from,
                transport,
            },
        );
        for o in out {
            if let TxOutput::Send(b) = o {
                self.send(transport, from, b);
            }
        }
    }

    pub(super) fn on_invite(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        key: TxKey,
        req: Request,
    ) {
        self.start_invite_tx(now, transport, from, &key, &req);
        let tag = self.random_token();
        let reject = |ep: &mut Self, status: u16, extra: Option<(&str, String)>| {
            let mut resp = ep.with_common(req.response(status, reason_phrase(status), Some(&tag)));
            if let Some((n, v)) = extra {
                resp.headers.push(n, v);
            }
            ep.invite_tx_respond(now, &key, &resp);
        };
        if self.cfg.authenticate_invites
            && let Err(resp) = self.authenticate(now, "INVITE", &req)
        {
            self.invite_tx_respond(now, &key, &resp);
            return;
        }
        // The body must be SDP we can read; an empty body means "you offer".
        let offer = if req.body.is_empty() {
            None
        } else {
            let ct = req.headers.get("Content-Type").unwrap_or("");
            if !ct.to_ascii_lowercase().starts_with("application/sdp") {
                reject(self, 415, Some(("Accept", "application/sdp".into())));
                return;
            }
            match SessionDescription::parse(&req.body) {
                Ok(sd) => Some(sd),
                Err(_) => {
                    reject(self, 400, None);
                    return;
                }
            }
        };
        // Refuse now what we could never answer.
        if let Some(o) = &offer
            && sdp::answer(o, self.cfg.local_addr, 0, 0, &self.cfg.codecs).is_err()
        {
            reject(
                self,
                488,
                Some((
                    "Warning",
                    "304 switchboard \"Media type not available\"".into(),
                )),
            );
            return;
        }
        let (Some(from_na), Some(to_na), Some(cseq)) = (req.from(), req.to(), req.cseq()) else {
            reject(self, 400, None);
            return;
        };
        let Some(remote_tag) = from_na.tag().map(str::to_owned) else {
            reject(self, 400, None);
            return;
        };
        let remote_target = req
            .headers
            .values("Contact")
            .first()
            .and_then(|c| NameAddr::parse(c))
            .map_or_else(|| from_na.uri.to_string(), |n| n.uri.to_string());
        let handle = CallHandle(self.next_call);
        self.next_call += 1;
        let sip_call_id = req.call_id().unwrap_or_default().to_owned();
        let local_na = format!("{};tag={tag}", req.headers.get("To").unwrap_or_default());
        let session_expires = req.headers.get("Session-Expires").map(|v| {
            let secs = v.split(';').next().unwrap_or("1800").trim().to_owned();
            format!("{secs};refresher=uac")
        });
        let mut invite = req.clone();
        invite.body.clear();
        let call = Call {
            state: CallState::Offered,
            invite,
            sip_call_id: sip_call_id.clone(),
            invite_key: key.clone(),
            peer: from,
            transport,
            local_tag: tag.clone(),
            local_na,
            remote_na: req.headers.get("From").unwrap_or_default().to_owned(),
            remote_tag,
            remote_target,
            route_set: req.headers.values("Record-Route"),
            remote_cseq: cseq.seq,
            local_cseq: 0,
            local_rtp: None,
            sdp_id: self.rng.random::<u32>().into(),
            sdp_version: 1,
            remote_offer: offer.clone(),
            our_offer: None,
            media: None,
            ok_retx: None,
            session_expires,
            reinvite_branch: None,
            held_locally: false,
        };
        self.calls.insert(handle, call);
        self.dialogs.insert((sip_call_id.clone(), tag), handle);
        self.by_invite.insert(key, handle);
        self.events.push_back(Event::CallOffered {
            call: handle,
            info: Box::new(CallInfo {
                sip_call_id,
                from: from_na.uri,
                from_display: from_na.display,
                to: to_na.uri,
                request_uri: req.uri.clone(),
                remote: from,
                has_offer: offer.is_some(),
            }),
        });
    }

    pub(super) fn on_cancel(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        key: &TxKey,
        req: &Request,
    ) {
        let invite_key = TxKey {
            method: "INVITE".into(),
            ..key.clone()
        };
        let Some(&handle) = self.by_invite.get(&invite_key) else {
            let resp = self.with_common(req.response(481, reason_phrase(481), None));
            self.server_tx_reply(now, transport, from, key, req, &resp);
            return;
        };
        let resp = self.with_common(req.response(200, "OK", None));
        self.server_tx_reply(now, transport, from, key, req, &resp);
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        if call.state != CallState::Offered {
            return; // Too late: the 200 crossed the CANCEL; the caller will BYE.
        }
        let tag = call.local_tag.clone();
        let resp = self.with_common(call.invite.response(487, reason_phrase(487), Some(&tag)));
        self.invite_tx_respond(now, &invite_key, &resp);
        self.end_call(handle, EndReason::Cancelled);
    }

    /// Negotiates a new offer inside a dialog. Returns the answer body.
    pub(super) fn renegotiate(
        &mut self,
        handle: CallHandle,
        offer_body: &[u8],
    ) -> Result<Vec<u8>, u16> {
        let codecs = self.cfg.codecs.clone();
        let Some(call) = self.calls.get_mut(&handle) else {
            return Err(481);
        };
        let offer = SessionDescription::parse(offer_body).map_err(|_| 400u16)?;
        let local = call.local_rtp.unwrap_or(self.cfg.local_addr);
        call.sdp_version += 1;
        let (mut answer, media) =
            sdp::answer(&offer, local, call.sdp_id, call.sdp_version, &codecs)
                .map_err(|_| 488u16)?;
        let mut media = media;
        if call.held_locally && media.direction.sends() {
            media.direction = match media.direction {
                Direction::SendRecv => Direction::SendOnly,
                d => d,
            };
            if let Some(m) = answer.media.iter_mut().find(|m| m.port != 0) {
                for a in &mut m.attributes {
                    if a.0 == "sendrecv" {
                        a.0 = "sendonly".into();
                    }
                }
            }
        }
        let held = media.is_held();
        call.media = Some(media);
        self.events.push_back(Event::MediaUpdated {
            call: handle,
            media,
            held,
        });
        Ok(answer.to_bytes())
    }

    pub(super) fn on_reinvite(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        key: TxKey,
        req: Request,
    ) {
        self.start_invite_tx(now, transport, from, &key, &req);
        let fail = |ep: &mut Self, status: u16| {
            let resp = ep.with_common(req.response(status, reason_phrase(status), None));
            ep.invite_tx_respond(now, &key, &resp);
        };
        let Some(handle) = self.find_dialog(&req) else {
            fail(self, 481);
            return;
        };
        let busy = self.calls.get(&handle).is_some_and(|c| {
            c.reinvite_branch.is_some() || c.ok_retx.is_some() || c.state == CallState::Offered
        });
        if busy {
            fail(self, 491);
            return;
        }
        if !self.check_cseq(handle, &req) {
            fail(self, 500);
            return;
        }
        let body = if req.body.is_empty() {
            // Offerless re-INVITE: offer our current media in the 200.
            let Some(call) = self.calls.get_mut(&handle) else {
                return;
            };
            call.sdp_version += 1;
            let dir = if call.held_locally {
                Direction::SendOnly
            } else {
                Direction::SendRecv
            };
            let o = sdp::offer(
                call.local_rtp.unwrap_or(self.cfg.local_addr),
                call.sdp_id,
                call.sdp_version,
                dir,
                &self.cfg.codecs,
            );
            let b = o.to_bytes();
            call.our_offer = Some(o);
            b
        } else {
            match self.renegotiate(handle, &req.body) {
                Ok(b) => b,
                Err(status) => {
                    fail(self, status);
                    return;
                }
            }
        };
        if let Some(se) = req.headers.get("Session-Expires")
            && let Some(c) = self.calls.get_mut(&handle)
        {
            c.session_expires = Some(format!(
                "{};refresher=uac",
                se.split(';').next().unwrap_or("1800").trim()
            ));
        }
        self.send_2xx(now, handle, &req, &key, body);
    }

    pub(super) fn on_update(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        key: &TxKey,
        req: &Request,
    ) {
        let Some(handle) = self.dialog_request(now, transport, from, key, req) else {
            return;
        };
        let mut resp = self.with_common(req.response(200, "OK", None));
        if !req.body.is_empty() {
            match self.renegotiate(handle, &req.body) {
                Ok(b) => {
                    resp.headers.push("Content-Type", "application/sdp");
                    resp.body = b;
                }
                Err(status) => {
                    let resp = self.with_common(req.response(status, reason_phrase(status), None));
                    self.server_tx_reply(now, transport, from, key, req, &resp);
                    return;
                }
            }
        }
        if let Some(se) = req.headers.get("Session-Expires") {
            resp.headers.push(
                "Session-Expires",
                format!(
                    "{};refresher=uac",
                    se.split(';').next().unwrap_or("1800").trim()
                ),
            );
            resp.headers.push("Require", "timer");
        }
        if let Some(c) = self.calls.get(&handle) {
            resp.headers.push("Contact", self.contact(c.transport));
        }
        self.server_tx_reply(now, transport, from, key, req, &resp);
    }

    /// Sends a 2xx to an INVITE (initial or re-INVITE) and starts its retransmission.
    pub(super) fn send_2xx(
        &mut self,
        now: Instant,
        handle: CallHandle,
        req: &Request,
        key: &TxKey,
        body: Vec<u8>,
    ) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let mut resp = req.response(200, "OK", Some(&call.local_tag));
        resp.headers.push("Contact", self.contact(call.transport));
        for rr in &call.route_set {
            resp.headers.push("Record-Route", rr.clone());
        }
        resp.headers.push("Allow", ALLOW);
        resp.headers.push("Supported", SUPPORTED);
        if let Some(se) = &call.session_expires {
            resp.headers.push("Session-Expires", se.clone());
            if req
                .headers
                .values("Supported")
                .iter()
                .any(|s| s.eq_ignore_ascii_case("timer"))
            {
                resp.headers.push("Require", "timer");
            }
        }
        if !body.is_empty() {
            resp.headers.push("Content-Type", "application/sdp");
        }
        resp.body = body;
        let resp = self.with_common(resp);
        let bytes = resp.to_bytes();
        let reliable = call.transport.reliable();
        let cseq = req.cseq().map_or(0, |c| c.seq);
        self.invite_tx_respond(now, key, &resp);
        let t1 = self.cfg.timers.t1;
        if let Some(call) = self.calls.get_mut(&handle) {
            call.ok_retx = Some(OkRetransmit {
                cseq,
                bytes,
                interval: t1,
                // Over TCP the 2xx is not retransmitted, but the ACK is still awaited.
                next: if reliable { now + t1 * 64 } else { now + t1 },
                give_up: now + t1 * 64,
            });
        }
        self.schedule(TimerRef::Call(handle));
    }

    pub(super) fn on_ack(&mut self, now: Instant, key: &TxKey, req: &Request) {
        // ACK for a non-2xx final response: belongs to the INVITE transaction.
        if let Some(entry) = self.server.get_mut(key)
            && let ServerTx::Invite(t) = &mut entry.tx
            && t.state() == ServerInviteState::Completed
        {
            t.on_ack(now);
            if entry.tx.terminated() {
                self.server.remove(key);
            } else {
                self.schedule(TimerRef::Server(key.clone()));
            }
            return;
        }
        // ACK for a 2xx: belongs to the dialog.
        let Some(handle) = self.find_dialog(req) else {
            return;
        };
        let seq = req.cseq().map_or(0, |c| c.seq);
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        if call.ok_retx.as_ref().is_none_or(|o| o.cseq != seq) {
            return; // Retransmitted ACK.
        }
        call.ok_retx = None;
        let mut update = None;
        if let Some(offer) = call.our_offer.take()
            && !req.body.is_empty()
        {
            match SessionDescription::parse(&req.body)
                .map_err(sdp::NegotiationError::from)
                .and_then(|a| sdp::accept_answer(&offer, &a))
            {
                Ok(m) => {
                    call.media = Some(m);
                    update = Some(m);
                }
                Err(e) => tracing::info!(%handle, error = %e, "unusable SDP answer in ACK"),
            }
        }
        let established = call.state == CallState::Answered;
        if established {
            call.state = CallState::Established;
        }
        let bad_answer = call.media.is_none();
        if let Some(media) = update {
            self.events.push_back(Event::MediaUpdated {
                call: handle,
                media,
                held: media.is_held(),
            });
        }
        if established {
            self.events
                .push_back(Event::CallEstablished { call: handle });
        }
        if bad_answer {
            // An offerless INVITE whose ACK carried no usable answer: RFC 3261
            // §13.3.1.4 says end the call with BYE.
            let _ = self.hangup(now, handle);
        }
    }

    /// Our SDP for the 183/200: an answer to the caller's offer, or our offer.
    pub(super) fn local_answer(
        &mut self,
        handle: CallHandle,
        local_rtp: SocketAddr,
    ) -> Result<(Vec<u8>, Option<NegotiatedMedia>), CommandError> {
        let codecs = self.cfg.codecs.clone();
        let call = self
            .calls
            .get_mut(&handle)
            .ok_or(CommandError::UnknownCall(handle))?;
        call.local_rtp = Some(local_rtp);
        if let Some(offer) = &call.remote_offer {
            let (answer, media) =
                sdp::answer(offer, local_rtp, call.sdp_id, call.sdp_version, &codecs)?;
            call.media = Some(media);
            Ok((answer.to_bytes(), Some(media)))
        } else {
            let o = sdp::offer(
                local_rtp,
                call.sdp_id,
                call.sdp_version,
                Direction::SendRecv,
                &codecs,
            );
            let b = o.to_bytes();
            call.our_offer = Some(o);
            Ok((b, None))
        }
    }
}
