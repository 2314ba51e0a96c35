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
