//! Routing's tables: queue and agent configuration, presence, and the
//! leader's snapshot. Configuration rows hold the router crate's types as
//! JSON, so the admin API, the store and the router share one schema.

use chrono::Utc;
use sqlx::Row;
use switchboard_bus::{AgentId, Conversation, ConversationStatus};
use switchboard_router::{AgentProfile, ChannelKind, Presence, QueueConfig};

use crate::db::{Db, DbError, conversation_from_row, ms};

/// The queue every installation starts with: chat, no skills required.
pub const DEFAULT_QUEUE: &str = "general";

/// One agent's stored presence.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceRow {
    /// The agent.
    pub agent: AgentId,
    /// Their presence.
    pub presence: Presence,
    /// When it was set (Unix ms).
    pub changed_at: i64,
    /// Grows by one on every change.
    pub version: i64,
}

/// The leader's last published view.
#[derive(Debug, Clone)]
pub struct StoredSnapshot {
    /// Which node wrote it.
    pub leader: String,
    /// The snapshot document (JSON).
    pub snapshot: String,
    /// When (Unix ms).
    pub updated_at: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> DbError {
    DbError::Corrupt(format!("{what}: {e}"))
}

impl Db {
    /// Grows whenever queues or agent profiles change; the leader polls it.
    pub async fn routing_config_version(&self) -> Result<i64, DbError> {
        let row = sqlx::query("SELECT value FROM routing_meta WHERE key = 'config_version'")
            .fetch_optional(self.pool())
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>("value"))
            .transpose()?
            .unwrap_or(0))
    }

    async fn bump_routing_config(&self) -> Result<(), DbError> {
        sqlx::query("UPDATE routing_meta SET value = value + 1 WHERE key = 'config_version'")
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Creates the default queue once per installation (an admin may delete it later).
    pub async fn seed_routing(&self) -> Result<(), DbError> {
        let seeded = sqlx::query("SELECT value FROM routing_meta WHERE key = 'seeded'")
            .fetch_optional(self.pool())
            .await?;
        if seeded.is_some() {
            return Ok(());
        }
        let mut general = QueueConfig::new(DEFAULT_QUEUE, ChannelKind::Chat);
        general.offer_timeout = std::time::Duration::from_secs(30);
        self.put_routing_queue(&general).await?;
        let insert = sqlx::query("INSERT INTO routing_meta (key, value) VALUES ('seeded', 1)")
            .execute(self.pool())
            .await;
        match insert {
            Ok(_) | Err(sqlx::Error::Database(_)) => Ok(()), // another node seeded first
            Err(e) => Err(e.into()),
        }
    }

    /// All queues, by id.
    pub async fn routing_queues(&self) -> Result<Vec<QueueConfig>, DbError> {
        let rows = sqlx::query("SELECT config FROM routing_queues ORDER BY id")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let json: String = r.try_get("config")?;
                serde_json::from_str(&json).map_err(|e| corrupt("queue config", e))
            })
            .collect()
    }

    /// Adds or replaces a queue.
    pub async fn put_routing_queue(&self, cfg: &QueueConfig) -> Result<(), DbError> {
        let json = serde_json::to_string(cfg).map_err(|e| corrupt("queue config", e))?;
        sqlx::query(
            "INSERT INTO routing_queues (id, config, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
        )
        .bind(cfg.id.as_str())
        .bind(json)
        .bind(ms(Utc::now()))
        .execute(self.pool())
        .await?;
        self.bump_routing_config().await
    }

    /// Removes a queue; `false` if there was none.
    pub async fn delete_routing_queue(&self, id: &str) -> Result<bool, DbError> {
        let done = sqlx::query("DELETE FROM routing_queues WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        self.bump_routing_config().await?;
        Ok(done.rows_affected() > 0)
    }

    /// Stored agent profiles (agents without one use [`AgentProfile::new`]).
    pub async fn agent_profiles(&self) -> Result<Vec<AgentProfile>, DbError> {
        let rows = sqlx::query("SELECT profile FROM agent_routing")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                let json: String = r.try_get("profile")?;
                serde_json::from_str(&json).map_err(|e| corrupt("agent profile", e))
            })
            .collect()
    }

    /// One agent's routing profile: stored, or the default.
    pub async fn agent_profile(&self, agent: AgentId) -> Result<AgentProfile, DbError> {
        let row = sqlx::query("SELECT profile FROM agent_routing WHERE agent_id = $1")
            .bind(agent.to_string())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => {
                let json: String = r.try_get("profile")?;
                serde_json::from_str(&json).map_err(|e| corrupt("agent profile", e))
            }
            None => Ok(AgentProfile::new(agent)),
        }
    }

    /// Stores an agent's routing profile.
    pub async fn put_agent_profile(&self, profile: &AgentProfile) -> Result<(), DbError> {
        let json = serde_json::to_string(profile).map_err(|e| corrupt("agent profile", e))?;
        sqlx::query(
            "INSERT INTO agent_routing (agent_id, profile, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (agent_id) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at",
        )
        .bind(profile.id.to_string())
        .bind(json)
        .bind(ms(Utc::now()))
        .execute(self.pool())
        .await?;
        self.bump_routing_config().await
    }

    /// Sets an agent's presence and returns the stored row.
    pub async fn set_presence(
        &self,
        agent: AgentId,
        presence: &Presence,
    ) -> Result<PresenceRow, DbError> {
        let json = serde_json::to_string(presence).map_err(|e| corrupt("presence", e))?;
        let now = ms(Utc::now());
        let row = sqlx::query(
            "INSERT INTO agent_presence (agent_id, presence, changed_at, version) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (agent_id) DO UPDATE SET presence = excluded.presence, changed_at = excluded.changed_at, \
             version = agent_presence.version + 1 RETURNING version",
        )
        .bind(agent.to_string())
        .bind(json)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(PresenceRow {
            agent,
            presence: presence.clone(),
            changed_at: now,
            version: row.try_get("version")?,
        })
    }

    /// Presence rows changed at or after `since_ms` (all rows for 0).
    pub async fn presences_since(&self, since_ms: i64) -> Result<Vec<PresenceRow>, DbError> {
        let rows = sqlx::query(
            "SELECT agent_id, presence, changed_at, version FROM agent_presence WHERE changed_at >= $1",
        )
        .bind(since_ms)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let id: String = r.try_get("agent_id")?;
                let json: String = r.try_get("presence")?;
                Ok(PresenceRow {
                    agent: id.parse().map_err(|e| corrupt("agent id", e))?,
                    presence: serde_json::from_str(&json).map_err(|e| corrupt("presence", e))?,
                    changed_at: r.try_get("changed_at")?,
                    version: r.try_get("version")?,
                })
            })
            .collect()
    }

    /// One agent's presence (offline when never set).
    pub async fn presence(&self, agent: AgentId) -> Result<Presence, DbError> {
        let row = sqlx::query("SELECT presence FROM agent_presence WHERE agent_id = $1")
            .bind(agent.to_string())
            .fetch_optional(self.pool())
            .await?;
        match row {
            Some(r) => {
                let json: String = r.try_get("presence")?;
                serde_json::from_str(&json).map_err(|e| corrupt("presence", e))
            }
            None => Ok(Presence::Offline),
        }
    }

    /// Replaces the leader's snapshot.
    pub async fn write_routing_snapshot(&self, leader: &str, json: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO routing_snapshot (id, leader, snapshot, updated_at) VALUES (1, $1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET leader = excluded.leader, snapshot = excluded.snapshot, \
             updated_at = excluded.updated_at",
        )
        .bind(leader)
        .bind(json)
        .bind(ms(Utc::now()))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The leader's last snapshot, if any was written.
    pub async fn routing_snapshot(&self) -> Result<Option<StoredSnapshot>, DbError> {
        let row =
            sqlx::query("SELECT leader, snapshot, updated_at FROM routing_snapshot WHERE id = 1")
                .fetch_optional(self.pool())
                .await?;
        row.map(|r| {
            Ok(StoredSnapshot {
                leader: r.try_get("leader")?,
                snapshot: r.try_get("snapshot")?,
                updated_at: r.try_get("updated_at")?,
            })
        })
        .transpose()
    }

    /// Open conversations routing must hold: assigned ones (they count
    /// against agents' capacity) and those awaiting an agent, oldest wait first.
    pub async fn routing_candidates(&self) -> Result<Vec<Conversation>, DbError> {
        let rows = sqlx::query(
            "SELECT state FROM conversations WHERE status = 'open' \
             AND (assignee IS NOT NULL OR waiting_since IS NOT NULL) ORDER BY waiting_since, opened_at",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let c = conversation_from_row(r)?;
            if c.status == ConversationStatus::Open && (c.assignee.is_some() || c.awaiting_agent) {
                out.push(c);
            }
        }
        Ok(out)
    }
}
