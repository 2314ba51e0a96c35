//! The HTTP surface: routes, shared state and request-size limits. Handlers translate
//! between HTTP and the domain; they decide nothing themselves.

pub mod basic;
pub mod client;
pub mod error;
mod git;
mod jwt_auth;
pub(crate) mod limits;
pub(crate) mod login;
pub mod throttle;

use std::sync::Arc;

use actix_web::{web, App, HttpResponse, HttpServer};

use crate::db::Db;
use crate::dependency_proxy::forward::{self, CacheClient, ProxySettings};
use crate::domain::store::{DeployTokenLookup, GroupSettings, ProjectDirectory, UserDirectory};
use crate::git::Repositories;
use crate::registry::TokenIssuer;
use crate::usage::UsageRecorder;
use error::ApiError;
use throttle::Throttle;

/// Everything a request handler may use, shared by all workers.
pub struct AppState {
    pub db: Db,
    pub directory: Arc<dyn ProjectDirectory>,
    pub tokens: Arc<dyn DeployTokenLookup>,
    /// Users, memberships and personal access tokens (sign-in).
    pub users: Arc<dyn UserDirectory>,
    /// Deploy-token management for the API and the settings pages.
    pub manager: Arc<crate::manage::DeployTokenManager>,
    pub groups: Arc<dyn GroupSettings>,
    pub issuer: TokenIssuer,
    /// Registry service names this server issues tokens for (`aud`).
    pub services: Vec<String>,
    /// Dependency Proxy service names (`aud` of pull-through cache tokens).
    pub proxy_services: Vec<String>,
    /// The GitLab-style `/v2/` endpoint, when `--proxy-registry` is set.
    pub proxy: Option<ProxySettings>,
    pub throttle: Throttle,
    /// Reverse proxies whose `X-Forwarded-For` names the real client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub usage: Arc<UsageRecorder>,
    /// The bare repositories the git realm serves.
    pub repos: Repositories,
    /// The settings pages' own state (one-shot messages, the public URL).
    pub web: crate::web::WebState,
}

/// Which realm a `service=` name belongs to; configuration keeps the two lists disjoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceKind {
    Registry,
    DependencyProxy,
}

impl AppState {
    /// The stores authentication reads.
    pub fn stores(&self) -> crate::domain::authn::Stores<'_> {
        crate::domain::authn::Stores {
            tokens: self.tokens.as_ref(),
            users: self.users.as_ref(),
        }
    }

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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/jwt/auth")
            .route(web::get().to(jwt_auth::get))
            .route(web::post().to(jwt_auth::post))
            .default_service(web::to(method_not_allowed)),
    )
    .route("/-/health", web::get().to(health))
    // The management API; `api` is a reserved top-level name, so no git URL lives there.
    .configure(crate::api::configure)
    .route("/-/jwks", web::get().to(jwks))
    // The settings pages under `/-/` (sign-in, deploy tokens per project and group).
    .configure(crate::web::configure)
    // `/v2` and everything below it: the Dependency Proxy's GitLab-style paths (404 when
    // no --proxy-registry is set, and for any other path).
    .route("/v2{tail:.*}", web::route().to(forward::v2))
    // Git URLs have any number of path segments before their endpoint, so they are
    // recognised by `git::dispatch` (which answers the usual JSON 404 for anything else)
    // rather than by route patterns.
    .default_service(web::to(git::dispatch));
}

async fn health(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.db.ping().map_err(|e| {
        log::error!("health check failed: {e}");
        ApiError::Unavailable
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })))
}

/// Served from the loaded key generation, which follows `keys rotate` within a second.
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.issuer.keys.current().jwks.clone())
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed)
}

/// Runs the server on an already bound listener until it is stopped.
pub async fn run(
    state: AppState,
    listener: std::net::TcpListener,
    workers: usize,
) -> std::io::Result<()> {
    let state = web::Data::new(state);
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
    .listen(listener)?
    .run()
    .await
}
