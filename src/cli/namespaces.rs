//! `wvs-auth group …` and `wvs-auth project …`.

use clap::Subcommand;
use serde_json::json;

use super::{print_json, Context, Error};
use crate::domain::namespace::Visibility;
use crate::domain::path::NamespacePath;
use crate::manage::Actor;
use crate::realms::git::Repositories;

#[derive(Subcommand)]
pub enum GroupCommand {
    /// Create a group; nested groups need their parent first (acme, then acme/platform)
    Create {
        path: String,
        /// Let the group's deploy tokens (read_registry + write_registry) pull through the
        /// Dependency Proxy
        #[arg(long)]
        dependency_proxy: bool,
    },
    /// Change a group's settings
    Update {
        path: String,
        /// Turn the group's Dependency Proxy on or off
        #[arg(
            long,
            value_name = "on|off",
            value_parser = parse_on_off,
            action = clap::ArgAction::Set,
            required = true
        )]
        dependency_proxy: bool,
    },
    /// List groups
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ProjectCommand {
    /// Create a project, at top level or in an existing group
    Create {
        path: String,
        #[arg(long, default_value = "private", value_parser = parse_visibility)]
        visibility: Visibility,
    },
    /// List projects
    List {
        #[arg(long)]
        json: bool,
    },
}

/// `on`/`off` as SPEC §5 spells the switch (also `true`/`false`, as TOML people type it).
fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("expected on or off, got {s:?}")),
    }
}

fn on_off(enabled: bool) -> &'static str {
    if enabled {
        "on"
    } else {
        "off"
    }
}

fn parse_visibility(s: &str) -> Result<Visibility, String> {
    s.parse()
}

pub fn run_group(ctx: &Context, cmd: GroupCommand) -> Result<(), Error> {
    match cmd {
        GroupCommand::Create {
            path,
            dependency_proxy,
        } => {
            let path = NamespacePath::parse(&path)?;
            let group =
                ctx.managers()?
                    .namespaces
                    .create_group(Actor::Cli, &path, dependency_proxy)?;
            println!(
                "created group {} (id {}, dependency proxy {})",
                group.path,
                group.id,
                on_off(group.dependency_proxy)
            );
        }
        GroupCommand::Update {
            path,
            dependency_proxy,
        } => {
            let path = NamespacePath::parse(&path)?;
            let group = ctx.managers()?.namespaces.set_dependency_proxy(
                Actor::Cli,
                &path,
                dependency_proxy,
            )?;
            println!(
                "group {}: dependency proxy {}",
                group.path,
                on_off(group.dependency_proxy)
            );
        }
        GroupCommand::List { json } => {
            let groups = ctx.managers()?.namespaces.groups()?;
            if json {
                let rows: Vec<_> = groups
                    .iter()
                    .map(|g| {
                        json!({
                            "id": g.id,
                            "path": g.path.as_str(),
                            "parent_id": g.parent_id,
                            "dependency_proxy": g.dependency_proxy,
                            "created_at": g.created_at,
                        })
                    })
                    .collect();
                print_json(&rows)?;
            } else {
                for g in groups {
                    let proxy = if g.dependency_proxy {
                        "  [dependency proxy]"
                    } else {
                        ""
                    };
                    println!("{:>5}  {}{proxy}", g.id, g.path);
                }
            }
        }
    }
    Ok(())
}

pub fn run_project(ctx: &Context, cmd: ProjectCommand) -> Result<(), Error> {
    match cmd {
        ProjectCommand::Create { path, visibility } => {
            let path = NamespacePath::parse(&path)?;
            let project =
                ctx.managers()?
                    .namespaces
                    .create_project(Actor::Cli, &path, visibility)?;
            println!(
                "created {} project {} (id {})",
                project.visibility, project.path, project.id
            );
            // The row is committed first: should git fail here, the server still creates
            // the repository on first access, so the project is usable either way.
            let repos = Repositories::new(&ctx.data_dir);
            repos.ensure(&project.path).map_err(|e| {
                Error::Config(format!(
                    "project {} was created, but not its git repository ({e}); it will be created on first git access",
                    project.path
                ))
            })?;
            println!("git repository: {}", repos.dir(&project.path).display());
        }
        ProjectCommand::List { json } => {
            let projects = ctx.managers()?.namespaces.projects()?;
            if json {
                let rows: Vec<_> = projects
                    .iter()
                    .map(|p| {
                        json!({
                            "id": p.id,
                            "path": p.path.as_str(),
                            "visibility": p.visibility.as_str(),
                            "created_at": p.created_at,
                        })
                    })
                    .collect();
                print_json(&rows)?;
            } else {
                for p in projects {
                    println!("{:>5}  {:<8}  {}", p.id, p.visibility.as_str(), p.path);
                }
            }
        }
    }
    Ok(())
}
