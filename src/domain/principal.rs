//! Who is asking. Users and personal access tokens join this enum later; every realm decides
//! on a `Principal`, never on raw credentials.

use super::deploy_token::{DeployToken, TokenScope};

#[derive(Debug, Clone)]
pub enum Principal {
    Anonymous,
    DeployToken(Box<DeployToken>),
}

impl Principal {
    /// The name that goes into a JWT's `sub` and into logs; empty for anonymous.
    pub fn subject(&self) -> String {
        match self {
            Principal::Anonymous => String::new(),
            Principal::DeployToken(t) => t.username(),
        }
    }

    pub fn auth_type(&self) -> &'static str {
        match self {
            Principal::Anonymous => "none",
            Principal::DeployToken(_) => "deploy_token",
        }
    }

    pub fn has_scope(&self, scope: TokenScope) -> bool {
        match self {
            Principal::Anonymous => false,
            Principal::DeployToken(t) => t.has(scope),
        }
    }
}
