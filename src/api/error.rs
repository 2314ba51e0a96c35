//! GitLab's error answers, so GitLab clients (python-gitlab, go-gitlab, glab, Terraform)
//! report them as they would against GitLab:
//! `401 {"message":"401 Unauthorized"}`, `403 {"message":"403 Forbidden"}`,
//! `404 {"message":"404 Project Not Found"}`, validation `400 {"message":{"field":["…"]}}`,
//! malformed input `400 {"error":"…"}`, and a token without the `api` scope
//! `403 {"error":"insufficient_scope",…}`.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Map, Value};

use super::body::BodyError;
use crate::manage::{ManageError, Missing};

#[derive(Debug, thiserror::Error)]
pub enum GitlabError {
    /// No, a bad, revoked or expired personal access token, or a deploy token.
    #[error("401 Unauthorized")]
    Unauthorized,
    /// A personal access token without the `api` scope.
    #[error("insufficient_scope")]
    InsufficientScope,
    #[error("403 Forbidden")]
    Forbidden,
    /// `what` is GitLab's word: `Project`, `Group`, or `Not found` for anything else.
    #[error("404 {0}")]
    NotFound(String),
    /// One or more messages per field, in the order the manager reported them.
    #[error("validation failed")]
    Invalid(Vec<(String, String)>),
    /// Input that is not even a request (malformed JSON, a non-integer token id).
    #[error("{0}")]
    BadRequest(String),
    #[error("body exceeds the size limit")]
    TooLarge,
    /// An `/api/v4` path with no route: GitLab's `{"error":"404 Not Found"}`.
    #[error("404 Not Found")]
    RouteNotFound,
    /// With the methods the route does take, for the `Allow` header (RFC 9110).
    #[error("405 Method Not Allowed")]
    MethodNotAllowed(&'static str),
    /// The name is taken.
    #[error("409 Conflict: {0}")]
    Conflict(String),
    /// Too many failed authentications from this client (SPEC §7): retry after seconds.
    #[error("429 Too Many Requests")]
    Throttled(u64),
    /// Storage failed; logged where it happened, never shown.
    #[error("503 Service Unavailable")]
    Unavailable,
}

impl GitlabError {
    pub fn project_not_found() -> Self {
        GitlabError::NotFound("Project Not Found".into())
    }

    pub fn group_not_found() -> Self {
        GitlabError::NotFound("Group Not Found".into())
    }

    /// A token id that is not one of this project's or group's tokens.
    pub fn not_found() -> Self {
        GitlabError::NotFound("Not found".into())
    }
}

/// The manager's refusal as GitLab words it: a missing (or invisible) project or group in
/// GitLab's words; any other missing thing is GitLab's `404 Not found`.
pub fn manage_error(e: ManageError) -> GitlabError {
    match e {
        ManageError::Forbidden => GitlabError::Forbidden,
        ManageError::NotFound(Missing::Project(_)) => GitlabError::project_not_found(),
        ManageError::NotFound(Missing::Group(_) | Missing::ParentGroup(_)) => {
            GitlabError::group_not_found()
        }
        ManageError::NotFound(_) => GitlabError::not_found(),
        ManageError::Conflict(message) => GitlabError::Conflict(message),
        ManageError::Invalid(fields) => GitlabError::Invalid(
            fields
                .into_iter()
                .map(|f| (f.field.to_string(), f.message))
                .collect(),
        ),
        ManageError::Store(e) => {
            log::error!("deploy token management failed: {e}");
            GitlabError::Unavailable
        }
    }
}

impl From<BodyError> for GitlabError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => GitlabError::TooLarge,
            other => GitlabError::BadRequest(other.to_string()),
        }
    }
}

impl ResponseError for GitlabError {
    fn status_code(&self) -> StatusCode {
        match self {
            GitlabError::Unauthorized => StatusCode::UNAUTHORIZED,
            GitlabError::InsufficientScope | GitlabError::Forbidden => StatusCode::FORBIDDEN,
            GitlabError::NotFound(_) | GitlabError::RouteNotFound => StatusCode::NOT_FOUND,
            GitlabError::Invalid(_) | GitlabError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GitlabError::Conflict(_) => StatusCode::CONFLICT,
            GitlabError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            GitlabError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            GitlabError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            GitlabError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let body = match self {
            GitlabError::InsufficientScope => json!({
                "error": "insufficient_scope",
                "error_description":
                    "The request requires higher privileges than provided by the access token.",
                "scope": "api",
            }),
            GitlabError::Invalid(fields) => {
                let mut map = Map::new();
                for (field, message) in fields {
                    let entry = map
                        .entry(field.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(list) = entry {
                        list.push(Value::String(message.clone()));
                    }
                }
                json!({ "message": map })
            }
            GitlabError::BadRequest(message) => json!({ "error": message }),
            GitlabError::TooLarge => json!({ "error": "413 Request Entity Too Large" }),
            GitlabError::MethodNotAllowed(_) => json!({ "error": "405 Not Allowed" }),
            GitlabError::RouteNotFound => json!({ "error": "404 Not Found" }),
            other => json!({ "message": other.to_string() }),
        };
        let mut res = HttpResponse::build(self.status_code());
        match self {
            // What GitLab answers an API request without valid credentials.
            GitlabError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, r#"Bearer realm="wvs-auth""#));
            }
            GitlabError::MethodNotAllowed(allowed) => {
                res.insert_header((header::ALLOW, *allowed));
            }
            GitlabError::Throttled(secs) => {
                res.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            _ => {}
        }
        res.json(body)
    }
}

/// The blocking pool could not run the call: the service is unavailable for now.
impl From<crate::blocking::PoolError> for GitlabError {
    fn from(e: crate::blocking::PoolError) -> Self {
        log::error!("management call failed: {e}");
        GitlabError::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body_of(e: GitlabError) -> (u16, Value) {
        let res = e.error_response();
        let status = res.status().as_u16();
        let bytes = res.into_body().try_into_bytes().unwrap_or_default();
        (status, serde_json::from_slice(&bytes).expect("JSON"))
    }

    #[test]
    fn gitlab_shapes() {
        assert_eq!(
            body_of(GitlabError::Unauthorized),
            (401, json!({"message": "401 Unauthorized"}))
        );
        assert_eq!(
            body_of(GitlabError::Forbidden),
            (403, json!({"message": "403 Forbidden"}))
        );
        assert_eq!(
            body_of(GitlabError::project_not_found()),
            (404, json!({"message": "404 Project Not Found"}))
        );
        assert_eq!(
            body_of(GitlabError::not_found()),
            (404, json!({"message": "404 Not found"}))
        );
        assert_eq!(
            body_of(GitlabError::InsufficientScope).1["error"],
            "insufficient_scope"
        );
    }

    #[test]
    fn validation_groups_messages_by_field() {
        let e = GitlabError::Invalid(vec![
            ("scopes".into(), "a".into()),
            ("name".into(), "b".into()),
            ("scopes".into(), "c".into()),
        ]);
        assert_eq!(
            body_of(e),
            (
                400,
                json!({"message": {"scopes": ["a", "c"], "name": ["b"]}})
            )
        );
    }
}
