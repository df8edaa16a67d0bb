//! Lexical retrieval: BM25 over a tantivy index with a tokenizer that
//! understands both English and Chinese.
//!
//! Latin-script text is split into words, lowercased, stop-worded and
//! stemmed (English Snowball), so "returns" finds "return". Chinese has no
//! spaces, so runs of CJK characters are indexed as overlapping character
//! bigrams ("退货政策" → 退货, 货政, 政策): no dictionary, no out-of-vocabulary
//! words, and a Chinese question matches any passage sharing two-character
//! sequences with it. A lone CJK character is indexed as itself.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions,
};
use tantivy::tokenizer::{
    Language, LowerCaser, Stemmer, StopWordFilter, TextAnalyzer, Token, TokenStream, Tokenizer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::chunk::is_cjk;
use crate::error::{KbError, Result};

/// Name under which the analyzer is registered.
const ANALYZER: &str = "switchboard";

/// Splits text into Latin words and CJK bigrams (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct MixedTokenizer;

/// Token stream of [`MixedTokenizer`]: tokens are computed up front.
#[derive(Debug)]
pub struct MixedTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for MixedTokenStream {
    fn advance(&mut self) -> bool {
        if self.next < self.tokens.len() {
            self.next += 1;
            true
        } else {
            false
        }
    }
    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for MixedTokenizer {
    type TokenStream<'a> = MixedTokenStream;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> MixedTokenStream {
        MixedTokenStream {
            tokens: mixed_tokens(text),
            next: 0,
        }
    }
}

fn mixed_tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let push = |from: usize, to: usize, out: &mut Vec<Token>| {
        let position = out.len();
        out.push(Token {
            offset_from: from,
            offset_to: to,
            position,
            text: text[from..to].to_string(),
            position_length: 1,
        });
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i + 1).map(|(o, _)| *o).unwrap_or(text.len());
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        if is_cjk(c) {
            let mut j = i;
            while j + 1 < chars.len() && is_cjk(chars[j + 1].1) {
                j += 1;
            }
            if j == i {
                push(start, end_of(i), &mut out);
            } else {
                for (k, (offset, _)) in chars.iter().enumerate().take(j).skip(i) {
                    push(*offset, end_of(k + 1), &mut out);
                }
            }
            i = j + 1;
        } else if c.is_alphanumeric() {
            let mut j = i;
            while j + 1 < chars.len() && chars[j + 1].1.is_alphanumeric() && !is_cjk(chars[j + 1].1)
            {
                j += 1;
            }
            push(start, end_of(j), &mut out);
            i = j + 1;
        } else {
            i += 1;
        }
    }
    out
}

/// The analyzer used for indexing and querying: mixed tokens, lowercase, English stop words, stemming.
pub fn analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(MixedTokenizer).filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop) => builder
            .filter(stop)
            .filter(Stemmer::new(Language::English))
            .build(),
        None => builder.filter(Stemmer::new(Language::English)).build(),
    }
}

/// Lowercased words and CJK bigrams of `text`, without stop words or stemming.
pub fn analyze_plain(text: &str) -> Vec<String> {
    mixed_tokens(text)
        .into_iter()
        .map(|t| t.text.to_lowercase())
        .collect()
}

/// A passage as the lexical index sees it.
#[derive(Debug, Clone)]
pub struct LexDoc {
    /// Chunk key (shared with the vector index).
    pub key: u64,
    /// Text searched: title, heading path and passage.
    pub text: String,
    /// Language code.
    pub lang: String,
    /// Tags.
    pub tags: Vec<String>,
}

/// Restricts a search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only passages in this language.
    pub lang: Option<String>,
    /// Only passages carrying all of these tags.
    pub tags: Vec<String>,
}

/// BM25 index of the published passages.
pub struct LexicalIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter<TantivyDocument>>,
    f_key: Field,
    f_text: Field,
    f_lang: Field,
    f_tag: Field,
}

impl std::fmt::Debug for LexicalIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LexicalIndex").finish_non_exhaustive()
    }
}

fn schema() -> Schema {
    let mut b = Schema::builder();
    b.add_u64_field("key", INDEXED | FAST);
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    b.add_text_field("text", text);
    b.add_text_field("lang", STRING);
    b.add_text_field("tag", STRING);
    b.build()
}

impl LexicalIndex {
    /// Opens (or creates) the index in `dir`, or in memory when `dir` is `None`.
    /// An index with another schema is wiped and recreated (it is derived data).
    pub fn open(dir: Option<&Path>) -> Result<Self> {
        let schema = schema();
        let index = match dir {
            None => Index::create_in_ram(schema.clone()),
            Some(dir) => {
                std::fs::create_dir_all(dir)?;
                match Index::open_in_dir(dir) {
                    Ok(index) if index.schema() == schema => index,
                    _ => {
                        for entry in std::fs::read_dir(dir)? {
                            let p = entry?.path();
                            if p.is_file() {
                                std::fs::remove_file(p)?;
                            }
                        }
                        Index::create_in_dir(dir, schema.clone())?
                    }
                }
            }
        };
        index.tokenizers().register(ANALYZER, analyzer());
        let writer = index.writer_with_num_threads(1, 32 << 20)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let field = |n: &str| {
            schema
                .get_field(n)
                .map_err(|e| KbError::Index(format!("schema: {e}")))
        };
        Ok(Self {
            f_key: field("key")?,
            f_text: field("text")?,
            f_lang: field("lang")?,
            f_tag: field("tag")?,
            index,
            reader,
            writer: Mutex::new(writer),
        })
    }

    fn writer(&self) -> Result<std::sync::MutexGuard<'_, IndexWriter<TantivyDocument>>> {
        self.writer
            .lock()
            .map_err(|_| KbError::Index("lexical writer lock poisoned".into()))
    }

    /// Adds passages (call [`LexicalIndex::commit`] to make them searchable).
    pub fn add(&self, docs: &[LexDoc]) -> Result<()> {
        let w = self.writer()?;
        for d in docs {
            let mut doc = TantivyDocument::default();
            doc.add_u64(self.f_key, d.key);
            doc.add_text(self.f_text, &d.text);
            doc.add_text(self.f_lang, &d.lang);
            for t in &d.tags {
                doc.add_text(self.f_tag, t);
            }
            w.add_document(doc)?;
        }
        Ok(())
    }

    /// Removes passages by key.
    pub fn remove(&self, keys: &[u64]) -> Result<()> {
        let w = self.writer()?;
        for &k in keys {
            w.delete_term(Term::from_field_u64(self.f_key, k));
        }
        Ok(())
    }

    /// Removes everything.
    pub fn clear(&self) -> Result<()> {
        self.writer()?.delete_all_documents()?;
        Ok(())
    }

    /// Makes pending changes durable and visible.
    pub fn commit(&self) -> Result<()> {
        self.writer()?.commit()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Number of searchable passages.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Whether no passage is searchable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys of all searchable passages.
    pub fn keys(&self) -> Result<HashSet<u64>> {
        let searcher = self.reader.searcher();
        let mut out = HashSet::new();
        for seg in searcher.segment_readers() {
            let col = seg.fast_fields().u64("key")?;
            let alive = seg.alive_bitset();
            for doc in 0..seg.max_doc() {
                if alive.is_none_or(|a| a.is_alive(doc))
                    && let Some(k) = col.first(doc)
                {
                    out.insert(k);
                }
            }
        }
        Ok(out)
    }

    /// The `n` best passages for `text` by BM25, restricted by `filter`.
    pub fn search(&self, text: &str, filter: &Filter, n: usize) -> Result<Vec<(u64, f32)>> {
        let mut analyzer = self.index.tokenizer_for_field(self.f_text)?;
        let mut stream = analyzer.token_stream(text);
        let mut seen = HashSet::new();
        let mut terms: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        while let Some(tok) = stream.next() {
            if seen.insert(tok.text.clone()) {
                terms.push((
                    Occur::Should,
                    Box::new(TermQuery::new(
                        Term::from_field_text(self.f_text, &tok.text),
                        IndexRecordOption::WithFreqs,
                    )),
                ));
            }
        }
        if terms.is_empty() || n == 0 {
            return Ok(Vec::new());
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, Box::new(BooleanQuery::new(terms)))];
        if let Some(lang) = &filter.lang {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f_lang, lang),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        for tag in &filter.tags {
            clauses.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f_tag, tag),
                    IndexRecordOption::Basic,
                )),
            ));
        }
        let query = BooleanQuery::new(clauses);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(n).order_by_score())?;
        let mut out = Vec::with_capacity(top.len());
        for (score, addr) in top {
            let seg = searcher.segment_reader(addr.segment_ord);
            if let Some(k) = seg.fast_fields().u64("key")?.first(addr.doc_id) {
                out.push((k, score));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        let mut a = analyzer();
        let mut st = a.token_stream(s);
        let mut v = Vec::new();
        while let Some(t) = st.next() {
            v.push(t.text.clone());
        }
        v
    }

    #[test]
    fn tokenizer_mixes_words_and_bigrams() {
        assert_eq!(
            texts("Returns of the iPhone 15"),
            vec!["return", "iphon", "15"]
        );
        assert_eq!(
            texts("退货政策 VIP会员"),
            vec!["退货", "货政", "政策", "vip", "会员"]
        );
        assert_eq!(texts("我"), vec!["我"]);
    }

    #[test]
    fn bm25_with_filters_and_deletes() {
        let idx = LexicalIndex::open(None).unwrap();
        let doc = |key, text: &str, lang: &str, tags: &[&str]| LexDoc {
            key,
            text: text.into(),
            lang: lang.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        idx.add(&[
            doc(1, "Returns are accepted within 30 days", "en", &["returns"]),
            doc(2, "我们接受30天内退货", "zh", &["returns"]),
            doc(3, "Shipping takes 2 days", "en", &["shipping"]),
        ])
        .unwrap();
        idx.commit().unwrap();
        assert_eq!(idx.len(), 3);
        assert_eq!(
            idx.search("how do I return it", &Filter::default(), 5)
                .unwrap()[0]
                .0,
            1
        );
        assert_eq!(
            idx.search("怎么退货", &Filter::default(), 5).unwrap()[0].0,
            2
        );
        let zh = Filter {
            lang: Some("zh".into()),
            tags: vec![],
        };
        assert!(
            idx.search("30 days", &zh, 5)
                .unwrap()
                .iter()
                .all(|(k, _)| *k == 2)
        );
        let ship = Filter {
            lang: None,
            tags: vec!["shipping".into()],
        };
        assert!(idx.search("returns", &ship, 5).unwrap().is_empty());
        idx.remove(&[1]).unwrap();
        idx.commit().unwrap();
        assert_eq!(idx.keys().unwrap(), HashSet::from([2, 3]));
    }
}
