//! The settings pages in the browser: sign in with a password, then list, create and
//! revoke the deploy tokens of projects and groups. Server-rendered (askama), usable
//! without JavaScript, readable on a phone.
//!
//! Everything lives under `/-/`: `-` can never start a group or project path segment, so
//! these URLs never shadow a git repository's.

mod account;
mod csrf;
mod error;
mod packages;
mod pages;
mod session;
mod tokens;
mod views;

use actix_web::web;

use crate::app::AppState;
use error::WebError;
use tokens::Kind;

/// Largest settings form accepted; the create form is a few hundred bytes.
const FORM_LIMIT: usize = 16 * 1024;

/// Runs a handler's storage-bound part on the blocking pool ([`AppState::on_pool`]).
async fn on_pool<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, WebError>
where
    F: FnOnce(&AppState) -> Result<T, WebError> + Send + 'static,
    T: Send + 'static,
{
    state.clone().into_inner().on_pool(work).await
}

/// Keeps a one-shot message for the next rendering of `page` in this session.
async fn put_flash(
    state: &web::Data<AppState>,
    signed: &account::SignedIn,
    page: &str,
    flash: crate::app::flash::Flash,
) -> Result<(), WebError> {
    let (session, page) = (signed.session.clone(), page.to_string());
    on_pool(state, move |s| {
        Ok(s.web.flashes.put(&session, &page, flash)?)
    })
    .await
}

/// This session's one-shot messages for `page`, removed as they are read.
async fn take_flashes(
    state: &web::Data<AppState>,
    signed: &account::SignedIn,
    page: &str,
) -> Result<Vec<crate::app::flash::Flash>, WebError> {
    let (session, page) = (signed.session.clone(), page.to_string());
    on_pool(state, move |s| Ok(s.web.flashes.take(&session, &page)?)).await
}

const PROJECT_PAGE: &str = "/-/projects/{path:.+}/settings/deploy_tokens";
const PACKAGES_PAGE: &str = "/-/projects/{path:.+}/packages";
const PACKAGE_DELETE: &str = "/-/projects/{path:.+}/packages/{id:[0-9]+}/delete";
const GROUP_PAGE: &str = "/-/groups/{path:.+}/settings/deploy_tokens";
const PROJECT_REVOKE: &str = "/-/projects/{path:.+}/settings/deploy_tokens/{id:[0-9]+}/revoke";
const GROUP_REVOKE: &str = "/-/groups/{path:.+}/settings/deploy_tokens/{id:[0-9]+}/revoke";

/// Registers the pages. `/-/health`, `/-/jwks` and the like are other resources, so
/// this adds single resources rather than a `/-` scope that would swallow them.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let forms = || {
        (
            web::FormConfig::default().limit(FORM_LIMIT),
            web::PayloadConfig::new(FORM_LIMIT),
        )
    };
    cfg.service(web::resource("/-/").route(web::get().to(pages::index)))
        .service(
            web::resource("/-/sign_in")
                .app_data(forms().0)
                .route(web::get().to(pages::sign_in_form))
                .route(web::post().to(pages::sign_in)),
        )
        .service(
            web::resource("/-/sign_out")
                .app_data(forms().0)
                .route(web::post().to(pages::sign_out)),
        )
        .route("/-/static/{name}", web::get().to(pages::static_file))
        .service(
            web::resource(PROJECT_REVOKE)
                .app_data(forms().0)
                .route(web::get().to(|r, s, p| tokens::confirm_revoke(Kind::Project, r, s, p)))
                .route(web::post().to(|r, s, p, f| tokens::revoke(Kind::Project, r, s, p, f))),
        )
        .service(
            web::resource(GROUP_REVOKE)
                .app_data(forms().0)
                .route(web::get().to(|r, s, p| tokens::confirm_revoke(Kind::Group, r, s, p)))
                .route(web::post().to(|r, s, p, f| tokens::revoke(Kind::Group, r, s, p, f))),
        )
        .service(
            web::resource(PACKAGE_DELETE)
                .app_data(forms().0)
                .route(web::get().to(packages::confirm_delete))
                .route(web::post().to(packages::delete)),
        )
        .service(web::resource(PACKAGES_PAGE).route(web::get().to(packages::show)))
        .service(
            web::resource(PROJECT_PAGE)
                .app_data(forms().1)
                .route(web::get().to(|r, s, p| tokens::show(Kind::Project, r, s, p)))
                .route(web::post().to(|r, s, p, b| tokens::create(Kind::Project, r, s, p, b))),
        )
        .service(
            web::resource(GROUP_PAGE)
                .app_data(forms().1)
                .route(web::get().to(|r, s, p| tokens::show(Kind::Group, r, s, p)))
                .route(web::post().to(|r, s, p, b| tokens::create(Kind::Group, r, s, p, b))),
        );
}
