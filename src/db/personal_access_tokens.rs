//! The `personal_access_tokens` table: digests only, like deploy tokens.

use chrono::{NaiveDate, Utc};
use rusqlite::{params, OptionalExtension, Row};

use super::{fmt_time, parse_date, parse_time, Db, DbError};
use crate::domain::deploy_token::HashedToken;
use crate::domain::personal_access_token::{parse_pat_scopes, PatScope, PersonalAccessToken};

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

impl Db {
    pub fn create_personal_access_token(
        &self,
        user_id: i64,
        name: &str,
        scopes: &[PatScope],
        expires_at: Option<NaiveDate>,
        digest: &HashedToken,
    ) -> Result<PersonalAccessToken, DbError> {
        let conn = self.conn()?;
        let now = Utc::now();
        let joined: Vec<&str> = scopes.iter().map(|s| s.as_str()).collect();
        conn.execute(
            "INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                user_id,
                name,
                digest.as_bytes(),
                joined.join(","),
                expires_at.map(|d| d.format("%Y-%m-%d").to_string()),
                fmt_time(now)
            ],
        )?;
        Ok(PersonalAccessToken {
            id: conn.last_insert_rowid(),
            user_id,
            name: name.to_string(),
            scopes: scopes.to_vec(),
            expires_at,
            created_at: now,
            revoked_at: None,
            last_used_at: None,
        })
    }

    pub fn find_pat_by_digest(
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

    pub fn find_pat(&self, id: i64) -> Result<Option<PersonalAccessToken>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("{SELECT} WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        row.map(build).transpose()
    }

    pub fn list_personal_access_tokens(
        &self,
        user_id: i64,
    ) -> Result<Vec<PersonalAccessToken>, DbError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!("{SELECT} WHERE user_id = ?1 ORDER BY id"))?;
        let rows = stmt
            .query_map([user_id], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(build).collect()
    }

    /// Revokes a user's PAT at once; `false` if it does not exist or was already revoked.
    pub fn revoke_personal_access_token(&self, id: i64) -> Result<bool, DbError> {
        let conn = self.conn()?;
        let changed = conn.execute(
            "UPDATE personal_access_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![fmt_time(Utc::now()), id],
        )?;
        Ok(changed == 1)
    }
}
