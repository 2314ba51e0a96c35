//! The `sessions` table: browser sign-ins of the settings pages. A row is keyed by the
//! SHA-256 of the cookie value (the value itself is never stored) and carries the
//! session's CSRF token and its end.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{fmt_time, parse_time, Db, DbError};

/// A live session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl Db {
    /// Stores a new session, dropping ended ones on the way (sign-ins are rare, so this
    /// housekeeping costs nothing that matters).
    pub fn create_session(
        &self,
        digest: &[u8; 32],
        user_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let conn = self.conn()?;
        // Fixed-width RFC 3339 UTC strings compare like the instants they name.
        conn.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
            .execute([fmt_time(now)])?;
        conn.prepare_cached(
            "INSERT INTO sessions (id_digest, user_id, csrf_token, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            &digest[..],
            user_id,
            csrf_token,
            fmt_time(now),
            fmt_time(expires_at)
        ])?;
        Ok(())
    }

    /// The session with this digest, unless it has ended by `now`.
    pub fn find_session(
        &self,
        digest: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Option<StoredSession>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(
                "SELECT user_id, csrf_token, expires_at FROM sessions WHERE id_digest = ?1",
            )?
            .query_row([&digest[..]], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        let Some((user_id, csrf_token, expires_at)) = row else {
            return Ok(None);
        };
        let expires_at = parse_time(&expires_at)?;
        Ok((expires_at > now).then_some(StoredSession {
            user_id,
            csrf_token,
            expires_at,
        }))
    }

    /// Ends a session (sign-out). Unknown digests are fine: the result is the same.
    pub fn delete_session(&self, digest: &[u8; 32]) -> Result<(), DbError> {
        self.conn()?
            .prepare_cached("DELETE FROM sessions WHERE id_digest = ?1")?
            .execute([&digest[..]])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn sessions_live_until_they_end_or_are_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(dir.path()).expect("db");
        let conn = db.conn().expect("conn");
        conn.execute(
            "INSERT INTO users (id, username, password_hash, is_admin, created_at) \
             VALUES (7, 'alice', NULL, 0, '2026-01-01T00:00:00Z')",
            [],
        )
        .expect("user");
        drop(conn);
        let now = Utc::now();
        let later = now + Duration::hours(12);
        db.create_session(&[1; 32], 7, "csrf", now, later)
            .expect("create");
        let found = db.find_session(&[1; 32], now).expect("find").expect("live");
        assert_eq!(found.user_id, 7);
        assert_eq!(found.csrf_token, "csrf");
        assert_eq!(db.find_session(&[2; 32], now).expect("find"), None);
        assert_eq!(
            db.find_session(&[1; 32], later).expect("find"),
            None,
            "ended"
        );
        db.delete_session(&[1; 32]).expect("delete");
        assert_eq!(db.find_session(&[1; 32], now).expect("find"), None);
    }
}
