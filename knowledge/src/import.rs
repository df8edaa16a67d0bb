//! Importing a folder of Markdown, HTML and plain-text files as articles.
//!
//! Each file becomes one article keyed by its path relative to the folder,
//! so importing the same folder again updates those articles (a new version
//! only when the content changed) instead of duplicating them. Markdown may
//! start with a simple front matter block (`title:`, `tags:`, `lang:`); the
//! title otherwise comes from the first `# ` heading (HTML: `<title>`/`<h1>`),
//! falling back to the file name. HTML is converted to Markdown-like text
//! with `html2text`, keeping headings so the chunker still sees sections.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{KbError, Result};
use crate::kb::KnowledgeBase;
use crate::store::{ArticleId, Draft, Status};

/// How imported articles are created.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportOptions {
    /// Publish imported articles (and re-publish changed ones).
    pub publish: bool,
    /// Tags added to every imported article.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Language of every article (detected per file when `None`).
    #[serde(default)]
    pub lang: Option<String>,
}

/// Outcome of an import.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportReport {
    /// New articles.
    pub created: Vec<ArticleId>,
    /// Articles that got a new version.
    pub updated: Vec<ArticleId>,
    /// Files whose article already had this content.
    pub unchanged: usize,
    /// Files skipped, with the reason.
    pub skipped: Vec<(String, String)>,
}

/// A file read and parsed into an article draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFile {
    /// Relative path (forward slashes): the import key.
    pub source: String,
    /// Title, body, language, tags.
    pub draft: Draft,
}

/// File extensions imported.
pub const EXTENSIONS: &[&str] = &["md", "markdown", "txt", "text", "html", "htm"];

/// Lists importable files under `dir`, recursively, in a stable order.
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let p = entry?.path();
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if hidden {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().to_lowercase().as_str()))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Parses file content by extension.
pub fn parse_file(source: &str, ext: &str, content: &str) -> Result<ParsedFile> {
    let stem = Path::new(source)
        .file_stem()
        .map(|s| s.to_string_lossy().replace(['-', '_'], " "))
        .unwrap_or_else(|| source.to_string());
    let (mut meta_title, mut tags, mut lang) = (None, Vec::new(), None);
    let mut body = match ext {
        "html" | "htm" => {
            meta_title = html_title(content);
            html2text::from_read(content.as_bytes(), 100_000)
                .map_err(|e| KbError::Invalid(format!("{source}: html: {e}")))?
        }
        "md" | "markdown" => {
            let (front, rest) = front_matter(content);
            for (k, v) in front {
                match k.as_str() {
                    "title" => meta_title = Some(v),
                    "lang" | "language" => lang = Some(v),
                    "tags" => {
                        tags = v
                            .trim_matches(|c| c == '[' || c == ']')
                            .split(',')
                            .map(|t| t.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
                            .filter(|t| !t.is_empty())
                            .collect()
                    }
                    _ => {}
                }
            }
            rest.to_string()
        }
        _ => content.to_string(),
    };
    // A leading `# Title` is the title, not a section of the body.
    let first_h1 = body
        .lines()
        .find(|l| !l.trim().is_empty())
        .and_then(|l| l.trim().strip_prefix("# ").map(|t| t.trim().to_string()));
    if let Some(h1) = first_h1
        && (meta_title.is_none() || meta_title.as_deref() == Some(h1.as_str()))
    {
        {
            meta_title = Some(h1.clone());
            let pos = body.find("# ").unwrap_or(0);
            let end = body[pos..]
                .find('\n')
                .map(|e| pos + e + 1)
                .unwrap_or(body.len());
            body = body[end..].to_string();
        }
    }
    let title = meta_title.filter(|t| !t.trim().is_empty()).unwrap_or(stem);
    Ok(ParsedFile {
        source: source.to_string(),
        draft: Draft {
            title: title.trim().to_string(),
            body: body.trim().to_string(),
            lang,
            tags,
        },
    })
}

fn html_title(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let start = lower.find("<title>")? + "<title>".len();
    let end = lower[start..].find("</title>")? + start;
    let t = html.get(start..end)?.trim().to_string();
    (!t.is_empty()).then_some(t)
}

/// Splits `---` front matter (`key: value` lines) from a Markdown body.
fn front_matter(content: &str) -> (Vec<(String, String)>, &str) {
    let Some(rest) = content
        .strip_prefix("---\n")
        .or_else(|| content.strip_prefix("---\r\n"))
    else {
        return (Vec::new(), content);
    };
    let Some(end) = rest.find("\n---") else {
        return (Vec::new(), content);
    };
    let meta = rest[..end]
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    let after = &rest[end + 4..];
    let after = after.split_once('\n').map(|x| x.1).unwrap_or("");
    (meta, after)
}

impl KnowledgeBase {
    /// Imports every Markdown/HTML/text file under `dir` (see the module docs),
    /// calling `progress(done, total, path)` after each file.
    pub async fn import_dir(
        &self,
        dir: &Path,
        author: &str,
        opts: &ImportOptions,
        progress: &mut (dyn FnMut(usize, usize, &Path) + Send),
    ) -> Result<ImportReport> {
        let files = list_files(dir)?;
        let total = files.len();
        let mut report = ImportReport::default();
        for (i, path) in files.iter().enumerate() {
            let rel = path
                .strip_prefix(dir)
                .unwrap_or(path)
                .to_string_lossy()
                .replace('\\', "/");
            match self.import_one(path, &rel, author, opts, &mut report).await {
                Ok(()) => {}
                Err(e @ (KbError::Invalid(_) | KbError::Io(_))) => {
                    tracing::warn!(file = %rel, error = %e, "import skipped a file");
                    report.skipped.push((rel.clone(), e.to_string()));
                }
                Err(e) => return Err(e),
            }
            progress(i + 1, total, path);
        }
        Ok(report)
    }

    /// Imports files given in memory as `(relative name, content)` — what an
    /// upload through the API carries. Same rules as [`KnowledgeBase::import_dir`].
    pub async fn import_files(
        &self,
        files: &[(String, String)],
        author: &str,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        for (name, content) in files {
            let rel = name.replace('\\', "/");
            let ext = Path::new(&rel)
                .extension()
                .map(|e| e.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            if !EXTENSIONS.contains(&ext.as_str()) {
                report.skipped.push((
                    rel.clone(),
                    format!("unsupported file type; use one of {EXTENSIONS:?}"),
                ));
                continue;
            }
            match self
                .import_content(&rel, &ext, content, author, opts, &mut report)
                .await
            {
                Ok(()) => {}
                Err(e @ KbError::Invalid(_)) => report.skipped.push((rel.clone(), e.to_string())),
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    async fn import_one(
        &self,
        path: &Path,
        rel: &str,
        author: &str,
        opts: &ImportOptions,
        report: &mut ImportReport,
    ) -> Result<()> {
        let bytes = tokio::fs::read(path).await?;
        let content = String::from_utf8(bytes)
            .map_err(|_| KbError::Invalid(format!("{rel}: not UTF-8 text")))?;
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        self.import_content(rel, &ext, &content, author, opts, report)
            .await
    }

    async fn import_content(
        &self,
        rel: &str,
        ext: &str,
        content: &str,
        author: &str,
        opts: &ImportOptions,
        report: &mut ImportReport,
    ) -> Result<()> {
        let mut parsed = parse_file(rel, ext, content)?;
        if opts.lang.is_some() {
            parsed.draft.lang = opts.lang.clone();
        }
        for t in &opts.tags {
            if !parsed.draft.tags.contains(t) {
                parsed.draft.tags.push(t.clone());
            }
        }
        let id = match self.store().find_by_source(rel).await? {
            None => {
                let a = self
                    .store()
                    .create(&parsed.draft, author, Some(rel))
                    .await?;
                report.created.push(a.id);
                a.id
            }
            Some(existing) => {
                let head = self
                    .store()
                    .get_version(existing.id, existing.version)
                    .await?;
                let same = head.title == parsed.draft.title
                    && head.body == parsed.draft.body
                    && parsed.draft.lang.as_ref().is_none_or(|l| *l == head.lang)
                    && (parsed.draft.tags.is_empty() || parsed.draft.tags == head.tags);
                if same {
                    report.unchanged += 1;
                    if !opts.publish
                        || existing.status == Status::Published
                            && !existing.has_unpublished_changes()
                    {
                        return Ok(());
                    }
                    existing.id
                } else {
                    let a = self
                        .store()
                        .update(existing.id, &parsed.draft, author, Some(existing.version))
                        .await?;
                    report.updated.push(a.id);
                    a.id
                }
            }
        };
        if opts.publish {
            self.publish(id, None, author).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_front_matter_and_title() {
        let p = parse_file(
            "a/returns.md",
            "md",
            "---\ntitle: Returns\ntags: [returns, policy]\nlang: en\n---\n# Returns\n\nThirty days.\n",
        )
        .unwrap();
        assert_eq!(p.draft.title, "Returns");
        assert_eq!(p.draft.tags, vec!["returns", "policy"]);
        assert_eq!(p.draft.lang.as_deref(), Some("en"));
        assert_eq!(p.draft.body, "Thirty days.");
    }

    #[test]
    fn html_keeps_headings() {
        let p = parse_file(
            "hours.html",
            "html",
            "<html><head><title>Opening hours</title></head><body><h2>Weekdays</h2><p>9 to 18.</p></body></html>",
        )
        .unwrap();
        assert_eq!(p.draft.title, "Opening hours");
        assert!(p.draft.body.contains("## Weekdays"), "{}", p.draft.body);
        assert!(p.draft.body.contains("9 to 18."));
    }

    #[test]
    fn plain_text_title_from_file_name() {
        let p = parse_file("store-locations.txt", "txt", "We have 3 stores.").unwrap();
        assert_eq!(p.draft.title, "store locations");
        assert_eq!(p.draft.body, "We have 3 stores.");
    }
}
