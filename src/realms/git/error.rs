//! Refusals of the git realm, rendered for the client that will show them.
//!
//! git prints the body of an error answer (as `remote: …`) only when it is `text/plain`, so
//! git endpoints answer in plain text: a refused push shows "deploy tokens are read-only"
//! instead of a bare status code. git-lfs reads `{"message": …}` in its own media type
//! (batch API spec), so LFS endpoints answer that. Neither carries the registry's
//! `{"errors": …}` shape, which no git tool reads.

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;

use super::lfs::{BatchError, MEDIA_TYPE};
use crate::request::error::BASIC_CHALLENGE;

/// Which client reads the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Git,
    Lfs,
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0}")]
    BadRequest(String),
    #[error("HTTP Basic: Access denied. The provided credentials are wrong, revoked or expired, or this repository needs credentials.")]
    Unauthorized,
    #[error("deploy token lacks read_repository")]
    MissingScope,
    #[error("deploy tokens are read-only")]
    ReadOnly,
    #[error("You are not allowed to push code to this project.")]
    PushForbidden,
    #[error("the personal access token lacks the repository scope this needs")]
    PatScope,
    /// The same words for "no such project" and "not yours", so neither is revealed.
    #[error("The project you were looking for could not be found or you don't have permission to view it.")]
    NotFound,
    #[error("object does not exist")]
    ObjectNotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("the LFS API answers only application/vnd.git-lfs+json")]
    NotAcceptable,
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("too many failed authentications; retry in {0} seconds")]
    Throttled(u64),
    #[error("service temporarily unavailable")]
    Unavailable,
    /// Every git process slot is taken: come back shortly.
    #[error("too many git requests at once; retry shortly")]
    Busy,
}

impl GitError {
    pub fn status(&self) -> StatusCode {
        match self {
            GitError::BadRequest(_) => StatusCode::BAD_REQUEST,
            GitError::Unauthorized => StatusCode::UNAUTHORIZED,
            GitError::MissingScope
            | GitError::ReadOnly
            | GitError::PushForbidden
            | GitError::PatScope => StatusCode::FORBIDDEN,
            GitError::NotFound | GitError::ObjectNotFound => StatusCode::NOT_FOUND,
            GitError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GitError::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            GitError::Batch(BatchError::HashAlgo) => StatusCode::CONFLICT,
            GitError::Batch(_) => StatusCode::UNPROCESSABLE_ENTITY,
            GitError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            GitError::Unavailable | GitError::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn render(&self, surface: Surface) -> HttpResponse {
        let mut res = HttpResponse::build(self.status());
        match self {
            GitError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, BASIC_CHALLENGE));
                if surface == Surface::Lfs {
                    res.insert_header(("LFS-Authenticate", BASIC_CHALLENGE));
                }
            }
            GitError::Throttled(secs) => {
                res.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            GitError::Busy => {
                res.insert_header((header::RETRY_AFTER, "5"));
            }
            _ => {}
        }
        match surface {
            Surface::Git => res
                .content_type("text/plain; charset=utf-8")
                .body(format!("{self}\n")),
            Surface::Lfs => res
                .content_type(MEDIA_TYPE)
                .body(serde_json::json!({ "message": self.to_string() }).to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_gets_text_lfs_gets_json_both_get_the_challenge() {
        let git = GitError::Unauthorized.render(Surface::Git);
        assert_eq!(git.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            git.headers()
                .get(header::WWW_AUTHENTICATE)
                .map(|v| v.as_bytes()),
            Some(BASIC_CHALLENGE.as_bytes())
        );
        assert_eq!(
            git.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(&b"text/plain; charset=utf-8"[..])
        );
        let lfs = GitError::ReadOnly.render(Surface::Lfs);
        assert_eq!(lfs.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            lfs.headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(MEDIA_TYPE.as_bytes())
        );
        assert_eq!(
            GitError::Batch(BatchError::HashAlgo).status(),
            StatusCode::CONFLICT
        );
    }
}
