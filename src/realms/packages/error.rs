//! How the package realm refuses, in GitLab's shapes (`{"message": …}`), which twine, pip
//! and npm print to their users. One rule for credentials (PACKAGE-NOTES §0): none or
//! invalid (malformed included) → 401 with a Basic challenge, so every client retries with
//! its credentials; authenticated but not allowed → 403; a project the caller cannot see →
//! 404.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::manage::{ManageError, Missing};
use crate::request::error::BASIC_CHALLENGE;
use crate::store::blobs::UploadError;

#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("401 Unauthorized")]
    Unauthorized,
    #[error("403 Forbidden")]
    Forbidden,
    /// 403 with a reason the client shows (npm: "cannot publish over an existing version").
    #[error("403 Forbidden - {0}")]
    Refused(String),
    #[error("404 {0} Not Found")]
    NotFound(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// 409: a version (or a name) that cannot be published again.
    #[error("{0}")]
    Conflict(String),
    #[error("413 Request Entity Too Large: {0}")]
    TooLarge(String),
    #[error("405 Method Not Allowed")]
    MethodNotAllowed,
    #[error("429 Too Many Requests")]
    Throttled(u64),
    #[error("503 Service Unavailable")]
    Unavailable,
}

impl ResponseError for PackageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PackageError::Unauthorized => StatusCode::UNAUTHORIZED,
            PackageError::Forbidden | PackageError::Refused(_) => StatusCode::FORBIDDEN,
            PackageError::NotFound(_) => StatusCode::NOT_FOUND,
            PackageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PackageError::Conflict(_) => StatusCode::CONFLICT,
            PackageError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            PackageError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            PackageError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            PackageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self {
            PackageError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, BASIC_CHALLENGE));
            }
            PackageError::Throttled(secs) => {
                res.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            _ => {}
        }
        // `error` too: npm prints that field of an error answer.
        let message = self.to_string();
        res.json(json!({ "message": message, "error": message }))
    }
}

impl From<UploadError> for PackageError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::TooLarge(_) => PackageError::TooLarge(e.to_string()),
            UploadError::Interrupted | UploadError::Empty => {
                PackageError::BadRequest(e.to_string())
            }
            UploadError::Io(e) => {
                log::error!("package upload: {e}");
                PackageError::Unavailable
            }
        }
    }
}

impl From<crate::blocking::PoolError> for PackageError {
    fn from(e: crate::blocking::PoolError) -> Self {
        log::error!("package storage call failed: {e}");
        PackageError::Unavailable
    }
}

impl From<crate::domain::store::StoreError> for PackageError {
    fn from(e: crate::domain::store::StoreError) -> Self {
        log::error!("package storage: {e}");
        PackageError::Unavailable
    }
}

/// The manager's refusal; a taken name is worded by each format, so it is passed back.
pub fn manage_error(e: ManageError) -> PackageError {
    match e {
        ManageError::Forbidden => PackageError::Forbidden,
        ManageError::NotFound(Missing::Project(_)) => PackageError::NotFound("Project"),
        ManageError::NotFound(_) => PackageError::NotFound("Package"),
        ManageError::Invalid(fields) => PackageError::BadRequest(
            fields
                .iter()
                .map(|f| format!("{}: {}", f.field, f.message))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ManageError::Conflict(m) => PackageError::BadRequest(m),
        ManageError::Store(e) => e.into(),
    }
}
