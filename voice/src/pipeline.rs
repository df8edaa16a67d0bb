//! Typed media pipeline (frames through stages).
