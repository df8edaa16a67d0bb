//! Language of a turn: detection and the per-language canned phrases.
//!
//! Detection is script-based: text with a meaningful share of CJK ideographs is
//! Chinese, everything else English. That is all the product needs today
//! (replies in the customer's language, English and Chinese) and it costs
//! nanoseconds, so it never sits in the way of a voice turn.

use serde::{Deserialize, Serialize};

/// A language the virtual agent understands and replies in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// English.
    En,
    /// Chinese (Mandarin, simplified or traditional script).
    Zh,
}

impl Lang {
    /// Every supported language.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Zh];

    /// The BCP-47 primary tag (`en`, `zh`), as carried in handoff contexts.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh",
        }
    }

    /// Parses a language tag such as `en`, `en-GB`, `zh`, `zh-Hans`.
    pub fn from_code(tag: &str) -> Option<Lang> {
        let primary = tag
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "zh" | "cmn" => Some(Lang::Zh),
            _ => None,
        }
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// Whether `c` is a CJK ideograph (unified ideographs and extension A, plus compatibility ideographs).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF)
}

/// Detects the language of `text`; `None` when it has no letters at all
/// (digits, punctuation, emoji), so the caller can keep the previous turn's language.
pub fn detect(text: &str) -> Option<Lang> {
    let mut cjk = 0usize;
    let mut latin = 0usize;
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else if c.is_alphabetic() {
            latin += 1;
        }
    }
    if cjk == 0 && latin == 0 {
        return None;
    }
    // One ideograph carries roughly a word; a Latin word is about five letters.
    if cjk * 5 >= latin {
        Some(Lang::Zh)
    } else {
        Some(Lang::En)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_english_and_chinese() {
        assert_eq!(detect("How much is roaming in France?"), Some(Lang::En));
        assert_eq!(detect("国际漫游怎么收费？"), Some(Lang::Zh));
        assert_eq!(detect("我的5G套餐 price 多少"), Some(Lang::Zh));
        assert_eq!(detect("eSIM 怎么激活"), Some(Lang::Zh));
        assert_eq!(detect("12345 !!"), None);
    }

    #[test]
    fn parses_codes() {
        assert_eq!(Lang::from_code("en-GB"), Some(Lang::En));
        assert_eq!(Lang::from_code("zh_Hans"), Some(Lang::Zh));
        assert_eq!(Lang::from_code("fr"), None);
        assert_eq!(Lang::Zh.code(), "zh");
    }
}
