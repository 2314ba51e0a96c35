//! `wvs-auth db copy --to URL` (SPEC §5): the configured SQLite database, every table and
//! every id, into an empty PostgreSQL database, so an installation that outgrows one machine
//! moves without re-issuing a single token.
//!
//! Why row by row through neutral [`Value`]s rather than a dump: the two schemas are the
//! same tables in different types (SQLite's 0/1 flags become BOOLEAN, BLOB digests BYTEA),
//! and the target's column types say how each value converts. All of it is one PostgreSQL
//! transaction, so a failed copy leaves the target as empty as it was. Ids are copied as
//! they are and the identity sequences moved past them, so new rows never collide.

use crate::domain::store::StoreError;

use super::postgres::PostgresStore;
use super::sqlite::SqliteStore;
use super::{DatabaseUrl, OpenError};

/// Every table, parents before children (foreign keys hold at each insert). A table of
/// either database missing here stops the copy: nothing is left behind silently.
pub const TABLES: &[&str] = &[
    "groups",
    "projects",
    "deploy_tokens",
    "users",
    "memberships",
    "personal_access_tokens",
    "sessions",
    "flashes",
    "audit_events",
    "packages",
    "package_files",
    "package_tags",
];

/// One stored value, as SQLite holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("db copy reads a SQLite database; the configured database is {0}")]
    SourceNotSqlite(String),
    #[error("no database at {0}: nothing to copy")]
    NoSource(String),
    #[error("db copy writes into PostgreSQL: --to must be postgres://USER@HOST:PORT/DATABASE")]
    TargetNotPostgres,
    #[error("the target database is not empty: table {table} has {rows} rows; copy into a new, empty database")]
    NotEmpty { table: String, rows: i64 },
    #[error("table {0} is not one `db copy` knows; this binary cannot copy this database")]
    UnknownTable(String),
    #[error("table {table} has columns {source_columns:?} here and {target_columns:?} in the target; both must be at this binary's schema")]
    Columns {
        table: String,
        source_columns: Vec<String>,
        target_columns: Vec<String>,
    },
    #[error("table {table}, column {column}: {value:?} cannot be stored as {target_type}")]
    Value {
        table: String,
        column: String,
        value: Value,
        target_type: String,
    },
}

/// What was copied: rows per table, in [`TABLES`]' order.
#[derive(Debug, Default)]
pub struct Copied(pub Vec<(&'static str, u64)>);

impl Copied {
    pub fn rows(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

/// Opens both databases and copies `from` (SQLite, which must exist) into `to`
/// (PostgreSQL, migrated here if new, and empty).
pub fn copy(from: &DatabaseUrl, to: &DatabaseUrl) -> Result<Copied, CopyError> {
    let DatabaseUrl::Sqlite(file) = from else {
        return Err(CopyError::SourceNotSqlite(format!("{from:?}")));
    };
    let DatabaseUrl::Postgres(target) = to else {
        return Err(CopyError::TargetNotPostgres);
    };
    if !file.is_file() {
        return Err(CopyError::NoSource(file.display().to_string()));
    }
    let source = SqliteStore::open(file, 2).map_err(OpenError::from)?;
    let target = PostgresStore::open(target.expose(), 2).map_err(OpenError::from)?;
    sqlite_to_postgres(&source, &target)
}

/// Copies every table of `from` into `to`, which must be empty, in one transaction.
pub fn sqlite_to_postgres(from: &SqliteStore, to: &PostgresStore) -> Result<Copied, CopyError> {
    for table in from.table_names()? {
        if !TABLES.contains(&table.as_str()) {
            return Err(CopyError::UnknownTable(table));
        }
    }
    let mut import = to.begin_import()?;
    for table in import.table_names()? {
        if !TABLES.contains(&table.as_str()) {
            return Err(CopyError::UnknownTable(table));
        }
    }
    for table in TABLES {
        let rows = import.count(table)?;
        if rows > 0 {
            return Err(CopyError::NotEmpty {
                table: table.to_string(),
                rows,
            });
        }
    }
    let mut copied = Copied::default();
    for table in TABLES {
        let target = import.columns(table)?;
        let names: Vec<String> = target.iter().map(|(name, _)| name.clone()).collect();
        let mut source = from.column_names(table)?;
        let mut sorted_target = names.clone();
        source.sort();
        sorted_target.sort();
        if source != sorted_target {
            return Err(CopyError::Columns {
                table: table.to_string(),
                source_columns: source,
                target_columns: sorted_target,
            });
        }
        let mut insert = import.inserter(table, &target)?;
        let mut n = 0u64;
        from.each_row(table, &names, &mut |row| {
            insert.insert(row)?;
            n += 1;
            Ok(())
        })?;
        drop(insert);
        copied.0.push((table, n));
    }
    import.finish(TABLES)?;
    Ok(copied)
}

/// An SQL identifier, quoted (both SQLite and PostgreSQL use double quotes).
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
