//! The registry JWT: claims as distribution 2.8 and 3.x verify them (SPEC §3).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::keys::{JwtSigner, KeyError};

/// `nbf` sits this far before `iat`, as GitLab does, to absorb small clock skew.
const NOT_BEFORE_SKEW_SECS: i64 = 5;

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

pub struct TokenIssuer {
    pub signer: JwtSigner,
    pub issuer: String,
    pub ttl_secs: i64,
}

impl TokenIssuer {
    pub fn issue(
        &self,
        subject: &str,
        auth_type: &str,
        audience: &str,
        access: &[Access],
        group: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, KeyError> {
        let iat = now.timestamp();
        let claims = Claims {
            iss: &self.issuer,
            sub: subject,
            aud: audience,
            iat,
            nbf: iat - NOT_BEFORE_SKEW_SECS,
            exp: iat + self.ttl_secs,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
            auth_type,
            group,
        };
        Ok(IssuedToken {
            token: self.signer.sign(&claims)?,
            expires_in: self.ttl_secs,
            issued_at: now.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
    }
}
