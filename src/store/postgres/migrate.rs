//! PostgreSQL's migrations: the `-- migrate: N` blocks of `migrations.sql`, applied in order
//! and tracked in `wvs_schema`. Each block runs in its own transaction holding a
//! transaction-scoped advisory lock, and the version is read again under the lock: servers
//! and CLI commands opening one empty database at once apply every block exactly once, and
//! the others wait, then find it done.

use super::{DbError, MIGRATION_LOCK};
use crate::store::sqlite::migration_blocks;

/// The schema, compiled in so a release binary migrates without the source tree.
pub(super) const SCHEMA: &str = include_str!("migrations.sql");

pub(super) fn migrate(conn: &mut postgres::Client, schema: &str) -> Result<(), DbError> {
    let blocks = migration_blocks(schema);
    let known = blocks.last().map(|(v, _)| *v).unwrap_or(0);
    // The table itself is made under the lock too: CREATE TABLE IF NOT EXISTS races
    // between sessions (a unique violation on the catalogue) when it is not.
    let mut tx = conn.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS wvs_schema (version BIGINT NOT NULL)")?;
    let current = version(&mut tx)?;
    tx.commit()?;
    if current > known {
        return Err(DbError::TooNew {
            found: current,
            known,
        });
    }
    for (version_of_block, sql) in blocks.into_iter().filter(|(v, _)| *v > current) {
        let mut tx = conn.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        if version(&mut tx)? >= version_of_block {
            continue;
        }
        tx.batch_execute(&sql)?;
        tx.execute("DELETE FROM wvs_schema", &[])?;
        tx.execute(
            "INSERT INTO wvs_schema (version) VALUES ($1)",
            &[&version_of_block],
        )?;
        tx.commit()?;
        log::info!("database migrated to schema version {version_of_block}");
    }
    Ok(())
}

fn version(tx: &mut postgres::Transaction<'_>) -> Result<i64, DbError> {
    Ok(tx
        .query_opt("SELECT max(version) FROM wvs_schema", &[])?
        .and_then(|r| r.get::<_, Option<i64>>(0))
        .unwrap_or(0))
}
