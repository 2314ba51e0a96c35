//! Where credentials come from: `Authorization: Basic …` and `Bearer …`, `PRIVATE-TOKEN`,
//! `Deploy-Token` and `X-NuGet-ApiKey`, read in the order a surface's policy lists them.
//! Every malformed Basic header is a clear 400, never a panic, and the secret never appears
//! in an error.

use actix_web::http::header::{HeaderMap, AUTHORIZATION};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::authn::{Credentials, Presented, SecretKind};

/// One place a surface reads credentials from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `Authorization: Basic`. Where it is a surface's only `Authorization` source, any
    /// other scheme there is malformed input (400), as docker and git expect.
    Basic,
    /// `Authorization: Basic` on GitLab's package routes: a token in the password field
    /// counts whatever the username says (clients fill it with anything); a password still
    /// needs its username.
    BasicSecret,
    /// `Authorization: Bearer SECRET`; another scheme there is no credential.
    Bearer,
    /// GitLab's `PRIVATE-TOKEN: SECRET`.
    PrivateToken,
    /// GitLab's `Deploy-Token: SECRET` (package registries).
    DeployToken,
    /// NuGet's `X-NuGet-ApiKey: SECRET`.
    NugetApiKey,
    /// Cargo's `Authorization: <the configured token string>`, sent raw: the secret is
    /// its last word (`Bearer wvsdt-…` and a bare `wvsdt-…` both work). Basic there is
    /// no credential, as no Cargo client sends it.
    CargoToken,
}

/// The credentials of a request, from the first of `sources` that has any.
pub fn presented(headers: &HeaderMap, sources: &[Source]) -> Result<Option<Presented>, BasicError> {
    for source in sources {
        let found = match source {
            Source::Basic => match headers.get(AUTHORIZATION) {
                None => None,
                Some(value) => Some(Presented::Login(parse_basic(value.as_bytes())?)),
            },
            Source::BasicSecret => match headers.get(AUTHORIZATION) {
                None => None,
                Some(value) => {
                    let c = parse_basic(value.as_bytes())?;
                    Some(match SecretKind::of(c.secret.expose_secret()) {
                        SecretKind::Password => Presented::Login(c),
                        SecretKind::DeployToken | SecretKind::PersonalAccessToken => {
                            Presented::Token(c.secret)
                        }
                    })
                }
            },
            Source::Bearer => headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    let (scheme, token) = v.trim().split_once(' ')?;
                    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
                })
                .and_then(bare_secret),
            Source::PrivateToken => header_token(headers, "private-token"),
            Source::DeployToken => header_token(headers, "deploy-token"),
            Source::NugetApiKey => header_token(headers, "x-nuget-apikey"),
            Source::CargoToken => headers
                .get(AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .filter(|v| {
                    !v.trim_start()
                        .get(..6)
                        .is_some_and(|s| s.eq_ignore_ascii_case("basic "))
                })
                .and_then(|v| v.split_whitespace().last())
                .and_then(bare_secret),
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

fn header_token(headers: &HeaderMap, name: &str) -> Option<Presented> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .and_then(bare_secret)
}

/// An empty secret is no credential at all.
fn bare_secret(secret: &str) -> Option<Presented> {
    (!secret.is_empty()).then(|| Presented::Token(SecretString::from(secret)))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BasicError {
    #[error("Authorization header must use the Basic scheme")]
    NotBasic,
    #[error("Authorization header is not valid base64")]
    BadBase64,
    #[error("Basic credentials are not UTF-8")]
    NotUtf8,
    #[error("Basic credentials must be username:secret")]
    NoColon,
}

/// Parses a full header value such as `Basic dXNlcjpzZWNyZXQ=`.
pub fn parse_basic(value: &[u8]) -> Result<Credentials, BasicError> {
    let value = std::str::from_utf8(value).map_err(|_| BasicError::NotUtf8)?;
    let (scheme, rest) = value.trim().split_once(' ').ok_or(BasicError::NotBasic)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(BasicError::NotBasic);
    }
    let encoded = rest.trim();
    let decoded = STANDARD
        .decode(encoded)
        .or_else(|_| STANDARD_NO_PAD.decode(encoded))
        .map_err(|_| BasicError::BadBase64)?;
    let decoded = String::from_utf8(decoded).map_err(|_| BasicError::NotUtf8)?;
    let (username, secret) = decoded.split_once(':').ok_or(BasicError::NoColon)?;
    Ok(Credentials {
        username: username.to_string(),
        secret: SecretString::from(secret),
    })
}

#[cfg(test)]
mod cargo_tests {
    use super::*;
    use actix_web::http::header::HeaderValue;
    use secrecy::ExposeSecret;

    fn cargo(value: &str) -> Option<String> {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("valid"));
        match presented(&h, &[Source::CargoToken]).expect("never an error") {
            Some(Presented::Token(s)) => Some(s.expose_secret().to_string()),
            _ => None,
        }
    }

    #[test]
    fn cargo_tokens_are_the_last_word_of_authorization() {
        assert_eq!(cargo("wvsdt-abc").as_deref(), Some("wvsdt-abc"));
        assert_eq!(cargo("Bearer wvsdt-abc").as_deref(), Some("wvsdt-abc"));
        assert_eq!(cargo("  ").as_deref(), None);
        assert_eq!(cargo("Basic dTpw").as_deref(), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};
    use proptest::prelude::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("test input is valid"),
                HeaderValue::from_str(v).expect("test input is valid"),
            );
        }
        h
    }

    /// The API's sources: `PRIVATE-TOKEN`, then Bearer.
    const API: [Source; 2] = [Source::PrivateToken, Source::Bearer];

    fn secret_of(h: &HeaderMap, sources: &[Source]) -> Option<String> {
        match presented(h, sources).expect("well-formed") {
            Some(Presented::Token(s)) => Some(s.expose_secret().to_string()),
            Some(Presented::Login(c)) => {
                Some(format!("{}:{}", c.username, c.secret.expose_secret()))
            }
            None => None,
        }
    }

    #[test]
    fn private_token_or_bearer() {
        assert_eq!(
            secret_of(&headers(&[("PRIVATE-TOKEN", "wvspat-a")]), &API).as_deref(),
            Some("wvspat-a")
        );
        assert_eq!(
            secret_of(&headers(&[("Authorization", "Bearer wvspat-b")]), &API).as_deref(),
            Some("wvspat-b")
        );
        assert_eq!(
            secret_of(&headers(&[("authorization", "bearer  wvspat-c ")]), &API).as_deref(),
            Some("wvspat-c")
        );
        assert_eq!(
            secret_of(
                &headers(&[
                    ("Authorization", "Bearer wvspat-b"),
                    ("Private-Token", "wvspat-a")
                ]),
                &API
            )
            .as_deref(),
            Some("wvspat-a")
        );
    }

    #[test]
    fn other_schemes_are_no_credential_where_basic_is_not_read() {
        assert_eq!(
            secret_of(&headers(&[("Authorization", "Basic eDp5")]), &API),
            None
        );
        assert_eq!(
            secret_of(&headers(&[("Authorization", "Bearer")]), &API),
            None
        );
        assert_eq!(secret_of(&HeaderMap::new(), &API), None);
        assert_eq!(secret_of(&headers(&[("PRIVATE-TOKEN", "  ")]), &API), None);
        // Where Basic is read, another scheme is malformed input.
        assert_eq!(
            presented(&headers(&[("Authorization", "Bearer x")]), &[Source::Basic]).err(),
            Some(BasicError::NotBasic)
        );
    }

    #[test]
    fn package_basic_ignores_the_username_of_a_token() {
        let sources = [Source::DeployToken, Source::Bearer, Source::BasicSecret];
        let token = format!("Basic {}", b64("anything:wvsdt-x"));
        assert_eq!(
            secret_of(&headers(&[("Authorization", &token)]), &sources).as_deref(),
            Some("wvsdt-x")
        );
        let password = format!("Basic {}", b64("alice:hunter22"));
        assert_eq!(
            secret_of(&headers(&[("Authorization", &password)]), &sources).as_deref(),
            Some("alice:hunter22")
        );
        assert_eq!(
            secret_of(&headers(&[("Authorization", "Bearer wvsdt-y")]), &sources).as_deref(),
            Some("wvsdt-y")
        );
    }

    #[test]
    fn package_headers() {
        let sources = [Source::DeployToken, Source::NugetApiKey, Source::Basic];
        assert_eq!(
            secret_of(&headers(&[("Deploy-Token", "wvsdt-x")]), &sources).as_deref(),
            Some("wvsdt-x")
        );
        assert_eq!(
            secret_of(&headers(&[("X-NuGet-ApiKey", "wvsdt-y")]), &sources).as_deref(),
            Some("wvsdt-y")
        );
        let basic = format!("Basic {}", b64("bot:wvsdt-z"));
        assert_eq!(
            secret_of(&headers(&[("Authorization", &basic)]), &sources).as_deref(),
            Some("bot:wvsdt-z")
        );
    }

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    #[test]
    fn parses_and_splits_at_first_colon() {
        let c = parse_basic(format!("Basic {}", b64("u:s:e")).as_bytes()).expect("valid");
        assert_eq!(c.username, "u");
        assert_eq!(c.secret.expose_secret(), "s:e");
        let c = parse_basic(format!("basic  {}", b64("u:")).as_bytes()).expect("valid");
        assert_eq!(c.secret.expose_secret(), "");
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(parse_basic(b"Bearer abc").err(), Some(BasicError::NotBasic));
        assert_eq!(parse_basic(b"Basic").err(), Some(BasicError::NotBasic));
        assert_eq!(parse_basic(b"Basic !!!").err(), Some(BasicError::BadBase64));
        assert_eq!(
            parse_basic(format!("Basic {}", b64("nocolon")).as_bytes()).err(),
            Some(BasicError::NoColon)
        );
        let bad_utf8 = format!("Basic {}", STANDARD.encode([0xff, 0xfe, b':']));
        assert_eq!(
            parse_basic(bad_utf8.as_bytes()).err(),
            Some(BasicError::NotUtf8)
        );
        assert_eq!(parse_basic(&[0xff, 0x20]).err(), Some(BasicError::NotUtf8));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_bytes(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_basic(&raw);
        }

        #[test]
        fn never_panics_on_basic_prefixed_text(rest in ".{0,300}") {
            let _ = parse_basic(format!("Basic {rest}").as_bytes());
        }

        #[test]
        fn round_trips_any_credentials(user in "[^:]{0,64}", secret in ".{0,128}") {
            let header = format!("Basic {}", b64(&format!("{user}:{secret}")));
            let c = parse_basic(header.as_bytes()).expect("round trip");
            prop_assert_eq!(c.username, user);
            prop_assert_eq!(c.secret.expose_secret(), secret.as_str());
        }
    }
}
