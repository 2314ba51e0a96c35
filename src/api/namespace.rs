//! From a route's `{id}` to the token owner it names, with GitLab's 404 wording.

use actix_web::HttpRequest;

use super::error::{manage_error, GitlabError};
use super::ids::NamespaceRef;
use crate::domain::deploy_token::TokenOwner;
use crate::domain::namespace::Project;
use crate::manage::DeployTokenManager;

/// Which scope a route lives under; set per scope with `app_data`, so the project and group
/// routes share their handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Project,
    Group,
}

impl Kind {
    pub fn of(req: &HttpRequest) -> Kind {
        // Every route using this sits in a scope that sets it; projects otherwise.
        req.app_data::<Kind>().copied().unwrap_or(Kind::Project)
    }

    pub fn not_found(self) -> GitlabError {
        match self {
            Kind::Project => GitlabError::project_not_found(),
            Kind::Group => GitlabError::group_not_found(),
        }
    }
}

/// The raw `{id}` segment, decoded (see [`NamespaceRef`]).
fn namespace_ref(req: &HttpRequest, kind: Kind) -> Result<NamespaceRef, GitlabError> {
    req.match_info()
        .get("id")
        .and_then(NamespaceRef::parse)
        .ok_or_else(|| kind.not_found())
}

/// The project or group the route names, as the owner of deploy tokens.
pub fn owner(req: &HttpRequest, manager: &DeployTokenManager) -> Result<TokenOwner, GitlabError> {
    let kind = Kind::of(req);
    let lookup = namespace_ref(req, kind)?.as_lookup();
    match kind {
        Kind::Project => {
            let project = manager.resolve_project(&lookup).map_err(manage_error)?;
            Ok(DeployTokenManager::project_owner(&project))
        }
        Kind::Group => {
            let group = manager.resolve_group(&lookup).map_err(manage_error)?;
            Ok(DeployTokenManager::group_owner(&group))
        }
    }
}

/// The project the route names (CI variables exist for projects only).
pub fn project(req: &HttpRequest, manager: &DeployTokenManager) -> Result<Project, GitlabError> {
    let lookup = namespace_ref(req, Kind::Project)?.as_lookup();
    manager.resolve_project(&lookup).map_err(manage_error)
}
