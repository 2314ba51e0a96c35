//! Settings: command-line flags win over `WVS_AUTH_*` environment variables, which win over
//! the `--config` TOML file, which wins over the defaults. Every knob lives here so a
//! deployment can be described in one file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::http::throttle::ThrottleConfig;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5050";
pub const DEFAULT_ISSUER: &str = "wvs-auth";
pub const DEFAULT_SERVICE: &str = "container_registry";
pub const DEFAULT_TOKEN_TTL: i64 = 300;
/// Clients treat anything shorter as 60 s anyway (PROTOCOL-NOTES).
pub const MIN_TOKEN_TTL: i64 = 60;
pub const MAX_TOKEN_TTL: i64 = 86_400;

/// The `--config` file. Every field is optional; unknown fields are an error, so a typo
/// does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub keys_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub issuer: Option<String>,
    pub services: Option<Vec<String>>,
    pub token_ttl: Option<i64>,
    pub workers: Option<usize>,
    pub throttle_failures: Option<u32>,
    pub throttle_window_secs: Option<u64>,
    pub throttle_ban_secs: Option<u64>,
}

impl FileConfig {
    pub fn load(path: Option<&Path>) -> Result<Self, Error> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), e.message())))
    }
}

/// Resolved settings of `serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: String,
    pub issuer: String,
    pub services: Vec<String>,
    pub token_ttl: i64,
    pub workers: usize,
    pub throttle: ThrottleConfig,
}

/// Flag values of `serve` as parsed (None = not given).
#[derive(Debug, Default)]
pub struct ServeFlags {
    pub listen: Option<String>,
    pub issuer: Option<String>,
    pub services: Vec<String>,
    pub token_ttl: Option<i64>,
    pub workers: Option<usize>,
    pub throttle_failures: Option<u32>,
    pub throttle_window_secs: Option<u64>,
    pub throttle_ban_secs: Option<u64>,
}

impl ServeConfig {
    pub fn resolve(flags: ServeFlags, file: &FileConfig) -> Result<Self, Error> {
        let token_ttl = flags
            .token_ttl
            .or(file.token_ttl)
            .unwrap_or(DEFAULT_TOKEN_TTL);
        if !(MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&token_ttl) {
            return Err(Error::Config(format!(
                "token TTL {token_ttl} must be between {MIN_TOKEN_TTL} and {MAX_TOKEN_TTL} seconds"
            )));
        }
        let services = if !flags.services.is_empty() {
            flags.services
        } else {
            file.services
                .clone()
                .unwrap_or_else(|| vec![DEFAULT_SERVICE.to_string()])
        };
        if services.iter().any(|s| s.is_empty()) {
            return Err(Error::Config("service names must not be empty".into()));
        }
        let defaults = ThrottleConfig::default();
        let throttle = ThrottleConfig {
            max_failures: flags
                .throttle_failures
                .or(file.throttle_failures)
                .unwrap_or(defaults.max_failures)
                .max(1),
            window: flags
                .throttle_window_secs
                .or(file.throttle_window_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults.window),
            ban: flags
                .throttle_ban_secs
                .or(file.throttle_ban_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults.ban),
        };
        check_range("throttle window", throttle.window.as_secs(), 1, 3_600)?;
        check_range("throttle ban", throttle.ban.as_secs(), 1, 86_400)?;
        let workers = flags
            .workers
            .or(file.workers)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1);
        Ok(Self {
            listen: flags
                .listen
                .or(file.listen.clone())
                .unwrap_or_else(|| DEFAULT_LISTEN.into()),
            issuer: flags
                .issuer
                .or(file.issuer.clone())
                .unwrap_or_else(|| DEFAULT_ISSUER.into()),
            services,
            token_ttl,
            workers,
            throttle,
        })
    }
}

/// Out-of-range throttle settings would disable throttling (a zero window) or overflow
/// `Instant` arithmetic (a huge ban), so they are refused at start.
fn check_range(what: &str, value: u64, min: u64, max: u64) -> Result<(), Error> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{what} {value}s must be between {min} and {max} seconds"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_file_over_defaults() {
        let file: FileConfig =
            toml::from_str("issuer = \"from-file\"\ntoken_ttl = 120\nservices = [\"a\", \"b\"]")
                .expect("toml");
        let flags = ServeFlags {
            issuer: Some("from-flag".into()),
            ..Default::default()
        };
        let cfg = ServeConfig::resolve(flags, &file).expect("resolve");
        assert_eq!(cfg.issuer, "from-flag");
        assert_eq!(cfg.token_ttl, 120);
        assert_eq!(cfg.services, vec!["a", "b"]);
        assert_eq!(cfg.listen, DEFAULT_LISTEN);
    }

    #[test]
    fn rejects_short_ttl_and_unknown_keys() {
        let flags = ServeFlags {
            token_ttl: Some(5),
            ..Default::default()
        };
        assert!(ServeConfig::resolve(flags, &FileConfig::default()).is_err());
        assert!(toml::from_str::<FileConfig>("isuer = \"typo\"").is_err());
        let flags = ServeFlags {
            throttle_window_secs: Some(0),
            ..Default::default()
        };
        assert!(ServeConfig::resolve(flags, &FileConfig::default()).is_err());
        let flags = ServeFlags {
            throttle_ban_secs: Some(u64::MAX),
            ..Default::default()
        };
        assert!(ServeConfig::resolve(flags, &FileConfig::default()).is_err());
    }
}
