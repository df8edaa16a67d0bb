//! Telephony glue: answers SIP calls with [`switchboard_voice`], runs them
//! through the IVR, and puts every call on the bus as a voice conversation.
//!
//! Telephony runs only when `sip_listen` is set. Each call gets a task of
//! its own, fed the server's events for that call by one dispatcher task.
//! The call task:
//!
//! * opens a [`Channel::Voice`] conversation (the contact's phone is the
//!   caller's SIP user when it parses as an E.164 number) with
//!   `call_started`, then answers and appends `call_answered`;
//! * drives the [`Ivr`] (flows from `ivr_file`, else the built-in menu),
//!   synthesising prompts with [`Tts`] (the Piper voice when
//!   switchboard-models has `piper-joe-medium` prepared, else espeak-ng) and appending `ivr_step` and
//!   `dtmf_received`; a skill step appends `handoff_requested` so the router
//!   queues the call, and the caller then waits (hold prompt every
//!   `hold_every_secs`, silence between) until hang-up;
//! * records the whole call as a stereo WAV (caller left, Switchboard right)
//!   into `<data_dir>/recordings/<id>.wav`, and a voicemail as a mono WAV;
//!   both go into the `recordings` table with a `recording_available` event,
//!   and a voicemail also adds a customer message ("Voicemail, N s") so it
//!   shows in the inbox;
//! * appends `call_ended` with the reason and the talk time.
//!
//! The same SIP listener is the registrar for agents' phones: REGISTER is
//! checked by digest against the SIP accounts in [`Phones`] (realm
//! `sip_domain`), and each binding is written to `sip_registrations` so every
//! node knows where an agent's phone is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use switchboard_bus::{
    Attachment, Bus, Channel, Contact, ConversationId, ConversationStatus, Disposition, Event,
    HandoffContext, HandoffReason, Participant, PhoneNumber, Skill,
};
use switchboard_models::ModelId;
use switchboard_voice::ivr::{Action, FlowSet, Ivr};
use switchboard_voice::media::Pcm;
use switchboard_voice::piper::Piper;
use switchboard_voice::recording::{CallRecorder, MessageRecorder, beep};
use switchboard_voice::server::{ServerConfig, ServerEvent, VoiceServer};
use switchboard_voice::sip::endpoint::{CallHandle, CallInfo, EndReason};
use switchboard_voice::tts::Tts;
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::db::{Db, DbError, ms};
use crate::phones::{Phones, Registration};
use crate::writer::{AppendError, Writer};

/// Why telephony could not start.
#[derive(Debug, thiserror::Error)]
#[error("telephony: {0}")]
pub struct VoiceError(pub String);

/// Everything a call task needs.
struct Shared {
    db: Db,
    writer: Writer,
    server: VoiceServer,
    flows: FlowSet,
    tts: Tts,
    recordings: PathBuf,
    /// Registrations to store, in the order the registrar made them.
    registrations: mpsc::UnboundedSender<ServerEvent>,
}

/// Starts telephony when configured; `None` when `sip_listen` is unset.
pub async fn start(
    config: &Config,
    db: Db,
    writer: Writer,
    bus: Arc<dyn Bus>,
    phones: Phones,
    node: String,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, VoiceError> {
    let Some(listen) = config.sip_listen else {
        return Ok(None);
    };
    let _ = bus; // events reach the bus through the writer's publisher
    let flows = match &config.ivr_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| VoiceError(format!("{}: {e}", path.display())))?;
            FlowSet::from_toml(&text).map_err(|e| VoiceError(format!("{}: {e}", path.display())))?
        }
        None => FlowSet::builtin(),
    };
    let recordings = config.data_dir.join("recordings");
    std::fs::create_dir_all(&recordings)
        .map_err(|e| VoiceError(format!("{}: {e}", recordings.display())))?;
    let mut tts = Tts::new(config.data_dir.join("prompt-cache"));
    if let Some(piper) = piper_voice(config).await {
        tts = tts.with_piper(piper);
    }
    tracing::info!(
        engine = tts.engine(),
        "telephony: prompts synthesised with {}",
        tts.engine()
    );
    if listen.ip().is_unspecified() {
        tracing::warn!(%listen, "telephony: sip_listen has no specific address; SDP will advertise it as the media address, so callers elsewhere cannot reach RTP. Listen on the host's reachable address.");
    }
    // Agents' phones register against the SIP accounts of active users.
    match phones.reload(&db).await {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            accounts = n,
            realm = phones.realm(),
            "telephony: SIP accounts set for another realm (sip_domain changed) cannot register; set their secrets again"
        ),
        Err(e) => return Err(VoiceError(format!("SIP accounts: {e}"))),
    }
    if let Err(e) = db.clear_node_registrations(&node).await {
        tracing::warn!(error = %e, "telephony: stale registrations of this node not cleared");
    }
    // RTP/RTCP port pairs come from `rtp_ports` on the SIP address.
    let mut server_config = ServerConfig::local(listen);
    server_config.rtp_ports = config.rtp_ports.to_range();
    server_config.endpoint.domain = phones.realm().to_string();
    server_config.endpoint.auth_secret = crate::auth::new_token();
    server_config.endpoint.credentials = Some(Arc::new(phones.clone()));
    let (server, mut events) = VoiceServer::start(server_config)
        .await
        .map_err(|e| VoiceError(format!("SIP on {listen}: {e}")))?;
    tracing::info!(
        sip = %server.local_addr(),
        rtp_ports = %String::from(config.rtp_ports),
        max_calls = config.rtp_ports.calls(),
        realm = phones.realm(),
        phones = phones.len(),
        "telephony: answering SIP calls; agents' phones register here"
    );
    let registrations = spawn_registration_writer(db.clone(), node, listen, shutdown.clone());
    {
        // Accounts changed through other nodes reach this registrar within seconds.
        let (phones, db, mut shutdown) = (phones.clone(), db.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tick.tick() => {
                        if let Err(e) = phones.reload(&db).await {
                            tracing::warn!(error = %e, "telephony: SIP accounts not reloaded");
                        }
                    }
                }
            }
        });
    }
    // Synthesise every prompt ahead of the first call.
    {
        let tts = tts.clone();
        let prompts: Vec<_> = flows.prompts().into_iter().cloned().collect();
        tokio::spawn(async move {
            for p in prompts {
                if let Err(e) = tts.render(&p).await {
                    tracing::warn!(error = %e, "telephony: prompt not prepared");
                }
            }
        });
    }
    let shared = Arc::new(Shared {
        db,
        writer,
        server: server.clone(),
        flows,
        tts,
        recordings,
        registrations,
    });
    Ok(Some(tokio::spawn(async move {
        let mut calls: HashMap<CallHandle, mpsc::UnboundedSender<Stamped>> = HashMap::new();
        let mut clock_tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = clock_tick.tick() => export_clock_stats(&server),
                ev = events.recv() => {
                    let Some(ev) = ev else { break };
                    dispatch(&shared, &mut calls, ev);
                }
            }
        }
        for call in calls.keys() {
            let _ = server.hangup(*call);
        }
        server.shutdown();
    })))
}

/// The Piper voice when switchboard-models has it prepared; loaded once per
/// process (ONNX Runtime is a process-wide library).
async fn piper_voice(config: &Config) -> Option<Arc<Piper>> {
    static PIPER: tokio::sync::OnceCell<Option<Arc<Piper>>> = tokio::sync::OnceCell::const_new();
    let dir = crate::knowledge::models(config).dir(ModelId::PiperJoeMedium);
    PIPER
        .get_or_init(|| async move {
            let dir = match dir {
                Ok(d) => d,
                Err(e) => {
                    tracing::info!(reason = %e, "telephony: no Piper voice; prompts use espeak-ng");
                    return None;
                }
            };
            match tokio::task::spawn_blocking(move || Piper::load(&dir)).await {
                Ok(Ok(p)) => Some(Arc::new(p)),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "telephony: Piper voice not loaded; prompts use espeak-ng");
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "telephony: Piper voice not loaded");
                    None
                }
            }
        })
        .await
        .clone()
}

/// A server event and when the dispatcher received it.
type Stamped = (tokio::time::Instant, ServerEvent);

fn event_call(ev: &ServerEvent) -> Option<CallHandle> {
    match ev {
        ServerEvent::CallOffered { call, .. }
        | ServerEvent::MediaUpdated { call, .. }
        | ServerEvent::CallEstablished { call }
        | ServerEvent::Dtmf { call, .. }
        | ServerEvent::Audio { call, .. }
        | ServerEvent::PlayoutFinished { call }
        | ServerEvent::CallEnded { call, .. }
        | ServerEvent::CommandFailed { call, .. } => Some(*call),
        ServerEvent::Registered { .. } | ServerEvent::Unregistered { .. } => None,
    }
}

fn dispatch(
    shared: &Arc<Shared>,
    calls: &mut HashMap<CallHandle, mpsc::UnboundedSender<Stamped>>,
    ev: ServerEvent,
) {
    if let ServerEvent::CallOffered { call, info } = ev {
        let (tx, rx) = mpsc::unbounded_channel();
        calls.insert(call, tx);
        metrics::counter!("switchboard_voice_calls_total").increment(1);
        metrics::gauge!("switchboard_voice_active_calls").set(calls.len() as f64);
        let shared = shared.clone();
        tokio::spawn(async move {
            let sip_call_id = info.sip_call_id.clone();
            if let Err(e) = run_call(&shared, call, *info, rx).await {
                metrics::counter!("switchboard_voice_calls_failed_total").increment(1);
                tracing::warn!(call_id = %sip_call_id, error = %e, "telephony: call handling failed");
                // Whichever fits the call's state takes effect; the other fails harmlessly.
                let _ = shared.server.reject(call, 503);
                let _ = shared.server.hangup(call);
            }
        });
        return;
    }
    let Some(call) = event_call(&ev) else {
        let _ = shared.registrations.send(ev);
        return;
    };
    let ended = matches!(ev, ServerEvent::CallEnded { .. });
    if let ServerEvent::CallEnded {
        stats: Some(stats), ..
    } = &ev
    {
        // The call's media quality, summed over calls: what a load run or an
        // operator reads to see loss and late packets on the caller's stream.
        metrics::counter!("switchboard_voice_rtp_sent_total").increment(stats.packets_sent);
        metrics::counter!("switchboard_voice_rtp_received_total").increment(stats.packets_received);
        metrics::counter!("switchboard_voice_rtp_lost_total")
            .increment(stats.packets_lost.max(0) as u64);
        metrics::counter!("switchboard_voice_rtp_late_total").increment(stats.late);
        metrics::counter!("switchboard_voice_rtp_concealed_total").increment(stats.concealed);
    }
    if let Some(tx) = calls.get(&call) {
        let _ = tx.send((tokio::time::Instant::now(), ev));
    }
    if ended {
        calls.remove(&call);
        metrics::gauge!("switchboard_voice_active_calls").set(calls.len() as f64);
    }
}

/// The media clock's punctuality on `/metrics`: how often outgoing audio
/// started late, and the CPU time the media plane takes.
fn export_clock_stats(server: &VoiceServer) {
    let c = server.clock_stats();
    metrics::counter!("switchboard_voice_clock_ticks_total").absolute(c.ticks);
    metrics::counter!("switchboard_voice_clock_late_ticks_total", "over" => "5ms")
        .absolute(c.late_5ms);
    metrics::counter!("switchboard_voice_clock_late_ticks_total", "over" => "20ms")
        .absolute(c.late_20ms);
    metrics::gauge!("switchboard_voice_clock_max_late_seconds").set(c.max_late_us as f64 / 1e6);
    metrics::counter!("switchboard_voice_clock_busy_microseconds_total").absolute(c.busy_us);
}

/// Stores the registrar's bindings in order, so a phone's register,
/// refresh and unregister land as they happened. A failed write is retried
/// (the binding is the only place a phone's address is known).
fn spawn_registration_writer(
    db: Db,
    node: String,
    listen: std::net::SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> mpsc::UnboundedSender<ServerEvent> {
    let (tx, mut rx) = mpsc::unbounded_channel::<ServerEvent>();
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = shutdown.changed() => break,
                ev = rx.recv() => match ev { Some(ev) => ev, None => break },
            };
            let mut delay = Duration::from_millis(100);
            loop {
                let result = match &ev {
                    ServerEvent::Registered { aor, binding } => {
                        let left = binding
                            .expires_at
                            .saturating_duration_since(std::time::Instant::now());
                        let now = Utc::now();
                        let r = Registration {
                            aor: aor.clone(),
                            contact: binding.contact.clone(),
                            username: aor.split('@').next().unwrap_or(aor).to_string(),
                            source: binding.source.to_string(),
                            transport: format!("{:?}", binding.transport).to_ascii_lowercase(),
                            node: node.clone(),
                            registered_at: now,
                            expires_at: now + chrono::Duration::from_std(left).unwrap_or_default(),
                        };
                        tracing::info!(aor = %r.aor, contact = %r.contact, source = %r.source, registrar = %listen, "telephony: phone registered");
                        db.put_registration(&r).await
                    }
                    ServerEvent::Unregistered { aor, contact } => {
                        tracing::info!(%aor, %contact, "telephony: phone unregistered");
                        db.remove_registration(aor, contact).await
                    }
                    _ => Ok(()),
                };
                match result {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?delay, "telephony: registration not stored; retrying");
                        tokio::select! {
                            _ = shutdown.changed() => return,
                            _ = tokio::time::sleep(delay) => {}
                        }
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        // This node's registrar is going away with its bindings.
        if let Err(e) = db.clear_node_registrations(&node).await {
            tracing::warn!(error = %e, "telephony: registrations of this node not cleared");
        }
    });
    tx
}

/// A call could not be handled.
#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error(transparent)]
    Append(#[from] AppendError),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Recording(#[from] switchboard_voice::recording::RecordingError),
    #[error("voice server stopped")]
    Closed,
}

impl From<switchboard_voice::server::ServerClosed> for CallError {
    fn from(_: switchboard_voice::server::ServerClosed) -> Self {
        Self::Closed
    }
}

/// The caller as shown: E.164 when the SIP user parses as a number, else the user.
fn caller_of(info: &CallInfo) -> (String, Option<PhoneNumber>) {
    let user = info
        .from
        .user
        .clone()
        .unwrap_or_else(|| info.from.host.clone());
    match PhoneNumber::parse(&user) {
        Ok(p) => (p.as_str().to_string(), Some(p)),
        Err(_) => (user, None),
    }
}

/// The number dialled: the user part of the Request-URI (else of To).
fn called_of(info: &CallInfo) -> String {
    let from_ruri = info
        .request_uri
        .split_once(':')
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.split_once('@'))
        .map(|(user, _)| user.to_string());
    from_ruri
        .or_else(|| info.to.user.clone())
        .unwrap_or_default()
}

fn end_reason(r: &EndReason) -> &'static str {
    match r {
        EndReason::RemoteHangup => "caller_hung_up",
        EndReason::LocalHangup => "we_hung_up",
        EndReason::Cancelled => "cancelled",
        EndReason::Rejected(_) => "rejected",
        EndReason::AckTimeout | EndReason::Timeout => "timeout",
    }
}

/// A recording being written.
struct Recording<R> {
    id: String,
    started_at: DateTime<Utc>,
    clock: tokio::time::Instant,
    path: PathBuf,
    rec: R,
}

/// One call's state in its task.
struct CallRun<'a> {
    shared: &'a Shared,
    call: CallHandle,
    conversation: ConversationId,
    sip_call_id: String,
    contact: Contact,
    caller: String,
    called: String,
    seq: u32,
    whole: Option<Recording<CallRecorder>>,
    message: Option<Recording<MessageRecorder>>,
    /// A voicemail was stored: the conversation waits for an agent.
    left_voicemail: bool,
}

impl CallRun<'_> {
    /// Appends events with a per-call idempotency key.
    async fn append(&mut self, events: Vec<Event>) -> Result<(), CallError> {
        self.append_decided(move |_| events.clone()).await
    }

    /// Appends what `decide` makes of the conversation's current state, with
    /// a per-call idempotency key.
    async fn append_decided(
        &mut self,
        decide: impl Fn(&switchboard_bus::Conversation) -> Vec<Event> + Send + Sync + 'static,
    ) -> Result<(), CallError> {
        self.seq += 1;
        let key = format!("call:{}:{}", self.sip_call_id, self.seq);
        self.shared
            .writer
            .append(
                self.conversation,
                Some(key),
                Box::new(move |c| Ok(decide(c.ok_or(AppendError::NotFound)?))),
            )
            .await?;
        Ok(())
    }

    /// Appends `call_ended` and, when nobody has anything left to do with
    /// the conversation, closes it in the same commit: the caller hung up
    /// unanswered by an agent (`abandoned`, whether in the IVR or the queue)
    /// or the IVR finished the call itself (`resolved_by_bot`). A call that
    /// left a voicemail, or that an agent has, stays open for them.
    async fn end(&mut self, reason: &EndReason, talk_secs: u64) -> Result<(), CallError> {
        let ended = Event::CallEnded {
            call_id: self.sip_call_id.clone(),
            reason: end_reason(reason).to_string(),
            duration_secs: talk_secs,
        };
        let disposition = match reason {
            EndReason::LocalHangup => Disposition::ResolvedByBot,
            _ => Disposition::Abandoned,
        };
        let voicemail = self.left_voicemail;
        self.append_decided(move |c| {
            let mut events = vec![ended.clone()];
            if !voicemail && c.status == ConversationStatus::Open && c.assignee.is_none() {
                events.push(Event::ConversationClosed {
                    disposition,
                    by: Participant::System,
                });
            }
            events
        })
        .await
    }

    fn recording_path(&self, id: &str) -> PathBuf {
        self.shared.recordings.join(format!("{id}.wav"))
    }

    async fn act(&mut self, ivr: &mut Ivr) -> Result<(), CallError> {
        while let Some(action) = ivr.poll_action() {
            match action {
                Action::Step { node, detail } => {
                    self.append(vec![Event::IvrStep { node, detail }]).await?;
                }
                Action::Play(prompt) => match self.shared.tts.render(&prompt).await {
                    Ok(pcm) => self.play(pcm),
                    Err(e) => {
                        // Say nothing rather than drop the call; the flow goes on.
                        tracing::warn!(call_id = %self.sip_call_id, error = %e, "telephony: prompt unavailable");
                        self.play(Pcm::from([0; 160]));
                    }
                },
                Action::Beep => self.play(beep()),
                Action::StopPlaying => {
                    self.shared.server.stop_playing(self.call);
                    if let Some(w) = &mut self.whole {
                        w.rec.stop_played();
                    }
                }
                Action::Digits(digits) => {
                    self.append(vec![Event::DtmfReceived {
                        call_id: self.sip_call_id.clone(),
                        digits,
                    }])
                    .await?;
                }
                Action::Handoff { skill } => {
                    let skill = Skill::new(skill).ok();
                    let summary = format!(
                        "Phone call from {} to {}{}",
                        self.caller,
                        self.called,
                        skill
                            .as_ref()
                            .map(|s| format!(", chose {}", s.as_str()))
                            .unwrap_or_default()
                    );
                    self.append(vec![Event::HandoffRequested {
                        reason: HandoffReason::CustomerRequest,
                        skill,
                        context: HandoffContext {
                            summary: Some(summary),
                            ..HandoffContext::default()
                        },
                    }])
                    .await?;
                }
                Action::StartRecording => {
                    let id = uuid::Uuid::now_v7().to_string();
                    let path = self.recording_path(&id);
                    let rec = MessageRecorder::create(&path)?;
                    self.message = Some(Recording {
                        id,
                        started_at: Utc::now(),
                        clock: tokio::time::Instant::now(),
                        path,
                        rec,
                    });
                }
                Action::StopRecording => {
                    self.finish_message(tokio::time::Instant::now()).await?;
                }
                Action::Hangup => {
                    self.shared.server.hangup(self.call)?;
                }
            }
        }
        Ok(())
    }

    fn play(&mut self, pcm: Pcm) {
        if let Some(w) = &mut self.whole {
            w.rec.played(pcm.clone());
        }
        self.shared.server.play(self.call, pcm);
    }

    /// A caller frame that reached the dispatcher at `now`.
    fn audio(&mut self, pcm: &[i16], now: tokio::time::Instant) -> Result<(), CallError> {
        if let Some(w) = &mut self.whole {
            w.rec.fill_to(now.saturating_duration_since(w.clock))?;
            w.rec.caller(pcm)?;
        }
        if let Some(m) = &mut self.message {
            m.rec.fill_to(now.saturating_duration_since(m.clock))?;
            m.rec.caller(pcm)?;
        }
        Ok(())
    }

    async fn store(
        &mut self,
        id: String,
        kind: &'static str,
        started_at: DateTime<Utc>,
        path: &Path,
        duration: Duration,
    ) -> Result<(), CallError> {
        let row = RecordingRow {
            id: id.clone(),
            conversation_id: self.conversation.to_string(),
            call_id: self.sip_call_id.clone(),
            kind: kind.to_string(),
            caller: self.caller.clone(),
            called: self.called.clone(),
            agent: None,
            started_at,
            duration_ms: i64::try_from(duration.as_millis()).unwrap_or(i64::MAX),
            path: path.to_string_lossy().into_owned(),
        };
        insert_recording(&self.shared.db, &row).await?;
        let secs = duration.as_secs();
        let mut events = vec![Event::RecordingAvailable {
            recording_id: id.clone(),
            call_id: self.sip_call_id.clone(),
            kind: kind.to_string(),
            duration_secs: secs,
        }];
        if kind == "voicemail" {
            self.left_voicemail = true;
            let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            events.push(Event::MessageAdded {
                from: Participant::Customer(self.contact.id),
                text: format!("Voicemail, {secs} s"),
                attachments: vec![Attachment {
                    name: "voicemail.wav".into(),
                    content_type: "audio/wav".into(),
                    size,
                    url: format!("/api/recordings/{id}/audio"),
                }],
                client_msg_id: Some(format!("voicemail:{id}")),
            });
        }
        self.append(events).await
    }

    async fn finish_message(&mut self, at: tokio::time::Instant) -> Result<(), CallError> {
        let Some(mut m) = self.message.take() else {
            return Ok(());
        };
        m.rec.fill_to(at.saturating_duration_since(m.clock))?;
        let d = m.rec.finish()?;
        self.store(m.id, "voicemail", m.started_at, &m.path, d)
            .await
    }

    async fn finish_whole(&mut self, at: tokio::time::Instant) -> Result<(), CallError> {
        let Some(mut w) = self.whole.take() else {
            return Ok(());
        };
        w.rec.fill_to(at.saturating_duration_since(w.clock))?;
        let d = w.rec.finish()?;
        self.store(w.id, "call", w.started_at, &w.path, d).await
    }
}

async fn run_call(
    shared: &Shared,
    call: CallHandle,
    info: CallInfo,
    mut rx: mpsc::UnboundedReceiver<Stamped>,
) -> Result<(), CallError> {
    let (caller, phone) = caller_of(&info);
    let called = called_of(&info);
    let mut contact = Contact::anonymous();
    contact.phone = phone;
    contact.display_name = info.from_display.clone().filter(|d| !d.trim().is_empty());
    let mut run = CallRun {
        shared,
        call,
        conversation: ConversationId::new(),
        sip_call_id: info.sip_call_id.clone(),
        contact: contact.clone(),
        caller: caller.clone(),
        called: called.clone(),
        seq: 0,
        whole: None,
        message: None,
        left_voicemail: false,
    };
    tracing::info!(call_id = %run.sip_call_id, from = %caller, to = %called, conversation = %run.conversation, "telephony: call offered");
    let opened = vec![
        Event::ConversationOpened {
            channel: Channel::Voice,
            contact,
            subject: Some(format!("Call from {caller}")),
        },
        Event::CallStarted {
            call_id: info.sip_call_id.clone(),
            from: caller,
            to: called,
        },
    ];
    shared
        .writer
        .append(
            run.conversation,
            Some(format!("call:{}:0", info.sip_call_id)),
            Box::new(move |c| match c {
                Some(_) => Err(AppendError::Conflict("conversation exists".into())),
                None => Ok(opened.clone()),
            }),
        )
        .await?;
    metrics::counter!("switchboard_conversations_started_total", "channel" => "voice").increment(1);
    shared.server.ring(call)?;
    shared.server.answer(call)?;

    let flow = shared.flows.for_number(&run.called).clone();
    let mut ivr = Ivr::new(flow);
    let mut answered_at: Option<tokio::time::Instant> = None;
    loop {
        let deadline = ivr.poll_timeout().map(tokio::time::Instant::from_std);
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            () = sleep_until(deadline) => {
                ivr.handle_timeout(tokio::time::Instant::now().into_std());
                run.act(&mut ivr).await?;
                continue;
            }
        };
        // The dispatcher's arrival time: the call task may lag behind it
        // while it synthesises a prompt or appends events.
        let Some((now, ev)) = ev else { break };
        match ev {
            ServerEvent::CallEstablished { .. } if answered_at.is_none() => {
                answered_at = Some(now);
                run.append(vec![Event::CallAnswered {
                    call_id: run.sip_call_id.clone(),
                }])
                .await?;
                let id = uuid::Uuid::now_v7().to_string();
                let path = run.recording_path(&id);
                run.whole = Some(Recording {
                    id,
                    started_at: Utc::now(),
                    clock: now,
                    rec: CallRecorder::create(&path)?,
                    path,
                });
                shared.server.receive_audio(call, true);
                ivr.start(now.into_std());
                run.act(&mut ivr).await?;
            }
            ServerEvent::Dtmf { digit, .. } => {
                ivr.on_digit(now.into_std(), digit.as_char());
                run.act(&mut ivr).await?;
            }
            ServerEvent::PlayoutFinished { .. } => {
                ivr.on_playout_finished(now.into_std());
                run.act(&mut ivr).await?;
            }
            ServerEvent::Audio { frame, .. } => run.audio(&frame.samples, now)?,
            ServerEvent::CallEnded { reason, .. } => {
                // A caller who hangs up while leaving a message leaves it.
                run.finish_message(now).await?;
                run.finish_whole(now).await?;
                let talk = answered_at.map_or(0, |t| now.duration_since(t).as_secs());
                run.end(&reason, talk).await?;
                tracing::info!(call_id = %run.sip_call_id, reason = end_reason(&reason), secs = talk, "telephony: call ended");
                break;
            }
            ServerEvent::CommandFailed { error, .. } => {
                tracing::debug!(call_id = %run.sip_call_id, %error, "telephony: command failed");
            }
            _ => {}
        }
    }
    Ok(())
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One row of the `recordings` table.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RecordingRow {
    /// Recording id.
    pub id: String,
    /// The voice conversation.
    pub conversation_id: String,
    /// SIP Call-ID.
    pub call_id: String,
    /// `call` or `voicemail`.
    pub kind: String,
    /// Caller (E.164 when known).
    pub caller: String,
    /// Number dialled.
    pub called: String,
    /// Agent on the call, if any.
    pub agent: Option<String>,
    /// When recording began.
    pub started_at: DateTime<Utc>,
    /// Length in milliseconds.
    pub duration_ms: i64,
    /// File on the server (not sent to clients).
    #[serde(skip)]
    pub path: String,
}

pub(crate) async fn insert_recording(db: &Db, r: &RecordingRow) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO recordings (id, conversation_id, call_id, kind, caller, called, agent, started_at, duration_ms, path) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&r.id)
    .bind(&r.conversation_id)
    .bind(&r.call_id)
    .bind(&r.kind)
    .bind(&r.caller)
    .bind(&r.called)
    .bind(r.agent.clone())
    .bind(ms(r.started_at))
    .bind(r.duration_ms)
    .bind(&r.path)
    .execute(db.pool())
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(from: &str, ruri: &str) -> CallInfo {
        CallInfo {
            sip_call_id: "c1".into(),
            from: switchboard_voice::sip::message::Uri::parse(from).unwrap(),
            from_display: None,
            to: switchboard_voice::sip::message::Uri::parse(ruri).unwrap(),
            request_uri: ruri.into(),
            remote: "127.0.0.1:5070".parse().unwrap(),
            has_offer: true,
        }
    }

    #[test]
    fn caller_is_e164_when_it_parses() {
        let (c, p) = caller_of(&info("sip:+14155550123@pbx.example", "sip:100@sb"));
        assert_eq!(c, "+14155550123");
        assert_eq!(p.unwrap().as_str(), "+14155550123");
        let (c, p) = caller_of(&info("sip:alice@pbx.example", "sip:100@sb"));
        assert_eq!(c, "alice");
        assert!(p.is_none());
        assert_eq!(
            called_of(&info("sip:a@b", "sip:+15550100@sb:5060")),
            "+15550100"
        );
    }
}
