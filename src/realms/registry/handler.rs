//! `GET` and `POST /jwt/auth`: the Docker token endpoint (SPEC §3).
//!
//! GET is what docker and skopeo send (query + Basic header); POST is the OAuth2 password
//! grant containerd tries first. Both become one [`TokenRequest`] and one decision. The
//! service name picks the realm: a registry service ([`super::grant`]) or a Dependency
//! Proxy service (`realms::dependency_proxy::grant`).

use std::net::IpAddr;
use std::time::Instant;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use secrecy::SecretString;
use serde::Serialize;

use super::{grant, GrantError};
use crate::app::{AppState, ServiceKind};
use crate::auth::{credentials, Attempt, AuthFailure, Policy, Source};
use crate::domain::authn::{Credentials, Presented};
use crate::domain::dependency_proxy::ProxyRefusal;
use crate::domain::scope::{parse_all, ResourceScope};
use crate::keys::issue::{Access, Bearer, IssuedToken};
use crate::logging::{AccessLine, ACCESS_TARGET};
use crate::realms::dependency_proxy::{self, ProxyGrantError};
use crate::request::body::read_bounded;
use crate::request::error::ApiError;
use crate::request::limits::MAX_BODY_BYTES;
use crate::request::refusals;

struct TokenRequest {
    service: Option<String>,
    scopes: Vec<String>,
    account: Option<String>,
    attempt: Attempt,
}

#[derive(Serialize)]
struct TokenResponse {
    token: String,
    access_token: String,
    expires_in: i64,
    issued_at: String,
}

type Params = Vec<(String, String)>;

fn first(params: &Params, key: &str) -> Option<String> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

fn all(params: &Params, key: &str) -> Vec<String> {
    params
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The request's Basic credentials; anything else in `Authorization` is malformed here.
fn basic_credentials(req: &HttpRequest) -> Result<Option<Presented>, ApiError> {
    credentials::presented(req.headers(), &[Source::Basic])
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub async fn get(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let request = parse_get(&req, &state);
    respond(&req, &state, request, started).await
}

fn parse_get(req: &HttpRequest, state: &AppState) -> Result<TokenRequest, ApiError> {
    let params: Params = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| ApiError::BadRequest("query string is not valid URL encoding".into()))?;
    let attempt = state.auth.attempt(req, &Policy::REGISTRY);
    if let Some(e) = attempt.malformed() {
        return Err(ApiError::BadRequest(e.to_string()));
    }
    Ok(TokenRequest {
        service: first(&params, "service"),
        scopes: all(&params, "scope"),
        account: first(&params, "account"),
        attempt,
    })
}

pub async fn post(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let request = match read_bounded(payload, MAX_BODY_BYTES).await {
        Ok(body) => parse_post(&req, &state, &body),
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    };
    respond(&req, &state, request, started).await
}

/// The OAuth2 password grant (RFC 6749 §4.3) as containerd sends it.
fn parse_post(req: &HttpRequest, state: &AppState, body: &[u8]) -> Result<TokenRequest, ApiError> {
    let params: Params = serde_urlencoded::from_bytes(body).map_err(|_| {
        ApiError::BadRequest("body is not application/x-www-form-urlencoded".into())
    })?;
    match first(&params, "grant_type").as_deref() {
        Some("password") => {}
        Some(_) => return Err(ApiError::UnsupportedGrantType),
        None => return Err(ApiError::BadRequest("grant_type is required".into())),
    }
    let credentials = match (first(&params, "username"), first(&params, "password")) {
        (Some(username), Some(password)) => Some(Presented::Login(Credentials {
            username,
            secret: SecretString::from(password),
        })),
        (None, None) => basic_credentials(req)?,
        _ => {
            return Err(ApiError::BadRequest(
                "grant_type=password needs both username and password".into(),
            ))
        }
    };
    if credentials.is_none() {
        return Err(ApiError::BadRequest(
            "grant_type=password needs username and password".into(),
        ));
    }
    let ip = state.auth.client_ip(req);
    Ok(TokenRequest {
        service: first(&params, "service"),
        scopes: all(&params, "scope"),
        account: None,
        attempt: state
            .auth
            .attempt_with(ip, Ok(credentials), &Policy::REGISTRY),
    })
}

/// What the access log records of one request; never the secret.
#[derive(Default)]
struct Trace {
    user: String,
    service: String,
    asked: Vec<ResourceScope>,
    granted: Vec<Access>,
    /// Why authentication failed, for the log only: clients see one generic 401.
    failure: Option<String>,
}

/// Decides and logs: every request, malformed ones included, leaves one access-log line —
/// refusals within the per-client budget of [`refusals::log_refusal`].
async fn respond(
    req: &HttpRequest,
    state: &AppState,
    request: Result<TokenRequest, ApiError>,
    started: Instant,
) -> Result<HttpResponse, ApiError> {
    let mut trace = Trace::default();
    let mut peer = state.auth.client_ip(req);
    if let Ok(r) = &request {
        trace.user = r.attempt.client.user.clone();
        trace.service = r.service.clone().unwrap_or_default();
        peer = r.attempt.client.ip;
    }
    let result = match request {
        Ok(r) => decide(state, r, &mut trace).await,
        Err(e) => Err(e),
    };
    log_request(peer, &trace, &result, started);
    result
}

async fn decide(
    state: &AppState,
    request: TokenRequest,
    trace: &mut Trace,
) -> Result<HttpResponse, ApiError> {
    let service = request
        .service
        .ok_or_else(|| ApiError::BadRequest("service is required".into()))?;
    trace.asked = parse_all(request.scopes.iter().map(String::as_str))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let kind = state
        .realms
        .service_kind(&service)
        .ok_or_else(|| ApiError::NotFound(format!("unknown service {service:?}")))?;

    let principal = state
        .auth
        .check(&request.attempt, request.account.as_deref())
        .await
        .map_err(|e| match e {
            AuthFailure::Throttled(secs) => ApiError::Throttled(secs),
            AuthFailure::Unavailable => ApiError::Unavailable,
            AuthFailure::Malformed(e) => ApiError::BadRequest(e.to_string()),
            AuthFailure::Refused(reason) => {
                trace.failure = Some(reason.to_string());
                ApiError::Unauthorized
            }
            AuthFailure::CredentialsRequired | AuthFailure::InsufficientScope => {
                ApiError::Unauthorized
            }
        })?;

    // The decision reads projects or group settings: from memory when remembered.
    let input = (principal, std::mem::take(&mut trace.asked));
    let decided = match kind {
        ServiceKind::Registry => state
            .reads
            .run(&input, |reads, (principal, asked)| {
                grant(reads, principal, asked)
            })
            .await
            .map(|granted| (granted, None))
            .map_err(|e| match e {
                GrantError::DeployTokenScope | GrantError::PatScope => {
                    ApiError::Denied(e.to_string())
                }
                GrantError::Store(e) => {
                    log::error!("project lookup failed: {e}");
                    ApiError::Unavailable
                }
            }),
        ServiceKind::DependencyProxy => state
            .reads
            .run(&input, |reads, (principal, asked)| {
                dependency_proxy::grant(reads, principal, asked)
            })
            .await
            .map(|proxy| (proxy.access, Some(proxy.group)))
            .map_err(|e| match e {
                ProxyGrantError::Refused(ProxyRefusal::AuthenticationRequired) => {
                    ApiError::AuthenticationRequired(e.to_string())
                }
                ProxyGrantError::Refused(refusal) => ApiError::Denied(refusal.to_string()),
                ProxyGrantError::Store(e) => {
                    log::error!("group lookup failed: {e}");
                    ApiError::Unavailable
                }
            }),
    };
    let (principal, asked) = input;
    trace.asked = asked;
    let (granted, group) = decided?;
    trace.granted = granted;

    let now = Utc::now();
    let subject = principal.subject();
    let bearer = Bearer {
        subject: &subject,
        auth_type: principal.auth_type(),
        group: group.as_ref().map(|g| g.as_str()),
        not_after: principal.not_after(),
    };
    let issued = state
        .keys
        .issuer
        .issue(&bearer, &service, &trace.granted, now)
        .map_err(|e| {
            log::error!("signing failed: {e}");
            ApiError::Unavailable
        })?;
    state.metrics.token_issued(&service, &principal);
    Ok(HttpResponse::Ok()
        // RFC 6749 §5.1: token answers must not be cached by anything in between.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .insert_header(header::ContentType::json())
        .body(token_body(issued).map_err(|e| {
            log::error!("cannot encode the token answer: {e}");
            ApiError::Unavailable
        })?))
}

/// The answer's JSON, exactly as serde writes `TokenResponse`. The token is written twice and
/// is ~2 kB (its header carries the certificate); serde_json looks up every byte of it in
/// its escape table, which was a third of the non-signature instructions of a token request
/// (bench/profile_callgrind.sh). JSON strings need escaping only for `"`, `\\` and control
/// characters, which a JWS in compact form (base64url and dots) and an RFC 3339 time never
/// contain: when neither string has one, the body is put together directly (one branch-free
/// pass over the bytes checks that); otherwise serde writes it.
fn token_body(issued: IssuedToken) -> Result<String, serde_json::Error> {
    fn plain(s: &str) -> bool {
        !s.bytes().fold(false, |esc, b| {
            esc | (b == b'"') | (b == b'\\') | (b < 0x20)
        })
    }
    if !plain(&issued.token) || !plain(&issued.issued_at) {
        let response = TokenResponse {
            access_token: issued.token.clone(),
            token: issued.token,
            expires_in: issued.expires_in,
            issued_at: issued.issued_at,
        };
        return serde_json::to_string(&response);
    }
    let mut body = String::with_capacity(2 * issued.token.len() + issued.issued_at.len() + 80);
    body.push_str("{\"token\":\"");
    body.push_str(&issued.token);
    body.push_str("\",\"access_token\":\"");
    body.push_str(&issued.token);
    body.push_str("\",\"expires_in\":");
    body.push_str(&issued.expires_in.to_string());
    body.push_str(",\"issued_at\":\"");
    body.push_str(&issued.issued_at);
    body.push_str("\"}");
    Ok(body)
}

fn log_request(
    peer: Option<IpAddr>,
    t: &Trace,
    result: &Result<HttpResponse, ApiError>,
    started: Instant,
) {
    if !log::log_enabled!(target: ACCESS_TARGET, log::Level::Info) {
        return;
    }
    let asked: Vec<String> = t.asked.iter().map(ToString::to_string).collect();
    let granted: Vec<String> = t
        .granted
        .iter()
        .map(|a| format!("{}:{}:{}", a.resource_type, a.name, a.actions.join(",")))
        .collect();
    let status = match result {
        Ok(r) => r.status().as_u16(),
        Err(e) => actix_web::ResponseError::status_code(e).as_u16(),
    };
    if (400..500).contains(&status) && !refusals::log_refusal(peer) {
        return;
    }
    let reason = match (&t.failure, result) {
        (Some(f), _) => f.clone(),
        (None, Err(e)) => e.to_string(),
        (None, Ok(_)) => "ok".to_string(),
    };
    AccessLine::new("token")
        .bare("ip", peer.map(|p| p.to_string()).unwrap_or_default())
        .quoted("user", &t.user)
        .quoted("service", &t.service)
        .list("asked", asked)
        .list("granted", granted)
        .number("status", u64::from(status))
        .quoted("result", &reason)
        .number("latency_us", started.elapsed().as_micros() as u64)
        .emit();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(token: &str, issued_at: &str) -> IssuedToken {
        IssuedToken {
            token: token.into(),
            expires_in: 300,
            issued_at: issued_at.into(),
        }
    }

    fn serde_body(i: &IssuedToken) -> String {
        serde_json::to_string(&TokenResponse {
            token: i.token.clone(),
            access_token: i.token.clone(),
            expires_in: i.expires_in,
            issued_at: i.issued_at.clone(),
        })
        .expect("serde")
    }

    #[test]
    fn token_body_is_what_serde_writes() {
        for (token, at) in [
            ("eyJh.eyJz-_x.c2ln", "2024-05-01T10:00:00Z"),
            ("", "2024-05-01T10:00:00+00:00"),
            // Not a JWS: must still come out as correctly escaped JSON.
            ("a\"b\\c\n\u{1}é", "2024-05-01T10:00:00Z"),
            ("é\u{7f}/<>&'", "2024-05-01T10:00:00Z"),
            ("\u{1f}", "\t"),
            ("abc", "x\"y"),
        ] {
            let i = issued(token, at);
            let expected = serde_body(&i);
            let body = token_body(i).expect("body");
            assert_eq!(body, expected);
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(v["token"], token);
            assert_eq!(v["access_token"], token);
        }
    }
}
