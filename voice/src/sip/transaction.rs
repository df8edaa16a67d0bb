//! SIP transactions (RFC 3261 §17) as pure state machines.
//!
//! Each transaction is fed messages and the current time and answers with
//! [`TxOutput`]s (bytes to send, a timeout to report to the transaction user)
//! plus its next deadline ([`poll_timeout`](ServerInvite::poll_timeout)).
//! No clock is read and no socket is touched, so every timer (A, B, D, E, F,
//! G, H, I, J, K) is tested below with simulated time. Timer C belongs to
//! proxies and is not implemented.
//!
//! A 2xx answer to INVITE ends the INVITE server transaction at once
//! (RFC 3261 §17.2.1); retransmitting that 2xx until the ACK comes is the
//! dialog's job (see [`crate::sip::endpoint`]).

use std::time::{Duration, Instant};

use super::message::{Headers, Method, Request, Response};

/// The RFC 3261 timer base values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate (default 500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// What a transaction asks its owner to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxOutput {
    /// Send these bytes to the transaction's peer.
    Send(Vec<u8>),
    /// The transaction timed out (Timer B, F or H); tell the TU.
    Timeout,
}

/// Key identifying a transaction (RFC 3261 §17.2.3): branch, sent-by and
/// method, with ACK mapped onto INVITE.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey {
    /// The Via branch.
    pub branch: String,
    /// The Via sent-by (empty for client transactions).
    pub sent_by: String,
    /// The method (ACK is stored as INVITE).
    pub method: String,
}

impl TxKey {
    /// The server-transaction key of a request, if its top Via has an
    /// RFC 3261 branch.
    pub fn server(req: &Request) -> Option<Self> {
        let via = req.top_via()?;
        let branch = via.branch()?.to_owned();
        let method = match &req.method {
            Method::Ack => Method::Invite,
            m => m.clone(),
        };
        Some(Self {
            branch,
            sent_by: via.sent_by().to_ascii_lowercase(),
            method: method.as_str().to_owned(),
        })
    }

    /// The client-transaction key a response belongs to.
    pub fn client_for_response(resp: &Response) -> Option<Self> {
        let via = resp.top_via()?;
        let cseq = resp.cseq()?;
        Some(Self {
            branch: via.branch()?.to_owned(),
            sent_by: String::new(),
            method: cseq.method.as_str().to_owned(),
        })
    }
}

/// State of an INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerInviteState {
    /// Waiting for the TU's final answer; provisional ones may have been sent.
    Proceeding,
    /// A 3xx–6xx was sent; retransmitting it until the ACK (Timers G, H).
    Completed,
    /// ACK received; absorbing ACK retransmits (Timer I).
    Confirmed,
    /// Done.
    Terminated,
}

/// INVITE server transaction (RFC 3261 §17.2.1, Figure 7).
#[derive(Debug, Clone)]
pub struct ServerInvite {
    state: ServerInviteState,
    reliable: bool,
    timers: TimerConfig,
    last_response: Option<Vec<u8>>,
    g_interval: Duration,
    timer_g: Option<Instant>,
    timer_h: Option<Instant>,
    timer_i: Option<Instant>,
}

impl ServerInvite {
    /// A new transaction for a received INVITE. `reliable` is true over TCP/TLS.
    pub fn new(reliable: bool, timers: TimerConfig) -> Self {
        Self {
            state: ServerInviteState::Proceeding,
            reliable,
            timers,
            last_response: None,
            g_interval: timers.t1,
            timer_g: None,
            timer_h: None,
            timer_i: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerInviteState {
        self.state
    }

    /// The TU sends a response through the transaction.
    pub fn send_response(&mut self, now: Instant, resp: &Response, out: &mut Vec<TxOutput>) {
        if self.state != ServerInviteState::Proceeding {
            return;
        }
        let bytes = resp.to_bytes();
        out.push(TxOutput::Send(bytes.clone()));
        self.last_response = Some(bytes);
        match resp.status {
            100..=199 => {}
            200..=299 => self.state = ServerInviteState::Terminated,
            _ => {
                self.state = ServerInviteState::Completed;
                if !self.reliable {
                    self.timer_g = Some(now + self.g_interval);
                }
                self.timer_h = Some(now + self.timers.t1 * 64);
            }
        }
    }

    /// The INVITE was received again: resend the last response.
    pub fn on_retransmit(&mut self, out: &mut Vec<TxOutput>) {
        if matches!(
            self.state,
            ServerInviteState::Proceeding | ServerInviteState::Completed
        ) && let Some(b) = &self.last_response
        {
            out.push(TxOutput::Send(b.clone()));
        }
    }

    /// An ACK for a non-2xx final response arrived.
    pub fn on_ack(&mut self, now: Instant) {
        if self.state == ServerInviteState::Completed {
            self.state = ServerInviteState::Confirmed;
            self.timer_g = None;
            self.timer_h = None;
            if self.reliable {
                self.state = ServerInviteState::Terminated;
            } else {
                self.timer_i = Some(now + self.timers.t4);
            }
        }
    }

    /// Next deadline, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_g, self.timer_h, self.timer_i]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        if self.timer_h.is_some_and(|t| t <= now) {
            self.timer_h = None;
            self.timer_g = None;
            self.state = ServerInviteState::Terminated;
            out.push(TxOutput::Timeout);
            return;
        }
        if let Some(t) = self.timer_g
            && t <= now
        {
            if let Some(b) = &self.last_response {
                out.push(TxOutput::Send(b.clone()));
            }
            self.g_interval = (self.g_interval * 2).min(self.timers.t2);
            self.timer_g = Some(t + self.g_interval);
        }
        if self.timer_i.is_some_and(|t| t <= now) {
            self.timer_i = None;
            self.state = ServerInviteState::Terminated;
        }
    }
}

/// State of a non-INVITE server transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerNonInviteState {
    /// Request received, nothing sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// Final response sent; absorbing retransmits (Timer J).
    Completed,
    /// Done.
    Terminated,
}

/// Non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8).
#[derive(Debug, Clone)]
pub struct ServerNonInvite {
    state: ServerNonInviteState,
    reliable: bool,
    timers: TimerConfig,
    last_response: Option<Vec<u8>>,
    timer_j: Option<Instant>,
}

impl ServerNonInvite {
    /// A new transaction for a received request.
    pub fn new(reliable: bool, timers: TimerConfig) -> Self {
        Self {
            state: ServerNonInviteState::Trying,
            reliable,
            timers,
            last_response: None,
            timer_j: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ServerNonInviteState {
        self.state
    }

    /// The TU sends a response.
    pub fn send_response(&mut self, now: Instant, resp: &Response, out: &mut Vec<TxOutput>) {
        if matches!(
            self.state,
            ServerNonInviteState::Completed | ServerNonInviteState::Terminated
        ) {
            return;
        }
        let bytes = resp.to_bytes();
        out.push(TxOutput::Send(bytes.clone()));
        self.last_response = Some(bytes);
        if resp.status < 200 {
            self.state = ServerNonInviteState::Proceeding;
        } else if self.reliable {
            self.state = ServerNonInviteState::Terminated;
        } else {
            self.state = ServerNonInviteState::Completed;
            self.timer_j = Some(now + self.timers.t1 * 64);
        }
    }

    /// The request was received again.
    pub fn on_retransmit(&mut self, out: &mut Vec<TxOutput>) {
        if let Some(b) = &self.last_response {
            out.push(TxOutput::Send(b.clone()));
        }
    }

    /// Next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer_j
    }

    /// Fires Timer J.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.timer_j.is_some_and(|t| t <= now) {
            self.timer_j = None;
            self.state = ServerNonInviteState::Terminated;
        }
    }
}

/// State of a client transaction (both kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    /// INVITE sent, no response yet (INVITE only).
    Calling,
    /// Request sent, no response yet (non-INVITE only).
    Trying,
    /// A provisional response arrived.
    Proceeding,
    /// A final response arrived; absorbing retransmits (Timer D or K).
    Completed,
    /// Done.
    Terminated,
}

/// Non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6).
#[derive(Debug, Clone)]
pub struct ClientNonInvite {
    state: ClientState,
    reliable: bool,
    timers: TimerConfig,
    request: Vec<u8>,
    e_interval: Duration,
    timer_e: Option<Instant>,
    timer_f: Option<Instant>,
    timer_k: Option<Instant>,
}

impl ClientNonInvite {
    /// Starts the transaction: the request is sent at once.
    pub fn start(
        now: Instant,
        request: &Request,
        reliable: bool,
        timers: TimerConfig,
        out: &mut Vec<TxOutput>,
    ) -> Self {
        let bytes = request.to_bytes();
        out.push(TxOutput::Send(bytes.clone()));
        Self {
            state: ClientState::Trying,
            reliable,
            timers,
            request: bytes,
            e_interval: timers.t1,
            timer_e: (!reliable).then(|| now + timers.t1),
            timer_f: Some(now + timers.t1 * 64),
            timer_k: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// A response arrived; returns it when the TU should see it.
    pub fn on_response(&mut self, now: Instant, resp: &Response) -> bool {
        match self.state {
            ClientState::Trying | ClientState::Proceeding => {
                if resp.status < 200 {
                    self.state = ClientState::Proceeding;
                } else {
                    self.state = ClientState::Completed;
                    self.timer_e = None;
                    self.timer_f = None;
                    if self.reliable {
                        self.state = ClientState::Terminated;
                    } else {
                        self.timer_k = Some(now + self.timers.t4);
                    }
                }
                true
            }
            _ => false,
        }
    }

    /// Next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_e, self.timer_f, self.timer_k]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires Timers E, F and K.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        if self.timer_f.is_some_and(|t| t <= now) {
            self.timer_f = None;
            self.timer_e = None;
            self.state = ClientState::Terminated;
            out.push(TxOutput::Timeout);
            return;
        }
        if let Some(t) = self.timer_e
            && t <= now
        {
            out.push(TxOutput::Send(self.request.clone()));
            // In Proceeding the interval is T2; in Trying it doubles up to T2.
            self.e_interval = if self.state == ClientState::Proceeding {
                self.timers.t2
            } else {
                (self.e_interval * 2).min(self.timers.t2)
            };
            self.timer_e = Some(t + self.e_interval);
        }
        if self.timer_k.is_some_and(|t| t <= now) {
            self.timer_k = None;
            self.state = ClientState::Terminated;
        }
    }
}

/// INVITE client transaction (RFC 3261 §17.1.1, Figure 5).
#[derive(Debug, Clone)]
pub struct ClientInvite {
    state: ClientState,
    reliable: bool,
    request: Request,
    bytes: Vec<u8>,
    a_interval: Duration,
    timer_a: Option<Instant>,
    timer_b: Option<Instant>,
    timer_d: Option<Instant>,
    ack: Option<Vec<u8>>,
}

impl ClientInvite {
    /// Starts the transaction: the INVITE is sent at once.
    pub fn start(
        now: Instant,
        request: &Request,
        reliable: bool,
        timers: TimerConfig,
        out: &mut Vec<TxOutput>,
    ) -> Self {
        let bytes = request.to_bytes();
        out.push(TxOutput::Send(bytes.clone()));
        Self {
            state: ClientState::Calling,
            reliable,
            request: request.clone(),
            bytes,
            a_interval: timers.t1,
            timer_a: (!reliable).then(|| now + timers.t1),
            timer_b: Some(now + timers.t1 * 64),
            timer_d: None,
            ack: None,
        }
    }

    /// Current state.
    pub fn state(&self) -> ClientState {
        self.state
    }

    /// A response arrived. Returns true when the TU should see it. A
    /// 3xx–6xx is acknowledged here (the ACK is part of the transaction);
    /// a 2xx ends the transaction and the TU sends its own ACK.
    pub fn on_response(&mut self, now: Instant, resp: &Response, out: &mut Vec<TxOutput>) -> bool {
        match self.state {
            ClientState::Calling | ClientState::Proceeding => {
                self.timer_a = None;
                match resp.status {
                    100..=199 => {
                        self.state = ClientState::Proceeding;
                        true
                    }
                    200..=299 => {
                        self.state = ClientState::Terminated;
                        self.timer_b = None;
                        true
                    }
                    _ => {
                        let ack = self.build_ack(resp).to_bytes();
                        out.push(TxOutput::Send(ack.clone()));
                        self.ack = Some(ack);
                        self.timer_b = None;
                        if self.reliable {
                            self.state = ClientState::Terminated;
                        } else {
                            self.state = ClientState::Completed;
                            self.timer_d = Some(now + Duration::from_secs(32));
                        }
                        true
                    }
                }
            }
            ClientState::Completed => {
                if resp.status >= 300
                    && let Some(a) = &self.ack
                {
                    out.push(TxOutput::Send(a.clone()));
                }
                false
            }
            _ => false,
        }
    }

    /// The ACK for a non-2xx response (RFC 3261 §17.1.1.3).
    fn build_ack(&self, resp: &Response) -> Request {
        let mut ack = Request::new(Method::Ack, self.request.uri.clone());
        let mut h = Headers::default();
        if let Some(v) = self.request.headers.values("Via").first() {
            h.push("Via", v.clone());
        }
        for r in self.request.headers.values("Route") {
            h.push("Route", r);
        }
        for name in ["From", "Call-ID"] {
            if let Some(v) = self.request.headers.get(name) {
                h.push(name, v);
            }
        }
        if let Some(v) = resp.headers.get("To") {
            h.push("To", v);
        }
        if let Some(c) = self.request.cseq() {
            h.push("CSeq", format!("{} ACK", c.seq));
        }
        h.push("Max-Forwards", "70");
        ack.headers = h;
        ack
    }

    /// Next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.timer_a, self.timer_b, self.timer_d]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires Timers A, B and D.
    pub fn handle_timeout(&mut self, now: Instant, out: &mut Vec<TxOutput>) {
        if self.timer_b.is_some_and(|t| t <= now) {
            self.timer_b = None;
            self.timer_a = None;
            self.state = ClientState::Terminated;
            out.push(TxOutput::Timeout);
            return;
        }
        if let Some(t) = self.timer_a
            && t <= now
        {
            out.push(TxOutput::Send(self.bytes.clone()));
            self.a_interval *= 2;
            self.timer_a = Some(t + self.a_interval);
        }
        if self.timer_d.is_some_and(|t| t <= now) {
            self.timer_d = None;
            self.state = ClientState::Terminated;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    fn invite() -> Request {
        let raw = "INVITE sip:bob@b SIP/2.0\r\nVia: SIP/2.0/UDP a:5060;branch=z9hG4bKx\r\n\
To: <sip:bob@b>\r\nFrom: <sip:al@a>;tag=1\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n";
        match Message::parse(raw.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Runs the transaction's timers up to `until`, recording the send times.
    fn run<F: FnMut(Instant, &mut Vec<TxOutput>), P: Fn() -> Option<Instant>>(
        _t0: Instant,
        until: Instant,
        poll: P,
        mut fire: F,
    ) -> Vec<(Instant, TxOutput)> {
        let mut log = Vec::new();
        while let Some(t) = poll() {
            if t > until {
                break;
            }
            let mut out = Vec::new();
            fire(t, &mut out);
            log.extend(out.into_iter().map(|o| (t, o)));
        }
        log
    }

    #[test]
    fn server_invite_timer_g_backs_off_to_t2_and_timer_h_times_out() {
        let t0 = Instant::now();
        let cfg = TimerConfig::default();
        let tx = std::cell::RefCell::new(ServerInvite::new(false, cfg));
        let mut out = Vec::new();
        tx.borrow_mut().send_response(
            t0,
            &invite().response(486, "Busy Here", Some("t")),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(tx.borrow().state(), ServerInviteState::Completed);
        let log = run(
            t0,
            t0 + Duration::from_secs(40),
            || tx.borrow().poll_timeout(),
            |t, o| tx.borrow_mut().handle_timeout(t, o),
        );
        let sends: Vec<u64> = log
            .iter()
            .filter(|(_, o)| matches!(o, TxOutput::Send(_)))
            .map(|(t, _)| (*t - t0).as_millis() as u64)
            .collect();
        // 0.5, 1.5, 3.5, 7.5, 11.5, ... every 4 s until H at 32 s.
        assert_eq!(
            sends,
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        let timeout: Vec<_> = log
            .iter()
            .filter(|(_, o)| *o == TxOutput::Timeout)
            .collect();
        assert_eq!(timeout.len(), 1);
        assert_eq!(timeout[0].0 - t0, Duration::from_secs(32));
        assert_eq!(tx.borrow().state(), ServerInviteState::Terminated);
    }

    #[test]
    fn server_invite_ack_stops_retransmits_and_timer_i_ends_it() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(false, TimerConfig::default());
        let mut out = Vec::new();
        tx.send_response(t0, &invite().response(180, "Ringing", Some("t")), &mut out);
        tx.on_retransmit(&mut out);
        assert_eq!(out.len(), 2, "retransmitted INVITE gets the 180 again");
        assert_eq!(tx.poll_timeout(), None, "no timers in Proceeding");
        tx.send_response(t0, &invite().response(603, "Decline", Some("t")), &mut out);
        tx.on_ack(t0 + ms(200));
        assert_eq!(tx.state(), ServerInviteState::Confirmed);
        assert_eq!(
            tx.poll_timeout(),
            Some(t0 + ms(200) + Duration::from_secs(5))
        );
        let mut out = Vec::new();
        tx.handle_timeout(t0 + ms(5200), &mut out);
        assert!(out.is_empty());
        assert_eq!(tx.state(), ServerInviteState::Terminated);
    }

    #[test]
    fn server_invite_over_tcp_has_no_timer_g_and_ends_on_ack() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(true, TimerConfig::default());
        let mut out = Vec::new();
        tx.send_response(
            t0,
            &invite().response(404, "Not Found", Some("t")),
            &mut out,
        );
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.on_ack(t0 + ms(10));
        assert_eq!(tx.state(), ServerInviteState::Terminated);
    }

    #[test]
    fn server_invite_2xx_terminates_immediately() {
        let t0 = Instant::now();
        let mut tx = ServerInvite::new(false, TimerConfig::default());
        let mut out = Vec::new();
        tx.send_response(t0, &invite().response(200, "OK", Some("t")), &mut out);
        assert_eq!(tx.state(), ServerInviteState::Terminated);
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn server_non_invite_timer_j_absorbs_retransmits() {
        let t0 = Instant::now();
        let mut tx = ServerNonInvite::new(false, TimerConfig::default());
        let mut out = Vec::new();
        let mut bye = invite();
        bye.method = Method::Bye;
        tx.send_response(t0, &bye.response(200, "OK", None), &mut out);
        assert_eq!(tx.state(), ServerNonInviteState::Completed);
        tx.on_retransmit(&mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], out[1]);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_timeout(t0 + Duration::from_secs(31));
        assert_eq!(tx.state(), ServerNonInviteState::Completed);
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert_eq!(tx.state(), ServerNonInviteState::Terminated);
        // Reliable transports skip Completed.
        let mut tcp = ServerNonInvite::new(true, TimerConfig::default());
        tcp.send_response(t0, &bye.response(200, "OK", None), &mut out);
        assert_eq!(tcp.state(), ServerNonInviteState::Terminated);
    }

    #[test]
    fn client_non_invite_timer_e_f_schedule() {
        let t0 = Instant::now();
        let mut bye = invite();
        bye.method = Method::Bye;
        let mut out = Vec::new();
        let tx = std::cell::RefCell::new(ClientNonInvite::start(
            t0,
            &bye,
            false,
            TimerConfig::default(),
            &mut out,
        ));
        assert_eq!(out.len(), 1);
        let log = run(
            t0,
            t0 + Duration::from_secs(40),
            || tx.borrow().poll_timeout(),
            |t, o| tx.borrow_mut().handle_timeout(t, o),
        );
        let sends: Vec<u64> = log
            .iter()
            .filter(|(_, o)| matches!(o, TxOutput::Send(_)))
            .map(|(t, _)| (*t - t0).as_millis() as u64)
            .collect();
        assert_eq!(
            sends,
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(log.last().unwrap().1, TxOutput::Timeout);
        assert_eq!(log.last().unwrap().0 - t0, Duration::from_secs(32));
        assert_eq!(tx.borrow().state(), ClientState::Terminated);
    }

    #[test]
    fn client_non_invite_proceeding_uses_t2_then_timer_k() {
        let t0 = Instant::now();
        let mut bye = invite();
        bye.method = Method::Bye;
        let mut out = Vec::new();
        let mut tx = ClientNonInvite::start(t0, &bye, false, TimerConfig::default(), &mut out);
        assert!(tx.on_response(t0 + ms(100), &bye.response(100, "Trying", None)));
        assert_eq!(tx.state(), ClientState::Proceeding);
        let mut out = Vec::new();
        tx.handle_timeout(t0 + ms(500), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(
            tx.poll_timeout(),
            Some(t0 + ms(4500)),
            "interval is T2 in Proceeding"
        );
        assert!(tx.on_response(t0 + ms(600), &bye.response(200, "OK", None)));
        assert_eq!(tx.state(), ClientState::Completed);
        assert!(!tx.on_response(t0 + ms(700), &bye.response(200, "OK", None)));
        assert_eq!(tx.poll_timeout(), Some(t0 + ms(5600)), "Timer K = T4");
        tx.handle_timeout(t0 + ms(5600), &mut out);
        assert_eq!(tx.state(), ClientState::Terminated);
    }

    #[test]
    fn client_invite_timer_a_doubles_and_timer_b_times_out() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let tx = std::cell::RefCell::new(ClientInvite::start(
            t0,
            &invite(),
            false,
            TimerConfig::default(),
            &mut out,
        ));
        let log = run(
            t0,
            t0 + Duration::from_secs(40),
            || tx.borrow().poll_timeout(),
            |t, o| tx.borrow_mut().handle_timeout(t, o),
        );
        let sends: Vec<u64> = log
            .iter()
            .filter(|(_, o)| matches!(o, TxOutput::Send(_)))
            .map(|(t, _)| (*t - t0).as_millis() as u64)
            .collect();
        // Timer A doubles without cap: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5; B at 32 s.
        assert_eq!(sends, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(
            log.last().unwrap(),
            &(t0 + Duration::from_secs(32), TxOutput::Timeout)
        );
    }

    #[test]
    fn client_invite_acks_errors_and_timer_d_absorbs_retransmits() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let inv = invite();
        let mut tx = ClientInvite::start(t0, &inv, false, TimerConfig::default(), &mut out);
        let busy = inv.response(486, "Busy Here", Some("x"));
        let mut out = Vec::new();
        assert!(tx.on_response(t0 + ms(50), &busy, &mut out));
        let Some(TxOutput::Send(ack)) = out.first() else {
            panic!()
        };
        let Message::Request(ack) = Message::parse(ack).unwrap() else {
            panic!()
        };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.cseq().unwrap().seq, 1);
        assert_eq!(ack.to().unwrap().tag(), Some("x"));
        assert_eq!(ack.top_via().unwrap().branch(), Some("z9hG4bKx"));
        let mut out = Vec::new();
        assert!(!tx.on_response(t0 + ms(60), &busy, &mut out));
        assert_eq!(out.len(), 1, "retransmitted 486 is ACKed again");
        assert_eq!(
            tx.poll_timeout(),
            Some(t0 + ms(50) + Duration::from_secs(32))
        );
        tx.handle_timeout(t0 + ms(50) + Duration::from_secs(32), &mut out);
        assert_eq!(tx.state(), ClientState::Terminated);
    }

    #[test]
    fn client_invite_2xx_goes_to_tu_and_terminates() {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let inv = invite();
        let mut tx = ClientInvite::start(t0, &inv, true, TimerConfig::default(), &mut out);
        assert_eq!(
            tx.poll_timeout(),
            Some(t0 + Duration::from_secs(32)),
            "no Timer A on TCP"
        );
        assert!(tx.on_response(t0, &inv.response(180, "Ringing", Some("x")), &mut out));
        assert!(tx.on_response(t0, &inv.response(200, "OK", Some("x")), &mut out));
        assert_eq!(tx.state(), ClientState::Terminated);
        assert_eq!(out.len(), 1, "no ACK from the transaction for 2xx");
    }
}
