//! The extraction answerer: picks the passage that best covers the question
//! and the sentences in it that answer it, verbatim.
//!
//! This is the first-class answer path: it is fast (microseconds), it cannot
//! invent facts (every sentence is a passage sentence), and it is the fallback
//! whenever a language model fails or produces an ungrounded answer.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::lang::Lang;
use crate::retrieve::Passage;
use crate::text::{normalize, sentences, term_set};

/// What the question asks for, which favours sentences carrying that kind of fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    /// A price, fee or amount.
    Amount,
    /// A time, day, date or duration.
    Time,
    /// A place or address.
    Place,
    /// Which ones (devices, countries, options).
    Entity,
    /// Steps or anything else.
    Other,
}

/// Classifies what a question asks for.
pub fn ask_kind(question: &str) -> Ask {
    let q = normalize(question);
    let any = |l: &[&str]| l.iter().any(|w| q.contains(w));
    if any(&[
        "how much",
        "price",
        "cost",
        "fee",
        "charge",
        "多少钱",
        "价格",
        "费用",
        "收费",
        "多少元",
        "几块",
    ]) {
        Ask::Amount
    } else if any(&[
        "when",
        "what time",
        "hours",
        "how long",
        "how many days",
        "open",
        "deadline",
        "几点",
        "时间",
        "多久",
        "几天",
        "什么时候",
        "营业",
    ]) {
        Ask::Time
    } else if any(&["where", "address", "location", "在哪", "地址", "位置"]) {
        Ask::Place
    } else if any(&["which", "哪些", "哪款", "哪种", "哪几"]) {
        Ask::Entity
    } else {
        Ask::Other
    }
}

fn favours(ask: Ask, sentence: &str) -> bool {
    let has_digit = sentence.chars().any(|c| c.is_ascii_digit());
    match ask {
        Ask::Amount => {
            has_digit && sentence.contains(['€', '$', '£', '¥', '元'])
                || sentence.contains("free")
                || sentence.contains("免费")
        }
        Ask::Time => has_digit || sentence.contains(['天', '周', '月']),
        Ask::Place => {
            has_digit
                || sentence.contains(['路', '街', '号'])
                || sentence.contains("Street")
                || sentence.contains("Road")
        }
        Ask::Entity => has_digit,
        Ask::Other => false,
    }
}

/// An extracted answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extract {
    /// Index (into the passages given) of the passage the sentences come from.
    pub passage: usize,
    /// The chosen sentences, in passage order.
    pub sentences: Vec<String>,
    /// Share of the question's content terms found in that passage (0–1).
    pub coverage: f32,
}

/// Question terms that ask for a kind of fact rather than name a topic
/// ("cost", "how long", "收费"): a passage covers them when it states an
/// amount, a time or "free".
const ANSWER_TYPE: &[&str] = &[
    "cost",
    "price",
    "fee",
    "charge",
    "long",
    "take",
    "time",
    "expensive",
    "cheap",
    "收费",
    "费用",
    "价格",
    "时间",
    "多长",
    "要钱",
    "付费",
];

/// Share of `query` content terms found in the passage's title and text.
pub fn coverage(query_terms: &BTreeSet<String>, passage: &Passage) -> f32 {
    if query_terms.is_empty() {
        return 0.0;
    }
    let mut p = term_set(&passage.text);
    p.extend(term_set(&passage.title));
    let states_fact = passage.text.chars().any(|c| c.is_ascii_digit())
        || passage.text.contains("free")
        || passage.text.contains("免费")
        || passage.text.contains("不额外收费");
    let hits = query_terms
        .iter()
        .filter(|t| p.contains(*t) || (states_fact && ANSWER_TYPE.contains(&t.as_str())))
        .count();
    hits as f32 / query_terms.len() as f32
}

/// Picks the best passage among `passages` for `query` and up to
/// `max_sentences` answering sentences from it. Prefers a passage in `lang`
/// when it covers the question nearly as well as the best one.
pub fn extract(
    query: &str,
    passages: &[Passage],
    lang: Lang,
    max_sentences: usize,
) -> Option<Extract> {
    let q = term_set(query);
    if passages.is_empty() || max_sentences == 0 {
        return None;
    }
    let covs: Vec<f32> = passages.iter().map(|p| coverage(&q, p)).collect();
    // Coverage by the text alone breaks ties between chunks of one article
    // (they share the title); retrieval order breaks the rest.
    let text_cov = |p: &Passage| {
        let t = term_set(&p.text);
        q.iter().filter(|x| t.contains(*x)).count()
    };
    let mut best = 0;
    for i in 1..passages.len() {
        let better = covs[i] > covs[best] + 1e-6
            || ((covs[i] - covs[best]).abs() <= 1e-6
                && text_cov(&passages[i]) > text_cov(&passages[best]));
        if better {
            best = i;
        }
    }
    if passages[best].lang.is_some_and(|l| l != lang)
        && let Some((i, _)) = covs
            .iter()
            .enumerate()
            .find(|(i, c)| passages[*i].lang == Some(lang) && **c + 1e-6 >= covs[best] * 0.8)
    {
        best = i;
    }
    let passage = &passages[best];
    let ask = ask_kind(query);
    let all = sentences(&passage.text);
    if all.is_empty() {
        return None;
    }
    let mut scored: Vec<(usize, f32)> = all
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let st = term_set(s);
            let overlap = q.iter().filter(|t| st.contains(*t)).count() as f32;
            let bonus = if favours(ask, s) { 0.75 } else { 0.0 };
            // Slight preference for earlier sentences (they usually state the rule).
            (i, overlap + bonus - i as f32 * 0.01)
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut chosen: Vec<usize> = scored
        .iter()
        .filter(|(_, s)| *s > 0.5)
        .take(max_sentences)
        .map(|(i, _)| *i)
        .collect();
    if chosen.is_empty() {
        chosen = (0..all.len().min(max_sentences)).collect();
    }
    chosen.sort_unstable();
    Some(Extract {
        passage: best,
        sentences: chosen.into_iter().map(|i| all[i].clone()).collect(),
        coverage: covs[best],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(id: &str, title: &str, text: &str, lang: Lang) -> Passage {
        Passage {
            article_id: id.into(),
            version: 1,
            chunk_id: format!("{id}#0"),
            title: title.into(),
            text: text.into(),
            score: 1.0,
            lang: Some(lang),
        }
    }

    #[test]
    fn picks_the_answering_sentences() {
        let ps = [
            p(
                "stores",
                "Store opening hours",
                "Our stores are in Berlin and Hamburg. Stores open Monday to Saturday from 9:00 to 20:00. Sundays closed.",
                Lang::En,
            ),
            p(
                "roaming",
                "Roaming",
                "Roaming in the EU is included. Outside the EU roaming costs €5 per day.",
                Lang::En,
            ),
        ];
        let e = extract(
            "How much does roaming outside the EU cost?",
            &ps,
            Lang::En,
            1,
        )
        .unwrap();
        assert_eq!(e.passage, 1);
        assert_eq!(
            e.sentences,
            vec!["Outside the EU roaming costs €5 per day."]
        );
        let e = extract("When are the stores open?", &ps, Lang::En, 1).unwrap();
        assert_eq!(e.passage, 0);
        assert_eq!(
            e.sentences,
            vec!["Stores open Monday to Saturday from 9:00 to 20:00."]
        );
    }

    #[test]
    fn prefers_the_customers_language() {
        let ps = [
            p(
                "roaming",
                "Roaming",
                "Roaming outside the EU costs €5 per day.",
                Lang::En,
            ),
            p(
                "roaming-zh",
                "国际漫游",
                "欧盟以外的漫游每天收费5欧元。",
                Lang::Zh,
            ),
        ];
        let e = extract("漫游每天收费多少", &ps, Lang::Zh, 2).unwrap();
        assert_eq!(e.passage, 1);
        assert!(e.sentences[0].contains("5欧元"));
    }

    #[test]
    fn nothing_to_extract_from_nothing() {
        assert!(extract("anything", &[], Lang::En, 2).is_none());
    }
}
