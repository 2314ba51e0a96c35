//! User passwords: argon2id, stored as PHC strings (salt and parameters included), so the
//! parameters can be raised later without invalidating existing hashes.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use secrecy::{ExposeSecret, SecretString};

/// Shorter passwords are refused at creation; 1024 bounds the hashing work an attacker can
/// ask for.
pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be {MIN_LEN} to {MAX_LEN} characters")]
    BadLength,
    #[error("cannot hash password: {0}")]
    Hash(String),
}

/// Is the password acceptable for a new account (before any hashing work is spent)?
pub fn validate_password(password: &SecretString) -> Result<(), PasswordError> {
    let len = password.expose_secret().chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(PasswordError::BadLength);
    }
    Ok(())
}

pub fn hash_password(password: &SecretString) -> Result<String, PasswordError> {
    validate_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Constant-time inside argon2; a malformed stored hash or an oversized attempt is simply
/// "no".
pub fn verify_password(stored: &str, attempt: &str) -> bool {
    if attempt.len() > MAX_LEN * 4 {
        return false;
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default()
            .verify_password(attempt.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let pw = SecretString::from("correct horse".to_string());
        let a = hash_password(&pw).expect("hash");
        let b = hash_password(&pw).expect("hash");
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password(&a, "correct horse"));
        assert!(!verify_password(&a, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(hash_password(&SecretString::from("short".to_string())).is_err());
    }
}
