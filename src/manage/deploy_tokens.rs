//! Listing, creating and revoking deploy tokens on behalf of an actor (SPEC §1
//! "Management"), plus the CI variables that hang off them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chrono::Utc;
use secrecy::SecretString;

use super::{Actor, FieldError, ManageError, Missing};
use crate::domain::audit::{AuditAction, NewAuditEvent};
use crate::domain::deploy_token::{
    generate_secret, parse_expiry, parse_scopes, validate_name, validate_username, DeployToken,
    TokenError, TokenOwner, CI_TOKEN_NAME,
};
use crate::domain::management::{may, may_see, TokenAction};
use crate::domain::namespace::{Group, Project, Visibility};
use crate::domain::path::NamespacePath;
use crate::domain::secret::PlainSecret;
use crate::domain::store::{NewDeployToken, Revocation, Store};
use crate::keys::seal::Sealer;

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
    store: Arc<dyn Store>,
    keys_dir: PathBuf,
    /// Loaded (or made) on first need, so commands that never touch the CI token do not
    /// create a key file.
    sealer: OnceLock<Sealer>,
}

impl DeployTokenManager {
    pub fn new(store: Arc<dyn Store>, keys_dir: &Path) -> Self {
        Self {
            store,
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
            ManageError::Store(crate::domain::store::StoreError::Unavailable(e.to_string()))
        })?;
        Ok(self.sealer.get_or_init(|| loaded))
    }

    /// A project by numeric id or full path.
    pub fn resolve_project(&self, id_or_path: &str) -> Result<Project, ManageError> {
        let found = match id_or_path.parse::<i64>() {
            Ok(id) => self.store.project_by_id(id)?,
            Err(_) => match NamespacePath::parse(id_or_path) {
                Ok(path) => self.store.project_by_path(&path)?,
                Err(_) => None,
            },
        };
        found.ok_or_else(|| Missing::Project(id_or_path.to_string()).into())
    }

    /// A group by numeric id or full path.
    pub fn resolve_group(&self, id_or_path: &str) -> Result<Group, ManageError> {
        let found = match id_or_path.parse::<i64>() {
            Ok(id) => self.store.group_by_id(id)?,
            Err(_) => match NamespacePath::parse(id_or_path) {
                Ok(path) => self.store.group_by_path(&path)?,
                Err(_) => None,
            },
        };
        found.ok_or_else(|| Missing::Group(id_or_path.to_string()).into())
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
                .store
                .project_by_id(*id)?
                .is_some_and(|p| p.visibility != Visibility::Private),
            TokenOwner::Group { .. } => false,
        };
        if may_see(user, owner) || open_project {
            Err(ManageError::Forbidden)
        } else {
            Err(match owner {
                TokenOwner::Project { path, .. } => Missing::Project(path.to_string()),
                TokenOwner::Group { path, .. } => Missing::Group(path.to_string()),
            }
            .into())
        }
    }

    /// The projects and groups whose deploy tokens the actor may list (the settings
    /// pages' index), by path.
    pub fn listable_owners(
        &self,
        actor: Actor<'_>,
    ) -> Result<(Vec<TokenOwner>, Vec<TokenOwner>), ManageError> {
        let visible = |owner: &TokenOwner| match actor {
            Actor::Cli => true,
            Actor::User(user) => may(user, owner, TokenAction::List),
        };
        let projects = self
            .store
            .list_projects()?
            .iter()
            .map(Self::project_owner)
            .filter(|o| visible(o))
            .collect();
        let groups = self
            .store
            .list_groups()?
            .iter()
            .map(Self::group_owner)
            .filter(|o| visible(o))
            .collect();
        Ok((projects, groups))
    }

    /// May the actor do `action` on `owner`'s tokens? For what a page offers (the create
    /// form, revoke buttons); every call checks again.
    pub fn may(&self, actor: Actor<'_>, owner: &TokenOwner, action: TokenAction) -> bool {
        match actor {
            Actor::Cli => true,
            Actor::User(user) => may(user, owner, action),
        }
    }

    pub fn list(
        &self,
        actor: Actor<'_>,
        owner: &TokenOwner,
    ) -> Result<Vec<DeployToken>, ManageError> {
        self.authorize(actor, owner, TokenAction::List)?;
        Ok(self.store.deploy_tokens_of(owner)?)
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
        self.store
            .find_by_id(token_id)?
            .filter(|t| &t.owner == owner)
            .ok_or_else(|| Missing::DeployToken(token_id).into())
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
            } else if self.store.find_user_by_username(u)?.is_some() {
                // Its JWTs would say `sub: "root"`: registries and logs would take the
                // token for the person.
                invalid("username", TokenError::UserName(u.clone()).to_string());
            }
        }
        if !errors.is_empty() {
            return Err(ManageError::Invalid(errors));
        }
        let secret = generate_secret();
        let sealed_secret = match owner {
            TokenOwner::Project { .. } if name == CI_TOKEN_NAME => Some(
                self.sealer()?
                    .seal(secret.expose().as_bytes())
                    .map_err(|e| {
                        ManageError::Store(crate::domain::store::StoreError::Unavailable(
                            e.to_string(),
                        ))
                    })?,
            ),
            _ => None,
        };
        let event = NewAuditEvent::by(
            &actor.audit(),
            AuditAction::DeployTokenCreated,
            owner.path().to_string(),
        )
        .with_detail(format!(
            "name={name:?} scopes={}",
            scopes
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        ));
        let new = NewDeployToken {
            owner: owner.clone(),
            name,
            custom_username: username,
            scopes,
            expires_at,
            created_by: actor.user_id(),
            sealed_secret,
        };
        let token = self
            .store
            .create_deploy_token(&new, &secret.hashed(), &event)?;
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
        let token = self.token_of(owner, token_id)?;
        self.revoke_authorized(actor, token)
    }

    /// Revokes by id alone (the CLI's `token revoke ID`), authorized on the token's owner.
    pub fn revoke_by_id(
        &self,
        actor: Actor<'_>,
        token_id: i64,
    ) -> Result<(DeployToken, Revocation), ManageError> {
        let token = self
            .store
            .find_by_id(token_id)?
            .ok_or(Missing::DeployToken(token_id))?;
        self.authorize(actor, &token.owner, TokenAction::Revoke)?;
        self.revoke_authorized(actor, token)
    }

    fn revoke_authorized(
        &self,
        actor: Actor<'_>,
        token: DeployToken,
    ) -> Result<(DeployToken, Revocation), ManageError> {
        let event = NewAuditEvent::by(
            &actor.audit(),
            AuditAction::DeployTokenRevoked,
            token.owner.path().to_string(),
        )
        .with_token(token.id);
        let outcome = self
            .store
            .revoke_deploy_token(token.id, Utc::now(), &event)
            .map_err(|e| match e {
                crate::domain::store::StoreError::NotFound(_) => {
                    ManageError::NotFound(Missing::DeployToken(token.id))
                }
                other => other.into(),
            })?;
        let token = self
            .store
            .find_by_id(token.id)?
            .ok_or(Missing::DeployToken(token.id))?;
        Ok((token, outcome))
    }

    /// Every deploy token (admins only), optionally only active (`Some(true)`) or only
    /// inactive ones.
    pub fn list_all(
        &self,
        actor: Actor<'_>,
        active: Option<bool>,
    ) -> Result<Vec<DeployToken>, ManageError> {
        actor.require(|u| u.user.is_admin)?;
        let now = Utc::now();
        Ok(self
            .store
            .all_deploy_tokens()?
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
        for (token, sealed) in self.store.ci_deploy_tokens(project.id)? {
            if !token.is_active(now) {
                continue;
            }
            let plain = self.sealer()?.open(&sealed).map_err(|e| {
                log::error!("CI token {} cannot be unsealed: {e}", token.id);
                ManageError::Store(crate::domain::store::StoreError::Corrupt(e.to_string()))
            })?;
            let password = String::from_utf8(plain).map_err(|_| {
                ManageError::Store(crate::domain::store::StoreError::Corrupt(
                    "sealed CI secret is not UTF-8".into(),
                ))
            })?;
            return Ok(Some(CiVariables {
                token_id: token.id,
                user: token.username(),
                password: SecretString::from(password),
            }));
        }
        Ok(None)
    }
}
