//! What the server does on its own schedule, on one thread of its own: the summaries of
//! refusals held back from the access and audit logs once their window ends (so a flood
//! that stops is still reported), and the audit retention.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::AppState;
use crate::request::refusals;

/// How often summaries are looked at; a window is a minute, so one is reported at most
/// this late.
const TICK: Duration = Duration::from_secs(10);
/// How often the audit retention runs (and once at start).
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the thread. `retention`: delete audit events older than this (`None`: keep all).
pub fn spawn(state: Arc<AppState>, retention: Option<chrono::Duration>) {
    let started = std::thread::Builder::new()
        .name("housekeeping".into())
        .spawn(move || {
            let mut last_prune: Option<Instant> = None;
            loop {
                if let Some(keep) = retention {
                    if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                        prune(&state, keep);
                        last_prune = Some(Instant::now());
                    }
                }
                std::thread::sleep(TICK);
                refusals::flush_log_summary();
                state.auth.flush_audit_summary();
            }
        });
    if let Err(e) = started {
        log::error!("cannot start the housekeeping thread: {e}");
    }
}

fn prune(state: &AppState, keep: chrono::Duration) {
    let before = Utc::now() - keep;
    match state.manage.audit.prune(before) {
        Ok(0) => {}
        Ok(n) => log::info!("audit retention: deleted {n} events before {before}"),
        Err(e) => log::warn!("audit retention failed: {e}"),
    }
}
