//! Listing, creating and revoking deploy tokens on behalf of an actor (SPEC §1
//! "Management", issue 6), plus the CI variables and the audit log that hang off them.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::db::{Db, DbError, NewDeployToken, Revocation};
use crate::domain::audit::{AuditActor, AuditEvent};
use crate::domain::deploy_token::{
    parse_expiry, parse_scopes, validate_name, validate_username, DeployToken, PlainSecret,
    TokenOwner, CI_TOKEN_NAME,
};
use crate::domain::management::{may, may_see, TokenAction};
use crate::domain::namespace::{Group, Project, Visibility};
use crate::domain::path::NamespacePath;
use crate::domain::user::UserPrincipal;
use crate::keys::seal::Sealer;

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

    fn is_admin(&self) -> bool {
        match self {
            Actor::Cli => true,
            Actor::User(u) => u.user.is_admin,
        }
    }
}

/// One invalid field of a create request, named as the API names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// The actor can see the namespace but lacks the role.
    #[error("forbidden")]
    Forbidden,
    /// No such namespace or token, or one the actor may not see: the same answer.
    #[error("{0}")]
    NotFound(String),
    #[error("{}", .0.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("storage: {0}")]
    Store(String),
}

impl From<DbError> for ManageError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::NotFound(m) => ManageError::NotFound(m),
            other => ManageError::Store(other.to_string()),
        }
    }
}

/// A create request as received; every field is validated here.
#[derive(Debug, Clone, Default)]
pub struct CreateRequest {
    pub name: Option<String>,
    /// Each entry may itself be a comma-separated list.
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub username: Option<String>,
}

/// `CI_DEPLOY_USER` / `CI_DEPLOY_PASSWORD` of a project.
pub struct CiVariables {
    pub token_id: i64,
    pub user: String,
    pub password: SecretString,
}

pub struct DeployTokenManager {
    db: Db,
    keys_dir: PathBuf,
    /// Loaded (or made) on first need, so commands that never touch the CI token do not
    /// create a key file.
    sealer: OnceLock<Sealer>,
}

impl DeployTokenManager {
    pub fn new(db: Db, keys_dir: &Path) -> Self {
        Self {
            db,
            keys_dir: keys_dir.to_path_buf(),
            sealer: OnceLock::new(),
        }
    }

    fn sealer(&self) -> Result<&Sealer, ManageError> {
        if let Some(s) = self.sealer.get() {
            return Ok(s);
        }
        let loaded = Sealer::load_or_create(&self.keys_dir).map_err(|e| {
            log::error!("CI seal key: {e}");
            ManageError::Store(e.to_string())
        })?;
        Ok(self.sealer.get_or_init(|| loaded))
    }

    /// A project by numeric id or full path.
    pub fn resolve_project(&self, id_or_path: &str) -> Result<Project, ManageError> {
        let not_found = || ManageError::NotFound("404 Project Not Found".into());
        let found = match id_or_path.parse::<i64>() {
            Ok(id) => self.db.find_project_by_id(id)?,
            Err(_) => match NamespacePath::parse(id_or_path) {
                Ok(path) => self.db.find_project(&path)?,
                Err(_) => None,
            },
        };
        found.ok_or_else(not_found)
    }

    /// A group by numeric id or full path.
    pub fn resolve_group(&self, id_or_path: &str) -> Result<Group, ManageError> {
        let not_found = || ManageError::NotFound("404 Group Not Found".into());
        let found = match id_or_path.parse::<i64>() {
            Ok(id) => self.db.find_group_by_id(id)?,
            Err(_) => match NamespacePath::parse(id_or_path) {
                Ok(path) => self.db.find_group(&path)?,
                Err(_) => None,
            },
        };
        found.ok_or_else(not_found)
    }

    pub fn project_owner(project: &Project) -> TokenOwner {
        TokenOwner::Project {
            id: project.id,
            path: project.path.clone(),
        }
    }

    pub fn group_owner(group: &Group) -> TokenOwner {
        TokenOwner::Group {
            id: group.id,
            path: group.path.clone(),
        }
    }

    /// Authorizes `action` on `owner`'s tokens. Users who cannot see the namespace get the
    /// same 404 as for one that does not exist; members below the needed role get 403.
    fn authorize(
        &self,
        actor: Actor<'_>,
        owner: &TokenOwner,
        action: TokenAction,
    ) -> Result<(), ManageError> {
        let Actor::User(user) = actor else {
            return Ok(());
        };
        if may(user, owner, action) {
            return Ok(());
        }
        // Only a refusal needs the project row: a public or internal project is visible to
        // non-members (403), a private one is not (404).
        let open_project = match owner {
            TokenOwner::Project { id, .. } => self
                .db
                .find_project_by_id(*id)?
                .is_some_and(|p| p.visibility != Visibility::Private),
            TokenOwner::Group { .. } => false,
        };
        if may_see(user, owner) || open_project {
            Err(ManageError::Forbidden)
        } else {
            Err(ManageError::NotFound(match owner {
                TokenOwner::Project { .. } => "404 Project Not Found".into(),
                TokenOwner::Group { .. } => "404 Group Not Found".into(),
            }))
        }
    }

    pub fn list(
        &self,
        actor: Actor<'_>,
        owner: &TokenOwner,
    ) -> Result<Vec<DeployToken>, ManageError> {
        self.authorize(actor, owner, TokenAction::List)?;
        Ok(self.db.list_deploy_tokens(owner)?)
    }

    /// One token of `owner` (a token of another namespace is "not found").
    pub fn get(
        &self,
        actor: Actor<'_>,
        owner: &TokenOwner,
        token_id: i64,
    ) -> Result<DeployToken, ManageError> {
        self.authorize(actor, owner, TokenAction::List)?;
        self.token_of(owner, token_id)
    }

    fn token_of(&self, owner: &TokenOwner, token_id: i64) -> Result<DeployToken, ManageError> {
        self.db
            .find_deploy_token(token_id)?
            .filter(|t| &t.owner == owner)
            .ok_or_else(|| ManageError::NotFound("404 Deploy Token Not Found".into()))
    }

    /// Validates every field (reporting all invalid ones at once), creates the token,
    /// seals the CI token's secret, and audits. The secret is returned once.
    pub fn create(
        &self,
        actor: Actor<'_>,
        owner: &TokenOwner,
        req: CreateRequest,
    ) -> Result<(DeployToken, PlainSecret), ManageError> {
        self.authorize(actor, owner, TokenAction::Create)?;
        let mut errors = Vec::new();
        let mut invalid =
            |field: &'static str, message: String| errors.push(FieldError { field, message });
        let name = req.name.map(|n| n.trim().to_string()).unwrap_or_default();
        if name.is_empty() {
            invalid("name", "is missing".into());
        } else if let Err(e) = validate_name(&name) {
            invalid("name", e.to_string());
        }
        let scopes = if req.scopes.iter().all(|s| s.trim().is_empty()) {
            invalid("scopes", "is missing".into());
            Vec::new()
        } else {
            parse_scopes(req.scopes.iter().map(String::as_str)).unwrap_or_else(|e| {
                invalid("scopes", e.to_string());
                Vec::new()
            })
        };
        let expires_at = match req
            .expires_at
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => None,
            // The API also accepts an ISO 8601 datetime (GitLab's format); only its date
            // counts, since tokens expire at midnight UTC.
            Some(raw) => parse_expiry(raw.get(..10).unwrap_or(raw), Utc::now().date_naive())
                .map_err(|e| invalid("expires_at", e.to_string()))
                .ok(),
        };
        let username = req
            .username
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        if let Some(u) = &username {
            if let Err(e) = validate_username(u) {
                invalid("username", e.to_string());
            }
        }
        if !errors.is_empty() {
            return Err(ManageError::Invalid(errors));
        }
        let secret = PlainSecret::generate();
        let sealed_secret = match owner {
            TokenOwner::Project { .. } if name == CI_TOKEN_NAME => Some(
                self.sealer()?
                    .seal(secret.expose().as_bytes())
                    .map_err(|e| ManageError::Store(e.to_string()))?,
            ),
            _ => None,
        };
        let new = NewDeployToken {
            owner: owner.clone(),
            name,
            custom_username: username,
            scopes,
            expires_at,
            created_by: match actor {
                Actor::User(u) => Some(u.user.id),
                Actor::Cli => None,
            },
            sealed_secret,
        };
        let token = self
            .db
            .create_deploy_token(&new, &secret.hashed(), &actor.audit())?;
        Ok((token, secret))
    }

    /// Revokes a token of `owner`; it stops working on the next request. Revoking a
    /// revoked token is not an error (the answer is the same).
    pub fn revoke(
        &self,
        actor: Actor<'_>,
        owner: &TokenOwner,
        token_id: i64,
    ) -> Result<(DeployToken, Revocation), ManageError> {
        self.authorize(actor, owner, TokenAction::Revoke)?;
        self.token_of(owner, token_id)?;
        self.revoke_authorized(actor, token_id)
    }

    /// Revokes by id alone (the CLI's `token revoke ID`), authorized on the token's owner.
    pub fn revoke_by_id(
        &self,
        actor: Actor<'_>,
        token_id: i64,
    ) -> Result<(DeployToken, Revocation), ManageError> {
        let token = self.db.find_deploy_token(token_id)?.ok_or_else(|| {
            ManageError::NotFound(format!("deploy token {token_id} does not exist"))
        })?;
        self.authorize(actor, &token.owner, TokenAction::Revoke)?;
        self.revoke_authorized(actor, token_id)
    }

    fn revoke_authorized(
        &self,
        actor: Actor<'_>,
        token_id: i64,
    ) -> Result<(DeployToken, Revocation), ManageError> {
        let outcome = self.db.revoke_deploy_token(token_id, &actor.audit())?;
        let token = self
            .db
            .find_deploy_token(token_id)?
            .ok_or_else(|| ManageError::NotFound("404 Deploy Token Not Found".into()))?;
        Ok((token, outcome))
    }

    /// Every deploy token (admins only), optionally only active (`Some(true)`) or only
    /// inactive ones.
    pub fn list_all(
        &self,
        actor: Actor<'_>,
        active: Option<bool>,
    ) -> Result<Vec<DeployToken>, ManageError> {
        if !actor.is_admin() {
            return Err(ManageError::Forbidden);
        }
        let now = Utc::now();
        Ok(self
            .db
            .list_all_deploy_tokens()?
            .into_iter()
            .filter(|t| active.is_none_or(|want| t.is_active(now) == want))
            .collect())
    }

    /// The project's CI variables, from its newest active `wvs-deploy-token`; `None` when
    /// there is none (revoked or expired tokens expose nothing). Maintainers and above.
    pub fn ci_variables(
        &self,
        actor: Actor<'_>,
        project: &Project,
    ) -> Result<Option<CiVariables>, ManageError> {
        let owner = Self::project_owner(project);
        self.authorize(actor, &owner, TokenAction::List)?;
        let now = Utc::now();
        for (token, sealed) in self.db.ci_deploy_tokens(project.id)? {
            if !token.is_active(now) {
                continue;
            }
            let plain = self.sealer()?.open(&sealed).map_err(|e| {
                log::error!("CI token {} cannot be unsealed: {e}", token.id);
                ManageError::Store(e.to_string())
            })?;
            let password = String::from_utf8(plain)
                .map_err(|_| ManageError::Store("sealed CI secret is not UTF-8".into()))?;
            return Ok(Some(CiVariables {
                token_id: token.id,
                user: token.username(),
                password: SecretString::from(password),
            }));
        }
        Ok(None)
    }

    /// The audit log (admins and the CLI).
    pub fn audit(
        &self,
        actor: Actor<'_>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, ManageError> {
        if !actor.is_admin() {
            return Err(ManageError::Forbidden);
        }
        Ok(self.db.list_audit(since, limit)?)
    }
}
