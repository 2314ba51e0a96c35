//! The `projects` table, and the directory the registry asks "who owns this repository?";
//! with `groups.rs`, the backend's `NamespaceStore`.

use chrono::Utc;
use postgres::Row;

use super::{audit, claim_namespace, exists_conflict, DbError, PostgresStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::namespace::{Group, Project, Visibility};
use crate::domain::path::{segment_prefixes, NamespacePath, MAX_DEPTH};
use crate::domain::store::{NamespaceStore, ProjectDirectory, StoreError};
use crate::store::rows::fmt_time;
use crate::store::rows::projects::{RawProject, COLUMNS};

fn from_row(row: &Row) -> Result<RawProject, postgres::Error> {
    Ok(RawProject {
        id: row.try_get(0)?,
        path: row.try_get(1)?,
        group_id: row.try_get(2)?,
        visibility: row.try_get(3)?,
        created_at: row.try_get(4)?,
    })
}

fn build(row: Option<Row>) -> Result<Option<Project>, DbError> {
    Ok(row
        .map(|r| from_row(&r))
        .transpose()?
        .map(RawProject::build)
        .transpose()?)
}

impl PostgresStore {
    /// Creates a project. Below a group, that group must exist; no group may hold the path.
    fn insert_project(
        &self,
        path: &NamespacePath,
        visibility: Visibility,
        event: &NewAuditEvent,
    ) -> Result<Project, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Under the namespace lock until commit: a group of the same path, or a second
        // project, created by another instance meanwhile waits, then sees this one.
        let group_id = claim_namespace(&mut tx, path, "project")?;
        let now = Utc::now();
        let id: i64 = tx
            .query_one(
                "INSERT INTO projects (path, group_id, visibility, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[
                    &path.as_str(),
                    &group_id,
                    &visibility.as_str(),
                    &fmt_time(now),
                ],
            )
            .map_err(|e| exists_conflict(e, "project", path))?
            .try_get(0)?;
        audit::insert(&mut tx, event, now)?;
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
        let mut conn = self.conn()?;
        let statement =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM projects WHERE id = $1"))?;
        build(conn.query_opt(&statement, &[&id])?)
    }

    fn find_project(&self, path: &NamespacePath) -> Result<Option<Project>, DbError> {
        let mut conn = self.conn()?;
        let statement =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM projects WHERE path = $1"))?;
        build(conn.query_opt(&statement, &[&path.as_str()])?)
    }

    fn all_projects(&self) -> Result<Vec<Project>, DbError> {
        // `path` is COLLATE "C": byte order, as SQLite sorts it.
        let rows = self.conn()?.query(
            &format!("SELECT {COLUMNS} FROM projects ORDER BY path"),
            &[],
        )?;
        rows.iter().map(|r| Ok(from_row(r)?.build()?)).collect()
    }

    fn owning_project_inner(&self, repository: &str) -> Result<Option<Project>, DbError> {
        // A project path has at most MAX_DEPTH + 1 segments; longer prefixes cannot match,
        // so skip them whatever the client sent. Unlike SQLite's one lookup per prefix,
        // all prefixes go in one statement: here each statement is a round trip to the
        // server, and `= ANY` over a handful of values is a few probes of the unique index.
        // The prefixes of one name all differ in length, so the longest match is the one
        // SQLite's longest-first loop would find.
        let candidates: Vec<&str> = segment_prefixes(repository)
            .into_iter()
            .filter(|p| p.split('/').count() <= MAX_DEPTH + 1)
            .collect();
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM projects WHERE path = ANY($1) \
             ORDER BY octet_length(path) DESC LIMIT 1"
        ))?;
        build(conn.query_opt(&statement, &[&candidates])?)
    }
}

impl NamespaceStore for PostgresStore {
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

impl ProjectDirectory for PostgresStore {
    fn owning_project(&self, repository: &str) -> Result<Option<Project>, StoreError> {
        Ok(self.owning_project_inner(repository)?)
    }

    fn project_by_path(&self, path: &NamespacePath) -> Result<Option<Project>, StoreError> {
        Ok(self.find_project(path)?)
    }
}
