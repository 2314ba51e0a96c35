//! The domain: namespaces, deploy tokens, registry scopes and who may do what (registry
//! and Dependency Proxy).
//!
//! Nothing here knows about HTTP or SQL. Storage is reached through the small traits in
//! [`store`], so the SQLite backend (and a later PostgreSQL one) and every realm (registry,
//! git, packages) share the same rules.

pub mod access;
pub mod authn;
pub mod dependency_proxy;
pub mod deploy_token;
pub mod git_access;
pub mod namespace;
pub mod path;
pub mod principal;
pub mod scope;
pub mod store;

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
