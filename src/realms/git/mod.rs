//! The git realm (SPEC §2 "Git over HTTP", §6): clone and fetch over smart HTTP and Git LFS
//! downloads, for deploy tokens with `read_repository`, users (reporter+) and, on public
//! projects, anyone; push and LFS uploads for developers and up (issue 6).
//!
//! - [`route`] recognises `/<project>[.git]/<endpoint>` URLs.
//! - [`repo`] owns the bare repositories under `<data-dir>/repositories/`.
//! - [`http_backend`] streams requests through the real `git http-backend`.
//! - [`lfs`] is the LFS batch API; [`link`] signs the short-lived transfer links;
//!   [`upload`] stores an uploaded object after checking its size and SHA-256.
//! - [`error`] renders refusals the way git and git-lfs show them to people.
//!
//! - `handler` is the HTTP entry point: the app's default service, so anything that is
//!   not a git URL is still the JSON 404.
//!
//! Who may do what is decided in `domain::git_access`.

pub mod error;
mod handler;
pub mod http_backend;
pub mod lfs;
pub mod link;
pub mod repo;
pub mod route;
pub mod upload;

use actix_web::web;

pub use error::{GitError, Surface};
pub use repo::Repositories;

/// Git URLs have any number of path segments before their endpoint, so they are recognised
/// by the handler (which answers the usual JSON 404 for anything else) rather than by route
/// patterns: the git realm is the app's default service, registered last.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.default_service(web::to(handler::dispatch));
}
