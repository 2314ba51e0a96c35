//! A `users` row, and a `memberships` row joined with its group's or project's path.

use super::{opt_time, parse_time, Corrupt};
use crate::domain::path::NamespacePath;
use crate::domain::role::Role;
use crate::domain::store::{MemberOf, StoredUser};
use crate::domain::user::{Membership, MembershipTarget, User};

/// The columns both backends select, in [`RawUser`]'s order.
pub const COLUMNS: &str = "id, username, is_admin, created_at, password_hash, blocked_at";

pub struct RawUser {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    pub created_at: String,
    pub password_hash: Option<String>,
    pub blocked_at: Option<String>,
}

impl RawUser {
    pub fn build(self) -> Result<StoredUser, Corrupt> {
        Ok(StoredUser {
            user: User {
                id: self.id,
                username: self.username,
                is_admin: self.is_admin,
                created_at: parse_time(&self.created_at)?,
                blocked_at: opt_time(&self.blocked_at)?,
            },
            password_hash: self.password_hash,
        })
    }
}

/// A user's memberships with their targets' paths, in [`RawMembership`]'s order; each
/// backend adds `WHERE m.user_id = <its placeholder> ORDER BY m.id`.
pub const MEMBERSHIPS: &str = "SELECT m.group_id, g.path, m.project_id, p.path, m.role \
     FROM memberships m \
     LEFT JOIN groups g ON g.id = m.group_id \
     LEFT JOIN projects p ON p.id = m.project_id";

pub struct RawMembership {
    pub group: Option<(i64, String)>,
    pub project: Option<(i64, String)>,
    pub role: String,
}

impl RawMembership {
    /// The membership of `user_id`, the user whose memberships were selected.
    pub fn build(self, user_id: i64) -> Result<Membership, Corrupt> {
        let corrupt = |what: String| Corrupt(format!("membership of user {user_id}: {what}"));
        let parse = |p: &str| NamespacePath::parse(p).map_err(|e| corrupt(e.to_string()));
        let target = match (self.group, self.project) {
            (Some((id, p)), None) => MembershipTarget::Group {
                id,
                path: parse(&p)?,
            },
            (None, Some((id, p))) => MembershipTarget::Project {
                id,
                path: parse(&p)?,
            },
            _ => return Err(corrupt("target".into())),
        };
        Ok(Membership {
            user_id,
            target,
            role: parse_role(&self.role).map_err(|e| corrupt(e.0))?,
        })
    }
}

/// A stored `memberships.role`.
pub fn parse_role(role: &str) -> Result<Role, Corrupt> {
    role.parse()
        .map_err(|e: crate::domain::role::UnknownRole| Corrupt(e.to_string()))
}

/// The `memberships` column naming what a membership is of, and that id.
pub fn member_column(of: MemberOf) -> (&'static str, i64) {
    match of {
        MemberOf::Group(id) => ("group_id", id),
        MemberOf::Project(id) => ("project_id", id),
    }
}
