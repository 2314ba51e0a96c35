//! A project's Packages page: every package version with its format, size and age, and for
//! maintainers a delete behind a confirmation page. `PackageManager` authorises, deletes
//! and audits; these handlers only translate between forms and its calls.

use actix_web::{web, HttpRequest, HttpResponse};

use super::account::{self, SignedIn};
use super::csrf::{self, CsrfOnly};
use super::error::{html, manage_error, redirect, secured, WebError};
use super::views::{packages_url, Chrome, DeletePackagePage, PackageRow, PackagesPage};
use super::{on_pool, put_flash, take_flashes};
use crate::app::flash::Flash;
use crate::app::AppState;
use crate::domain::namespace::Project;
use crate::domain::package::PackageOperation;
use crate::domain::principal::Principal;

fn principal(signed: &SignedIn) -> Principal {
    Principal::User(Box::new(signed.principal.clone()))
}

fn chrome(signed: &SignedIn) -> Chrome {
    Chrome {
        user: Some(signed.username().to_string()),
        csrf: signed.csrf.clone(),
    }
}

fn page_key(project: &Project) -> String {
    format!("packages:{}", project.id)
}

async fn resolve(state: &web::Data<AppState>, path: String) -> Result<Project, WebError> {
    on_pool(state, move |s| {
        s.manage.tokens.resolve_project(&path).map_err(manage_error)
    })
    .await
}

pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let signed = account::require(&req, &state).await?;
    let project = resolve(&state, path.into_inner()).await?;
    let who = principal(&signed);
    let for_project = project.clone();
    let (packages, may_delete) = on_pool(&state, move |s| {
        let listed = s
            .manage
            .packages
            .list(&who, &for_project)
            .map_err(manage_error)?;
        let may = s
            .manage
            .packages
            .may(&who, &for_project, PackageOperation::Delete);
        Ok((listed, may))
    })
    .await?;
    let page_url = packages_url(project.path.as_str());
    let deleted = take_flashes(&state, &signed, &page_key(&project))
        .await?
        .into_iter()
        .filter_map(|f| match f {
            Flash::Deleted { what } => Some(what),
            _ => None,
        })
        .collect();
    let page = PackagesPage {
        chrome: chrome(&signed),
        project: project.path.to_string(),
        tokens_url: format!("/-/projects/{}/settings/deploy_tokens", project.path),
        deleted,
        packages: packages
            .iter()
            .map(|(p, files)| PackageRow::of(p, files, &page_url, may_delete))
            .collect(),
    };
    Ok(html(secured(HttpResponse::Ok()), &page))
}

/// The confirmation step: one button, so deleting needs no script.
pub async fn confirm_delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, WebError> {
    let signed = account::require(&req, &state).await?;
    let (path, id) = path.into_inner();
    let project = resolve(&state, path).await?;
    let who = principal(&signed);
    let for_project = project.clone();
    let (package, files) = on_pool(&state, move |s| {
        let found = s
            .manage
            .packages
            .get(&who, &for_project, id)
            .map_err(manage_error)?;
        if !s
            .manage
            .packages
            .may(&who, &for_project, PackageOperation::Delete)
        {
            return Err(WebError::Forbidden);
        }
        Ok(found)
    })
    .await?;
    let page_url = packages_url(project.path.as_str());
    let page = DeletePackagePage {
        chrome: chrome(&signed),
        project: project.path.to_string(),
        package: PackageRow::of(&package, &files, &page_url, true),
        page_url,
    };
    Ok(html(secured(HttpResponse::Ok()), &page))
}

pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let signed = account::require(&req, &state).await?;
    if !csrf::matches(&signed.csrf, form.csrf_token.as_deref()) {
        return Err(WebError::Csrf);
    }
    let (path, id) = path.into_inner();
    let project = resolve(&state, path).await?;
    let who = principal(&signed);
    let for_project = project.clone();
    let package = on_pool(&state, move |s| {
        s.manage
            .packages
            .delete_by_id(&who, &for_project, id)
            .map_err(manage_error)
    })
    .await?;
    let flash = Flash::Deleted {
        what: format!("{} {}", package.name, package.version),
    };
    put_flash(&state, &signed, &page_key(&project), flash).await?;
    Ok(redirect(&packages_url(project.path.as_str())))
}
