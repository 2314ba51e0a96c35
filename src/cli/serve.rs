//! `wvs-auth serve`.

use std::sync::Arc;

use super::{Context, Error};
use crate::app::AppState;
use crate::blocking::BlockingPool;
use crate::config::{ServeConfig, ServeSettings};
use crate::http::tls::CertificateFiles;
use crate::keys::rsa_kernel;
use crate::keys::{LiveKeys, TokenHeader};

pub fn run(ctx: &Context, flags: ServeSettings) -> Result<(), Error> {
    let config = ServeConfig::resolve(ctx.file.overlay(&flags)?)?;
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
    // The certificate next, for the same reason: a bad pair fails here, one line.
    let tls = match &config.tls {
        Some(files) => {
            let certs = Arc::new(
                CertificateFiles::open(files.clone()).map_err(|e| Error::Config(e.to_string()))?,
            );
            Some(
                certs
                    .server_config()
                    .map_err(|e| Error::Config(e.to_string()))?,
            )
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Storage calls run on the blocking pool: as many at once as there are connections,
    // one left for the background usage writer.
    let connections = ctx
        .database_pool
        .unwrap_or(2 * config.workers as u32 + 3)
        .max(2);
    let storage_slots = connections as usize - 1;
    let opened = crate::store::open(&ctx.database, connections)?;
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
    let keys = Arc::new(LiveKeys::open(keys, config.token_header)?);
    log::info!(
        "signing with key {} (token header: kid{}) as issuer {:?} for services {:?} and dependency proxy services {:?}; listening on {scheme}://{}",
        keys.current().signer.kid(),
        match config.token_header {
            TokenHeader::X5c => ", x5c",
            TokenHeader::Kid => " only",
        },
        config.issuer,
        config.services,
        config.proxy_services,
        config.listen
    );

    if let Some(cache_url) = &config.proxy_registry {
        log::info!(
            "dependency proxy: answering GROUP/dependency_proxy/containers/IMAGE under /v2/ \
             as service {:?}, forwarding to {cache_url}",
            config.proxy_services[0]
        );
    }
    let pool = BlockingPool::new(storage_slots, config.workers);
    let state = Arc::new(AppState::build(
        &config,
        &opened,
        pool,
        keys,
        &ctx.data_dir,
        &ctx.keys_dir,
    )?);
    crate::app::housekeeping::spawn(state.clone(), config.audit_retention);
    let result = actix_web::rt::System::new().block_on(crate::http::run(
        state.clone(),
        listener,
        config.workers,
        tls,
    ));
    state.usage.flush(state.store.as_ref());
    result.map_err(|e| Error::Config(format!("cannot serve on {}: {e}", config.listen)))
}
