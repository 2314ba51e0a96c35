//! Short-lived LFS download links.
//!
//! The batch answer hands git-lfs, per object, an `Authorization: RemoteAuth <jwt>` header
//! for the object URL. The JWT is signed with the active key (the one that signs registry
//! tokens, already shared by every instance through the keys directory, so no new secret to
//! distribute) and bound to the repository, the oid and the deploy token's id. It is not a
//! capability on its own: the download re-reads the token and re-decides access, so
//! revocation and expiry stop downloads on the very next request, as SPEC §1 requires.
//!
//! The scheme is `RemoteAuth`, not `Bearer`, so the header can never be confused with (or
//! replayed as) a registry token, whose audience is a registry service.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::route::Oid;
use crate::domain::path::NamespacePath;
use crate::keys::{JwtSigner, KeyError};

/// `aud` of link tokens: no registry service can be named like this (it has a space).
const AUDIENCE: &str = "wvs-auth lfs-download";
/// Lifetime of a link, as GitLab's LFS links: long enough for a slow batch of downloads.
pub const LINK_TTL_SECS: i64 = 300;
pub const SCHEME: &str = "RemoteAuth";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    pub aud: String,
    /// Who asked (for logs); `""` for anonymous.
    pub sub: String,
    /// The deploy token that asked; `None` for anonymous (public project).
    pub tok: Option<i64>,
    pub repo: String,
    pub oid: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signs a link for `oid` in `repo`.
pub fn issue(
    signer: &JwtSigner,
    subject: &str,
    token_id: Option<i64>,
    repo: &NamespacePath,
    oid: &Oid,
    now: DateTime<Utc>,
) -> Result<String, KeyError> {
    signer.sign(&LinkClaims {
        aud: AUDIENCE.into(),
        sub: subject.into(),
        tok: token_id,
        repo: repo.to_string(),
        oid: oid.as_str().into(),
        iat: now.timestamp(),
        exp: now.timestamp() + LINK_TTL_SECS,
    })
}

/// The claims of a valid, unexpired link for exactly `repo` and `oid`; `None` otherwise.
pub fn verify(
    signer: &JwtSigner,
    token: &str,
    repo: &NamespacePath,
    oid: &Oid,
    now: DateTime<Utc>,
) -> Option<LinkClaims> {
    let payload = signer.verify(token)?;
    let claims: LinkClaims = serde_json::from_slice(&payload).ok()?;
    let valid = claims.aud == AUDIENCE
        && claims.repo == repo.as_str()
        && claims.oid == oid.as_str()
        && now.timestamp() < claims.exp;
    valid.then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyMaterial, SigningAlg};

    #[test]
    fn bound_to_repo_oid_and_time() {
        bound_with(SigningAlg::Rs256);
        bound_with(SigningAlg::Es256);
    }

    fn bound_with(alg: SigningAlg) {
        let m = KeyMaterial::generate(alg).expect("key");
        let signer =
            JwtSigner::from_pem(&m.kid, m.alg, &m.private_pem, &m.cert_pem).expect("signer");
        let repo = NamespacePath::parse("acme/app").expect("path");
        let other_repo = NamespacePath::parse("acme/other").expect("path");
        let oid = Oid::parse(&"a".repeat(64)).expect("oid");
        let other_oid = Oid::parse(&"b".repeat(64)).expect("oid");
        let now = Utc::now();
        let link = issue(&signer, "u", Some(7), &repo, &oid, now).expect("sign");

        let claims = verify(&signer, &link, &repo, &oid, now).expect("valid");
        assert_eq!(claims.tok, Some(7));
        assert!(verify(&signer, &link, &other_repo, &oid, now).is_none());
        assert!(verify(&signer, &link, &repo, &other_oid, now).is_none());
        let later = now + chrono::Duration::seconds(LINK_TTL_SECS);
        assert!(verify(&signer, &link, &repo, &oid, later).is_none());

        // A registry-style token from the same key is not a link.
        let registry = signer
            .sign(&serde_json::json!({ "aud": "container_registry", "exp": i64::MAX }))
            .expect("sign");
        assert!(verify(&signer, &registry, &repo, &oid, now).is_none());
    }
}
