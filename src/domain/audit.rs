//! The audit log (SPEC §5, §7): every management change (groups, projects, users,
//! memberships, personal access tokens, deploy tokens), a deploy token's first use, and
//! failed authentications on every surface, with actor and time. Written by the managers
//! (in the transaction of the change), the background usage flusher and the authentication
//! step; read by `wvs-auth audit` and the API.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::deploy_token::DeployToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    GroupCreated,
    /// A group setting changed (the Dependency Proxy switch).
    GroupUpdated,
    ProjectCreated,
    UserCreated,
    UserBlocked,
    UserUnblocked,
    UserDeleted,
    MemberAdded,
    /// An existing member's role changed.
    MemberUpdated,
    MemberRemoved,
    PatCreated,
    PatRevoked,
    DeployTokenCreated,
    DeployTokenRevoked,
    DeployTokenFirstUsed,
    PackagePublished,
    PackageDeleted,
    /// A version's metadata changed in place (a crate yanked or unyanked).
    PackageUpdated,
    AuthFailure,
    /// Failed authentications past the audit budget of one window, as one row: how many,
    /// and the client with the most (a flood must not write a row per attempt).
    AuthFailuresSummarized,
    /// Events older than `--audit-retention-days` were deleted.
    AuditPruned,
}

impl AuditAction {
    pub const ALL: [AuditAction; 21] = [
        AuditAction::GroupCreated,
        AuditAction::GroupUpdated,
        AuditAction::ProjectCreated,
        AuditAction::UserCreated,
        AuditAction::UserBlocked,
        AuditAction::UserUnblocked,
        AuditAction::UserDeleted,
        AuditAction::MemberAdded,
        AuditAction::MemberUpdated,
        AuditAction::MemberRemoved,
        AuditAction::PatCreated,
        AuditAction::PatRevoked,
        AuditAction::DeployTokenCreated,
        AuditAction::DeployTokenRevoked,
        AuditAction::DeployTokenFirstUsed,
        AuditAction::PackagePublished,
        AuditAction::PackageDeleted,
        AuditAction::PackageUpdated,
        AuditAction::AuthFailure,
        AuditAction::AuthFailuresSummarized,
        AuditAction::AuditPruned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::GroupCreated => "group_created",
            AuditAction::GroupUpdated => "group_updated",
            AuditAction::ProjectCreated => "project_created",
            AuditAction::UserCreated => "user_created",
            AuditAction::UserBlocked => "user_blocked",
            AuditAction::UserUnblocked => "user_unblocked",
            AuditAction::UserDeleted => "user_deleted",
            AuditAction::MemberAdded => "member_added",
            AuditAction::MemberUpdated => "member_updated",
            AuditAction::MemberRemoved => "member_removed",
            AuditAction::PatCreated => "pat_created",
            AuditAction::PatRevoked => "pat_revoked",
            AuditAction::DeployTokenCreated => "deploy_token_created",
            AuditAction::DeployTokenRevoked => "deploy_token_revoked",
            AuditAction::DeployTokenFirstUsed => "deploy_token_first_used",
            AuditAction::PackagePublished => "package_published",
            AuditAction::PackageDeleted => "package_deleted",
            AuditAction::PackageUpdated => "package_updated",
            AuditAction::AuthFailure => "auth_failure",
            AuditAction::AuthFailuresSummarized => "auth_failures_summarized",
            AuditAction::AuditPruned => "audit_pruned",
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
    /// What the event is about: a project or group path, or a username.
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

impl NewAuditEvent {
    /// `action` by `actor` on `target`, with no token and no detail yet.
    pub fn by(actor: &AuditActor, action: AuditAction, target: impl Into<String>) -> Self {
        Self {
            action,
            actor: Some(actor.name.clone()),
            actor_user_id: actor.user_id,
            deploy_token_id: None,
            target: Some(target.into()),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn with_token(mut self, id: i64) -> Self {
        self.deploy_token_id = Some(id);
        self
    }

    /// A deploy token's first use, in its own name (its username, default or custom).
    pub fn first_use(token: &DeployToken) -> Self {
        Self {
            action: AuditAction::DeployTokenFirstUsed,
            actor: Some(token.username()),
            actor_user_id: None,
            deploy_token_id: Some(token.id),
            target: Some(token.owner.path().to_string()),
            detail: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::principal::Principal;

    #[test]
    fn actions_round_trip() {
        for a in AuditAction::ALL {
            assert_eq!(a.as_str().parse::<AuditAction>(), Ok(a));
        }
        assert!("nope".parse::<AuditAction>().is_err());
    }

    #[test]
    fn first_use_names_the_token_by_its_username() {
        let Principal::DeployToken(t) = crate::domain::fixtures::token(
            crate::domain::deploy_token::TokenOwner::Group {
                id: 1,
                path: crate::domain::fixtures::path("acme"),
            },
            &[],
        ) else {
            unreachable!("fixture builds tokens")
        };
        let e = NewAuditEvent::first_use(&t);
        assert_eq!(e.actor.as_deref(), Some("wvs+deploy-token-1"));
        assert_eq!(e.target.as_deref(), Some("acme"));
        assert_eq!(e.deploy_token_id, Some(1));
    }
}
