//! Short-lived LFS transfer links (downloads and uploads).
//!
//! The batch answer hands git-lfs, per object, an `Authorization: RemoteAuth <jwt>` header
//! for the object URL. The JWT is signed with the active key (the one that signs registry
//! tokens, already shared by every instance through the keys directory, so no new secret to
//! distribute) and bound to the action, the repository, the oid (and for uploads the size)
//! and whoever asked: a deploy token's id, or a user's id and the PAT they used. It is not a
//! capability on its own: the transfer re-reads that credential and re-decides access, so
//! revocation, expiry and a lost membership stop transfers on the very next request, as
//! SPEC §1 requires.
//!
//! Its header follows `serve --token-header` like every JWT the server signs
//! (`keys::TokenHeader`): only wvs-auth verifies links, by `kid`, so `x5c` or not changes
//! nothing but their size.
//!
//! The scheme is `RemoteAuth`, not `Bearer`, so the header can never be confused with (or
//! replayed as) a registry token, whose audience is a registry service. Downloads and
//! uploads have different audiences, so a download link never uploads.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::route::Oid;
use crate::domain::path::NamespacePath;
use crate::domain::principal::Principal;
use crate::domain::user::UserCredential;
use crate::keys::verify::{Expect, JwtVerifier};
use crate::keys::{JwtSigner, KeyError};

/// Lifetime of a link, as GitLab's LFS links: long enough for a slow batch of transfers.
pub const LINK_TTL_SECS: i64 = 300;
pub const SCHEME: &str = "RemoteAuth";

/// What a link lets its bearer do with the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkAction {
    Download,
    Upload,
}

impl LinkAction {
    /// `aud` of link tokens: no registry service can be named like this (it has a space).
    fn audience(self) -> &'static str {
        match self {
            LinkAction::Download => "wvs-auth lfs-download",
            LinkAction::Upload => "wvs-auth lfs-upload",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    pub aud: String,
    /// Who asked (for logs); `""` for anonymous.
    pub sub: String,
    /// The deploy token that asked.
    pub tok: Option<i64>,
    /// The user that asked.
    #[serde(default)]
    pub usr: Option<i64>,
    /// The personal access token the user asked with; `None` after a password sign-in.
    #[serde(default)]
    pub pat: Option<i64>,
    pub repo: String,
    pub oid: String,
    /// Uploads: the size announced in the batch request, which the body must have.
    #[serde(default)]
    pub size: Option<i64>,
    pub iat: i64,
    pub exp: i64,
}

/// One link to sign.
pub struct Link<'a> {
    pub action: LinkAction,
    pub principal: &'a Principal,
    pub repo: &'a NamespacePath,
    pub oid: &'a Oid,
    /// Bound into upload links; `None` for downloads.
    pub size: Option<i64>,
}

/// Signs `link`.
pub fn issue(signer: &JwtSigner, link: &Link<'_>, now: DateTime<Utc>) -> Result<String, KeyError> {
    let (tok, usr, pat) = match link.principal {
        Principal::Anonymous => (None, None, None),
        Principal::DeployToken(t) => (Some(t.id), None, None),
        Principal::User(u) => match &u.credential {
            UserCredential::PersonalAccessToken { id, .. } => (None, Some(u.user.id), Some(*id)),
            UserCredential::Password | UserCredential::Session => (None, Some(u.user.id), None),
        },
    };
    signer.sign(&LinkClaims {
        aud: link.action.audience().into(),
        sub: link.principal.subject(),
        tok,
        usr,
        pat,
        repo: link.repo.to_string(),
        oid: link.oid.as_str().into(),
        size: link.size,
        iat: now.timestamp(),
        exp: now.timestamp() + LINK_TTL_SECS,
    })
}

/// The claims of a valid, unexpired `action` link for exactly `repo` and `oid`; `None`
/// otherwise.
pub fn verify(
    verifier: &JwtVerifier,
    token: &str,
    action: LinkAction,
    repo: &NamespacePath,
    oid: &Oid,
    now: DateTime<Utc>,
) -> Option<LinkClaims> {
    let expect = Expect {
        audience: action.audience(),
        issuer: None,
        now: now.timestamp(),
        leeway_secs: 0,
    };
    let claims: LinkClaims = verifier.verify(token, &expect).ok()?;
    let valid = claims.repo == repo.as_str() && claims.oid == oid.as_str();
    valid.then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyStore, LiveKeys, SigningAlg, TokenHeader};
    use std::sync::Arc;

    #[test]
    fn bound_to_repo_oid_and_time() {
        bound_with(SigningAlg::Rs256);
        bound_with(SigningAlg::Es256);
    }

    fn bound_with(alg: SigningAlg) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        store.init(alg).expect("init");
        let signer = store.signer(TokenHeader::default()).expect("signer");
        let verifier = JwtVerifier::new(Arc::new(
            LiveKeys::open(KeyStore::new(dir.path()), TokenHeader::default()).expect("keys"),
        ));
        let repo = NamespacePath::parse("acme/app").expect("path");
        let other_repo = NamespacePath::parse("acme/other").expect("path");
        let oid = Oid::parse(&"a".repeat(64)).expect("oid");
        let other_oid = Oid::parse(&"b".repeat(64)).expect("oid");
        let now = Utc::now();
        let anonymous = Principal::Anonymous;
        let download = Link {
            action: LinkAction::Download,
            principal: &anonymous,
            repo: &repo,
            oid: &oid,
            size: None,
        };
        let link = issue(&signer, &download, now).expect("sign");

        let get = LinkAction::Download;
        let claims = verify(&verifier, &link, get, &repo, &oid, now).expect("valid");
        assert_eq!((claims.tok, claims.usr, claims.pat), (None, None, None));
        assert!(verify(&verifier, &link, get, &other_repo, &oid, now).is_none());
        assert!(verify(&verifier, &link, get, &repo, &other_oid, now).is_none());
        let later = now + chrono::Duration::seconds(LINK_TTL_SECS);
        assert!(verify(&verifier, &link, get, &repo, &oid, later).is_none());
        // A download link does not upload, and an upload link does not download.
        assert!(verify(&verifier, &link, LinkAction::Upload, &repo, &oid, now).is_none());
        let upload = issue(
            &signer,
            &Link {
                action: LinkAction::Upload,
                size: Some(12),
                ..download
            },
            now,
        )
        .expect("sign");
        let claims = verify(&verifier, &upload, LinkAction::Upload, &repo, &oid, now).expect("ok");
        assert_eq!(claims.size, Some(12));
        assert!(verify(&verifier, &upload, get, &repo, &oid, now).is_none());

        // A registry-style token from the same key is not a link.
        let registry = signer
            .sign(&serde_json::json!({ "aud": "container_registry", "exp": i64::MAX }))
            .expect("sign");
        assert!(verify(&verifier, &registry, get, &repo, &oid, now).is_none());
    }
}
