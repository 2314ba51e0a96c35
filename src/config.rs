//! Settings: command-line flags win over `WVS_AUTH_*` environment variables, which win over
//! the `--config` TOML file, which wins over the defaults. Every knob lives here so a
//! deployment can be described in one file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;
use crate::http::throttle::ThrottleConfig;
use crate::keys::rsa_kernel::RsaKernel;
use crate::keys::SigningAlg;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5050";
pub const DEFAULT_ISSUER: &str = "wvs-auth";
pub const DEFAULT_SERVICE: &str = "container_registry";
pub const DEFAULT_PROXY_SERVICE: &str = "dependency_proxy";
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
    pub proxy_services: Option<Vec<String>>,
    pub proxy_registry: Option<String>,
    pub public_url: Option<String>,
    pub token_ttl: Option<i64>,
    pub workers: Option<usize>,
    pub throttle_failures: Option<u32>,
    pub throttle_window_secs: Option<u64>,
    pub throttle_ban_secs: Option<u64>,
    pub trusted_proxies: Option<Vec<String>>,
    /// `"RS256"` or `"ES256"`: see [`ServeConfig::signing_alg`].
    pub signing_alg: Option<SigningAlg>,
    /// `"auto"`, `"library"` or `"avx2"`: see [`ServeConfig::rsa_kernel`].
    pub rsa_kernel: Option<RsaKernel>,
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
    /// Dependency Proxy service names; never empty, the first one is the one the
    /// GitLab-style `/v2/` endpoint challenges with and speaks to the cache as.
    pub proxy_services: Vec<String>,
    /// Base URL of the pull-through cache; `None` leaves `/v2/` unanswered (404).
    pub proxy_registry: Option<String>,
    /// The URL clients reach wvs-auth at (realm of `/v2/` challenges); `None`: from the
    /// request's Host and scheme.
    pub public_url: Option<String>,
    pub token_ttl: i64,
    pub workers: usize,
    pub throttle: ThrottleConfig,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Algorithm of the signing key `serve` creates when the keys directory has no active
    /// key. It never replaces an existing active key (that is what `keys rotate --alg` and
    /// `keys activate` are for, so registries trust a key before it signs).
    pub signing_alg: SigningAlg,
    /// Which kernel aws-lc signs RSA with (`keys::rsa_kernel`): measured at start by default.
    pub rsa_kernel: RsaKernel,
}

/// Flag values of `serve` as parsed (None = not given).
#[derive(Debug, Default)]
pub struct ServeFlags {
    pub listen: Option<String>,
    pub issuer: Option<String>,
    pub services: Vec<String>,
    pub proxy_services: Vec<String>,
    pub proxy_registry: Option<String>,
    pub public_url: Option<String>,
    pub token_ttl: Option<i64>,
    pub workers: Option<usize>,
    pub throttle_failures: Option<u32>,
    pub throttle_window_secs: Option<u64>,
    pub throttle_ban_secs: Option<u64>,
    pub trusted_proxies: Vec<String>,
    pub signing_alg: Option<SigningAlg>,
    pub rsa_kernel: Option<RsaKernel>,
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
        let proxy_services = if !flags.proxy_services.is_empty() {
            flags.proxy_services
        } else {
            file.proxy_services
                .clone()
                .unwrap_or_else(|| vec![DEFAULT_PROXY_SERVICE.to_string()])
        };
        if services.iter().chain(&proxy_services).any(|s| s.is_empty()) {
            return Err(Error::Config("service names must not be empty".into()));
        }
        if proxy_services.is_empty() {
            return Err(Error::Config(
                "at least one dependency proxy service is required".into(),
            ));
        }
        // One name, one meaning: /jwt/auth dispatches on it, and a registry token must
        // never be mistaken for a proxy token or the other way round.
        if let Some(both) = services.iter().find(|s| proxy_services.contains(s)) {
            return Err(Error::Config(format!(
                "service {both:?} is configured both as a registry service and as a dependency proxy service"
            )));
        }
        let proxy_registry = flags
            .proxy_registry
            .or(file.proxy_registry.clone())
            .map(|u| base_url(&u, "--proxy-registry"))
            .transpose()?;
        let public_url = flags
            .public_url
            .or(file.public_url.clone())
            .map(|u| base_url(&u, "--public-url"))
            .transpose()?;
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
        let trusted_raw = if flags.trusted_proxies.is_empty() {
            file.trusted_proxies.clone().unwrap_or_default()
        } else {
            flags.trusted_proxies.clone()
        };
        let trusted_proxies = trusted_raw
            .iter()
            .map(|raw| parse_net(raw))
            .collect::<Result<Vec<_>, _>>()?;
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
            proxy_services,
            proxy_registry,
            public_url,
            token_ttl,
            workers,
            throttle,
            trusted_proxies,
            signing_alg: flags.signing_alg.or(file.signing_alg).unwrap_or_default(),
            rsa_kernel: flags.rsa_kernel.or(file.rsa_kernel).unwrap_or_default(),
        })
    }
}

/// A trusted proxy: an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
fn parse_net(raw: &str) -> Result<ipnet::IpNet, Error> {
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            Error::Config(format!(
                "trusted proxy {raw:?} is not an IP address or CIDR network"
            ))
        })
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

/// An `http(s)://host[:port][/prefix]` base URL without trailing slash, or a config error.
/// Checked at start-up so a typo fails `serve` rather than every pull.
fn base_url(raw: &str, what: &str) -> Result<String, Error> {
    let bad = || Error::Config(format!("{what} {raw:?} must be an http:// or https:// URL"));
    let trimmed = raw.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"))
        .ok_or_else(bad)?;
    let host = rest.split('/').next().unwrap_or_default();
    let ok = !host.is_empty()
        && !trimmed.contains(['?', '#', ' ', '@'])
        && trimmed.parse::<actix_web::http::Uri>().is_ok();
    if ok {
        Ok(trimmed.to_string())
    } else {
        Err(bad())
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
        assert_eq!(cfg.signing_alg, SigningAlg::Rs256);
    }

    #[test]
    fn signing_alg_from_file_and_flag() {
        let file: FileConfig = toml::from_str("signing_alg = \"ES256\"").expect("toml");
        let cfg = ServeConfig::resolve(ServeFlags::default(), &file).expect("resolve");
        assert_eq!(cfg.signing_alg, SigningAlg::Es256);
        let flags = ServeFlags {
            signing_alg: Some(SigningAlg::Rs256),
            ..Default::default()
        };
        let cfg = ServeConfig::resolve(flags, &file).expect("resolve");
        assert_eq!(cfg.signing_alg, SigningAlg::Rs256);
        assert!(toml::from_str::<FileConfig>("signing_alg = \"HS256\"").is_err());
    }

    #[test]
    fn rsa_kernel_is_measured_unless_set() {
        let cfg =
            ServeConfig::resolve(ServeFlags::default(), &FileConfig::default()).expect("resolve");
        assert_eq!(cfg.rsa_kernel, RsaKernel::Auto);
        let file: FileConfig = toml::from_str("rsa_kernel = \"library\"").expect("toml");
        let cfg = ServeConfig::resolve(ServeFlags::default(), &file).expect("resolve");
        assert_eq!(cfg.rsa_kernel, RsaKernel::Library);
        let flags = ServeFlags {
            rsa_kernel: Some(RsaKernel::Avx2),
            ..Default::default()
        };
        let cfg = ServeConfig::resolve(flags, &file).expect("resolve");
        assert_eq!(cfg.rsa_kernel, RsaKernel::Avx2);
    }

    #[test]
    fn proxy_services_default_and_must_not_overlap() {
        let cfg =
            ServeConfig::resolve(ServeFlags::default(), &FileConfig::default()).expect("defaults");
        assert_eq!(cfg.proxy_services, vec![DEFAULT_PROXY_SERVICE]);
        assert_eq!(cfg.proxy_registry, None);

        let file: FileConfig = toml::from_str(
            "proxy_services = [\"dp\", \"dp2\"]\nproxy_registry = \"http://cache:5000/\"\npublic_url = \"https://auth.example.com\"",
        )
        .expect("toml");
        let cfg = ServeConfig::resolve(ServeFlags::default(), &file).expect("resolve");
        assert_eq!(cfg.proxy_services, vec!["dp", "dp2"]);
        assert_eq!(cfg.proxy_registry.as_deref(), Some("http://cache:5000"));
        assert_eq!(cfg.public_url.as_deref(), Some("https://auth.example.com"));

        let flags = ServeFlags {
            services: vec!["a".into(), "shared".into()],
            proxy_services: vec!["shared".into()],
            ..Default::default()
        };
        let err = ServeConfig::resolve(flags, &FileConfig::default()).expect_err("overlap");
        assert!(err.to_string().contains("shared"), "{err}");

        for bad in [
            "cache:5000",
            "ftp://cache",
            "http://",
            "http://a b",
            "http://u@h",
        ] {
            let flags = ServeFlags {
                proxy_registry: Some(bad.into()),
                ..Default::default()
            };
            assert!(
                ServeConfig::resolve(flags, &FileConfig::default()).is_err(),
                "{bad:?} accepted"
            );
        }
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
