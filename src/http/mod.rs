//! The HTTP server: the router that puts every surface under one listener, and the few
//! routes that belong to no surface (`/-/health`, `/-/metrics`, `/-/jwks`). Each surface
//! owns its routes; this module only decides their order.

use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer, ResponseError};

use crate::app::AppState;
use crate::realms::dependency_proxy::CacheClient;
use crate::request::error::ApiError;
use crate::request::limits;

pub mod tls;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(crate::realms::registry::configure)
        .route("/-/health", web::get().to(health))
        .route("/-/metrics", web::get().to(metrics))
        // Package formats under `/api/v4/…/packages/`, before the management API's scope
        // would claim them.
        .configure(crate::realms::packages::configure)
        // The management API; `api` is a reserved top-level name, so no git URL lives there.
        .configure(crate::api::configure)
        .route("/-/jwks", web::get().to(jwks))
        // The settings pages under `/-/` (sign-in, deploy tokens per project and group).
        .configure(crate::web::configure)
        .configure(crate::realms::dependency_proxy::configure)
        // Last: the git realm answers every path no route above claims.
        .configure(crate::realms::git::configure);
}

async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let store = state.store.clone();
    let answered = state
        .reads
        .pool()
        .storage(move || store.ping())
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    answered.map_err(|e| {
        log::error!("health check failed: {e}");
        ApiError::Unavailable
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })))
}

/// Unauthenticated like `/-/health`: counts only, no names (README, "Metrics").
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.metrics.render() {
        Ok(text) => HttpResponse::Ok()
            .content_type(crate::metrics::CONTENT_TYPE)
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .body(text),
        Err(e) => {
            log::error!("cannot render the metrics: {e}");
            ApiError::Unavailable.error_response()
        }
    }
}

/// Served from the loaded key generation, which follows `keys rotate` within a second.
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.keys.live.current().jwks.clone())
}

/// Runs the server on an already bound listener until it is stopped: HTTPS with the
/// certificate `tls` follows, plain HTTP without.
pub async fn run(
    state: Arc<AppState>,
    listener: std::net::TcpListener,
    workers: usize,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<()> {
    let limits = web::Data::from(state.limits.clone());
    let metrics = web::Data::from(state.metrics.clone());
    let state = web::Data::from(state);
    let max_connections = connections_per_worker(open_file_limit(), workers);
    log::debug!("at most {max_connections} connections per worker");
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(limits.clone())
            .app_data(metrics.clone())
            .app_data(web::Data::new(CacheClient::new()))
            // Innermost: the storage reads of one request wait for a fresh database
            // revision once (PostgreSQL; `store::Reads`).
            .wrap_fn(|req, service| {
                crate::store::within_request(actix_web::dev::Service::call(service, req))
            })
            .wrap(actix_web::middleware::from_fn(limits::bound_requests))
            // Outermost (wrapped last): the limits' own answers are counted too.
            .wrap(actix_web::middleware::from_fn(
                crate::metrics::http::observe,
            ))
            .configure(configure)
    })
    .workers(workers)
    .max_connections(max_connections)
    .backlog(4096)
    // Streamed answers (git packs) end with a small write (the last chunk); with Nagle on,
    // it waits for the ACK the client delays by 40 ms, once per git round trip. Every
    // answer here is a complete message, so nothing is gained by coalescing.
    .tcp_nodelay(true)
    // SIGTERM (and SIGINT) stop accepting at once and give requests in flight — a clone, an
    // LFS or package download streaming — this long to finish before the workers stop.
    .shutdown_timeout(30);
    let server = match tls {
        Some(config) => server.listen_rustls_0_23(listener, config)?,
        None => server.listen(listener)?,
    };
    server.run().await
}

/// Raises the soft limit on open files to the hard one (a process may always do so) and
/// returns it. Without a bound below it, a flood of connections takes every descriptor and
/// the server can no longer open a database connection, a file or a pipe to git — nor
/// accept the next client once the flood is dropped.
fn open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// Connections each worker accepts: a quarter of the descriptors (at least 64, at most 1024)
/// stay for files, pipes and the database; actix's own default (25,000) is the ceiling.
fn connections_per_worker(open_files: u64, workers: usize) -> usize {
    let reserve = (open_files / 4).clamp(64, 1024);
    let for_connections = open_files.saturating_sub(reserve);
    let per_worker = for_connections / workers.max(1) as u64;
    (per_worker as usize).clamp(16, 25_000)
}

#[cfg(test)]
mod tests {
    use super::connections_per_worker;

    #[test]
    fn connections_leave_descriptors_for_everything_else() {
        assert_eq!(connections_per_worker(1024, 2), 384);
        assert_eq!(connections_per_worker(20_000, 2), 9_488);
        assert_eq!(connections_per_worker(1 << 20, 2), 25_000);
        assert_eq!(connections_per_worker(100, 8), 16);
    }
}
