//! Call and voicemail recordings as WAV files, written as the call goes.
//!
//! A [`CallRecorder`] writes a 2-channel, 8 kHz, 16-bit WAV: the caller on
//! the left, what Switchboard played on the right. Caller audio arrives as
//! one 20 ms frame per media tick; what we queue for playing is sent at the
//! same pace, so each caller frame is paired with the next 160 samples of
//! the played audio (silence when nothing plays). A [`MessageRecorder`]
//! writes the caller alone, mono, for voicemail.
//!
//! Caller frames only exist when RTP arrives (none before the first packet,
//! none during silence suppression or one-way audio), so the glue calls
//! `fill_to(elapsed)` with the time since the recording began: missing caller
//! audio becomes silence and both channels stay on the call's clock. A slack
//! of three frames absorbs scheduling jitter without inserting gaps.
//!
//! The WAV header is rewritten every second of audio ([`hound::WavWriter::flush`]),
//! so a file is playable even if the process dies mid-call;
//! [`CallRecorder::finish`] closes it and reports its length.

/// The WAV crate used here, so readers of recordings use the same version.
pub use hound;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use crate::media::{Pcm, PlayQueue};

/// Samples per second.
pub const SAMPLE_RATE: u32 = 8_000;
/// Frames between header rewrites (one second of 20 ms frames).
const FLUSH_EVERY: u32 = 50;
/// Samples per 20 ms frame.
const FRAME: u64 = 160;
/// How far behind the clock a recording may fall before silence is inserted.
const SLACK: u64 = 3 * FRAME;

/// Whole frames of silence needed so `samples` catches up with `elapsed`.
fn frames_missing(samples: u64, elapsed: Duration) -> u64 {
    let due =
        u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX / 16) * u64::from(SAMPLE_RATE) / 1000;
    due.saturating_sub(samples + SLACK) / FRAME
}

/// A recording could not be written.
#[derive(Debug, thiserror::Error)]
#[error("recording: {0}")]
pub struct RecordingError(#[from] hound::Error);

impl RecordingError {
    /// The file is a WAV, but not 8 kHz mono 16-bit (or a format hound cannot read).
    pub fn is_unsupported_format(&self) -> bool {
        matches!(self.0, hound::Error::Unsupported)
    }
}

type Writer = hound::WavWriter<BufWriter<File>>;

fn spec(channels: u16) -> hound::WavSpec {
    hound::WavSpec {
        channels,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

/// The part both recorders share: a WAV file written one 20 ms frame at a
/// time on the call's clock, with its header rewritten every second.
struct Track {
    writer: Writer,
    frames: u32,
    samples: u64,
}

impl Track {
    fn create(path: &Path, channels: u16) -> Result<Self, RecordingError> {
        Ok(Self {
            writer: hound::WavWriter::create(path, spec(channels))?,
            frames: 0,
            samples: 0,
        })
    }

    /// Writes one frame of `len` samples per channel: `fill` must write
    /// exactly `len × channels` interleaved samples into a block sized for
    /// them (one bounds check per frame rather than one per sample). Frames
    /// are 20 ms; one longer than a second is refused.
    fn frame(
        &mut self,
        len: usize,
        fill: impl FnOnce(&mut hound::SampleWriter16<'_, BufWriter<File>>),
    ) -> Result<(), RecordingError> {
        if len > SAMPLE_RATE as usize {
            return Err(RecordingError(hound::Error::Unsupported));
        }
        let channels = u32::from(self.writer.spec().channels);
        let mut block = self.writer.get_i16_writer(len as u32 * channels);
        fill(&mut block);
        block.flush()?;
        self.samples += len as u64;
        self.frames += 1;
        if self.frames.is_multiple_of(FLUSH_EVERY) {
            self.writer.flush()?;
        }
        Ok(())
    }

    fn duration(&self) -> Duration {
        Duration::from_millis(self.samples * 1000 / u64::from(SAMPLE_RATE))
    }

    fn finish(self) -> Result<Duration, RecordingError> {
        let d = self.duration();
        self.writer.finalize()?;
        Ok(d)
    }
}

impl std::fmt::Debug for Track {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Track")
            .field("channels", &self.writer.spec().channels)
            .field("samples", &self.samples)
            .finish_non_exhaustive()
    }
}

/// Stereo recording of a whole call.
#[derive(Debug)]
pub struct CallRecorder {
    track: Track,
    played: PlayQueue,
}

impl CallRecorder {
    /// Creates (or truncates) the file.
    pub fn create(path: &Path) -> Result<Self, RecordingError> {
        Ok(Self {
            track: Track::create(path, 2)?,
            played: PlayQueue::new(),
        })
    }

    /// Audio queued for playing (it goes out one frame per tick from now on).
    pub fn played(&mut self, pcm: Pcm) {
        self.played.push(pcm);
    }

    /// Playing was stopped: what was queued will not be heard.
    pub fn stop_played(&mut self) {
        self.played.clear();
    }

    /// One frame of caller audio; paired with the same amount of played audio.
    pub fn caller(&mut self, pcm: &[i16]) -> Result<(), RecordingError> {
        let played = &mut self.played;
        self.track.frame(pcm.len(), |block| {
            for &s in pcm {
                block.write_sample(s);
                block.write_sample(played.pop().unwrap_or(0));
            }
        })
    }

    /// Pads the caller side with silence up to `elapsed` since the start.
    pub fn fill_to(&mut self, elapsed: Duration) -> Result<(), RecordingError> {
        for _ in 0..frames_missing(self.track.samples, elapsed) {
            self.caller(&[0; FRAME as usize])?;
        }
        Ok(())
    }

    /// Length so far.
    pub fn duration(&self) -> Duration {
        self.track.duration()
    }

    /// Closes the file; returns the recording's length.
    pub fn finish(self) -> Result<Duration, RecordingError> {
        self.track.finish()
    }
}

/// Mono recording of the caller (voicemail).
#[derive(Debug)]
pub struct MessageRecorder {
    track: Track,
}

impl MessageRecorder {
    /// Creates (or truncates) the file.
    pub fn create(path: &Path) -> Result<Self, RecordingError> {
        Ok(Self {
            track: Track::create(path, 1)?,
        })
    }

    /// One frame of caller audio.
    pub fn caller(&mut self, pcm: &[i16]) -> Result<(), RecordingError> {
        self.track.frame(pcm.len(), |block| {
            for &s in pcm {
                block.write_sample(s);
            }
        })
    }

    /// Pads with silence up to `elapsed` since the start.
    pub fn fill_to(&mut self, elapsed: Duration) -> Result<(), RecordingError> {
        let silence = [0; FRAME as usize];
        for _ in 0..frames_missing(self.track.samples, elapsed) {
            self.caller(&silence)?;
        }
        Ok(())
    }

    /// Length so far.
    pub fn duration(&self) -> Duration {
        self.track.duration()
    }

    /// Closes the file; returns the message's length.
    pub fn finish(self) -> Result<Duration, RecordingError> {
        self.track.finish()
    }
}

/// Reads an 8 kHz mono 16-bit WAV (an uploaded prompt). Other formats are refused.
pub fn read_prompt_wav(path: &Path) -> Result<Vec<i16>, RecordingError> {
    let mut r = hound::WavReader::open(path)?;
    let s = r.spec();
    if s.sample_rate != SAMPLE_RATE
        || s.channels != 1
        || s.bits_per_sample != 16
        || s.sample_format != hound::SampleFormat::Int
    {
        return Err(RecordingError(hound::Error::Unsupported));
    }
    Ok(r.samples::<i16>().collect::<Result<_, _>>()?)
}

/// The voicemail beep: 400 ms of 1 kHz (made once, shared by every call).
pub fn beep() -> Pcm {
    static BEEP: LazyLock<Pcm> = LazyLock::new(|| {
        (0..3_200)
            .map(|i| {
                let t = f64::from(i) / f64::from(SAMPLE_RATE);
                ((2.0 * std::f64::consts::PI * 1_000.0 * t).sin() * 8_000.0) as i16
            })
            .collect::<Arc<[i16]>>()
    });
    BEEP.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_pairs_caller_left_with_played_right() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let mut rec = CallRecorder::create(&path).unwrap();
        rec.played(Arc::from([7; 200]));
        rec.caller(&[1; 160]).unwrap();
        rec.caller(&[2; 160]).unwrap();
        rec.played(Arc::from([9; 160]));
        rec.stop_played();
        rec.caller(&[3; 160]).unwrap();
        assert_eq!(rec.duration(), Duration::from_millis(60));
        assert_eq!(rec.finish().unwrap(), Duration::from_millis(60));

        let mut r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().channels, 2);
        assert_eq!(r.spec().sample_rate, 8_000);
        let s: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(s.len(), 960);
        let left: Vec<i16> = s.iter().step_by(2).copied().collect();
        let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(&left[..160], &[1; 160][..]);
        assert_eq!(&left[320..], &[3; 160][..]);
        assert_eq!(&right[..200], &[7; 200][..]);
        assert!(
            right[200..].iter().all(|&x| x == 0),
            "stopped audio is not recorded"
        );
    }

    #[test]
    fn missing_caller_audio_becomes_silence_on_the_call_clock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.wav");
        let mut rec = CallRecorder::create(&path).unwrap();
        rec.played(Arc::from([4; 1_600]));
        // Within the slack nothing is inserted (the frame is just late).
        rec.fill_to(Duration::from_millis(60)).unwrap();
        assert_eq!(rec.duration(), Duration::ZERO);
        // 200 ms without a caller frame: 140 ms padded (the slack stays).
        rec.fill_to(Duration::from_millis(200)).unwrap();
        assert_eq!(rec.duration(), Duration::from_millis(140));
        rec.caller(&[1; 160]).unwrap();
        rec.fill_to(Duration::from_millis(160)).unwrap(); // the clock is behind: nothing
        assert_eq!(rec.finish().unwrap(), Duration::from_millis(160));
        let s: Vec<i16> = hound::WavReader::open(&path)
            .unwrap()
            .samples::<i16>()
            .map(Result::unwrap)
            .collect();
        let left: Vec<i16> = s.iter().step_by(2).copied().collect();
        let right: Vec<i16> = s.iter().skip(1).step_by(2).copied().collect();
        assert!(left[..1_120].iter().all(|&x| x == 0));
        assert!(left[1_120..].iter().all(|&x| x == 1));
        assert!(
            right.iter().all(|&x| x == 4),
            "what we played stays in step"
        );

        let mut vm = MessageRecorder::create(&dir.path().join("vm.wav")).unwrap();
        vm.fill_to(Duration::from_secs(1)).unwrap();
        assert_eq!(vm.duration(), Duration::from_millis(940));
    }

    #[test]
    fn header_is_valid_before_finish() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vm.wav");
        let mut rec = MessageRecorder::create(&path).unwrap();
        for _ in 0..FLUSH_EVERY {
            rec.caller(&[5; 160]).unwrap();
        }
        // Not finished: the periodic flush already wrote a correct header.
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.spec().channels, 1);
        assert_eq!(r.duration(), 8_000);
        drop(r);
        assert_eq!(rec.finish().unwrap(), Duration::from_secs(1));
    }

    #[test]
    fn prompts_must_be_8khz_mono() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.wav");
        let mut w = hound::WavWriter::create(&good, spec(1)).unwrap();
        for s in [1i16, -2, 3] {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        assert_eq!(read_prompt_wav(&good).unwrap(), vec![1, -2, 3]);
        let bad = dir.path().join("bad.wav");
        hound::WavWriter::create(&bad, spec(2))
            .unwrap()
            .finalize()
            .unwrap();
        assert!(read_prompt_wav(&bad).is_err());
        assert!(read_prompt_wav(&dir.path().join("missing.wav")).is_err());
        assert_eq!(beep().len(), 3_200);
    }
}
