//! The `deploy_tokens` table. Secrets never reach it: only their SHA-256 digests.

use chrono::{DateTime, Utc};
use postgres::Row;

use super::{audit, DbError, PostgresStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::deploy_token::{DeployToken, TokenOwner, CI_TOKEN_NAME};
use crate::domain::secret::HashedToken;
use crate::domain::store::{
    DeployTokenLookup, DeployTokenStore, NewDeployToken, Revocation, StoreError,
};
use crate::store::rows::deploy_tokens::{RawToken, COLUMNS, FROM};
use crate::store::rows::{fmt_date, fmt_time};

fn from_row(r: &Row) -> Result<RawToken, postgres::Error> {
    let pair = |id: Option<i64>, path: Option<String>| id.zip(path);
    Ok(RawToken {
        id: r.try_get(0)?,
        project: pair(r.try_get(1)?, r.try_get(2)?),
        group: pair(r.try_get(3)?, r.try_get(4)?),
        name: r.try_get(5)?,
        username: r.try_get(6)?,
        scopes: r.try_get(7)?,
        expires_at: r.try_get(8)?,
        created_at: r.try_get(9)?,
        revoked_at: r.try_get(10)?,
        last_used_at: r.try_get(11)?,
        created_by: r.try_get(12)?,
    })
}

fn build_all(rows: &[Row]) -> Result<Vec<DeployToken>, DbError> {
    rows.iter().map(|r| Ok(from_row(r)?.build()?)).collect()
}

impl PostgresStore {
    fn find_deploy_token(&self, id: i64) -> Result<Option<DeployToken>, DbError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!("SELECT {COLUMNS} {FROM} WHERE t.id = $1"))?;
        let row = conn.query_opt(&statement, &[&id])?;
        Ok(row
            .map(|r| from_row(&r))
            .transpose()?
            .map(RawToken::build)
            .transpose()?)
    }
}

impl DeployTokenStore for PostgresStore {
    fn deploy_tokens_of(&self, owner: &TokenOwner) -> Result<Vec<DeployToken>, StoreError> {
        let (filter, id) = match owner {
            TokenOwner::Project { id, .. } => ("t.project_id", *id),
            TokenOwner::Group { id, .. } => ("t.group_id", *id),
        };
        let rows = self.conn()?.query(
            &format!("SELECT {COLUMNS} {FROM} WHERE {filter} = $1 ORDER BY t.id"),
            &[&id],
        )?;
        Ok(build_all(&rows)?)
    }

    fn all_deploy_tokens(&self) -> Result<Vec<DeployToken>, StoreError> {
        let rows = self
            .conn()?
            .query(&format!("SELECT {COLUMNS} {FROM} ORDER BY t.id"), &[])?;
        Ok(build_all(&rows)?)
    }

    fn ci_deploy_tokens(&self, project_id: i64) -> Result<Vec<(DeployToken, Vec<u8>)>, StoreError> {
        let rows = self.conn()?.query(
            &format!(
                "SELECT {COLUMNS}, t.sealed_secret {FROM} WHERE t.project_id = $1 AND t.name = $2 \
                 AND t.sealed_secret IS NOT NULL ORDER BY t.id DESC"
            ),
            &[&project_id, &CI_TOKEN_NAME],
        )?;
        Ok(rows
            .iter()
            .map(|r| Ok((from_row(r)?.build()?, r.try_get::<_, Vec<u8>>(13)?)))
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
        let mut tx = conn.transaction()?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO deploy_tokens (project_id, group_id, name, username, token_digest, \
                 scopes, expires_at, created_at, created_by, sealed_secret) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
                &[
                    &project_id,
                    &group_id,
                    &new.name,
                    &new.custom_username,
                    &digest.as_bytes(),
                    &scopes.join(","),
                    &new.expires_at.map(fmt_date),
                    &fmt_time(now),
                    &new.created_by,
                    &new.sealed_secret,
                ],
            )?
            .try_get(0)?;
        audit::insert(&mut tx, &event.clone().with_token(id), now)?;
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
        let mut tx = conn.transaction()?;
        // One UPDATE decides: of two instances revoking at once, only one changes the row
        // (the other waits for its row lock, then sees revoked_at set).
        let changed = tx.execute(
            "UPDATE deploy_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
            &[&fmt_time(at), &id],
        )?;
        if changed == 1 {
            audit::insert(&mut tx, event, at)?;
            tx.commit()?;
            return Ok(Revocation::Revoked);
        }
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM deploy_tokens WHERE id = $1)",
                &[&id],
            )?
            .try_get(0)?;
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
        let mut tx = conn.transaction()?;
        let first = tx.prepare(
            "UPDATE deploy_tokens SET last_used_at = $1 WHERE id = $2 \
             AND last_used_at IS NULL RETURNING id",
        )?;
        let later = tx.prepare(
            "UPDATE deploy_tokens SET last_used_at = $1 WHERE id = $2 AND last_used_at < $1",
        )?;
        let load = tx.prepare(&format!("SELECT {COLUMNS} {FROM} WHERE t.id = $1"))?;
        for (id, at) in uses {
            let at_text = fmt_time(*at);
            match tx.query_opt(&first, &[&at_text, id])? {
                Some(_) => {
                    let token = from_row(&tx.query_one(&load, &[id])?)?
                        .build()
                        .map_err(DbError::from)?;
                    audit::insert(&mut tx, &first_use(&token), *at)?;
                }
                None => {
                    tx.execute(&later, &[&at_text, id])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl DeployTokenLookup for PostgresStore {
    fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} {FROM} WHERE t.token_digest = $1"
        ))?;
        let row = conn.query_opt(&statement, &[&digest.as_bytes()])?;
        Ok(row
            .map(|r| from_row(&r))
            .transpose()?
            .map(RawToken::build)
            .transpose()
            .map_err(DbError::from)?)
    }

    fn find_by_id(&self, id: i64) -> Result<Option<DeployToken>, StoreError> {
        Ok(self.find_deploy_token(id)?)
    }
}
