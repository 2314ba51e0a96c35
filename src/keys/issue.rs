//! The registry JWT: claims as distribution 2.8 and 3.x verify them (SPEC §3). Issued for
//! the registry realm's token endpoint and by the Dependency Proxy for its cache.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use std::sync::Arc;

use super::{KeyError, LiveKeys};

/// `nbf` sits this far before `iat`, as GitLab does, to absorb small clock skew.
const NOT_BEFORE_SKEW_SECS: i64 = 5;
/// Shortest lifetime a token is issued with; clients round anything shorter up to it.
const MIN_LIFETIME_SECS: i64 = 60;

/// One granted resource in the `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    /// A single string: distribution 2.8 rejects a list.
    aud: &'a str,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
    access: &'a [Access],
    auth_type: &'a str,
    /// Dependency-proxy tokens only: the deploy token's group, which wvs-auth's own `/v2/`
    /// endpoint checks against the group in the path. Registries ignore unknown claims.
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
}

/// A signed token and what the HTTP answer says about it.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: i64,
    pub issued_at: String,
}

/// Who a token is for, as the claims and the lifetime need it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bearer<'a> {
    /// `sub`: the username, empty for anonymous.
    pub subject: &'a str,
    pub auth_type: &'a str,
    /// The deploy token's group, for dependency-proxy tokens.
    pub group: Option<&'a str>,
    /// When the credential itself stops working (a deploy token's expiry).
    pub not_after: Option<DateTime<Utc>>,
}

pub struct TokenIssuer {
    pub keys: Arc<LiveKeys>,
    pub issuer: String,
    pub ttl_secs: i64,
}

impl TokenIssuer {
    pub fn issue(
        &self,
        bearer: &Bearer<'_>,
        audience: &str,
        access: &[Access],
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, KeyError> {
        let iat = now.timestamp();
        // A JWT should not outlive the deploy token it was issued for by a whole TTL; but
        // clients treat lifetimes under 60 s as 60 s (and SPEC keeps expires_in >= 60), so
        // near expiry the JWT is cut to 60 s rather than to the exact instant.
        let mut exp = iat + self.ttl_secs;
        if let Some(limit) = bearer.not_after {
            exp = exp.min(limit.timestamp().max(iat + MIN_LIFETIME_SECS));
        }
        let claims = Claims {
            iss: &self.issuer,
            sub: bearer.subject,
            aud: audience,
            iat,
            nbf: iat - NOT_BEFORE_SKEW_SECS,
            exp,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
            auth_type: bearer.auth_type,
            group: bearer.group,
        };
        Ok(IssuedToken {
            token: self.keys.current().signer.sign(&claims)?,
            expires_in: exp - iat,
            issued_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyStore;

    fn lifetime(issuer: &TokenIssuer, now: DateTime<Utc>, not_after: Option<DateTime<Utc>>) -> i64 {
        let t = issuer
            .issue(
                &Bearer {
                    subject: "u",
                    auth_type: "deploy_token",
                    group: None,
                    not_after,
                },
                "svc",
                &[],
                now,
            )
            .expect("issue");
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                t.token.split('.').nth(1).expect("payload"),
            )
            .expect("base64"),
        )
        .expect("json");
        let exp = claims["exp"].as_i64().expect("exp");
        assert_eq!(exp - claims["iat"].as_i64().expect("iat"), t.expires_in);
        assert_eq!(
            claims["nbf"].as_i64(),
            claims["iat"].as_i64().map(|i| i - 5)
        );
        t.expires_in
    }

    #[test]
    fn jwt_lifetime_is_capped_by_token_expiry_but_not_below_60s() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        store.init(crate::keys::SigningAlg::Es256).expect("init");
        let keys =
            Arc::new(LiveKeys::open(store, crate::keys::TokenHeader::default()).expect("keys"));
        let issuer = TokenIssuer {
            keys,
            issuer: "wvs-auth".into(),
            ttl_secs: 300,
        };
        let now = Utc::now();
        assert_eq!(lifetime(&issuer, now, None), 300);
        assert_eq!(
            lifetime(&issuer, now, Some(now + chrono::Duration::seconds(3600))),
            300
        );
        assert_eq!(
            lifetime(&issuer, now, Some(now + chrono::Duration::seconds(100))),
            100
        );
        assert_eq!(
            lifetime(&issuer, now, Some(now + chrono::Duration::seconds(10))),
            60
        );
    }
}
