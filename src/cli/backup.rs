//! `wvs-auth backup DIR`: a consistent copy of the database and the keys while servers run.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{Context, Error};
use crate::store::DatabaseUrl;

#[derive(Args)]
pub struct BackupArgs {
    /// A new (or empty) directory: gets `wvs.db` and `keys/`
    dir: PathBuf,
}

/// The database file a backup holds, beside its `keys/` directory.
pub const DATABASE_FILE: &str = "wvs.db";

pub fn run(ctx: &Context, args: BackupArgs) -> Result<(), Error> {
    let DatabaseUrl::Sqlite(file) = &ctx.database else {
        return Err(crate::store::OpenError::BackupOfPostgres.into());
    };
    if !file.is_file() {
        return Err(Error::Config(format!(
            "no database at {}: nothing to back up",
            file.display()
        )));
    }
    ensure_empty(&args.dir)?;
    crate::store::backup(&ctx.database, &args.dir.join(DATABASE_FILE))?;
    let keys = ctx.keys().copy_to(&args.dir.join("keys"))?;
    println!(
        "backed up {} and {keys} keys to {}; to restore, stop the server and copy {} into the \
         data dir and keys/ into the keys dir (README: Backup and restore)",
        file.display(),
        args.dir.display(),
        DATABASE_FILE,
    );
    Ok(())
}

/// A backup never mixes with an older one: the directory is new or empty.
fn ensure_empty(dir: &Path) -> Result<(), Error> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_some()) {
        Ok(true) => Err(Error::Config(format!(
            "backup directory {} is not empty",
            dir.display()
        ))),
        Ok(false) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display()))),
        Err(e) => Err(Error::Config(format!("cannot read {}: {e}", dir.display()))),
    }
}
