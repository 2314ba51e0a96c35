//! Verifying the bearer JWTs clients present at the GitLab-style `/v2/` paths.
//!
//! wvs-auth issued them itself (via `/jwt/auth`), so it checks them exactly as a registry
//! would — RS256 signature by a published key, `iss`, `aud` = the dependency-proxy service,
//! `exp`/`nbf` — plus what only wvs-auth can check: the `group` claim must cover the group in
//! the path. Keys come from the keys directory (the same published set `/-/jwks` serves),
//! reloaded when a token names an unknown `kid`, so a key activated by another instance
//! sharing the directory is picked up without a restart.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::domain::dependency_proxy::PULL;
use crate::domain::path::NamespacePath;
use crate::keys::KeyStore;

/// Clock skew tolerated on `exp`/`nbf`; distribution allows 60 s, our own tokens need less.
const LEEWAY_SECS: u64 = 30;
/// An unknown `kid` re-reads the keys directory at most this often, so a client sending
/// made-up key ids cannot turn every request into file reads.
const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

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

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    loaded_at: Instant,
}

pub struct TokenVerifier {
    keys_dir: PathBuf,
    issuer: String,
    audience: String,
    keys: RwLock<Keys>,
}

impl TokenVerifier {
    pub fn new(keys_dir: PathBuf, issuer: String, audience: String) -> Self {
        let by_kid = load(&keys_dir);
        Self {
            keys_dir,
            issuer,
            audience,
            keys: RwLock::new(Keys {
                by_kid,
                loaded_at: Instant::now(),
            }),
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
        {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            if let Some(key) = keys.by_kid.get(kid) {
                return Some(key.clone());
            }
            if keys.loaded_at.elapsed() < RELOAD_INTERVAL {
                return None;
            }
        }
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        if keys.loaded_at.elapsed() >= RELOAD_INTERVAL {
            keys.by_kid = load(&self.keys_dir);
            keys.loaded_at = Instant::now();
        }
        keys.by_kid.get(kid).cloned()
    }
}

/// The published keys of the keys directory by kid; a broken directory yields none (every
/// token is then refused, and the error logged), never a panic.
fn load(dir: &std::path::Path) -> HashMap<String, DecodingKey> {
    let jwks = match KeyStore::new(dir).jwks() {
        Ok(jwks) => jwks,
        Err(e) => {
            log::error!("cannot load verification keys from {}: {e}", dir.display());
            return HashMap::new();
        }
    };
    let mut out = HashMap::new();
    for jwk in jwks["keys"].as_array().into_iter().flatten() {
        let (Some(kid), Some(n), Some(e)) =
            (jwk["kid"].as_str(), jwk["n"].as_str(), jwk["e"].as_str())
        else {
            continue;
        };
        match DecodingKey::from_rsa_components(n, e) {
            Ok(key) => {
                out.insert(kid.to_string(), key);
            }
            Err(err) => log::error!("published key {kid} is unusable: {err}"),
        }
    }
    out
}
