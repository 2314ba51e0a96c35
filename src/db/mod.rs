//! SQLite storage: one file in WAL mode, schema from `schema.sql`, migrated on open.
//!
//! Each table has its own module; all of them implement the domain's storage traits so the
//! HTTP layer never sees SQL.

mod audit;
mod deploy_tokens;
mod groups;
mod lookup_cache;
mod personal_access_tokens;
mod projects;
mod sessions;
mod users;
mod wal_watch;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

pub use deploy_tokens::{NewDeployToken, Revocation};
pub use lookup_cache::CachedLookups;
pub use sessions::StoredSession;
pub use users::MemberOf;
pub use wal_watch::WalWatch;

use crate::domain::path::NamespacePath;
use crate::domain::store::StoreError;

/// The schema, compiled in so a release binary migrates without the source tree.
const SCHEMA: &str = include_str!("../../schema.sql");

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("cannot create data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("database holds a malformed value: {0}")]
    Corrupt(String),
    #[error("the database cannot use WAL journaling (journal mode stays {0:?}); put the data dir on a local file system")]
    NoWal(String),
    #[error("database schema version {found} is newer than this binary knows ({known})")]
    TooNew { found: i64, known: i64 },
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError(e.to_string())
    }
}

/// A pool of connections to the SQLite file.
#[derive(Clone)]
pub struct Db {
    pool: r2d2::Pool<SqliteConnectionManager>,
}

impl Db {
    /// The database file of a data directory.
    pub fn file(data_dir: &Path) -> std::path::PathBuf {
        data_dir.join("wvs.db")
    }

    /// Opens (creating if needed) `<data_dir>/wvs.db` and brings its schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self, DbError> {
        Self::open_with_pool(data_dir, 4)
    }

    /// Opens with room for `max_connections` at once: a server wants one per worker plus
    /// its background writer, so no handler ever waits for a connection.
    pub fn open_with_pool(data_dir: &Path, max_connections: u32) -> Result<Self, DbError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| DbError::DataDir(data_dir.display().to_string(), e))?;
        let manager = SqliteConnectionManager::file(Self::file(data_dir)).with_init(|c| {
            c.busy_timeout(Duration::from_secs(5))?;
            c.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        });
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(2))
            // A local SQLite connection cannot go stale; the check would cost a query per
            // checkout on the token path.
            .test_on_check_out(false)
            // Open connections on demand: a CLI command needs one, a server a few.
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .build(manager)?;
        let db = Self { pool };
        db.enable_wal()?;
        db.migrate()?;
        Ok(db)
    }

    pub(crate) fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, DbError> {
        Ok(self.pool.get()?)
    }

    /// Cheap liveness probe for `/-/health`.
    pub fn ping(&self) -> Result<(), DbError> {
        self.conn()?.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }

    /// WAL is a property of the file, so it is set once per open rather than per
    /// connection. Switching needs a moment of exclusive access, which the busy handler does
    /// not always wait for (a CLI command and a starting server may race): retry briefly.
    fn enable_wal(&self) -> Result<(), DbError> {
        let conn = self.conn()?;
        let mut attempts = 0;
        loop {
            match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
                // SQLite answers with the mode in force, which stays the old one where WAL
                // is impossible (no shared memory on the file system).
                Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
                Ok(mode) => return Err(DbError::NoWal(mode)),
                Err(rusqlite::Error::SqliteFailure(f, _))
                    if f.code == rusqlite::ErrorCode::DatabaseBusy && attempts < 50 =>
                {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn migrate(&self) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        migrate(&mut conn, SCHEMA)
    }
}

/// Runs every `-- migrate: N` block of `schema` above the database's `user_version`, each in
/// its own transaction together with the version bump, so a crash never half-applies one.
/// The version is re-read inside an IMMEDIATE transaction, so two processes opening a new
/// database at once (a CLI command and a starting server) apply each block exactly once.
fn migrate(conn: &mut Connection, schema: &str) -> Result<(), DbError> {
    let blocks = migration_blocks(schema);
    let known = blocks.last().map(|(v, _)| *v).unwrap_or(0);
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > known {
        return Err(DbError::TooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in blocks.into_iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now >= version {
            continue;
        }
        tx.execute_batch(&sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        tx.commit()?;
        log::info!("database migrated to schema version {version}");
    }
    Ok(())
}

fn migration_blocks(schema: &str) -> Vec<(i64, String)> {
    let mut blocks: Vec<(i64, String)> = Vec::new();
    for line in schema.lines() {
        if let Some(v) = line.strip_prefix("-- migrate:") {
            if let Ok(v) = v.trim().parse() {
                blocks.push((v, String::new()));
                continue;
            }
        }
        if let Some((_, sql)) = blocks.last_mut() {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    blocks
}

/// Groups and projects share one namespace. Run inside the IMMEDIATE transaction that
/// creates `path` as a `kind` (`"group"` or `"project"`): returns the id of the enclosing
/// group, which must exist, and refuses a path the other kind already holds.
pub(crate) fn claim_namespace(
    tx: &rusqlite::Transaction<'_>,
    path: &NamespacePath,
    kind: &str,
) -> Result<Option<i64>, DbError> {
    use rusqlite::OptionalExtension;
    let parent_id = match path.parent() {
        None => None,
        Some(parent) => Some(
            tx.query_row(
                "SELECT id FROM groups WHERE path = ?1",
                [parent.as_str()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .ok_or_else(|| DbError::NotFound(format!("parent group {parent} does not exist")))?,
        ),
    };
    let (other_table, other) = if kind == "group" {
        ("projects", "project")
    } else {
        ("groups", "group")
    };
    let taken: bool = tx.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM {other_table} WHERE path = ?1)"),
        [path.as_str()],
        |r| r.get(0),
    )?;
    if taken {
        return Err(DbError::Conflict(format!("{path} is already a {other}")));
    }
    Ok(parent_id)
}

/// Maps a unique-constraint failure on insert to "already exists".
pub(crate) fn exists_conflict(e: rusqlite::Error, kind: &str, path: &NamespacePath) -> DbError {
    if is_unique_violation(&e) {
        DbError::Conflict(format!("{kind} {path} already exists"))
    } else {
        e.into()
    }
}

pub(crate) fn fmt_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn parse_time(s: &str) -> Result<DateTime<Utc>, DbError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DbError::Corrupt(format!("timestamp {s:?}")))
}

pub(crate) fn parse_date(s: &str) -> Result<NaiveDate, DbError> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| DbError::Corrupt(format!("date {s:?}")))
}

pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_keep_rows() {
        let mut conn = Connection::open_in_memory().expect("open");
        let v1 = "-- migrate: 1\nCREATE TABLE t (a INTEGER);\n";
        migrate(&mut conn, v1).expect("v1");
        conn.execute("INSERT INTO t (a) VALUES (7)", [])
            .expect("insert");
        let v2 = format!("{v1}-- migrate: 2\nALTER TABLE t ADD COLUMN b TEXT;\n");
        migrate(&mut conn, &v2).expect("v2");
        migrate(&mut conn, &v2).expect("v2 again is a no-op");
        let a: i64 = conn
            .query_row("SELECT a FROM t", [], |r| r.get(0))
            .expect("row kept");
        assert_eq!(a, 7);
        let err = migrate(&mut conn, v1).expect_err("older binary must refuse");
        assert!(matches!(err, DbError::TooNew { found: 2, known: 1 }));
    }

    #[test]
    fn groups_of_a_version_1_database_keep_the_proxy_off() {
        let mut conn = Connection::open_in_memory().expect("open");
        let v1 = SCHEMA
            .split("-- migrate: 2")
            .next()
            .expect("block 1")
            .to_string();
        migrate(&mut conn, &v1).expect("v1");
        conn.execute(
            "INSERT INTO groups (path, created_at) VALUES ('acme', '2024-01-01T00:00:00Z')",
            [],
        )
        .expect("insert");
        migrate(&mut conn, SCHEMA).expect("up to date");
        let on: bool = conn
            .query_row("SELECT dependency_proxy FROM groups", [], |r| r.get(0))
            .expect("row kept");
        assert!(!on);
    }

    #[test]
    fn shipped_schema_applies() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn, SCHEMA).expect("schema.sql applies");
    }
}
