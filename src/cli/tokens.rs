//! `wvs-auth token …`: create (secret shown once), list, revoke.

use chrono::Utc;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::json;

use super::{print_json, Context, Error};
use crate::domain::deploy_token::{
    parse_expiry, parse_scopes, validate_name, validate_username, DeployToken, TokenOwner,
};
use crate::domain::path::NamespacePath;
use crate::domain::store::Revocation;
use crate::manage::{Actor, CreateRequest, DeployTokenManager, Managers};

#[derive(Args)]
#[command(group(ArgGroup::new("owner").required(true).args(["project", "group"])))]
pub struct OwnerArgs {
    /// Full path of the project the token belongs to
    #[arg(long)]
    project: Option<String>,
    /// Full path of the group the token belongs to (covers all projects below it)
    #[arg(long)]
    group: Option<String>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a deploy token and print its secret once
    Create {
        #[command(flatten)]
        owner: OwnerArgs,
        #[arg(long)]
        name: String,
        /// Comma-separated: read_repository, read_registry, write_registry,
        /// read_package_registry, write_package_registry
        #[arg(long)]
        scopes: String,
        /// Last day is the day before: the token stops at 00:00 UTC of this date
        #[arg(long, value_name = "YYYY-MM-DD")]
        expires_at: Option<String>,
        /// Custom username [default: wvs+deploy-token-{id}]
        #[arg(long)]
        username: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List a project's or group's tokens, revoked and expired ones included
    List {
        #[command(flatten)]
        owner: OwnerArgs,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token; it stops working on the next request
    Revoke { id: i64 },
}

/// Resolves `--project`/`--group` to a stored owner. Paths are validated before the
/// database is opened, so bad input never creates or touches it.
fn owner_path(owner: &OwnerArgs) -> Result<(NamespacePath, bool), Error> {
    match (&owner.project, &owner.group) {
        (Some(p), _) => Ok((NamespacePath::parse(p)?, true)),
        (None, Some(g)) => Ok((NamespacePath::parse(g)?, false)),
        (None, None) => Err(Error::Config("--project or --group is required".into())),
    }
}

fn resolve_owner(
    managers: &Managers,
    (path, is_project): (NamespacePath, bool),
) -> Result<TokenOwner, Error> {
    if is_project {
        let p = managers.namespaces.project(&path)?;
        Ok(DeployTokenManager::project_owner(&p))
    } else {
        let g = managers.namespaces.group(&path)?;
        Ok(DeployTokenManager::group_owner(&g))
    }
}

fn token_json(t: &DeployToken) -> serde_json::Value {
    json!({
        "id": t.id,
        "name": t.name,
        "username": t.username(),
        "scopes": t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "expires_at": t.expires_at.map(|d| d.to_string()),
    })
}

pub fn run(ctx: &Context, cmd: TokenCommand) -> Result<(), Error> {
    match cmd {
        TokenCommand::Create {
            owner,
            name,
            scopes,
            expires_at,
            username,
            json,
        } => {
            // Validated before the database is opened, so bad input never creates it.
            validate_name(&name)?;
            parse_scopes([scopes.as_str()])?;
            if let Some(d) = &expires_at {
                parse_expiry(d, Utc::now().date_naive())?;
            }
            if let Some(u) = &username {
                validate_username(u)?;
            }
            let owner_path = owner_path(&owner)?;
            let managers = ctx.managers()?;
            let owner = resolve_owner(&managers, owner_path)?;
            let request = CreateRequest {
                name: Some(name),
                scopes: vec![scopes],
                expires_at,
                username,
            };
            let (token, secret) = managers.tokens.create(Actor::Cli, &owner, request)?;
            if json {
                let mut value = token_json(&token);
                value["token"] = json!(secret.expose());
                print_json(&value)?;
            } else {
                println!(
                    "created deploy token {} for {} {}\n  username: {}\n  scopes:   {}\n  expires:  {}\n  token:    {}",
                    token.id,
                    token.owner.kind(),
                    token.owner.path(),
                    token.username(),
                    token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
                    token.expires_at.map_or("never".to_string(), |d| format!("{d}T00:00:00Z")),
                    secret.expose()
                );
                eprintln!(
                    "Copy the token now: it is stored only as a digest and cannot be shown again."
                );
            }
        }
        TokenCommand::List { owner, json } => {
            let owner_path = owner_path(&owner)?;
            let managers = ctx.managers()?;
            let owner = resolve_owner(&managers, owner_path)?;
            let tokens = managers.tokens.list(Actor::Cli, &owner)?;
            let now = Utc::now();
            if json {
                let rows: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        let mut v = token_json(t);
                        v["revoked"] = json!(t.is_revoked());
                        v["expired"] = json!(t.is_expired(now));
                        v["last_used_at"] = json!(t.last_used_at);
                        v["created_at"] = json!(t.created_at);
                        v
                    })
                    .collect();
                print_json(&rows)?;
            } else {
                for t in tokens {
                    let state = if t.is_revoked() {
                        "revoked"
                    } else if t.is_expired(now) {
                        "expired"
                    } else {
                        "active"
                    };
                    println!(
                        "{:>5}  {:<8} {:<28} {:<40} {}",
                        t.id,
                        state,
                        t.username(),
                        t.scopes
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                        t.name
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => match ctx.managers()?.tokens.revoke_by_id(Actor::Cli, id)?.1
        {
            Revocation::Revoked => println!("revoked deploy token {id}"),
            Revocation::AlreadyRevoked => println!("deploy token {id} was already revoked"),
        },
    }
    Ok(())
}
