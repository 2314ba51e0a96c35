//! `GET /audit_events[?created_after=RFC3339]`: the audit log for administrators — who
//! created or revoked a deploy token, when one was first used, failed authentications.
//! The same events as `wvs-auth audit [--since]`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::auth::authenticate;
use super::error::{manage_error, GitlabError};
use super::on_pool;
use super::query::created_after;
use crate::app::AppState;
use crate::domain::audit::AuditEvent;
use crate::manage::Actor;

/// One event; field names follow the table, `created_at` as GitLab names the instant.
#[derive(Debug, Serialize)]
struct AuditEventEntity {
    id: i64,
    created_at: String,
    action: String,
    actor: Option<String>,
    actor_user_id: Option<i64>,
    deploy_token_id: Option<i64>,
    target: Option<String>,
    detail: Option<String>,
}

impl From<AuditEvent> for AuditEventEntity {
    fn from(e: AuditEvent) -> Self {
        Self {
            id: e.id,
            created_at: e.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            action: e.action,
            actor: e.actor,
            actor_user_id: e.actor_user_id,
            deploy_token_id: e.deploy_token_id,
            target: e.target,
            detail: e.detail,
        }
    }
}

/// At most this many events per answer, the oldest first; `created_after` pages on.
const MAX_EVENTS: u32 = 1000;

pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = authenticate(&req, &state).await?;
    let since = created_after(req.query_string())?;
    let events = on_pool(&state, move |s| {
        s.manage
            .audit
            .list(Actor::User(&user), since, MAX_EVENTS)
            .map_err(manage_error)
    })
    .await?;
    let body: Vec<AuditEventEntity> = events.into_iter().map(AuditEventEntity::from).collect();
    Ok(HttpResponse::Ok().json(body))
}
