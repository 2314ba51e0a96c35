//! A pooled PostgreSQL connection with its prepared statements remembered.
//!
//! Why: `Client::query` with SQL text prepares the statement first, a round trip of its
//! own, on every call. The per-request reads (a token by digest, a project by path) are a
//! handful of fixed statements, so each connection prepares each once; writes, which are
//! rare, still prepare per call inside their transactions.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use postgres::{Client, Statement};
use r2d2_postgres::PostgresConnectionManager;
use tokio_postgres_rustls::MakeRustlsConnect;

/// One connection and the statements prepared on it, by SQL text.
pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
}

impl PgConn {
    /// The statement for `sql`, prepared on this connection the first time it is asked for.
    pub fn prepare_cached(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }
}

impl Deref for PgConn {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl DerefMut for PgConn {
    fn deref_mut(&mut self) -> &mut Client {
        &mut self.client
    }
}

/// r2d2's manager for [`PgConn`]: `r2d2_postgres`'s, with the statement map added.
pub struct Manager(pub PostgresConnectionManager<MakeRustlsConnect>);

/// r2d2 wants its manager `Debug`; the connector has nothing worth showing.
impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Manager(..)")
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect()?,
            statements: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        self.0.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        self.0.has_broken(&mut conn.client)
    }
}
