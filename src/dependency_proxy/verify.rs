//! Verifying the bearer JWTs clients present at the GitLab-style `/v2/` paths.
//!
//! wvs-auth issued them itself (via `/jwt/auth`), so it checks them exactly as a registry
//! would — RS256 signature by a published key, `iss`, `aud` = the dependency-proxy service,
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
        // wvs-auth signs RS256 only; accepting anything else would only widen the surface.
        if header.alg != Algorithm::RS256 {
            return Err(VerifyError::Invalid(format!(
                "algorithm {:?} not accepted",
                header.alg
            )));
        }
        let kid = header.kid.ok_or(VerifyError::UnknownKey)?;
        let key = self.key(&kid).ok_or(VerifyError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::RS256);
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

    fn key(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.current().verifying.get(kid).cloned()
    }
}
