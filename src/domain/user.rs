//! Users, their memberships, and a signed-in user as the rules see them.
//!
//! A user's role on a project is the highest of: a membership on the project itself and
//! memberships on any group above it (group membership is inherited, SPEC §1). Admins act
//! as owners everywhere. Every membership is loaded with the user at sign-in, so the rules
//! stay pure functions with no storage access.

use chrono::{DateTime, NaiveDate, Utc};

use super::namespace::Project;
use super::path::NamespacePath;
use super::personal_access_token::PatScope;
use super::role::Role;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("username {0:?} must match ^[A-Za-z0-9][A-Za-z0-9._-]{{0,254}}$")]
pub struct BadUsername(pub String);

/// Usernames travel in Basic headers and URLs; no `+`, so a user can never look like a
/// deploy token's default `wvs+deploy-token-N`.
pub fn validate_username(username: &str) -> Result<(), BadUsername> {
    let b = username.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(BadUsername(username.to_string()))
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
    /// Set when an admin blocked the account: it signs in nowhere until unblocked.
    pub blocked_at: Option<DateTime<Utc>>,
}

impl User {
    pub fn is_blocked(&self) -> bool {
        self.blocked_at.is_some()
    }
}

/// Where a membership applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipTarget {
    Group { id: i64, path: NamespacePath },
    Project { id: i64, path: NamespacePath },
}

impl MembershipTarget {
    pub fn path(&self) -> &NamespacePath {
        match self {
            MembershipTarget::Group { path, .. } | MembershipTarget::Project { path, .. } => path,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            MembershipTarget::Group { .. } => "group",
            MembershipTarget::Project { .. } => "project",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Membership {
    pub user_id: i64,
    pub target: MembershipTarget,
    pub role: Role,
}

/// How the user proved who they are: it limits what they may do (a PAT by its scopes).
#[derive(Debug, Clone)]
pub enum UserCredential {
    Password,
    Session,
    PersonalAccessToken {
        id: i64,
        scopes: Vec<PatScope>,
        expires_at: Option<NaiveDate>,
    },
}

/// A signed-in user with everything the rules need.
#[derive(Debug, Clone)]
pub struct UserPrincipal {
    pub user: User,
    pub memberships: Vec<Membership>,
    pub credential: UserCredential,
}

impl UserPrincipal {
    /// The user's role on `project`, inherited from groups above it; admins are owners.
    pub fn role_in_project(&self, project: &Project) -> Option<Role> {
        self.role_in_project_at(project.id, &project.path)
    }

    /// The same, for the project with this id and path.
    pub fn role_in_project_at(
        &self,
        project_id: i64,
        project_path: &NamespacePath,
    ) -> Option<Role> {
        if self.user.is_admin {
            return Some(Role::Owner);
        }
        self.memberships
            .iter()
            .filter(|m| match &m.target {
                MembershipTarget::Project { id, .. } => *id == project_id,
                MembershipTarget::Group { path, .. } => project_path.is_within(path),
            })
            .map(|m| m.role)
            .max()
    }

    /// The user's role on the group at `group`, inherited from groups above it.
    pub fn role_in_group(&self, group: &NamespacePath) -> Option<Role> {
        if self.user.is_admin {
            return Some(Role::Owner);
        }
        self.memberships
            .iter()
            .filter_map(|m| match &m.target {
                MembershipTarget::Group { path, .. } if group.is_within(path) => Some(m.role),
                _ => None,
            })
            .max()
    }

    /// Does the credential allow `scope`? Passwords and sessions allow everything the
    /// user's roles allow; a PAT only its scopes, `api` implying all of them (GitLab).
    pub fn allows(&self, scope: PatScope) -> bool {
        match &self.credential {
            UserCredential::Password | UserCredential::Session => true,
            UserCredential::PersonalAccessToken { scopes, .. } => {
                scopes.contains(&PatScope::Api) || scopes.contains(&scope)
            }
        }
    }

    /// The management API takes only PATs with the `api` scope (or a browser session).
    pub fn may_use_api(&self) -> bool {
        match &self.credential {
            UserCredential::Password => false,
            UserCredential::Session => true,
            UserCredential::PersonalAccessToken { scopes, .. } => scopes.contains(&PatScope::Api),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{path, project};
    use crate::domain::namespace::Visibility;

    pub fn member(target: MembershipTarget, role: Role) -> Membership {
        Membership {
            user_id: 1,
            target,
            role,
        }
    }

    fn user(memberships: Vec<Membership>, admin: bool) -> UserPrincipal {
        UserPrincipal {
            user: User {
                id: 1,
                username: "alice".into(),
                is_admin: admin,
                created_at: Utc::now(),
                blocked_at: None,
            },
            memberships,
            credential: UserCredential::Password,
        }
    }

    #[test]
    fn group_roles_are_inherited_and_the_highest_wins() {
        let u = user(
            vec![
                member(
                    MembershipTarget::Group {
                        id: 1,
                        path: path("acme"),
                    },
                    Role::Reporter,
                ),
                member(
                    MembershipTarget::Project {
                        id: 7,
                        path: path("acme/platform/api"),
                    },
                    Role::Maintainer,
                ),
            ],
            false,
        );
        let api = project(7, "acme/platform/api", Visibility::Private);
        let web = project(8, "acme/platform/web", Visibility::Private);
        let other = project(9, "acmecorp/web", Visibility::Private);
        assert_eq!(u.role_in_project(&api), Some(Role::Maintainer));
        assert_eq!(u.role_in_project(&web), Some(Role::Reporter));
        assert_eq!(u.role_in_project(&other), None);
        assert_eq!(
            u.role_in_group(&path("acme/platform")),
            Some(Role::Reporter)
        );
        assert_eq!(u.role_in_group(&path("acmecorp")), None);
        let admin = user(vec![], true);
        assert_eq!(admin.role_in_project(&other), Some(Role::Owner));
    }

    #[test]
    fn pat_scopes_limit_and_api_implies_all() {
        let mut u = user(vec![], false);
        assert!(u.allows(PatScope::WriteRegistry) && !u.may_use_api());
        u.credential = UserCredential::PersonalAccessToken {
            id: 1,
            scopes: vec![PatScope::ReadRegistry],
            expires_at: None,
        };
        assert!(u.allows(PatScope::ReadRegistry) && !u.allows(PatScope::WriteRegistry));
        assert!(!u.may_use_api());
        u.credential = UserCredential::PersonalAccessToken {
            id: 1,
            scopes: vec![PatScope::Api],
            expires_at: None,
        };
        assert!(u.allows(PatScope::WriteRepository) && u.may_use_api());
    }

    #[test]
    fn usernames() {
        assert!(validate_username("alice.b_c-1").is_ok());
        for bad in ["", "-a", "a+b", "a b", "a/b", "wvs+deploy-token-1"] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
