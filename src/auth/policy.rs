//! What each surface accepts: where its credentials come from, which kinds of secret, what
//! happens without any, and what an authenticated principal must also hold. One constant
//! per surface, so a new realm states its policy in one place (crates.io's `AuthCheck`
//! plays this part there).

use std::fmt;

use super::credentials::Source;
use crate::domain::authn::Accepts;
use crate::domain::principal::Principal;

/// Which surface asked, for the audit log and the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Registry,
    Git,
    Api,
    Pages,
    Packages,
}

impl Surface {
    /// The name in logs, the audit log and the metrics' `surface` label.
    pub fn name(self) -> &'static str {
        match self {
            Surface::Registry => "registry",
            Surface::Git => "git",
            Surface::Api => "api",
            Surface::Pages => "pages",
            Surface::Packages => "packages",
        }
    }
}

impl fmt::Display for Surface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an authenticated principal must also hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    None,
    /// The management API: a personal access token with the `api` scope (or a session).
    ApiScope,
}

impl Requirement {
    pub fn met_by(self, principal: &Principal) -> bool {
        match self {
            Requirement::None => true,
            Requirement::ApiScope => match principal {
                Principal::User(u) => u.may_use_api(),
                Principal::Anonymous | Principal::DeployToken(_) => false,
            },
        }
    }
}

#[derive(Debug)]
pub struct Policy {
    pub surface: Surface,
    /// Read in this order; the first that carries credentials wins.
    pub sources: &'static [Source],
    pub accepts: Accepts,
    /// Without credentials: proceed as anonymous (the rules decide what anonymous may do,
    /// public projects for instance), or refuse with 401.
    pub anonymous: bool,
    pub requirement: Requirement,
}

impl Policy {
    /// `/jwt/auth` (Docker's GET with Basic; the OAuth POST's form is passed in directly).
    pub const REGISTRY: Policy = Policy {
        surface: Surface::Registry,
        sources: &[Source::Basic],
        accepts: Accepts::ALL,
        anonymous: true,
        requirement: Requirement::None,
    };

    /// Smart HTTP and LFS: git sends Basic after a 401 challenge.
    pub const GIT: Policy = Policy {
        surface: Surface::Git,
        sources: &[Source::Basic],
        accepts: Accepts::ALL,
        anonymous: true,
        requirement: Requirement::None,
    };

    /// `/api/v4`: a user's PAT with `api`, in `PRIVATE-TOKEN` (which wins, as in GitLab) or
    /// Bearer. Never a password, never a deploy token (SPEC §1).
    pub const API: Policy = Policy {
        surface: Surface::Api,
        sources: &[Source::PrivateToken, Source::Bearer],
        accepts: Accepts {
            deploy_tokens: false,
            personal_access_tokens: true,
            passwords: false,
        },
        anonymous: false,
        requirement: Requirement::ApiScope,
    };

    /// The package registries at GitLab's paths (PACKAGE-NOTES §0): `Deploy-Token`, then
    /// Bearer, then the Basic password (its username ignored for tokens). Anonymous
    /// requests go on: public projects read without credentials. PATs need `api`, which
    /// the package rules check (a 403, not a 401).
    pub const PACKAGES: Policy = Policy {
        surface: Surface::Packages,
        sources: &[Source::DeployToken, Source::Bearer, Source::BasicSecret],
        accepts: Accepts::ALL,
        anonymous: true,
        requirement: Requirement::None,
    };

    /// The Cargo registry: the package rules, with the token as Cargo sends it (raw in
    /// `Authorization`) or in `Deploy-Token`.
    pub const CARGO: Policy = Policy {
        surface: Surface::Packages,
        sources: &[Source::DeployToken, Source::CargoToken],
        accepts: Accepts::ALL,
        anonymous: true,
        requirement: Requirement::None,
    };

    /// The NuGet registry: the package rules, plus `X-NuGet-ApiKey` (what `nuget push
    /// -ApiKey` sends), and Basic with its username checked: GitLab refuses a token
    /// presented under another name there (PACKAGE-NOTES §0), so `Basic`, not `BasicSecret`.
    pub const NUGET: Policy = Policy {
        surface: Surface::Packages,
        sources: &[
            Source::DeployToken,
            Source::NugetApiKey,
            Source::Bearer,
            Source::Basic,
        ],
        accepts: Accepts::ALL,
        anonymous: true,
        requirement: Requirement::None,
    };

    /// The settings pages' sign-in form: a password only; tokens are for machines.
    pub const SIGN_IN: Policy = Policy {
        surface: Surface::Pages,
        sources: &[],
        accepts: Accepts {
            deploy_tokens: false,
            personal_access_tokens: false,
            passwords: true,
        },
        anonymous: false,
        requirement: Requirement::None,
    };
}

#[cfg(test)]
mod tests {
    use super::Surface;

    /// The metrics create every surface's failure series from their own list, which sits
    /// below this module: it must name the same surfaces.
    #[test]
    fn the_metrics_know_every_surface() {
        let all = [
            Surface::Registry,
            Surface::Git,
            Surface::Api,
            Surface::Pages,
            Surface::Packages,
        ];
        // A new surface fails to compile here until it is added to `all` (and the metrics).
        for s in all {
            match s {
                Surface::Registry
                | Surface::Git
                | Surface::Api
                | Surface::Pages
                | Surface::Packages => {}
            }
        }
        let names: Vec<&str> = all.iter().map(|s| s.name()).collect();
        assert_eq!(names, crate::metrics::SURFACES);
    }
}
