//! Audio queued for playing into a call, without copying it.
//!
//! Prompts are the same few seconds of audio for every caller, so they are
//! shared (`Arc<[i16]>`) and a call only keeps a position in each one it
//! has queued. A 10-second greeting costs a call 24 bytes instead of
//! 160 KB, twice over when the call is recorded (the recorder keeps its own
//! queue to pair played audio with the caller's).

use std::collections::VecDeque;
use std::sync::Arc;

/// Shared 8 kHz linear audio: a prompt, a beep, TTS output.
pub type Pcm = Arc<[i16]>;

/// A FIFO of shared audio segments, read a frame at a time.
#[derive(Debug, Default, Clone)]
pub struct PlayQueue {
    segments: VecDeque<Segment>,
    /// Samples left in all segments.
    len: usize,
}

#[derive(Debug, Clone)]
struct Segment {
    pcm: Pcm,
    /// Next sample to play.
    pos: usize,
}

impl PlayQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues `pcm` after what is already queued (empty audio is ignored).
    pub fn push(&mut self, pcm: Pcm) {
        if pcm.is_empty() {
            return;
        }
        self.len += pcm.len();
        self.segments.push_back(Segment { pcm, pos: 0 });
    }

    /// Drops everything queued; returns how many samples that was.
    pub fn clear(&mut self) -> usize {
        let n = self.len;
        self.segments.clear();
        self.len = 0;
        n
    }

    /// Samples still queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Moves up to `out.len()` samples into `out`, across segment ends, and
    /// returns how many; the rest of `out` is left as it was.
    pub fn read(&mut self, out: &mut [i16]) -> usize {
        let mut done = 0;
        while done < out.len() {
            let Some(seg) = self.segments.front_mut() else {
                break;
            };
            let take = (seg.pcm.len() - seg.pos).min(out.len() - done);
            out[done..done + take].copy_from_slice(&seg.pcm[seg.pos..seg.pos + take]);
            seg.pos += take;
            done += take;
            if seg.pos == seg.pcm.len() {
                self.segments.pop_front();
            }
        }
        self.len -= done;
        done
    }

    /// Skips up to `n` samples (played as something else, e.g. a DTMF
    /// tone); returns how many were skipped.
    pub fn skip(&mut self, n: usize) -> usize {
        let mut left = n.min(self.len);
        let skipped = left;
        while left > 0 {
            let Some(seg) = self.segments.front_mut() else {
                break;
            };
            let take = (seg.pcm.len() - seg.pos).min(left);
            seg.pos += take;
            left -= take;
            if seg.pos == seg.pcm.len() {
                self.segments.pop_front();
            }
        }
        self.len -= skipped;
        skipped
    }

    /// The next sample, if any.
    pub fn pop(&mut self) -> Option<i16> {
        let seg = self.segments.front_mut()?;
        let s = seg.pcm[seg.pos];
        seg.pos += 1;
        if seg.pos == seg.pcm.len() {
            self.segments.pop_front();
        }
        self.len -= 1;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(v: &[i16]) -> Pcm {
        Arc::from(v)
    }

    #[test]
    fn reads_across_segments_in_order() {
        let mut q = PlayQueue::new();
        q.push(pcm(&[1, 2, 3]));
        q.push(pcm(&[]));
        q.push(pcm(&[4, 5]));
        assert_eq!(q.len(), 5);
        let mut out = [0; 4];
        assert_eq!(q.read(&mut out), 4);
        assert_eq!(out, [1, 2, 3, 4]);
        let mut out = [9; 4];
        assert_eq!(q.read(&mut out), 1);
        assert_eq!(out, [5, 9, 9, 9], "the rest of the frame is untouched");
        assert!(q.is_empty());
        assert_eq!(q.read(&mut out), 0);
    }

    #[test]
    fn skip_pop_and_clear_keep_the_count() {
        let mut q = PlayQueue::new();
        q.push(pcm(&[1, 2]));
        q.push(pcm(&[3, 4, 5]));
        assert_eq!(q.skip(3), 3);
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(), Some(4));
        assert_eq!(q.skip(10), 1);
        assert_eq!(q.pop(), None);
        q.push(pcm(&[6, 7]));
        assert_eq!(q.clear(), 2);
        assert!(q.is_empty());
    }

    #[test]
    fn queued_audio_is_shared_not_copied() {
        let prompt = pcm(&[0; 80_000]);
        let mut a = PlayQueue::new();
        let mut b = PlayQueue::new();
        a.push(prompt.clone());
        b.push(prompt.clone());
        assert_eq!(Arc::strong_count(&prompt), 3);
        a.clear();
        assert_eq!(Arc::strong_count(&prompt), 2);
        assert_eq!(b.len(), 80_000);
    }
}
