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
//! Who may do what is decided in `domain::git_access`, the HTTP handler is `http::git`.

pub mod error;
pub mod http_backend;
pub mod lfs;
pub mod link;
pub mod repo;
pub mod route;
pub mod upload;

pub use error::{GitError, Surface};
pub use repo::Repositories;
