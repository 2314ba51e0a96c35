//! Repeated refusals are counted, not written one by one (issue 18): a banned client that
//! retries as fast as it can once wrote 67 MB of log in 8 s, and a flood of distinct bogus
//! clients wrote one audit row each. A [`Sampler`] lets through the first few refusals per
//! client and per window, and a fixed number overall; the rest are counted, and what was
//! held back is reported once per window as a summary (who sent the most, how many in all).
//!
//! The access log's sampler is process-wide ([`log_refusal`]), like the logger itself; the
//! audit log's lives in the authentication step.

use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;

use super::client::client_key;

/// Clients whose refusals are counted in one window; beyond it the least recent is
/// forgotten (and may log again), which only matters under a flood of distinct clients,
/// where the overall budget still holds.
const TRACKED: usize = 10_000;

/// What one window held back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    pub count: u64,
    /// The client with the most refusals held back, and how many.
    pub top: (String, u64),
    /// How long the window was.
    pub window: Duration,
}

impl std::fmt::Display for Suppressed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} more refusals in the last {} s were not recorded one by one; most from {} ({})",
            self.count,
            self.window.as_secs(),
            self.top.0,
            self.top.1
        )
    }
}

/// Whether one refusal is recorded, and a summary of the window that just ended, if it held
/// anything back.
#[derive(Debug, PartialEq, Eq)]
pub struct Admission {
    pub record: bool,
    pub summary: Option<Suppressed>,
}

pub struct Sampler {
    window: Duration,
    per_client: u32,
    overall: u32,
    state: Mutex<Window>,
}

struct Window {
    started: Instant,
    recorded: u32,
    held_back: u64,
    top: (String, u64),
    /// Per client: recorded, held back.
    clients: LruCache<String, (u32, u64)>,
}

impl Window {
    fn new(started: Instant) -> Self {
        Self {
            started,
            recorded: 0,
            held_back: 0,
            top: (String::new(), 0),
            clients: LruCache::new(NonZeroUsize::new(TRACKED).unwrap_or(NonZeroUsize::MIN)),
        }
    }
}

impl Sampler {
    /// At most `per_client` refusals per client and `overall` in all are recorded per
    /// `window`, which starts at `now`.
    pub fn new(window: Duration, per_client: u32, overall: u32, now: Instant) -> Self {
        Self {
            window,
            per_client,
            overall,
            state: Mutex::new(Window::new(now)),
        }
    }

    /// One refusal of `client` at `now`.
    pub fn admit(&self, client: &str, now: Instant) -> Admission {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let summary = self.roll_locked(&mut w, now);
        let room = w.recorded < self.overall;
        let entry = w.clients.get_or_insert_mut(client.to_string(), || (0, 0));
        let record = room && entry.0 < self.per_client;
        if record {
            entry.0 += 1;
            w.recorded += 1;
        } else {
            entry.1 += 1;
            let held = entry.1;
            w.held_back += 1;
            if held > w.top.1 {
                w.top = (client.to_string(), held);
            }
        }
        Admission { record, summary }
    }

    /// Ends the window when it is over; the summary, when it held anything back.
    pub fn roll(&self, now: Instant) -> Option<Suppressed> {
        let mut w = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.roll_locked(&mut w, now)
    }

    fn roll_locked(&self, w: &mut Window, now: Instant) -> Option<Suppressed> {
        if now.saturating_duration_since(w.started) < self.window {
            return None;
        }
        let ended = std::mem::replace(w, Window::new(now));
        (ended.held_back > 0).then_some(Suppressed {
            count: ended.held_back,
            top: ended.top,
            window: self.window,
        })
    }
}

/// The access log's budget: per client 30 refusal lines a minute, 1,200 in all.
static ACCESS_LOG: LazyLock<Sampler> =
    LazyLock::new(|| Sampler::new(Duration::from_secs(60), 30, 1_200, Instant::now()));

/// Whether the log line of a refused request from `client` (a 401, 403, 429) is written;
/// also writes the summary of a window that just ended.
pub fn log_refusal(client: Option<IpAddr>) -> bool {
    let admission = ACCESS_LOG.admit(&client_key(client), Instant::now());
    if let Some(summary) = admission.summary {
        log::warn!("{summary}");
    }
    admission.record
}

/// For the housekeeping thread: the summary of a window that ended with no refusal since.
pub fn flush_log_summary() {
    if let Some(summary) = ACCESS_LOG.roll(Instant::now()) {
        log::warn!("{summary}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_is_recorded_a_few_times_per_window_then_summarised() {
        let t0 = Instant::now();
        let s = Sampler::new(Duration::from_secs(60), 3, 100, t0);
        let recorded = (0..1000)
            .filter(|_| s.admit("ip:10.0.0.1", t0).record)
            .count();
        assert_eq!(recorded, 3);
        assert!(s.admit("ip:10.0.0.2", t0).record, "another client logs");
        assert_eq!(
            s.roll(t0 + Duration::from_secs(59)),
            None,
            "window not over"
        );
        let next = s.admit("ip:10.0.0.1", t0 + Duration::from_secs(60));
        assert!(next.record, "a new window records again");
        assert_eq!(
            next.summary,
            Some(Suppressed {
                count: 997,
                top: ("ip:10.0.0.1".into(), 997),
                window: Duration::from_secs(60),
            })
        );
        assert_eq!(
            s.roll(t0 + Duration::from_secs(200)),
            None,
            "nothing held back"
        );
    }

    #[test]
    fn distinct_clients_share_one_overall_budget() {
        let t0 = Instant::now();
        let s = Sampler::new(Duration::from_secs(60), 3, 50, t0);
        let recorded = (0..100_000)
            .filter(|i| s.admit(&format!("ip:{i}"), t0).record)
            .count();
        assert_eq!(recorded, 50);
        let summary = s.roll(t0 + Duration::from_secs(61)).expect("summary");
        assert_eq!(summary.count, 100_000 - 50);
    }
}
