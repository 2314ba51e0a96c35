//! The `personal_access_tokens` table: digests only, like deploy tokens.

use chrono::{DateTime, Utc};
use postgres::Row;

use super::{audit, DbError, PostgresStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::personal_access_token::PersonalAccessToken;
use crate::domain::secret::HashedToken;
use crate::domain::store::NewPat;
use crate::store::rows::personal_access_tokens::{RawPat, SELECT};
use crate::store::rows::{fmt_date, fmt_time};

fn from_row(r: &Row) -> Result<RawPat, postgres::Error> {
    Ok(RawPat {
        id: r.try_get(0)?,
        user_id: r.try_get(1)?,
        name: r.try_get(2)?,
        scopes: r.try_get(3)?,
        expires_at: r.try_get(4)?,
        created_at: r.try_get(5)?,
        revoked_at: r.try_get(6)?,
        last_used_at: r.try_get(7)?,
    })
}

fn build(row: Option<Row>) -> Result<Option<PersonalAccessToken>, DbError> {
    Ok(row
        .map(|r| from_row(&r))
        .transpose()?
        .map(RawPat::build)
        .transpose()?)
}

impl PostgresStore {
    pub(super) fn insert_pat(
        &self,
        new: &NewPat,
        digest: &HashedToken,
        event: &NewAuditEvent,
    ) -> Result<PersonalAccessToken, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let now = Utc::now();
        let joined: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
        let id: i64 = tx
            .query_one(
                "INSERT INTO personal_access_tokens \
                 (user_id, name, token_digest, scopes, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                &[
                    &new.user_id,
                    &new.name,
                    &digest.as_bytes(),
                    &joined.join(","),
                    &new.expires_at.map(fmt_date),
                    &fmt_time(now),
                ],
            )?
            .try_get(0)?;
        let event = event.clone().with_detail(format!(
            "pat={id} name={:?} scopes={}",
            new.name,
            joined.join(",")
        ));
        audit::insert(&mut tx, &event, now)?;
        tx.commit()?;
        Ok(PersonalAccessToken {
            id,
            user_id: new.user_id,
            name: new.name.clone(),
            scopes: new.scopes.clone(),
            expires_at: new.expires_at,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
        })
    }

    pub(super) fn pat_row_by_digest(
        &self,
        digest: &HashedToken,
    ) -> Result<Option<PersonalAccessToken>, DbError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!("{SELECT} WHERE token_digest = $1"))?;
        build(conn.query_opt(&statement, &[&digest.as_bytes()])?)
    }

    pub(super) fn pat_row(&self, id: i64) -> Result<Option<PersonalAccessToken>, DbError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!("{SELECT} WHERE id = $1"))?;
        build(conn.query_opt(&statement, &[&id])?)
    }

    /// Revokes a user's PAT at once; `false` if it does not exist or was already revoked.
    pub(super) fn update_pat_revoked(
        &self,
        id: i64,
        at: DateTime<Utc>,
        event: &NewAuditEvent,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // One conditional UPDATE decides: of two instances revoking at once, only one
        // changes the row (the other waits for its row lock, then sees revoked_at set) and
        // records the event.
        let changed = tx.execute(
            "UPDATE personal_access_tokens SET revoked_at = $1 WHERE id = $2 \
             AND revoked_at IS NULL",
            &[&fmt_time(at), &id],
        )?;
        if changed == 1 {
            audit::insert(&mut tx, event, at)?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }
}
