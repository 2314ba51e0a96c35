//! Every integration test in one binary: one crate to compile and one executable to link
//! instead of one per file, which is what the build of `cargo test` spent its time on.
//! Each module is one suite (`cargo test --test it token_endpoint::` runs one); they share
//! `common`, the harness that starts real servers on loopback ports.

mod common;

mod abuse;
mod api;
mod balancer_e2e;
mod cli;
mod cli_users;
mod compose_e2e;
mod dependency_proxy_e2e;
mod dependency_proxy_endpoint;
mod git_e2e;
mod git_http;
mod git_push_e2e;
mod metrics;
mod packages;
mod packages_cargo;
mod packages_maven;
mod packages_npm;
mod packages_nuget;
mod packages_pypi;
mod postgres_e2e;
mod registry_e2e;
mod rsa_kernel;
mod tls;
mod token_endpoint;
mod users_registry;
mod users_registry_e2e;
mod web_ui;
