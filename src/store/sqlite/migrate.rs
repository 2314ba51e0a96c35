//! SQLite's migrations: the `-- migrate: N` blocks of the top-level `schema.sql`, applied in
//! order and tracked by `PRAGMA user_version`. (Each backend keeps its own migrations; this
//! file is SQLite's runner.)

use rusqlite::Connection;

use super::DbError;

/// The schema, compiled in so a release binary migrates without the source tree.
pub(super) const SCHEMA: &str = include_str!("../../../schema.sql");

/// Runs every `-- migrate: N` block of `schema` above the database's `user_version`, each in
/// its own transaction together with the version bump, so a crash never half-applies one.
/// The version is re-read inside an IMMEDIATE transaction, so two processes opening a new
/// database at once (a CLI command and a starting server) apply each block exactly once.
pub(super) fn migrate(conn: &mut Connection, schema: &str) -> Result<(), DbError> {
    let blocks = migration_blocks(schema);
    let known = blocks.last().map(|(v, _)| *v).unwrap_or(0);
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > known {
        return Err(DbError::TooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in blocks.into_iter().filter(|(v, _)| *v > current) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now >= version {
            continue;
        }
        tx.execute_batch(&sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {version}"))?;
        tx.commit()?;
        log::info!("database migrated to schema version {version}");
    }
    Ok(())
}

/// The `-- migrate: N` blocks of a schema file, in order: both backends' files use the form.
pub(crate) fn migration_blocks(schema: &str) -> Vec<(i64, String)> {
    let mut blocks: Vec<(i64, String)> = Vec::new();
    for line in schema.lines() {
        if let Some(v) = line.strip_prefix("-- migrate:") {
            if let Ok(v) = v.trim().parse() {
                blocks.push((v, String::new()));
                continue;
            }
        }
        if let Some((_, sql)) = blocks.last_mut() {
            sql.push_str(line);
            sql.push('\n');
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_keep_rows() {
        let mut conn = Connection::open_in_memory().expect("open");
        let v1 = "-- migrate: 1\nCREATE TABLE t (a INTEGER);\n";
        migrate(&mut conn, v1).expect("v1");
        conn.execute("INSERT INTO t (a) VALUES (7)", [])
            .expect("insert");
        let v2 = format!("{v1}-- migrate: 2\nALTER TABLE t ADD COLUMN b TEXT;\n");
        migrate(&mut conn, &v2).expect("v2");
        migrate(&mut conn, &v2).expect("v2 again is a no-op");
        let a: i64 = conn
            .query_row("SELECT a FROM t", [], |r| r.get(0))
            .expect("row kept");
        assert_eq!(a, 7);
        let err = migrate(&mut conn, v1).expect_err("older binary must refuse");
        assert!(matches!(err, DbError::TooNew { found: 2, known: 1 }));
    }

    #[test]
    fn groups_of_a_version_1_database_keep_the_proxy_off() {
        let mut conn = Connection::open_in_memory().expect("open");
        let v1 = SCHEMA
            .split("-- migrate: 2")
            .next()
            .expect("block 1")
            .to_string();
        migrate(&mut conn, &v1).expect("v1");
        conn.execute(
            "INSERT INTO groups (path, created_at) VALUES ('acme', '2024-01-01T00:00:00Z')",
            [],
        )
        .expect("insert");
        migrate(&mut conn, SCHEMA).expect("up to date");
        let on: bool = conn
            .query_row("SELECT dependency_proxy FROM groups", [], |r| r.get(0))
            .expect("row kept");
        assert!(!on);
    }

    #[test]
    fn shipped_schema_applies() {
        let mut conn = Connection::open_in_memory().expect("open");
        migrate(&mut conn, SCHEMA).expect("schema.sql applies");
    }
}
