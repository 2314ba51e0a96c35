//! `/projects/:id/deploy_tokens[/:token_id]`, the same under `/groups/:id`, and the admins'
//! `/deploy_tokens`. Authorization, validation and audit are the manager's; these handlers
//! translate HTTP to its calls and its answers to GitLab's shapes.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;

use super::auth::authenticate;
use super::body::{self, normalise_expiry};
use super::entities::DeployTokenEntity;
use super::error::{manage_error, GitlabError};
use super::namespace::Target;
use super::on_pool;
use super::query::active_filter;
use crate::app::AppState;
use crate::domain::deploy_token::DeployToken;
use crate::manage::{Actor, CreateRequest};
use crate::request::ids::parse_token_id;

/// `GET …/deploy_tokens[?active=true|false]`
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = authenticate(&req, &state).await?;
    let active = active_filter(req.query_string())?;
    let target = Target::of(&req)?;
    let tokens = on_pool(&state, move |s| {
        let owner = target.owner(&s.manage.tokens)?;
        s.manage
            .tokens
            .list(Actor::User(&user), &owner)
            .map_err(manage_error)
    })
    .await?;
    Ok(HttpResponse::Ok().json(entities(&tokens, active)))
}

/// `GET …/deploy_tokens/:token_id`
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = authenticate(&req, &state).await?;
    let token_id = token_id(&req)?;
    let target = Target::of(&req)?;
    let token = on_pool(&state, move |s| {
        let owner = target.owner(&s.manage.tokens)?;
        s.manage
            .tokens
            .get(Actor::User(&user), &owner, token_id)
            .map_err(manage_error)
    })
    .await?;
    Ok(HttpResponse::Ok().json(DeployTokenEntity::of(&token, Utc::now())))
}

/// `POST …/deploy_tokens`: 201 with the secret in `token`, the only time it is shown.
pub async fn create(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = authenticate(&req, &state).await?;
    let raw = body::read(payload).await?;
    let fields = body::parse(req.headers(), &raw)?;
    let target = Target::of(&req)?;
    let request = CreateRequest {
        name: fields.name,
        scopes: fields.scopes,
        expires_at: fields
            .expires_at
            .as_deref()
            .map(normalise_expiry)
            // GitLab clients send `""` for "no expiry" (python-gitlab documents it).
            .filter(|d| !d.is_empty()),
        username: fields.username.filter(|u| !u.is_empty()),
    };
    let (token, secret) = on_pool(&state, move |s| {
        let owner = target.owner(&s.manage.tokens)?;
        s.manage
            .tokens
            .create(Actor::User(&user), &owner, request)
            .map_err(manage_error)
    })
    .await?;
    let mut entity = DeployTokenEntity::of(&token, Utc::now());
    entity.token = Some(secret.expose().to_string());
    Ok(HttpResponse::Created().json(entity))
}

/// `DELETE …/deploy_tokens/:token_id`: 204; the token is refused from the next request on.
pub async fn revoke(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = authenticate(&req, &state).await?;
    let token_id = token_id(&req)?;
    let target = Target::of(&req)?;
    on_pool(&state, move |s| {
        let owner = target.owner(&s.manage.tokens)?;
        s.manage
            .tokens
            .revoke(Actor::User(&user), &owner, token_id)
            .map_err(manage_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /deploy_tokens[?active=…]`: every token of the instance, for admins.
pub async fn list_all(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = authenticate(&req, &state).await?;
    let active = active_filter(req.query_string())?;
    let tokens = on_pool(&state, move |s| {
        s.manage
            .tokens
            .list_all(Actor::User(&user), active)
            .map_err(manage_error)
    })
    .await?;
    // The manager filtered already; filtering again costs nothing and keeps one rule.
    Ok(HttpResponse::Ok().json(entities(&tokens, active)))
}

fn token_id(req: &HttpRequest) -> Result<i64, GitlabError> {
    req.match_info()
        .get("token_id")
        .and_then(parse_token_id)
        .ok_or_else(|| GitlabError::BadRequest("token_id is invalid".into()))
}

/// Listed newest last, as stored; `active` keeps tokens neither revoked nor expired.
fn entities(tokens: &[DeployToken], active: Option<bool>) -> Vec<DeployTokenEntity> {
    let now = Utc::now();
    tokens
        .iter()
        .map(|t| DeployTokenEntity::of(t, now))
        .filter(|e| active.is_none_or(|want| e.is_active() == want))
        .collect()
}
