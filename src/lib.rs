//! wvs-auth: deploy tokens for container registries, git and package realms.
//! See ARCHITECTURE.md for the map.

pub mod api;
pub mod cli;
pub mod config;
pub mod db;
pub mod dependency_proxy;
pub mod domain;
pub mod error;
pub mod git;
pub mod http;
pub mod keys;
pub mod manage;
pub mod registry;
pub mod usage;
pub mod web;
