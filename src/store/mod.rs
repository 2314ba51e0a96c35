//! Storage: the backends behind `domain::store`'s traits, the lookup cache in front of
//! them, and [`Reads`], which answers the realms' per-request reads from memory when it can
//! and on the blocking pool when it must.
//!
//! Everything above this module holds an `Arc<dyn Store>` and never names a backend; only
//! [`open`] does, from the database URL.

pub mod blobs;
pub mod copy;
pub mod lookup_cache;
pub mod memo;
pub mod postgres;
pub mod rows;
pub mod sqlite;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blocking::BlockingPool;
use crate::domain::store::{RealmReads, Store, StoreError, StoreFailure};
use lookup_cache::{CachedLookups, LookupStats, MemoryOnly, Unwatched};

/// Where the database is: `--database-url` (SPEC §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://PATH` (or `sqlite:PATH`): one file in WAL mode.
    Sqlite(PathBuf),
    /// `postgres://…` (or `postgresql://…`): one database shared by several instances.
    Postgres(PostgresUrl),
}

/// A PostgreSQL URL, which may carry a password: its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    /// The URL itself, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PostgresUrl({})", redact(&self.0))
    }
}

impl std::fmt::Display for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("database URL {0:?} must be sqlite://PATH or postgres://USER@HOST:PORT/DATABASE")]
    Unknown(String),
}

impl DatabaseUrl {
    /// The default: `wvs.db` in the data directory.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        DatabaseUrl::Sqlite(data_dir.join("wvs.db"))
    }

    pub fn parse(raw: &str) -> Result<Self, UrlError> {
        let raw = raw.trim();
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
            .filter(|p| !p.is_empty())
        {
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        let pg = ["postgres://", "postgresql://"]
            .iter()
            .any(|scheme| raw.len() > scheme.len() && raw.starts_with(scheme));
        if pg {
            return Ok(DatabaseUrl::Postgres(PostgresUrl(raw.to_string())));
        }
        Err(UrlError::Unknown(redact(raw)))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DatabaseUrl::Postgres(_))
    }
}

/// A URL for messages, without any password it may carry (`postgres://u:pw@h/db`, or
/// `?password=…`).
fn redact(raw: &str) -> String {
    let shown = match (raw.find("://"), raw.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &raw[..scheme], &raw[at + 1..])
        }
        _ => raw.to_string(),
    };
    match shown.find('?') {
        Some(q) if shown[q..].contains("password") => format!("{}?…", &shown[..q]),
        _ => shown,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Sqlite(#[from] sqlite::OpenError),
    #[error(transparent)]
    Postgres(#[from] postgres::OpenError),
    #[error("backup copies a SQLite database; back PostgreSQL up with pg_dump (the keys directory with any file copy)")]
    BackupOfPostgres,
}

/// An open backend, and what the server builds the lookup cache from.
pub struct Opened {
    pub store: Arc<dyn Store>,
    /// The realms' reads behind the lookup cache, and the cache's memory-only view.
    pub cached: Arc<dyn RealmReads>,
    pub memory: Arc<dyn RealmReads>,
    /// How the cache answered, for the metrics.
    pub lookups: Arc<LookupStats>,
    /// Answers rendered from many rows, remembered while the database is unchanged.
    pub memo: Arc<dyn memo::Memo>,
    /// What a request waits on before it may use remembered lookups, when the backend's
    /// watch needs a read made after the request arrived (PostgreSQL's revision counter;
    /// SQLite's WAL index is read in place, so `None`).
    pub freshness: Option<Arc<postgres::Freshness>>,
}

impl Opened {
    /// A backend with its lookups remembered by `watch` and its rendered answers by
    /// `memo_watch` (`None`: not remembered).
    fn of<S, W, M>(
        db: Arc<S>,
        watch: Option<W>,
        memo_watch: Option<M>,
        freshness: Option<Arc<postgres::Freshness>>,
    ) -> Self
    where
        S: Store + 'static,
        W: lookup_cache::ChangeWatch,
        M: lookup_cache::ChangeWatch,
    {
        let cache = Arc::new(CachedLookups::new(db.clone(), watch));
        Opened {
            store: db,
            memo: Arc::new(memo::VersionedMemo::new(memo_watch)),
            lookups: cache.stats(),
            memory: Arc::new(MemoryOnly(cache.clone())),
            cached: cache,
            freshness,
        }
    }
}

/// Writes a consistent copy of the database at `url` to the new file `to` while servers
/// keep running. SQLite only: a PostgreSQL database is backed up with `pg_dump`.
pub fn backup(url: &DatabaseUrl, to: &Path) -> Result<(), OpenError> {
    match url {
        DatabaseUrl::Sqlite(file) => Ok(sqlite::SqliteStore::open(file, 1)?.backup(to)?),
        DatabaseUrl::Postgres(_) => Err(OpenError::BackupOfPostgres),
    }
}

/// Opens (creating and migrating if needed) the database at `url` with room for
/// `connections` calls at once.
pub fn open(url: &DatabaseUrl, connections: u32) -> Result<Opened, OpenError> {
    match url {
        DatabaseUrl::Sqlite(file) => {
            let db = sqlite::SqliteStore::open(file, connections)?;
            let watch = match db.watch() {
                Ok(watch) => {
                    log::info!("token and project lookups are cached until the database changes");
                    Some(watch)
                }
                Err(e) => {
                    log::warn!("token and project lookups read the database every time: {e}");
                    None
                }
            };
            // A watch of its own: the memo's entries and the lookups' are dropped apart.
            let memo_watch = watch.as_ref().and_then(|_| db.watch().ok());
            Ok(Opened::of(Arc::new(db), watch, memo_watch, None))
        }
        DatabaseUrl::Postgres(pg) => {
            // Lookups are remembered under the revision counter, and every request waits
            // for a read of it begun after it arrived (`Reads`), so a change made through
            // any instance is seen on the next request (SPEC §7). One more connection: the
            // reader's. Rendered answers (the memo) are not kept: they are used outside
            // `Reads`, where no request has waited.
            let db = postgres::PostgresStore::open(pg.expose(), connections + 1)?;
            let (freshness, watch) = db.revision();
            log::info!("token and project lookups are cached while the database revision stands");
            Ok(Opened::of(
                Arc::new(db),
                Some(watch),
                None::<Unwatched>,
                Some(Arc::new(freshness)),
            ))
        }
    }
}

/// The realms' per-request reads: first from memory on the calling worker, and only when
/// that needs I/O, again on the blocking pool. A deploy-token login whose token and project
/// are remembered costs no thread hop; anything else never blocks an async worker.
#[derive(Clone)]
pub struct Reads {
    cached: Arc<dyn RealmReads>,
    memory: Arc<dyn RealmReads>,
    pool: BlockingPool,
    freshness: Option<Arc<postgres::Freshness>>,
}

impl Reads {
    pub fn new(opened: &Opened, pool: BlockingPool) -> Self {
        Self {
            cached: opened.cached.clone(),
            memory: opened.memory.clone(),
            pool,
            freshness: opened.freshness.clone(),
        }
    }

    /// Waits, where the backend needs it, until what the cache compares against was read
    /// after this call: remembered lookups are then as new as the database was when the
    /// request arrived. Once per request ([`within_request`]): what was read after the
    /// request arrived stays after it, so its later reads need no second wait.
    async fn fresh(&self) -> Result<(), StoreError> {
        let Some(freshness) = &self.freshness else {
            return Ok(());
        };
        if WAITED.try_with(Cell::get).unwrap_or(false) {
            return Ok(());
        }
        freshness.wait().await?;
        // Outside a request's scope (a spawned task) nothing is kept: every call waits.
        let _ = WAITED.try_with(|waited| waited.set(true));
        Ok(())
    }

    /// Runs `decide` on `input` against the reads. `decide` must be free of side effects:
    /// it may run twice (from memory, then for real). `input` is borrowed for the first
    /// attempt and cloned only when the blocking pool is needed.
    pub async fn run<I, T, E, F>(&self, input: &I, decide: F) -> Result<T, E>
    where
        I: Clone + Send + 'static,
        F: Fn(&dyn RealmReads, &I) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: StoreFailure + From<StoreError> + Send + 'static,
    {
        self.fresh().await?;
        match decide(self.memory.as_ref(), input) {
            Err(e) if e.needs_io() => {}
            answered => return answered,
        }
        let input = input.clone();
        self.blocking(move |reads| decide(reads, &input)).await
    }

    /// A storage call that cannot be answered from memory, on the blocking pool.
    pub async fn blocking<T, E, F>(&self, call: F) -> Result<T, E>
    where
        F: FnOnce(&dyn RealmReads) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.fresh().await?;
        let reads = self.cached.clone();
        flatten(self.pool.storage(move || call(reads.as_ref())).await)
    }

    /// As [`Reads::blocking`], on the hashing pool: for password logins, whose argon2
    /// verification must not take a storage slot or an async worker.
    pub async fn run_hashing<T, E, F>(&self, decide: F) -> Result<T, E>
    where
        F: FnOnce(&dyn RealmReads) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.fresh().await?;
        let reads = self.cached.clone();
        flatten(self.pool.hashing(move || decide(reads.as_ref())).await)
    }

    /// The reads without the memory-first attempt, for code already on the blocking pool.
    pub fn direct(&self) -> &dyn RealmReads {
        self.cached.as_ref()
    }

    pub fn pool(&self) -> &BlockingPool {
        &self.pool
    }
}

tokio::task_local! {
    /// Whether this request has waited for a revision read begun after it arrived.
    static WAITED: Cell<bool>;
}

/// Runs one request's handling (`http`'s middleware) with its own "has waited" mark, so
/// its storage reads wait for a fresh revision once, not once per call.
pub fn within_request<F: std::future::Future>(
    handling: F,
) -> impl std::future::Future<Output = F::Output> {
    WAITED.scope(Cell::new(false), handling)
}

/// A job the pool could not finish is storage that did not answer.
fn flatten<T, E: From<StoreError>>(
    ran: Result<Result<T, E>, crate::blocking::PoolError>,
) -> Result<T, E> {
    ran.unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string()).into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/wvs/wvs.db").expect("ok"),
            DatabaseUrl::Sqlite("/var/lib/wvs/wvs.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:data/x.db").expect("ok"),
            DatabaseUrl::Sqlite("data/x.db".into())
        );
        let pg = DatabaseUrl::parse("postgres://wvs:hunter2@db:5432/wvs").expect("pg");
        assert!(pg.is_postgres());
        assert!(!format!("{pg:?}").contains("hunter2"), "{pg:?}");
        let pg = DatabaseUrl::parse("postgresql:///wvs?host=/run/pg&password=hunter2").expect("pg");
        assert!(!format!("{pg:?}").contains("hunter2"), "{pg:?}");
        let err = DatabaseUrl::parse("mysql://u:hunter2@x").expect_err("mysql");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(DatabaseUrl::parse("postgres://").is_err());
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }
}
