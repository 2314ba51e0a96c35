//! The `packages`, `package_files` and `package_tags` tables.

use chrono::Utc;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

use super::{audit, fmt_time, DbError, SqliteStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::package::{Package, PackageFile, PackageFormat};
use crate::domain::store::{NewPackageFile, PackageStore, PublishMode, Published, StoreError};
use crate::store::rows::packages::{
    group_versions, RawFile, RawPackage, FILE, PACKAGE, PACKAGE_COLUMNS,
};

fn package_at(r: &Row<'_>, at: usize) -> rusqlite::Result<RawPackage> {
    Ok(RawPackage {
        id: r.get(at)?,
        project_id: r.get(at + 1)?,
        format: r.get(at + 2)?,
        name: r.get(at + 3)?,
        normalized_name: r.get(at + 4)?,
        version: r.get(at + 5)?,
        metadata: r.get(at + 6)?,
        created_at: r.get(at + 7)?,
        created_by: r.get(at + 8)?,
    })
}

fn file_at(r: &Row<'_>, at: usize) -> rusqlite::Result<RawFile> {
    Ok(RawFile {
        id: r.get(at)?,
        package_id: r.get(at + 1)?,
        file_name: r.get(at + 2)?,
        size: r.get(at + 3)?,
        sha256: r.get(at + 4)?,
        sha1: r.get(at + 5)?,
        md5: r.get(at + 6)?,
        sha512: r.get(at + 7)?,
        created_at: r.get(at + 8)?,
        uploaded_by: r.get(at + 9)?,
    })
}

/// `?2, ?3, …` for a list of project ids after the first parameters.
fn id_list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SqliteStore {
    fn packages_where(
        &self,
        filter: &str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<Vec<Package>, DbError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {PACKAGE} FROM packages p WHERE {filter} ORDER BY p.id DESC"
        ))?;
        let rows = stmt
            .query_map(params_from_iter(values), |r| package_at(r, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(RawPackage::build)
            .collect::<Result<_, _>>()?)
    }

    fn files_of(&self, package_id: i64) -> Result<Vec<PackageFile>, DbError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {FILE} FROM package_files f WHERE f.package_id = ?1 ORDER BY f.id"
        ))?;
        let rows = stmt
            .query_map([package_id], |r| file_at(r, 0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(RawFile::build)
            .collect::<Result<_, _>>()?)
    }

    fn pair_where(
        &self,
        filter: &str,
        values: Vec<rusqlite::types::Value>,
    ) -> Result<Option<(Package, PackageFile)>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!(
                "SELECT {PACKAGE}, {FILE} FROM packages p JOIN package_files f \
                 ON f.package_id = p.id WHERE {filter} ORDER BY f.id DESC LIMIT 1"
            ))?
            .query_row(params_from_iter(values), |r| {
                Ok((package_at(r, 0)?, file_at(r, PACKAGE_COLUMNS)?))
            })
            .optional()?;
        row.map(|(p, f)| Ok((p.build()?, f.build()?))).transpose()
    }

    fn publish_tx(
        &self,
        new: &NewPackageFile,
        mode: PublishMode,
        event: &NewAuditEvent,
    ) -> Result<Published, DbError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = Utc::now();
        let format = new.format.as_str();
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM packages WHERE project_id = ?1 AND format = ?2 \
                 AND normalized_name = ?3 AND version = ?4",
                params![new.project_id, format, new.normalized_name, new.version],
                |r| r.get(0),
            )
            .optional()?;
        let package_id = match existing {
            Some(_) if mode == PublishMode::NewVersion => {
                return Err(DbError::Conflict(format!(
                    "{} {} already exists",
                    new.name, new.version
                )));
            }
            Some(id) => {
                if new.metadata.is_some() {
                    tx.execute(
                        "UPDATE packages SET metadata = ?1 WHERE id = ?2",
                        params![new.metadata, id],
                    )?;
                }
                id
            }
            None => {
                tx.execute(
                    "INSERT INTO packages (project_id, format, name, normalized_name, version, \
                     metadata, created_at, created_by) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        new.project_id,
                        format,
                        new.name,
                        new.normalized_name,
                        new.version,
                        new.metadata,
                        fmt_time(now),
                        new.uploaded_by
                    ],
                )?;
                tx.last_insert_rowid()
            }
        };
        let old: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, sha256 FROM package_files WHERE package_id = ?1 AND file_name = ?2",
                params![package_id, new.file_name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let mut unreferenced = None;
        if let Some((old_id, old_sha)) = old {
            if mode != PublishMode::ReplaceFile {
                return Err(DbError::Conflict(format!(
                    "file {} already exists",
                    new.file_name
                )));
            }
            tx.execute("DELETE FROM package_files WHERE id = ?1", [old_id])?;
            unreferenced = (old_sha != new.digests.sha256).then_some(old_sha);
        }
        tx.execute(
            "INSERT INTO package_files (package_id, file_name, size, sha256, sha1, md5, sha512, \
             created_at, uploaded_by, deploy_token_id, user_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                package_id,
                new.file_name,
                new.size,
                new.digests.sha256,
                new.digests.sha1,
                new.digests.md5,
                new.digests.sha512,
                fmt_time(now),
                new.uploaded_by,
                new.deploy_token_id,
                new.user_id
            ],
        )?;
        if let Some(sha) = &unreferenced {
            if still_referenced(&tx, sha)? {
                unreferenced = None;
            }
        }
        for tag in &new.tags {
            tx.execute(
                "INSERT INTO package_tags (project_id, format, normalized_name, tag, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (project_id, format, normalized_name, tag) \
                 DO UPDATE SET version = excluded.version",
                params![
                    new.project_id,
                    format,
                    new.normalized_name,
                    tag,
                    new.version
                ],
            )?;
        }
        audit::insert(&tx, event, now)?;
        let package = tx
            .query_row(
                &format!("SELECT {PACKAGE} FROM packages p WHERE p.id = ?1"),
                [package_id],
                |r| package_at(r, 0),
            )?
            .build()?;
        let file = tx
            .query_row(
                &format!(
                    "SELECT {FILE} FROM package_files f WHERE f.package_id = ?1 AND f.file_name = ?2"
                ),
                params![package_id, new.file_name],
                |r| file_at(r, 0),
            )?
            .build()?;
        tx.commit()?;
        Ok(Published {
            package,
            file,
            unreferenced,
        })
    }

    fn delete_tx(&self, id: i64, event: &NewAuditEvent) -> Result<Vec<String>, DbError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let found: Option<(i64, String, String, String)> = tx
            .query_row(
                "SELECT project_id, format, normalized_name, version FROM packages WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((project_id, format, name, version)) = found else {
            return Err(DbError::NotFound(format!("package {id}")));
        };
        let shas: Vec<String> = tx
            .prepare("SELECT DISTINCT sha256 FROM package_files WHERE package_id = ?1")?
            .query_map([id], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        tx.execute("DELETE FROM package_files WHERE package_id = ?1", [id])?;
        tx.execute("DELETE FROM packages WHERE id = ?1", [id])?;
        tx.execute(
            "DELETE FROM package_tags WHERE project_id = ?1 AND format = ?2 \
             AND normalized_name = ?3 AND version = ?4",
            params![project_id, format, name, version],
        )?;
        let mut unreferenced = Vec::new();
        for sha in shas {
            if !still_referenced(&tx, &sha)? {
                unreferenced.push(sha);
            }
        }
        audit::insert(&tx, event, Utc::now())?;
        tx.commit()?;
        Ok(unreferenced)
    }
}

fn still_referenced(tx: &rusqlite::Transaction<'_>, sha256: &str) -> Result<bool, DbError> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM package_files WHERE sha256 = ?1)",
        [sha256],
        |r| r.get(0),
    )?)
}

fn ids(projects: &[i64]) -> impl Iterator<Item = rusqlite::types::Value> + '_ {
    projects
        .iter()
        .map(|id| rusqlite::types::Value::Integer(*id))
}

fn text(s: &str) -> rusqlite::types::Value {
    rusqlite::types::Value::Text(s.to_string())
}

impl PackageStore for SqliteStore {
    fn project_packages(
        &self,
        project_id: i64,
        format: Option<PackageFormat>,
    ) -> Result<Vec<Package>, StoreError> {
        let mut values = vec![rusqlite::types::Value::Integer(project_id)];
        let filter = match format {
            Some(f) => {
                values.push(text(f.as_str()));
                "p.project_id = ?1 AND p.format = ?2"
            }
            None => "p.project_id = ?1",
        };
        Ok(self.packages_where(filter, values)?)
    }

    fn package(&self, id: i64) -> Result<Option<Package>, StoreError> {
        Ok(self
            .packages_where("p.id = ?1", vec![rusqlite::types::Value::Integer(id)])?
            .into_iter()
            .next())
    }

    fn package_files(&self, package_id: i64) -> Result<Vec<PackageFile>, StoreError> {
        Ok(self.files_of(package_id)?)
    }

    fn versions_of(
        &self,
        projects: &[i64],
        format: PackageFormat,
        normalized_name: &str,
    ) -> Result<Vec<(Package, Vec<PackageFile>)>, StoreError> {
        if projects.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn()?;
        let sql = format!(
            "SELECT {PACKAGE}, {FILE} FROM packages p JOIN package_files f ON f.package_id = p.id \
             WHERE p.format = ?1 AND p.normalized_name = ?2 AND p.project_id IN ({}) \
             ORDER BY p.id, f.id",
            id_list(3, projects.len())
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let values = [text(format.as_str()), text(normalized_name)]
            .into_iter()
            .chain(ids(projects));
        let rows = stmt
            .query_map(params_from_iter(values), |r| {
                Ok((package_at(r, 0)?, file_at(r, PACKAGE_COLUMNS)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(group_versions(rows).map_err(DbError::from)?)
    }

    fn package_names(
        &self,
        projects: &[i64],
        format: PackageFormat,
    ) -> Result<Vec<String>, StoreError> {
        if projects.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn()?;
        let sql = format!(
            "SELECT DISTINCT normalized_name FROM packages WHERE format = ?1 \
             AND project_id IN ({}) ORDER BY normalized_name",
            id_list(2, projects.len())
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let values = std::iter::once(text(format.as_str())).chain(ids(projects));
        let names = stmt
            .query_map(params_from_iter(values), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(names)
    }

    fn file_by_digest(
        &self,
        projects: &[i64],
        format: PackageFormat,
        sha256: &str,
        file_name: &str,
    ) -> Result<Option<(Package, PackageFile)>, StoreError> {
        if projects.is_empty() {
            return Ok(None);
        }
        let filter = format!(
            "p.format = ?1 AND f.sha256 = ?2 AND f.file_name = ?3 AND p.project_id IN ({})",
            id_list(4, projects.len())
        );
        let values = [text(format.as_str()), text(sha256), text(file_name)]
            .into_iter()
            .chain(ids(projects))
            .collect();
        Ok(self.pair_where(&filter, values)?)
    }

    fn version_file(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        version: &str,
        file_name: &str,
    ) -> Result<Option<(Package, PackageFile)>, StoreError> {
        let values = vec![
            rusqlite::types::Value::Integer(project_id),
            text(format.as_str()),
            text(normalized_name),
            text(version),
            text(file_name),
        ];
        Ok(self.pair_where(
            "p.project_id = ?1 AND p.format = ?2 AND p.normalized_name = ?3 \
             AND p.version = ?4 AND f.file_name = ?5",
            values,
        )?)
    }

    fn publish(
        &self,
        new: &NewPackageFile,
        mode: PublishMode,
        event: &NewAuditEvent,
    ) -> Result<Published, StoreError> {
        Ok(self.publish_tx(new, mode, event)?)
    }

    fn delete_package(&self, id: i64, event: &NewAuditEvent) -> Result<Vec<String>, StoreError> {
        Ok(self.delete_tx(id, event)?)
    }

    fn blob_referenced(&self, sha256: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction().map_err(DbError::from)?;
        Ok(still_referenced(&tx, sha256)?)
    }

    fn set_package_metadata(
        &self,
        id: i64,
        metadata: &str,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(DbError::from)?;
        let changed = tx
            .execute(
                "UPDATE packages SET metadata = ?2 WHERE id = ?1",
                params![id, metadata],
            )
            .map_err(DbError::from)?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("package {id}")));
        }
        audit::insert(&tx, event, Utc::now())?;
        tx.commit().map_err(DbError::from)?;
        Ok(())
    }

    fn package_tags(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT tag, version FROM package_tags WHERE project_id = ?1 AND format = ?2 \
             AND normalized_name = ?3 ORDER BY tag",
        )?;
        let tags = stmt
            .query_map(params![project_id, format.as_str(), normalized_name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(tags)
    }

    fn set_package_tag(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        tag: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let exists: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM packages WHERE project_id = ?1 AND format = ?2 \
             AND normalized_name = ?3 AND version = ?4)",
            params![project_id, format.as_str(), normalized_name, version],
            |r| r.get(0),
        )?;
        if !exists {
            return Err(StoreError::NotFound(format!("{normalized_name} {version}")));
        }
        tx.execute(
            "INSERT INTO package_tags (project_id, format, normalized_name, tag, version) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (project_id, format, normalized_name, tag) \
             DO UPDATE SET version = excluded.version",
            params![project_id, format.as_str(), normalized_name, tag, version],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn remove_package_tag(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        tag: &str,
    ) -> Result<bool, StoreError> {
        let conn = self.conn()?;
        let n = conn.execute(
            "DELETE FROM package_tags WHERE project_id = ?1 AND format = ?2 \
             AND normalized_name = ?3 AND tag = ?4",
            params![project_id, format.as_str(), normalized_name, tag],
        )?;
        Ok(n == 1)
    }
}
