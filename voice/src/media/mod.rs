//! Media plane: RTP/RTCP, G.711, jitter buffer, RFC 4733 DTMF and the
//! per-call [`MediaSession`] that ties them together, all sans-IO.

pub mod dtmf;
pub mod g711;
pub mod jitter;
pub mod playout;
pub mod rtp;
pub mod session;

pub use dtmf::DtmfDigit;
pub use playout::{Pcm, PlayQueue};
pub use session::{FRAME_SAMPLES, MediaEvent, MediaSession, MediaStats, MediaTransmit};
