//! The `audit_events` table: append-only, read newest last.

use chrono::{DateTime, Utc};
use rusqlite::params;

use super::{fmt_time, parse_time, DbError, SqliteStore};
use crate::domain::audit::{AuditEvent, NewAuditEvent};
use crate::domain::store::{AuditLog, StoreError};

/// Inserts one event inside the caller's transaction, so the event and the change it
/// describes commit together.
pub(super) fn insert(
    conn: &rusqlite::Connection,
    e: &NewAuditEvent,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.prepare_cached(
        "INSERT INTO audit_events (at, action, actor, actor_user_id, deploy_token_id, target, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        fmt_time(at),
        e.action.as_str(),
        e.actor,
        e.actor_user_id,
        e.deploy_token_id,
        e.target,
        e.detail
    ])?;
    Ok(())
}

impl AuditLog for SqliteStore {
    fn record_audit(&self, event: &NewAuditEvent) -> Result<(), StoreError> {
        Ok(insert(&*self.conn()?, event, Utc::now())?)
    }

    fn prune_audit(&self, before: DateTime<Utc>, batch: u32) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let deleted = conn
            .prepare_cached(
                "DELETE FROM audit_events WHERE id IN \
                 (SELECT id FROM audit_events WHERE at < ?1 ORDER BY id LIMIT ?2)",
            )
            .map_err(DbError::from)?
            .execute(params![fmt_time(before), batch])
            .map_err(DbError::from)?;
        Ok(deleted as u64)
    }

    fn audit_events(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT id, at, action, actor, actor_user_id, deploy_token_id, target, detail \
             FROM audit_events WHERE at >= ?1 ORDER BY id LIMIT ?2",
        )?;
        let since = since.map(fmt_time).unwrap_or_default();
        let rows = stmt
            .query_map(params![since, limit], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, action, actor, actor_user_id, deploy_token_id, target, detail)| {
                    Ok(AuditEvent {
                        id,
                        at: parse_time(&at)?,
                        action,
                        actor,
                        actor_user_id,
                        deploy_token_id,
                        target,
                        detail,
                    })
                },
            )
            .collect::<Result<_, DbError>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{AuditAction, AuditActor};
    use chrono::Duration;

    #[test]
    fn pruning_deletes_old_events_in_batches_and_keeps_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = SqliteStore::open(&dir.path().join("wvs.db"), 2).expect("db");
        let now = Utc::now();
        let event = NewAuditEvent::by(&AuditActor::cli(), AuditAction::AuthFailure, "x");
        {
            let conn = db.conn().expect("conn");
            for days in 0..10 {
                insert(&conn, &event, now - Duration::days(days)).expect("insert");
            }
        }
        let before = now - Duration::days(4) - Duration::hours(1);
        assert_eq!(db.prune_audit(before, 3).expect("prune"), 3);
        assert_eq!(db.prune_audit(before, 3).expect("prune"), 2);
        assert_eq!(db.prune_audit(before, 3).expect("prune"), 0);
        let left = db.audit_events(None, 100).expect("list");
        assert_eq!(left.len(), 5);
        assert!(left.iter().all(|e| e.at > before), "{left:?}");
    }
}
