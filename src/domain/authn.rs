//! Turning presented credentials into a [`Principal`]. Shared by every realm, so a token
//! that is revoked or expired fails the same way everywhere, on the very next request.
//!
//! The secret's prefix says what it is: `wvsdt-` a deploy token, `wvspat-` a personal
//! access token, anything else a user's password. Each surface says which of the three it
//! accepts ([`Accepts`]); a secret of another kind is refused before any lookup.

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::deploy_token::SECRET_PREFIX;
use super::password::{hash_password, verify_password};
use super::personal_access_token::PAT_PREFIX;
use super::principal::Principal;
use super::secret::HashedToken;
use super::store::{
    DeployTokenLookup, RealmReads, StoreError, StoreFailure, StoredUser, UserDirectory,
};
use super::user::{UserCredential, UserPrincipal};

/// A username and secret as presented (Basic header, OAuth form, sign-in form).
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub secret: SecretString,
}

/// What a request presented.
#[derive(Clone)]
pub enum Presented {
    /// A username and a secret.
    Login(Credentials),
    /// A secret alone (`PRIVATE-TOKEN`, Bearer, `Deploy-Token`, `X-NuGet-ApiKey`): a
    /// deploy token or a personal access token, never a password.
    Token(SecretString),
}

impl Presented {
    /// The username, when one came with the secret.
    pub fn username(&self) -> Option<&str> {
        match self {
            Presented::Login(c) => Some(&c.username),
            Presented::Token(_) => None,
        }
    }

    pub fn secret(&self) -> &str {
        match self {
            Presented::Login(c) => c.secret.expose_secret(),
            Presented::Token(s) => s.expose_secret(),
        }
    }

    pub fn kind(&self) -> SecretKind {
        SecretKind::of(self.secret())
    }
}

/// What kind of secret was presented, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    DeployToken,
    PersonalAccessToken,
    Password,
}

impl SecretKind {
    pub fn of(secret: &str) -> Self {
        if secret.starts_with(SECRET_PREFIX) {
            SecretKind::DeployToken
        } else if secret.starts_with(PAT_PREFIX) {
            SecretKind::PersonalAccessToken
        } else {
            SecretKind::Password
        }
    }

    fn plural(self) -> &'static str {
        match self {
            SecretKind::DeployToken => "deploy tokens",
            SecretKind::PersonalAccessToken => "personal access tokens",
            SecretKind::Password => "passwords",
        }
    }
}

/// Which kinds of secret a surface accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepts {
    pub deploy_tokens: bool,
    pub personal_access_tokens: bool,
    pub passwords: bool,
}

impl Accepts {
    pub const ALL: Accepts = Accepts {
        deploy_tokens: true,
        personal_access_tokens: true,
        passwords: true,
    };

    fn kind(self, kind: SecretKind) -> bool {
        match kind {
            SecretKind::DeployToken => self.deploy_tokens,
            SecretKind::PersonalAccessToken => self.personal_access_tokens,
            SecretKind::Password => self.passwords,
        }
    }
}

/// The stores authentication reads.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    pub tokens: &'a dyn DeployTokenLookup,
    pub users: &'a dyn UserDirectory,
}

impl<'a> Stores<'a> {
    pub fn of(reads: &'a dyn RealmReads) -> Self {
        Self {
            tokens: reads,
            users: reads,
        }
    }
}

/// Why authentication failed. The messages never contain the secret; the client sees one
/// generic 401 whatever the reason, the log sees the reason.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("unknown secret")]
    UnknownSecret,
    #[error("username does not match the token")]
    UsernameMismatch,
    #[error("token {0} is revoked")]
    Revoked(i64),
    #[error("token {0} has expired")]
    Expired(i64),
    #[error("personal access token {0} is revoked or expired")]
    PatInactive(i64),
    #[error("unknown user or wrong password")]
    BadPassword,
    #[error("user {0} is blocked")]
    Blocked(i64),
    /// A kind of secret this surface does not take (a deploy token at the management API,
    /// a token in the sign-in form's password field).
    #[error("{} are not accepted here", .0.plural())]
    NotAccepted(SecretKind),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StoreFailure for AuthnError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            AuthnError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// The principal `presented` stands for, if this surface `accepts` its kind of secret.
/// Passwords cost an argon2 verification: callers run this off the async workers.
pub fn authenticate(
    stores: Stores<'_>,
    presented: &Presented,
    accepts: Accepts,
    now: DateTime<Utc>,
) -> Result<Principal, AuthnError> {
    let kind = presented.kind();
    if !accepts.kind(kind) {
        return Err(AuthnError::NotAccepted(kind));
    }
    let secret = presented.secret();
    match (kind, presented) {
        (SecretKind::DeployToken, _) => {
            deploy_token(stores.tokens, secret, presented.username(), now)
        }
        (SecretKind::PersonalAccessToken, _) => {
            let user = personal_access_token(stores.users, secret, now)?;
            // Constant time is not needed here: the secret already identified the user,
            // the username is only checked so a PAT cannot be presented under another name.
            if let Some(name) = presented.username() {
                if !user.user.username.eq_ignore_ascii_case(name) {
                    return Err(AuthnError::UsernameMismatch);
                }
            }
            Ok(Principal::User(Box::new(user)))
        }
        (SecretKind::Password, Presented::Login(credentials)) => {
            password(stores.users, credentials).map(|u| Principal::User(Box::new(u)))
        }
        // A bare secret that is neither kind of token: there is no user to check it for.
        (SecretKind::Password, Presented::Token(_)) => Err(AuthnError::UnknownSecret),
    }
}

fn deploy_token(
    tokens: &dyn DeployTokenLookup,
    secret: &str,
    username: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Principal, AuthnError> {
    let token = tokens
        .find_by_digest(&HashedToken::of(secret))?
        .ok_or(AuthnError::UnknownSecret)?;
    if username.is_some_and(|u| !token.username_matches(u)) {
        return Err(AuthnError::UsernameMismatch);
    }
    if token.is_revoked() {
        return Err(AuthnError::Revoked(token.id));
    }
    if token.is_expired(now) {
        return Err(AuthnError::Expired(token.id));
    }
    Ok(Principal::DeployToken(Box::new(token)))
}

fn personal_access_token(
    users: &dyn UserDirectory,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<UserPrincipal, AuthnError> {
    let pat = users
        .find_pat_by_digest(&HashedToken::of(secret))?
        .ok_or(AuthnError::UnknownSecret)?;
    if !pat.is_active(now) {
        return Err(AuthnError::PatInactive(pat.id));
    }
    let user = users
        .find_user(pat.user_id)?
        .ok_or(AuthnError::UnknownSecret)?;
    if user.is_blocked() {
        return Err(AuthnError::Blocked(user.id));
    }
    Ok(UserPrincipal {
        memberships: users.memberships_of(user.id)?,
        user,
        credential: UserCredential::PersonalAccessToken {
            id: pat.id,
            scopes: pat.scopes,
            expires_at: pat.expires_at,
        },
    })
}

/// The user a short-lived LFS link speaks for, re-read now: the user must still exist, the
/// memberships are today's, and the PAT that asked (if one did) must still be active and
/// theirs. A link made after a password sign-in carries no PAT and acts as the password did.
pub fn reload_user(
    users: &dyn UserDirectory,
    user_id: i64,
    pat_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<UserPrincipal, AuthnError> {
    let credential = match pat_id {
        None => UserCredential::Password,
        Some(id) => {
            let pat = users
                .find_pat(id)?
                .filter(|p| p.user_id == user_id)
                .ok_or(AuthnError::UnknownSecret)?;
            if !pat.is_active(now) {
                return Err(AuthnError::PatInactive(pat.id));
            }
            UserCredential::PersonalAccessToken {
                id: pat.id,
                scopes: pat.scopes,
                expires_at: pat.expires_at,
            }
        }
    };
    let user = users.find_user(user_id)?.ok_or(AuthnError::UnknownSecret)?;
    if user.is_blocked() {
        return Err(AuthnError::Blocked(user.id));
    }
    Ok(UserPrincipal {
        memberships: users.memberships_of(user.id)?,
        user,
        credential,
    })
}

/// A password sign-in. Unknown users still cost one argon2 verification, so timing does
/// not reveal which usernames exist.
fn password(
    users: &dyn UserDirectory,
    credentials: &Credentials,
) -> Result<UserPrincipal, AuthnError> {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let attempt = credentials.secret.expose_secret();
    let found = users.find_user_by_username(&credentials.username)?;
    let Some(StoredUser {
        user,
        password_hash: Some(hash),
    }) = found
    else {
        let dummy = DUMMY.get_or_init(|| {
            hash_password(&secrecy::SecretString::from(
                "not a real password".to_string(),
            ))
            .unwrap_or_default()
        });
        verify_password(dummy, attempt);
        return Err(AuthnError::BadPassword);
    };
    if !verify_password(&hash, attempt) {
        return Err(AuthnError::BadPassword);
    }
    // Checked after the password, so a blocked account does not tell itself apart from a
    // wrong password by timing.
    if user.is_blocked() {
        return Err(AuthnError::Blocked(user.id));
    }
    Ok(UserPrincipal {
        memberships: users.memberships_of(user.id)?,
        user,
        credential: UserCredential::Password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy_token::{DeployToken, TokenOwner, TokenScope};
    use crate::domain::fixtures::path;
    use crate::domain::personal_access_token::{PatScope, PersonalAccessToken};
    use crate::domain::user::{Membership, User};

    /// One deploy token (`wvsdt-good`, id 7) and one user `alice` with PAT `wvspat-good`.
    struct Fake;

    fn token() -> DeployToken {
        DeployToken {
            id: 7,
            owner: TokenOwner::Project {
                id: 1,
                path: path("acme/app"),
            },
            name: "t".into(),
            custom_username: None,
            scopes: vec![TokenScope::ReadRegistry],
            expires_at: None,
            created_at: Utc::now(),
            revoked_at: None,
            last_used_at: None,
            created_by: None,
        }
    }

    fn alice() -> User {
        User {
            id: 3,
            username: "alice".into(),
            is_admin: false,
            created_at: Utc::now(),
            blocked_at: None,
        }
    }

    impl DeployTokenLookup for Fake {
        fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError> {
            Ok((*digest == HashedToken::of("wvsdt-good")).then(token))
        }
        fn find_by_id(&self, id: i64) -> Result<Option<DeployToken>, StoreError> {
            Ok((id == 7).then(token))
        }
    }

    impl UserDirectory for Fake {
        fn find_user_by_username(&self, _: &str) -> Result<Option<StoredUser>, StoreError> {
            Ok(None)
        }
        fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
            Ok((id == 3).then(alice))
        }
        fn memberships_of(&self, _: i64) -> Result<Vec<Membership>, StoreError> {
            Ok(Vec::new())
        }
        fn find_pat(&self, _: i64) -> Result<Option<PersonalAccessToken>, StoreError> {
            Ok(None)
        }
        fn find_pat_by_digest(
            &self,
            digest: &HashedToken,
        ) -> Result<Option<PersonalAccessToken>, StoreError> {
            Ok(
                (*digest == HashedToken::of("wvspat-good")).then(|| PersonalAccessToken {
                    id: 5,
                    user_id: 3,
                    name: "laptop".into(),
                    scopes: vec![PatScope::Api],
                    expires_at: None,
                    created_at: Utc::now(),
                    revoked_at: None,
                    last_used_at: None,
                }),
            )
        }
    }

    fn stores() -> Stores<'static> {
        Stores {
            tokens: &Fake,
            users: &Fake,
        }
    }

    fn login(user: &str, secret: &str) -> Presented {
        Presented::Login(Credentials {
            username: user.into(),
            secret: SecretString::from(secret),
        })
    }

    fn bare(secret: &str) -> Presented {
        Presented::Token(SecretString::from(secret))
    }

    const PATS_ONLY: Accepts = Accepts {
        deploy_tokens: false,
        personal_access_tokens: true,
        passwords: false,
    };

    #[test]
    fn the_prefix_tells_the_kind() {
        assert_eq!(SecretKind::of("wvsdt-x"), SecretKind::DeployToken);
        assert_eq!(SecretKind::of("wvspat-x"), SecretKind::PersonalAccessToken);
        assert_eq!(SecretKind::of("hunter2"), SecretKind::Password);
    }

    #[test]
    fn tokens_with_or_without_a_username() {
        let now = Utc::now();
        let t = authenticate(
            stores(),
            &login("wvs+deploy-token-7", "wvsdt-good"),
            Accepts::ALL,
            now,
        );
        assert!(matches!(t, Ok(Principal::DeployToken(_))));
        let t = authenticate(stores(), &bare("wvsdt-good"), Accepts::ALL, now);
        assert!(
            matches!(t, Ok(Principal::DeployToken(_))),
            "Deploy-Token header"
        );
        let t = authenticate(stores(), &login("someone", "wvsdt-good"), Accepts::ALL, now);
        assert!(matches!(t, Err(AuthnError::UsernameMismatch)));
        let p = authenticate(stores(), &bare("wvspat-good"), PATS_ONLY, now);
        assert!(matches!(p, Ok(Principal::User(_))));
        let p = authenticate(stores(), &login("ALICE", "wvspat-good"), PATS_ONLY, now);
        assert!(
            matches!(p, Ok(Principal::User(_))),
            "usernames are case-insensitive"
        );
        let p = authenticate(stores(), &login("bob", "wvspat-good"), PATS_ONLY, now);
        assert!(matches!(p, Err(AuthnError::UsernameMismatch)));
        let u = authenticate(stores(), &bare("wvsdt-unknown"), Accepts::ALL, now);
        assert!(matches!(u, Err(AuthnError::UnknownSecret)));
    }

    #[test]
    fn a_kind_the_surface_does_not_take_is_refused_before_any_lookup() {
        let now = Utc::now();
        let d = authenticate(stores(), &bare("wvsdt-good"), PATS_ONLY, now);
        assert!(matches!(
            d,
            Err(AuthnError::NotAccepted(SecretKind::DeployToken))
        ));
        let passwords_only = Accepts {
            deploy_tokens: false,
            personal_access_tokens: false,
            passwords: true,
        };
        let p = authenticate(
            stores(),
            &login("alice", "wvspat-good"),
            passwords_only,
            now,
        );
        assert!(matches!(
            p,
            Err(AuthnError::NotAccepted(SecretKind::PersonalAccessToken))
        ));
        // A bare secret is never a password: there is no user to check it for.
        let b = authenticate(stores(), &bare("hunter2"), Accepts::ALL, now);
        assert!(matches!(b, Err(AuthnError::UnknownSecret)));
        let w = authenticate(stores(), &login("alice", "hunter2"), PATS_ONLY, now);
        assert!(matches!(
            w,
            Err(AuthnError::NotAccepted(SecretKind::Password))
        ));
    }
}
