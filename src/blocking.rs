//! Bounded pools for blocking work: storage calls and password hashing run here, never on
//! the async workers.
//!
//! Why: a server has one async worker per core. A storage call that waits (a busy SQLite
//! file, later a network database) or an argon2 verification (tens of milliseconds of CPU
//! and 19 MiB of memory each) on a worker stalls every other request that worker holds —
//! token requests included. Each kind of work has its own bound, so a burst of password
//! logins queues behind the hashing bound while storage calls (and with them deploy-token
//! logins) keep theirs. Waiting is asynchronous: a queued job holds no thread.
//!
//! Hashing runs on a few threads of its own rather than on tokio's blocking pool: argon2's
//! 19 MiB stay in those threads' allocator arenas, so memory is bounded by the number of
//! threads, not by how many different threads a burst happened to land on.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use tokio::sync::{oneshot, Semaphore};

use crate::metrics::StorageTimers;

/// The pool could not run the job (it panicked, or the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("a blocking job did not finish: {0}")]
pub struct PoolError(String);

type Job = Box<dyn FnOnce() + Send>;

/// Large allocations (argon2's 19 MiB block) go straight to `mmap` and back to the system
/// when freed. glibc otherwise raises its mmap threshold after the first such free and
/// serves the next ones from the heap, which it does not give back: twenty password checks
/// in a row left 350 MB resident (`VmRSS`), against 19 MB with this (measured with
/// `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576`, which this sets in code).
pub fn return_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called before any thread
    // starts, as glibc recommends.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// How much blocking work may run at once, by kind.
#[derive(Clone)]
pub struct BlockingPool {
    storage: Arc<Semaphore>,
    hashing: mpsc::Sender<Job>,
    signing: Arc<Semaphore>,
    anonymous_signing: Arc<Semaphore>,
    /// How long storage calls wait for a place and run, when the server counts it.
    timers: Option<StorageTimers>,
}

/// Who a batch of signatures is for: anonymous work has a bound of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    Anonymous,
    Authenticated,
}

impl BlockingPool {
    /// `storage` concurrent storage calls (the connection pool's size is the natural
    /// bound) and `hashing` threads for password hashes (about one per core).
    pub fn new(storage: usize, hashing: usize) -> Self {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..hashing.max(1) {
            let receiver = receiver.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("hashing-{i}"))
                .spawn(move || loop {
                    let job = {
                        let queue = receiver.lock().unwrap_or_else(|p| p.into_inner());
                        queue.recv()
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return, // every sender is gone: the pool was dropped
                    }
                });
            if let Err(e) = spawned {
                log::error!("cannot start a hashing thread: {e}");
            }
        }
        Self {
            storage: Arc::new(Semaphore::new(storage.max(1))),
            hashing: sender,
            signing: Arc::new(Semaphore::new(hashing.max(1))),
            anonymous_signing: Arc::new(Semaphore::new(1)),
            timers: None,
        }
    }

    /// The same pool, timing its storage calls into `timers` (the metrics' histograms).
    pub fn observed(mut self, timers: StorageTimers) -> Self {
        self.timers = Some(timers);
        self
    }

    /// Runs a batch of signatures (an LFS batch answer: up to a thousand RS256 links, about
    /// a millisecond each) off the async workers, at most one batch per hashing thread at
    /// once. Anonymous batches also wait for the one anonymous place, so clients without
    /// credentials can keep at most one core busy signing, whatever they send.
    pub async fn signing<T, F>(&self, signer: Signer, job: F) -> Result<T, PoolError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let anonymous = match signer {
            Signer::Anonymous => Some(
                self.anonymous_signing
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|e| PoolError(e.to_string()))?,
            ),
            Signer::Authenticated => None,
        };
        let done = run(self.signing.clone(), None, job).await;
        drop(anonymous);
        done
    }

    /// Runs a storage call off the async workers.
    pub fn storage<T, F>(&self, job: F) -> impl Future<Output = Result<T, PoolError>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        run(self.storage.clone(), self.timers.clone(), job)
    }

    /// Runs a password hash or verification (with the storage reads it needs) on the
    /// hashing threads, at most one per thread at once, the rest waiting in line.
    pub fn hashing<T, F>(&self, job: F) -> impl Future<Output = Result<T, PoolError>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, answer) = oneshot::channel();
        let sent = self.hashing.send(Box::new(move || {
            let _ = done.send(catch_unwind(AssertUnwindSafe(job)));
        }));
        async move {
            sent.map_err(|_| PoolError("the hashing threads are gone".into()))?;
            match answer.await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(_)) => Err(PoolError("a hashing job panicked".into())),
                Err(_) => Err(PoolError("a hashing job was dropped".into())),
            }
        }
    }
}

/// Runs `job` on tokio's blocking threads once `bound` has a place; with `timers`, the wait
/// for the place and the run are observed apart (a slow database and a saturated pool look
/// different to an operator).
async fn run<T, F>(
    bound: Arc<Semaphore>,
    timers: Option<StorageTimers>,
    job: F,
) -> Result<T, PoolError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let queued = Instant::now();
    let permit = bound
        .acquire_owned()
        .await
        .map_err(|e| PoolError(e.to_string()))?;
    if let Some(t) = &timers {
        t.wait.observe(queued.elapsed().as_secs_f64());
    }
    actix_web::rt::task::spawn_blocking(move || {
        let _permit = permit;
        let started = Instant::now();
        let done = job();
        if let Some(t) = timers {
            t.call.observe(started.elapsed().as_secs_f64());
        }
        done
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
    }

    /// Anonymous signing batches run one at a time; authenticated ones beside them.
    #[actix_web::test]
    async fn anonymous_signing_has_one_place() {
        let pool = BlockingPool::new(8, 4);
        let (anonymous, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let authenticated = Arc::new(AtomicUsize::new(0));
        let jobs = (0..8).map(|i| {
            let (anonymous, peak, authenticated) =
                (anonymous.clone(), peak.clone(), authenticated.clone());
            let signer = if i % 2 == 0 {
                Signer::Anonymous
            } else {
                Signer::Authenticated
            };
            pool.signing(signer, move || {
                if signer == Signer::Anonymous {
                    let now = anonymous.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    anonymous.fetch_sub(1, Ordering::SeqCst);
                } else {
                    authenticated.fetch_add(1, Ordering::SeqCst);
                }
            })
        });
        for r in futures_util::future::join_all(jobs).await {
            r.expect("job ran");
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1);
        assert_eq!(authenticated.load(Ordering::SeqCst), 4);
        assert_eq!(pool.storage(|| 7).await.expect("ran"), 7);
    }

    #[actix_web::test]
    async fn a_panicking_job_is_an_error_not_a_crash() {
        let pool = BlockingPool::new(1, 1);
        let r = pool.storage(|| -> u8 { panic!("boom") }).await;
        assert!(r.is_err());
        assert_eq!(pool.storage(|| 1).await.expect("pool still usable"), 1);
        let r = pool.hashing(|| -> u8 { panic!("boom") }).await;
        assert!(r.is_err());
        assert_eq!(pool.hashing(|| 2).await.expect("thread still there"), 2);
    }
}
