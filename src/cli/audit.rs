//! `wvs-auth audit [--since RFC3339]`: the audit log, oldest first.

use chrono::{DateTime, Utc};
use clap::Args;

use super::{print_json, Context, Error};
use crate::manage::Actor;

#[derive(Args)]
pub struct AuditArgs {
    /// Only events at or after this instant, e.g. 2026-11-25T00:00:00Z
    #[arg(long, value_name = "RFC3339")]
    since: Option<String>,
    /// At most this many events
    #[arg(long, default_value_t = 1000)]
    limit: u32,
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: AuditArgs) -> Result<(), Error> {
    let since = args
        .since
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Error::Config(format!(
                        "--since {s:?} is not an RFC 3339 time such as 2026-11-25T00:00:00Z"
                    ))
                })
        })
        .transpose()?;
    let events = ctx.managers()?.audit.list(Actor::Cli, since, args.limit)?;
    if args.json {
        return print_json(&events);
    }
    for e in events {
        println!(
            "{}  {:<24} actor={} token={} target={}{}",
            e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            e.action,
            e.actor.as_deref().unwrap_or("-"),
            e.deploy_token_id.map_or("-".to_string(), |i| i.to_string()),
            e.target.as_deref().unwrap_or("-"),
            e.detail.map(|d| format!(" {d}")).unwrap_or_default()
        );
    }
    Ok(())
}
