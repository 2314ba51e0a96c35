//! The audit log (SPEC §7): who created, revoked or first used a token, and failed
//! authentications, with actor and time. Written by the management service and the
//! background usage flusher; read by `wvs-auth audit` and the API.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    DeployTokenCreated,
    DeployTokenRevoked,
    DeployTokenFirstUsed,
    AuthFailure,
}

impl AuditAction {
    pub const ALL: [AuditAction; 4] = [
        AuditAction::DeployTokenCreated,
        AuditAction::DeployTokenRevoked,
        AuditAction::DeployTokenFirstUsed,
        AuditAction::AuthFailure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::DeployTokenCreated => "deploy_token_created",
            AuditAction::DeployTokenRevoked => "deploy_token_revoked",
            AuditAction::DeployTokenFirstUsed => "deploy_token_first_used",
            AuditAction::AuthFailure => "auth_failure",
        }
    }
}

impl FromStr for AuditAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditAction::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown audit action {s:?}"))
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The actor of a CLI command: the operator at the machine, not a user account.
pub const CLI_ACTOR: &str = "cli";

/// One line of the audit log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub action: String,
    /// Username at the time (`cli` for the command line); `None` when nobody is known.
    pub actor: Option<String>,
    pub actor_user_id: Option<i64>,
    pub deploy_token_id: Option<i64>,
    /// Project or group path of the token.
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// Who did it, as recorded: a user (id and name at the time) or the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditActor {
    pub name: String,
    pub user_id: Option<i64>,
}

impl AuditActor {
    pub fn cli() -> Self {
        Self {
            name: CLI_ACTOR.to_string(),
            user_id: None,
        }
    }
}

/// An event about to be written.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub action: AuditAction,
    pub actor: Option<String>,
    pub actor_user_id: Option<i64>,
    pub deploy_token_id: Option<i64>,
    pub target: Option<String>,
    pub detail: Option<String>,
}
