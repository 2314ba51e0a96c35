//! A look that is due at most once per interval, for files watched by polling (the keys
//! manifest, the TLS certificate). Request and handshake paths call [`Interval::due`]: one
//! caller per interval gets `true` and does the look, the others go on with what is loaded,
//! without taking a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Interval {
    started: Instant,
    every_ms: u64,
    next_ms: AtomicU64,
}

impl Interval {
    /// The first look is due one interval from now (the caller has just loaded).
    pub fn new(every: Duration) -> Self {
        let every_ms = every.as_millis() as u64;
        Self {
            started: Instant::now(),
            every_ms,
            next_ms: AtomicU64::new(every_ms),
        }
    }

    /// True for exactly one caller once the interval has passed since the last `true`.
    pub fn due(&self) -> bool {
        let now = self.started.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + self.every_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    /// Makes the next call due at once (tests that change a file and look right away).
    #[cfg(test)]
    pub fn make_due(&self) {
        self.next_ms.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_caller_per_interval() {
        let interval = Interval::new(Duration::from_secs(3600));
        assert!(!interval.due(), "not due right after loading");
        interval.make_due();
        assert!(interval.due());
        assert!(!interval.due(), "only one caller per interval");
    }
}
