//! Management: every change to groups, projects, users, memberships, personal access tokens
//! and deploy tokens, on behalf of an actor. The CLI, the REST API and the settings pages
//! translate their input into these calls and the errors into their own answers;
//! authorization (`domain::management`), validation, sealing and the audit event (written
//! by the store in the transaction of the change) happen here, once.

pub mod audit;
pub mod deploy_tokens;
pub mod namespaces;
pub mod packages;
pub mod users;

use std::path::Path;
use std::sync::Arc;

use crate::domain::audit::AuditActor;
use crate::domain::store::{Store, StoreError};
use crate::domain::user::UserPrincipal;
use crate::store::blobs::BlobStore;

pub use audit::AuditManager;
pub use deploy_tokens::{CiVariables, CreateRequest, DeployTokenManager};
pub use namespaces::NamespaceManager;
pub use packages::PackageManager;
pub use users::{NewPatRequest, UserManager};

/// Who is asking: the operator at the command line (may do anything) or a signed-in user.
#[derive(Clone, Copy)]
pub enum Actor<'a> {
    Cli,
    User(&'a UserPrincipal),
}

impl Actor<'_> {
    fn audit(&self) -> AuditActor {
        match self {
            Actor::Cli => AuditActor::cli(),
            Actor::User(u) => AuditActor {
                name: u.user.username.clone(),
                user_id: Some(u.user.id),
            },
        }
    }

    fn user_id(&self) -> Option<i64> {
        match self {
            Actor::Cli => None,
            Actor::User(u) => Some(u.user.id),
        }
    }

    /// `Ok` for the CLI; for a user, `rule(user)` must hold, else 403.
    fn require(&self, rule: impl FnOnce(&UserPrincipal) -> bool) -> Result<(), ManageError> {
        match self {
            Actor::Cli => Ok(()),
            Actor::User(u) if rule(u) => Ok(()),
            Actor::User(_) => Err(ManageError::Forbidden),
        }
    }
}

/// What a request named that is not there (or that the actor may not see: the same answer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Missing {
    #[error("project {0} does not exist")]
    Project(String),
    #[error("group {0} does not exist")]
    Group(String),
    #[error("parent group {0} does not exist")]
    ParentGroup(String),
    #[error("deploy token {0} does not exist")]
    DeployToken(i64),
    #[error("user {0} does not exist")]
    User(String),
    #[error("{user} is not a member of {of}")]
    Membership { user: String, of: String },
    #[error("personal access token {0} does not exist or is already revoked")]
    Pat(i64),
    #[error("package {0} does not exist")]
    Package(i64),
}

/// One invalid field of a request, named as the API names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Why a management call did not happen, by kind: each surface words it its own way.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The actor can see the namespace but lacks the role.
    #[error("forbidden")]
    Forbidden,
    #[error(transparent)]
    NotFound(#[from] Missing),
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The name is taken (a path, a username).
    #[error("{0}")]
    Conflict(String),
    /// Storage failed or holds something unreadable; logged where it happened.
    #[error(transparent)]
    Store(StoreError),
}

impl ManageError {
    fn invalid(field: &'static str, message: impl ToString) -> Self {
        ManageError::Invalid(vec![FieldError {
            field,
            message: message.to_string(),
        }])
    }
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ManageError::Conflict(m),
            other => ManageError::Store(other),
        }
    }
}

/// Every manager, over one store: what the app state and the CLI hold.
pub struct Managers {
    pub namespaces: NamespaceManager,
    pub tokens: DeployTokenManager,
    pub users: UserManager,
    pub packages: PackageManager,
    pub audit: AuditManager,
}

impl Managers {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>, keys_dir: &Path) -> Self {
        Self {
            namespaces: NamespaceManager::new(store.clone()),
            tokens: DeployTokenManager::new(store.clone(), keys_dir),
            users: UserManager::new(store.clone()),
            packages: PackageManager::new(store.clone(), blobs),
            audit: AuditManager::new(store),
        }
    }
}
