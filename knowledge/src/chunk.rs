//! Chunking: splits a Markdown article into passages that respect headings
//! and sentence boundaries.
//!
//! A chunk never spans two sections: each heading starts a new one, and the
//! heading path ("Returns > Refund timeline") travels with the chunk so that a
//! passage is understandable on its own and its embedding knows its context.
//! Inside a section, sentences (Latin `.!?` followed by a space, Chinese
//! `。！？；` anywhere), list items and table rows are packed greedily up to a
//! token budget; only a single overlong sentence is ever cut mid-sentence.
//!
//! The chunker is pure and deterministic, so the same text always yields the
//! same chunks and the same [`ContentHash`]es: this is what lets a publish
//! re-embed only the chunks whose content changed.

use sha2::{Digest, Sha256};

/// SHA-256 of the exact text that is embedded (title, heading path and passage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentHash(pub [u8; 32]);

impl ContentHash {
    /// Hashes `text`.
    pub fn of(text: &str) -> Self {
        Self(Sha256::digest(text.as_bytes()).into())
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = hex::decode(s).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
}

/// Token budget of a chunk. Tokens are estimated: one per Latin word or
/// number, one per CJK character (close to how BERT word pieces count them).
#[derive(Debug, Clone, Copy)]
pub struct ChunkerConfig {
    /// A chunk is closed once adding the next sentence would pass this.
    pub target_tokens: usize,
    /// A single sentence longer than this is cut.
    pub max_tokens: usize,
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        // all-MiniLM-L6-v2 was trained on ≤128 word pieces; leave room for the title and heading.
        Self {
            target_tokens: 90,
            max_tokens: 160,
        }
    }
}

/// One passage of an article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Position in the article (0-based).
    pub ordinal: u32,
    /// Heading path of the section, e.g. `Returns > Refund timeline` (empty before the first heading).
    pub heading: String,
    /// The passage text as shown to users.
    pub text: String,
    /// Hash of [`Chunk::embed_text`].
    pub hash: ContentHash,
}

impl Chunk {
    /// The text given to the embedding model: title and heading path give the passage its context.
    pub fn embed_text(title: &str, heading: &str, text: &str) -> String {
        let mut s = String::with_capacity(title.len() + heading.len() + text.len() + 4);
        s.push_str(title.trim());
        if !heading.is_empty() && heading != title.trim() {
            s.push_str(" — ");
            s.push_str(heading);
        }
        s.push('\n');
        s.push_str(text);
        s
    }
}

/// Whether `c` is a CJK ideograph or CJK punctuation/kana/hangul.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // kana
        | 0x3400..=0x4DBF // ext A
        | 0x4E00..=0x9FFF // unified ideographs
        | 0xAC00..=0xD7AF // hangul
        | 0xF900..=0xFAFF // compatibility ideographs
        | 0x20000..=0x2FA1F)
}

/// Estimated model tokens in `s`.
pub fn estimate_tokens(s: &str) -> usize {
    let mut n = 0;
    let mut in_word = false;
    for c in s.chars() {
        if is_cjk(c) {
            n += 1;
            in_word = false;
        } else if c.is_alphanumeric() {
            if !in_word {
                n += 1;
                in_word = true;
            }
        } else {
            in_word = false;
        }
    }
    n
}

/// Guesses the language of a text: `zh` when at least 10% of its letters are CJK, else `en`.
pub fn detect_lang(text: &str) -> &'static str {
    let (mut cjk, mut letters) = (0usize, 0usize);
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
            letters += 1;
        } else if c.is_alphabetic() {
            letters += 1;
        }
    }
    if letters > 0 && cjk * 10 >= letters {
        "zh"
    } else {
        "en"
    }
}

#[derive(Debug)]
struct Section {
    heading: String,
    /// Paragraphs, each a list of units (sentences, list items, table rows).
    paragraphs: Vec<Vec<String>>,
}

/// Splits a Markdown article into chunks.
pub fn chunk_markdown(title: &str, body: &str, cfg: &ChunkerConfig) -> Vec<Chunk> {
    let sections = sections(body);
    let mut out = Vec::new();
    for section in sections {
        let mut current: Vec<String> = Vec::new(); // paragraphs of the open chunk
        let mut para: Vec<String> = Vec::new(); // units of the open paragraph
        let mut tokens = 0usize;
        let flush = |current: &mut Vec<String>, para: &mut Vec<String>, out: &mut Vec<Chunk>| {
            if !para.is_empty() {
                current.push(join_units(para));
                para.clear();
            }
            if !current.is_empty() {
                let text = current.join("\n");
                current.clear();
                push_chunk(out, title, &section.heading, text);
            }
        };
        for paragraph in &section.paragraphs {
            for unit in paragraph {
                for piece in cut_long(unit, cfg.max_tokens) {
                    let t = estimate_tokens(&piece);
                    if tokens > 0 && tokens + t > cfg.target_tokens {
                        flush(&mut current, &mut para, &mut out);
                        tokens = 0;
                    }
                    para.push(piece);
                    tokens += t;
                }
            }
            if !para.is_empty() {
                current.push(join_units(&para));
                para.clear();
            }
        }
        flush(&mut current, &mut para, &mut out);
    }
    merge_small_tail(&mut out, title, cfg);
    for (i, c) in out.iter_mut().enumerate() {
        c.ordinal = i as u32;
    }
    out
}

fn push_chunk(out: &mut Vec<Chunk>, title: &str, heading: &str, text: String) {
    let text = text.trim().to_string();
    if text.is_empty() {
        return;
    }
    let hash = ContentHash::of(&Chunk::embed_text(title, heading, &text));
    out.push(Chunk {
        ordinal: 0,
        heading: heading.to_string(),
        text,
        hash,
    });
}

/// A chunk far below the budget at the end of a section is merged into the previous
/// chunk of the same section when the result stays within the maximum.
fn merge_small_tail(out: &mut Vec<Chunk>, title: &str, cfg: &ChunkerConfig) {
    let mut i = 1;
    while i < out.len() {
        let small = estimate_tokens(&out[i].text) * 5 < cfg.target_tokens;
        let same = out[i].heading == out[i - 1].heading;
        let fits =
            estimate_tokens(&out[i].text) + estimate_tokens(&out[i - 1].text) <= cfg.max_tokens;
        let last_of_section = i + 1 == out.len() || out[i + 1].heading != out[i].heading;
        if small && same && fits && last_of_section {
            let tail = out.remove(i);
            let prev = &mut out[i - 1];
            prev.text = format!("{}\n{}", prev.text, tail.text);
            prev.hash = ContentHash::of(&Chunk::embed_text(title, &prev.heading, &prev.text));
        } else {
            i += 1;
        }
    }
}

fn join_units(units: &[String]) -> String {
    let mut s = String::new();
    for u in units {
        if !s.is_empty() {
            let prev_cjk = s.chars().last().is_some_and(is_cjk_or_fullwidth);
            let next_cjk = u.chars().next().is_some_and(is_cjk_or_fullwidth);
            if !(prev_cjk && next_cjk) {
                s.push(' ');
            }
        }
        s.push_str(u);
    }
    s
}

fn is_cjk_or_fullwidth(c: char) -> bool {
    is_cjk(c) || matches!(c as u32, 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

/// Parses headings, paragraphs and units.
fn sections(body: &str) -> Vec<Section> {
    let mut out = vec![Section {
        heading: String::new(),
        paragraphs: Vec::new(),
    }];
    let mut path: Vec<(usize, String)> = Vec::new();
    let mut para_lines: Vec<String> = Vec::new();
    let mut in_fence = false;

    fn end_para(lines: &mut Vec<String>, section: &mut Section) {
        if lines.is_empty() {
            return;
        }
        let mut units = Vec::new();
        let mut prose = String::new();
        for line in lines.drain(..) {
            if is_item_line(&line) {
                if !prose.is_empty() {
                    units.extend(split_sentences(&prose));
                    prose.clear();
                }
                units.push(line);
            } else {
                if !prose.is_empty() {
                    let cjk_join = prose.chars().last().is_some_and(is_cjk_or_fullwidth)
                        && line.chars().next().is_some_and(is_cjk_or_fullwidth);
                    if !cjk_join {
                        prose.push(' ');
                    }
                }
                prose.push_str(&line);
            }
        }
        if !prose.is_empty() {
            units.extend(split_sentences(&prose));
        }
        if !units.is_empty() {
            section.paragraphs.push(units);
        }
    }

    for raw in body.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            in_fence = !in_fence;
            continue;
        }
        if !in_fence && let Some((level, text)) = heading(trimmed) {
            let last = out.len() - 1;
            end_para(&mut para_lines, &mut out[last]);
            while path.last().is_some_and(|(l, _)| *l >= level) {
                path.pop();
            }
            path.push((level, text));
            out.push(Section {
                heading: path
                    .iter()
                    .map(|(_, t)| t.as_str())
                    .collect::<Vec<_>>()
                    .join(" > "),
                paragraphs: Vec::new(),
            });
            continue;
        }
        if trimmed.is_empty() {
            let last = out.len() - 1;
            end_para(&mut para_lines, &mut out[last]);
            continue;
        }
        // Table separator rows (|---|---|) carry no content.
        if trimmed.starts_with('|') && trimmed.chars().all(|c| matches!(c, '|' | '-' | ':' | ' ')) {
            continue;
        }
        para_lines.push(trimmed.to_string());
    }
    let last = out.len() - 1;
    end_para(&mut para_lines, &mut out[last]);
    out.retain(|s| !s.paragraphs.is_empty());
    out
}

fn heading(line: &str) -> Option<(usize, String)> {
    let level = line.chars().take_while(|&c| c == '#').count();
    if level == 0 || level > 6 {
        return None;
    }
    let rest = &line[level..];
    if !rest.starts_with(' ') && !rest.is_empty() {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim().to_string();
    (!text.is_empty()).then_some((level, text))
}

fn is_item_line(line: &str) -> bool {
    if line.starts_with("- ")
        || line.starts_with("* ")
        || line.starts_with("+ ")
        || line.starts_with('|')
    {
        return true;
    }
    let digits = line.chars().take_while(|c| c.is_ascii_digit()).count();
    digits > 0 && (line[digits..].starts_with(". ") || line[digits..].starts_with(") "))
}

/// Splits prose into sentences. A Latin sentence ends at `.`, `!` or `?` followed by
/// whitespace (so "3.5" or "e.g.x" are not cut); a Chinese one at `。！？；` (also
/// full-width `!?;`), with any closing quotes or brackets kept on the sentence.
pub fn split_sentences(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut end = None;
        if matches!(c, '。' | '！' | '？' | '；' | '!' | '?' | '.') {
            let mut j = i + 1;
            while j < chars.len()
                && matches!(chars[j], '”' | '’' | '"' | '\'' | ')' | '）' | '」' | '』')
            {
                j += 1;
            }
            let cjk_end = matches!(c, '。' | '！' | '？' | '；');
            if cjk_end || j == chars.len() || chars[j].is_whitespace() {
                end = Some(j);
            }
        }
        if let Some(j) = end {
            let s: String = chars[start..j].iter().collect();
            let s = s.trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
            start = j;
            i = j;
        } else {
            i += 1;
        }
    }
    let s: String = chars[start..].iter().collect();
    let s = s.trim();
    if !s.is_empty() {
        out.push(s.to_string());
    }
    out
}

/// Cuts a unit longer than `max` tokens at word (or CJK character) boundaries.
fn cut_long(unit: &str, max: usize) -> Vec<String> {
    if estimate_tokens(unit) <= max {
        return vec![unit.to_string()];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut n = 0;
    let mut in_word = false;
    for c in unit.chars() {
        let starts_token = is_cjk(c) || (c.is_alphanumeric() && !in_word);
        in_word = c.is_alphanumeric() && !is_cjk(c);
        if starts_token {
            if n == max {
                out.push(cur.trim().to_string());
                cur.clear();
                n = 0;
            }
            n += 1;
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_latin_and_chinese() {
        let s = split_sentences("Price is 3.5 USD. Really? Yes! 退货期为30天。请保留收据；谢谢");
        assert_eq!(
            s,
            vec![
                "Price is 3.5 USD.",
                "Really?",
                "Yes!",
                "退货期为30天。",
                "请保留收据；",
                "谢谢"
            ]
        );
    }

    #[test]
    fn chunks_follow_headings() {
        let body = "Intro line.\n\n# Shipping\nWe ship in 2 days.\n\n## Express\nExpress costs $9.\n\n# Returns\n- 30 days\n- receipt needed\n";
        let chunks = chunk_markdown("Help", body, &ChunkerConfig::default());
        let headings: Vec<_> = chunks.iter().map(|c| c.heading.as_str()).collect();
        assert_eq!(
            headings,
            vec!["", "Shipping", "Shipping > Express", "Returns"]
        );
        assert_eq!(chunks[3].text, "- 30 days - receipt needed");
        assert!(
            chunks
                .iter()
                .enumerate()
                .all(|(i, c)| c.ordinal == i as u32)
        );
    }

    #[test]
    fn long_sections_split_at_sentences_within_budget() {
        let sentence =
            "The warranty covers manufacturing defects for two full years from delivery.";
        let body = format!("# Warranty\n{}", vec![sentence; 30].join(" "));
        let cfg = ChunkerConfig::default();
        let chunks = chunk_markdown("W", &body, &cfg);
        assert!(chunks.len() > 3);
        for c in &chunks {
            assert!(estimate_tokens(&c.text) <= cfg.max_tokens);
            assert!(c.text.ends_with('.'), "cut mid-sentence: {}", c.text);
        }
    }

    #[test]
    fn overlong_sentence_is_cut() {
        let body = "字".repeat(500);
        let chunks = chunk_markdown("T", &body, &ChunkerConfig::default());
        assert!(chunks.len() >= 4);
        assert!(chunks.iter().all(|c| estimate_tokens(&c.text) <= 160));
        let total: usize = chunks.iter().map(|c| c.text.chars().count()).sum();
        assert_eq!(total, 500);
    }

    #[test]
    fn hashes_are_stable_and_local() {
        let a = chunk_markdown("T", "# A\nOne.\n\n# B\nTwo.", &ChunkerConfig::default());
        let b = chunk_markdown(
            "T",
            "# A\nOne.\n\n# B\nTwo changed.",
            &ChunkerConfig::default(),
        );
        assert_eq!(a[0].hash, b[0].hash);
        assert_ne!(a[1].hash, b[1].hash);
        let c = chunk_markdown("T2", "# A\nOne.", &ChunkerConfig::default());
        assert_ne!(a[0].hash, c[0].hash, "title is part of the embedded text");
        assert_eq!(ContentHash::from_hex(&a[0].hash.to_hex()), Some(a[0].hash));
    }

    #[test]
    fn fences_do_not_make_headings() {
        let chunks = chunk_markdown(
            "T",
            "```\n# not a heading\n```\ntext",
            &ChunkerConfig::default(),
        );
        assert!(chunks.iter().all(|c| c.heading.is_empty()));
    }

    #[test]
    fn language_detection() {
        assert_eq!(detect_lang("How do I reset my password?"), "en");
        assert_eq!(detect_lang("如何重置密码？ reset"), "zh");
    }
}
