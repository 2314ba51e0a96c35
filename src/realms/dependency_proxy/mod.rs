//! The Dependency Proxy realm (SPEC §2): a stock pull-through cache trusts wvs-auth, and
//! wvs-auth also answers GitLab-style image paths itself, in front of that cache.
//!
//! - [`grant`]: what `/jwt/auth` gives for a dependency-proxy service (pull, never push).
//! - [`route`]: the `/v2/` paths wvs-auth answers (`GROUP/dependency_proxy/containers/…`).
//! - [`bearer`]: the bearer JWTs wvs-auth issued, checked with its own published keys.
//! - [`forward`]: the `/v2/` handler, streaming manifests and blobs from the cache.

mod bearer;
mod forward;
pub mod route;

use actix_web::web;

use crate::domain::dependency_proxy::{proxy_actions, proxy_group, ProxyRefusal};
use crate::domain::path::NamespacePath;
use crate::domain::principal::Principal;
use crate::domain::scope::ResourceScope;
use crate::domain::store::{GroupSettings, StoreError, StoreFailure};
use crate::keys::issue::Access;
pub use forward::CacheClient;

/// `/v2` and everything below it: the Dependency Proxy's GitLab-style paths (404 when no
/// `--proxy-registry` is set, and for any other path).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/v2{tail:.*}", web::route().to(forward::v2));
}

/// Why a principal gets nothing from the Dependency Proxy.
#[derive(Debug, thiserror::Error)]
pub enum ProxyGrantError {
    #[error(transparent)]
    Refused(#[from] ProxyRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl StoreFailure for ProxyGrantError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            ProxyGrantError::Store(e) => Some(e),
            ProxyGrantError::Refused(_) => None,
        }
    }
}

/// What a dependency-proxy token carries: the granted access and the token's group, which
/// goes into the JWT so the GitLab-style endpoint can check the group in the path.
#[derive(Debug)]
pub struct ProxyGrant {
    pub access: Vec<Access>,
    pub group: NamespacePath,
}

/// The granted subset of `requested` for a dependency-proxy service. Unlike the registry,
/// a principal outside the rule is refused (401/403) rather than given an empty token, so
/// `docker login` to the proxy already says what is wrong. The group setting is read on
/// every request: turning the proxy off takes effect on the next token request.
pub fn grant(
    groups: &dyn GroupSettings,
    principal: &Principal,
    requested: &[ResourceScope],
) -> Result<ProxyGrant, ProxyGrantError> {
    let (group_id, group) = proxy_group(principal)?;
    if !groups.dependency_proxy_enabled(group_id)? {
        return Err(ProxyRefusal::Disabled(group.clone()).into());
    }
    let access = requested
        .iter()
        .filter_map(|scope| {
            let actions = proxy_actions(group, scope);
            (!actions.is_empty()).then(|| Access {
                resource_type: scope.resource_type.clone(),
                class: scope.class.clone(),
                name: scope.name.clone(),
                actions,
            })
        })
        .collect();
    Ok(ProxyGrant {
        access,
        group: group.clone(),
    })
}
