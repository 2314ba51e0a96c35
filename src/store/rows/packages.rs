//! `packages` and `package_files` rows, and the grouping of a join of both into versions
//! with their files.

use super::{parse_time, Corrupt};
use crate::domain::package::{Digests, Package, PackageFile};

/// The `packages` columns both backends select (table alias `p`), in [`RawPackage`]'s order.
pub const PACKAGE: &str = "p.id, p.project_id, p.format, p.name, p.normalized_name, p.version, \
     p.metadata, p.created_at, p.created_by";
/// The `package_files` columns both backends select (table alias `f`), in [`RawFile`]'s
/// order.
pub const FILE: &str = "f.id, f.package_id, f.file_name, f.size, f.sha256, f.sha1, f.md5, \
     f.sha512, f.created_at, f.uploaded_by";
/// Columns of [`PACKAGE`], for a query that reads a file after them.
pub const PACKAGE_COLUMNS: usize = 9;

pub struct RawPackage {
    pub id: i64,
    pub project_id: i64,
    pub format: String,
    pub name: String,
    pub normalized_name: String,
    pub version: String,
    pub metadata: Option<String>,
    pub created_at: String,
    pub created_by: Option<String>,
}

pub struct RawFile {
    pub id: i64,
    pub package_id: i64,
    pub file_name: String,
    pub size: i64,
    pub sha256: String,
    pub sha1: String,
    pub md5: String,
    pub sha512: String,
    pub created_at: String,
    pub uploaded_by: Option<String>,
}

impl RawPackage {
    pub fn build(self) -> Result<Package, Corrupt> {
        Ok(Package {
            id: self.id,
            project_id: self.project_id,
            format: self.format.parse().map_err(Corrupt)?,
            name: self.name,
            normalized_name: self.normalized_name,
            version: self.version,
            metadata: self.metadata,
            created_at: parse_time(&self.created_at)?,
            created_by: self.created_by,
        })
    }
}

impl RawFile {
    pub fn build(self) -> Result<PackageFile, Corrupt> {
        Ok(PackageFile {
            id: self.id,
            package_id: self.package_id,
            file_name: self.file_name,
            size: self.size,
            digests: Digests {
                sha256: self.sha256,
                sha1: self.sha1,
                md5: self.md5,
                sha512: self.sha512,
            },
            created_at: parse_time(&self.created_at)?,
            uploaded_by: self.uploaded_by,
        })
    }
}

/// Folds rows of `packages JOIN package_files`, ordered by package then file, into each
/// version with its files in that order. Why the join and not a query per version: a
/// package index reads every version at once, in one round trip.
pub fn group_versions(
    rows: impl IntoIterator<Item = (RawPackage, RawFile)>,
) -> Result<Vec<(Package, Vec<PackageFile>)>, Corrupt> {
    let mut out: Vec<(Package, Vec<PackageFile>)> = Vec::new();
    for (p, f) in rows {
        let file = f.build()?;
        match out.last_mut() {
            Some((last, files)) if last.id == p.id => files.push(file),
            _ => out.push((p.build()?, vec![file])),
        }
    }
    Ok(out)
}
