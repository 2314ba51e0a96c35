//! The `groups` table.

use chrono::Utc;
use rusqlite::{params, OptionalExtension, Row};

use super::{audit, claim_namespace, exists_conflict, fmt_time, DbError, SqliteStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::namespace::Group;
use crate::domain::path::NamespacePath;
use crate::domain::store::{GroupSettings, StoreError};
use crate::store::rows::groups::{RawGroup, COLUMNS};

fn from_row(row: &Row<'_>) -> rusqlite::Result<RawGroup> {
    Ok(RawGroup {
        id: row.get(0)?,
        path: row.get(1)?,
        parent_id: row.get(2)?,
        created_at: row.get(3)?,
        dependency_proxy: row.get(4)?,
    })
}

impl SqliteStore {
    /// Creates a group; its parent group must already exist, and no project may hold the path.
    pub(super) fn insert_group(
        &self,
        path: &NamespacePath,
        dependency_proxy: bool,
        event: &NewAuditEvent,
    ) -> Result<Group, DbError> {
        let mut conn = self.conn()?;
        // IMMEDIATE: this reads then writes; a deferred transaction would fail at once with
        // SQLITE_BUSY_SNAPSHOT if another writer committed in between.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let parent_id = claim_namespace(&tx, path, "group")?;
        let now = Utc::now();
        tx.execute(
            "INSERT INTO groups (path, parent_id, created_at, dependency_proxy) \
             VALUES (?1, ?2, ?3, ?4)",
            params![path.as_str(), parent_id, fmt_time(now), dependency_proxy],
        )
        .map_err(|e| exists_conflict(e, "group", path))?;
        let id = tx.last_insert_rowid();
        audit::insert(&tx, event, now)?;
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
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            "UPDATE groups SET dependency_proxy = ?1 WHERE id = ?2",
            params![enabled, group_id],
        )?;
        if changed == 0 {
            return Err(DbError::NotFound(format!("group {group_id}")));
        }
        audit::insert(&tx, event, Utc::now())?;
        let row = tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM groups WHERE id = ?1"))?
            .query_row([group_id], from_row)?;
        tx.commit()?;
        Ok(row.build()?)
    }

    pub(super) fn find_group_by_id(&self, id: i64) -> Result<Option<Group>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM groups WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        Ok(row.map(RawGroup::build).transpose()?)
    }

    pub(super) fn find_group(&self, path: &NamespacePath) -> Result<Option<Group>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM groups WHERE path = ?1"))?
            .query_row([path.as_str()], from_row)
            .optional()?;
        Ok(row.map(RawGroup::build).transpose()?)
    }

    pub(super) fn all_groups(&self) -> Result<Vec<Group>, DbError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM groups ORDER BY path"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(RawGroup::build)
            .collect::<Result<_, _>>()?)
    }
}

impl GroupSettings for SqliteStore {
    fn dependency_proxy_enabled(&self, group_id: i64) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let enabled = conn
            .prepare_cached("SELECT dependency_proxy FROM groups WHERE id = ?1")?
            .query_row([group_id], |r| r.get::<_, bool>(0))
            .optional()?;
        Ok(enabled.unwrap_or(false))
    }
}
