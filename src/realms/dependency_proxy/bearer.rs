//! The bearer JWTs clients present at the GitLab-style `/v2/` paths: wvs-auth issued them
//! (via `/jwt/auth`), so they are checked with the one verifier (`keys::verify`) exactly as
//! a registry would check them — plus what only wvs-auth can check: the `group` claim must
//! cover the group in the path.

use chrono::Utc;
use serde::Deserialize;

use crate::domain::dependency_proxy::PULL;
use crate::domain::path::NamespacePath;
use crate::keys::verify::{Expect, JwtVerifier, VerifyError};

/// Clock skew tolerated on `exp`/`nbf`; distribution allows 60 s, our own tokens need less.
const LEEWAY_SECS: i64 = 30;

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
pub struct ProxyBearer {
    pub subject: String,
    access: Vec<AccessClaim>,
    group: Option<NamespacePath>,
}

impl ProxyBearer {
    /// Verifies `token` as issued by `issuer` for the proxy `service`.
    pub fn verify(
        verifier: &JwtVerifier,
        token: &str,
        issuer: &str,
        service: &str,
    ) -> Result<Self, VerifyError> {
        let claims: Claims = verifier.verify(
            token,
            &Expect {
                audience: service,
                issuer: Some(issuer),
                now: Utc::now().timestamp(),
                leeway_secs: LEEWAY_SECS,
            },
        )?;
        Ok(Self {
            subject: claims.sub,
            access: claims.access,
            group: claims
                .group
                .as_deref()
                .and_then(|g| NamespacePath::parse(g).ok()),
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyStore, LiveKeys, SigningAlg, TokenHeader};
    use std::sync::Arc;

    #[test]
    fn pull_needs_the_grant_and_the_group() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        store.init(SigningAlg::Es256).expect("init");
        let verifier = JwtVerifier::new(Arc::new(
            LiveKeys::open(KeyStore::new(dir.path()), TokenHeader::default()).expect("open"),
        ));
        let now = Utc::now().timestamp();
        let token = store
            .signer(TokenHeader::default())
            .expect("signer")
            .sign(&serde_json::json!({
                "iss": "wvs-auth", "aud": "dependency_proxy", "sub": "u",
                "exp": now + 300, "nbf": now - 5, "iat": now, "group": "acme",
                "access": [{ "type": "repository", "name": "acme/dependency_proxy/containers/alpine", "actions": ["pull"] }],
            }))
            .expect("sign");
        let bearer =
            ProxyBearer::verify(&verifier, &token, "wvs-auth", "dependency_proxy").expect("ok");
        assert_eq!(bearer.subject, "u");
        let acme = NamespacePath::parse("acme").expect("path");
        let sub = NamespacePath::parse("acme/sub").expect("path");
        let other = NamespacePath::parse("other").expect("path");
        let name = "acme/dependency_proxy/containers/alpine";
        assert!(bearer.may_pull(name, &acme));
        assert!(bearer.may_pull(name, &sub));
        assert!(!bearer.may_pull(name, &other));
        assert!(!bearer.may_pull("acme/dependency_proxy/containers/nginx", &acme));
        assert!(ProxyBearer::verify(&verifier, &token, "wvs-auth", "container_registry").is_err());
    }
}
