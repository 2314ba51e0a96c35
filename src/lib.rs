//! wvs-auth: deploy tokens for container registries, git and package realms.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod app;
pub mod auth;
pub mod blocking;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod keys;
pub mod logging;
pub mod manage;
pub mod metrics;
pub mod poll;
pub mod realms;
pub mod request;
pub mod store;
pub mod web;
