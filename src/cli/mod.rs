//! The command line (SPEC §5). Parsing lives here; each command family has its own module.
//! Every command exits non-zero with one line on stderr when the input is bad, before it
//! touches the database.

mod audit;
mod backup;
mod ci;
mod db;
mod error;
mod keys;
mod namespaces;
mod serve;
mod tokens;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::config::{GlobalSettings, SettingsFile};
use crate::domain::store::Store;
use crate::logging::LogFormat;
use crate::manage::Managers;
use crate::store::DatabaseUrl;
pub use error::Error;

#[derive(Parser)]
#[command(
    name = "wvs-auth",
    version,
    about = "Deploy-token auth server for container registries"
)]
pub struct Cli {
    /// TOML file with defaults for any flag (data_dir, keys_dir, listen, issuer, services, ...)
    #[arg(long, global = true, env = "WVS_AUTH_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    global: GlobalSettings,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the token server (creates the database and keys if missing)
    Serve(Box<crate::config::ServeSettings>),
    /// Manage signing keys
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Internal: times aws-lc's RSA exponentiation kernel (run by `serve` to choose one)
    #[command(name = "__rsa-kernel-probe", hide = true)]
    RsaKernelProbe {
        #[arg(long, default_value_t = crate::keys::rsa_kernel::PROBE_MILLIS)]
        millis: u64,
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
    /// Manage groups
    #[command(subcommand)]
    Group(namespaces::GroupCommand),
    /// Manage projects
    #[command(subcommand)]
    Project(namespaces::ProjectCommand),
    /// Manage deploy tokens
    #[command(subcommand)]
    Token(tokens::TokenCommand),
    /// Manage users, memberships and personal access tokens
    #[command(subcommand)]
    User(users::UserCommand),
    /// CI variables of a project
    #[command(subcommand)]
    Ci(ci::CiCommand),
    /// Show the audit log
    Audit(audit::AuditArgs),
    /// Database operations: copy into PostgreSQL
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Write a consistent copy of the database and the keys to a new directory while
    /// servers run (SQLite; back PostgreSQL up with pg_dump)
    Backup(backup::BackupArgs),
}

/// What every command needs, resolved once.
pub struct Context {
    pub data_dir: PathBuf,
    pub keys_dir: PathBuf,
    pub database: DatabaseUrl,
    /// `--database-pool`, when given.
    pub database_pool: Option<u32>,
    pub file: SettingsFile,
}

impl Context {
    /// The database, opened (and created and migrated if need be) for one command.
    pub fn store(&self) -> Result<Arc<dyn Store>, Error> {
        Ok(crate::store::open(&self.database, self.database_pool.unwrap_or(4))?.store)
    }

    /// Every manager over the database: the only way a command changes anything.
    pub fn managers(&self) -> Result<Managers, Error> {
        let blobs = Arc::new(crate::store::blobs::FsBlobs::new(&self.data_dir));
        Ok(Managers::new(self.store()?, blobs, &self.keys_dir))
    }

    pub fn keys(&self) -> crate::keys::KeyStore {
        crate::keys::KeyStore::new(&self.keys_dir)
    }
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Help and version print in full; a usage mistake prints clap's one-line diagnosis (the
/// usage block and hints are for `--help`), so scripts see one clear line and exit 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            let rendered = e.render().to_string();
            let diagnosis: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            eprintln!("{} (see --help)", diagnosis.join(" "));
            ExitCode::from(2)
        }
    }
}

fn execute(cli: Cli) -> Result<(), Error> {
    let file = SettingsFile::load(cli.config.as_deref())?;
    let global = file.overlay(&cli.global)?;
    // `serve` logs its access lines at info, in the format it is given; other commands
    // print their answer and log only what went wrong.
    match &cli.command {
        Command::Serve(args) => {
            crate::logging::init(file.overlay(args)?.log_format.unwrap_or_default(), "info")
        }
        _ => crate::logging::init(LogFormat::Text, "warn"),
    }
    let data_dir = global.data_dir.unwrap_or_else(|| "data".into());
    let database = match &global.database_url {
        Some(url) => DatabaseUrl::parse(url)?,
        None => DatabaseUrl::in_data_dir(&data_dir),
    };
    let ctx = Context {
        keys_dir: global.keys_dir.unwrap_or_else(|| "keys".into()),
        data_dir,
        database,
        database_pool: global.database_pool,
        file,
    };
    match cli.command {
        Command::Serve(args) => serve::run(&ctx, *args),
        Command::Keys(cmd) => keys::run(&ctx, cmd),
        Command::RsaKernelProbe { millis, threads } => {
            let line =
                crate::keys::rsa_kernel::run_probe(millis, threads).map_err(Error::Config)?;
            println!("{line}");
            Ok(())
        }
        Command::Group(cmd) => namespaces::run_group(&ctx, cmd),
        Command::Project(cmd) => namespaces::run_project(&ctx, cmd),
        Command::Token(cmd) => tokens::run(&ctx, cmd),
        Command::User(cmd) => users::run(&ctx, cmd),
        Command::Ci(cmd) => ci::run(&ctx, cmd),
        Command::Audit(args) => audit::run(&ctx, args),
        Command::Db(cmd) => db::run(&ctx, cmd),
        Command::Backup(args) => backup::run(&ctx, args),
    }
}

/// Prints a value as pretty JSON on stdout.
fn print_json<T: serde::Serialize>(value: &T) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::Config(format!("cannot encode JSON: {e}")))?;
    println!("{text}");
    Ok(())
}
