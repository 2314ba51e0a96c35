//! `wvs-auth serve`.

use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use super::Context;
use crate::config::{ServeConfig, ServeFlags};
use crate::error::Error;
use crate::http::throttle::Throttle;
use crate::http::AppState;
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
}

pub fn run(ctx: &Context, args: ServeArgs) -> Result<(), Error> {
    let flags = ServeFlags {
        listen: args.listen,
        issuer: args.issuer,
        services: args.services,
        token_ttl: args.token_ttl,
        workers: args.workers,
        throttle_failures: args.throttle_failures,
        throttle_window_secs: args.throttle_window,
        throttle_ban_secs: args.throttle_ban,
    };
    let config = ServeConfig::resolve(flags, &ctx.file)?;
    // Bind first: a bad or busy address fails before anything is created on disk.
    let listener = std::net::TcpListener::bind(&config.listen)
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let db = ctx.db()?;
    let keys = ctx.keys();
    if let Some(created) = keys.init()? {
        log::info!(
            "created signing key {} in {}",
            created.kid,
            ctx.keys_dir.display()
        );
    }
    let signer = keys.signer()?;
    log::info!(
        "signing with key {} as issuer {:?} for services {:?}; listening on {}",
        signer.kid(),
        config.issuer,
        config.services,
        config.listen
    );

    let store = Arc::new(db.clone());
    let usage = Arc::new(UsageRecorder::default());
    usage.spawn_flusher(store.clone(), Duration::from_secs(5));
    let state = AppState {
        db,
        directory: store.clone(),
        tokens: store.clone(),
        issuer: TokenIssuer {
            signer,
            issuer: config.issuer,
            ttl_secs: config.token_ttl,
        },
        services: config.services,
        throttle: Throttle::new(config.throttle),
        usage: usage.clone(),
        keys_dir: ctx.keys_dir.clone(),
        repos: crate::git::Repositories::new(&ctx.data_dir),
    };
    let result =
        actix_web::rt::System::new().block_on(crate::http::run(state, listener, config.workers));
    usage.flush(store.as_ref());
    result.map_err(|e| Error::Config(format!("cannot serve on {}: {e}", config.listen)))
}
