//! The settings pages in the browser: sign in with a password, then list, create and
//! revoke the deploy tokens of projects and groups. Server-rendered (askama), usable
//! without JavaScript, readable on a phone.
//!
//! Everything lives under `/-/`: `-` can never start a group or project path segment, so
//! these URLs never shadow a git repository's.

// Until the handlers are wired (they need the issue 6 foundation), the pieces are unused.
#![allow(dead_code)]

// Wired once the issue 6 foundation (users, sessions, DeployTokenManager) is on main:
// mod account;
mod csrf;
mod error;
mod flash;
// mod pages;
mod session;
// mod tokens;
mod views;

use flash::FlashStore;

/// What only the settings pages need, kept in `AppState::web`.
pub struct WebState {
    /// `--public-url`: when it is https, cookies are `Secure` even behind a TLS proxy that
    /// does not say so.
    pub public_url: Option<String>,
    flashes: FlashStore,
}

impl WebState {
    pub fn new(public_url: Option<String>) -> Self {
        Self {
            public_url,
            flashes: FlashStore::default(),
        }
    }
}
