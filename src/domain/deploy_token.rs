//! Deploy tokens: scopes, secrets, digests, usernames and expiry.
//!
//! The secret is shown once and then exists only as a SHA-256 digest, so a database leak
//! yields nothing that logs in. The digest is the lookup key (one indexed read); the
//! username is then compared in constant time.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use subtle::ConstantTimeEq;

use super::path::NamespacePath;
use super::secret::PlainSecret;

/// Every deploy-token secret starts with this, so secret scanners and humans recognise it.
pub const SECRET_PREFIX: &str = "wvsdt-";
pub const MAX_NAME_LEN: usize = 255;
/// A project token with exactly this name is handed to the project's CI jobs as
/// `CI_DEPLOY_USER` / `CI_DEPLOY_PASSWORD`, so its secret is kept sealed (SPEC §1).
pub const CI_TOKEN_NAME: &str = "wvs-deploy-token";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("unknown scope {0:?} (expected read_repository, read_registry, write_registry, read_package_registry, write_package_registry)")]
    UnknownScope(String),
    #[error("at least one scope is required")]
    NoScopes,
    #[error("name must be 1 to {MAX_NAME_LEN} characters without control characters")]
    BadName,
    #[error("username {0:?} must match ^[A-Za-z0-9][A-Za-z0-9._+-]{{0,254}}$")]
    BadUsername(String),
    #[error("username {0:?} is reserved: wvs+deploy-token-* names belong to default usernames, wvsdt-* and wvspat-* to secrets")]
    ReservedUsername(String),
    #[error("username {0:?} is a user's: a token must not speak as a person")]
    UserName(String),
    #[error("expires_at {0:?} is not a date of the form YYYY-MM-DD")]
    BadDate(String),
    #[error("expires_at {0} is not in the future")]
    PastDate(NaiveDate),
}

/// What a deploy token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TokenScope {
    ReadRepository,
    ReadRegistry,
    WriteRegistry,
    ReadPackageRegistry,
    WritePackageRegistry,
}

impl TokenScope {
    pub const ALL: [TokenScope; 5] = [
        TokenScope::ReadRepository,
        TokenScope::ReadRegistry,
        TokenScope::WriteRegistry,
        TokenScope::ReadPackageRegistry,
        TokenScope::WritePackageRegistry,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::ReadRepository => "read_repository",
            TokenScope::ReadRegistry => "read_registry",
            TokenScope::WriteRegistry => "write_registry",
            TokenScope::ReadPackageRegistry => "read_package_registry",
            TokenScope::WritePackageRegistry => "write_package_registry",
        }
    }
}

impl FromStr for TokenScope {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenScope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| TokenError::UnknownScope(s.to_string()))
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses `a,b` (or a list of such pieces) into a sorted, de-duplicated, non-empty set.
pub fn parse_scopes<'a, I: IntoIterator<Item = &'a str>>(
    raw: I,
) -> Result<Vec<TokenScope>, TokenError> {
    let mut scopes = Vec::new();
    for piece in raw {
        for s in piece.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            scopes.push(s.parse::<TokenScope>()?);
        }
    }
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(TokenError::NoScopes);
    }
    Ok(scopes)
}

pub fn validate_name(name: &str) -> Result<(), TokenError> {
    let len = name.chars().count();
    if len == 0 || len > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(TokenError::BadName);
    }
    Ok(())
}

/// Custom usernames travel in Basic headers and URLs, so no shell or URL specials.
pub fn validate_username(username: &str) -> Result<(), TokenError> {
    let b = username.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'-'));
    if !ok {
        return Err(TokenError::BadUsername(username.to_string()));
    }
    // Another token's default name would make this token look like that one in JWT `sub`
    // and in registry logs; a secret-looking one would be redacted from every log line.
    let reserved = [
        DEFAULT_USERNAME_PREFIX,
        SECRET_PREFIX,
        super::personal_access_token::PAT_PREFIX,
    ];
    if reserved.iter().any(|p| username.starts_with(p)) {
        return Err(TokenError::ReservedUsername(username.to_string()));
    }
    Ok(())
}

/// Parses `YYYY-MM-DD` and insists it lies after `today` (UTC): a token expiring today has
/// already expired at midnight.
pub fn parse_expiry(raw: &str, today: NaiveDate) -> Result<NaiveDate, TokenError> {
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|_| raw.len() == 10)
        .ok_or_else(|| TokenError::BadDate(raw.to_string()))?;
    if date <= today {
        return Err(TokenError::PastDate(date));
    }
    Ok(date)
}

/// A token with `expires_at = D` works until `D`T00:00:00Z and is refused from that instant.
pub fn is_expired(expires_at: Option<NaiveDate>, now: DateTime<Utc>) -> bool {
    match expires_at {
        None => false,
        Some(date) => now >= date.and_time(chrono::NaiveTime::MIN).and_utc(),
    }
}

/// A new deploy-token secret: `wvsdt-` and 192 random bits.
pub fn generate_secret() -> PlainSecret {
    PlainSecret::with_prefix(SECRET_PREFIX)
}

/// Whom a token belongs to. Group tokens cover every project below the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    Project { id: i64, path: NamespacePath },
    Group { id: i64, path: NamespacePath },
}

impl TokenOwner {
    pub fn path(&self) -> &NamespacePath {
        match self {
            TokenOwner::Project { path, .. } | TokenOwner::Group { path, .. } => path,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            TokenOwner::Project { .. } => "project",
            TokenOwner::Group { .. } => "group",
        }
    }
}

/// A stored deploy token (never its secret).
#[derive(Debug, Clone)]
pub struct DeployToken {
    pub id: i64,
    pub owner: TokenOwner,
    pub name: String,
    /// `None` means the default `wvs+deploy-token-{id}`.
    pub custom_username: Option<String>,
    pub scopes: Vec<TokenScope>,
    pub expires_at: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_by: Option<i64>,
}

impl DeployToken {
    pub fn username(&self) -> String {
        match &self.custom_username {
            Some(name) => name.clone(),
            None => default_username(self.id),
        }
    }

    pub fn has(&self, scope: TokenScope) -> bool {
        self.scopes.contains(&scope)
    }

    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }

    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        is_expired(self.expires_at, now)
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        !self.is_revoked() && !self.is_expired(now)
    }

    /// The instant the token stops working: 00:00:00Z of `expires_at`.
    pub fn expires_at_instant(&self) -> Option<DateTime<Utc>> {
        self.expires_at
            .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
    }

    /// Constant-time comparison of the presented login with this token's username.
    pub fn username_matches(&self, presented: &str) -> bool {
        let expected = self.username();
        expected.len() == presented.len()
            && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
    }

    /// Does this token reach the project at `project_path`? Project tokens: their own
    /// project; group tokens: every project below the group, whenever it was created.
    pub fn covers(&self, project_id: i64, project_path: &NamespacePath) -> bool {
        match &self.owner {
            TokenOwner::Project { id, .. } => *id == project_id,
            TokenOwner::Group { path, .. } => project_path.is_within(path) && project_path != path,
        }
    }
}

const DEFAULT_USERNAME_PREFIX: &str = "wvs+deploy-token-";

pub fn default_username(id: i64) -> String {
    format!("{DEFAULT_USERNAME_PREFIX}{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::HashedToken;
    use chrono::TimeZone;

    #[test]
    fn secret_has_prefix_and_entropy() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(a.expose().starts_with(SECRET_PREFIX));
        assert_eq!(a.expose().len(), SECRET_PREFIX.len() + 32);
        assert_ne!(a.expose(), b.expose());
        assert!(a
            .expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_eq!(a.hashed(), HashedToken::of(a.expose()));
        assert_ne!(a.hashed(), b.hashed());
    }

    #[test]
    fn expiry_is_midnight_utc() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
        let before = Utc
            .with_ymd_and_hms(2026, 11, 30, 23, 59, 59)
            .single()
            .expect("t");
        let at = Utc
            .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
            .single()
            .expect("t");
        assert!(!is_expired(Some(d), before));
        assert!(is_expired(Some(d), at));
        assert!(!is_expired(None, at));
    }

    #[test]
    fn expiry_must_be_future_and_well_formed() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
        assert!(parse_expiry("2026-11-26", today).is_ok());
        assert!(matches!(
            parse_expiry("2026-11-25", today),
            Err(TokenError::PastDate(_))
        ));
        for bad in [
            "2026-13-01",
            "26-11-30",
            "2026-11-30T00:00",
            "tomorrow",
            "2026-2-3",
        ] {
            assert!(
                matches!(parse_expiry(bad, today), Err(TokenError::BadDate(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn scopes_and_usernames() {
        assert_eq!(
            parse_scopes(["write_registry,read_registry", "read_registry"]).expect("ok"),
            vec![TokenScope::ReadRegistry, TokenScope::WriteRegistry]
        );
        assert!(parse_scopes(["api"]).is_err());
        assert!(parse_scopes([""]).is_err());
        assert!(validate_username("ci-bot.1+x_y").is_ok());
        for bad in [
            "",
            "-x",
            "a b",
            "a:b",
            "a/b",
            "a@b",
            &"a".repeat(256),
            "wvs+deploy-token-1",
            "wvsdt-abc",
            "wvspat-abc",
        ] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
        assert!(validate_name("deploy key").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a\nb").is_err());
    }
}
