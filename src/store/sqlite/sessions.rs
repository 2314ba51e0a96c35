//! The `sessions` table: browser sign-ins of the settings pages. A row is keyed by the
//! SHA-256 of the cookie value (the value itself is never stored) and carries the
//! session's CSRF token and its end.

use chrono::{DateTime, Utc};
use rusqlite::{params, OptionalExtension};

use super::{fmt_time, DbError, SqliteStore};
use crate::domain::secret::HashedToken;
use crate::domain::store::{SessionStore, StoreError, StoredSession, MAX_FLASHES_PER_SESSION};
use crate::store::rows::sessions::{RawSession, COLUMNS};

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
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM sessions WHERE id_digest = ?1"
            ))?
            .query_row([digest.as_bytes()], |r| {
                Ok(RawSession {
                    user_id: r.get(0)?,
                    csrf_token: r.get(1)?,
                    expires_at: r.get(2)?,
                })
            })
            .optional()?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(row.live_at(now).map_err(DbError::from)?)
    }

    fn delete_session(&self, digest: &HashedToken) -> Result<(), StoreError> {
        self.conn()?
            .prepare_cached("DELETE FROM sessions WHERE id_digest = ?1")?
            .execute([digest.as_bytes()])?;
        Ok(())
    }

    fn put_flash(
        &self,
        session: &HashedToken,
        page: &str,
        sealed: &[u8],
        now: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO flashes (session_digest, page, sealed, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![session.as_bytes(), page, sealed, fmt_time(now)],
        )?;
        tx.execute(
            "DELETE FROM flashes WHERE session_digest = ?1 AND (created_at < ?2 OR id NOT IN \
             (SELECT id FROM flashes WHERE session_digest = ?1 ORDER BY id DESC LIMIT ?3))",
            params![
                session.as_bytes(),
                fmt_time(expired_before),
                MAX_FLASHES_PER_SESSION
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn take_flashes(
        &self,
        session: &HashedToken,
        page: &str,
        not_before: DateTime<Utc>,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let conn = self.conn()?;
        let mut rows = conn
            .prepare_cached(
                "DELETE FROM flashes WHERE session_digest = ?1 AND page = ?2 \
                 RETURNING id, sealed, created_at",
            )?
            .query_map(params![session.as_bytes(), page], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING gives no order: oldest first is by id.
        rows.sort_by_key(|(id, _, _)| *id);
        let not_before = fmt_time(not_before);
        Ok(rows
            .into_iter()
            .filter(|(_, _, at)| *at >= not_before)
            .map(|(_, sealed, _)| sealed)
            .collect())
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

    /// Past the bounds of a session's flashes: of 25 put, the newest
    /// MAX_FLASHES_PER_SESSION are kept, one older than the lifetime is not returned, other
    /// sessions keep theirs, and a flash goes with its session.
    #[test]
    fn flashes_are_bounded_per_session_read_once_and_end_with_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteStore::open(&dir.path().join("wvs.db"), 2).expect("db");
        let event = NewAuditEvent::by(&AuditActor::cli(), AuditAction::UserCreated, "alice");
        let user = db.create_user("alice", None, false, &event).expect("user");
        let now = Utc::now();
        let (one, two) = (HashedToken::of("one"), HashedToken::of("two"));
        for s in [&one, &two] {
            db.create_session(s, user.id, "csrf", now, now + Duration::hours(1))
                .expect("session");
        }
        let long_ago = now - Duration::hours(1);
        for i in 0..25u8 {
            db.put_flash(&one, "p", &[i], now, long_ago).expect("put");
        }
        db.put_flash(&two, "p", b"two", now, long_ago).expect("put");
        let taken = db.take_flashes(&one, "p", long_ago).expect("take");
        let expected: Vec<Vec<u8>> = (5..25u8).map(|i| vec![i]).collect();
        assert_eq!(MAX_FLASHES_PER_SESSION, 20);
        assert_eq!(taken, expected, "the newest 20, oldest first");
        assert!(db
            .take_flashes(&one, "p", long_ago)
            .expect("take")
            .is_empty());
        // Too old to show: not returned, and gone.
        db.put_flash(&one, "p", b"old", long_ago, long_ago)
            .expect("put");
        assert!(db.take_flashes(&one, "p", now).expect("take").is_empty());
        assert!(db
            .take_flashes(&one, "p", long_ago)
            .expect("take")
            .is_empty());
        // Another page keeps its own; a session's flashes end with it.
        db.put_flash(&two, "q", b"q", now, long_ago).expect("put");
        db.delete_session(&two).expect("sign out");
        assert!(db
            .take_flashes(&two, "p", long_ago)
            .expect("take")
            .is_empty());
        assert!(db
            .take_flashes(&two, "q", long_ago)
            .expect("take")
            .is_empty());
    }
}
