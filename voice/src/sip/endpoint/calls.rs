//! Call control commands the application gives the endpoint: ring,
//! early media, answer, reject, hang up and hold.

use std::net::SocketAddr;
use std::time::Instant;

use super::{
    CallHandle, CallState, ClientEntry, ClientTx, CommandError, EndReason, Endpoint, Event,
    TimerRef,
};
use crate::sdp::{self, Direction, NegotiatedMedia, SessionDescription};
use crate::sip::message::{Method, Request, reason_phrase};
use crate::sip::transaction::{ClientInvite, TxKey, TxOutput};

impl Endpoint {
    pub(super) fn call_in(
        &self,
        handle: CallHandle,
        allowed: &[CallState],
        what: &'static str,
    ) -> Result<(), CommandError> {
        let call = self
            .calls
            .get(&handle)
            .ok_or(CommandError::UnknownCall(handle))?;
        if allowed.contains(&call.state) {
            Ok(())
        } else {
            Err(CommandError::WrongState(what, call.state.name()))
        }
    }

    pub(super) fn provisional_or_final(
        &mut self,
        now: Instant,
        handle: CallHandle,
        status: u16,
        body: Option<Vec<u8>>,
    ) {
        let Some(call) = self.calls.get(&handle) else {
            return;
        };
        let key = call.invite_key.clone();
        let tag = call.local_tag.clone();
        let contact = self.contact(call.transport);
        let Some(req) = self.invite_view(handle) else {
            return;
        };
        let mut resp = self.with_common(req.response(status, reason_phrase(status), Some(&tag)));
        if status < 300 {
            resp.headers.push("Contact", contact);
        }
        if let Some(b) = body {
            resp.headers.push("Content-Type", "application/sdp");
            resp.body = b;
        }
        self.invite_tx_respond(now, &key, &resp);
    }

    /// The call's INVITE, for building responses to it.
    pub(super) fn invite_view(&self, handle: CallHandle) -> Option<Request> {
        self.calls.get(&handle).map(|c| c.invite.clone())
    }

    /// Sends 180 Ringing.
    pub fn ring(&mut self, now: Instant, call: CallHandle) -> Result<(), CommandError> {
        self.call_in(call, &[CallState::Offered], "ring")?;
        self.provisional_or_final(now, call, 180, None);
        Ok(())
    }

    /// Sends 183 Session Progress with our answer (early media: prompts
    /// before answering). Returns the negotiated media.
    pub fn progress(
        &mut self,
        now: Instant,
        call: CallHandle,
        local_rtp: SocketAddr,
    ) -> Result<NegotiatedMedia, CommandError> {
        self.call_in(call, &[CallState::Offered], "progress")?;
        let (body, media) = self.local_answer(call, local_rtp)?;
        let media = media.ok_or(CommandError::WrongState(
            "progress without an offer",
            "offered",
        ))?;
        self.provisional_or_final(now, call, 183, Some(body));
        self.events.push_back(Event::MediaUpdated {
            call,
            media,
            held: media.is_held(),
        });
        Ok(media)
    }

    /// Answers with 200 OK. `local_rtp` is where this call's RTP socket
    /// listens. With an offer in the INVITE, [`Event::MediaUpdated`] follows
    /// at once; without one, it follows when the ACK brings the answer.
    pub fn answer(
        &mut self,
        now: Instant,
        call: CallHandle,
        local_rtp: SocketAddr,
    ) -> Result<(), CommandError> {
        self.call_in(call, &[CallState::Offered], "answer")?;
        let (body, media) = self.local_answer(call, local_rtp)?;
        let Some(req) = self.invite_view(call) else {
            return Err(CommandError::UnknownCall(call));
        };
        let key = self
            .calls
            .get(&call)
            .map(|c| c.invite_key.clone())
            .ok_or(CommandError::UnknownCall(call))?;
        if let Some(c) = self.calls.get_mut(&call) {
            c.state = CallState::Answered;
        }
        self.send_2xx(now, call, &req, &key, body);
        if let Some(media) = media {
            self.events.push_back(Event::MediaUpdated {
                call,
                media,
                held: media.is_held(),
            });
        }
        Ok(())
    }

    /// Rejects an offered call with a final status (486, 603, 480, …).
    pub fn reject(
        &mut self,
        now: Instant,
        call: CallHandle,
        status: u16,
    ) -> Result<(), CommandError> {
        self.call_in(call, &[CallState::Offered], "reject")?;
        let status = if (300..700).contains(&status) {
            status
        } else {
            603
        };
        self.provisional_or_final(now, call, status, None);
        self.end_call(call, EndReason::Rejected(status));
        Ok(())
    }

    /// Ends a call: rejects it (480) if not yet answered, otherwise sends BYE.
    pub fn hangup(&mut self, now: Instant, call: CallHandle) -> Result<(), CommandError> {
        let state = self
            .calls
            .get(&call)
            .ok_or(CommandError::UnknownCall(call))?
            .state;
        if state == CallState::Offered {
            self.provisional_or_final(now, call, 480, None);
            self.end_call(call, EndReason::Rejected(480));
            return Ok(());
        }
        if let Some((req, to, transport)) = self.in_dialog_request(call, Method::Bye, None) {
            self.start_client_non_invite(now, call, &req, to, transport);
        }
        self.end_call(call, EndReason::LocalHangup);
        Ok(())
    }

    /// Puts the caller on hold (`true`: re-INVITE with `sendonly`) or takes
    /// it off hold (`false`: `sendrecv`).
    pub fn hold(&mut self, now: Instant, call: CallHandle, on: bool) -> Result<(), CommandError> {
        self.call_in(call, &[CallState::Established], "hold")?;
        let codecs = self.cfg.codecs.clone();
        let local = self.cfg.local_addr;
        {
            let c = self
                .calls
                .get_mut(&call)
                .ok_or(CommandError::UnknownCall(call))?;
            if c.reinvite_branch.is_some() || c.ok_retx.is_some() {
                return Err(CommandError::WrongState("hold", "renegotiating"));
            }
            c.held_locally = on;
            c.sdp_version += 1;
            let dir = if on {
                Direction::SendOnly
            } else {
                Direction::SendRecv
            };
            let o = sdp::offer(
                c.local_rtp.unwrap_or(local),
                c.sdp_id,
                c.sdp_version,
                dir,
                &codecs,
            );
            c.our_offer = Some(o);
        }
        let Some((mut req, to, transport)) = self.in_dialog_request(call, Method::Invite, None)
        else {
            return Err(CommandError::UnknownCall(call));
        };
        let contact = self.contact(transport);
        req.headers.push("Contact", contact);
        req.headers.push("Content-Type", "application/sdp");
        req.body = self
            .calls
            .get(&call)
            .and_then(|c| c.our_offer.as_ref())
            .map(SessionDescription::to_bytes)
            .unwrap_or_default();
        let mut out = Vec::new();
        let tx = ClientInvite::start(now, &req, transport.reliable(), self.cfg.timers, &mut out);
        for o in out {
            if let TxOutput::Send(b) = o {
                self.send(transport, to, b);
            }
        }
        let branch = req
            .top_via()
            .and_then(|v| v.branch().map(str::to_owned))
            .unwrap_or_default();
        let key = TxKey {
            branch: branch.clone(),
            sent_by: String::new(),
            method: "INVITE".into(),
        };
        if let Some(c) = self.calls.get_mut(&call) {
            c.reinvite_branch = Some(branch);
        }
        self.client.insert(
            key.clone(),
            ClientEntry {
                tx: ClientTx::Invite(tx),
                call,
                to,
                transport,
            },
        );
        self.schedule(TimerRef::Client(key));
        Ok(())
    }
}
