//! A `projects` row.

use super::{parse_time, Corrupt};
use crate::domain::namespace::Project;
use crate::domain::path::NamespacePath;

/// The columns both backends select, in [`RawProject`]'s order.
pub const COLUMNS: &str = "id, path, group_id, visibility, created_at";

pub struct RawProject {
    pub id: i64,
    pub path: String,
    pub group_id: Option<i64>,
    pub visibility: String,
    pub created_at: String,
}

impl RawProject {
    pub fn build(self) -> Result<Project, Corrupt> {
        Ok(Project {
            id: self.id,
            path: NamespacePath::parse(&self.path).map_err(|e| Corrupt(e.to_string()))?,
            group_id: self.group_id,
            visibility: self.visibility.parse().map_err(Corrupt)?,
            created_at: parse_time(&self.created_at)?,
        })
    }
}
