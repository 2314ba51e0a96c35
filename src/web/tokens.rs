//! The deploy-token pages of a project or group: list, create (the secret shown once),
//! and revoke after a confirmation. `DeployTokenManager` authorises, validates and audits
//! every step; these handlers only translate between forms and its calls.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use secrecy::{ExposeSecret, SecretString};

use super::account::{self, SignedIn};
use super::csrf;
use super::error::{html, manage_error, redirect, secured, WebError};
use super::views::{
    page_url, Chrome, CreateForm, CreatedView, DeployTokensPage, OwnerView, RevokePage, TokenRow,
};
use super::{on_pool, put_flash, take_flashes};
use crate::app::flash::Flash;
use crate::app::AppState;
use crate::domain::deploy_token::{DeployToken, TokenOwner};
use crate::domain::management::TokenAction;
use crate::manage::{Actor, CreateRequest, DeployTokenManager, ManageError};

/// Which kind of namespace a URL names.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Project,
    Group,
}

pub async fn show(
    kind: Kind,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, WebError> {
    let signed = account::require(&req, &state).await?;
    let owner = resolve(&state, kind, path.into_inner()).await?;
    let form = state
        .manage
        .tokens
        .may(Actor::User(&signed.principal), &owner, TokenAction::Create)
        .then(|| CreateForm::new(&[]));
    render(&state, &signed, &owner, form, StatusCode::OK).await
}

pub async fn create(
    kind: Kind,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let signed = account::require(&req, &state).await?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|_| WebError::BadRequest("The form could not be read.".into()))?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if !csrf::matches(&signed.csrf, field(csrf::FIELD).as_deref()) {
        return Err(WebError::Csrf);
    }
    let owner = resolve(&state, kind, path.into_inner()).await?;
    let scopes: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "scopes")
        .map(|(_, v)| v.clone())
        .collect();
    let non_empty = |v: Option<String>| v.filter(|s| !s.is_empty());
    let request = CreateRequest {
        name: field("name"),
        scopes: scopes.clone(),
        expires_at: non_empty(field("expires_at")),
        username: non_empty(field("username")),
    };
    let (principal, for_owner) = (signed.principal.clone(), owner.clone());
    let created = on_pool(&state, move |s| {
        Ok(s.manage
            .tokens
            .create(Actor::User(&principal), &for_owner, request))
    })
    .await?;
    match created {
        Ok((token, secret)) => {
            let flash = Flash::Created {
                name: token.name.clone(),
                username: token.username(),
                secret: SecretString::from(secret.expose().to_string()),
            };
            put_flash(&state, &signed, &page_key(&owner), flash).await?;
            Ok(redirect(&page_url(&owner)))
        }
        Err(ManageError::Invalid(errors)) => {
            let mut form = CreateForm::new(&scopes);
            form.name = field("name").unwrap_or_default();
            form.expires_at = field("expires_at").unwrap_or_default();
            form.username = field("username").unwrap_or_default();
            for e in errors {
                form.add_error(e.field, e.message);
            }
            render(&state, &signed, &owner, Some(form), StatusCode::BAD_REQUEST).await
        }
        Err(e) => Err(manage_error(e)),
    }
}

/// The confirmation step: a page with one button, so revoking needs no script.
pub async fn confirm_revoke(
    kind: Kind,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, WebError> {
    let signed = account::require(&req, &state).await?;
    let (path, token_id) = path.into_inner();
    let owner = resolve(&state, kind, path).await?;
    let (principal, for_owner) = (signed.principal.clone(), owner.clone());
    let token = on_pool(&state, move |s| {
        s.manage
            .tokens
            .get(Actor::User(&principal), &for_owner, token_id)
            .map_err(manage_error)
    })
    .await?;
    if token.revoked_at.is_some() {
        return Err(WebError::NotFound(
            "This deploy token is already revoked.".into(),
        ));
    }
    let page = RevokePage {
        chrome: chrome(&signed),
        owner: OwnerView::of(&owner),
        token: TokenRow::of(&token, Utc::now(), true),
    };
    Ok(html(secured(HttpResponse::Ok()), &page))
}

pub async fn revoke(
    kind: Kind,
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
    form: web::Form<super::csrf::CsrfOnly>,
) -> Result<HttpResponse, WebError> {
    let signed = account::require(&req, &state).await?;
    if !csrf::matches(&signed.csrf, form.csrf_token.as_deref()) {
        return Err(WebError::Csrf);
    }
    let (path, token_id) = path.into_inner();
    let owner = resolve(&state, kind, path).await?;
    let (principal, for_owner) = (signed.principal.clone(), owner.clone());
    let (token, _) = on_pool(&state, move |s| {
        s.manage
            .tokens
            .revoke(Actor::User(&principal), &for_owner, token_id)
            .map_err(manage_error)
    })
    .await?;
    put_flash(
        &state,
        &signed,
        &page_key(&owner),
        Flash::Revoked { name: token.name },
    )
    .await?;
    Ok(redirect(&page_url(&owner)))
}

/// The page itself: tokens (as the manager lists them), this session's one-shot messages,
/// and the create form when given.
async fn render(
    state: &web::Data<AppState>,
    signed: &SignedIn,
    owner: &TokenOwner,
    form: Option<CreateForm>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let (principal, for_owner) = (signed.principal.clone(), owner.clone());
    let tokens: Vec<DeployToken> = on_pool(state, move |s| {
        s.manage
            .tokens
            .list(Actor::User(&principal), &for_owner)
            .map_err(manage_error)
    })
    .await?;
    let now = Utc::now();
    let revocable =
        state
            .manage
            .tokens
            .may(Actor::User(&signed.principal), owner, TokenAction::Revoke);
    let mut created = Vec::new();
    let mut revoked = Vec::new();
    for flash in take_flashes(state, signed, &page_key(owner)).await? {
        match flash {
            Flash::Created {
                name,
                username,
                secret,
                ..
            } => created.push(CreatedView {
                name,
                username,
                secret: secret.expose_secret().to_string(),
            }),
            Flash::Revoked { name } => revoked.push(name),
            Flash::Deleted { .. } => {}
        }
    }
    let page = DeployTokensPage {
        chrome: chrome(signed),
        owner: OwnerView::of(owner),
        created,
        revoked,
        form,
        tokens: tokens
            .iter()
            .map(|t| TokenRow::of(t, now, revocable))
            .collect(),
    };
    Ok(html(secured(HttpResponse::build(status)), &page))
}

fn chrome(signed: &SignedIn) -> Chrome {
    Chrome {
        user: Some(signed.username().to_string()),
        csrf: signed.csrf.clone(),
    }
}

/// Flashes belong to one page: the owner's kind and id.
fn page_key(owner: &TokenOwner) -> String {
    match owner {
        TokenOwner::Project { id, .. } => format!("project:{id}"),
        TokenOwner::Group { id, .. } => format!("group:{id}"),
    }
}

/// The owner a URL names, and the project itself when it is one (roles on a project need
/// its id and path).
async fn resolve(
    state: &web::Data<AppState>,
    kind: Kind,
    path: String,
) -> Result<TokenOwner, WebError> {
    on_pool(state, move |s| match kind {
        Kind::Project => {
            let project = s
                .manage
                .tokens
                .resolve_project(&path)
                .map_err(manage_error)?;
            Ok(DeployTokenManager::project_owner(&project))
        }
        Kind::Group => {
            let group = s.manage.tokens.resolve_group(&path).map_err(manage_error)?;
            Ok(DeployTokenManager::group_owner(&group))
        }
    })
    .await
}
