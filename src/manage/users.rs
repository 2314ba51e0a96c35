//! Users, memberships and personal access tokens, on behalf of an actor, each change with
//! its audit event (`user_created`, `member_added`, `member_updated`, `member_removed`,
//! `pat_created`, `pat_revoked`).

use std::sync::Arc;

use chrono::Utc;
use secrecy::SecretString;

use super::{Actor, ManageError, Missing};
use crate::domain::audit::{AuditAction, NewAuditEvent};
use crate::domain::deploy_token::{parse_expiry, validate_name};
use crate::domain::management::{may_manage_member, may_manage_pats_of, may_manage_users};
use crate::domain::password::hash_password;
use crate::domain::path::NamespacePath;
use crate::domain::personal_access_token::{
    generate_secret, parse_pat_scopes, PersonalAccessToken,
};
use crate::domain::role::Role;
use crate::domain::secret::PlainSecret;
use crate::domain::store::{MemberOf, NewPat, Store};
use crate::domain::user::{validate_username, MembershipTarget, User};

/// Where a membership is: a project or a group, by path.
#[derive(Debug, Clone)]
pub enum MemberTarget {
    Project(NamespacePath),
    Group(NamespacePath),
}

/// A personal access token as asked for; every field is validated here.
#[derive(Debug, Clone)]
pub struct NewPatRequest {
    pub name: String,
    /// Comma-separated.
    pub scopes: String,
    pub expires_at: Option<String>,
}

pub struct UserManager {
    store: Arc<dyn Store>,
}

impl UserManager {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// A user; with a password, it is hashed (argon2id) before anything is stored.
    pub fn create(
        &self,
        actor: Actor<'_>,
        username: &str,
        password: Option<&SecretString>,
        is_admin: bool,
    ) -> Result<User, ManageError> {
        actor.require(may_manage_users)?;
        validate_username(username).map_err(|e| ManageError::invalid("username", e))?;
        let hash = password
            .map(hash_password)
            .transpose()
            .map_err(|e| ManageError::invalid("password", e))?;
        let event = NewAuditEvent::by(&actor.audit(), AuditAction::UserCreated, username)
            .with_detail(format!(
                "admin={is_admin} password={}",
                if hash.is_some() { "set" } else { "none" }
            ));
        Ok(self
            .store
            .create_user(username, hash.as_deref(), is_admin, &event)?)
    }

    /// Blocks or unblocks an account: its password, PATs and sessions stop (or work again)
    /// on the next request; the deploy tokens it created are untouched. `false` when it
    /// already was so.
    pub fn set_blocked(
        &self,
        actor: Actor<'_>,
        user: &User,
        blocked: bool,
    ) -> Result<bool, ManageError> {
        actor.require(may_manage_users)?;
        let action = if blocked {
            AuditAction::UserBlocked
        } else {
            AuditAction::UserUnblocked
        };
        let event = NewAuditEvent::by(&actor.audit(), action, user.username.clone());
        Ok(self
            .store
            .set_user_blocked(user.id, blocked, Utc::now(), &event)?)
    }

    /// Deletes an account with its memberships, PATs and sessions; the deploy tokens it
    /// created keep working.
    pub fn delete(&self, actor: Actor<'_>, user: &User) -> Result<(), ManageError> {
        actor.require(may_manage_users)?;
        let event = NewAuditEvent::by(
            &actor.audit(),
            AuditAction::UserDeleted,
            user.username.clone(),
        )
        .with_detail(format!("user={}", user.id));
        if self.store.delete_user(user.id, &event)? {
            Ok(())
        } else {
            Err(Missing::User(user.username.clone()).into())
        }
    }

    /// The user with this id.
    pub fn by_id(&self, id: i64) -> Result<User, ManageError> {
        self.store
            .find_user(id)?
            .ok_or_else(|| Missing::User(id.to_string()).into())
    }

    pub fn list(&self, actor: Actor<'_>) -> Result<Vec<User>, ManageError> {
        actor.require(may_manage_users)?;
        Ok(self.store.list_users()?)
    }

    /// The user with this name (case-insensitive).
    pub fn find(&self, username: &str) -> Result<User, ManageError> {
        Ok(self
            .store
            .find_user_by_username(username)?
            .ok_or_else(|| Missing::User(username.to_string()))?
            .user)
    }

    /// Gives `username` `role` on `target`, or changes the role if already a member there.
    /// Returns the previous role, if any.
    pub fn add_member(
        &self,
        actor: Actor<'_>,
        username: &str,
        target: &MemberTarget,
        role: Role,
    ) -> Result<(User, Option<Role>), ManageError> {
        let user = self.find(username)?;
        let (target, of) = self.resolve(target)?;
        actor.require(|u| may_manage_member(u, &target, role))?;
        let audit = actor.audit();
        let path = target.path().to_string();
        let name = user.username.clone();
        let previous = self.store.set_membership(user.id, of, role, &|previous| {
            let (action, detail) = match previous {
                None => (AuditAction::MemberAdded, format!("user={name} role={role}")),
                Some(old) => (
                    AuditAction::MemberUpdated,
                    format!("user={name} role={role} was={old}"),
                ),
            };
            NewAuditEvent::by(&audit, action, path.clone()).with_detail(detail)
        })?;
        Ok((user, previous))
    }

    /// Removes `username`'s membership of `target`.
    pub fn remove_member(
        &self,
        actor: Actor<'_>,
        username: &str,
        target: &MemberTarget,
    ) -> Result<User, ManageError> {
        let user = self.find(username)?;
        let (target, of) = self.resolve(target)?;
        let current = self
            .store
            .memberships_of(user.id)?
            .into_iter()
            .find(|m| m.target == target)
            .map(|m| m.role);
        let missing = || Missing::Membership {
            user: user.username.clone(),
            of: target.path().to_string(),
        };
        let role = current.ok_or_else(missing)?;
        actor.require(|u| may_manage_member(u, &target, role))?;
        let event = NewAuditEvent::by(
            &actor.audit(),
            AuditAction::MemberRemoved,
            target.path().to_string(),
        )
        .with_detail(format!("user={} role={role}", user.username));
        if !self.store.remove_membership(user.id, of, &event)? {
            return Err(missing().into());
        }
        Ok(user)
    }

    /// A personal access token for `username`; its secret is returned once.
    pub fn create_pat(
        &self,
        actor: Actor<'_>,
        username: &str,
        request: &NewPatRequest,
    ) -> Result<(User, PersonalAccessToken, PlainSecret), ManageError> {
        validate_name(&request.name).map_err(|e| ManageError::invalid("name", e))?;
        let scopes =
            parse_pat_scopes(&request.scopes).map_err(|e| ManageError::invalid("scopes", e))?;
        let expires_at = request
            .expires_at
            .as_deref()
            .map(|d| parse_expiry(d, Utc::now().date_naive()))
            .transpose()
            .map_err(|e| ManageError::invalid("expires_at", e))?;
        let owner = self.find(username)?;
        actor.require(|u| may_manage_pats_of(u, owner.id))?;
        let secret = generate_secret();
        let event = NewAuditEvent::by(
            &actor.audit(),
            AuditAction::PatCreated,
            owner.username.clone(),
        );
        let new = NewPat {
            user_id: owner.id,
            name: request.name.clone(),
            scopes,
            expires_at,
        };
        let pat = self.store.create_pat(&new, &secret.hashed(), &event)?;
        Ok((owner, pat, secret))
    }

    /// Revokes a personal access token; it stops working on the next request.
    pub fn revoke_pat(&self, actor: Actor<'_>, id: i64) -> Result<(), ManageError> {
        let pat = self.store.find_pat(id)?.ok_or(Missing::Pat(id))?;
        actor.require(|u| may_manage_pats_of(u, pat.user_id))?;
        let owner = self
            .store
            .find_user(pat.user_id)?
            .map(|u| u.username)
            .unwrap_or_default();
        let event = NewAuditEvent::by(&actor.audit(), AuditAction::PatRevoked, owner)
            .with_detail(format!("pat={id}"));
        if self.store.revoke_pat(id, Utc::now(), &event)? {
            Ok(())
        } else {
            Err(Missing::Pat(id).into())
        }
    }

    fn resolve(&self, target: &MemberTarget) -> Result<(MembershipTarget, MemberOf), ManageError> {
        match target {
            MemberTarget::Project(path) => {
                let p = self
                    .store
                    .project_by_path(path)?
                    .ok_or_else(|| Missing::Project(path.to_string()))?;
                Ok((
                    MembershipTarget::Project {
                        id: p.id,
                        path: p.path,
                    },
                    MemberOf::Project(p.id),
                ))
            }
            MemberTarget::Group(path) => {
                let g = self
                    .store
                    .group_by_path(path)?
                    .ok_or_else(|| Missing::Group(path.to_string()))?;
                Ok((
                    MembershipTarget::Group {
                        id: g.id,
                        path: g.path,
                    },
                    MemberOf::Group(g.id),
                ))
            }
        }
    }
}
