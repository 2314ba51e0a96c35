//! Offboarding for administrators, as GitLab has it: `POST /users/:id/block`,
//! `POST /users/:id/unblock` (201 `true`) and `DELETE /users/:id` (204). A blocked or
//! deleted user's password, PATs and sessions stop on the next request on every surface;
//! the deploy tokens they created keep working.

use actix_web::{web, HttpRequest, HttpResponse};

use super::auth::authenticate;
use super::error::{manage_error, GitlabError};
use super::on_pool;
use crate::app::AppState;
use crate::manage::Actor;
use crate::request::ids::parse_token_id;

fn user_id(req: &HttpRequest) -> Result<i64, GitlabError> {
    req.match_info()
        .get("user_id")
        .and_then(parse_token_id)
        .ok_or_else(|| GitlabError::NotFound("User Not Found".into()))
}

/// The user `:id` names, for an administrator only.
fn target(
    s: &AppState,
    admin: &crate::domain::user::UserPrincipal,
    id: i64,
) -> Result<crate::domain::user::User, GitlabError> {
    if !admin.user.is_admin {
        return Err(GitlabError::Forbidden);
    }
    s.manage
        .users
        .by_id(id)
        .map_err(|_| GitlabError::NotFound("User Not Found".into()))
}

async fn set_blocked(
    req: HttpRequest,
    state: web::Data<AppState>,
    blocked: bool,
) -> Result<HttpResponse, GitlabError> {
    let admin = authenticate(&req, &state).await?;
    let id = user_id(&req)?;
    on_pool(&state, move |s| {
        let user = target(s, &admin, id)?;
        s.manage
            .users
            .set_blocked(Actor::User(&admin), &user, blocked)
            .map_err(manage_error)
    })
    .await?;
    Ok(HttpResponse::Created().json(true))
}

/// `POST /users/:id/block`
pub async fn block(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    set_blocked(req, state, true).await
}

/// `POST /users/:id/unblock`
pub async fn unblock(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    set_blocked(req, state, false).await
}

/// `DELETE /users/:id`
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let admin = authenticate(&req, &state).await?;
    let id = user_id(&req)?;
    on_pool(&state, move |s| {
        let user = target(s, &admin, id)?;
        s.manage
            .users
            .delete(Actor::User(&admin), &user)
            .map_err(manage_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
