//! Failure-based throttling (SPEC §7): after too many failed authentications from one IP or
//! for one username within a window, that key gets 429 for a while. Successes never count,
//! so parallel logins of a busy CI fleet are never slowed.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::deploy_token::SECRET_PREFIX;
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

/// Failures are kept as instants (at most `max_failures` of them), so the count is over a
/// sliding window: any `window`-long span, not fixed buckets that let 2N-2 through.
#[derive(Default)]
struct Entry {
    failures: VecDeque<Instant>,
    banned_until: Option<Instant>,
}

/// Bound on tracked keys, so a flood of distinct usernames cannot grow memory without end.
const MAX_ENTRIES: usize = 100_000;

pub struct Throttle {
    config: ThrottleConfig,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    pub fn new(config: ThrottleConfig) -> Self {
        Self {
            config,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds left on the longest ban among `keys`, if any is banned.
    pub fn banned(&self, keys: &[String], now: Instant) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            .filter_map(|k| entries.get(k)?.banned_until)
            .filter(|until| *until > now)
            .map(|until| (until - now).as_secs().max(1))
            .max()
    }

    pub fn record_failure(&self, keys: &[String], now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let cfg = self.config;
            entries.retain(|_, e| {
                e.banned_until.is_some_and(|u| u > now)
                    || e.failures.back().is_some_and(|t| now - *t < cfg.window)
            });
        }
        let max = self.config.max_failures as usize;
        for key in keys {
            // Still full of live entries: track no new keys rather than grow without bound
            // (the IP key of a flood is usually already tracked and banned).
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
                continue;
            }
            let e = entries.entry(key.clone()).or_default();
            while e
                .failures
                .front()
                .is_some_and(|t| now - *t >= self.config.window)
            {
                e.failures.pop_front();
            }
            e.failures.push_back(now);
            if e.failures.len() >= max {
                e.banned_until = Some(now + self.config.ban);
                e.failures.clear();
            }
        }
    }
}

/// Failures count per client address and per username. IPv6 clients count per /64, the
/// block one host usually controls; usernames that are long or look like secrets count by
/// digest, so a throttle key never holds a secret or a large string.
pub fn throttle_keys(peer: Option<IpAddr>, username: Option<&str>) -> Vec<String> {
    let ip = match peer {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        None => "ip:unknown".to_string(),
    };
    let mut keys = vec![ip];
    if let Some(u) = username {
        if u.len() > 64 || u.starts_with(SECRET_PREFIX) {
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
