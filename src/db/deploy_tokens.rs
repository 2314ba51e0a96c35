//! The `deploy_tokens` table. Secrets never reach it: only their SHA-256 digests.

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::audit;
use super::{fmt_time, parse_date, parse_time, Db, DbError};
use crate::domain::audit::{AuditAction, AuditActor, NewAuditEvent};
use crate::domain::deploy_token::{
    DeployToken, HashedToken, TokenOwner, TokenScope, CI_TOKEN_NAME,
};
use crate::domain::path::NamespacePath;
use crate::domain::store::{DeployTokenLookup, StoreError};

/// The columns `from_row` reads, in its order; a query may add its own after them.
const COLUMNS: &str = "t.id, t.project_id, p.path, t.group_id, g.path, t.name, t.username, \
     t.scopes, t.expires_at, t.created_at, t.revoked_at, t.last_used_at, t.created_by";
const FROM: &str = "FROM deploy_tokens t \
     LEFT JOIN projects p ON p.id = t.project_id \
     LEFT JOIN groups g ON g.id = t.group_id";
/// What the caller decides when creating a token; the store adds id and timestamps.
#[derive(Debug, Clone)]
pub struct NewDeployToken {
    pub owner: TokenOwner,
    pub name: String,
    pub custom_username: Option<String>,
    pub scopes: Vec<TokenScope>,
    pub expires_at: Option<NaiveDate>,
    pub created_by: Option<i64>,
    /// AES-256-GCM sealed secret: only for the CI token `wvs-deploy-token` (SPEC §1).
    pub sealed_secret: Option<Vec<u8>>,
}

struct RawToken {
    id: i64,
    project: Option<(i64, String)>,
    group: Option<(i64, String)>,
    name: String,
    username: Option<String>,
    scopes: String,
    expires_at: Option<String>,
    created_at: String,
    revoked_at: Option<String>,
    last_used_at: Option<String>,
    created_by: Option<i64>,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<RawToken> {
    let pair = |id: Option<i64>, path: Option<String>| id.zip(path);
    Ok(RawToken {
        id: r.get(0)?,
        project: pair(r.get(1)?, r.get(2)?),
        group: pair(r.get(3)?, r.get(4)?),
        name: r.get(5)?,
        username: r.get(6)?,
        scopes: r.get(7)?,
        expires_at: r.get(8)?,
        created_at: r.get(9)?,
        revoked_at: r.get(10)?,
        last_used_at: r.get(11)?,
        created_by: r.get(12)?,
    })
}

fn build(raw: RawToken) -> Result<DeployToken, DbError> {
    let corrupt = |what: &str| DbError::Corrupt(format!("deploy token {}: {what}", raw.id));
    let path = |p: &str| NamespacePath::parse(p).map_err(|e| corrupt(&e.to_string()));
    let owner = match (&raw.project, &raw.group) {
        (Some((id, p)), None) => TokenOwner::Project {
            id: *id,
            path: path(p)?,
        },
        (None, Some((id, p))) => TokenOwner::Group {
            id: *id,
            path: path(p)?,
        },
        _ => return Err(corrupt("owner")),
    };
    let scopes = raw
        .scopes
        .split(',')
        .map(|s| s.parse::<TokenScope>().map_err(|e| corrupt(&e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let opt_time = |s: &Option<String>| s.as_deref().map(parse_time).transpose();
    Ok(DeployToken {
        id: raw.id,
        owner,
        scopes,
        expires_at: raw.expires_at.as_deref().map(parse_date).transpose()?,
        created_at: parse_time(&raw.created_at)?,
        revoked_at: opt_time(&raw.revoked_at)?,
        last_used_at: opt_time(&raw.last_used_at)?,
        created_by: raw.created_by,
        name: raw.name,
        custom_username: raw.username,
    })
}

/// The result of a revocation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    AlreadyRevoked,
}

impl Db {
    /// Stores the token and its `deploy_token_created` audit event in one transaction.
    pub fn create_deploy_token(
        &self,
        new: &NewDeployToken,
        digest: &HashedToken,
        actor: &AuditActor,
    ) -> Result<DeployToken, DbError> {
        let (project_id, group_id) = match &new.owner {
            TokenOwner::Project { id, .. } => (Some(*id), None),
            TokenOwner::Group { id, .. } => (None, Some(*id)),
        };
        let scopes: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
        let now = Utc::now();
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO deploy_tokens (project_id, group_id, name, username, token_digest, \
             scopes, expires_at, created_at, created_by, sealed_secret) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                project_id,
                group_id,
                new.name,
                new.custom_username,
                digest.as_bytes(),
                scopes.join(","),
                new.expires_at.map(|d| d.format("%Y-%m-%d").to_string()),
                fmt_time(now),
                new.created_by,
                new.sealed_secret,
            ],
        )?;
        let id = tx.last_insert_rowid();
        audit::insert(
            &tx,
            &NewAuditEvent {
                action: AuditAction::DeployTokenCreated,
                actor: Some(actor.name.clone()),
                actor_user_id: actor.user_id,
                deploy_token_id: Some(id),
                target: Some(new.owner.path().to_string()),
                detail: Some(format!("name={:?} scopes={}", new.name, scopes.join(","))),
            },
            now,
        )?;
        tx.commit()?;
        Ok(DeployToken {
            id,
            owner: new.owner.clone(),
            name: new.name.clone(),
            custom_username: new.custom_username.clone(),
            scopes: new.scopes.clone(),
            expires_at: new.expires_at,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
            created_by: new.created_by,
        })
    }

    /// Every token of a project or group, revoked and expired ones included.
    pub fn list_deploy_tokens(&self, owner: &TokenOwner) -> Result<Vec<DeployToken>, DbError> {
        let (column, id) = match owner {
            TokenOwner::Project { id, .. } => ("t.project_id", *id),
            TokenOwner::Group { id, .. } => ("t.group_id", *id),
        };
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} {FROM} WHERE {column} = ?1 ORDER BY t.id"
        ))?;
        let rows = stmt
            .query_map([id], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(build).collect()
    }

    pub fn find_deploy_token(&self, id: i64) -> Result<Option<DeployToken>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} {FROM} WHERE t.id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        row.map(build).transpose()
    }

    /// Revokes at once: the next request with this token is refused. The audit event
    /// commits with the revocation.
    pub fn revoke_deploy_token(&self, id: i64, actor: &AuditActor) -> Result<Revocation, DbError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = Utc::now();
        let changed = tx.execute(
            "UPDATE deploy_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![fmt_time(now), id],
        )?;
        if changed == 1 {
            let target: Option<String> = tx.query_row(
                "SELECT COALESCE(p.path, g.path) FROM deploy_tokens t \
                 LEFT JOIN projects p ON p.id = t.project_id \
                 LEFT JOIN groups g ON g.id = t.group_id WHERE t.id = ?1",
                [id],
                |r| r.get(0),
            )?;
            audit::insert(
                &tx,
                &NewAuditEvent {
                    action: AuditAction::DeployTokenRevoked,
                    actor: Some(actor.name.clone()),
                    actor_user_id: actor.user_id,
                    deploy_token_id: Some(id),
                    target,
                    detail: None,
                },
                now,
            )?;
            tx.commit()?;
            return Ok(Revocation::Revoked);
        }
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM deploy_tokens WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if exists {
            Ok(Revocation::AlreadyRevoked)
        } else {
            Err(DbError::NotFound(format!(
                "deploy token {id} does not exist"
            )))
        }
    }
}

impl Db {
    /// Every deploy token of every namespace (the admin listing), oldest first.
    pub fn list_all_deploy_tokens(&self) -> Result<Vec<DeployToken>, DbError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} {FROM} ORDER BY t.id"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(build).collect()
    }

    /// The project's CI tokens (named `wvs-deploy-token`, with a sealed secret), newest
    /// first, with their sealed secrets. The caller picks the first active one.
    pub fn ci_deploy_tokens(
        &self,
        project_id: i64,
    ) -> Result<Vec<(DeployToken, Vec<u8>)>, DbError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS}, t.sealed_secret {FROM} WHERE t.project_id = ?1 AND t.name = ?2 \
             AND t.sealed_secret IS NOT NULL ORDER BY t.id DESC"
        ))?;
        let rows = stmt
            .query_map(params![project_id, CI_TOKEN_NAME], |r| {
                Ok((from_row(r)?, r.get::<_, Vec<u8>>(13)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(raw, sealed)| Ok((build(raw)?, sealed)))
            .collect()
    }
}

impl DeployTokenLookup for Db {
    fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} {FROM} WHERE t.token_digest = ?1"
            ))
            .map_err(DbError::from)?
            .query_row([digest.as_bytes()], from_row)
            .optional()
            .map_err(DbError::from)?;
        Ok(row.map(build).transpose()?)
    }

    fn find_by_id(&self, id: i64) -> Result<Option<DeployToken>, StoreError> {
        Ok(self.find_deploy_token(id)?)
    }

    fn record_last_used(&self, uses: &[(i64, DateTime<Utc>)]) -> Result<(), StoreError> {
        let run = || -> Result<(), DbError> {
            let mut conn = self.conn()?;
            let tx = conn.transaction()?;
            {
                let mut first = tx.prepare_cached(
                    "UPDATE deploy_tokens SET last_used_at = ?1 WHERE id = ?2 \
                     AND last_used_at IS NULL \
                     RETURNING COALESCE(username, 'wvs+deploy-token-' || id), \
                     (SELECT path FROM projects WHERE id = project_id), \
                     (SELECT path FROM groups WHERE id = group_id)",
                )?;
                let mut later = tx.prepare_cached(
                    "UPDATE deploy_tokens SET last_used_at = ?1 WHERE id = ?2 \
                     AND last_used_at < ?1",
                )?;
                for (id, at) in uses {
                    let first_use = first
                        .query_row(params![fmt_time(*at), id], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, Option<String>>(1)?,
                                r.get::<_, Option<String>>(2)?,
                            ))
                        })
                        .optional()?;
                    match first_use {
                        // The first use of a token is an audit event (SPEC §7).
                        Some((username, project, group)) => audit::insert(
                            &tx,
                            &NewAuditEvent {
                                action: AuditAction::DeployTokenFirstUsed,
                                actor: Some(username),
                                actor_user_id: None,
                                deploy_token_id: Some(*id),
                                target: project.or(group),
                                detail: None,
                            },
                            *at,
                        )?,
                        None => {
                            later.execute(params![fmt_time(*at), id])?;
                        }
                    }
                }
            }
            tx.commit()?;
            Ok(())
        };
        Ok(run()?)
    }
}
