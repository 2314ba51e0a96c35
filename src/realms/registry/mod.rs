//! The container-registry realm: `GET`/`POST /jwt/auth` (the handler), what a token request
//! is granted (here), and the JWT that carries the answer to the registry
//! (`keys::issue`). The service name picks the realm: a registry service is granted here,
//! a Dependency Proxy service by `realms::dependency_proxy`.

mod handler;

use actix_web::web;

use crate::domain::access::{may_use_registry, registry_actions, REPOSITORY};
use crate::domain::principal::Principal;
use crate::domain::scope::ResourceScope;
use crate::domain::store::{ProjectDirectory, StoreError, StoreFailure};
use crate::keys::issue::Access;
use crate::request::error::ApiError;

/// `/jwt/auth`: GET (Docker) and POST (OAuth, containerd); any other method is 405.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/jwt/auth")
            .route(web::get().to(handler::get))
            .route(web::post().to(handler::post))
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::MethodNotAllowed)
            })),
    );
}

/// Why a principal gets nothing from the registry at all (403, not a 200 with empty access).
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// The message names the credential, so a user learns which token to fix.
    #[error("deploy token lacks read_registry/write_registry")]
    DeployTokenScope,
    #[error("personal access token lacks read_registry/write_registry")]
    PatScope,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StoreFailure for GrantError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            GrantError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// The granted subset of `requested`: scopes with nothing left are dropped, never refused.
pub fn grant(
    directory: &dyn ProjectDirectory,
    principal: &Principal,
    requested: &[ResourceScope],
) -> Result<Vec<Access>, GrantError> {
    if !may_use_registry(principal) {
        return Err(match principal {
            Principal::User(_) => GrantError::PatScope,
            Principal::Anonymous | Principal::DeployToken(_) => GrantError::DeployTokenScope,
        });
    }
    let mut granted = Vec::with_capacity(requested.len());
    for scope in requested {
        // Only repository names have owners; other types (catalog) are never granted.
        let project = if scope.resource_type == REPOSITORY {
            directory.owning_project(&scope.name)?
        } else {
            None
        };
        let actions = registry_actions(principal, scope, project.as_ref());
        if !actions.is_empty() {
            granted.push(Access {
                resource_type: scope.resource_type.clone(),
                class: scope.class.clone(),
                name: scope.name.clone(),
                actions,
            });
        }
    }
    Ok(granted)
}
