//! Verifying the bearer JWTs clients present at the GitLab-style `/v2/` paths.
//!
//! wvs-auth issued them itself (via `/jwt/auth`), so it checks them exactly as a registry
//! would — RS256 or ES256 signature (the algorithm the key's JWK names) by a published key, `iss`, `aud` = the dependency-proxy service,
//! `exp`/`nbf` — plus what only wvs-auth can check: the `group` claim must cover the group in
//! the path. Keys are the live generation's published set (the one `/-/jwks` serves), which
//! follows the keys directory, so a key activated by another instance is picked up.

use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::domain::dependency_proxy::PULL;
use crate::domain::path::NamespacePath;
use crate::keys::LiveKeys;

/// Clock skew tolerated on `exp`/`nbf`; distribution allows 60 s, our own tokens need less.
const LEEWAY_SECS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("malformed token")]
    Malformed,
    #[error("token signed by an unknown key")]
    UnknownKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// One `access` entry as issued.
#[derive(Debug, Deserialize)]
struct AccessClaim {
    #[serde(rename = "type")]
    resource_type: String,
    name: String,
    #[serde(default)]
    actions: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    #[serde(default)]
    access: Vec<AccessClaim>,
    /// The deploy token's group; only dependency-proxy tokens carry it.
    #[serde(default)]
    group: Option<String>,
}

/// A token whose signature and standard claims are valid.
#[derive(Debug)]
pub struct VerifiedToken {
    pub subject: String,
    access: Vec<AccessClaim>,
    group: Option<NamespacePath>,
}

impl VerifiedToken {
    /// Does the token grant `pull` on `name`, and does its group cover `group`? Both, since
    /// the grant alone was decided for the name and the group claim ties it to the token.
    pub fn may_pull(&self, name: &str, group: &NamespacePath) -> bool {
        let granted = self.access.iter().any(|a| {
            a.resource_type == "repository" && a.name == name && a.actions.iter().any(|x| x == PULL)
        });
        let covered = self.group.as_ref().is_some_and(|g| group.is_within(g));
        granted && covered
    }
}

pub struct TokenVerifier {
    keys: Arc<LiveKeys>,
    issuer: String,
    audience: String,
}

impl TokenVerifier {
    pub fn new(keys: Arc<LiveKeys>, issuer: String, audience: String) -> Self {
        Self {
            keys,
            issuer,
            audience,
        }
    }

    pub fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        // wvs-auth signs RS256 or ES256 only; accepting anything else would only widen the
        // surface. The key's own algorithm decides, never the token's header alone.
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
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| VerifyError::Invalid(e.to_string()))?;
        let claims = data.claims;
        Ok(VerifiedToken {
            subject: claims.sub,
            access: claims.access,
            group: claims
                .group
                .as_deref()
                .and_then(|g| NamespacePath::parse(g).ok()),
        })
    }

    fn key(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        self.keys.current().verifying.get(kid).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyStore, SigningAlg};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    fn claims() -> serde_json::Value {
        let now = chrono::Utc::now().timestamp();
        serde_json::json!({
            "iss": "wvs-auth", "aud": "dependency_proxy", "sub": "u",
            "exp": now + 300, "nbf": now - 5, "iat": now, "group": "acme",
            "access": [{ "type": "repository", "name": "acme/dependency_proxy/containers/alpine", "actions": ["pull"] }],
        })
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

    #[test]
    fn accepts_rs256_and_es256_by_the_keys_algorithm_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        store.init(SigningAlg::Rs256).expect("init");
        let ec = store.rotate(SigningAlg::Es256).expect("rotate");
        let keys = Arc::new(LiveKeys::open(KeyStore::new(dir.path())).expect("open"));
        let verifier = TokenVerifier::new(keys, "wvs-auth".into(), "dependency_proxy".into());

        let rsa_token = store
            .signer()
            .expect("signer")
            .sign(&claims())
            .expect("sign");
        store.activate(&ec.kid).expect("activate");
        let ec_signer = store.signer().expect("signer");
        assert_eq!(ec_signer.alg(), SigningAlg::Es256);
        let ec_token = ec_signer.sign(&claims()).expect("sign");

        let group = NamespacePath::parse("acme").expect("path");
        for token in [&rsa_token, &ec_token] {
            let verified = verifier.verify(token).expect("verifies");
            assert!(verified.may_pull("acme/dependency_proxy/containers/alpine", &group));
        }
        // The header's alg must be the key's: no ES256 token under an RSA key or the
        // other way round, and nothing but RS256/ES256.
        assert!(matches!(
            verifier.verify(&with_alg(&ec_token, "RS256")),
            Err(VerifyError::Invalid(_))
        ));
        assert!(matches!(
            verifier.verify(&with_alg(&rsa_token, "ES256")),
            Err(VerifyError::Invalid(_))
        ));
        for alg in ["HS256", "ES384", "PS256", "none"] {
            assert!(verifier.verify(&with_alg(&ec_token, alg)).is_err(), "{alg}");
        }
    }
}
