//! The `packages`, `package_files` and `package_tags` tables.
//!
//! Concurrency: SQLite's IMMEDIATE transactions let one writer at a time decide "does this
//! version or file exist?" and "does any file still name this blob?" before acting on the
//! answer. Here several instances write at once under READ COMMITTED, where a row another
//! transaction has inserted but not committed is invisible: a delete could report a blob
//! unreferenced (and its file be removed from disk) while another instance's publish of the
//! same bytes commits a row naming it, and two deletes of versions sharing a blob could
//! each still see the other's row and leave the blob behind forever. So every transaction
//! that adds or removes file rows (publish, delete) takes [`PACKAGE_LOCK`] exclusively, and
//! the reference check of a refused publish takes it shared: among themselves they run one
//! at a time, exactly as on SQLite. Publishes and deletes are rare beside reads, which take
//! no lock.

use chrono::Utc;
use postgres::types::ToSql;
use postgres::{GenericClient, Row, Transaction};

use super::{audit, is_unique_violation, DbError, PostgresStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::package::{Package, PackageFile, PackageFormat};
use crate::domain::store::{NewPackageFile, PackageStore, PublishMode, Published, StoreError};
use crate::store::rows::fmt_time;
use crate::store::rows::packages::{
    group_versions, RawFile, RawPackage, FILE, PACKAGE, PACKAGE_COLUMNS,
};

/// The advisory lock that serialises changes to which files name which blobs (see the
/// module's comment). Same scheme as the keys in `mod.rs`: "wvs" and a number.
const PACKAGE_LOCK: i64 = 0x7776_7300_0000_0003;

type Params<'a> = [&'a (dyn ToSql + Sync)];

fn package_at(r: &Row, at: usize) -> Result<RawPackage, postgres::Error> {
    Ok(RawPackage {
        id: r.try_get(at)?,
        project_id: r.try_get(at + 1)?,
        format: r.try_get(at + 2)?,
        name: r.try_get(at + 3)?,
        normalized_name: r.try_get(at + 4)?,
        version: r.try_get(at + 5)?,
        metadata: r.try_get(at + 6)?,
        created_at: r.try_get(at + 7)?,
        created_by: r.try_get(at + 8)?,
    })
}

fn file_at(r: &Row, at: usize) -> Result<RawFile, postgres::Error> {
    Ok(RawFile {
        id: r.try_get(at)?,
        package_id: r.try_get(at + 1)?,
        file_name: r.try_get(at + 2)?,
        size: r.try_get(at + 3)?,
        sha256: r.try_get(at + 4)?,
        sha1: r.try_get(at + 5)?,
        md5: r.try_get(at + 6)?,
        sha512: r.try_get(at + 7)?,
        created_at: r.try_get(at + 8)?,
        uploaded_by: r.try_get(at + 9)?,
    })
}

/// A package and one of its files, as `SELECT {PACKAGE}, {FILE}` returns them.
fn pair_at(r: &Row) -> Result<(RawPackage, RawFile), postgres::Error> {
    Ok((package_at(r, 0)?, file_at(r, PACKAGE_COLUMNS)?))
}

/// Takes [`PACKAGE_LOCK`] until `tx` ends. Taken as the transaction's first statement:
/// under READ COMMITTED every later statement then sees all that earlier holders committed.
fn lock_packages(tx: &mut Transaction<'_>) -> Result<(), DbError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PACKAGE_LOCK])?;
    Ok(())
}

/// Whether any file names the blob `sha256`, for a caller holding [`PACKAGE_LOCK`].
fn still_referenced(client: &mut impl GenericClient, sha256: &str) -> Result<bool, DbError> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM package_files WHERE sha256 = $1)",
            &[&sha256],
        )?
        .try_get(0)?)
}

/// Points `tag` at `version` of the package, replacing where it pointed before.
fn upsert_tag(
    client: &mut impl GenericClient,
    project_id: i64,
    format: &str,
    normalized_name: &str,
    tag: &str,
    version: &str,
) -> Result<(), DbError> {
    client.execute(
        "INSERT INTO package_tags (project_id, format, normalized_name, tag, version) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (project_id, format, normalized_name, tag) \
         DO UPDATE SET version = excluded.version",
        &[&project_id, &format, &normalized_name, &tag, &version],
    )?;
    Ok(())
}

impl PostgresStore {
    fn packages_where(&self, filter: &str, params: &Params<'_>) -> Result<Vec<Package>, DbError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!(
            "SELECT {PACKAGE} FROM packages p WHERE {filter} ORDER BY p.id DESC"
        ))?;
        conn.query(&statement, params)?
            .iter()
            .map(|r| Ok(package_at(r, 0)?.build()?))
            .collect()
    }

    fn files_of(&self, package_id: i64) -> Result<Vec<PackageFile>, DbError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!(
            "SELECT {FILE} FROM package_files f WHERE f.package_id = $1 ORDER BY f.id"
        ))?;
        conn.query(&statement, &[&package_id])?
            .iter()
            .map(|r| Ok(file_at(r, 0)?.build()?))
            .collect()
    }

    fn pair_where(
        &self,
        filter: &str,
        params: &Params<'_>,
    ) -> Result<Option<(Package, PackageFile)>, DbError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!(
            "SELECT {PACKAGE}, {FILE} FROM packages p JOIN package_files f \
             ON f.package_id = p.id WHERE {filter} ORDER BY f.id DESC LIMIT 1"
        ))?;
        let Some(row) = conn.query_opt(&statement, params)? else {
            return Ok(None);
        };
        let (p, f) = pair_at(&row)?;
        Ok(Some((p.build()?, f.build()?)))
    }

    fn publish_tx(
        &self,
        new: &NewPackageFile,
        mode: PublishMode,
        event: &NewAuditEvent,
    ) -> Result<Published, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        lock_packages(&mut tx)?;
        let now = Utc::now();
        let format = new.format.as_str();
        let version_taken =
            || DbError::Conflict(format!("{} {} already exists", new.name, new.version));
        let file_taken = || DbError::Conflict(format!("file {} already exists", new.file_name));
        let existing = tx.query_opt(
            &format!(
                "SELECT {PACKAGE} FROM packages p WHERE p.project_id = $1 AND p.format = $2 \
                 AND p.normalized_name = $3 AND p.version = $4"
            ),
            &[&new.project_id, &format, &new.normalized_name, &new.version],
        )?;
        let package = match existing {
            Some(_) if mode == PublishMode::NewVersion => return Err(version_taken()),
            Some(row) => match &new.metadata {
                Some(metadata) => {
                    let id: i64 = row.try_get(0)?;
                    tx.query_one(
                        &format!(
                            "UPDATE packages AS p SET metadata = $1 WHERE p.id = $2 \
                             RETURNING {PACKAGE}"
                        ),
                        &[metadata, &id],
                    )?
                }
                None => row,
            },
            // The lock makes the version's absence certain; the unique key still guards
            // against a writer that does not take it.
            None => tx
                .query_one(
                    &format!(
                        "INSERT INTO packages AS p (project_id, format, name, normalized_name, \
                         version, metadata, created_at, created_by) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {PACKAGE}"
                    ),
                    &[
                        &new.project_id,
                        &format,
                        &new.name,
                        &new.normalized_name,
                        &new.version,
                        &new.metadata,
                        &fmt_time(now),
                        &new.uploaded_by,
                    ],
                )
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        version_taken()
                    } else {
                        e.into()
                    }
                })?,
        };
        let package = package_at(&package, 0)?.build()?;
        let old = tx.query_opt(
            "SELECT id, sha256 FROM package_files WHERE package_id = $1 AND file_name = $2",
            &[&package.id, &new.file_name],
        )?;
        let mut unreferenced = None;
        if let Some(old) = old {
            if mode != PublishMode::ReplaceFile {
                return Err(file_taken());
            }
            let (old_id, old_sha): (i64, String) = (old.try_get(0)?, old.try_get(1)?);
            tx.execute("DELETE FROM package_files WHERE id = $1", &[&old_id])?;
            unreferenced = (old_sha != new.digests.sha256).then_some(old_sha);
        }
        let file = tx
            .query_one(
                &format!(
                    "INSERT INTO package_files AS f (package_id, file_name, size, sha256, sha1, \
                     md5, sha512, created_at, uploaded_by, deploy_token_id, user_id) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {FILE}"
                ),
                &[
                    &package.id,
                    &new.file_name,
                    &new.size,
                    &new.digests.sha256,
                    &new.digests.sha1,
                    &new.digests.md5,
                    &new.digests.sha512,
                    &fmt_time(now),
                    &new.uploaded_by,
                    &new.deploy_token_id,
                    &new.user_id,
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    file_taken()
                } else {
                    DbError::from(e)
                }
            })?;
        let file = file_at(&file, 0)?.build()?;
        if let Some(sha) = &unreferenced {
            if still_referenced(&mut tx, sha)? {
                unreferenced = None;
            }
        }
        for tag in &new.tags {
            upsert_tag(
                &mut tx,
                new.project_id,
                format,
                &new.normalized_name,
                tag,
                &new.version,
            )?;
        }
        audit::insert(&mut tx, event, now)?;
        tx.commit()?;
        Ok(Published {
            package,
            file,
            unreferenced,
        })
    }

    fn delete_tx(&self, id: i64, event: &NewAuditEvent) -> Result<Vec<String>, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        lock_packages(&mut tx)?;
        let Some(found) = tx.query_opt(
            "SELECT project_id, format, normalized_name, version FROM packages WHERE id = $1",
            &[&id],
        )?
        else {
            return Err(DbError::NotFound(format!("package {id}")));
        };
        let (project_id, format, name, version): (i64, String, String, String) = (
            found.try_get(0)?,
            found.try_get(1)?,
            found.try_get(2)?,
            found.try_get(3)?,
        );
        let mut shas = tx
            .query(
                "DELETE FROM package_files WHERE package_id = $1 RETURNING sha256",
                &[&id],
            )?
            .iter()
            .map(|r| r.try_get::<_, String>(0))
            .collect::<Result<Vec<_>, _>>()?;
        shas.sort();
        shas.dedup();
        tx.execute("DELETE FROM packages WHERE id = $1", &[&id])?;
        tx.execute(
            "DELETE FROM package_tags WHERE project_id = $1 AND format = $2 \
             AND normalized_name = $3 AND version = $4",
            &[&project_id, &format, &name, &version],
        )?;
        let mut unreferenced = Vec::new();
        for sha in shas {
            if !still_referenced(&mut tx, &sha)? {
                unreferenced.push(sha);
            }
        }
        audit::insert(&mut tx, event, Utc::now())?;
        tx.commit()?;
        Ok(unreferenced)
    }

    /// Shared [`PACKAGE_LOCK`]: waits for publishes and deletes in flight on any instance,
    /// so a refused publish never removes a blob another instance's publish is recording.
    fn blob_referenced_tx(&self, sha256: &str) -> Result<bool, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&PACKAGE_LOCK])?;
        let referenced = still_referenced(&mut tx, sha256)?;
        tx.commit()?;
        Ok(referenced)
    }

    fn set_tag_tx(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        tag: &str,
        version: &str,
    ) -> Result<(), DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // The row lock, not a plain read: a delete of this version waits for the tag to
        // commit and then removes it with the version, and a delete already under way
        // makes this wait and find the version gone, so no tag outlives its version.
        let exists = tx.query_opt(
            "SELECT 1 FROM packages WHERE project_id = $1 AND format = $2 \
             AND normalized_name = $3 AND version = $4 FOR KEY SHARE",
            &[&project_id, &format.as_str(), &normalized_name, &version],
        )?;
        if exists.is_none() {
            return Err(DbError::NotFound(format!("{normalized_name} {version}")));
        }
        upsert_tag(
            &mut tx,
            project_id,
            format.as_str(),
            normalized_name,
            tag,
            version,
        )?;
        tx.commit()?;
        Ok(())
    }
}

impl PackageStore for PostgresStore {
    fn project_packages(
        &self,
        project_id: i64,
        format: Option<PackageFormat>,
    ) -> Result<Vec<Package>, StoreError> {
        Ok(match format {
            Some(f) => self.packages_where(
                "p.project_id = $1 AND p.format = $2",
                &[&project_id, &f.as_str()],
            )?,
            None => self.packages_where("p.project_id = $1", &[&project_id])?,
        })
    }

    fn package(&self, id: i64) -> Result<Option<Package>, StoreError> {
        Ok(self.packages_where("p.id = $1", &[&id])?.into_iter().next())
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
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!(
            "SELECT {PACKAGE}, {FILE} FROM packages p JOIN package_files f ON f.package_id = p.id \
             WHERE p.format = $1 AND p.normalized_name = $2 AND p.project_id = ANY($3) \
             ORDER BY p.id, f.id"
        ))?;
        let rows = conn
            .query(&statement, &[&format.as_str(), &normalized_name, &projects])?
            .iter()
            .map(pair_at)
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
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(
            "SELECT DISTINCT normalized_name FROM packages WHERE format = $1 \
             AND project_id = ANY($2) ORDER BY normalized_name",
        )?;
        Ok(conn
            .query(&statement, &[&format.as_str(), &projects])?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?)
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
        Ok(self.pair_where(
            "p.format = $1 AND f.sha256 = $2 AND f.file_name = $3 AND p.project_id = ANY($4)",
            &[&format.as_str(), &sha256, &file_name, &projects],
        )?)
    }

    fn version_file(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        version: &str,
        file_name: &str,
    ) -> Result<Option<(Package, PackageFile)>, StoreError> {
        Ok(self.pair_where(
            "p.project_id = $1 AND p.format = $2 AND p.normalized_name = $3 \
             AND p.version = $4 AND f.file_name = $5",
            &[
                &project_id,
                &format.as_str(),
                &normalized_name,
                &version,
                &file_name,
            ],
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
        Ok(self.blob_referenced_tx(sha256)?)
    }

    /// One UPDATE decides whether the version exists, so no lock is needed: a concurrent
    /// delete either commits first (no row: `NotFound`) or waits for this to commit.
    fn set_package_metadata(
        &self,
        id: i64,
        metadata: &str,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE packages SET metadata = $2 WHERE id = $1",
            &[&id, &metadata],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("package {id}")));
        }
        audit::insert(&mut tx, event, Utc::now())?;
        tx.commit()?;
        Ok(())
    }

    fn package_tags(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(
            "SELECT tag, version FROM package_tags WHERE project_id = $1 AND format = $2 \
             AND normalized_name = $3 ORDER BY tag",
        )?;
        Ok(conn
            .query(
                &statement,
                &[&project_id, &format.as_str(), &normalized_name],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_, postgres::Error>>()?)
    }

    fn set_package_tag(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        tag: &str,
        version: &str,
    ) -> Result<(), StoreError> {
        Ok(self.set_tag_tx(project_id, format, normalized_name, tag, version)?)
    }

    fn remove_package_tag(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        tag: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn()?.execute(
            "DELETE FROM package_tags WHERE project_id = $1 AND format = $2 \
             AND normalized_name = $3 AND tag = $4",
            &[&project_id, &format.as_str(), &normalized_name, &tag],
        )?;
        Ok(n == 1)
    }
}
