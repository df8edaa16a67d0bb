//! Persistence: one SQL layer over SQLite (default) and PostgreSQL.
//!
//! Both backends run the same queries through sqlx's `Any` driver; only the
//! migrations differ. Times are stored as Unix milliseconds, ids as text.
//! The `events` table is the system of record; `conversations` is a
//! projection folded from it by [`switchboard_bus::Conversation::apply`].

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};
use switchboard_bus::{AgentId, Conversation, ConversationId, Envelope, EventId};

use crate::auth::Role;

/// Storage failure. `Unavailable` is transient (retry); the rest are not.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database could not be reached or timed out.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A uniqueness rule was violated.
    #[error("already exists: {0}")]
    Conflict(String),
    /// Stored data could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Schema migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(d) if d.is_unique_violation() => {
                DbError::Conflict(d.message().to_string())
            }
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_) => DbError::Corrupt(e.to_string()),
            _ => DbError::Unavailable(e.to_string()),
        }
    }
}

/// Splits a batch into chunks of 64, 8 and 1 items, so multi-row statements
/// come in three shapes only: prepared-statement caches stay warm instead of
/// re-preparing (and re-planning) a new shape for every batch size.
pub(crate) fn sized_chunks<T>(items: &[T]) -> Vec<&[T]> {
    chunks_of(items, &[64, 8, 1])
}

/// Splits a batch greedily into chunks of the given sizes (largest first, ending with 1).
pub(crate) fn chunks_of<'a, T>(items: &'a [T], sizes: &[usize]) -> Vec<&'a [T]> {
    let mut out = Vec::new();
    let mut rest = items;
    for &size in sizes {
        while rest.len() >= size {
            let (head, tail) = rest.split_at(size);
            out.push(head);
            rest = tail;
        }
    }
    out
}

/// Which SQL engine is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (embedded default).
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A pooled database handle.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

/// A staff user row.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct User {
    /// Id (also the agent id for agents).
    #[schema(value_type = String, format = Uuid)]
    pub id: AgentId,
    /// Login e-mail (lowercase).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Deactivated users cannot log in.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A session joined with its user.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// The user.
    pub user: User,
    /// Token the client must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// Filter for conversation lists.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// `Some(None)`: unassigned only; `Some(Some(a))`: assigned to `a`; `None`: any.
    pub assignee: Option<Option<AgentId>>,
    /// `open` / `closed`; `None`: any.
    pub status: Option<&'static str>,
    /// Max rows.
    pub limit: i64,
}

fn parse_id<T: FromStr>(row: &AnyRow, col: &str) -> Result<T, DbError> {
    let s: String = row.try_get(col)?;
    s.parse()
        .map_err(|_| DbError::Corrupt(format!("{col}: {s:?}")))
}

fn user_from_row(row: &AnyRow) -> Result<User, DbError> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: parse_id(row, "id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        role: role
            .parse()
            .map_err(|_| DbError::Corrupt(format!("role {role:?}")))?,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: from_ms(row.try_get("created_at")?),
    })
}

pub(crate) fn envelope_from_row(row: &AnyRow) -> Result<Envelope, DbError> {
    let body: String = row.try_get("body")?;
    Ok(Envelope {
        id: parse_id(row, "event_id")?,
        conversation_id: parse_id(row, "conversation_id")?,
        seq: row.try_get::<i64, _>("seq")? as u64,
        at: from_ms(row.try_get("at")?),
        event: serde_json::from_str(&body)
            .map_err(|e| DbError::Corrupt(format!("event body: {e}")))?,
    })
}

pub(crate) fn conversation_from_row(row: &AnyRow) -> Result<Conversation, DbError> {
    let state: String = row.try_get("state")?;
    serde_json::from_str(&state).map_err(|e| DbError::Corrupt(format!("conversation state: {e}")))
}

impl Db {
    /// Connects to `url` (`sqlite://…` or `postgres://…`). SQLite files are created on demand.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::Unavailable(format!(
                "unsupported database_url {url:?}: use sqlite://PATH or postgres://…"
            )));
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite {
                max_connections.min(8)
            } else {
                max_connections
            })
            .acquire_timeout(Duration::from_secs(2))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    } else {
                        // Short, frequent statements: JIT compilation only adds latency.
                        conn.execute("SET jit = off").await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await
            .map_err(|e| DbError::Unavailable(format!("connect: {e}")))?;
        Ok(Self { pool, backend })
    }

    /// The SQLite URL for a data directory (created if missing).
    pub fn sqlite_url(data_dir: &Path) -> std::io::Result<String> {
        std::fs::create_dir_all(data_dir)?;
        Ok(format!(
            "sqlite://{}?mode=rwc",
            data_dir.join("switchboard.sqlite").display()
        ))
    }

    /// Which engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Splits rows for multi-row statements. The PostgreSQL path binds through
    /// sqlx's `Any` driver, whose cost grows faster than linearly with the
    /// number of parameters in one statement (measured: 64 rows × 8 columns
    /// take ~40 ms client-side, 8 rows well under 1 ms), so it gets small chunks.
    pub(crate) fn row_chunks<'a, T>(&self, items: &'a [T]) -> Vec<&'a [T]> {
        match self.backend {
            Backend::Sqlite => sized_chunks(items),
            Backend::Postgres => chunks_of(items, &[8, 1]),
        }
    }

    /// The pool, for the writer's transactions.
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), DbError> {
        use sqlx::SqlSafeStr;
        use sqlx::migrate::{Migration, MigrationType, Migrator};
        let scripts: &[(i64, &str, &'static str)] = match self.backend {
            Backend::Sqlite => &[
                (
                    1,
                    "init",
                    include_str!("../migrations/sqlite/0001_init.sql"),
                ),
                (
                    2,
                    "knowledge",
                    include_str!("../migrations/sqlite/0002_knowledge.sql"),
                ),
                (
                    3,
                    "routing",
                    include_str!("../migrations/sqlite/0003_routing.sql"),
                ),
                (4, "bot", include_str!("../migrations/sqlite/0004_bot.sql")),
                (
                    5,
                    "voice",
                    include_str!("../migrations/sqlite/0005_voice.sql"),
                ),
                (
                    6,
                    "phones",
                    include_str!("../migrations/sqlite/0006_phones.sql"),
                ),
            ],
            Backend::Postgres => &[
                (
                    1,
                    "init",
                    include_str!("../migrations/postgres/0001_init.sql"),
                ),
                (
                    2,
                    "knowledge",
                    include_str!("../migrations/postgres/0002_knowledge.sql"),
                ),
                (
                    3,
                    "routing",
                    include_str!("../migrations/postgres/0003_routing.sql"),
                ),
                (
                    4,
                    "bot",
                    include_str!("../migrations/postgres/0004_bot.sql"),
                ),
                (
                    5,
                    "voice",
                    include_str!("../migrations/postgres/0005_voice.sql"),
                ),
                (
                    6,
                    "phones",
                    include_str!("../migrations/postgres/0006_phones.sql"),
                ),
            ],
        };
        let migrations = scripts
            .iter()
            .map(|(version, name, sql)| {
                Migration::new(
                    *version,
                    (*name).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .map_err(|e| DbError::Migration(e.to_string()))
    }

    /// Cheap liveness probe.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    // ---- users -------------------------------------------------------------

    /// Inserts a user. E-mail must be unique (case-insensitive).
    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password_hash: &str,
    ) -> Result<User, DbError> {
        let user = User {
            id: AgentId::new(),
            email: email.trim().to_lowercase(),
            name: name.trim().to_string(),
            role,
            active: true,
            created_at: Utc::now(),
        };
        sqlx::query(
            "INSERT INTO users (id, email, name, role, password_hash, active, created_at) VALUES ($1, $2, $3, $4, $5, 1, $6)",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.name)
        .bind(user.role.as_str())
        .bind(password_hash)
        .bind(ms(user.created_at))
        .execute(&self.pool)
        .await?;
        Ok(user)
    }

    /// A user and their password hash, by e-mail.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<(User, String)>, DbError> {
        let row = sqlx::query("SELECT * FROM users WHERE email = $1")
            .bind(email.trim().to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    /// A user by id.
    pub async fn user(&self, id: AgentId) -> Result<Option<User>, DbError> {
        let row = sqlx::query("SELECT * FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// All users, by name.
    pub async fn users(&self) -> Result<Vec<User>, DbError> {
        let rows = sqlx::query("SELECT * FROM users ORDER BY name, email")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Updates the given fields of a user; returns the new row.
    pub async fn update_user(
        &self,
        id: AgentId,
        name: Option<&str>,
        role: Option<Role>,
        active: Option<bool>,
        password_hash: Option<&str>,
    ) -> Result<Option<User>, DbError> {
        let mut tx = self.pool.begin().await?;
        let key = id.to_string();
        if let Some(name) = name {
            sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
                .bind(name.trim())
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(role) = role {
            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(active) = active {
            sqlx::query("UPDATE users SET active = $1 WHERE id = $2")
                .bind(i64::from(active))
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            if !active {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(&key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        if let Some(hash) = password_hash {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(&key)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(&key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.user(id).await
    }

    /// Number of users (to tell a fresh install).
    pub async fn user_count(&self) -> Result<i64, DbError> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM users")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?)
    }

    // ---- sessions ------------------------------------------------------------

    /// Stores a session under the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user: AgentId,
        csrf: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(user.to_string())
            .bind(csrf)
            .bind(ms(Utc::now()))
            .bind(ms(expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The session with this token hash and its (active) user.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, DbError> {
        let row = sqlx::query(
            "SELECT u.*, s.csrf_token, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND u.active = 1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SessionRow {
                user: user_from_row(&r)?,
                csrf_token: r.try_get("csrf_token")?,
                expires_at: from_ms(r.try_get("expires_at")?),
            })
        })
        .transpose()
    }

    /// Deletes a session (logout) and every expired one.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1 OR expires_at < $2")
            .bind(token_hash)
            .bind(ms(Utc::now()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- customer tokens -----------------------------------------------------

    /// Stores a customer token scoped to one conversation.
    pub async fn create_customer_token(
        &self,
        token_hash: &str,
        conversation: ConversationId,
        contact: switchboard_bus::ContactId,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO customer_tokens (token_hash, conversation_id, contact_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(conversation.to_string())
            .bind(contact.to_string())
            .bind(ms(Utc::now()))
            .bind(ms(expires_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The conversation and contact a customer token grants, if valid and unexpired.
    pub async fn customer_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<(ConversationId, switchboard_bus::ContactId)>, DbError> {
        let row = sqlx::query("SELECT conversation_id, contact_id FROM customer_tokens WHERE token_hash = $1 AND expires_at > $2")
            .bind(token_hash)
            .bind(ms(Utc::now()))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok((
                parse_id(&r, "conversation_id")?,
                parse_id(&r, "contact_id")?,
            ))
        })
        .transpose()
    }

    // ---- conversations and events --------------------------------------------

    /// The projection of one conversation.
    pub async fn conversation(&self, id: ConversationId) -> Result<Option<Conversation>, DbError> {
        let row = sqlx::query("SELECT state FROM conversations WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| conversation_from_row(&r)).transpose()
    }

    /// Conversations matching a filter, most recently active first.
    pub async fn conversations(&self, filter: &ListFilter) -> Result<Vec<Conversation>, DbError> {
        let mut sql = String::from("SELECT state FROM conversations WHERE 1 = 1");
        let mut binds: Vec<String> = Vec::new();
        if let Some(status) = filter.status {
            binds.push(status.to_string());
            sql.push_str(&format!(" AND status = ${}", binds.len()));
        }
        match filter.assignee {
            Some(None) => sql.push_str(" AND assignee IS NULL"),
            Some(Some(a)) => {
                binds.push(a.to_string());
                sql.push_str(&format!(" AND assignee = ${}", binds.len()));
            }
            None => {}
        }
        sql.push_str(&format!(
            " ORDER BY updated_at DESC LIMIT {}",
            filter.limit.clamp(1, 500)
        ));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(conversation_from_row).collect()
    }

    /// Stored events of a conversation with `seq > after`, in order.
    pub async fn events_after(
        &self,
        id: ConversationId,
        after: u64,
        limit: i64,
    ) -> Result<Vec<Envelope>, DbError> {
        let rows = sqlx::query(
            "SELECT event_id, conversation_id, seq, at, body FROM events WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(id.to_string())
        .bind(after as i64)
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(envelope_from_row).collect()
    }

    /// Recent idempotency keys of a conversation (client_msg_id → seq).
    pub async fn recent_client_ids(
        &self,
        id: ConversationId,
        limit: i64,
    ) -> Result<Vec<(String, u64)>, DbError> {
        let rows = sqlx::query(
            "SELECT client_msg_id, seq FROM events WHERE conversation_id = $1 AND client_msg_id IS NOT NULL ORDER BY seq DESC LIMIT $2",
        )
        .bind(id.to_string())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("client_msg_id")?,
                    r.try_get::<i64, _>("seq")? as u64,
                ))
            })
            .collect()
    }

    /// Row id of the newest stored event (0 when there is none): where a
    /// reader that starts now would begin.
    pub async fn last_event_row(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("last")?)
    }

    /// Row id of a stored event, by its event id.
    pub async fn event_row(&self, event_id: EventId) -> Result<Option<i64>, DbError> {
        let row = sqlx::query("SELECT id FROM events WHERE event_id = $1")
            .bind(event_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<i64, _>("id").map_err(DbError::from))
            .transpose()
    }

    /// Stored events of one kind (`Event::kind`) with row id > `after_row`
    /// and stored at or after `since` (if given), oldest first, with their
    /// row ids: how a reader that fell behind the bus catches up from the
    /// record.
    pub async fn events_of_kind_after_row(
        &self,
        kind: &str,
        after_row: i64,
        since: Option<DateTime<Utc>>,
        limit: i64,
    ) -> Result<Vec<(i64, Envelope)>, DbError> {
        let rows = sqlx::query(
            "SELECT id, event_id, conversation_id, seq, at, body FROM events WHERE id > $1 AND kind = $2 AND at >= $3 ORDER BY id LIMIT $4",
        )
        .bind(after_row)
        .bind(kind)
        .bind(since.map_or(0, ms))
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, envelope_from_row(r)?)))
            .collect()
    }

    /// Whether a request with this idempotency key (or a message with this
    /// `client_msg_id`) is stored in the conversation.
    pub async fn has_idempotency_key(
        &self,
        id: ConversationId,
        key: &str,
    ) -> Result<bool, DbError> {
        let row = sqlx::query(
            "SELECT 1 AS found FROM events WHERE conversation_id = $1 AND client_msg_id = $2",
        )
        .bind(id.to_string())
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Oldest events not yet confirmed on the bus (row id, envelope).
    pub async fn unpublished(&self, limit: i64) -> Result<Vec<(i64, Envelope)>, DbError> {
        let rows = sqlx::query(
            "SELECT id, event_id, conversation_id, seq, at, body FROM events WHERE published = 0 ORDER BY id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, envelope_from_row(r)?)))
            .collect()
    }

    /// Marks events as published on the bus.
    pub async fn mark_published(&self, event_ids: &[String]) -> Result<(), DbError> {
        for chunk in self.row_chunks(event_ids) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "UPDATE events SET published = 1 WHERE event_id IN ({})",
                placeholders.join(", ")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                q = q.bind(id.as_str());
            }
            q.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Every stored event of a conversation (for rebuilding projections and audits).
    pub async fn all_events(&self, id: ConversationId) -> Result<Vec<Envelope>, DbError> {
        self.events_after(id, 0, 10_000).await
    }
}

#[cfg(test)]
mod tests {
    use super::sized_chunks;

    #[test]
    fn chunks_come_in_three_sizes_and_keep_order() {
        let items: Vec<u32> = (0..157).collect();
        let chunks = sized_chunks(&items);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, vec![64, 64, 8, 8, 8, 1, 1, 1, 1, 1]);
        assert_eq!(chunks.concat(), items);
        assert!(sized_chunks::<u32>(&[]).is_empty());
    }
}
