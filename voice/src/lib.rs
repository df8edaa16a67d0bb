//! # switchboard-voice
//!
//! The telephony front end: SIP signalling as sans-IO transaction and dialog
//! state machines, SDP offer/answer, RTP/RTCP, G.711, jitter buffer, RFC 4733
//! DTMF, ASR/TTS stages and recording.
//!
//! Not built yet: this crate is reserved by the workspace layout and exports
//! nothing. Calls are not answered by this release.
