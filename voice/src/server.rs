//! Thin tokio glue around the sans-IO [`Endpoint`] and [`MediaSession`]s.
//!
//! * **Signalling task**: owns the endpoint, one UDP socket and a TCP
//!   listener for SIP (one task per TCP connection frames messages by
//!   Content-Length), the command channel, and a sleep until the endpoint's
//!   next deadline.
//! * **Media**: each answered call gets an RTP/RTCP socket pair (even/odd
//!   ports) from the configured range and one small receive task per socket
//!   that feeds packets into the call's session. **One media clock thread**
//!   ticks every session every 20 ms against an absolute schedule (pacing
//!   does not drift; there is no thread or timer per call), sends what the
//!   sessions produce and forwards their events. It is an OS thread of its
//!   own, not a tokio task, so the application's work on the runtime (web
//!   requests, database writes, recordings) cannot delay outgoing audio;
//!   [`VoiceServer::clock_stats`] says how punctual it has been.
//!
//! The application talks to calls through [`VoiceServer`] (commands) and the
//! [`ServerEvent`] receiver it gets from [`VoiceServer::start`].

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::media::session::{AudioFrame, FRAME_DURATION, MediaEvent, MediaSession, MediaStats};
use crate::media::{DtmfDigit, Pcm};
use crate::sdp::NegotiatedMedia;
use crate::sip::endpoint::{
    Binding, CallHandle, CallInfo, CommandError, DtmfSource, EndReason, Endpoint, EndpointConfig,
    Event, Transport,
};
use crate::sip::message::frame_length;

/// Server configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind SIP (UDP and TCP) on; port 0 picks a free one.
    pub sip_bind: SocketAddr,
    /// Also listen on TCP.
    pub tcp: bool,
    /// IP for RTP sockets (and advertised in SDP).
    pub rtp_ip: IpAddr,
    /// RTP port range (even ports used for RTP, the next odd for RTCP).
    pub rtp_ports: Range<u16>,
    /// The endpoint's settings; `local_addr` is replaced by the bound address.
    pub endpoint: EndpointConfig,
}

impl ServerConfig {
    /// Loopback defaults: SIP on an ephemeral port, RTP from 20000–29999.
    pub fn local(sip_bind: SocketAddr) -> Self {
        Self {
            sip_bind,
            tcp: true,
            rtp_ip: sip_bind.ip(),
            rtp_ports: 20_000..30_000,
            endpoint: EndpointConfig::new(sip_bind),
        }
    }
}

/// What the application hears about calls and registrations.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// An inbound call: decide with ring/answer/reject.
    CallOffered {
        /// The call.
        call: CallHandle,
        /// Caller, callee.
        info: Box<CallInfo>,
    },
    /// Media negotiated or changed (hold state included).
    MediaUpdated {
        /// The call.
        call: CallHandle,
        /// The agreed media.
        media: NegotiatedMedia,
        /// Whether the call is on hold.
        held: bool,
    },
    /// The caller acknowledged our answer: the call is up.
    CallEstablished {
        /// The call.
        call: CallHandle,
    },
    /// A DTMF key (SIP INFO or RFC 4733).
    Dtmf {
        /// The call.
        call: CallHandle,
        /// The key.
        digit: DtmfDigit,
        /// How it came.
        source: DtmfSource,
    },
    /// 20 ms of decoded caller audio (only after [`VoiceServer::receive_audio`]).
    Audio {
        /// The call.
        call: CallHandle,
        /// The frame.
        frame: AudioFrame,
    },
    /// Everything queued with [`VoiceServer::play`] has been sent.
    PlayoutFinished {
        /// The call.
        call: CallHandle,
    },
    /// The call is over.
    CallEnded {
        /// The call.
        call: CallHandle,
        /// Why.
        reason: EndReason,
        /// Final media statistics, if media ran.
        stats: Option<MediaStats>,
    },
    /// A device registered.
    Registered {
        /// Address of record.
        aor: String,
        /// The binding.
        binding: Binding,
    },
    /// A registration ended.
    Unregistered {
        /// Address of record.
        aor: String,
        /// Contact removed.
        contact: String,
    },
    /// A command failed (unknown call, wrong state, no RTP port).
    CommandFailed {
        /// The call.
        call: CallHandle,
        /// Why.
        error: String,
    },
}

enum Command {
    Ring(CallHandle),
    Progress(CallHandle),
    Answer(CallHandle),
    Reject(CallHandle, u16),
    Hangup(CallHandle),
    Hold(CallHandle, bool),
    Stats(CallHandle, oneshot::Sender<Option<MediaStats>>),
}

/// The server is gone (its tasks stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("voice server stopped")]
pub struct ServerClosed;

struct MediaCall {
    session: MediaSession,
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    audio: bool,
    tasks: Vec<JoinHandle<()>>,
    port: u16,
}

type MediaMap = Arc<Mutex<HashMap<CallHandle, MediaCall>>>;

fn lock(m: &MediaMap) -> MutexGuard<'_, HashMap<CallHandle, MediaCall>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Handle to a running voice server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct VoiceServer {
    commands: mpsc::UnboundedSender<Command>,
    media: MediaMap,
    sip_addr: SocketAddr,
    tasks: Arc<Vec<JoinHandle<()>>>,
    clock: Arc<ClockCounters>,
}

/// How punctual the media clock has been since the server started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClockStats {
    /// 20 ms ticks run.
    pub ticks: u64,
    /// Ticks that started more than 5 ms after their slot.
    pub late_5ms: u64,
    /// Ticks that started more than 20 ms (a whole frame) after their slot.
    pub late_20ms: u64,
    /// The latest start seen, in microseconds after its slot.
    pub max_late_us: u64,
    /// Time spent ticking sessions and sending, in microseconds (CPU the
    /// media plane needs: divide by ticks for the cost of one tick).
    pub busy_us: u64,
}

#[derive(Debug, Default)]
struct ClockCounters {
    ticks: AtomicU64,
    late_5ms: AtomicU64,
    late_20ms: AtomicU64,
    max_late_us: AtomicU64,
    busy_us: AtomicU64,
    stop: AtomicBool,
}

impl ClockCounters {
    fn record(&self, late: Duration, busy: Duration) {
        self.ticks.fetch_add(1, Ordering::Relaxed);
        if late > Duration::from_millis(5) {
            self.late_5ms.fetch_add(1, Ordering::Relaxed);
        }
        if late > FRAME_DURATION {
            self.late_20ms.fetch_add(1, Ordering::Relaxed);
        }
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        self.max_late_us.fetch_max(us, Ordering::Relaxed);
        self.busy_us.fetch_add(
            u64::try_from(busy.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn snapshot(&self) -> ClockStats {
        ClockStats {
            ticks: self.ticks.load(Ordering::Relaxed),
            late_5ms: self.late_5ms.load(Ordering::Relaxed),
            late_20ms: self.late_20ms.load(Ordering::Relaxed),
            max_late_us: self.max_late_us.load(Ordering::Relaxed),
            busy_us: self.busy_us.load(Ordering::Relaxed),
        }
    }
}

impl std::fmt::Debug for MediaCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaCall")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

/// Receive buffer for the SIP socket: bursts (a trunk re-sending after an
/// outage, hundreds of BYEs at the end of a test) must not overflow the
/// kernel's default of ~200 KB, which holds only ~100 small datagrams.
const SIP_RECV_BUFFER: usize = 4 << 20;

/// Binds a non-blocking UDP socket with a larger receive buffer.
fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> io::Result<UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // The kernel caps this at net.core.rmem_max; a smaller buffer is not an error.
    if let Err(e) = s.set_recv_buffer_size(recv_buffer) {
        tracing::debug!(error = %e, "could not enlarge the SIP receive buffer");
    }
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    UdpSocket::from_std(s.into())
}

fn ntp_now() -> u64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() + 2_208_988_800;
    (secs << 32) | ((u64::from(d.subsec_nanos()) << 32) / 1_000_000_000)
}

impl VoiceServer {
    /// Binds the sockets and starts the tasks.
    pub async fn start(
        mut cfg: ServerConfig,
    ) -> io::Result<(Self, mpsc::UnboundedReceiver<ServerEvent>)> {
        let udp = Arc::new(bind_udp(cfg.sip_bind, SIP_RECV_BUFFER)?);
        let sip_addr = udp.local_addr()?;
        let tcp = if cfg.tcp {
            Some(TcpListener::bind(sip_addr).await?)
        } else {
            None
        };
        cfg.endpoint.local_addr = sip_addr;
        if cfg.endpoint.domain.is_empty() {
            cfg.endpoint.domain = sip_addr.ip().to_string();
        }
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (tcp_in_tx, tcp_in_rx) = mpsc::unbounded_channel();
        let media: MediaMap = Arc::new(Mutex::new(HashMap::new()));
        let conns: Conns = Arc::new(Mutex::new(HashMap::new()));
        let mut tasks = Vec::new();
        if let Some(listener) = tcp {
            tasks.push(tokio::spawn(accept_loop(
                listener,
                tcp_in_tx,
                conns.clone(),
            )));
        }
        let ports = cfg
            .rtp_ports
            .clone()
            .filter(|p| p % 2 == 0)
            .collect::<VecDeque<u16>>();
        let sig = Signalling {
            endpoint: Endpoint::new(cfg.endpoint.clone(), Instant::now()),
            udp,
            conns,
            media: media.clone(),
            events: ev_tx.clone(),
            free_ports: ports,
            rtp_ip: cfg.rtp_ip,
        };
        tasks.push(tokio::spawn(sig.run(cmd_rx, tcp_in_rx)));
        let clock = Arc::new(ClockCounters::default());
        {
            let (media, clock) = (Arc::downgrade(&media), clock.clone());
            std::thread::Builder::new()
                .name("media-clock".into())
                .spawn(move || media_clock(media, ev_tx, clock))?;
        }
        Ok((
            Self {
                commands: cmd_tx,
                media,
                sip_addr,
                tasks: Arc::new(tasks),
                clock,
            },
            ev_rx,
        ))
    }

    /// The bound SIP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.sip_addr
    }

    fn send(&self, c: Command) -> Result<(), ServerClosed> {
        self.commands.send(c).map_err(|_| ServerClosed)
    }

    /// Sends 180 Ringing.
    pub fn ring(&self, call: CallHandle) -> Result<(), ServerClosed> {
        self.send(Command::Ring(call))
    }

    /// Sends 183 Session Progress with SDP and starts media before the
    /// answer (early media: play a prompt or ringback without answering).
    pub fn progress(&self, call: CallHandle) -> Result<(), ServerClosed> {
        self.send(Command::Progress(call))
    }

    /// Answers (allocates RTP ports unless early media has them, sends 200 OK with SDP).
    pub fn answer(&self, call: CallHandle) -> Result<(), ServerClosed> {
        self.send(Command::Answer(call))
    }

    /// Rejects an offered call.
    pub fn reject(&self, call: CallHandle, status: u16) -> Result<(), ServerClosed> {
        self.send(Command::Reject(call, status))
    }

    /// Hangs up (BYE, or 480 before the answer).
    pub fn hangup(&self, call: CallHandle) -> Result<(), ServerClosed> {
        self.send(Command::Hangup(call))
    }

    /// Holds (`true`) or resumes (`false`) the caller by re-INVITE.
    pub fn hold(&self, call: CallHandle, on: bool) -> Result<(), ServerClosed> {
        self.send(Command::Hold(call, on))
    }

    /// Queues 8 kHz linear audio to play into the call (shared, not
    /// copied). Returns false if the call has no media (not answered, or
    /// ended).
    pub fn play(&self, call: CallHandle, pcm: Pcm) -> bool {
        lock(&self.media)
            .get_mut(&call)
            .map(|m| m.session.play(pcm))
            .is_some()
    }

    /// Drops queued audio (barge-in).
    pub fn stop_playing(&self, call: CallHandle) -> bool {
        lock(&self.media)
            .get_mut(&call)
            .map(|m| m.session.stop_playing())
            .is_some()
    }

    /// Sends an RFC 4733 key press into the call.
    pub fn send_dtmf(&self, call: CallHandle, digit: DtmfDigit) -> bool {
        lock(&self.media)
            .get_mut(&call)
            .is_some_and(|m| m.session.send_dtmf(digit, 100))
    }

    /// Turns delivery of decoded caller audio ([`ServerEvent::Audio`]) on or off.
    pub fn receive_audio(&self, call: CallHandle, on: bool) -> bool {
        lock(&self.media)
            .get_mut(&call)
            .map(|m| m.audio = on)
            .is_some()
    }

    /// Media statistics of a live call.
    pub async fn stats(&self, call: CallHandle) -> Option<MediaStats> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Stats(call, tx)).ok()?;
        rx.await.ok().flatten()
    }

    /// How punctual the media clock has been.
    pub fn clock_stats(&self) -> ClockStats {
        self.clock.snapshot()
    }

    /// Number of calls with media running.
    pub fn media_calls(&self) -> usize {
        lock(&self.media).len()
    }

    /// Stops every task and the media clock (sockets close when the tasks end).
    pub fn shutdown(&self) {
        self.clock.stop.store(true, Ordering::Relaxed);
        for t in self.tasks.iter() {
            t.abort();
        }
        for (_, m) in lock(&self.media).drain() {
            for t in m.tasks {
                t.abort();
            }
        }
    }
}

type Conns = Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>>;

async fn accept_loop(
    listener: TcpListener,
    inbound: mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>,
    conns: Conns,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let (tx, rx) = mpsc::unbounded_channel();
        conns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(peer, tx);
        tokio::spawn(tcp_conn(stream, peer, inbound.clone(), rx, conns.clone()));
    }
}

async fn tcp_conn(
    stream: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<(SocketAddr, Vec<u8>)>,
    mut outbound: mpsc::UnboundedReceiver<Vec<u8>>,
    conns: Conns,
) {
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        while let Some(b) = outbound.recv().await {
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
    });
    let mut buf = Vec::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    'read: loop {
        match rd.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        loop {
            match frame_length(&buf) {
                Ok(Some(len)) => {
                    let msg: Vec<u8> = buf.drain(..len).collect();
                    if inbound.send((peer, msg)).is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(_) => break 'read, // unframeable stream: drop the connection
            }
        }
    }
    writer.abort();
    conns
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(&peer);
}

struct Signalling {
    endpoint: Endpoint,
    udp: Arc<UdpSocket>,
    conns: Conns,
    media: MediaMap,
    events: mpsc::UnboundedSender<ServerEvent>,
    /// Free even ports, least recently used first: a port freed by a call
    /// that just ended goes to the back, so its sockets are long closed and
    /// its stray packets long gone before another call gets it.
    free_ports: VecDeque<u16>,
    rtp_ip: IpAddr,
}

impl Signalling {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut tcp_in: mpsc::UnboundedReceiver<(SocketAddr, Vec<u8>)>,
    ) {
        let mut buf = vec![0u8; 65_535];
        let mut answering: HashMap<CallHandle, (u16, Arc<UdpSocket>, Arc<UdpSocket>)> =
            HashMap::new();
        loop {
            let deadline = self.endpoint.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = self.udp.recv_from(&mut buf) => {
                    if let Ok((n, from)) = r {
                        self.endpoint.handle_input(Instant::now(), Transport::Udp, from, &buf[..n]);
                    }
                }
                Some((from, msg)) = tcp_in.recv() => {
                    self.endpoint.handle_input(Instant::now(), Transport::Tcp, from, &msg);
                }
                c = commands.recv() => {
                    let Some(c) = c else { return };
                    self.command(c, &mut answering).await;
                }
                () = sleep => {
                    self.endpoint.handle_timeout(Instant::now());
                }
            }
            self.flush(&mut answering).await;
        }
    }

    /// Returns a port to the back of the pool (once).
    fn release(&mut self, port: u16) {
        if !self.free_ports.contains(&port) {
            self.free_ports.push_back(port);
        }
    }

    async fn allocate(&mut self) -> io::Result<(u16, Arc<UdpSocket>, Arc<UdpSocket>)> {
        for _ in 0..32 {
            let Some(port) = self.free_ports.pop_front() else {
                break;
            };
            let rtp = UdpSocket::bind(SocketAddr::new(self.rtp_ip, port)).await;
            let rtcp = UdpSocket::bind(SocketAddr::new(self.rtp_ip, port + 1)).await;
            if let (Ok(rtp), Ok(rtcp)) = (rtp, rtcp) {
                return Ok((port, Arc::new(rtp), Arc::new(rtcp)));
            }
            // Taken by another program for now: try it again much later.
            self.free_ports.push_back(port);
        }
        Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            "no free RTP port pair",
        ))
    }

    async fn command(
        &mut self,
        c: Command,
        answering: &mut HashMap<CallHandle, (u16, Arc<UdpSocket>, Arc<UdpSocket>)>,
    ) {
        let now = Instant::now();
        let (call, result): (CallHandle, Result<(), String>) = match c {
            Command::Ring(call) => (
                call,
                self.endpoint.ring(now, call).map_err(|e| e.to_string()),
            ),
            Command::Reject(call, s) => (
                call,
                self.endpoint
                    .reject(now, call, s)
                    .map_err(|e| e.to_string()),
            ),
            Command::Hangup(call) => (
                call,
                self.endpoint.hangup(now, call).map_err(|e| e.to_string()),
            ),
            Command::Hold(call, on) => (
                call,
                self.endpoint.hold(now, call, on).map_err(|e| e.to_string()),
            ),
            Command::Stats(call, reply) => {
                let _ = reply.send(lock(&self.media).get(&call).map(|m| m.session.stats()));
                return;
            }
            Command::Answer(call) if lock(&self.media).contains_key(&call) => {
                // Early media already runs: answer on the same RTP port.
                let port = lock(&self.media).get(&call).map_or(0, |m| m.port);
                let local = SocketAddr::new(self.rtp_ip, port);
                (
                    call,
                    self.endpoint
                        .answer(now, call, local)
                        .map_err(|e| e.to_string()),
                )
            }
            Command::Progress(call) | Command::Answer(call) => match self.allocate().await {
                Ok((port, rtp, rtcp)) => {
                    let local = SocketAddr::new(self.rtp_ip, port);
                    answering.insert(call, (port, rtp, rtcp));
                    let result = if matches!(c, Command::Progress(_)) {
                        self.endpoint
                            .progress(Instant::now(), call, local)
                            .map(|_| ())
                    } else {
                        self.endpoint.answer(Instant::now(), call, local)
                    };
                    match result {
                        Ok(()) => (call, Ok(())),
                        Err(e) => {
                            if let Some((port, ..)) = answering.remove(&call) {
                                self.release(port);
                            }
                            if let CommandError::NotAcceptable(_) = e {
                                let _ = self.endpoint.reject(Instant::now(), call, 488);
                            }
                            (call, Err(e.to_string()))
                        }
                    }
                }
                Err(e) => {
                    let _ = self.endpoint.reject(Instant::now(), call, 503);
                    (call, Err(e.to_string()))
                }
            },
        };
        if let Err(error) = result {
            let _ = self.events.send(ServerEvent::CommandFailed { call, error });
        }
    }

    async fn flush(
        &mut self,
        answering: &mut HashMap<CallHandle, (u16, Arc<UdpSocket>, Arc<UdpSocket>)>,
    ) {
        while let Some(t) = self.endpoint.poll_transmit() {
            match t.transport {
                Transport::Udp => {
                    if let Err(e) = self.udp.send_to(&t.data, t.to).await {
                        tracing::debug!(to = %t.to, error = %e, "SIP send failed");
                    }
                }
                Transport::Tcp | Transport::Tls => {
                    let conn = self
                        .conns
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .get(&t.to)
                        .cloned();
                    match conn {
                        Some(c) => {
                            let _ = c.send(t.data);
                        }
                        None => tracing::debug!(to = %t.to, "no TCP connection for response"),
                    }
                }
            }
        }
        while let Some(ev) = self.endpoint.poll_event() {
            let out = match ev {
                Event::CallOffered { call, info } => ServerEvent::CallOffered { call, info },
                Event::MediaUpdated { call, media, held } => {
                    self.media_updated(call, media, answering);
                    ServerEvent::MediaUpdated { call, media, held }
                }
                Event::CallEstablished { call } => ServerEvent::CallEstablished { call },
                Event::Dtmf {
                    call,
                    digit,
                    source,
                } => ServerEvent::Dtmf {
                    call,
                    digit,
                    source,
                },
                Event::CallEnded { call, reason } => {
                    let stats = self.teardown(call, answering);
                    ServerEvent::CallEnded {
                        call,
                        reason,
                        stats,
                    }
                }
                Event::Registered { aor, binding } => ServerEvent::Registered { aor, binding },
                Event::Unregistered { aor, contact } => ServerEvent::Unregistered { aor, contact },
            };
            let _ = self.events.send(out);
        }
    }

    fn media_updated(
        &mut self,
        call: CallHandle,
        media: NegotiatedMedia,
        answering: &mut HashMap<CallHandle, (u16, Arc<UdpSocket>, Arc<UdpSocket>)>,
    ) {
        let mut map = lock(&self.media);
        if let Some(m) = map.get_mut(&call) {
            m.session.update(&media);
            return;
        }
        let Some((port, rtp, rtcp)) = answering.remove(&call) else {
            return;
        };
        let session = MediaSession::new(
            Instant::now(),
            &media,
            rand::random(),
            ntp_now(),
            format!("switchboard@{}", self.rtp_ip),
        );
        let tasks = vec![
            tokio::spawn(recv_loop(call, rtp.clone(), self.media.clone(), false)),
            tokio::spawn(recv_loop(call, rtcp.clone(), self.media.clone(), true)),
        ];
        map.insert(
            call,
            MediaCall {
                session,
                rtp,
                rtcp,
                audio: false,
                tasks,
                port,
            },
        );
    }

    fn teardown(
        &mut self,
        call: CallHandle,
        answering: &mut HashMap<CallHandle, (u16, Arc<UdpSocket>, Arc<UdpSocket>)>,
    ) -> Option<MediaStats> {
        if let Some((port, ..)) = answering.remove(&call) {
            self.release(port);
        }
        let m = lock(&self.media).remove(&call)?;
        for t in m.tasks {
            t.abort();
        }
        self.release(m.port);
        Some(m.session.stats())
    }
}

async fn recv_loop(call: CallHandle, socket: Arc<UdpSocket>, media: MediaMap, rtcp: bool) {
    let mut buf = [0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else {
            // ICMP port unreachable surfaces as an error on some systems: keep going.
            tokio::task::yield_now().await;
            continue;
        };
        let now = Instant::now();
        let mut map = lock(&media);
        let Some(m) = map.get_mut(&call) else {
            return;
        };
        if rtcp {
            m.session.handle_rtcp(now, from, &buf[..n]);
        } else {
            m.session.handle_rtp(now, from, &buf[..n]);
        }
    }
}

/// The one media clock: every 20 ms, tick every call's session. Runs on its
/// own thread until the server shuts down or every handle to it is gone.
fn media_clock(
    media: Weak<Mutex<HashMap<CallHandle, MediaCall>>>,
    events: mpsc::UnboundedSender<ServerEvent>,
    clock: Arc<ClockCounters>,
) {
    let mut next = Instant::now() + FRAME_DURATION;
    let mut out = Vec::new();
    while !clock.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let started = Instant::now();
        let late = started.saturating_duration_since(next);
        // Far behind (the machine stalled): start again from now rather
        // than bursting many frames at once.
        next = if late > FRAME_DURATION * 5 {
            started + FRAME_DURATION
        } else {
            next + FRAME_DURATION
        };
        let Some(media) = media.upgrade() else { return };
        let mut map = lock(&media);
        for (call, m) in map.iter_mut() {
            out.clear();
            m.session.tick(started, &mut out);
            for t in &out {
                let sock = if t.rtcp { &m.rtcp } else { &m.rtp };
                let _ = sock.try_send_to(&t.data, t.to);
            }
            while let Some(ev) = m.session.poll_event() {
                let e = match ev {
                    MediaEvent::Audio(frame) if m.audio => {
                        ServerEvent::Audio { call: *call, frame }
                    }
                    MediaEvent::Dtmf(digit) => ServerEvent::Dtmf {
                        call: *call,
                        digit,
                        source: DtmfSource::Rtp,
                    },
                    MediaEvent::PlayoutFinished => ServerEvent::PlayoutFinished { call: *call },
                    _ => continue,
                };
                let _ = events.send(e);
            }
        }
        drop(map);
        drop(media);
        clock.record(late, started.elapsed());
    }
}
