//! The SQLite backend: one file in WAL mode, migrated on open from the top-level
//! `schema.sql` (SQLite's migrations, `migrate.rs` applies them).
//!
//! Each table has its own module; together they implement every trait of
//! `domain::store`, and no `rusqlite` type leaves this folder: errors leave as the domain's
//! `StoreError` kinds.

mod audit;
mod copy;
mod deploy_tokens;
mod groups;
mod migrate;
pub(crate) use migrate::migration_blocks;
mod packages;
mod personal_access_tokens;
mod projects;
mod sessions;
mod users;
mod wal_watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;

pub use wal_watch::WalWatch;

use crate::store::rows::{fmt_time, parse_time};

use crate::domain::path::NamespacePath;
use crate::domain::store::{Health, StoreError};

/// What can go wrong inside the backend; it leaves the folder as a [`StoreError`] kind.
#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("cannot create data directory {0}: {1}")]
    DataDir(String, std::io::Error),
    #[error("cannot write the backup {0}: {1}")]
    Backup(String, std::io::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Malformed(#[from] crate::store::rows::Corrupt),
    #[error("the database cannot use WAL journaling (journal mode stays {0:?}); put the data dir on a local file system")]
    NoWal(String),
    #[error("database schema version {found} is newer than this binary knows ({known})")]
    TooNew { found: i64, known: i64 },
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => StoreError::Conflict(m),
            DbError::NotFound(m) => StoreError::NotFound(m),
            DbError::Malformed(c) => StoreError::Corrupt(c.0),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::from(e).into()
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        DbError::from(e).into()
    }
}

/// Why the database could not be opened; one line for the CLI.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OpenError(#[from] DbError);

/// A pool of connections to the SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: r2d2::Pool<SqliteConnectionManager>,
    file: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if needed) the database `file` and brings its schema up to date,
    /// with room for `max_connections` at once: a server wants one per blocking-pool
    /// thread plus its background writer, so no call waits for a connection.
    pub fn open(file: &Path, max_connections: u32) -> Result<Self, OpenError> {
        Ok(Self::open_inner(file, max_connections)?)
    }

    /// Copies the database to `to` (a file that must not exist yet) with SQLite's online
    /// backup API: a consistent snapshot while servers keep reading and writing, in steps
    /// of 256 pages so writers are never held up for long.
    pub fn backup(&self, to: &Path) -> Result<(), OpenError> {
        let source = self.pool.get().map_err(DbError::from)?;
        let mut target = rusqlite::Connection::open(to).map_err(DbError::from)?;
        {
            let backup =
                rusqlite::backup::Backup::new(&source, &mut target).map_err(DbError::from)?;
            backup
                .run_to_completion(256, Duration::from_millis(5), None)
                .map_err(DbError::from)?;
        }
        // The copy is a plain rollback-journal file; make it durable before saying so.
        target
            .execute_batch("PRAGMA journal_mode = DELETE;")
            .map_err(DbError::from)?;
        drop(target);
        std::fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| DbError::Backup(to.display().to_string(), e))?;
        Ok(())
    }

    /// The database file, for the WAL-index watch next to it.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The version watch that lets the lookup cache answer from memory while the database
    /// is unchanged.
    pub fn watch(&self) -> Result<WalWatch, wal_watch::WatchError> {
        WalWatch::open(&self.file)
    }

    fn open_inner(file: &Path, max_connections: u32) -> Result<Self, DbError> {
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| DbError::DataDir(dir.display().to_string(), e))?;
        }
        let manager = SqliteConnectionManager::file(file).with_init(|c| {
            c.busy_timeout(Duration::from_secs(5))?;
            // FULL: in WAL mode every commit is synced before it returns, so a token
            // reported created or revoked survives a power loss too (SPEC §7). The WAL is
            // cut back to 64 MiB after each checkpoint, so a burst of writes does not
            // leave a large file behind.
            c.execute_batch(
                "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                 PRAGMA journal_size_limit = 67108864;",
            )
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
        let db = Self {
            pool,
            file: file.to_path_buf(),
        };
        db.enable_wal()?;
        let mut conn = db.conn()?;
        migrate::migrate(&mut conn, migrate::SCHEMA)?;
        Ok(db)
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, DbError> {
        Ok(self.pool.get()?)
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
}

impl Health for SqliteStore {
    /// Cheap liveness probe for `/-/health`.
    fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.query_row("SELECT 1", [], |_| Ok(()))?;
        Ok(())
    }
}

/// Groups and projects share one namespace. Run inside the IMMEDIATE transaction that
/// creates `path` as a `kind` (`"group"` or `"project"`): returns the id of the enclosing
/// group, which must exist, and refuses a path the other kind already holds.
fn claim_namespace(
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
fn exists_conflict(e: rusqlite::Error, kind: &str, path: &NamespacePath) -> DbError {
    if is_unique_violation(&e) {
        DbError::Conflict(format!("{kind} {path} already exists"))
    } else {
        e.into()
    }
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPEC §7: a reported create or revoke survives a power loss (every commit synced),
    /// and the WAL is cut back after checkpoints.
    #[test]
    fn every_connection_syncs_each_commit_and_bounds_the_wal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteStore::open(&dir.path().join("wvs.db"), 2).expect("open");
        let conn = db.conn().expect("conn");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(sync, 2, "FULL");
        let limit: i64 = conn
            .query_row("PRAGMA journal_size_limit", [], |r| r.get(0))
            .expect("pragma");
        assert_eq!(limit, 64 << 20);
    }
}
