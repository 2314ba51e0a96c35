//! A `groups` row.

use super::{parse_time, Corrupt};
use crate::domain::namespace::Group;
use crate::domain::path::NamespacePath;

/// The columns both backends select, in [`RawGroup`]'s order.
pub const COLUMNS: &str = "id, path, parent_id, created_at, dependency_proxy";

pub struct RawGroup {
    pub id: i64,
    pub path: String,
    pub parent_id: Option<i64>,
    pub created_at: String,
    pub dependency_proxy: bool,
}

impl RawGroup {
    pub fn build(self) -> Result<Group, Corrupt> {
        Ok(Group {
            id: self.id,
            path: NamespacePath::parse(&self.path).map_err(|e| Corrupt(e.to_string()))?,
            parent_id: self.parent_id,
            dependency_proxy: self.dependency_proxy,
            created_at: parse_time(&self.created_at)?,
        })
    }
}
