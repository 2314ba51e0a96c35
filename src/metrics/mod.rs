//! What the server counts, served at `GET /-/metrics` in Prometheus' text format (SPEC §6).
//!
//! Why an explicit [`Registry`] owned by `AppState` rather than the crate's global one:
//! several servers in one process (tests) stay independent, and nothing is counted before
//! `serve` has built its state. The layers below the app get the few handles they need
//! when they are built (the authenticator its failure counters, the blocking pool its
//! timers, the request limits their refusal counter); the lookup cache keeps plain atomics
//! that are read at each scrape ([`Metrics::pull_counters`]), so the store does not depend
//! on this module. The domain knows nothing of any of it: the label mappings below read its
//! enums.
//!
//! Labels are bounded by construction: a route is a matched route pattern or one of a few
//! fixed names ([`http`]), a status is a code, a service one of the configured names, and
//! every other label a `&'static str` from a mapping of an enum in this module. Nothing a
//! client chooses (a repository, a username, an address, a raw path) becomes a label.

pub mod http;

use std::collections::HashMap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, LabelPair, MetricFamily, MetricType};
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TEXT_FORMAT,
};

use crate::domain::authn::AuthnError;
use crate::domain::principal::Principal;
use crate::domain::user::UserCredential;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = TEXT_FORMAT;

/// A metric could not be defined or registered: names and labels are constants, so this
/// is a programming error, reported once when the server starts.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

/// A metric made and registered in one step: every metric here is both, and a metric made
/// but not registered would silently never be scraped.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: Result<M, prometheus::Error>,
) -> Result<M, MetricsError> {
    let metric = metric?;
    registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

/// A registered counter family `name` with `labels`.
fn counter_vec(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    registered(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

/// A registered histogram `name` of storage-call seconds.
fn storage_histogram(
    registry: &Registry,
    name: &str,
    help: &str,
) -> Result<Histogram, MetricsError> {
    registered(
        registry,
        Histogram::with_opts(HistogramOpts::new(name, help).buckets(STORAGE_BUCKETS.to_vec())),
    )
}

/// Request latency buckets, seconds: a token is answered in well under a millisecond, a
/// clone's first answer or a package upload in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Storage call buckets, seconds: a SQLite read takes tens of microseconds, a commit with
/// `synchronous = FULL` milliseconds; a busy database seconds.
const STORAGE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Who a token was issued to, as the `principal` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    Anonymous,
    DeployToken,
    PersonalAccessToken,
    Password,
    Session,
}

impl PrincipalKind {
    pub const ALL: [PrincipalKind; 5] = [
        PrincipalKind::Anonymous,
        PrincipalKind::DeployToken,
        PrincipalKind::PersonalAccessToken,
        PrincipalKind::Password,
        PrincipalKind::Session,
    ];

    pub fn of(principal: &Principal) -> Self {
        match principal {
            Principal::Anonymous => PrincipalKind::Anonymous,
            Principal::DeployToken(_) => PrincipalKind::DeployToken,
            Principal::User(u) => match u.credential {
                UserCredential::PersonalAccessToken { .. } => PrincipalKind::PersonalAccessToken,
                UserCredential::Password => PrincipalKind::Password,
                UserCredential::Session => PrincipalKind::Session,
            },
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            PrincipalKind::Anonymous => "anonymous",
            PrincipalKind::DeployToken => "deploy_token",
            PrincipalKind::PersonalAccessToken => "personal_access_token",
            PrincipalKind::Password => "password",
            PrincipalKind::Session => "session",
        }
    }
}

/// Every value of the `reason` label of failed authentications.
pub const FAILURE_REASONS: [&str; 9] = [
    "unknown_secret",
    "username_mismatch",
    "revoked",
    "expired",
    "pat_inactive",
    "bad_password",
    "blocked",
    "not_accepted",
    "storage",
];

/// The stable label of why authentication refused a credential. The token id or user id
/// some reasons carry stays out: it would make one series per token.
pub fn failure_reason(reason: &AuthnError) -> &'static str {
    match reason {
        AuthnError::UnknownSecret => "unknown_secret",
        AuthnError::UsernameMismatch => "username_mismatch",
        AuthnError::Revoked(_) => "revoked",
        AuthnError::Expired(_) => "expired",
        AuthnError::PatInactive(_) => "pat_inactive",
        AuthnError::BadPassword => "bad_password",
        AuthnError::Blocked(_) => "blocked",
        AuthnError::NotAccepted(_) => "not_accepted",
        // Storage failures are answered 503 and never counted as refusals; the arm keeps
        // the mapping total.
        AuthnError::Store(_) => "storage",
    }
}

/// Which bound refused a request with "come back later" (the `limit` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The failure throttle (`--throttle-*`): 429 to a banned client or a password check
    /// that found no place.
    AuthFailures,
    /// Requests in flight per client (`--max-requests-per-client`): 429.
    RequestsInFlight,
    /// `git http-backend` processes (`--max-git-processes`): 503 with `Retry-After`.
    GitProcesses,
}

impl Limit {
    pub const ALL: [Limit; 3] = [
        Limit::AuthFailures,
        Limit::RequestsInFlight,
        Limit::GitProcesses,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Limit::AuthFailures => "auth_failures",
            Limit::RequestsInFlight => "requests_in_flight",
            Limit::GitProcesses => "git_processes",
        }
    }
}

/// What streamed bytes were (the `kind` label of bytes served).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// `git http-backend`'s answers: ref advertisements, packs, push reports.
    Git,
    /// LFS object downloads.
    Lfs,
    /// Package file downloads (generic, PyPI, npm tarballs).
    Package,
}

impl Served {
    pub const ALL: [Served; 3] = [Served::Git, Served::Lfs, Served::Package];

    pub fn label(self) -> &'static str {
        match self {
            Served::Git => "git",
            Served::Lfs => "lfs",
            Served::Package => "package",
        }
    }
}

/// Every metric of one server, and the registry `/-/metrics` renders.
pub struct Metrics {
    registry: Registry,
    http: http::HttpMetrics,
    tokens: TokenCounters,
    auth: AuthMetrics,
    throttled: [IntCounter; 3],
    storage: StorageTimers,
    served: [IntCounter; 3],
}

impl Metrics {
    /// The metrics of a server issuing tokens for `services` (registry and Dependency Proxy
    /// services: their counters are resolved once, and exist from zero on).
    pub fn new(services: &[String]) -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let http = http::HttpMetrics::new(&registry, HTTP_BUCKETS)?;

        let tokens_family = counter_vec(
            &registry,
            "wvs_auth_tokens_issued_total",
            "Registry tokens issued by /jwt/auth, by service and by the kind of principal \
                 they were issued to.",
            &["service", "principal"],
        )?;
        let tokens = TokenCounters {
            resolved: services
                .iter()
                .map(|service| {
                    let counters = PrincipalKind::ALL
                        .map(|kind| tokens_family.with_label_values(&[service, kind.label()]));
                    (service.clone(), counters)
                })
                .collect(),
            family: tokens_family,
        };

        let failures = counter_vec(
            &registry,
            "wvs_auth_auth_failures_total",
            "Credentials refused, on every surface, by surface and reason (the same \
                 refusals the audit log records).",
            &["surface", "reason"],
        )?;

        let throttled_family = counter_vec(
            &registry,
            "wvs_auth_throttled_requests_total",
            "Requests told to come back later, by the limit that refused them: \
                 auth_failures and requests_in_flight answer 429, git_processes 503.",
            &["limit"],
        )?;
        let throttled = Limit::ALL.map(|l| throttled_family.with_label_values(&[l.label()]));

        let wait = storage_histogram(
            &registry,
            "wvs_auth_storage_wait_duration_seconds",
            "Time storage calls waited for a place on the blocking pool.",
        )?;
        let call = storage_histogram(
            &registry,
            "wvs_auth_storage_call_duration_seconds",
            "Time storage calls ran on the blocking pool (database reads and commits, \
             blob opens).",
        )?;

        let served_family = counter_vec(
            &registry,
            "wvs_auth_served_bytes_total",
            "Response body bytes streamed to clients: git (http-backend), lfs (object \
                 downloads), package (package file downloads).",
            &["kind"],
        )?;
        let served = Served::ALL.map(|s| served_family.with_label_values(&[s.label()]));

        let build = registered(
            &registry,
            IntGaugeVec::new(
                Opts::new(
                    "wvs_auth_build_info",
                    "Always 1; the version of the running wvs-auth is its label.",
                ),
                &["version"],
            ),
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);

        // Series for every surface and reason from zero on, so `rate()` and `increase()`
        // see the first failure of each.
        for surface in SURFACES {
            for reason in FAILURE_REASONS {
                failures.with_label_values(&[surface, reason]);
            }
        }
        Ok(Self {
            auth: AuthMetrics {
                failures,
                throttled: throttled[0].clone(),
            },
            registry,
            http,
            tokens,
            throttled,
            storage: StorageTimers { wait, call },
            served,
        })
    }

    /// The text `/-/metrics` answers.
    pub fn render(&self) -> Result<String, MetricsError> {
        Ok(prometheus::TextEncoder::new().encode_to_string(&self.registry.gather())?)
    }

    /// One token issued by `/jwt/auth` for `service` to `principal`.
    pub fn token_issued(&self, service: &str, principal: &Principal) {
        let kind = PrincipalKind::of(principal);
        match self.tokens.resolved.iter().find(|(s, _)| s == service) {
            Some((_, counters)) => counters[kind as usize].inc(),
            None => self
                .tokens
                .family
                .with_label_values(&[service, kind.label()])
                .inc(),
        }
    }

    /// A request refused by `limit` (the failure throttle counts itself: [`Self::auth`]).
    pub fn throttled(&self, limit: Limit) {
        self.throttled[limit as usize].inc();
    }

    /// The counter of `limit`'s refusals, for a layer that counts them itself.
    pub fn throttled_counter(&self, limit: Limit) -> IntCounter {
        self.throttled[limit as usize].clone()
    }

    /// The counter of bytes of `kind` served, for [`http::count_body`].
    pub fn served(&self, kind: Served) -> &IntCounter {
        &self.served[kind as usize]
    }

    /// The authenticator's handles.
    pub fn auth(&self) -> AuthMetrics {
        self.auth.clone()
    }

    /// The blocking pool's handles.
    pub fn storage_timers(&self) -> StorageTimers {
        self.storage.clone()
    }

    pub(crate) fn http(&self) -> &http::HttpMetrics {
        &self.http
    }

    /// Registers a counter family whose values another layer keeps (plain atomics) and
    /// `read` returns at each scrape, as label values and count.
    pub fn pull_counters<F>(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        read: F,
    ) -> Result<(), MetricsError>
    where
        F: Fn() -> Vec<(Vec<String>, u64)> + Send + Sync + 'static,
    {
        let pulled = Pulled::new(name, help, labels, MetricType::COUNTER, move || {
            read().into_iter().map(|(l, v)| (l, v as f64)).collect()
        })?;
        Ok(self.registry.register(Box::new(pulled))?)
    }

    /// Registers a gauge family `read` computes at each scrape.
    pub fn pull_gauges<F>(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        read: F,
    ) -> Result<(), MetricsError>
    where
        F: Fn() -> Vec<(Vec<String>, f64)> + Send + Sync + 'static,
    {
        let pulled = Pulled::new(name, help, labels, MetricType::GAUGE, read)?;
        Ok(self.registry.register(Box::new(pulled))?)
    }
}

/// The `surface` label values: `auth::Surface` lies above this module, so its names are
/// repeated here (a unit test there checks they agree).
pub const SURFACES: [&str; 5] = ["registry", "git", "api", "pages", "packages"];

/// Tokens issued, resolved per configured service and principal kind: the token endpoint is
/// the hot path, and a resolved counter is one atomic add.
struct TokenCounters {
    family: IntCounterVec,
    resolved: Vec<(String, [IntCounter; 5])>,
}

/// What the authenticator counts: refused credentials and throttled attempts.
#[derive(Clone)]
pub struct AuthMetrics {
    failures: IntCounterVec,
    throttled: IntCounter,
}

impl AuthMetrics {
    /// A credential refused on `surface` (one of [`SURFACES`]) for `reason`.
    pub fn refused(&self, surface: &str, reason: &AuthnError) {
        self.failures
            .with_label_values(&[surface, failure_reason(reason)])
            .inc();
    }

    /// An attempt refused by the failure throttle.
    pub fn throttled(&self) {
        self.throttled.inc();
    }
}

/// The blocking pool's storage timers.
#[derive(Clone)]
pub struct StorageTimers {
    pub wait: Histogram,
    pub call: Histogram,
}

type Read = Box<dyn Fn() -> Vec<(Vec<String>, f64)> + Send + Sync>;

/// A metric family whose values are read when scraped.
struct Pulled {
    desc: Desc,
    labels: Vec<String>,
    kind: MetricType,
    read: Read,
}

impl Pulled {
    fn new(
        name: &str,
        help: &str,
        labels: &[&str],
        kind: MetricType,
        read: impl Fn() -> Vec<(Vec<String>, f64)> + Send + Sync + 'static,
    ) -> Result<Self, MetricsError> {
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        Ok(Self {
            desc: Desc::new(name.into(), help.into(), labels.clone(), HashMap::new())?,
            labels,
            kind,
            read: Box::new(read),
        })
    }
}

impl Collector for Pulled {
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let metrics = (self.read)()
            .into_iter()
            .map(|(values, value)| {
                let mut metric = proto::Metric::default();
                let mut labels: Vec<LabelPair> = self
                    .labels
                    .iter()
                    .zip(values)
                    .map(|(name, value)| {
                        let mut pair = LabelPair::default();
                        pair.set_name(name.clone());
                        pair.set_value(value);
                        pair
                    })
                    .collect();
                // In name order, as the crate writes its own metrics' labels.
                labels.sort_by(|a, b| a.name().cmp(b.name()));
                metric.set_label(labels);
                if self.kind == MetricType::COUNTER {
                    let mut counter = proto::Counter::default();
                    counter.set_value(value);
                    metric.set_counter(counter);
                } else {
                    let mut gauge = proto::Gauge::default();
                    gauge.set_value(value);
                    metric.set_gauge(gauge);
                }
                metric
            })
            .collect();
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(self.kind);
        family.set_metric(metrics);
        vec![family]
    }
}

/// The in-flight gauge's share of one request: decremented however the request ends
/// (answered, failed, or dropped when the client went away).
pub(crate) struct InFlight(IntGauge);

impl InFlight {
    pub(crate) fn enter(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::authn::SecretKind;
    use crate::domain::deploy_token::{DeployToken, TokenOwner};
    use crate::domain::user::{User, UserPrincipal};

    fn metrics() -> Metrics {
        Metrics::new(&["registry".to_string()]).expect("metrics")
    }

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    fn user(credential: UserCredential) -> Principal {
        Principal::User(Box::new(UserPrincipal {
            user: User {
                id: 1,
                username: "alice".into(),
                is_admin: false,
                created_at: chrono::Utc::now(),
                blocked_at: None,
            },
            memberships: Vec::new(),
            credential,
        }))
    }

    #[test]
    fn principals_map_to_their_kind() {
        let token = DeployToken {
            id: 7,
            owner: TokenOwner::Project {
                id: 1,
                path: crate::domain::fixtures::path("acme/app"),
            },
            name: "t".into(),
            custom_username: None,
            scopes: Vec::new(),
            expires_at: None,
            created_at: chrono::Utc::now(),
            revoked_at: None,
            last_used_at: None,
            created_by: None,
        };
        let cases = [
            (Principal::Anonymous, "anonymous"),
            (Principal::DeployToken(Box::new(token)), "deploy_token"),
            (user(UserCredential::Password), "password"),
            (user(UserCredential::Session), "session"),
            (
                user(UserCredential::PersonalAccessToken {
                    id: 1,
                    scopes: Vec::new(),
                    expires_at: None,
                }),
                "personal_access_token",
            ),
        ];
        for (principal, label) in cases {
            assert_eq!(PrincipalKind::of(&principal).label(), label);
        }
        // The resolved counters are indexed by the enum: its order is ALL's.
        for (i, kind) in PrincipalKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i);
        }
        for (i, limit) in Limit::ALL.iter().enumerate() {
            assert_eq!(*limit as usize, i);
        }
        for (i, served) in Served::ALL.iter().enumerate() {
            assert_eq!(*served as usize, i);
        }
    }

    #[test]
    fn refusal_reasons_are_stable_labels_without_ids() {
        let cases = [
            (AuthnError::UnknownSecret, "unknown_secret"),
            (AuthnError::UsernameMismatch, "username_mismatch"),
            (AuthnError::Revoked(41), "revoked"),
            (AuthnError::Expired(42), "expired"),
            (AuthnError::PatInactive(43), "pat_inactive"),
            (AuthnError::BadPassword, "bad_password"),
            (AuthnError::Blocked(44), "blocked"),
            (
                AuthnError::NotAccepted(SecretKind::Password),
                "not_accepted",
            ),
        ];
        for (reason, label) in cases {
            assert_eq!(failure_reason(&reason), label);
            assert!(FAILURE_REASONS.contains(&label));
        }
    }

    #[test]
    fn counters_move_and_render_with_help() {
        let m = metrics();
        m.token_issued("registry", &Principal::Anonymous);
        m.token_issued("registry", &Principal::Anonymous);
        m.token_issued("unlisted", &Principal::Anonymous);
        m.auth().refused("git", &AuthnError::Revoked(3));
        m.auth().throttled();
        m.throttled(Limit::GitProcesses);
        m.served(Served::Lfs).inc_by(10);
        m.storage_timers().call.observe(0.0002);
        let text = m.render().expect("render");
        for (series, value) in [
            (
                "wvs_auth_tokens_issued_total{principal=\"anonymous\",service=\"registry\"}",
                "2",
            ),
            (
                "wvs_auth_tokens_issued_total{principal=\"anonymous\",service=\"unlisted\"}",
                "1",
            ),
            (
                "wvs_auth_tokens_issued_total{principal=\"deploy_token\",service=\"registry\"}",
                "0",
            ),
            (
                "wvs_auth_auth_failures_total{reason=\"revoked\",surface=\"git\"}",
                "1",
            ),
            (
                "wvs_auth_auth_failures_total{reason=\"bad_password\",surface=\"pages\"}",
                "0",
            ),
            (
                "wvs_auth_throttled_requests_total{limit=\"auth_failures\"}",
                "1",
            ),
            (
                "wvs_auth_throttled_requests_total{limit=\"git_processes\"}",
                "1",
            ),
            ("wvs_auth_served_bytes_total{kind=\"lfs\"}", "10"),
            ("wvs_auth_storage_call_duration_seconds_count", "1"),
            ("wvs_auth_build_info{version=", "1"),
        ] {
            let found = line(&text, series).unwrap_or_else(|| panic!("{series} in {text}"));
            assert!(found.ends_with(&format!(" {value}")), "{found}");
        }
        for family in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
            let name = family.split(' ').next().unwrap_or_default();
            assert!(
                text.contains(&format!("# HELP {name} ")),
                "{name} has no HELP"
            );
        }
    }

    #[test]
    fn pulled_families_are_read_at_each_scrape() {
        let m = metrics();
        let n = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let read = n.clone();
        m.pull_counters("wvs_auth_test_total", "A test.", &["b", "a"], move || {
            vec![(
                vec!["y".to_string(), "x".to_string()],
                read.load(std::sync::atomic::Ordering::Relaxed),
            )]
        })
        .expect("register");
        m.pull_gauges("wvs_auth_test_gauge", "A gauge.", &[], || {
            vec![(Vec::new(), 2.5)]
        })
        .expect("register");
        n.store(5, std::sync::atomic::Ordering::Relaxed);
        let text = m.render().expect("render");
        assert!(
            text.contains("# TYPE wvs_auth_test_total counter"),
            "{text}"
        );
        assert!(
            text.contains("wvs_auth_test_total{a=\"x\",b=\"y\"} 5"),
            "{text}"
        );
        assert!(text.contains("wvs_auth_test_gauge 2.5"), "{text}");
    }

    #[test]
    fn two_servers_in_one_process_count_apart() {
        let (a, b) = (metrics(), metrics());
        a.throttled(Limit::RequestsInFlight);
        let key = "wvs_auth_throttled_requests_total{limit=\"requests_in_flight\"}";
        assert!(line(&a.render().expect("a"), key).is_some_and(|l| l.ends_with(" 1")));
        assert!(line(&b.render().expect("b"), key).is_some_and(|l| l.ends_with(" 0")));
    }
}
