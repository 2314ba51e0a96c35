//! The `sessions` table: browser sign-ins of the settings pages. A row is keyed by the
//! SHA-256 of the cookie value (the value itself is never stored) and carries the
//! session's CSRF token and its end.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{fmt_time, parse_time, SqliteStore};
use crate::domain::secret::HashedToken;
use crate::domain::store::{SessionStore, StoreError, StoredSession};

impl SessionStore for SqliteStore {
    /// Sign-ins are rare, so dropping ended sessions here costs nothing that matters.
    fn create_session(
        &self,
        digest: &HashedToken,
        user_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let conn = self.conn()?;
        // Fixed-width RFC 3339 UTC strings compare like the instants they name.
        conn.prepare_cached("DELETE FROM sessions WHERE expires_at <= ?1")?
            .execute([fmt_time(now)])?;
        conn.prepare_cached(
            "INSERT INTO sessions (id_digest, user_id, csrf_token, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            digest.as_bytes(),
            user_id,
            csrf_token,
            fmt_time(now),
            fmt_time(expires_at)
        ])?;
        Ok(())
    }

    fn find_session(
        &self,
        digest: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredSession>, StoreError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(
                "SELECT user_id, csrf_token, expires_at FROM sessions WHERE id_digest = ?1",
            )?
            .query_row([digest.as_bytes()], |r| {
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

    fn delete_session(&self, digest: &HashedToken) -> Result<(), StoreError> {
        self.conn()?
            .prepare_cached("DELETE FROM sessions WHERE id_digest = ?1")?
            .execute([digest.as_bytes()])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{AuditAction, AuditActor, NewAuditEvent};
    use crate::domain::store::UserStore;
    use chrono::Duration;

    #[test]
    fn sessions_live_until_they_end_or_are_deleted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteStore::open(&dir.path().join("wvs.db"), 2).expect("db");
        let event = NewAuditEvent::by(&AuditActor::cli(), AuditAction::UserCreated, "alice");
        let user = db.create_user("alice", None, false, &event).expect("user");
        let now = Utc::now();
        let later = now + Duration::hours(12);
        let one = HashedToken::of("one");
        db.create_session(&one, user.id, "csrf", now, later)
            .expect("create");
        let found = db.find_session(&one, now).expect("find").expect("live");
        assert_eq!(found.user_id, user.id);
        assert_eq!(found.csrf_token, "csrf");
        let two = HashedToken::of("two");
        assert_eq!(db.find_session(&two, now).expect("find"), None);
        assert_eq!(db.find_session(&one, later).expect("find"), None, "ended");
        db.delete_session(&one).expect("delete");
        assert_eq!(db.find_session(&one, now).expect("find"), None);
    }
}
