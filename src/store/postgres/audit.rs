//! The `audit_events` table: append-only, read newest last.

use chrono::{DateTime, Utc};
use postgres::GenericClient;

use super::{DbError, PostgresStore};
use crate::domain::audit::{AuditEvent, NewAuditEvent};
use crate::domain::store::{AuditLog, StoreError};
use crate::store::rows::{fmt_time, parse_time};

/// Inserts one event inside the caller's transaction, so the event and the change it
/// describes commit together.
pub(super) fn insert(
    conn: &mut impl GenericClient,
    e: &NewAuditEvent,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    conn.execute(
        "INSERT INTO audit_events (at, action, actor, actor_user_id, deploy_token_id, target, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &fmt_time(at),
            &e.action.as_str(),
            &e.actor,
            &e.actor_user_id,
            &e.deploy_token_id,
            &e.target,
            &e.detail,
        ],
    )?;
    Ok(())
}

impl AuditLog for PostgresStore {
    fn record_audit(&self, event: &NewAuditEvent) -> Result<(), StoreError> {
        Ok(insert(&mut **self.conn()?, event, Utc::now())?)
    }

    fn prune_audit(&self, before: DateTime<Utc>, batch: u32) -> Result<u64, StoreError> {
        let deleted = self.conn()?.execute(
            "DELETE FROM audit_events WHERE id IN \
             (SELECT id FROM audit_events WHERE at < $1 ORDER BY id LIMIT $2)",
            &[&fmt_time(before), &i64::from(batch)],
        )?;
        Ok(deleted)
    }

    fn audit_events(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let since = since.map(fmt_time).unwrap_or_default();
        let rows = self.conn()?.query(
            "SELECT id, at, action, actor, actor_user_id, deploy_token_id, target, detail \
             FROM audit_events WHERE at >= $1 ORDER BY id LIMIT $2",
            &[&since, &i64::from(limit)],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                Ok(AuditEvent {
                    id: r.try_get(0)?,
                    at: parse_time(r.try_get(1)?)?,
                    action: r.try_get(2)?,
                    actor: r.try_get(3)?,
                    actor_user_id: r.try_get(4)?,
                    deploy_token_id: r.try_get(5)?,
                    target: r.try_get(6)?,
                    detail: r.try_get(7)?,
                })
            })
            .collect::<Result<_, DbError>>()?)
    }
}
