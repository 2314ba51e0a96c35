//! `wvs-auth db copy --to URL`: the configured database into an empty PostgreSQL one.

use clap::{Args, Subcommand};

use super::{Context, Error};
use crate::store::DatabaseUrl;

#[derive(Subcommand)]
pub enum DbCommand {
    /// Copy the configured (SQLite) database, every table and id, into an empty PostgreSQL
    /// database; stop the servers first, so no change is made meanwhile
    Copy(CopyArgs),
}

#[derive(Args)]
pub struct CopyArgs {
    /// The empty target database: postgres://USER:PASSWORD@HOST:PORT/DATABASE
    #[arg(long, value_name = "URL")]
    to: String,
}

pub fn run(ctx: &Context, cmd: DbCommand) -> Result<(), Error> {
    match cmd {
        DbCommand::Copy(args) => {
            let to = DatabaseUrl::parse(&args.to)?;
            let copied = crate::store::copy::copy(&ctx.database, &to)?;
            let tables: Vec<String> = copied
                .0
                .iter()
                .map(|(table, n)| format!("{table} {n}"))
                .collect();
            println!(
                "copied {} rows ({}) into {}; run every instance with --database-url set to it",
                copied.rows(),
                tables.join(", "),
                match &to {
                    DatabaseUrl::Postgres(url) => url.to_string(),
                    DatabaseUrl::Sqlite(path) => path.display().to_string(),
                }
            );
            Ok(())
        }
    }
}
