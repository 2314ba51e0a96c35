//! Groups and projects as the rules see them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::path::NamespacePath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Private,
    Internal,
    Public,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }
}

impl FromStr for Visibility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "private" => Ok(Visibility::Private),
            "internal" => Ok(Visibility::Internal),
            "public" => Ok(Visibility::Public),
            other => Err(format!(
                "visibility {other:?} must be private, internal or public"
            )),
        }
    }
}

impl fmt::Display for Visibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Group {
    pub id: i64,
    pub path: NamespacePath,
    pub parent_id: Option<i64>,
    /// Whether the group's deploy tokens may pull through the Dependency Proxy (SPEC §2).
    /// A setting of this group alone, not inherited: a subgroup's tokens need it on the
    /// subgroup, so enabling it high up never hands pull access to every team below.
    pub dependency_proxy: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub id: i64,
    pub path: NamespacePath,
    pub group_id: Option<i64>,
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
}
