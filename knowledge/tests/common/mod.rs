//! Shared test helpers: databases with the knowledge schema applied, and the model.
#![allow(dead_code)]

use std::path::PathBuf;

use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;

pub const SQLITE_SCHEMA: &str =
    include_str!("../../../gateway/migrations/sqlite/0002_knowledge.sql");
pub const POSTGRES_SCHEMA: &str =
    include_str!("../../../gateway/migrations/postgres/0002_knowledge.sql");

/// A fresh SQLite database in a temporary directory.
pub async fn sqlite() -> (AnyPool, tempfile::TempDir) {
    sqlx::any::install_default_drivers();
    let dir = tempfile::tempdir().expect("test setup");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("kb.sqlite").display()
    );
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("test setup");
    sqlx::raw_sql(SQLITE_SCHEMA)
        .execute(&pool)
        .await
        .expect("test setup");
    (pool, dir)
}

/// A throwaway PostgreSQL database, dropped by [`PgDb::drop_db`]. `None` (with a loud
/// message) when no server is reachable; with `CI=true` the tests fail instead.
pub struct PgDb {
    pub pool: AnyPool,
    admin_url: String,
    name: String,
}

pub fn pg_base() -> String {
    std::env::var("KB_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub async fn postgres() -> Option<PgDb> {
    sqlx::any::install_default_drivers();
    let base = pg_base();
    let admin_url = format!("{base}/postgres");
    let admin = match AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect(&admin_url)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true: PostgreSQL tests are mandatory but {admin_url} is unreachable: {e}"
                );
            }
            loud(&format!(
                "\n!!!!!!!! SKIPPED: PostgreSQL not reachable at {admin_url} ({e}); PostgreSQL store tests did NOT run !!!!!!!!\n"
            ));
            return None;
        }
    };
    let name = format!("kb_test_{}", uuid::Uuid::new_v4().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .expect("test setup");
    admin.close().await;
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&format!("{base}/{name}"))
        .await
        .expect("test setup");
    sqlx::raw_sql(POSTGRES_SCHEMA)
        .execute(&pool)
        .await
        .expect("test setup");
    Some(PgDb {
        pool,
        admin_url,
        name,
    })
}

impl PgDb {
    pub async fn drop_db(self) {
        self.pool.close().await;
        if let Ok(admin) = AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.admin_url)
            .await
        {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&admin)
            .await;
        }
    }
}

/// Directory of all-MiniLM-L6-v2 (`SWITCHBOARD_MINILM_DIR`, else the prepared model cache). `None` with a loud
/// message when absent; with `CI=true` the tests fail instead.
pub fn minilm_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SWITCHBOARD_MINILM_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            switchboard_models::Models::from_env()
                .dir(switchboard_models::ModelId::MiniLmL6V2)
                .ok()
        });
    match dir {
        Some(d) if d.join("model.safetensors").exists() => Some(d),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true: set SWITCHBOARD_MINILM_DIR to the all-MiniLM-L6-v2 directory");
            }
            loud(
                "\n!!!!!!!! SKIPPED: all-MiniLM-L6-v2 not prepared (run `cargo run -p switchboard-models --release -- fetch` or set SWITCHBOARD_MINILM_DIR); model retrieval tests did NOT run !!!!!!!!\n",
            );
            None
        }
    }
}

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kb")
}

/// Writes straight to the process's stderr, past the test harness's output capture,
/// so skipped suites are visible in a plain `cargo test` run.
pub fn loud(msg: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{msg}");
}
