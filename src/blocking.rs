//! Bounded pools for blocking work: storage calls and password hashing run here, never on
//! the async workers.
//!
//! Why: a server has one async worker per core. A storage call that waits (a busy SQLite
//! file, later a network database) or an argon2 verification (tens of milliseconds of CPU
//! and 19 MiB of memory each) on a worker stalls every other request that worker holds —
//! token requests included. Each kind of work has its own bound, so a burst of password
//! logins queues behind the hashing bound while storage calls (and with them deploy-token
//! logins) keep theirs. Waiting for a permit is asynchronous: a queued job holds no thread.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Semaphore;

/// The pool could not run the job (it panicked, or the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("a blocking job did not finish: {0}")]
pub struct PoolError(String);

/// How much blocking work may run at once, by kind.
#[derive(Clone)]
pub struct BlockingPool {
    storage: Arc<Semaphore>,
    hashing: Arc<Semaphore>,
}

impl BlockingPool {
    /// `storage` concurrent storage calls (the connection pool's size is the natural
    /// bound) and `hashing` concurrent password hashes (about one per core).
    pub fn new(storage: usize, hashing: usize) -> Self {
        Self {
            storage: Arc::new(Semaphore::new(storage.max(1))),
            hashing: Arc::new(Semaphore::new(hashing.max(1))),
        }
    }

    /// Runs a storage call off the async workers.
    pub fn storage<T, F>(&self, job: F) -> impl Future<Output = Result<T, PoolError>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        run(self.storage.clone(), job)
    }

    /// Runs a password hash or verification (with the storage reads it needs) off the
    /// async workers, at most `hashing` at once.
    pub fn hashing<T, F>(&self, job: F) -> impl Future<Output = Result<T, PoolError>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        run(self.hashing.clone(), job)
    }
}

async fn run<T, F>(bound: Arc<Semaphore>, job: F) -> Result<T, PoolError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let permit = bound
        .acquire_owned()
        .await
        .map_err(|e| PoolError(e.to_string()))?;
    actix_web::rt::task::spawn_blocking(move || {
        let _permit = permit;
        job()
    })
    .await
    .map_err(|e| PoolError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[actix_web::test]
    async fn never_more_than_the_bound_at_once() {
        let pool = BlockingPool::new(8, 2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..10).map(|_| {
            let (running, peak) = (running.clone(), peak.clone());
            pool.hashing(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for r in futures_util::future::join_all(jobs).await {
            r.expect("job ran");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(pool.storage(|| 7).await.expect("ran"), 7);
    }

    #[actix_web::test]
    async fn a_panicking_job_is_an_error_not_a_crash() {
        let pool = BlockingPool::new(1, 1);
        let r = pool.storage(|| -> u8 { panic!("boom") }).await;
        assert!(r.is_err());
        assert_eq!(pool.storage(|| 1).await.expect("pool still usable"), 1);
    }
}
