//! Text utilities shared by understanding, extraction and grounding:
//! language-neutral term extraction (words for Latin script, character
//! bigrams for Chinese) and sentence splitting.

use std::collections::BTreeSet;

use crate::lang::is_cjk;

/// English words that carry no topic.
const EN_STOP: &[&str] = &[
    "a",
    "about",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "but",
    "by",
    "can",
    "could",
    "do",
    "does",
    "did",
    "for",
    "from",
    "get",
    "got",
    "had",
    "has",
    "have",
    "hello",
    "hi",
    "how",
    "i",
    "i'm",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "it's",
    "just",
    "know",
    "let",
    "me",
    "much",
    "my",
    "need",
    "of",
    "on",
    "or",
    "our",
    "please",
    "so",
    "some",
    "tell",
    "than",
    "thank",
    "thanks",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "to",
    "up",
    "us",
    "was",
    "we",
    "what",
    "what's",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "want",
    "like",
    "there's",
    "should",
    "many",
    "any",
    "also",
    "one",
    "way",
    "hey",
    "yes",
    "no",
    "not",
    "ok",
    "okay",
    "anything",
    "something",
    "current",
];

/// Chinese question words and fragments that carry no topic.
const ZH_STOP_BIGRAMS: &[&str] = &[
    "多少", "少钱", "多久", "几点", "哪些", "哪里", "哪个", "是否", "如何", "怎样", "什么", "时候",
    "一下",
];

/// Chinese characters that are function words on their own; a bigram made
/// only of these carries no topic.
const ZH_STOP_CHARS: &str = "的了吗呢吧啊呀我你您他她它们是在有和与或就都也还请问怎么样什么哪里个这那要想能可以会把被给对从到为吗么";

/// Whether `word` is an English stop word.
pub fn is_en_stop(word: &str) -> bool {
    EN_STOP.contains(&word)
}

/// Light English stemming: folds possessives, plurals, a few inflections and
/// "-ment" so that "charges", "charged", "charge" and "payment", "pay" meet.
fn stem(word: &str) -> String {
    let w = word.strip_suffix("'s").unwrap_or(word);
    let s = stem_inflection(w);
    match s.strip_suffix("ment") {
        Some(base) if base.chars().count() >= 3 => base.to_string(),
        _ => s,
    }
}

fn stem_inflection(w: &str) -> String {
    for suffix in ["ing", "ies", "es", "ed", "s"] {
        if let Some(base) = w.strip_suffix(suffix)
            && base.chars().count() >= 3
        {
            return match suffix {
                "ies" => format!("{base}y"),
                "es" if !(base.ends_with('s')
                    || base.ends_with('x')
                    || base.ends_with("ch")
                    || base.ends_with("sh")) =>
                {
                    format!("{base}e")
                }
                _ => base.to_string(),
            };
        }
    }
    w.to_string()
}

/// The content terms of `text`: stemmed lowercase English words without stop
/// words, numbers, and Chinese character bigrams (or single characters for
/// one-character runs) without function-word-only pairs.
pub fn terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut cjk_run: Vec<char> = Vec::new();
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            let w = word.trim_matches(['\'', '-']).to_string();
            if !w.is_empty() && !is_en_stop(&w) {
                out.push(stem(&w));
            }
            word.clear();
        }
    };
    let flush_cjk = |run: &mut Vec<char>, out: &mut Vec<String>| {
        let stop = |c: &char| ZH_STOP_CHARS.contains(*c);
        if run.len() == 1 {
            if !stop(&run[0]) {
                out.push(run[0].to_string());
            }
        } else {
            for pair in run.windows(2) {
                let bigram: String = pair.iter().collect();
                if !stop(&pair[0]) && !stop(&pair[1]) && !ZH_STOP_BIGRAMS.contains(&bigram.as_str())
                {
                    out.push(bigram);
                }
            }
        }
        run.clear();
    };
    for c in text.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            cjk_run.push(c);
        } else if c.is_alphanumeric() || ((c == '\'' || c == '-') && !word.is_empty()) {
            flush_cjk(&mut cjk_run, &mut out);
            word.extend(c.to_lowercase());
        } else {
            flush_word(&mut word, &mut out);
            flush_cjk(&mut cjk_run, &mut out);
        }
    }
    flush_word(&mut word, &mut out);
    flush_cjk(&mut cjk_run, &mut out);
    out
}

/// The distinct content terms of `text`.
pub fn term_set(text: &str) -> BTreeSet<String> {
    terms(text).into_iter().collect()
}

/// Splits `text` into sentences. Splits after `.`, `!`, `?` followed by
/// whitespace (so `9.99` stays whole), after `。！？；`, and at line breaks;
/// strips Markdown bullets and headings. Empty pieces are dropped.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue; // headings are not sentences
        }
        let line = line
            .strip_prefix("- ")
            .or_else(|| line.strip_prefix("* "))
            .unwrap_or(line)
            .trim();
        if line.is_empty() || line.starts_with('|') {
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut cur = String::new();
        for (i, &c) in chars.iter().enumerate() {
            cur.push(c);
            let end = match c {
                '。' | '！' | '？' | '；' => true,
                '.' | '!' | '?' => chars.get(i + 1).is_none_or(|n| n.is_whitespace()),
                _ => false,
            };
            if end {
                let s = cur.trim();
                if !s.is_empty() {
                    out.push(s.to_string());
                }
                cur.clear();
            }
        }
        let s = cur.trim();
        if !s.is_empty() {
            out.push(s.to_string());
        }
    }
    out
}

/// Lowercases and collapses whitespace, for substring checks.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = true;
        } else {
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether `hay` contains any of `needles` (all lowercase) as a substring of its lowercase form.
pub fn contains_any(hay_lower: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| hay_lower.contains(n))
}

/// Whether `hay_lower` contains `word` as a whole word (ASCII word boundaries).
pub fn has_word(hay_lower: &str, word: &str) -> bool {
    let bytes = hay_lower.as_bytes();
    let mut start = 0;
    while let Some(pos) = hay_lower[start..].find(word) {
        let at = start + pos;
        let before_ok = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let end = at + word.len();
        let after_ok = end >= bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        start = at + word.len().max(1);
        if start >= hay_lower.len() {
            break;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_terms_drop_stop_words_and_stem() {
        assert_eq!(
            terms("What are the roaming charges?"),
            vec!["roam", "charge"]
        );
        assert_eq!(terms("How do I activate my eSIM"), vec!["activate", "esim"]);
    }

    #[test]
    fn chinese_terms_are_bigrams() {
        let t = terms("国际漫游怎么收费");
        assert!(t.contains(&"漫游".to_string()));
        assert!(t.contains(&"收费".to_string()));
        assert!(!t.contains(&"怎么".to_string()));
    }

    #[test]
    fn sentences_keep_decimals_and_split_chinese() {
        let s = sentences(
            "## Prices\nThe plan costs €9.99 per month. Data is 5 GB!\n- Calls are free.\n漫游每天5元。短信免费",
        );
        assert_eq!(
            s,
            vec![
                "The plan costs €9.99 per month.",
                "Data is 5 GB!",
                "Calls are free.",
                "漫游每天5元。",
                "短信免费"
            ]
        );
    }

    #[test]
    fn whole_words() {
        assert!(has_word("i want an agent now", "agent"));
        assert!(!has_word("management", "agent"));
        assert!(has_word("agent", "agent"));
    }

    #[test]
    fn never_panics_on_odd_input() {
        for s in ["", "'", "-", "--a--", "\u{0}", "。。。", "a.b.c.", "ǅ"] {
            let _ = terms(s);
            let _ = sentences(s);
            let _ = normalize(s);
        }
    }
}
