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
//! * [`ivr`] — the IVR flow engine (menus, digits, skills, voicemail) as a
//!   sans-IO state machine; flows load from TOML.
//! * [`tts`] — prompts as 8 kHz PCM: the Piper neural voice ([`piper`],
//!   ONNX Runtime loaded at run time) or espeak-ng as a separate process,
//!   resampled by sox, cached on disk; uploaded WAV prompts.
//! * [`recording`] — stereo call recordings and voicemail as WAV, written
//!   as the call goes.
//! * [`server`] — the thin tokio glue: one SIP UDP socket, one RTP socket
//!   pair per call from a port range, and one 20 ms media clock task for
//!   every call, with a channel-based API for the application.

//! ## Example: the sans-IO endpoint
//!
//! ```
//! use std::time::Instant;
//! use switchboard_voice::sip::endpoint::{Endpoint, EndpointConfig, Event, Transport};
//! use switchboard_voice::sip::message::Message;
//!
//! let t0 = Instant::now();
//! let mut ep = Endpoint::new(EndpointConfig::new("127.0.0.1:5060".parse().unwrap()), t0);
//! let phone = "127.0.0.1:5070".parse().unwrap();
//! let invite = "INVITE sip:100@127.0.0.1 SIP/2.0\r\n\
//! Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
//! From: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>\r\n\
//! Call-ID: doc-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
//! ep.handle_input(t0, Transport::Udp, phone, invite.as_bytes());
//! let Some(Event::CallOffered { call, info }) = ep.poll_event() else { panic!() };
//! assert_eq!(info.to.user.as_deref(), Some("100"));
//! ep.answer(t0, call, "127.0.0.1:20000".parse().unwrap()).unwrap();
//! // 100 Trying, then 200 OK carrying our SDP offer (the INVITE had none).
//! let sent: Vec<u16> = std::iter::from_fn(|| ep.poll_transmit())
//!     .filter_map(|t| match Message::parse(&t.data) {
//!         Ok(Message::Response(r)) => Some(r.status),
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(sent, vec![100, 200]);
//! // Until the ACK comes, the 200 is retransmitted when the deadline passes.
//! assert!(ep.poll_timeout().is_some());
//! ```

pub mod ivr;
pub mod media;
pub mod pipeline;
pub mod piper;
pub mod recording;
pub mod sdp;
pub mod server;
pub mod sip;
pub mod tts;
