//! The `sessions` table: browser sign-ins of the settings pages. A row is keyed by the
//! SHA-256 of the cookie value (the value itself is never stored) and carries the
//! session's CSRF token and its end.

use chrono::{DateTime, Utc};

use super::{DbError, PostgresStore};
use crate::domain::secret::HashedToken;
use crate::domain::store::{SessionStore, StoreError, StoredSession, MAX_FLASHES_PER_SESSION};
use crate::store::rows::fmt_time;
use crate::store::rows::sessions::{RawSession, COLUMNS};

impl SessionStore for PostgresStore {
    /// Sign-ins are rare, so dropping ended sessions here costs nothing that matters. The
    /// two statements need no transaction: a sweep racing another instance's only removes
    /// rows that have ended for both.
    fn create_session(
        &self,
        digest: &HashedToken,
        user_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        // Fixed-width RFC 3339 UTC strings compare like the instants they name, in byte
        // order: `expires_at` has the database's collation, so ask for "C" (SQLite's
        // BINARY) rather than trust the locale's.
        conn.execute(
            "DELETE FROM sessions WHERE expires_at COLLATE \"C\" <= $1",
            &[&fmt_time(now)],
        )?;
        conn.execute(
            "INSERT INTO sessions (id_digest, user_id, csrf_token, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &digest.as_bytes(),
                &user_id,
                &csrf_token,
                &fmt_time(now),
                &fmt_time(expires_at),
            ],
        )?;
        Ok(())
    }

    /// Read on every request of a signed-in page, hence the statement kept prepared.
    fn find_session(
        &self,
        digest: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredSession>, StoreError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM sessions WHERE id_digest = $1"
        ))?;
        let Some(row) = conn.query_opt(&statement, &[&digest.as_bytes()])? else {
            return Ok(None);
        };
        let raw = RawSession {
            user_id: row.try_get(0)?,
            csrf_token: row.try_get(1)?,
            expires_at: row.try_get(2)?,
        };
        Ok(raw.live_at(now).map_err(DbError::from)?)
    }

    fn delete_session(&self, digest: &HashedToken) -> Result<(), StoreError> {
        self.conn()?.execute(
            "DELETE FROM sessions WHERE id_digest = $1",
            &[&digest.as_bytes()],
        )?;
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
        let mut tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO flashes (session_digest, page, sealed, created_at) VALUES ($1, $2, $3, $4)",
            &[&session.as_bytes(), &page, &sealed, &fmt_time(now)],
        )?;
        tx.execute(
            "DELETE FROM flashes WHERE session_digest = $1 AND (created_at < $2 OR id NOT IN \
             (SELECT id FROM flashes WHERE session_digest = $1 ORDER BY id DESC LIMIT $3))",
            &[
                &session.as_bytes(),
                &fmt_time(expired_before),
                &MAX_FLASHES_PER_SESSION,
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
        // One statement deletes and returns: two instances rendering the page at once
        // cannot both show a secret.
        let rows = self.conn()?.query(
            "WITH taken AS (DELETE FROM flashes WHERE session_digest = $1 AND page = $2 \
             RETURNING id, sealed, created_at) \
             SELECT sealed FROM taken WHERE created_at >= $3 ORDER BY id",
            &[&session.as_bytes(), &page, &fmt_time(not_before)],
        )?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<_, Vec<u8>>(0))
            .collect::<Result<_, _>>()?)
    }
}
