//! The grounding check: an answer may only state facts found in the passages
//! it cites.
//!
//! "Facts" are the things a small model gets wrong and a customer acts on:
//! numbers (prices, amounts, days, times, percentages, phone numbers, dates
//! written with digits), Chinese numerals, names and other capitalised words
//! (places, brands, months, weekdays), e-mail addresses and URLs. Every one of
//! them must appear in the passages (or their titles); otherwise the answer
//! is rejected and the agent falls back to quoting the passage or escalates.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::retrieve::Passage;
use crate::text::normalize;

/// The result of checking one answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct GroundingReport {
    /// How many fact-like tokens the answer contains.
    pub checked: usize,
    /// The ones not found in any passage.
    pub unsupported: Vec<String>,
    /// Share of the answer's content words found in the passages (0–1); low
    /// values mean the answer says things the passage does not, even without
    /// numbers or names. Not judged for answers of fewer than three content words.
    pub term_support: f32,
    /// Content words of the answer.
    pub terms: usize,
}

/// Minimum [`GroundingReport::term_support`] of a grounded answer.
pub const MIN_TERM_SUPPORT: f32 = 0.6;

impl GroundingReport {
    /// Whether every fact is supported and the wording stays close to the passage.
    pub fn is_grounded(&self) -> bool {
        self.unsupported.is_empty() && (self.terms < 3 || self.term_support >= MIN_TERM_SUPPORT)
    }
}

#[allow(clippy::expect_used)] // constant patterns, exercised by the tests
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+(?:[.,:/-]\d+)*").expect("number pattern"));
#[allow(clippy::expect_used)]
static ZH_NUMERAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[零一二三四五六七八九十百千万亿两]{2,}").expect("numeral pattern")
});
#[allow(clippy::expect_used)]
static CAPITALISED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[A-Z][A-Za-z0-9'’&-]*\b").expect("name pattern"));
#[allow(clippy::expect_used)]
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b|\bhttps?://\S+|\bwww\.\S+")
        .expect("address pattern")
});

/// Capitalised words that phrase an answer without asserting a fact.
const PHRASING: &[&str] = &[
    "a",
    "according",
    "additionally",
    "after",
    "all",
    "also",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "based",
    "before",
    "both",
    "but",
    "by",
    "can",
    "customers",
    "do",
    "does",
    "during",
    "each",
    "every",
    "for",
    "from",
    "good",
    "great",
    "here",
    "here's",
    "hi",
    "hello",
    "however",
    "i",
    "i'm",
    "if",
    "in",
    "is",
    "it",
    "it's",
    "just",
    "let",
    "many",
    "more",
    "most",
    "no",
    "not",
    "note",
    "of",
    "ok",
    "okay",
    "on",
    "once",
    "or",
    "our",
    "please",
    "so",
    "some",
    "sorry",
    "source",
    "sure",
    "thank",
    "thanks",
    "that",
    "the",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "to",
    "unfortunately",
    "we",
    "we're",
    "what",
    "when",
    "where",
    "which",
    "while",
    "with",
    "yes",
    "you",
    "you'll",
    "you're",
    "your",
    "certainly",
    "regarding",
    "found",
    "write",
    "call",
    "visit",
    "open",
    "book",
    "tap",
    "go",
    "check",
    "contact",
    "dial",
    "send",
    "use",
    "make",
    "try",
    "see",
    "bring",
    "ask",
    "choose",
    "enter",
    "restart",
    "pay",
    "buy",
    "keep",
    "simply",
];

fn number_key(s: &str) -> String {
    // "1,000" and "1000" are the same amount; keep decimals and times as written.
    let s = s.trim_matches(|c: char| !c.is_ascii_digit());
    if s.len() > 4 && s.chars().filter(|c| *c == ',').count() >= 1 && !s.contains('.') {
        s.replace(',', "")
    } else {
        s.to_string()
    }
}

/// What a number is bound to: the currency sign right before it and the word
/// (or Chinese character) right after it, so "€9.99 per 100 MB" does not
/// support "9.99 text messages" or "$5".
fn number_contexts(text: &str) -> Vec<(String, Option<char>, Option<String>)> {
    NUMBER
        .find_iter(text)
        .map(|m| {
            let currency = text[..m.start()]
                .chars()
                .next_back()
                .filter(|c| "€$£¥".contains(*c));
            let after = text[m.end()..]
                .strip_prefix(' ')
                .unwrap_or(&text[m.end()..]);
            let next = match after.chars().next() {
                Some(c) if c.is_ascii_alphabetic() => {
                    let word: String = after
                        .chars()
                        .take_while(char::is_ascii_alphabetic)
                        .collect();
                    let word = word.to_ascii_lowercase();
                    Some(
                        word.strip_suffix('s')
                            .filter(|w| w.len() >= 2)
                            .map(str::to_string)
                            .unwrap_or(word),
                    )
                }
                Some(c) if crate::lang::is_cjk(c) => Some(c.to_string()),
                _ => None,
            };
            (number_key(m.as_str()), currency, next)
        })
        .collect()
}

/// Checks `answer` against `passages` (their text and titles).
pub fn check(answer: &str, passages: &[Passage]) -> GroundingReport {
    let mut support = String::new();
    for p in passages {
        support.push_str(&p.title);
        support.push('\n');
        support.push_str(&p.text);
        support.push('\n');
    }
    let support_lower = normalize(&support);
    // Whole numbers as written, their range/date pieces ("9:00" of "9:00-18:00") and
    // their digit runs ("9" of "9:00") all count as supported.
    let mut support_numbers: BTreeSet<String> = BTreeSet::new();
    for m in NUMBER.find_iter(&support) {
        let whole = m.as_str();
        support_numbers.insert(number_key(whole));
        for piece in whole.split(['-', '/']) {
            support_numbers.insert(number_key(piece));
        }
        for digits in whole.split(|c: char| !c.is_ascii_digit()) {
            support_numbers.insert(digits.to_string());
        }
    }

    let contexts = number_contexts(&support);
    let currencies: BTreeSet<(char, String)> = contexts
        .iter()
        .filter_map(|(k, c, _)| c.map(|c| (c, k.clone())))
        .collect();
    let followers: BTreeSet<(String, String)> = contexts
        .iter()
        .filter_map(|(k, _, n)| n.clone().map(|n| (k.clone(), n)))
        .collect();

    let mut report = GroundingReport::default();
    let answer_terms = crate::text::term_set(answer);
    let support_terms = crate::text::term_set(&support);
    report.terms = answer_terms.len();
    report.term_support = if answer_terms.is_empty() {
        1.0
    } else {
        answer_terms
            .iter()
            .filter(|t| support_terms.contains(*t))
            .count() as f32
            / answer_terms.len() as f32
    };
    let mut seen = BTreeSet::new();
    let mut flag = |fact: &str, ok: bool, report: &mut GroundingReport| {
        if seen.insert(fact.to_string()) {
            report.checked += 1;
            if !ok {
                report.unsupported.push(fact.to_string());
            }
        }
    };

    for m in ADDRESS.find_iter(answer) {
        let a = m.as_str().trim_end_matches(['.', ',', ')', '。']);
        flag(a, support_lower.contains(&a.to_lowercase()), &mut report);
    }
    let without_addresses = ADDRESS.replace_all(answer, " ");
    for (m, (key, currency, next)) in NUMBER
        .find_iter(&without_addresses)
        .zip(number_contexts(&without_addresses))
    {
        let known = support_numbers.contains(&key)
            || key
                .split(['-', '/'])
                .all(|piece| support_numbers.contains(&number_key(piece)));
        let same_currency = currency.is_none_or(|c| currencies.contains(&(c, key.clone())));
        let same_unit = next
            .as_ref()
            .is_none_or(|n| followers.contains(&(key.clone(), n.clone())));
        let fact = match (&currency, &next) {
            (Some(c), _) => format!("{c}{}", m.as_str()),
            (None, Some(n)) if known => format!("{} {n}", m.as_str()),
            _ => m.as_str().to_string(),
        };
        flag(&fact, known && same_currency && same_unit, &mut report);
    }
    for m in ZH_NUMERAL.find_iter(&without_addresses) {
        flag(m.as_str(), support.contains(m.as_str()), &mut report);
    }
    for m in CAPITALISED.find_iter(&without_addresses) {
        let w = m.as_str().trim_end_matches(['\'', '’']);
        let lower = w.to_lowercase();
        if PHRASING.contains(&lower.as_str()) {
            continue;
        }
        flag(
            w,
            crate::text::has_word(&support_lower, &lower) || support_lower.contains(&lower),
            &mut report,
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(text: &str) -> Passage {
        Passage {
            article_id: "roaming".into(),
            version: 1,
            chunk_id: "roaming#0".into(),
            title: "Roaming in Europe".into(),
            text: text.into(),
            score: 1.0,
            lang: None,
        }
    }

    #[test]
    fn accepts_facts_from_the_passage() {
        let p = [passage(
            "Roaming in the EU costs €2 per day. Our Berlin store opens at 9:00 on Monday.",
        )];
        let r = check(
            "Sure! Roaming in the EU costs €2 per day, and the Berlin store opens at 9:00.",
            &p,
        );
        assert!(r.is_grounded(), "{r:?}");
        assert!(r.checked >= 4);
    }

    #[test]
    fn rejects_invented_numbers_names_and_dates() {
        let p = [passage("Roaming in the EU costs €2 per day.")];
        assert_eq!(
            check("Roaming costs €3 per day.", &p).unsupported,
            vec!["€3"]
        );
        assert_eq!(
            check("Roaming in Canada costs €2 per day.", &p).unsupported,
            vec!["Canada"]
        );
        assert_eq!(
            check("From March roaming is free.", &p).unsupported,
            vec!["March"]
        );
        assert_eq!(
            check("Write to help@northwind.example.", &p).unsupported,
            vec!["help@northwind.example"]
        );
    }

    #[test]
    fn wording_must_stay_close_to_the_passage() {
        let p = [passage(
            "The World Pass costs €5 per day and includes 500 MB of data.",
        )];
        let r = check(
            "The World Pass includes a complimentary upgrade, allowing you to access exclusive content during your travel.",
            &p,
        );
        assert!(r.unsupported.is_empty());
        assert!(!r.is_grounded(), "{r:?}");
        assert!(check("Sure! The World Pass costs €5 per day.", &p).is_grounded());
    }

    #[test]
    fn numbers_must_keep_their_unit_and_currency() {
        let p = [passage(
            "The World Pass costs €5 per day and includes 500 MB of data, 60 minutes of calls and 60 texts. Without it, data costs €9.99 per 100 MB.",
        )];
        assert!(
            check(
                "The World Pass costs €5 per day and includes 60 minutes of calls.",
                &p
            )
            .is_grounded()
        );
        let r = check(
            "It includes 60 minutes of calls, 9.99 text messages, and 100 MB data.",
            &p,
        );
        assert_eq!(r.unsupported, vec!["9.99 text"]);
        assert_eq!(
            check("The World Pass costs $5 per day.", &p).unsupported,
            vec!["$5"]
        );
        assert_eq!(
            check("It includes 500 minutes of calls.", &p).unsupported,
            vec!["500 minute"]
        );
        assert!(check("Data costs €9.99 per 100MB.", &p).is_grounded());
    }

    #[test]
    fn chinese_numerals_and_digits() {
        let p = [passage("国际漫游每天收费5元，套餐有效期三十天。")];
        assert!(check("漫游每天5元，有效期三十天。", &p).is_grounded());
        assert_eq!(check("漫游每天8元。", &p).unsupported, vec!["8"]);
        assert_eq!(check("有效期六十天。", &p).unsupported, vec!["六十"]);
    }

    #[test]
    fn thousands_separators_and_time_parts() {
        let p = [passage("The device costs 1,200 euros. Open 9:00-18:00.")];
        assert!(check("It costs 1200 euros and opens at 9:00.", &p).is_grounded());
        assert!(check("We open at 9.", &p).is_grounded());
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// A passage always grounds its own sentences, and checking never panics.
        #[test]
        fn a_passage_grounds_itself(text in "\\PC{0,120}") {
            let p = Passage {
                article_id: "a".into(),
                version: 1,
                chunk_id: "a#0".into(),
                title: "T".into(),
                text: text.clone(),
                score: 0.0,
                lang: None,
            };
            for s in crate::text::sentences(&text) {
                let r = check(&s, std::slice::from_ref(&p));
                prop_assert!(r.is_grounded(), "{s:?}: {r:?}");
            }
        }
    }
}
