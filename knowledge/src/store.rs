//! The article store: articles and their full version history in SQL
//! (SQLite by default, PostgreSQL in production) through sqlx's `Any` driver.
//!
//! Every change of content is a new, immutable row in `kb_versions` with its
//! author, a note and a timestamp; `kb_articles` holds the head (latest
//! version), the status and which version is live. Editing a published
//! article makes a new version without changing what search serves until it
//! is published; rolling back copies an old version into a new one, so the
//! history is never rewritten. Version bumps use optimistic concurrency.
//!
//! The schema lives in `gateway/migrations/{sqlite,postgres}/0002_knowledge.sql`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use crate::chunk::detect_lang;
use crate::error::{KbError, Result};

/// Id of an article (UUID v7).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArticleId(Uuid);

impl ArticleId {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
    /// The underlying UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl Default for ArticleId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ArticleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ArticleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArticleId({})", self.0)
    }
}

impl FromStr for ArticleId {
    type Err = KbError;
    fn from_str(s: &str) -> Result<Self> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| KbError::Invalid(format!("article id {s:?} is not a UUID")))
    }
}

/// Lifecycle of an article. Only `Published` articles are searchable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Never published (or unpublished): invisible to search.
    Draft,
    /// Its `published_version` is served by search.
    Published,
    /// Retired: invisible to search, kept with its history.
    Archived,
}

impl Status {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Published => "published",
            Status::Archived => "archived",
        }
    }
}

impl FromStr for Status {
    type Err = KbError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "draft" => Ok(Status::Draft),
            "published" => Ok(Status::Published),
            "archived" => Ok(Status::Archived),
            _ => Err(KbError::Invalid(format!("status {s:?}"))),
        }
    }
}

/// Content of an article as written by an editor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Language code (`en`, `zh`, …); detected from the text when absent.
    #[serde(default)]
    pub lang: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// An article's head: metadata of its latest version plus lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Article {
    /// Id.
    pub id: ArticleId,
    /// Title of the latest version.
    pub title: String,
    /// Language of the latest version.
    pub lang: String,
    /// Tags of the latest version.
    pub tags: Vec<String>,
    /// Lifecycle status.
    pub status: Status,
    /// Latest version number (1-based).
    pub version: i64,
    /// Version served by search while published.
    pub published_version: Option<i64>,
    /// Import key (relative file path) for imported articles.
    pub source: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: String,
}

impl Article {
    /// Whether the latest version differs from the live one.
    pub fn has_unpublished_changes(&self) -> bool {
        self.published_version != Some(self.version)
    }
}

/// One immutable version of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Article.
    pub article_id: ArticleId,
    /// Number (1-based, increasing).
    pub version: i64,
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Language.
    pub lang: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Who wrote it.
    pub author: String,
    /// What happened (`created`, `edited`, `rolled back to v2`, `imported from …`).
    pub note: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A version without its body, for history lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Number.
    pub version: i64,
    /// Title.
    pub title: String,
    /// Who wrote it.
    pub author: String,
    /// What happened.
    pub note: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Whether this is the live version.
    pub published: bool,
}

/// Filter for [`ArticleStore::list`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ArticleFilter {
    /// Only this status.
    pub status: Option<Status>,
    /// Only this language.
    pub lang: Option<String>,
    /// Only articles with this tag.
    pub tag: Option<String>,
    /// Title contains (case-insensitive).
    pub title: Option<String>,
    /// Max rows (default 100, at most 1000).
    pub limit: Option<i64>,
    /// Rows to skip.
    pub offset: Option<i64>,
}

/// One line of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffLine {
    /// `equal`, `insert` or `delete`.
    pub op: String,
    /// The line (without its newline).
    pub text: String,
}

/// Differences between two versions of an article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    /// Older side.
    pub from: i64,
    /// Newer side.
    pub to: i64,
    /// Unified diff (title, tags and body).
    pub unified: String,
    /// Line-by-line view for display.
    pub lines: Vec<DiffLine>,
}

/// Diffs two versions (title, language and tags as header lines, then the body).
pub fn diff_versions(a: &Version, b: &Version) -> Diff {
    let render = |v: &Version| {
        format!(
            "# {}\nlang: {}\ntags: {}\n\n{}\n",
            v.title,
            v.lang,
            v.tags.join(", "),
            v.body.trim_end()
        )
    };
    let (old, new) = (render(a), render(b));
    let diff = similar::TextDiff::from_lines(&old, &new);
    let unified = diff
        .unified_diff()
        .context_radius(3)
        .header(&format!("v{}", a.version), &format!("v{}", b.version))
        .to_string();
    let lines = diff
        .iter_all_changes()
        .map(|c| DiffLine {
            op: match c.tag() {
                similar::ChangeTag::Equal => "equal",
                similar::ChangeTag::Insert => "insert",
                similar::ChangeTag::Delete => "delete",
            }
            .to_string(),
            text: c.value().trim_end_matches('\n').to_string(),
        })
        .collect();
    Diff {
        from: a.version,
        to: b.version,
        unified,
        lines,
    }
}

/// Limits on user input.
const MAX_TITLE: usize = 300;
const MAX_BODY: usize = 1 << 20;
const MAX_TAGS: usize = 32;
const MAX_TAG: usize = 64;

/// Normalised, validated draft content: (title, body, lang, tags).
fn validate(d: &Draft) -> Result<(String, String, String, Vec<String>)> {
    let title = d.title.trim().to_string();
    if title.is_empty() {
        return Err(KbError::Invalid("title is empty".into()));
    }
    if title.chars().count() > MAX_TITLE {
        return Err(KbError::Invalid(format!(
            "title longer than {MAX_TITLE} characters"
        )));
    }
    if d.body.len() > MAX_BODY {
        return Err(KbError::Invalid(format!(
            "body larger than {MAX_BODY} bytes"
        )));
    }
    let lang = match d.lang.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) => {
            let l = l.to_ascii_lowercase();
            if l.len() > 16 || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(KbError::Invalid(format!("language {l:?}")));
            }
            l
        }
        None => detect_lang(&format!("{title}\n{}", d.body)).to_string(),
    };
    let mut tags: Vec<String> = Vec::new();
    for t in &d.tags {
        let t = t.trim().to_lowercase();
        if t.is_empty() {
            continue;
        }
        if t.chars().count() > MAX_TAG
            || !t
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' ' | '.'))
        {
            return Err(KbError::Invalid(format!("tag {t:?}")));
        }
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(KbError::Invalid(format!("more than {MAX_TAGS} tags")));
    }
    Ok((title, d.body.clone(), lang, tags))
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn tags_json(tags: &[String]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

fn parse_tags(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| KbError::Storage(format!("corrupt tags {s:?}: {e}")))
}

fn article_from_row(row: &AnyRow) -> Result<Article> {
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    let tags: String = row.try_get("tags")?;
    Ok(Article {
        id: id.parse()?,
        title: row.try_get("title")?,
        lang: row.try_get("lang")?,
        tags: parse_tags(&tags)?,
        status: status.parse()?,
        version: row.try_get("current_version")?,
        published_version: row.try_get("published_version")?,
        source: row.try_get("source")?,
        created_at: from_ms(row.try_get("created_at")?),
        updated_at: from_ms(row.try_get("updated_at")?),
        updated_by: row.try_get("updated_by")?,
    })
}

fn version_from_row(row: &AnyRow) -> Result<Version> {
    let id: String = row.try_get("article_id")?;
    let tags: String = row.try_get("tags")?;
    Ok(Version {
        article_id: id.parse()?,
        version: row.try_get("version")?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        lang: row.try_get("lang")?,
        tags: parse_tags(&tags)?,
        author: row.try_get("author")?,
        note: row.try_get("note")?,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

macro_rules! article_cols {
    () => {
        "id, title, lang, tags, status, current_version, published_version, source, created_at, updated_at, updated_by"
    };
}

/// Articles and versions in SQL (see the module docs).
#[derive(Debug, Clone)]
pub struct ArticleStore {
    pool: AnyPool,
}

impl ArticleStore {
    /// Wraps a pool whose database has the `0002_knowledge` migration applied.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Creates an article as a draft (version 1).
    pub async fn create(
        &self,
        draft: &Draft,
        author: &str,
        source: Option<&str>,
    ) -> Result<Article> {
        let (title, body, lang, tags) = validate(draft)?;
        let id = ArticleId::new();
        let now = ms(Utc::now());
        let tags = tags_json(&tags);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO kb_articles (id, title, lang, tags, status, current_version, published_version, source, created_at, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, 'draft', 1, NULL, $5, $6, $6, $7)",
        )
        .bind(id.to_string())
        .bind(&title)
        .bind(&lang)
        .bind(&tags)
        .bind(source)
        .bind(now)
        .bind(author)
        .execute(&mut *tx)
        .await?;
        let note = match source {
            Some(s) => format!("imported from {s}"),
            None => "created".to_string(),
        };
        Self::insert_version(
            &mut tx, id, 1, &title, &body, &lang, &tags, author, &note, now,
        )
        .await?;
        tx.commit().await?;
        self.get(id).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert_version(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        id: ArticleId,
        version: i64,
        title: &str,
        body: &str,
        lang: &str,
        tags_json: &str,
        author: &str,
        note: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO kb_versions (article_id, version, title, body, lang, tags, author, note, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.to_string())
        .bind(version)
        .bind(title)
        .bind(body)
        .bind(lang)
        .bind(tags_json)
        .bind(author)
        .bind(note)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Saves an edit as a new version. With `base_version`, fails with
    /// [`KbError::Conflict`] if someone else saved since. What search serves
    /// does not change until the article is published again.
    pub async fn update(
        &self,
        id: ArticleId,
        draft: &Draft,
        author: &str,
        base_version: Option<i64>,
    ) -> Result<Article> {
        self.new_version(id, draft, author, base_version, "edited", false)
            .await
    }

    /// Appends a version and optionally makes it the live one, atomically.
    async fn new_version(
        &self,
        id: ArticleId,
        draft: &Draft,
        author: &str,
        base_version: Option<i64>,
        note: &str,
        publish: bool,
    ) -> Result<Article> {
        let (title, body, lang, tags) = validate(draft)?;
        let tags = tags_json(&tags);
        let current = self.get(id).await?;
        if let Some(base) = base_version
            && base != current.version
        {
            return Err(KbError::Conflict(format!(
                "article {id} is at version {}, edit was based on {base}",
                current.version
            )));
        }
        let next = current.version + 1;
        let now = ms(Utc::now());
        let mut tx = self.pool.begin().await?;
        let (status, published) = if publish {
            (Status::Published, Some(next))
        } else {
            (current.status, current.published_version)
        };
        let updated = sqlx::query(
            "UPDATE kb_articles SET title = $1, lang = $2, tags = $3, current_version = $4, status = $5, published_version = $6, updated_at = $7, updated_by = $8 \
             WHERE id = $9 AND current_version = $10",
        )
        .bind(&title)
        .bind(&lang)
        .bind(&tags)
        .bind(next)
        .bind(status.as_str())
        .bind(published)
        .bind(now)
        .bind(author)
        .bind(id.to_string())
        .bind(current.version)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(KbError::Conflict(format!(
                "article {id} changed concurrently; reload and retry"
            )));
        }
        Self::insert_version(
            &mut tx, id, next, &title, &body, &lang, &tags, author, note, now,
        )
        .await?;
        tx.commit().await?;
        self.get(id).await
    }

    /// Makes `version` (default: the latest) the live version and the article published.
    pub async fn publish(
        &self,
        id: ArticleId,
        version: Option<i64>,
        author: &str,
    ) -> Result<Article> {
        let current = self.get(id).await?;
        let v = version.unwrap_or(current.version);
        if v < 1 || v > current.version {
            return Err(KbError::NotFound(format!("version {v} of article {id}")));
        }
        self.set_state(id, Status::Published, Some(v), author).await
    }

    /// Archives the article: search stops serving it; history is kept.
    pub async fn archive(&self, id: ArticleId, author: &str) -> Result<Article> {
        let current = self.get(id).await?;
        self.set_state(id, Status::Archived, current.published_version, author)
            .await
    }

    /// Takes a published article back to draft (search stops serving it).
    pub async fn unpublish(&self, id: ArticleId, author: &str) -> Result<Article> {
        let current = self.get(id).await?;
        self.set_state(id, Status::Draft, current.published_version, author)
            .await
    }

    async fn set_state(
        &self,
        id: ArticleId,
        status: Status,
        published: Option<i64>,
        author: &str,
    ) -> Result<Article> {
        let n = sqlx::query(
            "UPDATE kb_articles SET status = $1, published_version = $2, updated_at = $3, updated_by = $4 WHERE id = $5",
        )
        .bind(status.as_str())
        .bind(published)
        .bind(ms(Utc::now()))
        .bind(author)
        .bind(id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(KbError::NotFound(format!("article {id}")));
        }
        self.get(id).await
    }

    /// Restores the content of `version` as a new version. A published article
    /// goes live with the restored content at once; otherwise it stays as it was.
    pub async fn rollback(&self, id: ArticleId, version: i64, author: &str) -> Result<Article> {
        let old = self.get_version(id, version).await?;
        let current = self.get(id).await?;
        let draft = Draft {
            title: old.title,
            body: old.body,
            lang: Some(old.lang),
            tags: old.tags,
        };
        self.new_version(
            id,
            &draft,
            author,
            Some(current.version),
            &format!("rolled back to v{version}"),
            current.status == Status::Published,
        )
        .await
    }

    /// The article head.
    pub async fn get(&self, id: ArticleId) -> Result<Article> {
        let row = sqlx::query(concat!(
            "SELECT ",
            article_cols!(),
            " FROM kb_articles WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| KbError::NotFound(format!("article {id}")))?;
        article_from_row(&row)
    }

    /// The article imported from `source`, if any.
    pub async fn find_by_source(&self, source: &str) -> Result<Option<Article>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            article_cols!(),
            " FROM kb_articles WHERE source = $1"
        ))
        .bind(source)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(article_from_row).transpose()
    }

    /// One version with its body.
    pub async fn get_version(&self, id: ArticleId, version: i64) -> Result<Version> {
        let row = sqlx::query("SELECT * FROM kb_versions WHERE article_id = $1 AND version = $2")
            .bind(id.to_string())
            .bind(version)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| KbError::NotFound(format!("version {version} of article {id}")))?;
        version_from_row(&row)
    }

    /// History, newest first.
    pub async fn versions(&self, id: ArticleId) -> Result<Vec<VersionInfo>> {
        let head = self.get(id).await?;
        let rows = sqlx::query(
            "SELECT version, title, author, note, created_at FROM kb_versions WHERE article_id = $1 ORDER BY version DESC",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let version: i64 = r.try_get("version")?;
                Ok(VersionInfo {
                    version,
                    title: r.try_get("title")?,
                    author: r.try_get("author")?,
                    note: r.try_get("note")?,
                    created_at: from_ms(r.try_get("created_at")?),
                    published: head.status == Status::Published
                        && head.published_version == Some(version),
                })
            })
            .collect()
    }

    /// Diff between two versions of an article.
    pub async fn diff(&self, id: ArticleId, from: i64, to: i64) -> Result<Diff> {
        let a = self.get_version(id, from).await?;
        let b = self.get_version(id, to).await?;
        Ok(diff_versions(&a, &b))
    }

    /// Articles, most recently changed first.
    pub async fn list(&self, f: &ArticleFilter) -> Result<Vec<Article>> {
        let mut sql =
            concat!("SELECT ", article_cols!(), " FROM kb_articles WHERE 1 = 1").to_string();
        let mut binds: Vec<String> = Vec::new();
        if let Some(s) = f.status {
            binds.push(s.as_str().to_string());
            sql.push_str(&format!(" AND status = ${}", binds.len()));
        }
        if let Some(l) = &f.lang {
            binds.push(l.to_ascii_lowercase());
            sql.push_str(&format!(" AND lang = ${}", binds.len()));
        }
        if let Some(t) = &f.tag {
            // Tags are JSON-encoded; match the quoted element. LIKE wildcards are escaped.
            let quoted = serde_json::to_string(&t.trim().to_lowercase()).unwrap_or_default();
            binds.push(format!("%{}%", like_escape(&quoted)));
            sql.push_str(&format!(" AND tags LIKE ${} ESCAPE '\\'", binds.len()));
        }
        if let Some(t) = f.title.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            binds.push(format!("%{}%", like_escape(&t.to_lowercase())));
            sql.push_str(&format!(
                " AND LOWER(title) LIKE ${} ESCAPE '\\'",
                binds.len()
            ));
        }
        let limit = f.limit.unwrap_or(100).clamp(1, 1000);
        let offset = f.offset.unwrap_or(0).max(0);
        sql.push_str(&format!(
            " ORDER BY updated_at DESC, id LIMIT {limit} OFFSET {offset}"
        ));
        // Audited: user values are bound; only placeholders and clamped integers are formatted in.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(article_from_row)
            .collect()
    }

    /// The live version of an article, if it is published.
    pub async fn live(&self, id: ArticleId) -> Result<Option<Version>> {
        let head = self.get(id).await?;
        match (head.status, head.published_version) {
            (Status::Published, Some(v)) => Ok(Some(self.get_version(id, v).await?)),
            _ => Ok(None),
        }
    }

    /// The live versions of all published articles.
    pub async fn all_live(&self) -> Result<Vec<Version>> {
        let rows = sqlx::query(
            "SELECT v.* FROM kb_versions v JOIN kb_articles a ON a.id = v.article_id AND a.published_version = v.version \
             WHERE a.status = 'published' ORDER BY v.article_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(version_from_row).collect()
    }
}

fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
