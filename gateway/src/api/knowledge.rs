//! Knowledge-base endpoints: articles with versions (create, edit, publish,
//! archive, roll back, diff), folder-style import of uploaded files, and the
//! search tester.
//!
//! Every staff role may read articles and search (agents look answers up);
//! only knowledge managers and admins change anything. The knowledge base is
//! handed to these routes as an `Extension<Arc<KnowledgeBase>>` by [`routes`].

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};
use switchboard_knowledge::KbError;
use switchboard_knowledge::import::{ImportOptions, ImportReport};
use switchboard_knowledge::kb::{IndexStats, KnowledgeBase, Passage, Query as KbQuery};
use switchboard_knowledge::store::{
    Article, ArticleFilter, ArticleId, Diff, Draft, Status, Version, VersionInfo,
};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::{ApiError, ApiJson, ErrorBody};
use crate::auth::{Role, Staff};

/// The knowledge routes (to be nested under `/api`), carrying the knowledge base.
pub fn routes(kb: Arc<KnowledgeBase>) -> Router<AppState> {
    Router::new()
        .route("/kb/articles", get(list).post(create))
        .route("/kb/articles/{id}", get(get_one).put(update))
        .route("/kb/articles/{id}/publish", post(publish))
        .route("/kb/articles/{id}/unpublish", post(unpublish))
        .route("/kb/articles/{id}/archive", post(archive))
        .route("/kb/articles/{id}/rollback", post(rollback))
        .route("/kb/articles/{id}/versions", get(versions))
        .route("/kb/articles/{id}/versions/{version}", get(version))
        .route("/kb/articles/{id}/diff", get(diff))
        .route("/kb/search", post(search))
        .route("/kb/import", post(import))
        .route("/kb/reindex", post(reindex))
        .layer(Extension(kb))
}

type Kb = Extension<Arc<KnowledgeBase>>;

fn api_error(e: KbError) -> ApiError {
    match e {
        KbError::NotFound(what) => ApiError::not_found(&what),
        KbError::Invalid(m) => ApiError::validation(m),
        KbError::Conflict(m) => ApiError::conflict(m),
        KbError::Storage(m) => ApiError::unavailable(m),
        other => ApiError::internal(other.to_string()),
    }
}

fn may_edit(staff: &Staff) -> Result<(), ApiError> {
    if matches!(staff.user.role, Role::KnowledgeManager | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only knowledge managers and admins change the knowledge base",
        ))
    }
}

fn author(staff: &Staff) -> String {
    staff.user.email.clone()
}

fn parse_id(id: &str) -> Result<ArticleId, ApiError> {
    id.parse().map_err(|_| ApiError::not_found("article"))
}

/// Article list filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// `draft`, `published` or `archived`; default any.
    pub status: Option<String>,
    /// Language code.
    pub lang: Option<String>,
    /// Tag (exact).
    pub tag: Option<String>,
    /// Title contains (case-insensitive).
    pub title: Option<String>,
    /// Max results (1–1000, default 100).
    pub limit: Option<i64>,
    /// Results to skip.
    pub offset: Option<i64>,
}

/// A page of articles.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleList {
    /// Articles, most recently changed first.
    #[schema(value_type = Vec<Object>)]
    pub articles: Vec<Article>,
}

/// New article or edit.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ArticleBody {
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Language code; detected when absent.
    pub lang: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Edits: the version the edit started from (409 if someone saved since).
    pub base_version: Option<i64>,
    /// Publish at once.
    #[serde(default)]
    pub publish: bool,
}

/// An article with the content of its latest version.
#[derive(Debug, Serialize, ToSchema)]
pub struct ArticleView {
    /// Head: status, versions, metadata.
    #[schema(value_type = Object)]
    pub article: Article,
    /// Latest version's content.
    #[schema(value_type = Object)]
    pub content: Version,
}

/// An article after a lifecycle change, with what the index did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Changed {
    /// Head after the change.
    #[schema(value_type = Object)]
    pub article: Article,
    /// Passages added/removed/kept/embedded.
    #[schema(value_type = Object)]
    pub index: IndexStats,
}

/// Which version to publish.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PublishBody {
    /// Version (default: latest).
    pub version: Option<i64>,
}

/// Version to restore.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RollbackBody {
    /// Version whose content becomes a new version.
    pub version: i64,
}

/// History.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    /// Newest first.
    #[schema(value_type = Vec<Object>)]
    pub versions: Vec<VersionInfo>,
}

/// Diff range.
#[derive(Debug, Deserialize, IntoParams)]
pub struct DiffQuery {
    /// Older version.
    pub from: i64,
    /// Newer version.
    pub to: i64,
}

/// A search request.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SearchBody {
    /// The question.
    pub text: String,
    /// Only this language.
    pub lang: Option<String>,
    /// Only articles with all these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Passages wanted (1–50, default 5).
    pub k: Option<usize>,
}

/// Search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResult {
    /// Passages, best first.
    #[schema(value_type = Vec<Object>)]
    pub passages: Vec<Passage>,
    /// Server-side time in milliseconds.
    pub took_ms: f64,
}

/// One uploaded file.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UploadFile {
    /// File name or relative path (`.md`, `.markdown`, `.html`, `.htm`, `.txt`); the import key.
    pub name: String,
    /// UTF-8 content.
    pub content: String,
}

/// Files to import.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImportBody {
    /// Files.
    pub files: Vec<UploadFile>,
    /// Publish imported articles.
    #[serde(default)]
    pub publish: bool,
    /// Tags added to every article.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Language of every article (detected when absent).
    pub lang: Option<String>,
}

#[utoipa::path(get, path = "/api/kb/articles", tag = "knowledge", params(ListQuery),
    responses((status = 200, body = ArticleList), (status = 401, body = ErrorBody)))]
/// Lists articles.
pub async fn list(
    Extension(kb): Kb,
    _staff: Staff,
    Query(q): Query<ListQuery>,
) -> Result<Json<ArticleList>, ApiError> {
    let status = match q.status.as_deref().filter(|s| !s.is_empty() && *s != "any") {
        Some(s) => Some(s.parse::<Status>().map_err(api_error)?),
        None => None,
    };
    let articles = kb
        .list(&ArticleFilter {
            status,
            lang: q.lang.filter(|s| !s.is_empty()),
            tag: q.tag.filter(|s| !s.is_empty()),
            title: q.title.filter(|s| !s.is_empty()),
            limit: q.limit,
            offset: q.offset,
        })
        .await
        .map_err(api_error)?;
    Ok(Json(ArticleList { articles }))
}

#[utoipa::path(post, path = "/api/kb/articles", tag = "knowledge", request_body = ArticleBody,
    responses((status = 201, body = ArticleView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Creates an article (a draft unless `publish`).
pub async fn create(
    Extension(kb): Kb,
    staff: Staff,
    ApiJson(b): ApiJson<ArticleBody>,
) -> Result<(StatusCode, Json<ArticleView>), ApiError> {
    may_edit(&staff)?;
    let draft = Draft {
        title: b.title,
        body: b.body,
        lang: b.lang,
        tags: b.tags,
    };
    let a = kb
        .create(&draft, &author(&staff))
        .await
        .map_err(api_error)?;
    if b.publish {
        kb.publish(a.id, None, &author(&staff))
            .await
            .map_err(api_error)?;
    }
    let (article, content) = kb.get(a.id).await.map_err(api_error)?;
    Ok((StatusCode::CREATED, Json(ArticleView { article, content })))
}

#[utoipa::path(get, path = "/api/kb/articles/{id}", tag = "knowledge",
    params(("id" = String, Path, description = "Article id")),
    responses((status = 200, body = ArticleView), (status = 404, body = ErrorBody)))]
/// One article with its latest content.
pub async fn get_one(
    Extension(kb): Kb,
    _staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<ArticleView>, ApiError> {
    let (article, content) = kb.get(parse_id(&id)?).await.map_err(api_error)?;
    Ok(Json(ArticleView { article, content }))
}

#[utoipa::path(put, path = "/api/kb/articles/{id}", tag = "knowledge", request_body = ArticleBody,
    params(("id" = String, Path, description = "Article id")),
    responses((status = 200, body = ArticleView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
/// Saves an edit as a new version (search keeps serving the live version unless `publish`).
pub async fn update(
    Extension(kb): Kb,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<ArticleBody>,
) -> Result<Json<ArticleView>, ApiError> {
    may_edit(&staff)?;
    let id = parse_id(&id)?;
    let draft = Draft {
        title: b.title,
        body: b.body,
        lang: b.lang,
        tags: b.tags,
    };
    kb.update(id, &draft, &author(&staff), b.base_version)
        .await
        .map_err(api_error)?;
    if b.publish {
        kb.publish(id, None, &author(&staff))
            .await
            .map_err(api_error)?;
    }
    let (article, content) = kb.get(id).await.map_err(api_error)?;
    Ok(Json(ArticleView { article, content }))
}

#[utoipa::path(post, path = "/api/kb/articles/{id}/publish", tag = "knowledge", request_body = PublishBody,
    params(("id" = String, Path, description = "Article id")),
    responses((status = 200, body = Changed), (status = 404, body = ErrorBody)))]
/// Publishes a version (default: latest); re-indexes only changed passages.
pub async fn publish(
    Extension(kb): Kb,
    staff: Staff,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<Changed>, ApiError> {
    may_edit(&staff)?;
    // The body is optional: empty means "the latest version".
    let version = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<PublishBody>(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
            .version
    };
    let (article, index) = kb
        .publish(parse_id(&id)?, version, &author(&staff))
        .await
        .map_err(api_error)?;
    Ok(Json(Changed { article, index }))
}

#[utoipa::path(post, path = "/api/kb/articles/{id}/unpublish", tag = "knowledge",
    params(("id" = String, Path, description = "Article id")),
    responses((status = 200, body = Changed), (status = 404, body = ErrorBody)))]
/// Back to draft: removed from search.
pub async fn unpublish(
    Extension(kb): Kb,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<Changed>, ApiError> {
    may_edit(&staff)?;
    let (article, index) = kb
        .unpublish(parse_id(&id)?, &author(&staff))
        .await
        .map_err(api_error)?;
    Ok(Json(Changed { article, index }))
}

#[utoipa::path(post, path = "/api/kb/articles/{id}/archive", tag = "knowledge",
    params(("id" = String, Path, description = "Article id")),
    responses((status = 200, body = Changed), (status = 404, body = ErrorBody)))]
/// Archives: removed from search, history kept.
pub async fn archive(
    Extension(kb): Kb,
    staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<Changed>, ApiError> {
    may_edit(&staff)?;
    let (article, index) = kb
        .archive(parse_id(&id)?, &author(&staff))
        .await
        .map_err(api_error)?;
    Ok(Json(Changed { article, index }))
}

#[utoipa::path(post, path = "/api/kb/articles/{id}/rollback", tag = "knowledge", request_body = RollbackBody,
    params(("id" = String, Path, description = "Article id")),
    responses((status = 200, body = Changed), (status = 404, body = ErrorBody)))]
/// Restores an old version as a new one (live at once if published).
pub async fn rollback(
    Extension(kb): Kb,
    staff: Staff,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<RollbackBody>,
) -> Result<Json<Changed>, ApiError> {
    may_edit(&staff)?;
    let (article, index) = kb
        .rollback(parse_id(&id)?, b.version, &author(&staff))
        .await
        .map_err(api_error)?;
    Ok(Json(Changed { article, index }))
}

#[utoipa::path(get, path = "/api/kb/articles/{id}/versions", tag = "knowledge",
    params(("id" = String, Path, description = "Article id")),
    responses((status = 200, body = VersionList), (status = 404, body = ErrorBody)))]
/// History, newest first.
pub async fn versions(
    Extension(kb): Kb,
    _staff: Staff,
    Path(id): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    let versions = kb.versions(parse_id(&id)?).await.map_err(api_error)?;
    Ok(Json(VersionList { versions }))
}

#[utoipa::path(get, path = "/api/kb/articles/{id}/versions/{version}", tag = "knowledge",
    params(("id" = String, Path, description = "Article id"), ("version" = i64, Path, description = "Version")),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
/// One version's content.
pub async fn version(
    Extension(kb): Kb,
    _staff: Staff,
    Path((id, v)): Path<(String, i64)>,
) -> Result<Json<Version>, ApiError> {
    Ok(Json(
        kb.version(parse_id(&id)?, v).await.map_err(api_error)?,
    ))
}

#[utoipa::path(get, path = "/api/kb/articles/{id}/diff", tag = "knowledge",
    params(("id" = String, Path, description = "Article id"), DiffQuery),
    responses((status = 200, body = Object), (status = 404, body = ErrorBody)))]
/// Differences between two versions (unified text and per-line view).
pub async fn diff(
    Extension(kb): Kb,
    _staff: Staff,
    Path(id): Path<String>,
    Query(q): Query<DiffQuery>,
) -> Result<Json<Diff>, ApiError> {
    Ok(Json(
        kb.diff(parse_id(&id)?, q.from, q.to)
            .await
            .map_err(api_error)?,
    ))
}

#[utoipa::path(post, path = "/api/kb/search", tag = "knowledge", request_body = SearchBody,
    responses((status = 200, body = SearchResult), (status = 401, body = ErrorBody)))]
/// Hybrid search over published passages (the "try a question" tester).
pub async fn search(
    Extension(kb): Kb,
    _staff: Staff,
    ApiJson(b): ApiJson<SearchBody>,
) -> Result<Json<SearchResult>, ApiError> {
    if b.text.chars().count() > 2000 {
        return Err(ApiError::validation("question longer than 2000 characters"));
    }
    let started = Instant::now();
    let passages = kb
        .search(&KbQuery {
            text: b.text,
            lang: b.lang.filter(|l| !l.is_empty()),
            tags: b.tags,
            k: b.k.unwrap_or(5),
        })
        .await
        .map_err(api_error)?;
    Ok(Json(SearchResult {
        passages,
        took_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}

#[utoipa::path(post, path = "/api/kb/import", tag = "knowledge", request_body = ImportBody,
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
/// Imports uploaded Markdown/HTML/text files (re-importing a name updates its article).
pub async fn import(
    Extension(kb): Kb,
    staff: Staff,
    ApiJson(b): ApiJson<ImportBody>,
) -> Result<Json<ImportReport>, ApiError> {
    may_edit(&staff)?;
    if b.files.len() > 1000 {
        return Err(ApiError::validation("at most 1000 files per import"));
    }
    let files: Vec<(String, String)> = b.files.into_iter().map(|f| (f.name, f.content)).collect();
    let opts = ImportOptions {
        publish: b.publish,
        tags: b.tags,
        lang: b.lang.filter(|l| !l.is_empty()),
    };
    Ok(Json(
        kb.import_files(&files, &author(&staff), &opts)
            .await
            .map_err(api_error)?,
    ))
}

#[utoipa::path(post, path = "/api/kb/reindex", tag = "knowledge",
    responses((status = 200, body = Object), (status = 403, body = ErrorBody)))]
/// Drops and rebuilds the search indexes from the published articles (admins; vectors come from the cache).
pub async fn reindex(Extension(kb): Kb, staff: Staff) -> Result<Json<IndexStats>, ApiError> {
    if staff.user.role != Role::Admin {
        return Err(ApiError::forbidden("only admins rebuild the index"));
    }
    Ok(Json(kb.rebuild_index().await.map_err(api_error)?))
}
