//! From a route's `{id}` to the token owner it names, with GitLab's 404 wording.

use actix_web::HttpRequest;

use super::error::{manage_error, GitlabError};
use crate::domain::deploy_token::TokenOwner;
use crate::domain::namespace::Project;
use crate::manage::DeployTokenManager;
use crate::request::ids::NamespaceRef;

/// The namespace a route names, read from the request (no storage yet), so it can move to
/// the blocking pool with the rest of the call.
#[derive(Debug, Clone)]
pub struct Target {
    kind: Kind,
    lookup: String,
}

impl Target {
    pub fn of(req: &HttpRequest) -> Result<Self, GitlabError> {
        let kind = Kind::of(req);
        Ok(Self {
            kind,
            lookup: namespace_ref(req, kind)?.as_lookup(),
        })
    }

    /// The project `/projects/:id/…` names (CI variables exist for projects only).
    pub fn project_of(req: &HttpRequest) -> Result<Self, GitlabError> {
        Ok(Self {
            kind: Kind::Project,
            lookup: namespace_ref(req, Kind::Project)?.as_lookup(),
        })
    }

    /// The project or group, as the owner of deploy tokens.
    pub fn owner(&self, manager: &DeployTokenManager) -> Result<TokenOwner, GitlabError> {
        match self.kind {
            Kind::Project => {
                let project = manager
                    .resolve_project(&self.lookup)
                    .map_err(manage_error)?;
                Ok(DeployTokenManager::project_owner(&project))
            }
            Kind::Group => {
                let group = manager.resolve_group(&self.lookup).map_err(manage_error)?;
                Ok(DeployTokenManager::group_owner(&group))
            }
        }
    }

    pub fn project(&self, manager: &DeployTokenManager) -> Result<Project, GitlabError> {
        manager.resolve_project(&self.lookup).map_err(manage_error)
    }
}

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
