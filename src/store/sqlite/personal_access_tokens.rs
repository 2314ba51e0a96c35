//! The `personal_access_tokens` table: digests only, like deploy tokens.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::{audit, DbError, SqliteStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::personal_access_token::PersonalAccessToken;
use crate::domain::secret::HashedToken;
use crate::domain::store::NewPat;
use crate::store::rows::personal_access_tokens::{RawPat, SELECT};
use crate::store::rows::{fmt_date, fmt_time};

fn from_row(r: &Row<'_>) -> rusqlite::Result<RawPat> {
    Ok(RawPat {
        id: r.get(0)?,
        user_id: r.get(1)?,
        name: r.get(2)?,
        scopes: r.get(3)?,
        expires_at: r.get(4)?,
        created_at: r.get(5)?,
        revoked_at: r.get(6)?,
        last_used_at: r.get(7)?,
    })
}

impl SqliteStore {
    pub(super) fn insert_pat(
        &self,
        new: &NewPat,
        digest: &HashedToken,
        event: &NewAuditEvent,
    ) -> Result<PersonalAccessToken, DbError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = Utc::now();
        let joined: Vec<&str> = new.scopes.iter().map(|s| s.as_str()).collect();
        tx.execute(
            "INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                new.user_id,
                new.name,
                digest.as_bytes(),
                joined.join(","),
                new.expires_at.map(fmt_date),
                fmt_time(now)
            ],
        )?;
        let id = tx.last_insert_rowid();
        let event = event.clone().with_detail(format!(
            "pat={id} name={:?} scopes={}",
            new.name,
            joined.join(",")
        ));
        audit::insert(&tx, &event, now)?;
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
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("{SELECT} WHERE token_digest = ?1"))?
            .query_row([digest.as_bytes()], from_row)
            .optional()?;
        Ok(row.map(RawPat::build).transpose()?)
    }

    pub(super) fn pat_row(&self, id: i64) -> Result<Option<PersonalAccessToken>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        Ok(row.map(RawPat::build).transpose()?)
    }

    /// Revokes a user's PAT at once; `false` if it does not exist or was already revoked.
    pub(super) fn update_pat_revoked(
        &self,
        id: i64,
        at: DateTime<Utc>,
        event: &NewAuditEvent,
    ) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE personal_access_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![fmt_time(at), id],
        )?;
        if changed == 1 {
            audit::insert(&tx, event, at)?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }
}
