//! The SQLite side of `db copy` (`store::copy`): every row of a table as neutral values.

use rusqlite::types::ValueRef;

use super::{DbError, SqliteStore};
use crate::domain::store::StoreError;
use crate::store::copy::{quote, CopyError, Value};

impl SqliteStore {
    /// The database's own tables (SQLite's internal ones left out).
    pub fn table_names(&self) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             ORDER BY name",
        )?;
        let names = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names)
    }

    pub fn column_names(&self, table: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
        let names = stmt
            .query_map([table], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(names)
    }

    /// Calls `each` with every row of `table`, `columns` in that order, by rowid (parents
    /// of a self-referencing table, such as groups, come before their children).
    pub fn each_row(
        &self,
        table: &str,
        columns: &[String],
        each: &mut dyn FnMut(Vec<Value>) -> Result<(), CopyError>,
    ) -> Result<(), CopyError> {
        let conn = self.conn().map_err(StoreError::from)?;
        let list: Vec<String> = columns.iter().map(|c| quote(c)).collect();
        let sql = format!(
            "SELECT {} FROM {} ORDER BY rowid",
            list.join(", "),
            quote(table)
        );
        let mut stmt = conn.prepare(&sql).map_err(StoreError::from)?;
        let mut rows = stmt.query([]).map_err(StoreError::from)?;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            let mut values = Vec::with_capacity(columns.len());
            for i in 0..columns.len() {
                values.push(
                    match row
                        .get_ref(i)
                        .map_err(|e| StoreError::from(DbError::from(e)))?
                    {
                        ValueRef::Null => Value::Null,
                        ValueRef::Integer(n) => Value::Integer(n),
                        ValueRef::Real(x) => Value::Real(x),
                        // Not UTF-8: kept as bytes, which a text column refuses.
                        ValueRef::Text(t) => match std::str::from_utf8(t) {
                            Ok(s) => Value::Text(s.to_string()),
                            Err(_) => Value::Blob(t.to_vec()),
                        },
                        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                    },
                );
            }
            each(values)?;
        }
        Ok(())
    }
}
