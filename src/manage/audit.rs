//! Reading the audit log: administrators and the CLI.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Actor, ManageError};
use crate::domain::audit::AuditEvent;
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
}
