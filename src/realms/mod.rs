//! The realms: what machines use deploy tokens for. Each folder owns its routes
//! (`configure`), handlers, errors and realm-specific rules; the rules they share live in
//! `domain`, authentication in `auth`. A new realm (packages) is a sibling folder of the
//! same shape.
//!
//! - [`registry`]: the Docker token endpoint `/jwt/auth` for a stock registry.
//! - [`dependency_proxy`]: GitLab-style pulls through a pull-through cache.
//! - [`git`]: smart HTTP and Git LFS.
//! - [`packages`]: generic packages, PyPI and npm at GitLab's paths.

pub mod dependency_proxy;
pub mod git;
pub mod packages;
pub mod registry;
