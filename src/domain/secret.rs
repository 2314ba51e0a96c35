//! Random secrets and their digests: the one generator and the one digest type behind
//! deploy tokens, personal access tokens, session cookies and CSRF tokens.
//!
//! A secret is shown once; storage and lookups only ever see its SHA-256 digest, so a leaked
//! database (or backup) holds nothing that signs in.

use std::fmt;

use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Random bytes behind a token prefix: 192 bits, comfortably above the 128 required.
pub const TOKEN_BYTES: usize = 24;

/// `bytes` random bytes from the operating system's CSPRNG as URL-safe base64 without
/// padding, so the result travels in headers, URLs, cookies and forms unescaped.
pub fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// A freshly generated secret. Wrapped in `SecretString` so it never leaks through `Debug`.
pub struct PlainSecret(SecretString);

impl PlainSecret {
    /// `prefix` followed by [`TOKEN_BYTES`] random bytes: the prefix tells secret scanners
    /// and people what the secret is (`wvsdt-`, `wvspat-`).
    pub fn with_prefix(prefix: &str) -> Self {
        Self(SecretString::from(format!(
            "{prefix}{}",
            random_token(TOKEN_BYTES)
        )))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn into_secret(self) -> SecretString {
        self.0
    }

    pub fn hashed(&self) -> HashedToken {
        HashedToken::of(self.expose())
    }
}

/// SHA-256 of a secret: the only form in which secrets are stored or looked up.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct HashedToken([u8; 32]);

impl HashedToken {
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The first `n` bytes as lower-case hex: a short, stable name for a value that must
    /// not appear itself (a throttle key for a secret-looking username).
    pub fn hex_prefix(&self, n: usize) -> String {
        self.0[..n.min(32)]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for HashedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HashedToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_distinct_and_sized() {
        let a = random_token(32);
        let b = random_token(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(random_token(TOKEN_BYTES).len(), 32);
    }

    #[test]
    fn secrets_digest_to_themselves_only() {
        let a = PlainSecret::with_prefix("p-");
        let b = PlainSecret::with_prefix("p-");
        assert!(a.expose().starts_with("p-"));
        assert_eq!(a.hashed(), HashedToken::of(a.expose()));
        assert_ne!(a.hashed(), b.hashed());
        assert_eq!(format!("{:?}", a.hashed()), "HashedToken(..)");
        assert_eq!(HashedToken::of("x").hex_prefix(2).len(), 4);
    }
}
