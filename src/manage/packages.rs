//! Publishing and deleting packages on behalf of a principal (a deploy token or a user),
//! each with its audit event (`package_published`, `package_deleted`) in the transaction
//! of the change. The realm streams and verifies the upload first; this keeps it, records
//! it, and removes blobs no file refers to any more.

use std::sync::Arc;

use super::{ManageError, Missing};
use crate::domain::audit::{AuditAction, AuditActor, NewAuditEvent};
use crate::domain::namespace::Project;
use crate::domain::package::{
    package_access, Package, PackageAccess, PackageFile, PackageFormat, PackageOperation,
};
use crate::domain::principal::Principal;
use crate::domain::store::{NewPackageFile, PublishMode, Published, Store, StoreError};
use crate::store::blobs::{BlobStore, Staged};

/// What is being published, as the format read it from the request.
#[derive(Debug, Clone)]
pub struct Upload {
    pub format: PackageFormat,
    pub name: String,
    pub version: String,
    pub file_name: String,
    /// Format-specific JSON for the version; `None` keeps what is stored.
    pub metadata: Option<String>,
    /// Tags (npm's dist-tags) to point at this version.
    pub tags: Vec<String>,
}

pub struct PackageManager {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
}

/// Who did it, as the audit log names them.
fn actor_of(principal: &Principal) -> (AuditActor, Option<i64>) {
    match principal {
        Principal::Anonymous => (
            AuditActor {
                name: "anonymous".into(),
                user_id: None,
            },
            None,
        ),
        Principal::DeployToken(t) => (
            AuditActor {
                name: t.username(),
                user_id: None,
            },
            Some(t.id),
        ),
        Principal::User(u) => (
            AuditActor {
                name: u.user.username.clone(),
                user_id: Some(u.user.id),
            },
            None,
        ),
    }
}

/// The audit event of `action` on `project` by `principal`, with `detail`.
fn event_by(
    principal: &Principal,
    action: AuditAction,
    project: &Project,
    detail: String,
) -> NewAuditEvent {
    let (actor, token_id) = actor_of(principal);
    let mut event = NewAuditEvent::by(&actor, action, project.path.to_string()).with_detail(detail);
    event.deploy_token_id = token_id;
    event
}

/// The package rules' refusal as a management error.
pub fn authorize(
    principal: &Principal,
    project: &Project,
    op: PackageOperation,
) -> Result<(), ManageError> {
    match package_access(principal, Some(project), op) {
        PackageAccess::Allowed => Ok(()),
        PackageAccess::NotFound => Err(Missing::Project(project.path.to_string()).into()),
        PackageAccess::CredentialsRequired | PackageAccess::Forbidden => {
            Err(ManageError::Forbidden)
        }
    }
}

impl PackageManager {
    pub fn new(store: Arc<dyn Store>, blobs: Arc<dyn BlobStore>) -> Self {
        Self { store, blobs }
    }

    /// Held while a blob is kept and recorded, and while one is checked for references and
    /// removed: blobs are shared by content, so without it a publish of the same bytes could
    /// land between another request's "unreferenced" and its removal, leaving a row whose
    /// blob is gone. A file lock in the shared data directory, so it holds across instances
    /// too; publishes and deletes are rare beside reads, which never take it.
    fn blob_refs(&self) -> Result<crate::store::blobs::ReferencesHeld, ManageError> {
        self.blobs.hold_references().map_err(|e| {
            log::error!("cannot lock the package files' references: {e}");
            ManageError::Store(StoreError::Unavailable(e.to_string()))
        })
    }

    /// Keeps `staged` and records it as `upload`. A name already taken in the way `mode`
    /// forbids is `Conflict`.
    pub fn publish(
        &self,
        principal: &Principal,
        project: &Project,
        staged: Staged,
        upload: Upload,
        mode: PublishMode,
    ) -> Result<Published, ManageError> {
        authorize(principal, project, PackageOperation::Publish)?;
        let (actor, token_id) = actor_of(principal);
        let new = NewPackageFile {
            project_id: project.id,
            format: upload.format,
            normalized_name: upload.format.normalize(&upload.name),
            name: upload.name,
            version: upload.version,
            metadata: upload.metadata,
            file_name: upload.file_name,
            size: i64::try_from(staged.size).unwrap_or(i64::MAX),
            digests: staged.digests.clone(),
            uploaded_by: actor.name.clone(),
            deploy_token_id: token_id,
            user_id: actor.user_id,
            tags: upload.tags,
        };
        let event = event_by(
            principal,
            AuditAction::PackagePublished,
            project,
            format!(
                "format={} name={} version={} file={} size={} sha256={}",
                new.format, new.name, new.version, new.file_name, new.size, new.digests.sha256
            ),
        );
        let _refs = self.blob_refs()?;
        staged.keep(self.blobs.as_ref()).map_err(|e| {
            log::error!("cannot keep an uploaded package file: {e}");
            ManageError::Store(StoreError::Unavailable(e.to_string()))
        })?;
        match self.store.publish(&new, mode, &event) {
            Ok(published) => {
                if let Some(sha) = &published.unreferenced {
                    self.remove_blob(sha);
                }
                Ok(published)
            }
            Err(refused) => {
                // A refused publish (a version taken, the database gone) keeps no blob that
                // no file names; bytes some file already had stay.
                if matches!(self.store.blob_referenced(&new.digests.sha256), Ok(false)) {
                    self.remove_blob(&new.digests.sha256);
                }
                Err(refused.into())
            }
        }
    }

    /// May `principal` do `op` with `project`'s packages? For what a page offers; every
    /// call checks again.
    pub fn may(&self, principal: &Principal, project: &Project, op: PackageOperation) -> bool {
        package_access(principal, Some(project), op) == PackageAccess::Allowed
    }

    /// The project's packages with their files, newest first (readers and up).
    pub fn list(
        &self,
        principal: &Principal,
        project: &Project,
    ) -> Result<Vec<(Package, Vec<PackageFile>)>, ManageError> {
        authorize(principal, project, PackageOperation::Read)?;
        self.store
            .project_packages(project.id, None)?
            .into_iter()
            .map(|p| {
                let files = self.store.package_files(p.id)?;
                Ok((p, files))
            })
            .collect()
    }

    /// One package of the project, with its files.
    pub fn get(
        &self,
        principal: &Principal,
        project: &Project,
        id: i64,
    ) -> Result<(Package, Vec<PackageFile>), ManageError> {
        authorize(principal, project, PackageOperation::Read)?;
        let package = self
            .store
            .package(id)?
            .filter(|p| p.project_id == project.id)
            .ok_or(Missing::Package(id))?;
        let files = self.store.package_files(id)?;
        Ok((package, files))
    }

    /// Deletes the package with this id (it must be the project's).
    pub fn delete_by_id(
        &self,
        principal: &Principal,
        project: &Project,
        id: i64,
    ) -> Result<Package, ManageError> {
        authorize(principal, project, PackageOperation::Delete)?;
        let package = self
            .store
            .package(id)?
            .filter(|p| p.project_id == project.id)
            .ok_or(Missing::Package(id))?;
        self.delete(principal, project, &package)?;
        Ok(package)
    }

    /// Deletes a version and its files.
    pub fn delete(
        &self,
        principal: &Principal,
        project: &Project,
        package: &Package,
    ) -> Result<(), ManageError> {
        authorize(principal, project, PackageOperation::Delete)?;
        if package.project_id != project.id {
            return Err(Missing::Package(package.id).into());
        }
        let event = event_by(
            principal,
            AuditAction::PackageDeleted,
            project,
            format!(
                "format={} name={} version={} package={}",
                package.format, package.name, package.version, package.id
            ),
        );
        let _refs = self.blob_refs()?;
        let unreferenced = self
            .store
            .delete_package(package.id, &event)
            .map_err(|e| match e {
                StoreError::NotFound(_) => ManageError::NotFound(Missing::Package(package.id)),
                other => other.into(),
            })?;
        for sha in unreferenced {
            self.remove_blob(&sha);
        }
        Ok(())
    }

    /// Replaces a version's metadata (Cargo's yank and unyank), audited as
    /// `package_updated` with `detail`. Whoever may publish may do it.
    pub fn update_metadata(
        &self,
        principal: &Principal,
        project: &Project,
        package: &Package,
        metadata: &str,
        detail: &str,
    ) -> Result<(), ManageError> {
        authorize(principal, project, PackageOperation::Publish)?;
        if package.project_id != project.id {
            return Err(Missing::Package(package.id).into());
        }
        let event = event_by(
            principal,
            AuditAction::PackageUpdated,
            project,
            format!(
                "format={} name={} version={} package={} {detail}",
                package.format, package.name, package.version, package.id
            ),
        );
        self.store
            .set_package_metadata(package.id, metadata, &event)
            .map_err(|e| match e {
                StoreError::NotFound(_) => ManageError::NotFound(Missing::Package(package.id)),
                other => other.into(),
            })
    }

    /// A blob left behind costs only disk space (content-addressed, never served without a
    /// row), so a failed removal is logged, not an error.
    fn remove_blob(&self, sha256: &str) {
        if let Err(e) = self.blobs.remove(sha256) {
            log::warn!("could not remove unreferenced package blob {sha256}: {e}");
        }
    }
}
