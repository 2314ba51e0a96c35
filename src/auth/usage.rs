//! `last_used_at` without a database write per request: uses are collected in memory and
//! written in one transaction every few seconds (`serve --usage-flush-ms`) by a background
//! thread. A token's first use becomes an audit event in that same transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::domain::audit::NewAuditEvent;
use crate::domain::store::DeployTokenStore;

#[derive(Default)]
pub struct UsageRecorder {
    pending: Mutex<HashMap<i64, DateTime<Utc>>>,
}

impl UsageRecorder {
    pub fn touch(&self, token_id: i64, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(token_id, at);
    }

    /// Writes what has accumulated; on failure the uses are logged and dropped, since
    /// `last_used_at` is informational and must never block authentication.
    pub fn flush(&self, store: &dyn DeployTokenStore) {
        let batch: Vec<(i64, DateTime<Utc>)> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().collect()
        };
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.record_deploy_token_uses(&batch, &NewAuditEvent::first_use) {
            log::warn!(
                "could not record last_used_at for {} tokens: {e}",
                batch.len()
            );
        }
    }

    pub fn spawn_flusher(self: &Arc<Self>, store: Arc<dyn DeployTokenStore>, every: Duration) {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("last-used-flush".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                me.flush(store.as_ref());
            })
            .map(|_| ())
            .unwrap_or_else(|e| log::error!("cannot start last_used_at flusher: {e}"));
    }
}
