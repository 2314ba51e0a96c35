//! The `groups` table.

use chrono::Utc;
use postgres::Row;

use super::{audit, claim_namespace, exists_conflict, DbError, PostgresStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::namespace::Group;
use crate::domain::path::NamespacePath;
use crate::domain::store::{GroupSettings, StoreError};
use crate::store::rows::fmt_time;
use crate::store::rows::groups::{RawGroup, COLUMNS};

fn from_row(row: &Row) -> Result<RawGroup, postgres::Error> {
    Ok(RawGroup {
        id: row.try_get(0)?,
        path: row.try_get(1)?,
        parent_id: row.try_get(2)?,
        created_at: row.try_get(3)?,
        dependency_proxy: row.try_get(4)?,
    })
}

fn build(row: Option<Row>) -> Result<Option<Group>, DbError> {
    Ok(row
        .map(|r| from_row(&r))
        .transpose()?
        .map(RawGroup::build)
        .transpose()?)
}

impl PostgresStore {
    /// Creates a group; its parent group must already exist, and no project may hold the path.
    pub(super) fn insert_group(
        &self,
        path: &NamespacePath,
        dependency_proxy: bool,
        event: &NewAuditEvent,
    ) -> Result<Group, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Under the namespace lock until commit: a project of the same path, or a second
        // group, created by another instance meanwhile waits, then sees this one.
        let parent_id = claim_namespace(&mut tx, path, "group")?;
        let now = Utc::now();
        let id: i64 = tx
            .query_one(
                "INSERT INTO groups (path, parent_id, created_at, dependency_proxy) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[
                    &path.as_str(),
                    &parent_id,
                    &fmt_time(now),
                    &dependency_proxy,
                ],
            )
            .map_err(|e| exists_conflict(e, "group", path))?
            .try_get(0)?;
        audit::insert(&mut tx, event, now)?;
        tx.commit()?;
        Ok(Group {
            id,
            path: path.clone(),
            parent_id,
            dependency_proxy,
            created_at: now,
        })
    }

    pub(super) fn update_dependency_proxy(
        &self,
        group_id: i64,
        enabled: bool,
        event: &NewAuditEvent,
    ) -> Result<Group, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // RETURNING: the row as this statement left it, not as a later read might find it
        // after another instance's change.
        let row = tx.query_opt(
            &format!("UPDATE groups SET dependency_proxy = $1 WHERE id = $2 RETURNING {COLUMNS}"),
            &[&enabled, &group_id],
        )?;
        let group = build(row)?.ok_or_else(|| DbError::NotFound(format!("group {group_id}")))?;
        audit::insert(&mut tx, event, Utc::now())?;
        tx.commit()?;
        Ok(group)
    }

    pub(super) fn find_group_by_id(&self, id: i64) -> Result<Option<Group>, DbError> {
        let mut conn = self.conn()?;
        let statement =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM groups WHERE id = $1"))?;
        build(conn.query_opt(&statement, &[&id])?)
    }

    pub(super) fn find_group(&self, path: &NamespacePath) -> Result<Option<Group>, DbError> {
        let mut conn = self.conn()?;
        let statement =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM groups WHERE path = $1"))?;
        build(conn.query_opt(&statement, &[&path.as_str()])?)
    }

    pub(super) fn all_groups(&self) -> Result<Vec<Group>, DbError> {
        // `path` is COLLATE "C": byte order, as SQLite sorts it.
        let rows = self
            .conn()?
            .query(&format!("SELECT {COLUMNS} FROM groups ORDER BY path"), &[])?;
        rows.iter().map(|r| Ok(from_row(r)?.build()?)).collect()
    }
}

impl GroupSettings for PostgresStore {
    fn dependency_proxy_enabled(&self, group_id: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached("SELECT dependency_proxy FROM groups WHERE id = $1")?;
        let enabled = conn
            .query_opt(&statement, &[&group_id])?
            .map(|r| r.try_get::<_, bool>(0))
            .transpose()?;
        Ok(enabled.unwrap_or(false))
    }
}
