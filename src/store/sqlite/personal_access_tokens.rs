//! The `personal_access_tokens` table: digests only, like deploy tokens.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::{audit, fmt_time, parse_date, parse_time, DbError, SqliteStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::personal_access_token::{parse_pat_scopes, PersonalAccessToken};
use crate::domain::secret::HashedToken;
use crate::domain::store::NewPat;

const SELECT: &str = "SELECT id, user_id, name, scopes, expires_at, created_at, revoked_at, \
     last_used_at FROM personal_access_tokens";

type RawPat = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

fn from_row(r: &Row<'_>) -> rusqlite::Result<RawPat> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn build(raw: RawPat) -> Result<PersonalAccessToken, DbError> {
    let (id, user_id, name, scopes, expires_at, created_at, revoked_at, last_used_at) = raw;
    let opt_time = |s: Option<String>| s.as_deref().map(parse_time).transpose();
    Ok(PersonalAccessToken {
        id,
        user_id,
        name,
        scopes: parse_pat_scopes(&scopes)
            .map_err(|e| DbError::Corrupt(format!("personal access token {id}: {e}")))?,
        expires_at: expires_at.as_deref().map(parse_date).transpose()?,
        created_at: parse_time(&created_at)?,
        revoked_at: opt_time(revoked_at)?,
        last_used_at: opt_time(last_used_at)?,
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
                new.expires_at.map(|d| d.format("%Y-%m-%d").to_string()),
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
        row.map(build).transpose()
    }

    pub(super) fn pat_row(&self, id: i64) -> Result<Option<PersonalAccessToken>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        row.map(build).transpose()
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
