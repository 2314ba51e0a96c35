//! The application state every request handler reads, grouped by what it is for: the
//! stores, the one authentication step, the managers, the keys, each realm's settings, and
//! the settings pages' own state. (crates.io's `src/app.rs` is the model.)
//!
//! Built once by `serve`; handlers receive it as `web::Data<AppState>`. This module sits
//! below every surface: it imports no realm, no API and no page, so none of them forms a
//! cycle with it.

pub mod flash;
pub mod housekeeping;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::auth::throttle::Throttle;
use crate::auth::usage::UsageRecorder;
use crate::auth::Authenticator;
use crate::blocking::{BlockingPool, PoolError};
use crate::config::ServeConfig;
use crate::domain::store::Store;
use crate::keys::issue::TokenIssuer;
use crate::keys::verify::JwtVerifier;
use crate::keys::LiveKeys;
use crate::manage::Managers;
use crate::metrics::{Limit, Metrics, MetricsError};
use crate::request::limits::RequestLimits;
use crate::store::blobs::{BlobStore, FsBlobs};
use crate::store::memo::Memo;
use crate::store::{Opened, Reads};
use flash::FlashStore;

pub struct AppState {
    /// The backend, for the pages' sessions and the health check.
    pub store: Arc<dyn Store>,
    /// Package file contents, by SHA-256.
    pub blobs: Arc<dyn BlobStore>,
    /// The realms' per-request reads (memory first, then the blocking pool).
    pub reads: Reads,
    /// Package indexes rendered from many rows, kept while the database is unchanged.
    pub memo: Arc<dyn Memo>,
    /// The one authentication step.
    pub auth: Authenticator,
    /// Every change goes through these.
    pub manage: Managers,
    pub keys: Keys,
    pub realms: RealmSettings,
    pub web: WebState,
    /// Written in the background; flushed once more when the server stops.
    pub usage: Arc<UsageRecorder>,
    /// What every request passes before a handler (in flight per client, body idle).
    pub limits: Arc<RequestLimits>,
    /// What `/-/metrics` reports; its handles are in the layers above too.
    pub metrics: Arc<Metrics>,
}

/// The signing keys as the realms use them.
pub struct Keys {
    pub live: Arc<LiveKeys>,
    /// Registry JWTs (`/jwt/auth`, the Dependency Proxy's cache tokens).
    pub issuer: TokenIssuer,
    /// wvs-auth's own JWTs coming back: proxy bearer tokens, LFS links.
    pub verifier: JwtVerifier,
}

/// What each realm is configured with.
pub struct RealmSettings {
    /// Registry service names this server issues tokens for (`aud`).
    pub services: Vec<String>,
    /// Dependency Proxy service names (`aud` of pull-through cache tokens).
    pub proxy_services: Vec<String>,
    /// The GitLab-style `/v2/` endpoint, when `--proxy-registry` is set.
    pub proxy: Option<ProxyUpstream>,
    /// `--public-url`: the realm of `/v2/` challenges, `Secure` cookies on https.
    pub public_url: Option<String>,
    /// Where the git realm keeps `repositories/` (and their LFS objects) and the package
    /// realm `packages/`.
    pub data_dir: PathBuf,
    /// Largest package file accepted, bytes.
    pub max_package_size: u64,
    /// `git http-backend` processes that may run at once (`--max-git-processes`).
    pub git_processes: Arc<tokio::sync::Semaphore>,
}

/// The pull-through cache behind the GitLab-style Dependency Proxy paths.
pub struct ProxyUpstream {
    /// Base URL of the cache, without trailing slash.
    pub cache_url: String,
    /// The dependency-proxy service this endpoint challenges with, accepts as `aud`, and
    /// presents to the cache (the cache's `auth.token.service`).
    pub service: String,
}

/// What only the settings pages need.
pub struct WebState {
    /// One-shot messages between a POST and the page it redirects to.
    pub flashes: FlashStore,
}

/// Which realm a `service=` name belongs to; configuration keeps the two lists disjoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Registry,
    DependencyProxy,
}

impl RealmSettings {
    pub fn service_kind(&self, service: &str) -> Option<ServiceKind> {
        if self.services.iter().any(|s| s == service) {
            Some(ServiceKind::Registry)
        } else if self.proxy_services.iter().any(|s| s == service) {
            Some(ServiceKind::DependencyProxy)
        } else {
            None
        }
    }
}

impl AppState {
    /// Everything `serve` runs with, from its resolved settings, the opened store and the
    /// loaded keys. Starts the background `last_used_at` writer.
    pub fn build(
        config: &ServeConfig,
        opened: &Opened,
        pool: BlockingPool,
        keys: Arc<LiveKeys>,
        data_dir: &Path,
        keys_dir: &Path,
    ) -> Result<Self, MetricsError> {
        let services = [config.services.clone(), config.proxy_services.clone()].concat();
        let metrics = Arc::new(Metrics::new(&services)?);
        watch_lookups(&metrics, opened)?;
        watch_keys(&metrics, keys.clone())?;
        let pool = pool.observed(metrics.storage_timers());
        let reads = Reads::new(opened, pool);
        let usage = Arc::new(UsageRecorder::default());
        usage.spawn_flusher(
            opened.store.clone(),
            Duration::from_millis(config.usage_flush_ms),
        );
        let auth = Authenticator::new(
            reads.clone(),
            opened.store.clone(),
            Throttle::new(config.throttle),
            usage.clone(),
            config.trusted_proxies.clone(),
            metrics.auth(),
        );
        let proxy = config
            .proxy_registry
            .clone()
            .map(|cache_url| ProxyUpstream {
                cache_url,
                service: config.proxy_services[0].clone(),
            });
        let fs_blobs = FsBlobs::new(data_dir);
        fs_blobs.sweep_staging();
        let blobs: Arc<dyn BlobStore> = Arc::new(fs_blobs);
        Ok(Self {
            store: opened.store.clone(),
            memo: opened.memo.clone(),
            blobs: blobs.clone(),
            reads,
            auth,
            manage: Managers::new(opened.store.clone(), blobs, keys_dir),
            keys: Keys {
                issuer: TokenIssuer {
                    keys: keys.clone(),
                    issuer: config.issuer.clone(),
                    ttl_secs: config.token_ttl,
                },
                verifier: JwtVerifier::new(keys.clone()),
                live: keys,
            },
            realms: RealmSettings {
                services: config.services.clone(),
                proxy_services: config.proxy_services.clone(),
                proxy,
                public_url: config.public_url.clone(),
                data_dir: data_dir.to_path_buf(),
                max_package_size: config.max_package_size,
                git_processes: Arc::new(tokio::sync::Semaphore::new(config.max_git_processes)),
            },
            web: WebState {
                flashes: FlashStore::new(opened.store.clone(), keys_dir.to_path_buf()),
            },
            limits: Arc::new(RequestLimits::new(
                config.body_idle_timeout,
                config.max_requests_per_client,
                config.trusted_proxies.clone(),
                metrics.throttled_counter(Limit::RequestsInFlight),
            )),
            usage,
            metrics,
        })
    }

    /// Runs a handler's storage-bound part (sessions, the managers) on the blocking pool
    /// with the shared state, so a slow database never stalls an async worker.
    pub async fn on_pool<T, E, F>(self: Arc<Self>, work: F) -> Result<T, E>
    where
        F: FnOnce(&AppState) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<PoolError> + Send + 'static,
    {
        let pool = self.reads.pool().clone();
        pool.storage(move || work(&self)).await?
    }

    /// The issuer name registries expect (`auth.token.issuer`).
    pub fn issuer(&self) -> &str {
        &self.keys.issuer.issuer
    }
}

/// The lookup cache's counts, read at each scrape (the store keeps plain atomics).
fn watch_lookups(metrics: &Metrics, opened: &Opened) -> Result<(), MetricsError> {
    let stats = opened.lookups.clone();
    metrics.pull_counters(
        "wvs_auth_lookup_cache_requests_total",
        "Token and project lookups of the token path by how they were answered: hit \
         (memory), miss (database, then remembered if found), bypass (database: the \
         database version could not be told).",
        &["lookup", "result"],
        move || {
            stats
                .snapshot()
                .into_iter()
                .map(|(lookup, result, n)| (vec![lookup.to_string(), result.to_string()], n))
                .collect()
        },
    )
}

/// The keys this server signs with and publishes, as loaded now (they follow `keys
/// activate` within a second): every server behind one registry should show the same kid.
fn watch_keys(metrics: &Metrics, keys: Arc<LiveKeys>) -> Result<(), MetricsError> {
    let published = keys.clone();
    metrics.pull_gauges(
        "wvs_auth_signing_keys_published",
        "Keys published in the JWKS and the bundle (two during a rotation).",
        &[],
        move || vec![(Vec::new(), published.current().verifying.len() as f64)],
    )?;
    metrics.pull_gauges(
        "wvs_auth_signing_key_info",
        "Always 1; the key tokens are signed with now is its kid and alg label.",
        &["kid", "alg"],
        move || {
            let loaded = keys.current();
            let signer = &loaded.signer;
            vec![(
                vec![signer.kid().to_string(), signer.alg().name().to_string()],
                1.0,
            )]
        },
    )
}
