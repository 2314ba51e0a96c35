//! `wvs-auth ci variables --project PATH`: the CI token as dotenv lines (SPEC §1 "CI").

use clap::Subcommand;
use secrecy::ExposeSecret;

use super::{Context, Error};
use crate::domain::path::NamespacePath;
use crate::manage::Actor;

#[derive(Subcommand)]
pub enum CiCommand {
    /// Print CI_DEPLOY_USER / CI_DEPLOY_PASSWORD of the project's `wvs-deploy-token`
    Variables {
        #[arg(long)]
        project: String,
    },
}

pub fn run(ctx: &Context, cmd: CiCommand) -> Result<(), Error> {
    match cmd {
        CiCommand::Variables { project } => {
            let path = NamespacePath::parse(&project)?;
            let managers = ctx.managers()?;
            let project = managers.tokens.resolve_project(path.as_str())?;
            match managers.tokens.ci_variables(Actor::Cli, &project)? {
                // Values are URL-safe base64 and usernames without specials, so no quoting
                // is needed in dotenv form.
                Some(vars) => println!(
                    "CI_DEPLOY_USER={}\nCI_DEPLOY_PASSWORD={}",
                    vars.user,
                    vars.password.expose_secret()
                ),
                None => eprintln!(
                    "project {path} has no active deploy token named wvs-deploy-token; nothing to expose"
                ),
            }
        }
    }
    Ok(())
}
