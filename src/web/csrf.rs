//! CSRF tokens: every form carries one and every POST is refused without it.
//!
//! Signed-in forms carry the session's own token (kept server-side in the session row, so
//! it cannot be forged from another site). The sign-in form has no session yet, so it uses
//! a double-submit pair instead: a random value in an HttpOnly, SameSite=Strict cookie and
//! the same value in a hidden field. Both comparisons run in constant time so the token
//! cannot be guessed byte by byte from response timings.

use subtle::ConstantTimeEq;

use crate::domain::secret::random_token;

/// A form whose only field is the CSRF token (sign-out, revoke).
#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    pub csrf_token: Option<String>,
}

/// Name of the hidden form field every form carries.
pub const FIELD: &str = "csrf_token";
/// The sign-in form's double-submit cookie.
pub const SIGN_IN_COOKIE: &str = "wvs_sign_in_csrf";

/// A fresh 256-bit token, URL-safe base64 without padding (43 characters).
pub fn generate() -> String {
    random_token(32)
}

/// True when `presented` is exactly `expected`; an empty expected value never matches.
pub fn matches(expected: &str, presented: Option<&str>) -> bool {
    let Some(presented) = presented else {
        return false;
    };
    !expected.is_empty()
        && expected.len() == presented.len()
        && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_and_distinct() {
        let a = generate();
        let b = generate();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
    }

    #[test]
    fn only_the_exact_token_matches() {
        let t = generate();
        assert!(matches(&t, Some(&t)));
        assert!(!matches(&t, None));
        assert!(!matches(&t, Some("")));
        assert!(!matches(&t, Some(&t[..42])));
        assert!(!matches(&t, Some(&generate())));
        assert!(!matches("", Some("")));
    }
}
