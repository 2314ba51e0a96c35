//! Failure-based throttling (SPEC §7): after too many failed authentications from one IP or
//! for one username within a window, that key gets 429 for a while. Successes never count,
//! so parallel logins of a busy CI fleet are never slowed, and a ban only stops failing
//! credentials and password checks: a valid token goes through from a banned key (the
//! authentication step looks it up first).
//!
//! Memory is bounded and every operation O(1) (but making room in a full ban table): the
//! failure counts live in an LRU table, the bans in another, so a flood of distinct bogus
//! clients evicts old counts, never a ban.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

use crate::domain::deploy_token::SECRET_PREFIX;
use crate::domain::personal_access_token::PAT_PREFIX;
use crate::domain::secret::HashedToken;

#[derive(Debug, Clone, Copy)]
pub struct ThrottleConfig {
    pub max_failures: u32,
    pub window: Duration,
    pub ban: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            max_failures: 30,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        }
    }
}

/// Failures of one key, oldest first, as instants (at most `max_failures` of them), so the
/// count is over a sliding window: any `window`-long span, not fixed buckets that let 2N-2
/// through.
type Failures = VecDeque<Instant>;

/// Keys whose failures are tracked at once. A flood of distinct clients (rotating IPv6 /64s,
/// forged forwarded addresses) pushes the least recently failing keys out, in O(1), and
/// never touches the bans, which are kept apart.
const MAX_TRACKED: usize = 100_000;
/// Bans held at once. A ban costs its key `max_failures` failures, so filling this takes
/// millions of requests; when it is full the ban nearest its end goes first.
const MAX_BANS: usize = 100_000;

struct Tables {
    failures: LruCache<String, Failures>,
    bans: LruCache<String, Instant>,
    /// Password checks in flight per key (bounded by the requests in flight).
    pending: HashMap<String, u32>,
}

/// A password check under way, counted against its keys until it is settled, so parallel
/// attempts cannot slip past the limit: checks in flight and failures together never
/// exceed `max_failures`.
#[derive(Debug)]
#[must_use = "settle the check, or its keys stay charged"]
pub struct Charge {
    keys: Vec<String>,
}

/// Why a password check may not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A key is banned for this many more seconds.
    Banned(u64),
    /// Checks in flight would take a key past its limit: wait for them to settle.
    Busy,
}

pub struct Throttle {
    config: ThrottleConfig,
    tables: Mutex<Tables>,
}

fn capacity(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN)
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            tables: Mutex::new(Tables {
                failures: LruCache::new(capacity(MAX_TRACKED)),
                bans: LruCache::new(capacity(MAX_BANS)),
                pending: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock leaves plain data behind; keep counting.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Seconds left on the longest ban among `keys`, if any is banned.
    pub fn banned(&self, keys: &[String], now: Instant) -> Option<u64> {
        banned_in(&mut self.lock(), keys, now)
    }

    pub fn record_failure(&self, keys: &[String], now: Instant) {
        let mut tables = self.lock();
        for key in keys {
            self.fail(&mut tables, key, now);
        }
    }

    /// Reserves a password check for `keys`: refused while a key is banned, and while
    /// its recent failures plus the checks in flight reach the limit (the caller waits and
    /// asks again: the checks in flight settle within an argon2 run or two).
    pub fn charge(&self, keys: &[String], now: Instant) -> Result<Charge, Refusal> {
        let mut tables = self.lock();
        if let Some(secs) = banned_in(&mut tables, keys, now) {
            return Err(Refusal::Banned(secs));
        }
        let max = self.config.max_failures as usize;
        let window = self.config.window;
        for key in keys {
            let recent = tables
                .failures
                .peek(key)
                .map_or(0, |f| f.iter().filter(|t| now - **t < window).count());
            let in_flight = tables.pending.get(key).copied().unwrap_or(0) as usize;
            if recent + in_flight >= max {
                return Err(Refusal::Busy);
            }
        }
        for key in keys {
            *tables.pending.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(Charge {
            keys: keys.to_vec(),
        })
    }

    /// The check is done: `failed` counts it as a failure (which may start a ban).
    pub fn settle(&self, charge: Charge, failed: bool, now: Instant) {
        let mut tables = self.lock();
        for key in &charge.keys {
            if let Some(n) = tables.pending.get_mut(key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    tables.pending.remove(key);
                }
            }
            if failed {
                self.fail(&mut tables, key, now);
            }
        }
    }

    /// Counts one failure of `key`; `true` when it starts a ban.
    fn fail(&self, tables: &mut Tables, key: &str, now: Instant) -> bool {
        let window = self.config.window;
        let max = self.config.max_failures as usize;
        if !tables.failures.contains(key) {
            tables.failures.put(key.to_string(), VecDeque::new());
        }
        let Some(failures) = tables.failures.get_mut(key) else {
            return false;
        };
        while failures.front().is_some_and(|t| now - *t >= window) {
            failures.pop_front();
        }
        failures.push_back(now);
        if failures.len() < max {
            return false;
        }
        failures.clear();
        if tables.bans.len() >= MAX_BANS {
            // Make room with a ban that has ended, or else the one ending first.
            let ended = tables
                .bans
                .iter()
                .min_by_key(|(_, until)| **until)
                .map(|(k, _)| k.clone());
            if let Some(k) = ended {
                tables.bans.pop(&k);
            }
        }
        tables.bans.put(key.to_string(), now + self.config.ban);
        true
    }

    /// Keys tracked and bans held, for tests and metrics.
    pub fn sizes(&self) -> (usize, usize) {
        let tables = self.lock();
        (tables.failures.len(), tables.bans.len())
    }
}

fn banned_in(tables: &mut Tables, keys: &[String], now: Instant) -> Option<u64> {
    let mut longest = None;
    for key in keys {
        match tables.bans.peek(key).copied() {
            Some(until) if until > now => {
                let secs = (until - now).as_secs().max(1);
                longest = Some(longest.map_or(secs, |l: u64| l.max(secs)));
            }
            Some(_) => {
                tables.bans.pop(key);
            }
            None => {}
        }
    }
    longest
}

/// Failures count per client address and per username. IPv6 clients count per /64, the
/// block one host usually controls; usernames that are long or look like secrets count by
/// digest, so a throttle key never holds a secret or a large string.
pub fn throttle_keys(peer: Option<IpAddr>, username: Option<&str>) -> Vec<String> {
    let mut keys = vec![crate::request::client::client_key(peer)];
    if let Some(u) = username {
        if u.len() > 64 || u.starts_with(SECRET_PREFIX) || u.starts_with(PAT_PREFIX) {
            keys.push(format!("user#:{}", HashedToken::of(u).hex_prefix(16)));
        } else {
            keys.push(format!("user:{u}"));
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_hold_through_a_flood_of_distinct_clients() {
        let t = Throttle::new(ThrottleConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        });
        let t0 = Instant::now();
        let attacker = vec!["ip:203.0.113.9".to_string()];
        for _ in 0..3 {
            t.record_failure(&attacker, t0);
        }
        assert!(t.banned(&attacker, t0).is_some());
        for i in 0..MAX_TRACKED + 1_000 {
            t.record_failure(&[format!("ip6:2001:db8:{i:x}::/64")], t0);
        }
        let (tracked, bans) = t.sizes();
        assert!(tracked <= MAX_TRACKED, "{tracked}");
        assert_eq!(bans, 1);
        assert!(t.banned(&attacker, t0).is_some(), "the ban was evicted");
        // A new key still gets banned after the flood.
        let late = vec!["ip:198.51.100.1".to_string()];
        for _ in 0..3 {
            t.record_failure(&late, t0);
        }
        assert!(t.banned(&late, t0).is_some());
    }

    #[test]
    fn checks_in_flight_count_against_the_limit() {
        let t = Throttle::new(ThrottleConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        });
        let keys = vec!["ip:1".to_string(), "user:alice".to_string()];
        let t0 = Instant::now();
        // Ten at once: three may run, the rest wait.
        let mut running: Vec<_> = (0..10).filter_map(|_| t.charge(&keys, t0).ok()).collect();
        assert_eq!(running.len(), 3);
        assert_eq!(t.charge(&keys, t0).err(), Some(Refusal::Busy));
        // One was right: it frees its place and counts nothing.
        t.settle(running.pop().expect("three"), false, t0);
        let again = t.charge(&keys, t0).expect("a place is free");
        // Three wrong ones: the third failure bans, the waiting ones are then refused.
        t.settle(again, true, t0);
        for c in running {
            t.settle(c, true, t0);
        }
        assert!(matches!(t.charge(&keys, t0), Err(Refusal::Banned(_))));
        // Nothing stays charged once everything settled.
        assert!(t.lock().pending.is_empty());
    }

    #[test]
    fn bans_after_threshold_within_window_only() {
        let t = Throttle::new(ThrottleConfig {
            max_failures: 3,
            window: Duration::from_secs(60),
            ban: Duration::from_secs(600),
        });
        let keys = vec!["ip:1".to_string()];
        let t0 = Instant::now();
        t.record_failure(&keys, t0);
        t.record_failure(&keys, t0 + Duration::from_secs(61)); // the first has slid out
        t.record_failure(&keys, t0 + Duration::from_secs(62));
        assert_eq!(t.banned(&keys, t0 + Duration::from_secs(62)), None);
        t.record_failure(&keys, t0 + Duration::from_secs(63));
        let left = t
            .banned(&keys, t0 + Duration::from_secs(63))
            .expect("banned");
        assert!(left > 590 && left <= 600);
        assert_eq!(t.banned(&keys, t0 + Duration::from_secs(700)), None);
        assert_eq!(t.banned(&["ip:2".to_string()], t0), None);
    }

    /// SPEC §7: "≥ N failed authentications … within 60 s → 429" in *any* window of that
    /// length; fixed windows that restart would let up to 2N−2 failures through.
    #[test]
    fn failures_are_counted_in_any_window_of_the_configured_length() {
        let t = Throttle::new(ThrottleConfig {
            max_failures: 4,
            window: Duration::from_secs(4),
            ban: Duration::from_secs(600),
        });
        let keys = throttle_keys(Some([127, 0, 0, 1].into()), Some("wvs+deploy-token-1"));
        let t0 = Instant::now();
        let at = |secs: f64| t0 + Duration::from_secs_f64(secs);
        // One failure at 0 s, two at 2 s, two at 4.3 s: the last four lie within 2.3 s.
        for moment in [0.0, 2.0, 2.0] {
            let banned = t.banned(&keys, at(moment));
            assert_eq!(banned, None, "refused early at {moment} s");
            t.record_failure(&keys, at(moment));
        }
        // Three failures in the window ending at 4.3 s so far (the first has slid out).
        assert_eq!(t.banned(&keys, at(4.3)), None);
        t.record_failure(&keys, at(4.3));
        t.record_failure(&keys, at(4.3));
        // A window restarting at 4 s would count only one failure here.
        let left = t
            .banned(&keys, at(4.3))
            .expect("4 failures in 2.3 s (limit 4 per 4 s)");
        assert!(left > 590, "{left}");
        // The address and the username are both banned.
        assert!(t.banned(&keys[..1], at(5.0)).is_some());
        assert!(t.banned(&keys[1..], at(5.0)).is_some());
    }
}
