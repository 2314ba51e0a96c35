//! Everything that can go wrong on a settings page, and how each shows as HTML.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use askama::Template;

use super::views::{Chrome, ErrorPage};
use crate::manage::{ManageError, Missing};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not signed in: redirect to the sign-in page, then back to this local path.
    #[error("sign in to continue")]
    SignInRequired(String),
    #[error("You are not allowed to manage deploy tokens here.")]
    Forbidden,
    #[error("{0}")]
    NotFound(String),
    /// A POST without the form's CSRF token (a forged or stale form).
    #[error("This form has expired or was not sent by wvs-auth. Reload the page and try again.")]
    Csrf,
    #[error("{0}")]
    BadRequest(String),
    #[error("Too many failed sign-ins. Try again in {0} seconds.")]
    Throttled(u64),
    /// Storage did not answer (already logged where it happened).
    #[error("The service is temporarily unavailable. Try again shortly.")]
    Unavailable,
}

impl From<crate::app::flash::FlashError> for WebError {
    fn from(e: crate::app::flash::FlashError) -> Self {
        log::warn!("settings pages: one-shot message: {e}");
        WebError::Unavailable
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::SignInRequired(_) => StatusCode::SEE_OTHER,
            WebError::Forbidden | WebError::Csrf => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            WebError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::SignInRequired(back) = self {
            let query =
                serde_urlencoded::to_string([("return_to", back.as_str())]).unwrap_or_default();
            return redirect(&format!("/-/sign_in?{query}"));
        }
        let status = self.status_code();
        let page = ErrorPage {
            chrome: Chrome::default(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            message: self.to_string(),
        };
        let mut res = secured(HttpResponse::build(status));
        if let WebError::Throttled(secs) = self {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        html(res, &page)
    }
}

/// The headers every settings page carries: never cached (pages carry CSRF tokens and, once,
/// a secret), never framed (no clickjacking of the revoke button), scripts and styles only
/// from this origin.
pub fn secured(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"));
    builder
}

/// Renders `page` into `builder`'s response; a template that fails to render is a 500.
pub fn html(mut builder: HttpResponseBuilder, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => builder.content_type("text/html; charset=utf-8").body(body),
        Err(e) => {
            log::error!("rendering a settings page failed: {e}");
            secured(HttpResponse::InternalServerError())
                .content_type("text/plain; charset=utf-8")
                .body("internal error")
        }
    }
}

/// 303 See Other: after a POST the browser follows it with a GET.
pub fn redirect(location: &str) -> HttpResponse {
    secured(HttpResponse::SeeOther())
        .insert_header((header::LOCATION, location.to_string()))
        .finish()
}

/// Only local settings paths are followed after sign-in, so the sign-in page cannot be
/// used to send people to another site.
pub fn local_return_to(raw: Option<&str>) -> String {
    match raw {
        Some(p)
            if p.starts_with("/-/")
                && !p.contains("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_string()
        }
        _ => "/-/".to_string(),
    }
}

/// The manager's refusal as a page says it (the words GitLab's pages use for missing ones).
pub fn manage_error(e: ManageError) -> WebError {
    match e {
        ManageError::Forbidden => WebError::Forbidden,
        ManageError::NotFound(Missing::Project(_)) => {
            WebError::NotFound("404 Project Not Found".into())
        }
        ManageError::NotFound(Missing::Group(_) | Missing::ParentGroup(_)) => {
            WebError::NotFound("404 Group Not Found".into())
        }
        ManageError::NotFound(_) => WebError::NotFound("404 Deploy Token Not Found".into()),
        ManageError::Invalid(errors) => WebError::BadRequest(
            errors
                .into_iter()
                .map(|e| e.message)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => {
            log::error!("deploy token management failed: {other}");
            WebError::Unavailable
        }
    }
}

/// The blocking pool could not run the call: the service is unavailable for now.
impl From<crate::blocking::PoolError> for WebError {
    fn from(e: crate::blocking::PoolError) -> Self {
        log::error!("settings page storage call failed: {e}");
        WebError::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_stays_on_the_settings_pages() {
        assert_eq!(
            local_return_to(Some("/-/projects/a/settings/deploy_tokens")),
            "/-/projects/a/settings/deploy_tokens"
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/-//evil",
            "/acme/app.git",
            "/-/\\evil",
            "/-/a\r\nSet-Cookie: x=y",
            "/-/a\0b",
        ] {
            assert_eq!(local_return_to(Some(bad)), "/-/", "{bad}");
        }
        assert_eq!(local_return_to(None), "/-/");
    }

    #[test]
    fn errors_carry_the_security_headers() {
        let res = WebError::Forbidden.error_response();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            res.headers()
                .get(header::X_FRAME_OPTIONS)
                .expect("test input is valid"),
            "DENY"
        );
        assert_eq!(
            res.headers()
                .get(header::CACHE_CONTROL)
                .expect("test input is valid"),
            "no-store"
        );
        let res =
            WebError::SignInRequired("/-/groups/g/settings/deploy_tokens".into()).error_response();
        assert_eq!(
            res.headers()
                .get(header::LOCATION)
                .expect("test input is valid"),
            "/-/sign_in?return_to=%2F-%2Fgroups%2Fg%2Fsettings%2Fdeploy_tokens"
        );
    }
}
