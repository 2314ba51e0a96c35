//! Parsing `Authorization: Basic …`. Every malformed header is a clear 400, never a panic,
//! and the secret never appears in an error.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use secrecy::SecretString;

use crate::domain::authn::Credentials;

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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use secrecy::ExposeSecret;

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
