//! # switchboard-voice
//!
//! The telephony front end of Switchboard: answers SIP calls, negotiates
//! G.711 audio, runs RTP/RTCP with a jitter buffer, and turns DTMF and audio
//! into typed events for the rest of the product.
//!
//! ## Design
//!
//! Everything protocol-shaped is **sans-IO**: pure state machines fed bytes
//! and the current time, answering with bytes to send, application events
//! and their next deadline (the pattern of quinn-proto and str0m). They are
//! tested with simulated time, so every retransmission and timeout rule has
//! an exact, deterministic test.
//!
//! * [`sip::message`] — SIP parser/serialiser, tolerant of the RFC 4475
//!   torture cases (folding, compact forms, odd whitespace, escapes,
//!   multi-value headers); bad input is an error, never a panic.
//! * [`sip::transaction`] — RFC 3261 §17 client and server transactions with
//!   timers A, B, D–K.
//! * [`sip::endpoint`] — the user agent server: dialogs, calls, CANCEL,
//!   re-INVITE hold, INFO DTMF, session-timer tolerance, OPTIONS, a digest
//!   authenticated registrar. One [`sip::endpoint::Endpoint`] takes
//!   `(now, datagram, from)` and yields datagrams, [`sip::endpoint::Event`]s
//!   and a timeout; the application drives it with commands.
//! * [`sdp`] — RFC 3264 offer/answer for PCMU, PCMA and telephone-event.
//! * [`media`] — RTP/RTCP, G.711, adaptive jitter buffer, RFC 4733 and the
//!   per-call [`media::MediaSession`] ticked every 20 ms.
//! * [`pipeline`] — typed frames (audio, DTMF, control) through stages, so
//!   ASR, LLM and TTS stages slot in later.
//! * [`server`] — the thin tokio glue: one SIP UDP socket, one RTP socket
//!   pair per call from a port range, and one 20 ms media clock task for
//!   every call, with a channel-based API for the application.

pub mod media;
pub mod pipeline;
pub mod sdp;
pub mod server;
pub mod sip;
