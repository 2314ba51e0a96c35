//! One-shot messages between a POST and the page it redirects to.
//!
//! After creating a token the browser is redirected (POST/redirect/GET) so that reloading
//! the page never submits the form again; the new secret must survive exactly that one
//! redirect. It is kept here, in memory, keyed by the session's digest and the page it
//! belongs to, and removed when that page is first rendered — so it never travels in a
//! URL or a cookie, and a reload shows it no more. Unclaimed entries expire after a few
//! minutes. (Behind a load balancer, the redirect must reach the same instance for the
//! secret to show; without it the token exists but its secret is lost, as if unread.)

use std::sync::Mutex;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::domain::secret::HashedToken;

/// How long an unclaimed flash is kept.
const LIFETIME: Duration = Duration::from_secs(300);
/// Bound on stored flashes, so a client looping on POSTs cannot grow memory without end.
const MAX_ENTRIES: usize = 10_000;

/// What the redirected-to page shows once.
pub enum Flash {
    /// A token was created; its secret is shown this one time.
    Created {
        name: String,
        username: String,
        secret: SecretString,
    },
    /// A token was revoked.
    Revoked { name: String },
    /// A package version was deleted (its name and version).
    Deleted { what: String },
}

struct Entry {
    session: HashedToken,
    page: String,
    flash: Flash,
    at: Instant,
}

#[derive(Default)]
pub struct FlashStore {
    entries: Mutex<Vec<Entry>>,
}

impl FlashStore {
    /// Keeps `flash` for the next rendering of `page` in the session `session`.
    pub fn put(&self, session: HashedToken, page: &str, flash: Flash) {
        let now = Instant::now();
        let mut entries = self.lock();
        entries.retain(|e| now.duration_since(e.at) < LIFETIME);
        if entries.len() >= MAX_ENTRIES {
            entries.remove(0);
        }
        entries.push(Entry {
            session,
            page: page.to_string(),
            flash,
            at: now,
        });
    }

    /// Removes and returns this session's flashes for `page`, oldest first.
    pub fn take(&self, session: &HashedToken, page: &str) -> Vec<Flash> {
        let now = Instant::now();
        let mut entries = self.lock();
        let mut taken = Vec::new();
        let mut kept = Vec::with_capacity(entries.len());
        for e in entries.drain(..) {
            if now.duration_since(e.at) >= LIFETIME {
                continue;
            }
            if &e.session == session && e.page == page {
                taken.push(e.flash);
            } else {
                kept.push(e);
            }
        }
        *entries = kept;
        taken
    }

    /// Forgets everything of a session (sign-out).
    pub fn forget(&self, session: &HashedToken) {
        self.lock().retain(|e| &e.session != session);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn revoked(name: &str) -> Flash {
        Flash::Revoked {
            name: name.to_string(),
        }
    }

    #[test]
    fn a_flash_is_shown_once_and_only_to_its_session_and_page() {
        let store = FlashStore::default();
        let (one, two) = (HashedToken::of("1"), HashedToken::of("2"));
        store.put(one.clone(), "project:1", revoked("a"));
        assert!(store.take(&two, "project:1").is_empty());
        assert!(store.take(&one, "project:2").is_empty());
        assert_eq!(store.take(&one, "project:1").len(), 1);
        assert!(store.take(&one, "project:1").is_empty());
    }

    #[test]
    fn sign_out_forgets_the_session() {
        let store = FlashStore::default();
        let one = HashedToken::of("1");
        store.put(one.clone(), "p", revoked("a"));
        store.forget(&one);
        assert!(store.take(&one, "p").is_empty());
    }
}
