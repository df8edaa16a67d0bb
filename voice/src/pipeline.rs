//! A typed media pipeline: [`Frame`]s (audio, DTMF, text, control) flow
//! through [`Stage`]s in order, in the style of Pipecat. A call's decoded
//! audio and DTMF enter at the top; what comes out of the last stage is what
//! the application acts on (collected digits, speech start/stop for
//! barge-in, and later transcripts from an ASR stage, replies from an LLM
//! stage and audio from a TTS stage).
//!
//! Stages are plain synchronous state machines, so they are tested by
//! pushing frames and looking at what comes out. Each stage passes on the
//! frames it does not consume, so stages compose in any order.

use crate::media::DtmfDigit;
use crate::media::session::AudioFrame;

/// What flows through a pipeline.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// 20 ms of 8 kHz audio.
    Audio(AudioFrame),
    /// A key press.
    Dtmf(DtmfDigit),
    /// Text (a transcript from ASR, a reply for TTS).
    Text(String),
    /// A control signal.
    Control(Control),
}

/// Control signals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// The call's media started.
    Start,
    /// The call ended; stages flush and reset.
    End,
    /// The caller started speaking (barge-in: stop playing prompts).
    SpeechStarted,
    /// The caller stopped speaking.
    SpeechStopped,
    /// A DTMF entry completed (terminator pressed or length reached).
    DigitsCollected(String),
    /// A DTMF entry timed out with what was typed so far.
    DigitsTimedOut(String),
}

/// One processing step.
pub trait Stage: Send {
    /// Consumes one frame, appending zero or more frames to `out`.
    fn process(&mut self, frame: Frame, out: &mut Vec<Frame>);
}

/// Stages run in order; each stage's output is the next one's input.
#[derive(Default)]
pub struct Pipeline {
    stages: Vec<Box<dyn Stage>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.stages.len())
            .finish()
    }
}

impl Pipeline {
    /// An empty pipeline (passes frames through).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a stage.
    #[must_use]
    pub fn stage(mut self, s: impl Stage + 'static) -> Self {
        self.stages.push(Box::new(s));
        self
    }

    /// Pushes one frame through every stage and returns what comes out.
    pub fn push(&mut self, frame: Frame) -> Vec<Frame> {
        let mut current = vec![frame];
        let mut next = Vec::new();
        for s in &mut self.stages {
            for f in current.drain(..) {
                s.process(f, &mut next);
            }
            std::mem::swap(&mut current, &mut next);
        }
        current
    }
}

/// Collects DTMF into an entry ended by a terminator key or a length, and
/// times out after a number of 20 ms audio frames without a key (the audio
/// frames are the pipeline's clock). Key frames are consumed.
#[derive(Debug, Clone)]
pub struct DtmfCollector {
    terminator: Option<char>,
    max_digits: usize,
    timeout_frames: u32,
    digits: String,
    idle_frames: u32,
}

impl DtmfCollector {
    /// `terminator` (e.g. `#`) ends an entry without being part of it;
    /// `max_digits` ends it when reached; `timeout_ms` of silence after the
    /// first key ends it as timed out.
    pub fn new(terminator: Option<char>, max_digits: usize, timeout_ms: u32) -> Self {
        Self {
            terminator,
            max_digits: max_digits.max(1),
            timeout_frames: (timeout_ms / 20).max(1),
            digits: String::new(),
            idle_frames: 0,
        }
    }
}

impl Stage for DtmfCollector {
    fn process(&mut self, frame: Frame, out: &mut Vec<Frame>) {
        match frame {
            Frame::Dtmf(d) => {
                self.idle_frames = 0;
                if Some(d.as_char()) == self.terminator {
                    out.push(Frame::Control(Control::DigitsCollected(std::mem::take(
                        &mut self.digits,
                    ))));
                    return;
                }
                self.digits.push(d.as_char());
                if self.digits.len() >= self.max_digits {
                    out.push(Frame::Control(Control::DigitsCollected(std::mem::take(
                        &mut self.digits,
                    ))));
                }
            }
            Frame::Audio(a) => {
                if !self.digits.is_empty() {
                    self.idle_frames += 1;
                    if self.idle_frames >= self.timeout_frames {
                        self.idle_frames = 0;
                        out.push(Frame::Control(Control::DigitsTimedOut(std::mem::take(
                            &mut self.digits,
                        ))));
                    }
                }
                out.push(Frame::Audio(a));
            }
            Frame::Control(Control::End) => {
                self.digits.clear();
                self.idle_frames = 0;
                out.push(Frame::Control(Control::End));
            }
            other => out.push(other),
        }
    }
}

/// Energy-based voice activity detection: speech starts after `attack`
/// consecutive frames above the threshold and stops after `release` frames
/// below it. Emits [`Control::SpeechStarted`]/[`Control::SpeechStopped`]
/// before the audio frame that caused them; audio passes through.
#[derive(Debug, Clone)]
pub struct EnergyVad {
    threshold_rms: f32,
    attack: u32,
    release: u32,
    above: u32,
    below: u32,
    speaking: bool,
}

impl EnergyVad {
    /// `threshold_dbfs` (e.g. -35.0), frames of attack and release.
    pub fn new(threshold_dbfs: f32, attack: u32, release: u32) -> Self {
        Self {
            threshold_rms: 32768.0 * 10f32.powf(threshold_dbfs / 20.0),
            attack: attack.max(1),
            release: release.max(1),
            above: 0,
            below: 0,
            speaking: false,
        }
    }

    /// RMS level of a frame.
    pub fn rms(samples: &[i16]) -> f32 {
        if samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = samples.iter().map(|s| f64::from(*s) * f64::from(*s)).sum();
        (sum / samples.len() as f64).sqrt() as f32
    }
}

impl Stage for EnergyVad {
    fn process(&mut self, frame: Frame, out: &mut Vec<Frame>) {
        if let Frame::Audio(a) = &frame {
            if Self::rms(&a.samples) >= self.threshold_rms {
                self.above += 1;
                self.below = 0;
                if !self.speaking && self.above >= self.attack {
                    self.speaking = true;
                    out.push(Frame::Control(Control::SpeechStarted));
                }
            } else {
                self.below += 1;
                self.above = 0;
                if self.speaking && self.below >= self.release {
                    self.speaking = false;
                    out.push(Frame::Control(Control::SpeechStopped));
                }
            }
        }
        out.push(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio(level: i16) -> Frame {
        Frame::Audio(AudioFrame {
            samples: (0..160)
                .map(|i| if i % 2 == 0 { level } else { -level })
                .collect(),
            concealed: false,
        })
    }

    fn key(c: char) -> Frame {
        Frame::Dtmf(DtmfDigit::from_char(c).unwrap())
    }

    fn controls(frames: &[Frame]) -> Vec<Control> {
        frames
            .iter()
            .filter_map(|f| {
                if let Frame::Control(c) = f {
                    Some(c.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn collector_terminator_length_and_timeout() {
        let mut p = Pipeline::new().stage(DtmfCollector::new(Some('#'), 4, 100));
        let mut out = Vec::new();
        for c in "12#".chars() {
            out.extend(p.push(key(c)));
        }
        assert_eq!(controls(&out), vec![Control::DigitsCollected("12".into())]);
        out.clear();
        for c in "5678".chars() {
            out.extend(p.push(key(c)));
        }
        assert_eq!(
            controls(&out),
            vec![Control::DigitsCollected("5678".into())]
        );
        out.clear();
        out.extend(p.push(key('9')));
        for _ in 0..5 {
            out.extend(p.push(audio(0)));
        }
        assert_eq!(controls(&out), vec![Control::DigitsTimedOut("9".into())]);
        assert_eq!(
            out.iter().filter(|f| matches!(f, Frame::Audio(_))).count(),
            5
        );
    }

    #[test]
    fn vad_detects_speech_with_attack_and_release() {
        let mut p = Pipeline::new().stage(EnergyVad::new(-30.0, 2, 3));
        let mut ctl = Vec::new();
        let script = [0, 0, 5000, 5000, 5000, 0, 0, 0, 0];
        for (i, level) in script.into_iter().enumerate() {
            for c in controls(&p.push(audio(level))) {
                ctl.push((i, c));
            }
        }
        assert_eq!(
            ctl,
            vec![(3, Control::SpeechStarted), (7, Control::SpeechStopped)]
        );
    }

    #[test]
    fn stages_compose_and_pass_other_frames() {
        let mut p = Pipeline::new()
            .stage(EnergyVad::new(-30.0, 1, 1))
            .stage(DtmfCollector::new(Some('#'), 10, 1000));
        let out = p.push(Frame::Text("hello".into()));
        assert_eq!(out, vec![Frame::Text("hello".into())]);
        let out = p.push(audio(8000));
        assert_eq!(controls(&out), vec![Control::SpeechStarted]);
        assert_eq!(
            p.push(key('#')),
            vec![Frame::Control(Control::DigitsCollected(String::new()))]
        );
    }
}
