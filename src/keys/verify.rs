//! Verifying JWTs wvs-auth issued itself: the bearer tokens clients present at the
//! GitLab-style Dependency Proxy paths, and the LFS transfer links. The one verifier.
//!
//! It checks a token exactly as a registry would — an RS256 or ES256 signature by a
//! published key (the algorithm the key's JWK names, never the token's header alone), the
//! audience, the issuer when one is expected, `exp` and `nbf` against an injected clock —
//! and hands back the claims for the caller's own checks. Keys are the live generation's
//! published set (the one `/-/jwks` serves), which follows the keys directory: a key
//! activated by another instance, or the previous key right after `keys activate`, still
//! verifies.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;

use super::LiveKeys;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired or not yet valid")]
    Time,
}

/// What a token must say to be accepted.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub audience: &'a str,
    /// `iss`, when the tokens carry one (registry-style tokens do, LFS links do not).
    pub issuer: Option<&'a str>,
    /// Now, as a Unix time: `exp` must lie after it and `nbf` not after it, within `leeway`.
    pub now: i64,
    pub leeway_secs: i64,
}

pub struct JwtVerifier {
    keys: Arc<LiveKeys>,
}

impl JwtVerifier {
    pub fn new(keys: Arc<LiveKeys>) -> Self {
        Self { keys }
    }

    /// The claims of `token`, if it is valid as `expect` says.
    pub fn verify<C: DeserializeOwned>(
        &self,
        token: &str,
        expect: &Expect<'_>,
    ) -> Result<C, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // wvs-auth signs RS256 or ES256 only; accepting anything else would only widen the
        // surface.
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(VerifyError::Invalid(format!(
                "algorithm {:?} not accepted",
                header.alg
            )));
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let (alg, key) = self.key(&kid).ok_or(VerifyError::UnknownKey)?;
        if header.alg != alg {
            return Err(VerifyError::Invalid(format!(
                "algorithm {:?} does not match key {kid} ({alg:?})",
                header.alg
            )));
        }
        let mut validation = Validation::new(alg);
        // Times are checked below against the caller's clock, so tests can move it.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_audience(&[expect.audience]);
        let mut required = vec!["exp", "aud"];
        if let Some(issuer) = expect.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?
            .claims;
        let exp = claims["exp"].as_i64().ok_or(VerifyError::Time)?;
        let nbf = claims.get("nbf").and_then(serde_json::Value::as_i64);
        let fresh = expect.now < exp + expect.leeway_secs
            && nbf.is_none_or(|nbf| nbf <= expect.now + expect.leeway_secs);
        if !fresh {
            return Err(VerifyError::Time);
        }
        serde_json::from_value(claims).map_err(|e| VerifyError::Invalid(e.to_string()))
    }

    fn key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        self.keys.current().verifying.get(kid).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyStore, SigningAlg, TokenHeader};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn claims(now: i64) -> serde_json::Value {
        serde_json::json!({
            "iss": "wvs-auth", "aud": "dependency_proxy", "sub": "u",
            "exp": now + 300, "nbf": now - 5, "iat": now, "group": "acme",
        })
    }

    fn expect(now: i64) -> Expect<'static> {
        Expect {
            audience: "dependency_proxy",
            issuer: Some("wvs-auth"),
            now,
            leeway_secs: 30,
        }
    }

    /// The token with its header's `alg` replaced (signature left as is).
    fn with_alg(token: &str, alg: &str) -> String {
        let (header, rest) = token.split_once('.').expect("three parts");
        let mut header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("b64")).expect("json");
        header["alg"] = alg.into();
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("json"));
        format!("{header}.{rest}")
    }

    fn setup() -> (tempfile::TempDir, KeyStore, JwtVerifier, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        store.init(SigningAlg::Rs256).expect("init");
        let ec = store.rotate(SigningAlg::Es256).expect("rotate");
        let keys = Arc::new(
            LiveKeys::open(KeyStore::new(dir.path()), TokenHeader::default()).expect("open"),
        );
        (dir, store, JwtVerifier::new(keys), ec.kid)
    }

    #[test]
    fn accepts_rs256_and_es256_by_the_keys_algorithm_only() {
        let (_dir, store, verifier, ec_kid) = setup();
        let now = chrono::Utc::now().timestamp();
        let rsa_token = store
            .signer(TokenHeader::default())
            .expect("signer")
            .sign(&claims(now))
            .expect("sign");
        store.activate(&ec_kid).expect("activate");
        // Keys are found by kid: a token without x5c (`--token-header kid`) verifies alike.
        let ec_signer = store.signer(TokenHeader::Kid).expect("signer");
        assert_eq!(ec_signer.alg(), SigningAlg::Es256);
        let ec_token = ec_signer.sign(&claims(now)).expect("sign");

        for token in [&rsa_token, &ec_token] {
            let got: serde_json::Value = verifier.verify(token, &expect(now)).expect("verifies");
            assert_eq!(got["group"], "acme");
        }
        // The header's alg must be the key's: no ES256 token under an RSA key or the
        // other way round, and nothing but RS256/ES256.
        let check = |t: &str| verifier.verify::<serde_json::Value>(t, &expect(now));
        assert!(matches!(
            check(&with_alg(&ec_token, "RS256")),
            Err(VerifyError::Invalid(_))
        ));
        assert!(matches!(
            check(&with_alg(&rsa_token, "ES256")),
            Err(VerifyError::Invalid(_))
        ));
        for alg in ["HS256", "ES384", "PS256", "none"] {
            assert!(check(&with_alg(&ec_token, alg)).is_err(), "{alg}");
        }
    }

    #[test]
    fn refuses_tampered_foreign_expired_and_misaddressed_tokens() {
        let (_dir, store, verifier, _) = setup();
        let now = chrono::Utc::now().timestamp();
        let token = store
            .signer(TokenHeader::default())
            .expect("signer")
            .sign(&claims(now))
            .expect("sign");
        let check = |t: &str, e: &Expect<'_>| verifier.verify::<serde_json::Value>(t, e);
        let (head, sig) = token.rsplit_once('.').expect("three parts");
        let (prefix, _) = head.rsplit_once('.').expect("three parts");
        let mut forged = claims(now);
        forged["group"] = "other".into();
        let forged = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
        assert!(check(&format!("{prefix}.{forged}.{sig}"), &expect(now)).is_err());
        assert!(check(&format!("{head}."), &expect(now)).is_err());
        assert!(check("", &expect(now)).is_err());
        assert!(check("a.b.c", &expect(now)).is_err());

        // Signed by a key this installation never published.
        let foreign_dir = tempfile::tempdir().expect("tempdir");
        let foreign = KeyStore::new(foreign_dir.path());
        foreign.init(SigningAlg::Rs256).expect("init");
        let foreign = foreign
            .signer(TokenHeader::default())
            .expect("signer")
            .sign(&claims(now))
            .expect("sign");
        assert!(matches!(
            check(&foreign, &expect(now)),
            Err(VerifyError::UnknownKey)
        ));

        assert!(matches!(
            check(&token, &expect(now + 331)),
            Err(VerifyError::Time)
        ));
        assert!(matches!(
            check(&token, &expect(now - 40)),
            Err(VerifyError::Time)
        ));
        let elsewhere = Expect {
            audience: "container_registry",
            ..expect(now)
        };
        assert!(check(&token, &elsewhere).is_err());
        let other_issuer = Expect {
            issuer: Some("someone-else"),
            ..expect(now)
        };
        assert!(check(&token, &other_issuer).is_err());
    }
}
