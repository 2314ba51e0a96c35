//! The storage interface the rules and the realms need. SQLite implements it today
//! (`crate::db`); a PostgreSQL backend implements the same traits.

use chrono::{DateTime, Utc};

use super::deploy_token::{DeployToken, HashedToken};
use super::namespace::Project;
use super::path::NamespacePath;
use super::personal_access_token::PersonalAccessToken;
use super::user::{Membership, User};

/// A storage failure. Backend-agnostic on purpose: callers answer 503 and log it.
#[derive(Debug, thiserror::Error)]
#[error("storage error: {0}")]
pub struct StoreError(pub String);

/// Read side of projects, as the realms need it.
pub trait ProjectDirectory: Send + Sync {
    /// The project owning a repository name: the project whose full path is the name's
    /// longest path-segment prefix (`acme/app/worker` → `acme/app`).
    fn owning_project(&self, repository: &str) -> Result<Option<Project>, StoreError>;

    /// The project at exactly `path` (git URLs name a project, not a repository below it).
    fn project_by_path(&self, path: &NamespacePath) -> Result<Option<Project>, StoreError>;
}

/// What authentication needs of deploy tokens.
pub trait DeployTokenLookup: Send + Sync {
    /// The token whose secret digests to `digest`, revoked or not.
    fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError>;

    /// The token with this id, revoked or not. LFS download links name their token by id
    /// and re-check it on use, so revocation stops downloads on the very next request.
    fn find_by_id(&self, id: i64) -> Result<Option<DeployToken>, StoreError>;

    /// Records `last_used_at` for a batch of tokens (called off the request path).
    fn record_last_used(&self, uses: &[(i64, DateTime<Utc>)]) -> Result<(), StoreError>;
}

/// Group settings the realms read on every request (so a change needs no restart).
pub trait GroupSettings: Send + Sync {
    /// Is the Dependency Proxy enabled for this group? A group that no longer exists is off.
    fn dependency_proxy_enabled(&self, group_id: i64) -> Result<bool, StoreError>;
}

/// What authentication needs of users: sign-in by password or personal access token, and
/// the memberships the rules decide on.
pub trait UserDirectory: Send + Sync {
    /// The user with this username (case-insensitive) and their password hash, if any.
    fn find_user_by_username(
        &self,
        username: &str,
    ) -> Result<Option<(User, Option<String>)>, StoreError>;

    fn find_user(&self, id: i64) -> Result<Option<User>, StoreError>;

    /// Every membership of the user, with the paths of their groups and projects.
    fn memberships_of(&self, user_id: i64) -> Result<Vec<Membership>, StoreError>;

    /// The personal access token with this id, revoked or not. LFS links name the PAT that
    /// asked and re-check it on use, so revocation stops them on the very next request.
    fn find_pat(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError>;

    /// The personal access token whose secret digests to `digest`, revoked or not.
    fn find_pat_by_digest(
        &self,
        digest: &HashedToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError>;
}
