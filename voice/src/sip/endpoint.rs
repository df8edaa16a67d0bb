//! The sans-IO SIP user agent server: one [`Endpoint`] owns every
//! transaction, dialog, call and registration.
//!
//! Feed it what arrives ([`Endpoint::handle_input`]) and the time when its
//! deadline passes ([`Endpoint::handle_timeout`]); drive calls with commands
//! ([`Endpoint::ring`], [`Endpoint::answer`], [`Endpoint::reject`],
//! [`Endpoint::hangup`], [`Endpoint::hold`]); then drain
//! [`Endpoint::poll_transmit`] (datagrams to send),
//! [`Endpoint::poll_event`] (what happened) and ask
//! [`Endpoint::poll_timeout`] when to call back. Nothing here reads a clock
//! or touches a socket.
//!
//! ## What it does
//!
//! * INVITE with or without an SDP offer; 100 Trying at once, 180/183 and
//!   200 on command. The 200 is retransmitted (T1 doubling to T2) until the
//!   ACK; without an ACK after 64·T1 the call is ended with a BYE.
//! * CANCEL before the answer (200 to the CANCEL, 487 to the INVITE); BYE
//!   either way; re-INVITE and UPDATE for hold/unhold (`sendonly`,
//!   `inactive`, `0.0.0.0`) and session refreshes; our own re-INVITE to hold;
//!   INFO with `application/dtmf-relay` or `application/dtmf`; OPTIONS.
//! * Session timers (RFC 4028) are tolerated: `Session-Expires` is echoed
//!   with `refresher=uac` and refreshes are answered.
//! * A registrar: REGISTER with digest authentication against the
//!   application's [`CredentialStore`], bindings with expiry.
//! * Errors get the right answer: 400 (bad or missing headers, even when
//!   the message did not parse), 405/501 (methods), 415 (bodies), 416
//!   (URI scheme), 420 (`Require` we lack), 481 (unknown dialog or
//!   transaction), 483 (Max-Forwards), 488 (SDP we cannot do), 491 (glare),
//!   505 (version). Garbage that is not a request is dropped.
//!
//! Responses go back to where the request came from (symmetric response
//! routing, RFC 3581), and requests inside a dialog go to the address the
//! dialog's INVITE came from, which is what NATed phones and trunks need.
//!
//! This file holds the types, input dispatch, in-dialog requests (BYE, INFO),
//! our client transactions and timers; `invite.rs` the INVITE server side
//! (new calls, CANCEL, re-INVITE, UPDATE, the 2xx and its ACK), `calls.rs`
//! the application's commands, and `registrar.rs` REGISTER and digest checks.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::auth::{CredentialStore, DigestAuthenticator};
use super::message::{
    Headers, Message, Method, ParseError, Request, Response, Uri, reason_phrase, validate_request,
};
use super::transaction::{
    ClientInvite, ClientNonInvite, ClientState, ServerInvite, ServerInviteState, ServerNonInvite,
    ServerNonInviteState, TimerConfig, TxKey, TxOutput,
};
use crate::media::DtmfDigit;
use crate::sdp::{self, Codec, NegotiatedMedia, SessionDescription};

/// SIP transport of a datagram or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP (unreliable: transactions retransmit).
    Udp,
    /// TCP (reliable).
    Tcp,
    /// TLS over TCP (reliable). The endpoint treats it like TCP; the glue
    /// terminates TLS.
    Tls,
}

impl Transport {
    fn reliable(self) -> bool {
        !matches!(self, Self::Udp)
    }

    fn via_name(self) -> &'static str {
        match self {
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Tls => "TLS",
        }
    }
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Transport to use (over TCP/TLS: the connection to `to`).
    pub transport: Transport,
    /// Destination.
    pub to: SocketAddr,
    /// The SIP message.
    pub data: Vec<u8>,
}

/// Switchboard's handle for one call (not the SIP Call-ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallHandle(pub u64);

impl fmt::Display for CallHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call-{}", self.0)
    }
}

/// Who is calling whom, from the INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// The SIP Call-ID.
    pub sip_call_id: String,
    /// Caller URI (From).
    pub from: Uri,
    /// Caller display name, if any.
    pub from_display: Option<String>,
    /// Called URI (To).
    pub to: Uri,
    /// The Request-URI (the number or user dialled).
    pub request_uri: String,
    /// Where the INVITE came from.
    pub remote: SocketAddr,
    /// Whether the INVITE carried an SDP offer.
    pub has_offer: bool,
}

/// How DTMF arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfSource {
    /// SIP INFO.
    Info,
    /// RFC 4733 RTP events (reported by the media layer).
    Rtp,
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The caller sent BYE.
    RemoteHangup,
    /// We hung up (BYE sent).
    LocalHangup,
    /// The caller cancelled before the answer.
    Cancelled,
    /// We rejected with this status.
    Rejected(u16),
    /// Our 200 OK was never acknowledged.
    AckTimeout,
    /// A transaction timed out (no response from the peer).
    Timeout,
}

/// A registration binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The contact URI as registered.
    pub contact: String,
    /// Where the REGISTER came from (for NATed devices).
    pub source: SocketAddr,
    /// Transport it came over.
    pub transport: Transport,
    /// When it expires.
    pub expires_at: Instant,
}

/// What the application learns from the endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A new inbound call waits for ring/answer/reject.
    CallOffered {
        /// The call.
        call: CallHandle,
        /// Caller, callee and addresses.
        info: Box<CallInfo>,
    },
    /// Media parameters are known or changed (answer sent, ACK with answer,
    /// re-INVITE hold/unhold): create or update the call's media session.
    MediaUpdated {
        /// The call.
        call: CallHandle,
        /// The agreed media.
        media: NegotiatedMedia,
        /// The peer has put us on hold (or we held it).
        held: bool,
    },
    /// The ACK for our 200 arrived: the call is up.
    CallEstablished {
        /// The call.
        call: CallHandle,
    },
    /// A DTMF key arrived by SIP INFO.
    Dtmf {
        /// The call.
        call: CallHandle,
        /// The key.
        digit: DtmfDigit,
        /// How it arrived.
        source: DtmfSource,
    },
    /// The call is over; its media can be torn down.
    CallEnded {
        /// The call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
    },
    /// A REGISTER added or refreshed a binding.
    Registered {
        /// Address of record (`user@domain`).
        aor: String,
        /// The binding.
        binding: Binding,
    },
    /// A binding was removed or expired.
    Unregistered {
        /// Address of record.
        aor: String,
        /// The contact URI.
        contact: String,
    },
}

/// Sizes of an endpoint's tables (see [`Endpoint::state_sizes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateSizes {
    /// Live calls.
    pub calls: usize,
    /// Dialog index entries.
    pub dialogs: usize,
    /// Server transactions still absorbing retransmissions.
    pub server_transactions: usize,
    /// Client transactions in progress.
    pub client_transactions: usize,
    /// Scheduled timer entries (including stale ones not yet discarded).
    pub timers: usize,
    /// Registration bindings.
    pub bindings: usize,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// No such call (ended or never existed).
    #[error("unknown call {0}")]
    UnknownCall(CallHandle),
    /// The command does not fit the call's state.
    #[error("{0} is not allowed in state {1}")]
    WrongState(&'static str, &'static str),
    /// The caller's offer could not be answered (a 488 was sent).
    #[error("offer not acceptable: {0}")]
    NotAcceptable(#[from] sdp::NegotiationError),
}

/// Endpoint configuration.
#[derive(Clone)]
pub struct EndpointConfig {
    /// Our SIP address (Via, Contact).
    pub local_addr: SocketAddr,
    /// Domain for the registrar (and realm for digest).
    pub domain: String,
    /// `User-Agent`/`Server` header value.
    pub user_agent: String,
    /// Codec preference.
    pub codecs: Vec<Codec>,
    /// RFC 3261 timer values.
    pub timers: TimerConfig,
    /// Secret keying digest nonces.
    pub auth_secret: String,
    /// Passwords for REGISTER (and INVITE, if `authenticate_invites`).
    pub credentials: Option<Arc<dyn CredentialStore>>,
    /// Challenge INVITEs too (for a trunk or phones that must authenticate).
    pub authenticate_invites: bool,
    /// Shortest registration accepted (seconds); shorter gets 423.
    pub min_expires: u32,
    /// Longest registration granted (seconds).
    pub max_expires: u32,
    /// Seed for tags, branches and SDP ids (fixed in tests).
    pub seed: u64,
}

impl fmt::Debug for EndpointConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointConfig")
            .field("local_addr", &self.local_addr)
            .field("domain", &self.domain)
            .field("codecs", &self.codecs)
            .field("authenticate_invites", &self.authenticate_invites)
            .finish_non_exhaustive()
    }
}

impl EndpointConfig {
    /// Defaults for an endpoint at `local_addr`.
    pub fn new(local_addr: SocketAddr) -> Self {
        Self {
            local_addr,
            domain: local_addr.ip().to_string(),
            user_agent: "Switchboard".into(),
            codecs: vec![Codec::Pcmu, Codec::Pcma],
            timers: TimerConfig::default(),
            auth_secret: "switchboard".into(),
            credentials: None,
            authenticate_invites: false,
            min_expires: 60,
            max_expires: 3600,
            seed: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallState {
    /// INVITE received; no final answer yet.
    Offered,
    /// 200 sent; waiting for the ACK.
    Answered,
    /// ACK received.
    Established,
}

impl CallState {
    fn name(self) -> &'static str {
        match self {
            Self::Offered => "offered",
            Self::Answered => "answered",
            Self::Established => "established",
        }
    }
}

/// A 2xx the dialog retransmits until the ACK (RFC 3261 §13.3.1.4).
#[derive(Debug)]
struct OkRetransmit {
    cseq: u32,
    bytes: Vec<u8>,
    interval: Duration,
    next: Instant,
    give_up: Instant,
}

#[derive(Debug)]
struct Call {
    state: CallState,
    /// The initial INVITE (body dropped), for responses on its transaction.
    invite: Request,
    sip_call_id: String,
    invite_key: TxKey,
    peer: SocketAddr,
    transport: Transport,
    local_tag: String,
    /// Our side's name-addr (the INVITE's To, plus our tag).
    local_na: String,
    /// Their side's name-addr (the INVITE's From, with their tag).
    remote_na: String,
    remote_tag: String,
    remote_target: String,
    route_set: Vec<String>,
    remote_cseq: u32,
    local_cseq: u32,
    local_rtp: Option<SocketAddr>,
    sdp_id: u64,
    sdp_version: u64,
    /// The caller's initial offer, answered on `answer`.
    remote_offer: Option<SessionDescription>,
    /// An offer we made, awaiting the answer (in ACK or in a 2xx).
    our_offer: Option<SessionDescription>,
    media: Option<NegotiatedMedia>,
    ok_retx: Option<OkRetransmit>,
    session_expires: Option<String>,
    /// Branch of our outstanding re-INVITE, if any.
    reinvite_branch: Option<String>,
    held_locally: bool,
}

#[derive(Debug)]
enum ServerTx {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

impl ServerTx {
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Self::Invite(t) => t.poll_timeout(),
            Self::NonInvite(t) => t.poll_timeout(),
        }
    }

    fn terminated(&self) -> bool {
        match self {
            Self::Invite(t) => t.state() == ServerInviteState::Terminated,
            Self::NonInvite(t) => t.state() == ServerNonInviteState::Terminated,
        }
    }
}

#[derive(Debug)]
struct ServerEntry {
    tx: ServerTx,
    to: SocketAddr,
    transport: Transport,
}

#[derive(Debug)]
enum ClientTx {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

#[derive(Debug)]
struct ClientEntry {
    tx: ClientTx,
    call: CallHandle,
    to: SocketAddr,
    transport: Transport,
}

impl ClientEntry {
    fn poll_timeout(&self) -> Option<Instant> {
        match &self.tx {
            ClientTx::Invite(t) => t.poll_timeout(),
            ClientTx::NonInvite(t) => t.poll_timeout(),
        }
    }

    fn terminated(&self) -> bool {
        match &self.tx {
            ClientTx::Invite(t) => t.state() == ClientState::Terminated,
            ClientTx::NonInvite(t) => t.state() == ClientState::Terminated,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef {
    Server(TxKey),
    Client(TxKey),
    Call(CallHandle),
    Registrar,
}

/// The user agent. See the module documentation.
pub struct Endpoint {
    cfg: EndpointConfig,
    epoch: Instant,
    rng: StdRng,
    auth: DigestAuthenticator,
    next_call: u64,
    calls: HashMap<CallHandle, Call>,
    /// (SIP Call-ID, our tag) → call.
    dialogs: HashMap<(String, String), CallHandle>,
    /// INVITE server transaction → call (for CANCEL and retransmits).
    by_invite: HashMap<TxKey, CallHandle>,
    server: HashMap<TxKey, ServerEntry>,
    client: HashMap<TxKey, ClientEntry>,
    timers: BinaryHeap<Reverse<(Instant, TimerRef)>>,
    bindings: BTreeMap<String, Vec<Binding>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("local_addr", &self.cfg.local_addr)
            .field("calls", &self.calls.len())
            .field("server_transactions", &self.server.len())
            .field("client_transactions", &self.client.len())
            .finish_non_exhaustive()
    }
}

const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE, REGISTER";
const SUPPORTED: &str = "timer";

impl Endpoint {
    /// A new endpoint; `now` anchors nonce ages.
    pub fn new(cfg: EndpointConfig, now: Instant) -> Self {
        let auth = DigestAuthenticator::new(cfg.domain.clone(), cfg.auth_secret.clone(), 300);
        Self {
            rng: StdRng::seed_from_u64(cfg.seed),
            cfg,
            epoch: now,
            auth,
            next_call: 1,
            calls: HashMap::new(),
            dialogs: HashMap::new(),
            by_invite: HashMap::new(),
            server: HashMap::new(),
            client: HashMap::new(),
            timers: BinaryHeap::new(),
            bindings: BTreeMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// Next application event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Number of live calls.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Sizes of the endpoint's internal tables, for metrics and leak checks.
    pub fn state_sizes(&self) -> StateSizes {
        StateSizes {
            calls: self.calls.len(),
            dialogs: self.dialogs.len(),
            server_transactions: self.server.len(),
            client_transactions: self.client.len(),
            timers: self.timers.len(),
            bindings: self.bindings.values().map(Vec::len).sum(),
        }
    }

    /// Current bindings of an address of record (`user@domain`).
    pub fn bindings(&self, aor: &str) -> &[Binding] {
        self.bindings.get(aor).map_or(&[], Vec::as_slice)
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((t, r))) = self.timers.peek() {
            if self.deadline_of(r) == Some(*t) {
                return Some(*t);
            }
            self.timers.pop();
        }
        None
    }

    fn deadline_of(&self, r: &TimerRef) -> Option<Instant> {
        match r {
            TimerRef::Server(k) => self.server.get(k).and_then(|e| e.tx.poll_timeout()),
            TimerRef::Client(k) => self.client.get(k).and_then(ClientEntry::poll_timeout),
            TimerRef::Call(c) => self
                .calls
                .get(c)
                .and_then(|c| c.ok_retx.as_ref())
                .map(|o| o.next.min(o.give_up)),
            TimerRef::Registrar => self
                .bindings
                .values()
                .flat_map(|v| v.iter().map(|b| b.expires_at))
                .min(),
        }
    }

    fn schedule(&mut self, r: TimerRef) {
        if let Some(t) = self.deadline_of(&r) {
            self.timers.push(Reverse((t, r)));
        }
    }

    fn now_secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() + 1
    }

    fn random_token(&mut self) -> String {
        format!("{:016x}", self.rng.random::<u64>())
    }

    fn branch(&mut self) -> String {
        format!("z9hG4bK{}", self.random_token())
    }

    fn send(&mut self, transport: Transport, to: SocketAddr, data: Vec<u8>) {
        self.transmits.push_back(Transmit {
            transport,
            to,
            data,
        });
    }

    fn with_common(&self, mut resp: Response) -> Response {
        resp.headers.push("Server", self.cfg.user_agent.clone());
        resp
    }

    fn contact(&self, transport: Transport) -> String {
        let t = match transport {
            Transport::Udp => "",
            Transport::Tcp => ";transport=tcp",
            Transport::Tls => ";transport=tls",
        };
        format!("<sip:{}{t}>", self.cfg.local_addr)
    }

    /// Handles a datagram (UDP) or one framed message (TCP/TLS).
    pub fn handle_input(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        data: &[u8],
    ) {
        match Message::parse(data) {
            Ok(Message::Request(req)) => self.on_request(now, transport, from, req),
            Ok(Message::Response(resp)) => self.on_response(now, &resp),
            Err(ParseError::Empty) => {} // CRLF keep-alive
            Err(e) => {
                let (status, reason) = match &e {
                    ParseError::BadVersion(_) => (505, "Version Not Supported"),
                    ParseError::TooLarge => (513, "Message Too Large"),
                    _ => (400, "Bad Request"),
                };
                tracing::debug!(%from, error = %e, "unparsable SIP message");
                if let Some(bytes) =
                    super::message::error_response_for_unparsable(data, status, reason)
                {
                    self.send(transport, from, bytes);
                }
            }
        }
    }

    fn respond_stateless(
        &mut self,
        transport: Transport,
        to: SocketAddr,
        req: &Request,
        status: u16,
        reason: &str,
    ) {
        let tag = self.random_token();
        let resp = self.with_common(req.response(status, reason, Some(&tag)));
        self.send(transport, to, resp.to_bytes());
    }

    fn on_request(&mut self, now: Instant, transport: Transport, from: SocketAddr, req: Request) {
        if let Err((status, reason)) = validate_request(&req) {
            if req.method != Method::Ack {
                self.respond_stateless(transport, from, &req, status, reason);
            }
            return;
        }
        let Some(key) = TxKey::server(&req) else {
            // Pre-RFC 3261 peers without a magic-cookie branch are not served.
            if req.method != Method::Ack {
                self.respond_stateless(transport, from, &req, 400, "Missing branch");
            }
            return;
        };
        if req.method == Method::Ack {
            self.on_ack(now, &key, &req);
            return;
        }
        // A retransmission of a request we already have a transaction for.
        if let Some(entry) = self.server.get_mut(&key) {
            let mut out = Vec::new();
            match &mut entry.tx {
                ServerTx::Invite(t) => t.on_retransmit(&mut out),
                ServerTx::NonInvite(t) => t.on_retransmit(&mut out),
            }
            let (transport, to) = (entry.transport, entry.to);
            for o in out {
                if let TxOutput::Send(b) = o {
                    self.send(transport, to, b);
                }
            }
            return;
        }
        // An INVITE retransmitted after its transaction ended with our 2xx
        // (RFC 6026's Accepted state): resend the 2xx, never a new call.
        if req.method == Method::Invite
            && let Some(handle) = self.by_invite.get(&key).copied()
        {
            if let Some(call) = self.calls.get(&handle)
                && let Some(ok) = &call.ok_retx
            {
                let (t, p, b) = (call.transport, call.peer, ok.bytes.clone());
                self.send(t, p, b);
            }
            return;
        }
        // Extensions the request requires and we lack.
        let unsupported: Vec<String> = req
            .headers
            .values("Require")
            .into_iter()
            .filter(|r| !SUPPORTED.split(", ").any(|s| s.eq_ignore_ascii_case(r)))
            .collect();
        if !unsupported.is_empty() && !matches!(req.method, Method::Cancel) {
            let mut resp = self.with_common(req.response(420, "Bad Extension", None));
            resp.headers.push("Unsupported", unsupported.join(", "));
            self.server_tx_reply(now, transport, from, &key, &req, &resp);
            return;
        }
        let in_dialog = req.to().is_some_and(|t| t.tag().is_some());
        match req.method {
            Method::Invite if in_dialog => self.on_reinvite(now, transport, from, key, req),
            Method::Invite => self.on_invite(now, transport, from, key, req),
            Method::Cancel => self.on_cancel(now, transport, from, &key, &req),
            Method::Bye => self.on_bye(now, transport, from, &key, &req),
            Method::Options => {
                let tag = self.random_token();
                let mut resp = self.with_common(req.response(200, "OK", Some(&tag)));
                resp.headers.push("Allow", ALLOW);
                resp.headers.push("Accept", "application/sdp");
                resp.headers.push("Supported", SUPPORTED);
                self.server_tx_reply(now, transport, from, &key, &req, &resp);
            }
            Method::Info => self.on_info(now, transport, from, &key, &req),
            Method::Update => self.on_update(now, transport, from, &key, &req),
            Method::Register => self.on_register(now, transport, from, &key, &req),
            Method::Other(_) => {
                let mut resp = self.with_common(req.response(501, "Not Implemented", None));
                resp.headers.push("Allow", ALLOW);
                self.server_tx_reply(now, transport, from, &key, &req, &resp);
            }
            _ => {
                let mut resp = self.with_common(req.response(405, "Method Not Allowed", None));
                resp.headers.push("Allow", ALLOW);
                self.server_tx_reply(now, transport, from, &key, &req, &resp);
            }
        }
    }

    /// Creates a non-INVITE server transaction and sends its final response.
    fn server_tx_reply(
        &mut self,
        now: Instant,
        transport: Transport,
        to: SocketAddr,
        key: &TxKey,
        _req: &Request,
        resp: &Response,
    ) {
        let mut tx = ServerNonInvite::new(transport.reliable(), self.cfg.timers);
        let mut out = Vec::new();
        tx.send_response(now, resp, &mut out);
        for o in out {
            if let TxOutput::Send(b) = o {
                self.send(transport, to, b);
            }
        }
        if tx.state() != ServerNonInviteState::Terminated {
            self.server.insert(
                key.clone(),
                ServerEntry {
                    tx: ServerTx::NonInvite(tx),
                    to,
                    transport,
                },
            );
            self.schedule(TimerRef::Server(key.clone()));
        }
    }

    /// Sends a response on an existing INVITE server transaction.
    fn invite_tx_respond(&mut self, now: Instant, key: &TxKey, resp: &Response) {
        let Some(entry) = self.server.get_mut(key) else {
            return;
        };
        let mut out = Vec::new();
        if let ServerTx::Invite(t) = &mut entry.tx {
            t.send_response(now, resp, &mut out);
        }
        let (transport, to) = (entry.transport, entry.to);
        let done = entry.tx.terminated();
        for o in out {
            if let TxOutput::Send(b) = o {
                self.send(transport, to, b);
            }
        }
        if done {
            self.server.remove(key);
        } else {
            self.schedule(TimerRef::Server(key.clone()));
        }
    }

    fn find_dialog(&self, req: &Request) -> Option<CallHandle> {
        let call_id = req.call_id()?;
        let tag = req.to()?.tag()?.to_owned();
        let handle = self.dialogs.get(&(call_id.to_owned(), tag)).copied()?;
        let from_tag = req.from()?.tag().map(str::to_owned);
        let call = self.calls.get(&handle)?;
        (from_tag.as_deref() == Some(call.remote_tag.as_str())).then_some(handle)
    }

    fn on_bye(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        key: &TxKey,
        req: &Request,
    ) {
        let Some(handle) = self.find_dialog(req) else {
            let resp = self.with_common(req.response(481, reason_phrase(481), None));
            self.server_tx_reply(now, transport, from, key, req, &resp);
            return;
        };
        let resp = self.with_common(req.response(200, "OK", None));
        self.server_tx_reply(now, transport, from, key, req, &resp);
        // BYE in an early dialog (after our 18x, before the answer): the
        // INVITE still needs its final response (RFC 3261 §15.1.2).
        if let Some(call) = self.calls.get(&handle)
            && call.state == CallState::Offered
        {
            let (key, tag) = (call.invite_key.clone(), call.local_tag.clone());
            let resp = self.with_common(call.invite.response(487, reason_phrase(487), Some(&tag)));
            self.invite_tx_respond(now, &key, &resp);
        }
        self.end_call(handle, EndReason::RemoteHangup);
    }

    fn check_cseq(&mut self, handle: CallHandle, req: &Request) -> bool {
        let Some(call) = self.calls.get_mut(&handle) else {
            return false;
        };
        let seq = req.cseq().map_or(0, |c| c.seq);
        if seq <= call.remote_cseq {
            return false;
        }
        call.remote_cseq = seq;
        true
    }

    /// The call a mid-dialog request (INFO, UPDATE) belongs to, with its
    /// CSeq in order; otherwise the request is answered (481 unknown dialog,
    /// 500 out-of-order CSeq) and `None` returned.
    fn dialog_request(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        key: &TxKey,
        req: &Request,
    ) -> Option<CallHandle> {
        let Some(handle) = self.find_dialog(req) else {
            let resp = self.with_common(req.response(481, reason_phrase(481), None));
            self.server_tx_reply(now, transport, from, key, req, &resp);
            return None;
        };
        if !self.check_cseq(handle, req) {
            let resp = self.with_common(req.response(500, "Out of order CSeq", None));
            self.server_tx_reply(now, transport, from, key, req, &resp);
            return None;
        }
        Some(handle)
    }

    fn on_info(
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
        if req.body.is_empty() {
            let resp = self.with_common(req.response(200, "OK", None));
            self.server_tx_reply(now, transport, from, key, req, &resp);
            return;
        }
        let ct = req.headers.get("Content-Type").unwrap_or("");
        match crate::media::dtmf::parse_info_body(ct, &req.body) {
            Some(digit) => {
                let resp = self.with_common(req.response(200, "OK", None));
                self.server_tx_reply(now, transport, from, key, req, &resp);
                self.events.push_back(Event::Dtmf {
                    call: handle,
                    digit,
                    source: DtmfSource::Info,
                });
            }
            None => {
                let mut resp = self.with_common(req.response(415, reason_phrase(415), None));
                resp.headers
                    .push("Accept", "application/dtmf-relay, application/dtmf");
                self.server_tx_reply(now, transport, from, key, req, &resp);
            }
        }
    }

    fn on_response(&mut self, now: Instant, resp: &Response) {
        let Some(key) = TxKey::client_for_response(resp) else {
            return;
        };
        let Some(entry) = self.client.get_mut(&key) else {
            return;
        };
        let mut out = Vec::new();
        let to_tu = match &mut entry.tx {
            ClientTx::Invite(t) => t.on_response(now, resp, &mut out),
            ClientTx::NonInvite(t) => t.on_response(now, resp),
        };
        let (transport, to, handle) = (entry.transport, entry.to, entry.call);
        let is_invite = matches!(entry.tx, ClientTx::Invite(_));
        if entry.terminated() {
            self.client.remove(&key);
        } else {
            self.schedule(TimerRef::Client(key.clone()));
        }
        for o in out {
            if let TxOutput::Send(b) = o {
                self.send(transport, to, b);
            }
        }
        if !to_tu || !is_invite || resp.status < 200 {
            return;
        }
        // Final response to our re-INVITE (hold/unhold).
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        call.reinvite_branch = None;
        let offer = call.our_offer.take();
        if (200..300).contains(&resp.status) {
            let seq = resp.cseq().map_or(0, |c| c.seq);
            let ack = self.in_dialog_request(handle, Method::Ack, Some(seq));
            if let Some((req, to, transport)) = ack {
                self.send(transport, to, req.to_bytes());
            }
            if let (Some(offer), Ok(answer)) = (offer, SessionDescription::parse(&resp.body))
                && let Ok(media) = sdp::accept_answer(&offer, &answer)
                && let Some(call) = self.calls.get_mut(&handle)
            {
                call.media = Some(media);
                let held = call.held_locally || media.is_held();
                self.events.push_back(Event::MediaUpdated {
                    call: handle,
                    media,
                    held,
                });
            }
        } else if resp.status == 481 || resp.status == 408 {
            self.end_call(handle, EndReason::Timeout);
        }
    }

    /// Builds a request inside the call's dialog. `cseq` reuses a number (ACK).
    fn in_dialog_request(
        &mut self,
        handle: CallHandle,
        method: Method,
        cseq: Option<u32>,
    ) -> Option<(Request, SocketAddr, Transport)> {
        let branch = self.branch();
        let local = self.cfg.local_addr;
        let ua = self.cfg.user_agent.clone();
        let call = self.calls.get_mut(&handle)?;
        let seq = match cseq {
            Some(s) => s,
            None => {
                call.local_cseq += 1;
                call.local_cseq
            }
        };
        let mut req = Request::new(method.clone(), call.remote_target.clone());
        let mut h = Headers::default();
        h.push(
            "Via",
            format!(
                "SIP/2.0/{} {local};branch={branch};rport",
                call.transport.via_name()
            ),
        );
        h.push("Max-Forwards", "70");
        for r in &call.route_set {
            h.push("Route", r.clone());
        }
        h.push("From", call.local_na.clone());
        h.push("To", call.remote_na.clone());
        h.push("Call-ID", call.sip_call_id.clone());
        h.push("CSeq", format!("{seq} {method}"));
        h.push("User-Agent", ua);
        req.headers = h;
        Some((req, call.peer, call.transport))
    }

    fn start_client_non_invite(
        &mut self,
        now: Instant,
        handle: CallHandle,
        req: &Request,
        to: SocketAddr,
        transport: Transport,
    ) {
        let mut out = Vec::new();
        let tx = ClientNonInvite::start(now, req, transport.reliable(), self.cfg.timers, &mut out);
        for o in out {
            if let TxOutput::Send(b) = o {
                self.send(transport, to, b);
            }
        }
        if let Some(key) = req.top_via().and_then(|v| {
            Some(TxKey {
                branch: v.branch()?.to_owned(),
                sent_by: String::new(),
                method: req.method.as_str().to_owned(),
            })
        }) {
            self.client.insert(
                key.clone(),
                ClientEntry {
                    tx: ClientTx::NonInvite(tx),
                    call: handle,
                    to,
                    transport,
                },
            );
            self.schedule(TimerRef::Client(key));
        }
    }

    fn end_call(&mut self, handle: CallHandle, reason: EndReason) {
        if let Some(call) = self.calls.remove(&handle) {
            self.dialogs.remove(&(call.sip_call_id, call.local_tag));
            self.by_invite.remove(&call.invite_key);
            self.events.push_back(Event::CallEnded {
                call: handle,
                reason,
            });
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((t, _))) = self.timers.peek() {
            if *t > now {
                break;
            }
            if let Some(Reverse((_, r))) = self.timers.pop() {
                due.push(r);
            }
        }
        due.sort();
        due.dedup();
        for r in due {
            match r {
                TimerRef::Server(k) => self.fire_server(now, &k),
                TimerRef::Client(k) => self.fire_client(now, &k),
                TimerRef::Call(c) => self.fire_call(now, c),
                TimerRef::Registrar => self.fire_registrar(now),
            }
        }
    }

    fn fire_server(&mut self, now: Instant, key: &TxKey) {
        let Some(entry) = self.server.get_mut(key) else {
            return;
        };
        let mut out = Vec::new();
        match &mut entry.tx {
            ServerTx::Invite(t) => t.handle_timeout(now, &mut out),
            ServerTx::NonInvite(t) => t.handle_timeout(now),
        }
        let (transport, to) = (entry.transport, entry.to);
        if entry.tx.terminated() {
            self.server.remove(key);
        } else {
            self.schedule(TimerRef::Server(key.clone()));
        }
        for o in out {
            match o {
                TxOutput::Send(b) => self.send(transport, to, b),
                TxOutput::Timeout => tracing::debug!(?key, "no ACK for final response (Timer H)"),
            }
        }
    }

    fn fire_client(&mut self, now: Instant, key: &TxKey) {
        let Some(entry) = self.client.get_mut(key) else {
            return;
        };
        let mut out = Vec::new();
        match &mut entry.tx {
            ClientTx::Invite(t) => t.handle_timeout(now, &mut out),
            ClientTx::NonInvite(t) => t.handle_timeout(now, &mut out),
        }
        let (transport, to, handle) = (entry.transport, entry.to, entry.call);
        let is_invite = matches!(entry.tx, ClientTx::Invite(_));
        if entry.terminated() {
            self.client.remove(key);
        } else {
            self.schedule(TimerRef::Client(key.clone()));
        }
        for o in out {
            match o {
                TxOutput::Send(b) => self.send(transport, to, b),
                TxOutput::Timeout => {
                    if is_invite {
                        if let Some(c) = self.calls.get_mut(&handle) {
                            c.reinvite_branch = None;
                            c.our_offer = None;
                        }
                        // RFC 3261 §14.1: a re-INVITE timeout ends the dialog.
                        let _ = self.hangup(now, handle);
                        if let Some(Event::CallEnded { reason, .. }) = self.events.back_mut() {
                            *reason = EndReason::Timeout;
                        }
                    }
                }
            }
        }
    }

    fn fire_call(&mut self, now: Instant, handle: CallHandle) {
        let Some(call) = self.calls.get_mut(&handle) else {
            return;
        };
        let Some(ok) = call.ok_retx.as_mut() else {
            return;
        };
        if now >= ok.give_up {
            call.ok_retx = None;
            let (peer, transport) = (call.peer, call.transport);
            let _ = (peer, transport);
            // No ACK: end the dialog with BYE (RFC 3261 §13.3.1.4).
            if let Some((req, to, transport)) = self.in_dialog_request(handle, Method::Bye, None) {
                self.start_client_non_invite(now, handle, &req, to, transport);
            }
            self.end_call(handle, EndReason::AckTimeout);
            return;
        }
        if now >= ok.next {
            let bytes = ok.bytes.clone();
            ok.interval = (ok.interval * 2).min(self.cfg.timers.t2);
            ok.next += ok.interval;
            let (peer, transport) = (call.peer, call.transport);
            if !transport.reliable() {
                self.send(transport, peer, bytes);
            }
        }
        self.schedule(TimerRef::Call(handle));
    }
}

mod calls;
mod invite;
mod registrar;

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
