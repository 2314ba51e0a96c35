//! "Has anything changed?" for PostgreSQL: the `wvs_revision` counter (migration 7), which
//! every change to the tables the lookup cache reads bumps inside its own transaction.
//!
//! Why: without it every token request reads the database, a network round trip per
//! lookup, and the token endpoint runs at well under half of SQLite's rate on the same
//! machine. Why it is safe across instances: a request waits for a read of the counter
//! that *started after the request arrived* ([`Freshness::wait`]), so any change committed
//! anywhere before the request arrived is counted in what it sees, and remembered lookups
//! are only used while the counter is the one they were read under (`lookup_cache.rs`).
//! Why cheap: one reader reads the counter for every request waiting at that moment, so
//! under load one small query serves many requests, and none of them leaves its async
//! worker when its lookups are remembered.
//!
//! When the counter cannot be read (PostgreSQL away), the version is unknown, the cache
//! steps aside and the lookups go to the database, which answers 503 as without a cache.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::conn::Manager;
use crate::domain::store::StoreError;
use crate::store::lookup_cache::ChangeWatch;

const READ: &str = "SELECT n FROM wvs_revision";

/// How long a request waits for a fresh read before it answers 503.
const WAIT: Duration = Duration::from_secs(5);

/// The latest counter read, shared by the reader, the waiters and the cache.
struct Shared {
    /// Reads begun so far; a read's number is taken before its query is sent.
    started: AtomicU64,
    /// The counter as last read, and whether that read succeeded.
    latest: AtomicI64,
    known: AtomicBool,
    /// Someone waits for a read that has not started yet.
    demand: Mutex<bool>,
    wake: Condvar,
}

/// The reader's side: requests wait here for a read begun after they arrived.
pub struct Freshness {
    shared: Arc<Shared>,
    /// Number of the last completed read.
    completed: watch::Receiver<u64>,
}

/// The cache's side: the counter as last read.
pub struct RevisionWatch {
    shared: Arc<Shared>,
}

/// Starts the reader thread on `pool` (it holds one connection while it reads).
pub fn start(pool: r2d2::Pool<Manager>) -> (Freshness, RevisionWatch) {
    let shared = Arc::new(Shared {
        started: AtomicU64::new(0),
        latest: AtomicI64::new(0),
        known: AtomicBool::new(false),
        demand: Mutex::new(false),
        wake: Condvar::new(),
    });
    let (tx, rx) = watch::channel(0u64);
    let reader = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("wvs-revision".into())
        .spawn(move || read_loop(&reader, &pool, &tx));
    if let Err(e) = spawned {
        // Without the reader no read ever completes: waits time out and answer 503, and
        // the cache is never used. Said once, here.
        log::error!("cannot start the database revision reader: {e}");
    }
    (
        Freshness {
            shared: shared.clone(),
            completed: rx,
        },
        RevisionWatch { shared },
    )
}

fn read_loop(shared: &Shared, pool: &r2d2::Pool<Manager>, completed: &watch::Sender<u64>) {
    loop {
        {
            let mut demand = shared.demand.lock().unwrap_or_else(|p| p.into_inner());
            while !*demand {
                demand = shared.wake.wait(demand).unwrap_or_else(|p| p.into_inner());
            }
            *demand = false;
        }
        let number = shared.started.fetch_add(1, Ordering::SeqCst) + 1;
        match read(pool) {
            Ok(n) => {
                shared.latest.store(n, Ordering::SeqCst);
                shared.known.store(true, Ordering::SeqCst);
            }
            Err(e) => {
                shared.known.store(false, Ordering::SeqCst);
                log::debug!("revision read failed: {e}");
            }
        }
        // Every receiver gone: the server is shutting down.
        if completed.send(number).is_err() {
            return;
        }
    }
}

fn read(pool: &r2d2::Pool<Manager>) -> Result<i64, StoreError> {
    let mut conn = pool.get()?;
    let statement = conn.prepare_cached(READ)?;
    Ok(conn.query_one(&statement, &[])?.try_get(0)?)
}

impl Freshness {
    /// Returns once a read of the counter that began after this call has completed.
    pub async fn wait(&self) -> Result<(), StoreError> {
        let needed = self.shared.started.load(Ordering::SeqCst) + 1;
        {
            let mut demand = self.shared.demand.lock().unwrap_or_else(|p| p.into_inner());
            *demand = true;
            self.shared.wake.notify_one();
        }
        let mut completed = self.completed.clone();
        let waited = tokio::time::timeout(WAIT, completed.wait_for(|done| *done >= needed))
            .await
            .map(|seen| seen.map(|_| ()));
        match waited {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "the database revision reader has stopped".into(),
            )),
            Err(_) => Err(StoreError::Unavailable(
                "the database revision did not answer in time".into(),
            )),
        }
    }
}

impl ChangeWatch for RevisionWatch {
    type Version = i64;

    /// The counter as last read; a request has waited for a read begun after it arrived
    /// before it asks (`store::Reads`).
    fn version(&self) -> Option<i64> {
        self.shared
            .known
            .load(Ordering::SeqCst)
            .then(|| self.shared.latest.load(Ordering::SeqCst))
    }
}
