//! The `projects` table, and the directory the registry asks "who owns this repository?";
//! with `groups.rs`, the backend's `NamespaceStore`.

use chrono::Utc;
use rusqlite::{params, OptionalExtension, Row};

use super::{audit, claim_namespace, exists_conflict, fmt_time, DbError, SqliteStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::namespace::{Group, Project, Visibility};
use crate::domain::path::{segment_prefixes, NamespacePath, MAX_DEPTH};
use crate::domain::store::{NamespaceStore, ProjectDirectory, StoreError};
use crate::store::rows::projects::{RawProject, COLUMNS};

fn from_row(row: &Row<'_>) -> rusqlite::Result<RawProject> {
    Ok(RawProject {
        id: row.get(0)?,
        path: row.get(1)?,
        group_id: row.get(2)?,
        visibility: row.get(3)?,
        created_at: row.get(4)?,
    })
}

impl SqliteStore {
    /// Creates a project. Below a group, that group must exist; no group may hold the path.
    fn insert_project(
        &self,
        path: &NamespacePath,
        visibility: Visibility,
        event: &NewAuditEvent,
    ) -> Result<Project, DbError> {
        let mut conn = self.conn()?;
        // IMMEDIATE: this reads then writes; a deferred transaction would fail at once with
        // SQLITE_BUSY_SNAPSHOT if another writer committed in between.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let group_id = claim_namespace(&tx, path, "project")?;
        let now = Utc::now();
        tx.execute(
            "INSERT INTO projects (path, group_id, visibility, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![path.as_str(), group_id, visibility.as_str(), fmt_time(now)],
        )
        .map_err(|e| exists_conflict(e, "project", path))?;
        let id = tx.last_insert_rowid();
        audit::insert(&tx, event, now)?;
        tx.commit()?;
        Ok(Project {
            id,
            path: path.clone(),
            group_id,
            visibility,
            created_at: now,
        })
    }

    fn find_project_by_id(&self, id: i64) -> Result<Option<Project>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM projects WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        Ok(row.map(RawProject::build).transpose()?)
    }

    fn find_project(&self, path: &NamespacePath) -> Result<Option<Project>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM projects WHERE path = ?1"))?
            .query_row([path.as_str()], from_row)
            .optional()?;
        Ok(row.map(RawProject::build).transpose()?)
    }

    fn all_projects(&self) -> Result<Vec<Project>, DbError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM projects ORDER BY path"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(RawProject::build)
            .collect::<Result<_, _>>()?)
    }

    fn owning_project_inner(&self, repository: &str) -> Result<Option<Project>, DbError> {
        // A project path has at most MAX_DEPTH + 1 segments; longer prefixes cannot match,
        // so skip them whatever the client sent. One point lookup on the unique index per
        // prefix, longest first, on one connection: the usual repository (the project
        // itself or one image below it) costs one or two lookups. A single
        // `path IN (...) ORDER BY length(path) DESC LIMIT 1` costs more: SQLite builds an
        // ephemeral table for the IN list and another to sort, on every request.
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM projects WHERE path = ?1"))?;
        for candidate in segment_prefixes(repository)
            .into_iter()
            .filter(|p| p.split('/').count() <= MAX_DEPTH + 1)
        {
            if let Some(row) = stmt.query_row([candidate], from_row).optional()? {
                return Ok(Some(row.build()?));
            }
        }
        Ok(None)
    }
}

impl NamespaceStore for SqliteStore {
    fn group_by_id(&self, id: i64) -> Result<Option<Group>, StoreError> {
        Ok(self.find_group_by_id(id)?)
    }

    fn group_by_path(&self, path: &NamespacePath) -> Result<Option<Group>, StoreError> {
        Ok(self.find_group(path)?)
    }

    fn list_groups(&self) -> Result<Vec<Group>, StoreError> {
        Ok(self.all_groups()?)
    }

    fn project_by_id(&self, id: i64) -> Result<Option<Project>, StoreError> {
        Ok(self.find_project_by_id(id)?)
    }

    fn list_projects(&self) -> Result<Vec<Project>, StoreError> {
        Ok(self.all_projects()?)
    }

    fn create_group(
        &self,
        path: &NamespacePath,
        dependency_proxy: bool,
        event: &NewAuditEvent,
    ) -> Result<Group, StoreError> {
        Ok(self.insert_group(path, dependency_proxy, event)?)
    }

    fn create_project(
        &self,
        path: &NamespacePath,
        visibility: Visibility,
        event: &NewAuditEvent,
    ) -> Result<Project, StoreError> {
        Ok(self.insert_project(path, visibility, event)?)
    }

    fn set_dependency_proxy(
        &self,
        group_id: i64,
        enabled: bool,
        event: &NewAuditEvent,
    ) -> Result<Group, StoreError> {
        Ok(self.update_dependency_proxy(group_id, enabled, event)?)
    }
}

impl ProjectDirectory for SqliteStore {
    fn owning_project(&self, repository: &str) -> Result<Option<Project>, StoreError> {
        Ok(self.owning_project_inner(repository)?)
    }

    fn project_by_path(&self, path: &NamespacePath) -> Result<Option<Project>, StoreError> {
        Ok(self.find_project(path)?)
    }
}
