//! The `deploy_tokens` table. Secrets never reach it: only their SHA-256 digests.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::audit;
use super::{DbError, SqliteStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::deploy_token::{DeployToken, TokenOwner, CI_TOKEN_NAME};
use crate::domain::secret::HashedToken;
use crate::domain::store::{
    DeployTokenLookup, DeployTokenStore, NewDeployToken, Revocation, StoreError,
};
use crate::store::rows::deploy_tokens::{RawToken, COLUMNS, FROM};
use crate::store::rows::{fmt_date, fmt_time};

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

impl SqliteStore {
    fn find_deploy_token(&self, id: i64) -> Result<Option<DeployToken>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} {FROM} WHERE t.id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        Ok(row.map(RawToken::build).transpose()?)
    }

    fn list_tokens(&self, filter: &str, id: Option<i64>) -> Result<Vec<DeployToken>, DbError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} {FROM} {filter} ORDER BY t.id"))?;
        let rows = match id {
            Some(id) => stmt
                .query_map([id], from_row)?
                .collect::<Result<Vec<_>, _>>()?,
            None => stmt
                .query_map([], from_row)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        Ok(rows
            .into_iter()
            .map(RawToken::build)
            .collect::<Result<_, _>>()?)
    }
}

impl DeployTokenStore for SqliteStore {
    fn deploy_tokens_of(&self, owner: &TokenOwner) -> Result<Vec<DeployToken>, StoreError> {
        let (filter, id) = match owner {
            TokenOwner::Project { id, .. } => ("WHERE t.project_id = ?1", *id),
            TokenOwner::Group { id, .. } => ("WHERE t.group_id = ?1", *id),
        };
        Ok(self.list_tokens(filter, Some(id))?)
    }

    fn all_deploy_tokens(&self) -> Result<Vec<DeployToken>, StoreError> {
        Ok(self.list_tokens("", None)?)
    }

    fn ci_deploy_tokens(&self, project_id: i64) -> Result<Vec<(DeployToken, Vec<u8>)>, StoreError> {
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
        Ok(rows
            .into_iter()
            .map(|(raw, sealed)| Ok((raw.build()?, sealed)))
            .collect::<Result<_, DbError>>()?)
    }

    fn create_deploy_token(
        &self,
        new: &NewDeployToken,
        digest: &HashedToken,
        event: &NewAuditEvent,
    ) -> Result<DeployToken, StoreError> {
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
                new.expires_at.map(fmt_date),
                fmt_time(now),
                new.created_by,
                new.sealed_secret,
            ],
        )?;
        let id = tx.last_insert_rowid();
        audit::insert(&tx, &event.clone().with_token(id), now)?;
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

    fn revoke_deploy_token(
        &self,
        id: i64,
        at: DateTime<Utc>,
        event: &NewAuditEvent,
    ) -> Result<Revocation, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE deploy_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![fmt_time(at), id],
        )?;
        if changed == 1 {
            audit::insert(&tx, event, at)?;
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
            Err(StoreError::NotFound(format!("deploy token {id}")))
        }
    }

    fn record_deploy_token_uses(
        &self,
        uses: &[(i64, DateTime<Utc>)],
        first_use: &dyn Fn(&DeployToken) -> NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction()?;
        {
            let mut first = tx.prepare_cached(
                "UPDATE deploy_tokens SET last_used_at = ?1 WHERE id = ?2 \
                 AND last_used_at IS NULL RETURNING id",
            )?;
            let mut later = tx.prepare_cached(
                "UPDATE deploy_tokens SET last_used_at = ?1 WHERE id = ?2 \
                 AND last_used_at < ?1",
            )?;
            let mut load =
                tx.prepare_cached(&format!("SELECT {COLUMNS} {FROM} WHERE t.id = ?1"))?;
            for (id, at) in uses {
                let first_use_of = first
                    .query_row(params![fmt_time(*at), id], |r| r.get::<_, i64>(0))
                    .optional()?;
                match first_use_of {
                    Some(id) => {
                        let token = load.query_row([id], from_row)?.build()?;
                        audit::insert(&tx, &first_use(&token), *at)?;
                    }
                    None => {
                        later.execute(params![fmt_time(*at), id])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl DeployTokenLookup for SqliteStore {
    fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} {FROM} WHERE t.token_digest = ?1"
            ))?
            .query_row([digest.as_bytes()], from_row)
            .optional()?;
        Ok(row
            .map(RawToken::build)
            .transpose()
            .map_err(DbError::from)?)
    }

    fn find_by_id(&self, id: i64) -> Result<Option<DeployToken>, StoreError> {
        Ok(self.find_deploy_token(id)?)
    }
}
