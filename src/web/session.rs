//! The browser session's cookie: what it holds, how it is made and how it is read back.
//!
//! The cookie value is 256 random bits; the database keeps only its SHA-256, so a leaked
//! database (or backup) opens no session. The cookie is `HttpOnly` (no script reads it),
//! `SameSite=Strict` (no other site's page sends it along) and `Secure` whenever the site is
//! reached over https, so it never crosses the network in clear.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::HttpRequest;
use chrono::{DateTime, Duration, Utc};

use super::csrf;
use crate::domain::secret::{random_token, HashedToken};

pub const COOKIE: &str = "wvs_session";
/// A session ends this long after sign-in, whatever happens in between.
pub const LIFETIME_HOURS: i64 = 12;

/// The SHA-256 of a cookie value: the session's identity in storage.
pub type SessionDigest = HashedToken;

/// A session about to be stored: the cookie value goes to the browser only.
pub struct NewSession {
    pub cookie_value: String,
    pub digest: SessionDigest,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl NewSession {
    pub fn generate(now: DateTime<Utc>) -> Self {
        let cookie_value = random_token(32);
        Self {
            digest: digest(&cookie_value),
            cookie_value,
            csrf_token: csrf::generate(),
            expires_at: now + Duration::hours(LIFETIME_HOURS),
        }
    }
}

pub fn digest(cookie_value: &str) -> SessionDigest {
    HashedToken::of(cookie_value)
}

/// The digest of the session cookie the request carries, if any well-formed one.
pub fn presented(req: &HttpRequest) -> Option<SessionDigest> {
    let cookie = req.cookie(COOKIE)?;
    let value = cookie.value();
    // Our values are 43 URL-safe characters; anything else cannot be a session.
    (value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| digest(value))
}

/// A cookie with the flags every cookie of ours carries.
pub fn cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::hours(LIFETIME_HOURS))
        .finish()
}

/// Tells the browser to drop the cookie `name`.
pub fn removal(name: &'static str, secure: bool) -> Cookie<'static> {
    let mut c = cookie(name, String::new(), secure);
    c.make_removal();
    c
}

/// Is the site reached over https? Either the configured public URL says so, or this very
/// request came over TLS (directly or as a trusted proxy's `X-Forwarded-Proto`, which
/// actix reads; a client lying about it only makes its own cookie stricter).
pub fn secure_context(req: &HttpRequest, public_url: Option<&str>) -> bool {
    public_url.is_some_and(|u| u.starts_with("https://"))
        || req.connection_info().scheme() == "https"
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn new_sessions_store_only_a_digest_of_a_random_value() {
        let now = Utc::now();
        let a = NewSession::generate(now);
        let b = NewSession::generate(now);
        assert_eq!(a.cookie_value.len(), 43);
        assert_ne!(a.cookie_value, b.cookie_value);
        assert_eq!(a.digest, digest(&a.cookie_value));
        assert_ne!(a.digest.as_bytes(), a.cookie_value.as_bytes());
        assert_eq!(a.expires_at, now + Duration::hours(LIFETIME_HOURS));
    }

    #[test]
    fn cookie_flags() {
        let c = cookie(COOKIE, "v".into(), true).to_string();
        for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(c.contains(flag), "{c} lacks {flag}");
        }
        assert!(!cookie(COOKIE, "v".into(), false)
            .to_string()
            .contains("Secure"));
    }

    #[test]
    fn only_well_formed_cookies_are_looked_up() {
        let s = NewSession::generate(Utc::now());
        let req = TestRequest::default()
            .cookie(Cookie::new(COOKIE, s.cookie_value.clone()))
            .to_http_request();
        assert_eq!(presented(&req), Some(s.digest));
        let req = TestRequest::default()
            .cookie(Cookie::new(COOKIE, "short"))
            .to_http_request();
        assert_eq!(presented(&req), None);
        assert_eq!(presented(&TestRequest::default().to_http_request()), None);
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let req = TestRequest::default().to_http_request();
        assert!(!secure_context(&req, None));
        assert!(!secure_context(&req, Some("http://auth.local")));
        assert!(secure_context(&req, Some("https://auth.example.com")));
    }
}
