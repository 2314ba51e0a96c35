//! The domain: namespaces, deploy tokens, registry scopes and who may do what (registry
//! and Dependency Proxy).
//!
//! Nothing here knows about HTTP or SQL. Storage is reached through the small traits in
//! [`store`], so the SQLite backend (and a later PostgreSQL one) and every realm (registry,
//! git, packages) share the same rules.

pub mod access;
pub mod audit;
pub mod authn;
pub mod dependency_proxy;
pub mod deploy_token;
pub mod git_access;
pub mod management;
pub mod namespace;
pub mod package;
pub mod password;
pub mod path;
pub mod personal_access_token;
pub mod principal;
pub mod role;
pub mod scope;
pub mod secret;
pub mod store;
pub mod user;

/// Builders the rules' unit tests share.
#[cfg(test)]
pub(crate) mod fixtures {
    use chrono::Utc;

    use super::deploy_token::{DeployToken, TokenOwner, TokenScope};
    use super::namespace::{Project, Visibility};
    use super::path::NamespacePath;
    use super::principal::Principal;

    pub fn path(p: &str) -> NamespacePath {
        NamespacePath::parse(p).expect("valid path")
    }

    pub fn project(id: i64, p: &str, visibility: Visibility) -> Project {
        Project {
            id,
            path: path(p),
            group_id: None,
            visibility,
            created_at: Utc::now(),
        }
    }

    /// A signed-in user (id 1, `alice`) with these memberships, by password.
    pub fn user(memberships: &[(super::user::MembershipTarget, super::role::Role)]) -> Principal {
        use super::user::{Membership, User, UserCredential, UserPrincipal};
        Principal::User(Box::new(UserPrincipal {
            user: User {
                id: 1,
                username: "alice".into(),
                is_admin: false,
                created_at: Utc::now(),
                blocked_at: None,
            },
            memberships: memberships
                .iter()
                .map(|(target, role)| Membership {
                    user_id: 1,
                    target: target.clone(),
                    role: *role,
                })
                .collect(),
            credential: UserCredential::Password,
        }))
    }

    /// An active deploy token (id 1, default username) as a principal.
    pub fn token(owner: TokenOwner, scopes: &[TokenScope]) -> Principal {
        Principal::DeployToken(Box::new(DeployToken {
            id: 1,
            owner,
            name: "t".into(),
            custom_username: None,
            scopes: scopes.to_vec(),
            expires_at: None,
            created_at: Utc::now(),
            revoked_at: None,
            last_used_at: None,
            created_by: None,
        }))
    }
}
