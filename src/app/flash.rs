//! One-shot messages between a POST and the page it redirects to.
//!
//! After creating a token the browser is redirected (POST/redirect/GET) so that reloading
//! the page never submits the form again; the new secret must survive exactly that one
//! redirect. Why in the database: behind a balancer without sticky sessions the redirect
//! may reach another instance, which must still show the secret once (SPEC §7). Why sealed:
//! the secret is otherwise never stored, so it is kept only as AES-256-GCM ciphertext under
//! the key in the keys directory (`keys::seal`), bound to its session and page, and the row
//! is deleted when the page first renders it, so it never travels in a URL or a cookie and
//! a reload shows it no more. Unclaimed flashes end after a few minutes, and with their
//! session (sign-out, expiry).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::{Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::secret::HashedToken;
use crate::domain::store::{Store, StoreError};
use crate::keys::seal::{Purpose, Sealer};
use crate::keys::KeyError;

/// How long an unclaimed flash is kept.
pub const LIFETIME_SECS: i64 = 300;

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

/// The sealed form: `Flash` with the secret as plain text, which only ever exists inside
/// the seal.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Sealed {
    Created {
        name: String,
        username: String,
        secret: String,
    },
    Revoked {
        name: String,
    },
    Deleted {
        what: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum FlashError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot seal a one-shot message: {0}")]
    Key(#[from] KeyError),
}

/// The flashes of every session, in the database.
pub struct FlashStore {
    store: Arc<dyn Store>,
    keys_dir: PathBuf,
    /// Loaded (or made) on first use, so a server whose pages are never used never writes
    /// the seal key.
    sealer: OnceLock<Sealer>,
}

impl FlashStore {
    pub fn new(store: Arc<dyn Store>, keys_dir: PathBuf) -> Self {
        Self {
            store,
            keys_dir,
            sealer: OnceLock::new(),
        }
    }

    /// Keeps `flash` for the next rendering of `page` in the session `session`. Runs on the
    /// blocking pool.
    pub fn put(&self, session: &HashedToken, page: &str, flash: Flash) -> Result<(), FlashError> {
        let sealed = match flash {
            Flash::Created {
                name,
                username,
                secret,
            } => Sealed::Created {
                name,
                username,
                secret: secret.expose_secret().to_string(),
            },
            Flash::Revoked { name } => Sealed::Revoked { name },
            Flash::Deleted { what } => Sealed::Deleted { what },
        };
        let plain = serde_json::to_vec(&sealed)
            .map_err(|e| KeyError::Crypto(format!("cannot encode a flash: {e}")))?;
        let sealed = self
            .sealer()?
            .seal_for(&Purpose::Flash(session, page), &plain)?;
        let now = Utc::now();
        self.store.put_flash(
            session,
            page,
            &sealed,
            now,
            now - Duration::seconds(LIFETIME_SECS),
        )?;
        Ok(())
    }

    /// Removes and returns this session's flashes for `page`, oldest first. One that does
    /// not open (sealed under another key, or for another session or page) is dropped.
    pub fn take(&self, session: &HashedToken, page: &str) -> Result<Vec<Flash>, FlashError> {
        let not_before = Utc::now() - Duration::seconds(LIFETIME_SECS);
        let rows = self.store.take_flashes(session, page, not_before)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let sealer = self.sealer()?;
        let purpose = Purpose::Flash(session, page);
        Ok(rows
            .iter()
            .filter_map(|sealed| {
                let plain = sealer.open_for(&purpose, sealed).ok()?;
                match serde_json::from_slice::<Sealed>(&plain).ok()? {
                    Sealed::Created {
                        name,
                        username,
                        secret,
                    } => Some(Flash::Created {
                        name,
                        username,
                        secret: SecretString::from(secret),
                    }),
                    Sealed::Revoked { name } => Some(Flash::Revoked { name }),
                    Sealed::Deleted { what } => Some(Flash::Deleted { what }),
                }
            })
            .collect())
    }

    fn sealer(&self) -> Result<&Sealer, KeyError> {
        if let Some(sealer) = self.sealer.get() {
            return Ok(sealer);
        }
        let loaded = Sealer::load_or_create(&self.keys_dir)?;
        Ok(self.sealer.get_or_init(|| loaded))
    }
}
