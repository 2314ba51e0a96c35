//! `GET /projects/:id/ci/deploy_variables`: the project token named `wvs-deploy-token` as
//! `CI_DEPLOY_USER` / `CI_DEPLOY_PASSWORD`, in the shape of GitLab's project variables.
//! An empty list when there is no such token, or it is revoked or expired (the manager
//! answers `None` then, so a stale password is never handed out).

use actix_web::{web, HttpRequest, HttpResponse};
use secrecy::ExposeSecret;

use super::auth::authenticate;
use super::entities::CiVariable;
use super::error::{manage_error, GitlabError};
use super::namespace::Target;
use super::on_pool;
use crate::app::AppState;
use crate::manage::Actor;

pub async fn deploy_variables(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = authenticate(&req, &state).await?;
    let target = Target::project_of(&req)?;
    let variables = on_pool(&state, move |s| {
        let project = target.project(&s.manage.tokens)?;
        s.manage
            .tokens
            .ci_variables(Actor::User(&user), &project)
            .map_err(manage_error)
    })
    .await?;
    let body: Vec<CiVariable> = match variables {
        Some(ci) => vec![
            CiVariable::env("CI_DEPLOY_USER", ci.user, false),
            CiVariable::env(
                "CI_DEPLOY_PASSWORD",
                ci.password.expose_secret().to_string(),
                true,
            ),
        ],
        None => Vec::new(),
    };
    Ok(HttpResponse::Ok()
        // A password is in the body: no cache may keep it.
        .insert_header(("Cache-Control", "no-store"))
        .json(body))
}
