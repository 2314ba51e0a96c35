//! Plain HTTP helpers for contract tests: answers of any status, Basic credentials, JWTs.

use std::collections::HashMap;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use super::Token;

/// An HTTP answer, whatever its status (ureq 2 reports 4xx/5xx as `Err(Status)`).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// Lower-cased names.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {:?}",
                self.status, self.body
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// Asserts the status and the `{"errors":[{"code","message"}]}` shape; returns
    /// `(code, message)`.
    pub fn expect_error(&self, status: u16) -> (String, String) {
        assert_eq!(self.status, status, "unexpected answer: {self:?}");
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "error answer is not JSON: {self:?}"
        );
        let v = self.json();
        let errors = v["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors array: {}", self.body));
        assert_eq!(errors.len(), 1, "{}", self.body);
        let code = errors[0]["code"].as_str().expect("errors[0].code");
        let message = errors[0]["message"].as_str().expect("errors[0].message");
        assert!(!code.is_empty() && !message.is_empty(), "{}", self.body);
        (code.to_string(), message.to_string())
    }

    /// Asserts a 200 token answer and returns the JWT.
    pub fn token(&self) -> String {
        assert_eq!(self.status, 200, "expected a token: {self:?}");
        let v = self.json();
        let token = v["token"].as_str().expect("token").to_string();
        assert_eq!(
            v["access_token"].as_str(),
            Some(token.as_str()),
            "token == access_token"
        );
        token
    }

    /// The `access` claim of a 200 token answer.
    pub fn access(&self) -> Value {
        jwt_part(&self.token(), 1)["access"].clone()
    }
}

pub fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .map(|name| {
            let value = response.header(&name).unwrap_or_default().to_string();
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    let body = response.into_string().expect("read body");
    Answer {
        status,
        headers,
        body,
    }
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(20))
        .redirects(0)
        .build()
}

pub fn basic(username: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{username}:{secret}")))
}

/// A registry token request for pulling `repository` with `token`, from the server at `url`.
pub fn pull_answer(url: &str, token: &Token, repository: &str) -> Answer {
    answer(
        agent()
            .get(&format!(
                "{url}/jwt/auth?service=container_registry&scope=repository:{repository}:pull"
            ))
            .set("Authorization", &creds(token))
            .call(),
    )
}

pub fn creds(t: &Token) -> String {
    basic(&t.username, &t.secret)
}

/// Form-encodes one pair, as Go's `url.Values.Encode` (docker) does.
pub fn pair(key: &str, value: &str) -> String {
    serde_urlencoded::to_string([(key, value)]).expect("encode")
}

/// The JSON of part `index` (0 header, 1 claims) of a JWT, unverified.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let piece = token.split('.').nth(index).expect("JWT has three parts");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(piece).expect("base64url")).expect("JSON part")
}

/// Verifies `token`'s signature with the JWKS key named by its `kid`, and iss/aud/exp/nbf.
/// The algorithm is the JWK's (RS256 or ES256), never the token header's, as a registry
/// would; a header naming another algorithm fails.
pub fn verify_jwt(token: &str, jwks: &Value, issuer: &str, audience: &str) -> Value {
    let kid = jwt_part(token, 0)["kid"].as_str().expect("kid").to_string();
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in JWKS {jwks}"));
    let component = |name: &str| {
        jwk[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {jwk}"))
    };
    let (alg, key) = match jwk["alg"].as_str() {
        Some("RS256") => (
            Algorithm::RS256,
            DecodingKey::from_rsa_components(component("n"), component("e")),
        ),
        Some("ES256") => (
            Algorithm::ES256,
            DecodingKey::from_ec_components(component("x"), component("y")),
        ),
        other => panic!("unexpected JWK alg {other:?}: {jwk}"),
    };
    let key = key.expect("decoding key");
    let mut validation = Validation::new(alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer]);
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("token does not verify: {e}"))
        .claims
}
