//! The `groups` table.

use chrono::Utc;
use rusqlite::{params, OptionalExtension, Row};

use super::{audit, claim_namespace, exists_conflict, fmt_time, parse_time, DbError, SqliteStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::namespace::Group;
use crate::domain::path::NamespacePath;
use crate::domain::store::{GroupSettings, StoreError};

const COLUMNS: &str = "id, path, parent_id, created_at, dependency_proxy";

type RawGroup = (i64, String, Option<i64>, String, bool);

fn from_row(row: &Row<'_>) -> rusqlite::Result<RawGroup> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn build((id, path, parent_id, created_at, dependency_proxy): RawGroup) -> Result<Group, DbError> {
    Ok(Group {
        id,
        path: NamespacePath::parse(&path).map_err(|e| DbError::Corrupt(e.to_string()))?,
        parent_id,
        dependency_proxy,
        created_at: parse_time(&created_at)?,
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
        build(row)
    }

    pub(super) fn find_group_by_id(&self, id: i64) -> Result<Option<Group>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM groups WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        row.map(build).transpose()
    }

    pub(super) fn find_group(&self, path: &NamespacePath) -> Result<Option<Group>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM groups WHERE path = ?1"))?
            .query_row([path.as_str()], from_row)
            .optional()?;
        row.map(build).transpose()
    }

    pub(super) fn all_groups(&self) -> Result<Vec<Group>, DbError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM groups ORDER BY path"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(build).collect()
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
