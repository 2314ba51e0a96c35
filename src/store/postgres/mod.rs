//! The PostgreSQL backend, for several instances sharing one database (SPEC §5, §7).
//!
//! The same tables as SQLite's (`migrations.sql`, applied by `migrate.rs` under an advisory
//! lock), the same row conversions (`store::rows`), one module per table implementing the
//! traits of `domain::store`. No `postgres` type leaves this folder: errors leave as the
//! domain's `StoreError` kinds, and a database that cannot be reached is `Unavailable`
//! (503), never a panic or a 500.
//!
//! Why the synchronous `postgres` client with `r2d2`: every store call already runs on the
//! blocking pool (`crate::blocking`), exactly as SQLite's do, so an async driver would only
//! add a runtime hop; r2d2 is the pool the SQLite backend uses, with the same sizing rule.

mod audit;
mod conn;
mod copy;
mod deploy_tokens;
mod groups;
mod migrate;
mod packages;
mod personal_access_tokens;
mod projects;
mod revision;
mod sessions;
mod tls;
mod users;

use std::time::Duration;

use r2d2_postgres::PostgresConnectionManager;

use crate::domain::path::NamespacePath;
use crate::domain::store::{Health, StoreError};
use crate::store::rows::Corrupt;

use conn::Manager;
pub use revision::{Freshness, RevisionWatch};

type Conn = r2d2::PooledConnection<Manager>;

/// What can go wrong inside the backend; it leaves the folder as a [`StoreError`] kind.
#[derive(Debug, thiserror::Error)]
enum DbError {
    #[error("database: {}", describe(.0))]
    Postgres(#[from] postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    #[error("database schema version {found} is newer than this binary knows ({known})")]
    TooNew { found: i64, known: i64 },
    #[error("database URL: {0}")]
    Url(String),
    #[error("TLS to the database: {0}")]
    Tls(String),
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict(m) => StoreError::Conflict(m),
            DbError::NotFound(m) => StoreError::NotFound(m),
            DbError::Corrupt(c) => StoreError::Corrupt(c.0),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        DbError::from(e).into()
    }
}

/// Why the database could not be opened; one line for the CLI.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct OpenError(#[from] DbError);

/// A pool of connections to one PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: r2d2::Pool<Manager>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database`, libpq's keywords
    /// after `?`) and brings the schema up to date, with room for `max_connections` calls
    /// at once. Unlike SQLite's, a pool that cannot connect yet is not an error for a server:
    /// r2d2 keeps trying, requests answer 503 meanwhile, and service resumes by itself.
    pub fn open(url: &str, max_connections: u32) -> Result<Self, OpenError> {
        Ok(Self::open_inner(url, max_connections)?)
    }

    fn open_inner(url: &str, max_connections: u32) -> Result<Self, DbError> {
        let choice = tls::choose(url);
        let mut config: postgres::Config = choice
            .url
            .parse()
            .map_err(|e: postgres::Error| DbError::Url(describe(&e)))?;
        if choice.required.is_none() {
            config.ssl_mode(postgres::config::SslMode::Disable);
        }
        let connector = tls::connector(&choice.required)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("wvs-auth");
        }
        let manager = Manager(PostgresConnectionManager::new(config, connector));
        // One connection first, directly: a wrong URL or a server that is not there fails
        // at once with its own reason, rather than after the pool's timeout. It migrates.
        let mut first = r2d2::ManageConnection::connect(&manager)?;
        migrate::migrate(&mut first, migrate::SCHEMA)?;
        drop(first);
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(2))
            // A checkout test costs a round trip per storage call; a connection the server
            // dropped (PostgreSQL restarted) fails its one call with 503, is then seen as
            // broken by r2d2 and replaced.
            .test_on_check_out(false)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .error_handler(Box::new(QuietErrors::default()))
            // Connections are made on demand: the one above proved the server is there.
            .build_unchecked(manager);
        Ok(Self { pool })
    }

    fn conn(&self) -> Result<Conn, DbError> {
        Ok(self.pool.get()?)
    }

    /// Starts the reader of the revision counter: what requests wait on before they use
    /// remembered lookups, and the watch the lookup cache keeps them by. It takes one of
    /// the pool's connections while it reads.
    pub fn revision(&self) -> (Freshness, RevisionWatch) {
        revision::start(self.pool.clone())
    }
}

impl Health for PostgresStore {
    /// Cheap liveness probe for `/-/health`.
    fn ping(&self) -> Result<(), StoreError> {
        self.conn()?.simple_query("SELECT 1")?;
        Ok(())
    }
}

/// The driver's `Display` says only the kind ("db error", "error connecting to server");
/// the server's message or the cause is what an operator needs.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// r2d2 reports every failed connection attempt; while PostgreSQL is down that is many a
/// second. One warning per ten seconds says it; the requests themselves answer 503.
#[derive(Debug, Default)]
struct QuietErrors {
    last: std::sync::atomic::AtomicU64,
}

impl r2d2::HandleError<postgres::Error> for QuietErrors {
    fn handle_error(&self, error: postgres::Error) {
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            log::warn!("cannot connect to PostgreSQL: {}", DbError::from(error));
        }
    }
}

/// Groups and projects share one namespace. Run inside the transaction that creates `path`
/// as a `kind` (`"group"` or `"project"`), after [`lock_namespace`]: returns the id of the
/// enclosing group, which must exist, and refuses a path the other kind already holds.
fn claim_namespace(
    tx: &mut postgres::Transaction<'_>,
    path: &NamespacePath,
    kind: &str,
) -> Result<Option<i64>, DbError> {
    lock_namespace(tx)?;
    let parent_id = match path.parent() {
        None => None,
        Some(parent) => Some(
            tx.query_opt("SELECT id FROM groups WHERE path = $1", &[&parent.as_str()])?
                .map(|r| r.get::<_, i64>(0))
                .ok_or_else(|| {
                    DbError::NotFound(format!("parent group {parent} does not exist"))
                })?,
        ),
    };
    let (other_table, other) = if kind == "group" {
        ("projects", "project")
    } else {
        ("groups", "group")
    };
    let taken: bool = tx
        .query_one(
            &format!("SELECT EXISTS (SELECT 1 FROM {other_table} WHERE path = $1)"),
            &[&path.as_str()],
        )?
        .get(0);
    if taken {
        return Err(DbError::Conflict(format!("{path} is already a {other}")));
    }
    Ok(parent_id)
}

/// SQLite's IMMEDIATE transactions serialise all writers; here only namespace claims need
/// it (a group and a project of one path created at once by two instances), so they take
/// one transaction-scoped advisory lock.
fn lock_namespace(tx: &mut postgres::Transaction<'_>) -> Result<(), DbError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&NAMESPACE_LOCK])?;
    Ok(())
}

/// Advisory lock keys: arbitrary, fixed, distinct ("wvs" and a number).
const MIGRATION_LOCK: i64 = 0x7776_7300_0000_0001;
const NAMESPACE_LOCK: i64 = 0x7776_7300_0000_0002;

/// Maps a unique-constraint failure on insert to "already exists".
fn exists_conflict(e: postgres::Error, kind: &str, path: &NamespacePath) -> DbError {
    if is_unique_violation(&e) {
        DbError::Conflict(format!("{kind} {path} already exists"))
    } else {
        e.into()
    }
}

fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
}
