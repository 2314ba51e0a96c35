//! `wvs-auth serve`.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::Context;
use crate::config::{ServeConfig, ServeFlags};
use crate::db::{CachedLookups, Db, WalWatch};
use crate::dependency_proxy::forward::ProxySettings;
use crate::dependency_proxy::verify::TokenVerifier;
use crate::error::Error;
use crate::http::throttle::Throttle;
use crate::http::AppState;
use crate::keys::rsa_kernel::{self, RsaKernel};
use crate::keys::{LiveKeys, SigningAlg};
use crate::registry::TokenIssuer;
use crate::usage::UsageRecorder;

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5050]
    #[arg(long, env = "WVS_AUTH_LISTEN")]
    listen: Option<String>,
    /// `iss` of issued tokens; the registry's `auth.token.issuer` [default: wvs-auth]
    #[arg(long, env = "WVS_AUTH_ISSUER")]
    issuer: Option<String>,
    /// Registry service name accepted as `service=` (repeatable) [default: container_registry]
    #[arg(long = "service", env = "WVS_AUTH_SERVICE", value_delimiter = ',')]
    services: Vec<String>,
    /// Dependency Proxy service name accepted as `service=` (repeatable); the first one is
    /// what the GitLab-style `/v2/` paths challenge with [default: dependency_proxy]
    #[arg(
        long = "proxy-service",
        env = "WVS_AUTH_PROXY_SERVICE",
        value_delimiter = ','
    )]
    proxy_services: Vec<String>,
    /// URL of the pull-through cache (Dependency Proxy); wvs-auth then answers
    /// GROUP/dependency_proxy/containers/IMAGE under /v2/ and forwards to it
    #[arg(long, env = "WVS_AUTH_PROXY_REGISTRY", value_name = "URL")]
    proxy_registry: Option<String>,
    /// URL clients reach wvs-auth at, for the realm of /v2/ challenges
    /// [default: from the request's Host and scheme]
    #[arg(long, env = "WVS_AUTH_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,
    /// Lifetime of issued tokens in seconds, 60..=86400 [default: 300]
    #[arg(long, env = "WVS_AUTH_TOKEN_TTL")]
    token_ttl: Option<i64>,
    /// HTTP worker threads [default: number of CPUs]
    #[arg(long, env = "WVS_AUTH_WORKERS")]
    workers: Option<usize>,
    /// Failed authentications from one IP or for one username before a ban [default: 30]
    #[arg(long, env = "WVS_AUTH_THROTTLE_FAILURES")]
    throttle_failures: Option<u32>,
    /// Window in which failures are counted, seconds [default: 60]
    #[arg(long, env = "WVS_AUTH_THROTTLE_WINDOW")]
    throttle_window: Option<u64>,
    /// Length of a ban, seconds [default: 600]
    #[arg(long, env = "WVS_AUTH_THROTTLE_BAN")]
    throttle_ban: Option<u64>,
    /// Reverse proxy (IP or CIDR, repeatable) whose X-Forwarded-For names the client
    #[arg(
        long = "trusted-proxy",
        env = "WVS_AUTH_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<String>,
    /// Algorithm of the signing key created on first start when there is none: RS256 or
    /// ES256. An existing active key of another algorithm is kept (with a warning); change
    /// it with `keys rotate --alg` and `keys activate` [default: RS256]
    #[arg(long, env = "WVS_AUTH_SIGNING_ALG", value_enum, ignore_case = true)]
    signing_alg: Option<SigningAlg>,
    /// Kernel aws-lc signs RSA with: auto (time both at start, use the faster), library
    /// (aws-lc's own choice) or avx2 [default: auto]
    #[arg(long, env = "WVS_AUTH_RSA_KERNEL", value_enum, ignore_case = true)]
    rsa_kernel: Option<RsaKernel>,
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<(), Error> {
    let flags = ServeFlags {
        listen: args.listen,
        issuer: args.issuer,
        services: args.services,
        proxy_services: args.proxy_services,
        proxy_registry: args.proxy_registry,
        public_url: args.public_url,
        token_ttl: args.token_ttl,
        workers: args.workers,
        throttle_failures: args.throttle_failures,
        throttle_window_secs: args.throttle_window,
        throttle_ban_secs: args.throttle_ban,
        trusted_proxies: args.trusted_proxies,
        signing_alg: args.signing_alg,
        rsa_kernel: args.rsa_kernel,
    };
    let config = ServeConfig::resolve(flags, &ctx.file)?;
    let keys = ctx.keys();
    // First of all: choosing the AVX2 kernel means executing this program again, which
    // would drop a bound socket, an open database and running threads.
    let kernel = match std::env::current_exe() {
        Ok(exe) => {
            let decision = rsa_kernel::decide(
                config.rsa_kernel,
                &keys,
                config.signing_alg,
                config.workers,
                &exe,
            );
            rsa_kernel::apply(decision, &exe)
        }
        Err(e) => rsa_kernel::Decision::ProbeFailed(format!("cannot find this program: {e}")),
    };
    log::info!("RSA signing kernel: {kernel}");
    // Bind next: a bad or busy address fails before anything is created on disk.
    let listener = std::net::TcpListener::bind(&config.listen)
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let db = Db::open_with_pool(&ctx.data_dir, config.workers as u32 + 2)?;
    // The configured algorithm only chooses the first key. Replacing an active key of
    // another algorithm here would sign tokens registries cannot verify yet (they trust the
    // bundle they loaded), so it is kept; rotation is how algorithms change.
    match keys.init(config.signing_alg)? {
        Some(created) => log::info!(
            "created {} signing key {} in {}",
            created.alg,
            created.kid,
            ctx.keys_dir.display()
        ),
        None => {
            if let Some(active) = keys.active()? {
                if active.alg != config.signing_alg.name() {
                    log::warn!(
                        "signing algorithm {} is configured but the active key {} is {}; keeping it \
                         (switch with `wvs-auth keys rotate --alg {}` then `wvs-auth keys activate KID`)",
                        config.signing_alg,
                        active.kid,
                        active.alg,
                        config.signing_alg
                    );
                }
            }
        }
    }
    let keys = Arc::new(LiveKeys::open(keys)?);
    log::info!(
        "signing with key {} as issuer {:?} for services {:?} and dependency proxy services {:?}; listening on {}",
        keys.current().signer.kid(),
        config.issuer,
        config.services,
        config.proxy_services,
        config.listen
    );

    let proxy = config.proxy_registry.clone().map(|cache_url| {
        let service = config.proxy_services[0].clone();
        log::info!(
            "dependency proxy: answering GROUP/dependency_proxy/containers/IMAGE under /v2/ \
             as service {service:?}, forwarding to {cache_url}"
        );
        ProxySettings {
            cache_url,
            public_url: config.public_url.clone(),
            verifier: TokenVerifier::new(keys.clone(), config.issuer.clone(), service.clone()),
            service,
        }
    });
    let store = Arc::new(db.clone());
    let lookups = Arc::new(CachedLookups::new(db.clone(), watch(&ctx.data_dir)));
    let usage = Arc::new(UsageRecorder::default());
    usage.spawn_flusher(store.clone(), Duration::from_secs(5));
    let state = AppState {
        manager: Arc::new(crate::manage::DeployTokenManager::new(
            db.clone(),
            &ctx.keys_dir,
        )),
        db,
        directory: lookups.clone(),
        tokens: lookups,
        users: store.clone(),
        groups: store.clone(),
        issuer: TokenIssuer {
            keys,
            issuer: config.issuer,
            ttl_secs: config.token_ttl,
        },
        services: config.services,
        proxy_services: config.proxy_services,
        proxy,
        throttle: Throttle::new(config.throttle),
        trusted_proxies: config.trusted_proxies.clone(),
        usage: usage.clone(),
        repos: crate::git::Repositories::new(&ctx.data_dir),
        web: crate::web::WebState::new(config.public_url.clone()),
    };
    let result =
        actix_web::rt::System::new().block_on(crate::http::run(state, listener, config.workers));
    usage.flush(store.as_ref());
    result.map_err(|e| Error::Config(format!("cannot serve on {}: {e}", config.listen)))
}

/// The version watch that lets token and project lookups be answered from memory; without
/// one every lookup reads the database, which is only slower.
fn watch(data_dir: &std::path::Path) -> Option<WalWatch> {
    match WalWatch::open(&Db::file(data_dir)) {
        Ok(watch) => {
            log::info!("token and project lookups are cached until the database changes");
            Some(watch)
        }
        Err(e) => {
            log::warn!("token and project lookups read the database every time: {e}");
            None
        }
    }
}
