//! `/v2/…`: GitLab-style Dependency Proxy paths answered by wvs-auth and forwarded to the
//! pull-through cache.
//!
//! wvs-auth acts as a registry here: it challenges with its own realm and the
//! dependency-proxy service, verifies the bearer token it issued, then asks the cache for
//! the rewritten name (`acme/dependency_proxy/containers/alpine` → `library/alpine`) with a
//! short-lived JWT of its own — the cache trusts wvs-auth's bundle like any client's token.
//! Bodies are streamed (never buffered: a 500 MB layer keeps memory flat), and status,
//! digests, content types, `Docker-Content-Digest`, `Location` (redirects are passed to the
//! client, not followed) travel through untouched.

use std::time::Duration;

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use chrono::Utc;
use serde_json::json;

use super::bearer::ProxyBearer;
use super::route::{self, Route};
use crate::app::{AppState, ProxyUpstream};
use crate::domain::dependency_proxy::{GitLabImage, PULL};
use crate::keys::issue::{Access, Bearer};

/// How long the cache may take to start answering (it may first fetch from upstream);
/// the body itself has no deadline, a large layer takes what it takes.
const RESPONSE_HEAD_TIMEOUT: Duration = Duration::from_secs(60);

const API_VERSION: (&str, &str) = ("Docker-Distribution-API-Version", "registry/2.0");

/// Request headers passed on to the cache: content negotiation (docker lists the manifest
/// types it understands in several `Accept` headers), ranges and conditionals.
const FORWARDED_REQUEST_HEADERS: [HeaderName; 5] = [
    header::ACCEPT,
    header::RANGE,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::USER_AGENT,
];

/// An HTTP client per worker (awc clients are not `Send`), with redirects off so they reach
/// the client as they are.
pub struct CacheClient(awc::Client);

impl CacheClient {
    pub fn new() -> Self {
        Self(
            awc::Client::builder()
                .disable_redirects()
                .timeout(RESPONSE_HEAD_TIMEOUT)
                .finish(),
        )
    }
}

impl Default for CacheClient {
    fn default() -> Self {
        Self::new()
    }
}

/// The registry-style error answers of `/v2/`: `{"errors":[{"code","message"}]}` and, on
/// 401, a Bearer challenge so docker and skopeo know where to get a token.
#[derive(Debug, thiserror::Error)]
pub enum V2Error {
    #[error("{message}")]
    Unauthorized {
        challenge: String,
        message: &'static str,
    },
    #[error("{0}")]
    Denied(&'static str),
    #[error("no such route")]
    NotFound,
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("the dependency proxy's cache is unavailable")]
    BadGateway,
}

impl ResponseError for V2Error {
    fn status_code(&self) -> StatusCode {
        match self {
            V2Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            V2Error::Denied(_) => StatusCode::FORBIDDEN,
            V2Error::NotFound => StatusCode::NOT_FOUND,
            V2Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            V2Error::BadGateway => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let code = match self {
            V2Error::Unauthorized { .. } => "UNAUTHORIZED",
            V2Error::Denied(_) => "DENIED",
            V2Error::NotFound => "NOT_FOUND",
            V2Error::BadRequest(_) => "BAD_REQUEST",
            V2Error::BadGateway => "UNAVAILABLE",
        };
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header(API_VERSION);
        if let V2Error::Unauthorized { challenge, .. } = self {
            res.insert_header((header::WWW_AUTHENTICATE, challenge.as_str()));
        }
        res.json(json!({ "errors": [{ "code": code, "message": self.to_string() }] }))
    }
}

/// Every `/v2…` request.
pub async fn v2(
    req: HttpRequest,
    state: web::Data<AppState>,
    client: web::Data<CacheClient>,
) -> Result<HttpResponse, V2Error> {
    let Some(proxy) = &state.realms.proxy else {
        return Err(V2Error::NotFound);
    };
    let path = req.uri().path();
    if req.method() != Method::GET && req.method() != Method::HEAD {
        // Pushes and deletes: the proxy is read-only for everyone, so no token can help.
        return Err(if route::is_proxy_name_path(path) {
            V2Error::Denied("the dependency proxy is read-only")
        } else {
            V2Error::NotFound
        });
    }
    let route = route::parse(path).ok_or(V2Error::NotFound)?;
    let scope = match &route {
        Route::Base => None,
        Route::Object { image, .. } => Some(format!("repository:{}:{PULL}", image.full_name())),
    };
    let challenge = Challenge {
        realm: realm(&req, state.realms.public_url.as_deref())?,
        service: &proxy.service,
        scope: scope.as_deref(),
    };
    let token = authenticate(&req, &state, proxy, &challenge)?;
    match route {
        Route::Base => Ok(HttpResponse::Ok()
            .insert_header(API_VERSION)
            .json(json!({}))),
        Route::Object {
            image,
            kind,
            reference,
        } => {
            if !token.may_pull(&image.full_name(), &image.group) {
                return Err(V2Error::Unauthorized {
                    challenge: challenge.header(Some("insufficient_scope")),
                    message: "the token does not grant pull on this image",
                });
            }
            let url = format!(
                "{}/v2/{}/{}/{reference}",
                proxy.cache_url,
                image.upstream_name(),
                kind.as_str()
            );
            forward(&req, &state, proxy, &client, &image, &token, &url).await
        }
    }
}

struct Challenge<'a> {
    realm: String,
    service: &'a str,
    scope: Option<&'a str>,
}

impl Challenge<'_> {
    /// `Bearer realm="…",service="…"[,scope="…"][,error="…"]`, as distribution sends it.
    /// Every part is validated or ours, so none contains a `"`.
    fn header(&self, error: Option<&str>) -> String {
        let mut h = format!(
            r#"Bearer realm="{}",service="{}""#,
            self.realm, self.service
        );
        if let Some(scope) = self.scope {
            h.push_str(&format!(r#",scope="{scope}""#));
        }
        if let Some(error) = error {
            h.push_str(&format!(r#",error="{error}""#));
        }
        h
    }
}

/// The token endpoint URL clients are sent to. With `--public-url` that is fixed; without
/// it, it is derived from the request as the client addressed wvs-auth (Host, and the
/// scheme — both honouring `Forwarded`/`X-Forwarded-*` from a reverse proxy), which is right
/// for a direct connection and for a proxy that sets those headers. A client can only
/// mislead itself with them.
fn realm(req: &HttpRequest, public_url: Option<&str>) -> Result<String, V2Error> {
    if let Some(base) = public_url {
        return Ok(format!("{base}/jwt/auth"));
    }
    let info = req.connection_info();
    let (scheme, host) = (info.scheme(), info.host());
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b':' | b'[' | b']'));
    if !host_ok || !matches!(scheme, "http" | "https") {
        return Err(V2Error::BadRequest("malformed Host header"));
    }
    Ok(format!("{scheme}://{host}/jwt/auth"))
}

/// The verified bearer token, or the 401 that sends the client to the realm.
fn authenticate(
    req: &HttpRequest,
    state: &AppState,
    proxy: &ProxyUpstream,
    challenge: &Challenge<'_>,
) -> Result<ProxyBearer, V2Error> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    let Some(bearer) = bearer else {
        return Err(V2Error::Unauthorized {
            challenge: challenge.header(None),
            message: "authentication required",
        });
    };
    ProxyBearer::verify(&state.keys.verifier, bearer, state.issuer(), &proxy.service).map_err(|e| {
        if crate::request::refusals::log_refusal(state.auth.client_ip(req)) {
            log::info!("dependency proxy: bearer token refused: {e}");
        }
        V2Error::Unauthorized {
            challenge: challenge.header(Some("invalid_token")),
            message: "the bearer token is invalid or expired",
        }
    })
}

/// Response headers that describe one connection, not the content (RFC 9110 §7.6.1), and
/// the ones rebuilt here (`Content-Length`, from the stream's known size).
fn passes_through(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
            | "www-authenticate"
    )
}

async fn forward(
    req: &HttpRequest,
    state: &AppState,
    proxy: &ProxyUpstream,
    client: &CacheClient,
    image: &GitLabImage,
    token: &ProxyBearer,
    url: &str,
) -> Result<HttpResponse, V2Error> {
    // A fresh, short-lived token per request: pull on the rewritten name only, for the
    // cache's service. It carries the caller as `sub`, so the cache's log names them.
    let access = [Access {
        resource_type: "repository".into(),
        class: None,
        name: image.upstream_name(),
        actions: vec![PULL.into()],
    }];
    let minted = state
        .keys
        .issuer
        .issue(
            &Bearer {
                subject: &token.subject,
                auth_type: "dependency_proxy",
                ..Bearer::default()
            },
            &proxy.service,
            &access,
            Utc::now(),
        )
        .map_err(|e| {
            log::error!("dependency proxy: cannot sign the cache token: {e}");
            V2Error::BadGateway
        })?;
    let mut request = client
        .0
        .request(req.method().clone(), url)
        .insert_header((header::AUTHORIZATION, format!("Bearer {}", minted.token)));
    for name in FORWARDED_REQUEST_HEADERS {
        for value in req.headers().get_all(&name) {
            request = request.append_header((name.clone(), value.clone()));
        }
    }
    let response = request.send().await.map_err(|e| {
        log::error!("dependency proxy: {} {url}: {e}", req.method());
        V2Error::BadGateway
    })?;
    let status = response.status();
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        // Our own token refused: the cache does not trust this wvs-auth (service, issuer,
        // rootcertbundle, or a 3.x `jwks:` without `--token-header kid`). The client's
        // credentials are fine, so no 401 to the client.
        log::error!(
            "dependency proxy: the cache refused wvs-auth's token ({status}) for {url}; \
             check its auth.token service ({:?}), issuer and rootcertbundle (a 3.x cache \
             with only jwks needs serve --token-header kid)",
            proxy.service
        );
        return Err(V2Error::BadGateway);
    }
    log::info!(
        "dependency proxy: user={:?} {} {} -> {url} status={}",
        token.subject,
        req.method(),
        req.uri().path(),
        status.as_u16()
    );
    let mut out = HttpResponse::build(status);
    for (name, value) in response.headers() {
        if passes_through(name) {
            out.append_header((name.clone(), value.clone()));
        }
    }
    let length = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(length) = length {
        // Keep the cache's Content-Length (clients check blob sizes, and HEAD answers
        // must carry it) while still streaming the body.
        out.no_chunking(length);
    }
    Ok(out.streaming(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_header_as_distribution_sends_it() {
        let c = Challenge {
            realm: "http://127.0.0.1:5050/jwt/auth".into(),
            service: "dependency_proxy",
            scope: Some("repository:acme/dependency_proxy/containers/alpine:pull"),
        };
        assert_eq!(
            c.header(Some("insufficient_scope")),
            "Bearer realm=\"http://127.0.0.1:5050/jwt/auth\",service=\"dependency_proxy\",\
             scope=\"repository:acme/dependency_proxy/containers/alpine:pull\",\
             error=\"insufficient_scope\""
        );
        let base = Challenge { scope: None, ..c };
        assert_eq!(
            base.header(None),
            "Bearer realm=\"http://127.0.0.1:5050/jwt/auth\",service=\"dependency_proxy\""
        );
    }

    #[test]
    fn hop_by_hop_headers_stay_behind() {
        assert!(passes_through(&header::CONTENT_TYPE));
        assert!(passes_through(&HeaderName::from_static(
            "docker-content-digest"
        )));
        assert!(passes_through(&header::LOCATION));
        assert!(!passes_through(&header::TRANSFER_ENCODING));
        assert!(!passes_through(&header::CONNECTION));
        assert!(!passes_through(&header::CONTENT_LENGTH));
    }
}
