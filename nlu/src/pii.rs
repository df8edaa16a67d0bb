//! PII masking for stored logs, traces, handoff transcripts and LLM prompts.
//!
//! Card numbers are masked only when their digits pass the Luhn check and
//! IBANs only when they pass the ISO 13616 mod-97 check, so order numbers,
//! prices and dates stay readable. E-mail addresses and phone numbers are
//! masked when enabled in [`PiiConfig`] (on by default).

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// A kind of personal data found in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    /// A payment card number (Luhn-valid, 13–19 digits).
    Card,
    /// An IBAN (mod-97 valid).
    Iban,
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
}

/// Which optional kinds to mask (cards and IBANs are always masked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PiiConfig {
    /// Mask e-mail addresses.
    pub email: bool,
    /// Mask phone numbers.
    pub phone: bool,
}

impl Default for PiiConfig {
    fn default() -> Self {
        Self {
            email: true,
            phone: true,
        }
    }
}

/// Text with its personal data replaced by placeholders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Masked {
    /// The masked text.
    pub text: String,
    /// What was found, in order of appearance.
    pub found: Vec<PiiKind>,
}

#[allow(clippy::expect_used)] // constant patterns, checked by the tests
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"[0-9]+(?:[ -][0-9]+)*").expect("digit run pattern"));
#[allow(clippy::expect_used)]
static IBAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)[a-z]{2}[0-9]{2}(?:[ ]?[a-z0-9]{4}){2,7}(?:[ ]?[a-z0-9]{1,4})?")
        .expect("iban pattern")
});
#[allow(clippy::expect_used)]
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b").expect("email pattern")
});
#[allow(clippy::expect_used)]
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:\+|0)[0-9](?:[ \-()]{0,2}[0-9]){7,15}").expect("phone pattern")
});

/// Whether the match `m` of `text` stands alone: no ASCII letter or digit
/// right before or after it (CJK characters count as separators, so
/// "卡号4111…" is found, "A4111…" or a longer digit run is not).
fn isolated(text: &str, m: &regex::Match<'_>) -> bool {
    let before = text[..m.start()].chars().next_back();
    let after = text[m.end()..].chars().next();
    !before.is_some_and(|c| c.is_ascii_alphanumeric())
        && !after.is_some_and(|c| c.is_ascii_alphanumeric())
}

/// Whether the digits of `s` (other characters ignored) pass the Luhn check.
pub fn luhn_valid(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 2 {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 { d2 - 9 } else { d2 }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether `s` (spaces ignored, any case) is an IBAN with a valid mod-97 checksum.
pub fn iban_valid(s: &str) -> bool {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if compact.len() < 15 || compact.len() > 34 || !compact.is_ascii() {
        return false;
    }
    let (head, tail) = compact.split_at(4);
    if !head[..2].chars().all(|c| c.is_ascii_uppercase())
        || !head[2..].chars().all(|c| c.is_ascii_digit())
    {
        return false;
    }
    let mut rem: u32 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Masks Luhn-valid card numbers: within each run of digit groups (separated
/// by single spaces or dashes), the longest span of whole groups with 13–19
/// digits that passes the Luhn check, so "order 1 4111 1111 1111 1111" still
/// hides the card.
fn mask_cards(text: &str, found: &mut Vec<PiiKind>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for run in CARD.find_iter(text) {
        // A span touching the run's edge must not be glued to letters ("A4111…").
        let left_free = !text[..run.start()]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        let right_free = !text[run.end()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        // Byte ranges of the digit groups inside the run.
        let mut groups: Vec<(usize, usize)> = Vec::new();
        let mut start = None;
        for (i, c) in run.as_str().char_indices() {
            match (c.is_ascii_digit(), start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    groups.push((run.start() + s, run.start() + i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            groups.push((run.start() + s, run.end()));
        }
        let mut best: Option<(usize, usize, usize)> = None; // (digits, from, to)
        for i in 0..groups.len() {
            let mut digits = 0;
            for j in i..groups.len() {
                digits += groups[j].1 - groups[j].0;
                if digits > 19 {
                    break;
                }
                let span = &text[groups[i].0..groups[j].1];
                let edges_ok = (i > 0 || left_free) && (j + 1 < groups.len() || right_free);
                if digits >= 13 && edges_ok && best.is_none_or(|b| digits > b.0) && luhn_valid(span)
                {
                    best = Some((digits, groups[i].0, groups[j].1));
                }
            }
        }
        if let Some((_, from, to)) = best {
            let digits: String = text[from..to]
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            out.push_str(&text[last..from]);
            out.push_str(&format!("[CARD ****{}]", &digits[digits.len() - 4..]));
            last = to;
            found.push(PiiKind::Card);
        }
    }
    out.push_str(&text[last..]);
    out
}

/// Masks personal data in `text`.
pub fn mask(text: &str, config: PiiConfig) -> Masked {
    let mut found = Vec::new();
    let source = text.to_string();
    let mut out = IBAN
        .replace_all(text, |c: &regex::Captures<'_>| {
            let m = &c[0];
            if c.get(0).is_some_and(|g| isolated(&source, &g)) && iban_valid(m) {
                found.push(PiiKind::Iban);
                "[IBAN]".to_string()
            } else {
                m.to_string()
            }
        })
        .into_owned();
    out = mask_cards(&out, &mut found);
    if config.email {
        out = EMAIL
            .replace_all(&out, |_: &regex::Captures<'_>| {
                found.push(PiiKind::Email);
                "[EMAIL]".to_string()
            })
            .into_owned();
    }
    if config.phone {
        let source = out.clone();
        out = PHONE
            .replace_all(&source, |c: &regex::Captures<'_>| {
                let m = &c[0];
                let n = m.chars().filter(char::is_ascii_digit).count();
                if c.get(0).is_some_and(|g| isolated(&source, &g)) && (9..=15).contains(&n) {
                    found.push(PiiKind::Phone);
                    "[PHONE]".to_string()
                } else {
                    m.to_string()
                }
            })
            .into_owned();
    }
    Masked { text: out, found }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cards_next_to_non_ascii_digits_are_masked() {
        // U+1810 is a Mongolian digit: a Unicode digit must not join the card's digit run.
        let m = mask("a\u{1810} 4111 1111 1111 1111", PiiConfig::default());
        assert!(!m.text.contains("4111 1111 1111 1111"), "{}", m.text);
        assert!(m.found.contains(&PiiKind::Card), "{:?}", m.found);
    }
    use proptest::prelude::*;

    #[test]
    fn masks_luhn_valid_cards_only() {
        let m = mask(
            "my card is 4111 1111 1111 1111 thanks",
            PiiConfig::default(),
        );
        assert_eq!(m.text, "my card is [CARD ****1111] thanks");
        assert_eq!(m.found, vec![PiiKind::Card]);
        let m = mask("order 4111 1111 1111 1112", PiiConfig::default());
        assert!(m.text.contains("4111 1111 1111 1112"), "{}", m.text);
        let m = mask("卡号4012-8888-8888-1881", PiiConfig::default());
        assert!(m.text.contains("[CARD ****1881]"), "{}", m.text);
        let m = mask("账号DE89370400440532013000，谢谢", PiiConfig::default());
        assert_eq!(m.text, "账号[IBAN]，谢谢");
        // Part of a longer unseparated digit run is not a card.
        let m = mask("ref 41111111111111110000000", PiiConfig::default());
        assert!(m.found.is_empty(), "{m:?}");
        // A card after another number is still found.
        let m = mask("1 4111 1111 1111 1111", PiiConfig::default());
        assert_eq!(m.text, "1 [CARD ****1111]");
        let m = mask("A0 4111 1111 1111 1111", PiiConfig::default());
        assert_eq!(m.text, "A0 [CARD ****1111]");
    }

    #[test]
    fn masks_valid_ibans_only() {
        let m = mask(
            "IBAN DE89 3704 0044 0532 0130 00 please",
            PiiConfig::default(),
        );
        assert_eq!(m.text, "IBAN [IBAN] please");
        let m = mask("gb82west12345698765432", PiiConfig::default());
        assert_eq!(m.text, "[IBAN]");
        let m = mask("DE89 3704 0044 0532 0130 01", PiiConfig::default());
        assert!(!m.found.contains(&PiiKind::Iban));
    }

    #[test]
    fn masks_email_and_phone_when_enabled() {
        let t = "write to jane.doe@example.com or call +44 20 7946 0958";
        let m = mask(t, PiiConfig::default());
        assert_eq!(m.text, "write to [EMAIL] or call [PHONE]");
        let m = mask(
            t,
            PiiConfig {
                email: false,
                phone: false,
            },
        );
        assert_eq!(m.text, t);
    }

    #[test]
    fn leaves_prices_dates_and_short_numbers() {
        let t = "The plan costs €19.99 from 2026-03-01, call 112 or dial *100#, order 123456.";
        assert_eq!(mask(t, PiiConfig::default()).text, t);
    }

    proptest! {
        #[test]
        fn never_panics_and_never_leaks_a_valid_card(prefix in "[a-z ]{0,10}", body in "[0-9]{15}") {
            // Complete the body into a Luhn-valid 16-digit number.
            let check = (0..10).find(|d| luhn_valid(&format!("{body}{d}"))).unwrap_or(0);
            let card = format!("{body}{check}");
            let m = mask(&format!("{prefix} {card}"), PiiConfig::default());
            prop_assert!(!m.text.contains(&card));
        }

        #[test]
        fn arbitrary_text_is_safe(s in "\\PC{0,60}") {
            let _ = mask(&s, PiiConfig::default());
        }
    }
}
