//! The JSON error answers of every HTTP surface: `{"errors":[{"code","message"}]}` as the
//! registry and docker expect, and the OAuth shape for grant-type errors.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// What realm challenges a 401 carries: docker retries with credentials on this.
pub const BASIC_CHALLENGE: &str = r#"Basic realm="wvs-auth""#;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("HTTP Basic: Access denied. The provided credentials are wrong, revoked or expired.")]
    Unauthorized,
    /// No credentials where a realm requires them (the Dependency Proxy): 401 with the same
    /// Basic challenge, so clients ask the user to log in.
    #[error("{0}")]
    AuthenticationRequired(String),
    #[error("{0}")]
    Denied(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("too many failed authentications; retry in {0} seconds")]
    Throttled(u64),
    /// The client already has as many requests in flight as one client may.
    #[error("too many requests in flight from this client; retry in {0} seconds")]
    Busy(u64),
    /// OAuth2 form: only `grant_type=password` is supported.
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("service temporarily unavailable")]
    Unavailable,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BAD_REQUEST",
            ApiError::Unauthorized | ApiError::AuthenticationRequired(_) => "UNAUTHORIZED",
            ApiError::Denied(_) => "DENIED",
            ApiError::NotFound(_) => "NOT_FOUND",
            ApiError::MethodNotAllowed => "UNSUPPORTED",
            ApiError::Throttled(_) | ApiError::Busy(_) => "TOOMANYREQUESTS",
            ApiError::UnsupportedGrantType => "UNSUPPORTED",
            ApiError::Unavailable => "UNAVAILABLE",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::UnsupportedGrantType => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::AuthenticationRequired(_) => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Denied(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Throttled(_) | ApiError::Busy(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized | ApiError::AuthenticationRequired(_) => {
                res.insert_header((header::WWW_AUTHENTICATE, BASIC_CHALLENGE));
            }
            ApiError::Throttled(secs) | ApiError::Busy(secs) => {
                res.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            _ => {}
        }
        if let ApiError::UnsupportedGrantType = self {
            return res.json(json!({ "error": "unsupported_grant_type" }));
        }
        res.json(json!({ "errors": [{ "code": self.code(), "message": self.to_string() }] }))
    }
}
