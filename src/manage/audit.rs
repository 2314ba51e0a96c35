//! Reading the audit log: administrators and the CLI.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Actor, ManageError};
use crate::domain::audit::{AuditAction, AuditEvent, NewAuditEvent};
use crate::domain::store::Store;

pub struct AuditManager {
    store: Arc<dyn Store>,
}

impl AuditManager {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Events at or after `since`, oldest first, at most `limit`.
    pub fn list(
        &self,
        actor: Actor<'_>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, ManageError> {
        actor.require(|u| u.user.is_admin)?;
        Ok(self.store.audit_events(since, limit)?)
    }

    /// The operator's retention (`--audit-retention-days`): deletes events older than
    /// `before` in short batches and records how many went, so the log says it was pruned.
    pub fn prune(&self, before: DateTime<Utc>) -> Result<u64, ManageError> {
        const BATCH: u32 = 5_000;
        let mut total = 0;
        loop {
            let deleted = self.store.prune_audit(before, BATCH)?;
            total += deleted;
            if deleted < u64::from(BATCH) {
                break;
            }
        }
        if total > 0 {
            self.store.record_audit(&NewAuditEvent {
                action: AuditAction::AuditPruned,
                actor: Some(RETENTION_ACTOR.to_string()),
                actor_user_id: None,
                deploy_token_id: None,
                target: None,
                detail: Some(format!(
                    "deleted {total} events before {}",
                    before.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                )),
            })?;
        }
        Ok(total)
    }
}

/// The actor of the events the server writes on its own schedule.
pub const RETENTION_ACTOR: &str = "retention";
