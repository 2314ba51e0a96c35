//! `wvs-auth user …`: accounts, memberships and personal access tokens.

use std::io::Read;

use chrono::Utc;
use clap::{ArgGroup, Args, Subcommand};
use secrecy::SecretString;
use serde_json::json;

use super::{print_json, Context, Error};
use crate::domain::deploy_token::{parse_expiry, validate_name};
use crate::domain::password::validate_password;
use crate::domain::path::NamespacePath;
use crate::domain::personal_access_token::parse_pat_scopes;
use crate::domain::role::Role;
use crate::domain::user::validate_username;
use crate::manage::users::MemberTarget;
use crate::manage::{Actor, NewPatRequest};

#[derive(Args)]
#[command(group(ArgGroup::new("target").required(true).args(["project", "group"])))]
pub struct TargetArgs {
    /// Full path of the project
    #[arg(long)]
    project: Option<String>,
    /// Full path of the group (the role is inherited by its subgroups and projects)
    #[arg(long)]
    group: Option<String>,
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user (password read from stdin with --password-stdin)
    Create {
        name: String,
        /// Administrators manage every namespace's deploy tokens
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin (8 to 1024 characters)
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    List {
        #[arg(long)]
        json: bool,
    },
    /// Give a user a role on a project or group (changes the role if already a member)
    AddMember {
        name: String,
        #[command(flatten)]
        target: TargetArgs,
        /// guest, reporter, developer, maintainer or owner
        #[arg(long)]
        role: String,
    },
    /// Remove a user's membership of a project or group
    RemoveMember {
        name: String,
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Block a user: password, personal access tokens and sessions stop on the next
    /// request; deploy tokens they created keep working
    Block { name: String },
    /// Unblock a user
    Unblock { name: String },
    /// Delete a user with their memberships, personal access tokens and sessions; deploy
    /// tokens they created keep working
    Delete { name: String },
    /// Personal access tokens
    #[command(subcommand)]
    Token(UserTokenCommand),
}

#[derive(Subcommand)]
pub enum UserTokenCommand {
    /// Create a personal access token and print its secret once
    Create {
        /// The user the token belongs to
        user: String,
        #[arg(long)]
        name: String,
        /// Comma-separated: api, read_repository, write_repository, read_registry, write_registry
        #[arg(long, default_value = "api")]
        scopes: String,
        #[arg(long, value_name = "YYYY-MM-DD")]
        expires_at: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a personal access token by id
    Revoke { id: i64 },
}

fn target(t: &TargetArgs) -> Result<MemberTarget, Error> {
    match (&t.project, &t.group) {
        (Some(p), _) => Ok(MemberTarget::Project(NamespacePath::parse(p)?)),
        (None, Some(g)) => Ok(MemberTarget::Group(NamespacePath::parse(g)?)),
        (None, None) => Err(Error::Config("--project or --group is required".into())),
    }
}

fn shown(t: &MemberTarget) -> &NamespacePath {
    match t {
        MemberTarget::Project(p) | MemberTarget::Group(p) => p,
    }
}

/// The first line of stdin, without its line ending.
fn read_password() -> Result<SecretString, Error> {
    let mut raw = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut raw)
        .map_err(|e| Error::Config(format!("cannot read the password from stdin: {e}")))?;
    let line = raw.lines().next().unwrap_or_default().to_string();
    Ok(SecretString::from(line))
}

/// `user block` / `user unblock`: saying so when nothing changed is not an error.
fn block(ctx: &Context, name: &str, blocked: bool) -> Result<(), Error> {
    let managers = ctx.managers()?;
    let user = managers.users.find(name)?;
    let changed = managers.users.set_blocked(Actor::Cli, &user, blocked)?;
    let state = if blocked { "blocked" } else { "unblocked" };
    if changed {
        println!("{} is {state}", user.username);
    } else {
        println!("{} was already {state}", user.username);
    }
    Ok(())
}

pub fn run(ctx: &Context, cmd: UserCommand) -> Result<(), Error> {
    match cmd {
        UserCommand::Create {
            name,
            admin,
            password_stdin,
        } => {
            validate_username(&name).map_err(|e| Error::Config(e.to_string()))?;
            let password = if password_stdin {
                let password = read_password()?;
                validate_password(&password).map_err(|e| Error::Config(e.to_string()))?;
                Some(password)
            } else {
                None
            };
            let user = ctx
                .managers()?
                .users
                .create(Actor::Cli, &name, password.as_ref(), admin)?;
            let hash = password;
            println!(
                "created user {} (id {}){}{}",
                user.username,
                user.id,
                if admin { ", administrator" } else { "" },
                if hash.is_none() {
                    "; no password: sign in with personal access tokens only"
                } else {
                    ""
                }
            );
        }
        UserCommand::List { json } => {
            let users = ctx.managers()?.users.list(Actor::Cli)?;
            if json {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| json!({"id": u.id, "username": u.username, "admin": u.is_admin, "blocked": u.is_blocked(), "created_at": u.created_at}))
                    .collect();
                print_json(&rows)?;
            } else {
                for u in users {
                    println!(
                        "{:>5}  {}{}{}",
                        u.id,
                        u.username,
                        if u.is_admin { " (admin)" } else { "" },
                        if u.is_blocked() { " (blocked)" } else { "" }
                    );
                }
            }
        }
        UserCommand::AddMember {
            name,
            target: t,
            role,
        } => {
            let role: Role = role
                .parse()
                .map_err(|e: crate::domain::role::UnknownRole| Error::Config(e.to_string()))?;
            let t = target(&t)?;
            let shown = shown(&t).clone();
            let (user, previous) = ctx
                .managers()?
                .users
                .add_member(Actor::Cli, &name, &t, role)?;
            match previous {
                None => println!("{} is now {role} of {shown}", user.username),
                Some(old) => println!("{} changed from {old} to {role} of {shown}", user.username),
            }
        }
        UserCommand::RemoveMember { name, target: t } => {
            let t = target(&t)?;
            let shown = shown(&t).clone();
            let user = ctx.managers()?.users.remove_member(Actor::Cli, &name, &t)?;
            println!("removed {} from {shown}", user.username);
        }
        UserCommand::Token(UserTokenCommand::Create {
            user,
            name,
            scopes,
            expires_at,
            json,
        }) => {
            // Validated before the database is opened, so bad input never creates it.
            validate_name(&name)?;
            parse_pat_scopes(&scopes).map_err(|e| Error::Config(e.to_string()))?;
            if let Some(d) = &expires_at {
                parse_expiry(d, Utc::now().date_naive())?;
            }
            let request = NewPatRequest {
                name,
                scopes,
                expires_at,
            };
            let (owner, pat, secret) =
                ctx.managers()?
                    .users
                    .create_pat(Actor::Cli, &user, &request)?;
            let scope_names: Vec<&str> = pat.scopes.iter().map(|s| s.as_str()).collect();
            if json {
                print_json(&json!({
                    "id": pat.id,
                    "name": pat.name,
                    "token": secret.expose(),
                    "scopes": scope_names,
                    "expires_at": pat.expires_at.map(|d| d.to_string()),
                }))?;
            } else {
                println!(
                    "created personal access token {} for {}\n  scopes:  {}\n  expires: {}\n  token:   {}",
                    pat.id,
                    owner.username,
                    scope_names.join(","),
                    pat.expires_at.map_or("never".to_string(), |d| format!("{d}T00:00:00Z")),
                    secret.expose()
                );
                eprintln!(
                    "Copy the token now: it is stored only as a digest and cannot be shown again."
                );
            }
        }
        UserCommand::Block { name } => block(ctx, &name, true)?,
        UserCommand::Unblock { name } => block(ctx, &name, false)?,
        UserCommand::Delete { name } => {
            let managers = ctx.managers()?;
            let user = managers.users.find(&name)?;
            managers.users.delete(Actor::Cli, &user)?;
            println!(
                "deleted user {}; the deploy tokens they created keep working",
                user.username
            );
        }
        UserCommand::Token(UserTokenCommand::Revoke { id }) => {
            ctx.managers()?.users.revoke_pat(Actor::Cli, id)?;
            println!("revoked personal access token {id}");
        }
    }
    Ok(())
}
