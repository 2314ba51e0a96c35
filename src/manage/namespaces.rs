//! Creating groups and projects and changing group settings, on behalf of an actor, each
//! with its audit event (`group_created`, `project_created`, `group_updated`).

use std::sync::Arc;

use super::{Actor, ManageError, Missing};
use crate::domain::audit::{AuditAction, NewAuditEvent};
use crate::domain::management::{may_change_namespaces, NamespaceAction};
use crate::domain::namespace::{Group, Project, Visibility};
use crate::domain::path::NamespacePath;
use crate::domain::store::{Store, StoreError};

pub struct NamespaceManager {
    store: Arc<dyn Store>,
}

impl NamespaceManager {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// A group below an existing parent (or at top level); the path must be free.
    pub fn create_group(
        &self,
        actor: Actor<'_>,
        path: &NamespacePath,
        dependency_proxy: bool,
    ) -> Result<Group, ManageError> {
        let parent = path.parent();
        actor
            .require(|u| may_change_namespaces(u, parent.as_ref(), NamespaceAction::CreateGroup))?;
        let event = NewAuditEvent::by(&actor.audit(), AuditAction::GroupCreated, path.as_str())
            .with_detail(format!("dependency_proxy={dependency_proxy}"));
        self.store
            .create_group(path, dependency_proxy, &event)
            .map_err(|e| missing_parent(e, path))
    }

    /// A project in an existing group (or at top level); the path must be free.
    pub fn create_project(
        &self,
        actor: Actor<'_>,
        path: &NamespacePath,
        visibility: Visibility,
    ) -> Result<Project, ManageError> {
        let parent = path.parent();
        actor.require(|u| {
            may_change_namespaces(u, parent.as_ref(), NamespaceAction::CreateProject)
        })?;
        let event = NewAuditEvent::by(&actor.audit(), AuditAction::ProjectCreated, path.as_str())
            .with_detail(format!("visibility={visibility}"));
        self.store
            .create_project(path, visibility, &event)
            .map_err(|e| missing_parent(e, path))
    }

    /// Turns the group's Dependency Proxy on or off (next token request on).
    pub fn set_dependency_proxy(
        &self,
        actor: Actor<'_>,
        path: &NamespacePath,
        enabled: bool,
    ) -> Result<Group, ManageError> {
        actor.require(|u| {
            may_change_namespaces(u, Some(path), NamespaceAction::ChangeGroupSettings)
        })?;
        let group = self.group(path)?;
        let event = NewAuditEvent::by(&actor.audit(), AuditAction::GroupUpdated, path.as_str())
            .with_detail(format!("dependency_proxy={enabled}"));
        self.store
            .set_dependency_proxy(group.id, enabled, &event)
            .map_err(|e| match e {
                StoreError::NotFound(_) => Missing::Group(path.to_string()).into(),
                other => other.into(),
            })
    }

    pub fn group(&self, path: &NamespacePath) -> Result<Group, ManageError> {
        self.store
            .group_by_path(path)?
            .ok_or_else(|| Missing::Group(path.to_string()).into())
    }

    pub fn project(&self, path: &NamespacePath) -> Result<Project, ManageError> {
        self.store
            .project_by_path(path)?
            .ok_or_else(|| Missing::Project(path.to_string()).into())
    }

    /// Every group, by path (the CLI's and the pages' listing; callers filter by role).
    pub fn groups(&self) -> Result<Vec<Group>, ManageError> {
        Ok(self.store.list_groups()?)
    }

    /// Every project, by path.
    pub fn projects(&self) -> Result<Vec<Project>, ManageError> {
        Ok(self.store.list_projects()?)
    }
}

/// The store's "not found" on a create is the parent group.
fn missing_parent(e: StoreError, path: &NamespacePath) -> ManageError {
    match e {
        StoreError::NotFound(_) => {
            Missing::ParentGroup(path.parent().map(|p| p.to_string()).unwrap_or_default()).into()
        }
        other => other.into(),
    }
}
