//! Sign-in, sign-out, the index of manageable namespaces, and the static assets.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::account::{self, REFUSED};
use super::csrf;
use super::csrf::CsrfOnly;
use super::error::{html, local_return_to, manage_error, redirect, secured, WebError};
use super::on_pool;
use super::session::{self, secure_context};
use super::views::{Chrome, IndexPage, SignInPage};
use crate::app::AppState;
use crate::manage::Actor;

#[derive(Deserialize)]
pub struct ReturnTo {
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    csrf_token: Option<String>,
    username: Option<String>,
    password: Option<String>,
    return_to: Option<String>,
}

/// The sign-in form, with a fresh double-submit CSRF pair (cookie + hidden field).
pub async fn sign_in_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReturnTo>,
) -> Result<HttpResponse, WebError> {
    let return_to = local_return_to(query.return_to.as_deref());
    if account::current(&req, &state).await?.is_some() {
        return Ok(redirect(&return_to));
    }
    Ok(sign_in_page(
        &req,
        &state,
        return_to,
        String::new(),
        None,
        actix_web::http::StatusCode::OK,
    ))
}

fn sign_in_page(
    req: &HttpRequest,
    state: &AppState,
    return_to: String,
    username: String,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> HttpResponse {
    let token = csrf::generate();
    let secure = secure_context(req, state.realms.public_url.as_deref());
    let mut builder = secured(HttpResponse::build(status));
    builder.cookie(session::cookie(csrf::SIGN_IN_COOKIE, token.clone(), secure));
    let page = SignInPage {
        chrome: Chrome::default(),
        csrf: token,
        return_to,
        username,
        error,
    };
    html(builder, &page)
}

pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, WebError> {
    let form = form.into_inner();
    let expected = req.cookie(csrf::SIGN_IN_COOKIE);
    if !csrf::matches(
        expected.as_ref().map_or("", |c| c.value()),
        form.csrf_token.as_deref(),
    ) {
        return Err(WebError::Csrf);
    }
    let return_to = local_return_to(form.return_to.as_deref());
    let username = form.username.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        return Ok(sign_in_page(
            &req,
            &state,
            return_to,
            username,
            Some(REFUSED.into()),
            actix_web::http::StatusCode::UNAUTHORIZED,
        ));
    }
    match account::sign_in(&req, &state, username.clone(), password).await {
        Ok((new, _)) => {
            let secure = secure_context(&req, state.realms.public_url.as_deref());
            let mut res = redirect(&return_to);
            let cookies = [
                session::cookie(session::COOKIE, new.cookie_value, secure),
                session::removal(csrf::SIGN_IN_COOKIE, secure),
            ];
            for c in cookies {
                res.add_cookie(&c).map_err(|_| WebError::Unavailable)?;
            }
            Ok(res)
        }
        Err(WebError::BadRequest(message)) => Ok(sign_in_page(
            &req,
            &state,
            return_to,
            username,
            Some(message),
            actix_web::http::StatusCode::UNAUTHORIZED,
        )),
        Err(e) => Err(e),
    }
}

pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let secure = secure_context(&req, state.realms.public_url.as_deref());
    if let Some(signed) = account::current(&req, &state).await? {
        if !csrf::matches(&signed.csrf, form.csrf_token.as_deref()) {
            return Err(WebError::Csrf);
        }
        // The session's flashes are deleted with it.
        account::sign_out(&state, &signed.session).await?;
    }
    let mut res = redirect("/-/sign_in");
    res.add_cookie(&session::removal(session::COOKIE, secure))
        .map_err(|_| WebError::Unavailable)?;
    Ok(res)
}

/// The projects and groups whose deploy tokens the user may see (the manager decides).
pub async fn index(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, WebError> {
    let signed = account::require(&req, &state).await?;
    let principal = signed.principal.clone();
    let (projects, groups) = on_pool(&state, move |s| {
        s.manage
            .tokens
            .listable_owners(Actor::User(&principal))
            .map_err(manage_error)
    })
    .await?;
    let page = IndexPage {
        chrome: Chrome {
            user: Some(signed.username().to_string()),
            csrf: signed.csrf.clone(),
        },
        projects: projects.iter().map(|o| o.path().to_string()).collect(),
        groups: groups.iter().map(|o| o.path().to_string()).collect(),
    };
    Ok(html(secured(HttpResponse::Ok()), &page))
}

const APP_CSS: &str = include_str!("static/app.css");
const COPY_JS: &str = include_str!("static/copy.js");

/// The stylesheet and the copy-button script, compiled in (CSP allows only 'self').
pub async fn static_file(name: web::Path<String>) -> Result<HttpResponse, WebError> {
    let (body, content_type) = match name.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "copy.js" => (COPY_JS, "text/javascript; charset=utf-8"),
        _ => return Err(WebError::NotFound("No such file.".into())),
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            actix_web::http::header::CACHE_CONTROL,
            "public, max-age=3600",
        ))
        .insert_header((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(body))
}
