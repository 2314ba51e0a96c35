//! The PostgreSQL side of `db copy` (`store::copy`): rows written inside one transaction
//! that commits only when every table is in and the identity sequences are past the
//! copied ids.

use postgres::types::ToSql;
use postgres::Statement;

use super::{Conn, DbError, PostgresStore};
use crate::domain::store::StoreError;
use crate::store::copy::{quote, CopyError, Value};

/// An import under way: one connection inside `BEGIN`. Dropped without [`Import::finish`],
/// it rolls back, so nothing half-copied stays.
pub struct Import {
    conn: Conn,
    open: bool,
}

impl PostgresStore {
    pub fn begin_import(&self) -> Result<Import, StoreError> {
        let mut conn = self.conn()?;
        conn.batch_execute("BEGIN")?;
        // Two copies into one database at once would both find it empty.
        conn.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&super::MIGRATION_LOCK],
        )?;
        Ok(Import { conn, open: true })
    }
}

impl Import {
    /// The tables of the current schema, the migration bookkeeping left out.
    pub fn table_names(&mut self) -> Result<Vec<String>, StoreError> {
        let rows = self.conn.query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' \
             AND table_name NOT IN ('wvs_schema', 'wvs_revision') ORDER BY table_name",
            &[],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub fn count(&mut self, table: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_one(&format!("SELECT count(*) FROM {}", quote(table)), &[])?
            .get(0))
    }

    /// `(name, data type)` of each column of `table`, in table order.
    pub fn columns(&mut self, table: &str) -> Result<Vec<(String, String)>, StoreError> {
        let rows = self.conn.query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            &[&table],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// An INSERT for `table` with `columns` (as from [`Import::columns`]), prepared once.
    pub fn inserter<'a>(
        &'a mut self,
        table: &str,
        columns: &[(String, String)],
    ) -> Result<Inserter<'a>, StoreError> {
        let names: Vec<String> = columns.iter().map(|(name, _)| quote(name)).collect();
        let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
        // OVERRIDING SYSTEM VALUE: ids are copied as they are, whatever the identity says.
        let sql = format!(
            "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
            quote(table),
            names.join(", "),
            placeholders.join(", ")
        );
        let statement = self.conn.prepare(&sql)?;
        Ok(Inserter {
            conn: &mut self.conn,
            statement,
            table: table.to_string(),
            columns: columns.to_vec(),
        })
    }

    /// Moves each table's identity past its copied ids, then commits.
    pub fn finish(mut self, tables: &[&str]) -> Result<(), StoreError> {
        for table in tables {
            let has_identity: bool = self
                .conn
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 \
                     AND column_name = 'id' AND is_identity = 'YES')",
                    &[table],
                )?
                .get(0);
            if has_identity {
                let q = quote(table);
                self.conn.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence($1, 'id'), \
                         COALESCE((SELECT max(id) FROM {q}), 1), \
                         (SELECT max(id) FROM {q}) IS NOT NULL)"
                    ),
                    &[table],
                )?;
            }
        }
        self.conn.batch_execute("COMMIT")?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Import {
    fn drop(&mut self) {
        if self.open {
            // The connection goes back to the pool: it must not stay inside the transaction.
            if let Err(e) = self.conn.batch_execute("ROLLBACK") {
                log::warn!("db copy: rollback failed: {}", DbError::from(e));
            }
        }
    }
}

/// Inserts rows of one table.
pub struct Inserter<'a> {
    conn: &'a mut Conn,
    statement: Statement,
    table: String,
    columns: Vec<(String, String)>,
}

impl Inserter<'_> {
    /// One row, its values in the inserter's column order, each converted to its column's
    /// type: SQLite's 0/1 flags to BOOLEAN, BLOBs to BYTEA.
    pub fn insert(&mut self, row: Vec<Value>) -> Result<(), CopyError> {
        let mut params: Vec<Box<dyn ToSql + Sync>> = Vec::with_capacity(row.len());
        for (value, (column, target_type)) in row.into_iter().zip(&self.columns) {
            params.push(self.convert(value, column, target_type)?);
        }
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
        self.conn
            .execute(&self.statement, &refs)
            .map_err(StoreError::from)?;
        Ok(())
    }

    fn convert(
        &self,
        value: Value,
        column: &str,
        target_type: &str,
    ) -> Result<Box<dyn ToSql + Sync>, CopyError> {
        Ok(match (target_type, value) {
            ("bigint", Value::Null) => Box::new(None::<i64>),
            ("bigint", Value::Integer(n)) => Box::new(n),
            ("boolean", Value::Null) => Box::new(None::<bool>),
            ("boolean", Value::Integer(n @ (0 | 1))) => Box::new(n == 1),
            ("bytea", Value::Null) => Box::new(None::<Vec<u8>>),
            ("bytea", Value::Blob(b)) => Box::new(b),
            ("text", Value::Null) => Box::new(None::<String>),
            ("text", Value::Text(t)) => Box::new(t),
            (_, value) => {
                return Err(CopyError::Value {
                    table: self.table.clone(),
                    column: column.to_string(),
                    value,
                    target_type: target_type.to_string(),
                })
            }
        })
    }
}
