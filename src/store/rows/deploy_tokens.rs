//! A `deploy_tokens` row joined with its owner's path.

use super::{opt_time, parse_date, parse_time, Corrupt};
use crate::domain::deploy_token::{DeployToken, TokenOwner, TokenScope};
use crate::domain::path::NamespacePath;

/// The columns both backends select, in [`RawToken`]'s order; a query may add its own
/// after them.
pub const COLUMNS: &str = "t.id, t.project_id, p.path, t.group_id, g.path, t.name, t.username, \
     t.scopes, t.expires_at, t.created_at, t.revoked_at, t.last_used_at, t.created_by";
pub const FROM: &str = "FROM deploy_tokens t \
     LEFT JOIN projects p ON p.id = t.project_id \
     LEFT JOIN groups g ON g.id = t.group_id";

pub struct RawToken {
    pub id: i64,
    pub project: Option<(i64, String)>,
    pub group: Option<(i64, String)>,
    pub name: String,
    pub username: Option<String>,
    pub scopes: String,
    pub expires_at: Option<String>,
    pub created_at: String,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub created_by: Option<i64>,
}

impl RawToken {
    pub fn build(self) -> Result<DeployToken, Corrupt> {
        let raw = self;
        let corrupt = |what: &str| Corrupt(format!("deploy token {}: {what}", raw.id));
        let path = |p: &str| NamespacePath::parse(p).map_err(|e| corrupt(&e.to_string()));
        let owner = match (&raw.project, &raw.group) {
            (Some((id, p)), None) => TokenOwner::Project {
                id: *id,
                path: path(p)?,
            },
            (None, Some((id, p))) => TokenOwner::Group {
                id: *id,
                path: path(p)?,
            },
            _ => return Err(corrupt("owner")),
        };
        let scopes = raw
            .scopes
            .split(',')
            .map(|s| s.parse::<TokenScope>().map_err(|e| corrupt(&e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DeployToken {
            id: raw.id,
            owner,
            scopes,
            expires_at: raw.expires_at.as_deref().map(parse_date).transpose()?,
            created_at: parse_time(&raw.created_at)?,
            revoked_at: opt_time(&raw.revoked_at)?,
            last_used_at: opt_time(&raw.last_used_at)?,
            created_by: raw.created_by,
            name: raw.name,
            custom_username: raw.username,
        })
    }
}
