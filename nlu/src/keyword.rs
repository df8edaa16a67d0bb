//! A small in-memory lexical index over Markdown articles (BM25 over words and
//! Chinese bigrams).
//!
//! It implements [`Retriever`], so the agent runs end to end without the
//! knowledge service: in tests, in the evaluation, and as a last-resort
//! index. Articles are Markdown with a front matter block:
//!
//! ```text
//! ---
//! title: Roaming abroad
//! tags: [roaming, travel]
//! lang: en
//! status: published
//! ---
//! # Roaming abroad
//! Text … (## sections become separate chunks)
//! ```

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::lang::{Lang, detect};
use crate::retrieve::{Passage, RetrieveError, Retriever};
use crate::text::terms;

/// A knowledge article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    /// Id (the file stem).
    pub id: String,
    /// Title.
    pub title: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Language.
    pub lang: Option<Lang>,
    /// `published`, `draft`, …
    pub status: String,
    /// Markdown body without the front matter.
    pub body: String,
}

/// A malformed article.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// Missing or unterminated front matter.
    #[error("article {0}: missing front matter")]
    NoFrontMatter(String),
    /// Missing title.
    #[error("article {0}: missing title")]
    NoTitle(String),
    /// The directory or a file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

/// Parses an article (front matter + Markdown).
pub fn parse_article(id: &str, markdown: &str) -> Result<Article, KbError> {
    let rest = markdown
        .trim_start()
        .strip_prefix("---")
        .ok_or_else(|| KbError::NoFrontMatter(id.into()))?;
    let end = rest
        .find("\n---")
        .ok_or_else(|| KbError::NoFrontMatter(id.into()))?;
    let (front, body) = rest.split_at(end);
    let body = body
        .trim_start_matches("\n---")
        .trim_start_matches(['\r', '\n']);
    let mut title = None;
    let mut tags = Vec::new();
    let mut lang = None;
    let mut status = "published".to_string();
    for line in front.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().trim_matches('"');
        match key.trim() {
            "title" => title = Some(value.to_string()),
            "tags" => {
                tags = value
                    .trim_matches(['[', ']'])
                    .split(',')
                    .map(|t| t.trim().trim_matches('"').to_string())
                    .filter(|t| !t.is_empty())
                    .collect()
            }
            "lang" => lang = Lang::from_code(value),
            "status" => status = value.to_string(),
            _ => {}
        }
    }
    let title = title.ok_or_else(|| KbError::NoTitle(id.into()))?;
    Ok(Article {
        id: id.into(),
        title,
        tags,
        lang,
        status,
        body: body.to_string(),
    })
}

/// Reads every `*.md` article in `dir` (sorted by file name).
pub fn load_dir(dir: &Path) -> Result<Vec<Article>, KbError> {
    let io = |path: &Path, source| KbError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).map_err(|e| io(p, e))?;
            let id = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            parse_article(&id, &text)
        })
        .collect()
}

#[derive(Debug, Clone)]
struct Chunk {
    passage: Passage,
    tf: HashMap<String, u32>,
    len: usize,
}

/// The index.
#[derive(Debug, Clone, Default)]
pub struct KeywordIndex {
    chunks: Vec<Chunk>,
    df: HashMap<String, u32>,
    avg_len: f32,
}

impl KeywordIndex {
    /// Indexes the published articles, one chunk per `##` section.
    pub fn new(articles: &[Article]) -> Self {
        let mut chunks = Vec::new();
        for a in articles.iter().filter(|a| a.status == "published") {
            // One chunk per `##` section; the heading stays in the chunk text
            // (as Markdown) for matching, and sentence splitting skips it.
            let mut sections: Vec<String> = vec![String::new()];
            for line in a.body.lines() {
                if line.starts_with("## ") {
                    sections.push(format!("{line}\n"));
                } else if line.starts_with("# ") {
                    continue;
                } else if let Some(last) = sections.last_mut() {
                    last.push_str(line);
                    last.push('\n');
                }
            }
            for text in sections.into_iter().filter(|t| {
                t.lines()
                    .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
            }) {
                let n = chunks.len();
                let text = text.trim().to_string();
                let mut words = terms(&a.title);
                words.extend(a.tags.iter().flat_map(|t| terms(t)));
                words.extend(terms(&text));
                let mut tf = HashMap::new();
                for w in &words {
                    *tf.entry(w.clone()).or_insert(0) += 1;
                }
                chunks.push(Chunk {
                    passage: Passage {
                        article_id: a.id.clone(),
                        version: 1,
                        chunk_id: format!("{}#{}", a.id, n),
                        title: a.title.clone(),
                        lang: a.lang.or_else(|| detect(&text)),
                        text,
                        score: 0.0,
                    },
                    len: words.len(),
                    tf,
                });
            }
        }
        let mut df = HashMap::new();
        for c in &chunks {
            for t in c.tf.keys() {
                *df.entry(t.clone()).or_insert(0) += 1;
            }
        }
        let avg_len = if chunks.is_empty() {
            1.0
        } else {
            chunks.iter().map(|c| c.len as f32).sum::<f32>() / chunks.len() as f32
        };
        Self {
            chunks,
            df,
            avg_len,
        }
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// BM25 search; chunks in another language than `lang` score half.
    pub fn query(&self, query: &str, lang: Option<Lang>, k: usize) -> Vec<Passage> {
        let q = terms(query);
        let n = self.chunks.len() as f32;
        let mut scored: Vec<(f32, usize)> = self
            .chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut s = 0.0;
                for t in &q {
                    let Some(&f) = c.tf.get(t) else { continue };
                    let df = self.df.get(t).copied().unwrap_or(0) as f32;
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    let f = f as f32;
                    s += idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * c.len as f32 / self.avg_len));
                }
                if lang.is_some() && c.passage.lang.is_some() && c.passage.lang != lang {
                    s *= 0.5;
                }
                (s, i)
            })
            .filter(|(s, _)| *s > 0.0)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(k)
            .map(|(s, i)| Passage {
                score: s,
                ..self.chunks[i].passage.clone()
            })
            .collect()
    }
}

#[async_trait]
impl Retriever for KeywordIndex {
    async fn search(
        &self,
        query: &str,
        lang: Option<Lang>,
        k: usize,
    ) -> Result<Vec<Passage>, RetrieveError> {
        Ok(self.query(query, lang, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROAMING: &str = "---\ntitle: Roaming abroad\ntags: [roaming, travel]\nlang: en\nstatus: published\n---\n# Roaming abroad\n\nRoaming in the EU is included.\n\n## Outside the EU\n\nThe World Pass costs €5 per day.\n";
    const STORES: &str =
        "---\ntitle: 门店营业时间\nlang: zh\n---\n门店周一至周六9:00至20:00营业。\n";
    const DRAFT: &str = "---\ntitle: Secret draft\nstatus: draft\n---\nNot yet.\n";

    #[test]
    fn parses_front_matter() {
        let a = parse_article("roaming", ROAMING).unwrap();
        assert_eq!(a.title, "Roaming abroad");
        assert_eq!(a.tags, vec!["roaming", "travel"]);
        assert_eq!(a.lang, Some(Lang::En));
        assert!(a.body.starts_with("# Roaming abroad"));
        assert!(matches!(
            parse_article("x", "no front matter"),
            Err(KbError::NoFrontMatter(_))
        ));
        assert!(matches!(
            parse_article("x", "---\nlang: en\n---\nbody"),
            Err(KbError::NoTitle(_))
        ));
    }

    #[test]
    fn sections_become_chunks_and_drafts_are_skipped() {
        let arts = [
            parse_article("roaming", ROAMING).unwrap(),
            parse_article("stores", STORES).unwrap(),
            parse_article("draft", DRAFT).unwrap(),
        ];
        let idx = KeywordIndex::new(&arts);
        assert_eq!(idx.len(), 3);
        let hits = idx.query("How much is the World Pass per day?", Some(Lang::En), 3);
        assert_eq!(hits[0].chunk_id, "roaming#1");
        assert!(hits[0].text.contains("€5"));
        let hits = idx.query("门店几点营业", Some(Lang::Zh), 3);
        assert_eq!(hits[0].article_id, "stores");
        assert!(idx.query("Secret draft", None, 3).is_empty());
    }
}
