//! The GitLab-compatible management API under `/api/v4` (SPEC §6, issue 6): deploy tokens of
//! projects and groups, the admins' list of all tokens, a project's CI deploy variables and
//! the audit log, for callers with a personal access token of scope `api`.
//!
//! `api` is a reserved top-level name (`domain::path::RESERVED_TOP_LEVEL`), so no project's
//! git URLs live here. Answers are GitLab's shapes (`error.rs`); `docs/openapi.yaml`
//! describes every route and status and is served at `/api/v4/openapi.yaml`.

mod audit;
mod auth;
pub mod body;
mod ci;
mod deploy_tokens;
mod entities;
mod error;
mod namespace;
mod packages;
mod query;
mod users;

use actix_web::{web, HttpResponse};

use crate::app::AppState;
use error::GitlabError;
use namespace::Kind;

/// Runs a handler's storage-bound part on the blocking pool ([`AppState::on_pool`]).
async fn on_pool<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, GitlabError>
where
    F: FnOnce(&AppState) -> Result<T, GitlabError> + Send + 'static,
    T: Send + 'static,
{
    state.clone().into_inner().on_pool(work).await
}

/// The OpenAPI 3.0 document, compiled in so the served copy is always this build's.
const OPENAPI: &str = include_str!("../../docs/openapi.yaml");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v4")
            .service(
                web::resource("/deploy_tokens")
                    .route(web::get().to(deploy_tokens::list_all))
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/audit_events")
                    .route(web::get().to(audit::list))
                    .default_service(not_allowed("GET")),
            )
            .service(
                web::resource("/users/{user_id}/block")
                    .route(web::post().to(users::block))
                    .default_service(not_allowed("POST")),
            )
            .service(
                web::resource("/users/{user_id}/unblock")
                    .route(web::post().to(users::unblock))
                    .default_service(not_allowed("POST")),
            )
            .service(
                web::resource("/users/{user_id}")
                    .route(web::delete().to(users::delete))
                    .default_service(not_allowed("DELETE")),
            )
            .service(
                web::resource("/openapi.yaml")
                    .route(web::get().to(openapi))
                    .default_service(not_allowed("GET")),
            )
            .service(
                namespace_scope("/projects/{id}", Kind::Project)
                    .service(
                        web::resource("/ci/deploy_variables")
                            .route(web::get().to(ci::deploy_variables))
                            .default_service(not_allowed("GET")),
                    )
                    .service(
                        web::resource("/packages")
                            .route(web::get().to(packages::list))
                            .default_service(not_allowed("GET")),
                    )
                    .service(
                        web::resource("/packages/{package_id}")
                            .route(web::get().to(packages::show))
                            .route(web::delete().to(packages::delete))
                            .default_service(not_allowed("GET, DELETE")),
                    ),
            )
            .service(namespace_scope("/groups/{id}", Kind::Group))
            .default_service(web::to(route_not_found)),
    );
}

/// The deploy-token routes of one project or group; `kind` tells the handlers which.
fn namespace_scope(path: &str, kind: Kind) -> actix_web::Scope {
    web::scope(path)
        .app_data(kind)
        .service(
            web::resource("/deploy_tokens")
                .route(web::get().to(deploy_tokens::list))
                .route(web::post().to(deploy_tokens::create))
                .default_service(not_allowed("GET, POST")),
        )
        .service(
            web::resource("/deploy_tokens/{token_id}")
                .route(web::get().to(deploy_tokens::show))
                .route(web::delete().to(deploy_tokens::revoke))
                .default_service(not_allowed("GET, DELETE")),
        )
        .default_service(web::to(route_not_found))
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}

/// A route's answer to any other method: 405 naming the ones it takes.
fn not_allowed(allowed: &'static str) -> actix_web::Route {
    web::to(move || async move { Err::<HttpResponse, _>(GitlabError::MethodNotAllowed(allowed)) })
}

/// GitLab's answer for an API path it does not know.
async fn route_not_found() -> Result<HttpResponse, GitlabError> {
    Err(GitlabError::RouteNotFound)
}
