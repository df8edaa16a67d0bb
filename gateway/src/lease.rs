//! Leases: which node runs a once-per-installation task (the routing
//! leader, the virtual agent). On SQLite there is one node, so it always
//! holds the lease; on PostgreSQL the holder keeps a session advisory lock on
//! a dedicated connection, so the lease dies with the node's connection and
//! another node takes over.

use std::time::Duration;

use sqlx::Row;

use crate::db::{Backend, Db, DbError};

/// Proof of leadership: nothing for SQLite, the connection holding the
/// advisory lock for PostgreSQL (closing it releases the lock).
pub enum Leadership {
    /// SQLite: the only node.
    Single,
    /// PostgreSQL: the connection holding the advisory lock.
    Locked(sqlx::AnyConnection),
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Leadership::Single => "Leadership::Single",
            Leadership::Locked(_) => "Leadership::Locked",
        })
    }
}

impl Leadership {
    /// Takes the advisory lock `key` (always granted on SQLite: one node).
    pub async fn acquire(db: &Db, key: i64) -> Result<Option<Leadership>, DbError> {
        if db.backend() == Backend::Sqlite {
            return Ok(Some(Leadership::Single));
        }
        // A detached connection: dropping it closes it, which releases the lock.
        let mut conn = db.pool().acquire().await?.detach();
        let row = sqlx::query("SELECT pg_try_advisory_lock($1) AS ok")
            .bind(key)
            .fetch_one(&mut conn)
            .await?;
        let ok: bool = row.try_get("ok")?;
        Ok(ok.then_some(Leadership::Locked(conn)))
    }

    /// Whether the lock is still held (its connection still answers).
    pub async fn check(&mut self) -> bool {
        match self {
            Leadership::Single => true,
            Leadership::Locked(conn) => {
                let held = tokio::time::timeout(
                    Duration::from_secs(3),
                    sqlx::query("SELECT 1 AS one").fetch_one(&mut *conn),
                )
                .await;
                matches!(held, Ok(Ok(_)))
            }
        }
    }
}
