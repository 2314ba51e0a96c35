//! The domain: namespaces, deploy tokens, registry scopes and who may do what (registry
//! and Dependency Proxy).
//!
//! Nothing here knows about HTTP or SQL. Storage is reached through the small traits in
//! [`store`], so the SQLite backend (and a later PostgreSQL one) and every realm (registry,
//! git, packages) share the same rules.

pub mod access;
pub mod authn;
pub mod dependency_proxy;
pub mod deploy_token;
pub mod git_access;
pub mod namespace;
pub mod path;
pub mod principal;
pub mod scope;
pub mod store;
