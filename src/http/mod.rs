//! The HTTP server: the router that puts every surface under one listener, and the few
//! routes that belong to no surface (`/-/health`, `/-/jwks`). Each surface owns its
//! routes; this module only decides their order.

use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

use crate::app::AppState;
use crate::realms::dependency_proxy::CacheClient;
use crate::request::error::ApiError;
use crate::request::limits;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(crate::realms::registry::configure)
        .route("/-/health", web::get().to(health))
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

/// Served from the loaded key generation, which follows `keys rotate` within a second.
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.keys.live.current().jwks.clone())
}

/// Runs the server on an already bound listener until it is stopped.
pub async fn run(
    state: Arc<AppState>,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<()> {
    let state = web::Data::from(state);
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::Data::new(CacheClient::new()))
            .wrap(actix_web::middleware::from_fn(limits::limit_headers))
            .configure(configure)
    })
    .workers(workers)
    .backlog(4096)
    // Streamed answers (git packs) end with a small write (the last chunk); with Nagle on,
    // it waits for the ACK the client delays by 40 ms, once per git round trip. Every
    // answer here is a complete message, so nothing is gained by coalescing.
    .tcp_nodelay(true)
    // SIGTERM (and SIGINT) stop accepting at once and give requests in flight — a clone, an
    // LFS or package download streaming — this long to finish before the workers stop.
    .shutdown_timeout(30)
    .listen(listener)?
    .run()
    .await
}
