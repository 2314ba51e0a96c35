//! `wvs-auth keys …`.

use clap::Subcommand;

use super::Error;
use super::{print_json, Context};
use crate::config::{ServeConfig, ServeSettings};
use crate::keys::SigningAlg;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create the first signing key if there is no active one
    Init {
        /// Algorithm of the key: RS256 (RSA-2048) or ES256 (ECDSA P-256). An existing
        /// active key is kept whatever its algorithm; change algorithms with `rotate`
        #[arg(long, value_enum, ignore_case = true, default_value_t = SigningAlg::Rs256)]
        alg: SigningAlg,
    },
    /// Print the PEM certificates of every published key (a registry's rootcertbundle)
    Bundle,
    /// Print the JWKS of every published key
    Jwks,
    /// Publish a new key without signing with it yet
    Rotate {
        /// Algorithm of the new key: RS256 (RSA-2048) or ES256 (ECDSA P-256)
        #[arg(long, value_enum, ignore_case = true, default_value_t = SigningAlg::Rs256)]
        alg: SigningAlg,
    },
    /// Make a published key the signer (running servers switch within a second)
    Activate {
        /// RFC 7638 thumbprints are base64url and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
    /// Withdraw a key from the bundle and JWKS; refused while tokens it signed can still be
    /// valid (the token TTL plus 60 s since it stopped signing)
    Retire {
        #[arg(allow_hyphen_values = true)]
        kid: String,
        /// Retire it anyway: registries reject the tokens it signed from their next reload
        #[arg(long)]
        force: bool,
    },
    /// List keys and their states
    List {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(ctx: &Context, cmd: KeysCommand) -> Result<(), Error> {
    let keys = ctx.keys();
    match cmd {
        KeysCommand::Init { alg } => match keys.init(alg)? {
            Some(meta) => println!("created {} signing key {} (active)", meta.alg, meta.kid),
            None => println!("an active signing key already exists"),
        },
        KeysCommand::Bundle => {
            let bundle = keys.bundle()?;
            if bundle.is_empty() {
                return Err(Error::Config(format!(
                    "no published keys in {}: run `wvs-auth keys init`",
                    ctx.keys_dir.display()
                )));
            }
            print!("{bundle}");
        }
        KeysCommand::Jwks => print_json(&keys.jwks()?)?,
        KeysCommand::Rotate { alg } => {
            let meta = keys.rotate(alg)?;
            println!(
                "published {} key {}; reload registries' bundle, then `keys activate {}`",
                meta.alg, meta.kid, meta.kid
            );
        }
        KeysCommand::Activate { kid } => {
            keys.activate(&kid)?;
            println!("key {kid} is active; running servers sign with it within a second");
        }
        KeysCommand::Retire { kid, force } => {
            // Tokens live `token_ttl` (as `serve` is configured here), LFS links 300 s,
            // and registries allow 60 s of clock skew on top.
            let ttl = ServeConfig::resolve(ctx.file.overlay(&ServeSettings::default())?)?
                .token_ttl
                .max(crate::realms::git::link::LINK_TTL_SECS);
            keys.retire(&kid, chrono::Duration::seconds(ttl + 60), force)?;
            println!("key {kid} retired");
        }
        KeysCommand::List { json } => {
            let list = keys.list()?;
            if json {
                print_json(&list)?;
            } else {
                for k in list {
                    println!(
                        "{}  {}  {:<9}  {}",
                        k.kid,
                        k.alg,
                        k.state.to_string(),
                        k.created_at.to_rfc3339()
                    );
                }
            }
        }
    }
    Ok(())
}
