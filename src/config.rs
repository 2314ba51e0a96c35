//! Settings, each declared once: a field of [`GlobalSettings`] (every command) or
//! [`ServeSettings`] (`serve`). Its doc comment is the `--help` text, its `#[arg]` the flag
//! and the `WVS_AUTH_*` variable, its name the key in the `--config` TOML file. Flags win
//! over environment variables (clap), which win over the file ([`SettingsFile::overlay`]),
//! which wins over the defaults [`ServeConfig::resolve`] applies beside its checks.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, CommandFactory};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::throttle::ThrottleConfig;
use crate::keys::rsa_kernel::RsaKernel;
use crate::keys::{SigningAlg, TokenHeader};
use crate::logging::LogFormat;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:5050";
pub const DEFAULT_ISSUER: &str = "wvs-auth";
pub const DEFAULT_SERVICE: &str = "container_registry";
pub const DEFAULT_PROXY_SERVICE: &str = "dependency_proxy";
pub const DEFAULT_TOKEN_TTL: i64 = 300;
/// Clients treat anything shorter as 60 s anyway (PROTOCOL-NOTES).
pub const MIN_TOKEN_TTL: i64 = 60;
pub const MAX_TOKEN_TTL: i64 = 86_400;
pub const DEFAULT_USAGE_FLUSH_MS: u64 = 5_000;
pub const DEFAULT_MAX_PACKAGE_SIZE: u64 = 1 << 30;

/// A setting that cannot be used; one line for the CLI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Settings of every command.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
pub struct GlobalSettings {
    /// Where the SQLite database (by default) and the git repositories live [default: ./data]
    #[arg(long, global = true, env = "WVS_AUTH_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where signing keys live [default: ./keys]
    #[arg(long, global = true, env = "WVS_AUTH_KEYS_DIR", value_name = "DIR")]
    pub keys_dir: Option<PathBuf>,
    /// The database: sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB
    /// [default: sqlite://<data-dir>/wvs.db]
    #[arg(long, global = true, env = "WVS_AUTH_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,
    /// Database connections per process; also how many storage calls `serve` runs at once
    /// [default: 2 × workers + 3 for serve, 4 for other commands]. With PostgreSQL, keep
    /// instances × this below the server's max_connections
    #[arg(long, global = true, env = "WVS_AUTH_DATABASE_POOL", value_name = "N",
          value_parser = clap::value_parser!(u32).range(2..=1000))]
    pub database_pool: Option<u32>,
}

/// Settings of `serve`.
#[derive(Debug, Default, Clone, Args, Serialize, Deserialize)]
pub struct ServeSettings {
    /// Address to listen on [default: 127.0.0.1:5050]
    #[arg(long, env = "WVS_AUTH_LISTEN")]
    pub listen: Option<String>,
    /// `iss` of issued tokens; the registry's `auth.token.issuer` [default: wvs-auth]
    #[arg(long, env = "WVS_AUTH_ISSUER")]
    pub issuer: Option<String>,
    /// Registry service name accepted as `service=` (repeatable) [default: container_registry]
    #[arg(long = "service", env = "WVS_AUTH_SERVICE", value_delimiter = ',')]
    #[serde(default)]
    pub services: Vec<String>,
    /// Dependency Proxy service name accepted as `service=` (repeatable); the first one is
    /// what the GitLab-style `/v2/` paths challenge with [default: dependency_proxy]
    #[arg(
        long = "proxy-service",
        env = "WVS_AUTH_PROXY_SERVICE",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub proxy_services: Vec<String>,
    /// URL of the pull-through cache (Dependency Proxy); wvs-auth then answers
    /// GROUP/dependency_proxy/containers/IMAGE under /v2/ and forwards to it
    #[arg(long, env = "WVS_AUTH_PROXY_REGISTRY", value_name = "URL")]
    pub proxy_registry: Option<String>,
    /// URL clients reach wvs-auth at, for the realm of /v2/ challenges
    /// [default: from the request's Host and scheme]
    #[arg(long, env = "WVS_AUTH_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
    /// Lifetime of issued tokens in seconds, 60..=86400 [default: 300]
    #[arg(long, env = "WVS_AUTH_TOKEN_TTL")]
    pub token_ttl: Option<i64>,
    /// HTTP worker threads [default: number of CPUs]
    #[arg(long, env = "WVS_AUTH_WORKERS")]
    pub workers: Option<usize>,
    /// Failed authentications from one IP or for one username before a ban [default: 30]
    #[arg(long, env = "WVS_AUTH_THROTTLE_FAILURES")]
    pub throttle_failures: Option<u32>,
    /// Window in which failures are counted, seconds [default: 60]
    #[arg(long = "throttle-window", env = "WVS_AUTH_THROTTLE_WINDOW")]
    pub throttle_window_secs: Option<u64>,
    /// Length of a ban, seconds [default: 600]
    #[arg(long = "throttle-ban", env = "WVS_AUTH_THROTTLE_BAN")]
    pub throttle_ban_secs: Option<u64>,
    /// Reverse proxy (IP or CIDR, repeatable) whose X-Forwarded-For names the client
    #[arg(
        long = "trusted-proxy",
        env = "WVS_AUTH_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Algorithm of the signing key created on first start when there is none: RS256 or
    /// ES256. An existing active key of another algorithm is kept (with a warning); change
    /// it with `keys rotate --alg` and `keys activate` [default: RS256]
    #[arg(long, env = "WVS_AUTH_SIGNING_ALG", value_enum, ignore_case = true)]
    pub signing_alg: Option<SigningAlg>,
    /// Kernel aws-lc signs RSA with: auto (time both at start, use the faster), library
    /// (aws-lc's own choice) or avx2 [default: auto]
    #[arg(long, env = "WVS_AUTH_RSA_KERNEL", value_enum, ignore_case = true)]
    pub rsa_kernel: Option<RsaKernel>,
    /// What tokens carry in their header besides alg, typ and kid: x5c (the signing
    /// certificate; distribution 2.8, and 3.x with rootcertbundle) or kid (nothing more;
    /// distribution 3.x configured with jwks only, which refuses x5c tokens) [default: x5c]
    #[arg(long, env = "WVS_AUTH_TOKEN_HEADER", value_enum, ignore_case = true)]
    pub token_header: Option<TokenHeader>,
    /// How often tokens' last_used_at (and first-use audit events) are written,
    /// milliseconds, 10..=600000 [default: 5000]
    #[arg(long, env = "WVS_AUTH_USAGE_FLUSH_MS")]
    pub usage_flush_ms: Option<u64>,
    /// Largest package file accepted, in bytes or with a unit (KiB, MiB, GiB, KB, MB, GB);
    /// larger uploads get 413 [default: 1GiB]
    #[arg(long, env = "WVS_AUTH_MAX_PACKAGE_SIZE", value_name = "SIZE")]
    pub max_package_size: Option<String>,
    /// `git http-backend` processes that may run at once; more requests wait up to 10 s,
    /// then get 503 with Retry-After [default: 16]
    #[arg(long, env = "WVS_AUTH_MAX_GIT_PROCESSES")]
    pub max_git_processes: Option<usize>,
    /// Seconds a request body may go without a byte before the request is dropped
    /// [default: 30]
    #[arg(long, env = "WVS_AUTH_BODY_IDLE_TIMEOUT", value_name = "SECS")]
    pub body_idle_timeout: Option<u64>,
    /// Requests one client address (an IPv6 /64) may have in flight at once; more get 429
    /// with Retry-After [default: 128]
    #[arg(long, env = "WVS_AUTH_MAX_REQUESTS_PER_CLIENT")]
    pub max_requests_per_client: Option<usize>,
    /// Delete audit events older than this many days (checked hourly); 0 or unset keeps
    /// them all
    #[arg(long, env = "WVS_AUTH_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<u32>,
    /// PEM certificate chain (leaf first) to serve HTTPS with, h2 and HTTP/1.1; needs
    /// --tls-key. Both files are read again when they change (certbot, cert-manager)
    #[arg(long, env = "WVS_AUTH_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert
    #[arg(long, env = "WVS_AUTH_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Log lines as text or as one JSON object per line [default: text]
    #[arg(long, env = "WVS_AUTH_LOG_FORMAT", value_enum, ignore_case = true)]
    pub log_format: Option<LogFormat>,
}

/// The `--config` TOML file: any setting of [`GlobalSettings`] or [`ServeSettings`] by its
/// field name. An unknown key is an error, so a typo never falls back to a default.
#[derive(Debug, Default)]
pub struct SettingsFile {
    shown: String,
    table: toml::Table,
}

/// Both settings structs, only for their key names (clap knows the fields).
#[derive(clap::Parser)]
struct AllSettings {
    #[command(flatten)]
    global: GlobalSettings,
    #[command(flatten)]
    serve: ServeSettings,
}

impl SettingsFile {
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&path.display().to_string(), &text)
    }

    /// `text` as the file `shown` (for messages).
    pub fn parse(shown: &str, text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError(format!("{shown}: {}", e.message())))?;
        let command = AllSettings::command();
        let known: Vec<&str> = command
            .get_arguments()
            .map(|a| a.get_id().as_str())
            .collect();
        if let Some(unknown) = table.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(ConfigError(format!("{shown}: unknown setting `{unknown}`")));
        }
        Ok(Self {
            shown: shown.to_string(),
            table,
        })
    }

    /// `flags` (what clap read from flags and the environment) over this file: every value
    /// the flags leave unset (`None`, or an empty list) comes from the file.
    pub fn overlay<T: Serialize + DeserializeOwned>(&self, flags: &T) -> Result<T, ConfigError> {
        let bad = |e: &dyn std::fmt::Display| ConfigError(format!("{}: {e}", self.shown));
        let from_file: T = toml::Value::Table(self.table.clone())
            .try_into()
            .map_err(|e| bad(&e))?;
        let mut merged = serde_json::to_value(&from_file).map_err(|e| bad(&e))?;
        let given = serde_json::to_value(flags).map_err(|e| bad(&e))?;
        if let (Some(merged), Some(given)) = (merged.as_object_mut(), given.as_object()) {
            for (key, value) in given {
                let unset = value.is_null() || value.as_array().is_some_and(Vec::is_empty);
                if !unset {
                    merged.insert(key.clone(), value.clone());
                }
            }
        }
        serde_json::from_value(merged).map_err(|e| bad(&e))
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
    /// The header of every token this server signs (`keys::TokenHeader` says which
    /// registries accept which, and why LFS links and proxy tokens follow it too).
    pub token_header: TokenHeader,
    /// How often usage is written to the database.
    pub usage_flush_ms: u64,
    /// Largest package file, bytes.
    pub max_package_size: u64,
    pub max_git_processes: usize,
    pub body_idle_timeout: std::time::Duration,
    pub max_requests_per_client: usize,
    /// Audit events older than this are deleted; `None` keeps them.
    pub audit_retention: Option<chrono::Duration>,
    /// HTTPS instead of plain HTTP on `listen`.
    pub tls: Option<TlsFiles>,
    pub log_format: LogFormat,
}

/// The certificate chain and key `serve` speaks TLS with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ServeConfig {
    /// Defaults and checks over the merged settings.
    pub fn resolve(s: ServeSettings) -> Result<Self, ConfigError> {
        let token_ttl = s.token_ttl.unwrap_or(DEFAULT_TOKEN_TTL);
        if !(MIN_TOKEN_TTL..=MAX_TOKEN_TTL).contains(&token_ttl) {
            return Err(ConfigError(format!(
                "token TTL {token_ttl} must be between {MIN_TOKEN_TTL} and {MAX_TOKEN_TTL} seconds"
            )));
        }
        let services = if s.services.is_empty() {
            vec![DEFAULT_SERVICE.to_string()]
        } else {
            s.services
        };
        let proxy_services = if s.proxy_services.is_empty() {
            vec![DEFAULT_PROXY_SERVICE.to_string()]
        } else {
            s.proxy_services
        };
        if services.iter().chain(&proxy_services).any(|s| s.is_empty()) {
            return Err(ConfigError("service names must not be empty".into()));
        }
        // One name, one meaning: /jwt/auth dispatches on it, and a registry token must
        // never be mistaken for a proxy token or the other way round.
        if let Some(both) = services.iter().find(|s| proxy_services.contains(s)) {
            return Err(ConfigError(format!(
                "service {both:?} is configured both as a registry service and as a dependency proxy service"
            )));
        }
        let proxy_registry = s
            .proxy_registry
            .map(|u| base_url(&u, "--proxy-registry"))
            .transpose()?;
        let public_url = s
            .public_url
            .map(|u| base_url(&u, "--public-url"))
            .transpose()?;
        let defaults = ThrottleConfig::default();
        let throttle = ThrottleConfig {
            max_failures: s.throttle_failures.unwrap_or(defaults.max_failures).max(1),
            window: s
                .throttle_window_secs
                .map(Duration::from_secs)
                .unwrap_or(defaults.window),
            ban: s
                .throttle_ban_secs
                .map(Duration::from_secs)
                .unwrap_or(defaults.ban),
        };
        check_range("throttle window", throttle.window.as_secs(), 1, 3_600)?;
        check_range("throttle ban", throttle.ban.as_secs(), 1, 86_400)?;
        let trusted_proxies = s
            .trusted_proxies
            .iter()
            .map(|raw| parse_net(raw))
            .collect::<Result<Vec<_>, _>>()?;
        let workers = s
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
            .max(1);
        let usage_flush_ms = s.usage_flush_ms.unwrap_or(DEFAULT_USAGE_FLUSH_MS);
        if !(10..=600_000).contains(&usage_flush_ms) {
            return Err(ConfigError(format!(
                "usage flush interval {usage_flush_ms} ms must be between 10 and 600000"
            )));
        }
        let tls = match (s.tls_cert, s.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(ConfigError(
                    "--tls-cert and --tls-key go together: give both or neither".into(),
                ))
            }
        };
        Ok(Self {
            listen: s.listen.unwrap_or_else(|| DEFAULT_LISTEN.into()),
            issuer: s.issuer.unwrap_or_else(|| DEFAULT_ISSUER.into()),
            services,
            proxy_services,
            proxy_registry,
            public_url,
            token_ttl,
            workers,
            throttle,
            trusted_proxies,
            signing_alg: s.signing_alg.unwrap_or_default(),
            rsa_kernel: s.rsa_kernel.unwrap_or_default(),
            token_header: s.token_header.unwrap_or_default(),
            usage_flush_ms,
            max_package_size: s
                .max_package_size
                .as_deref()
                .map(parse_size)
                .transpose()?
                .unwrap_or(DEFAULT_MAX_PACKAGE_SIZE),
            max_git_processes: s.max_git_processes.unwrap_or(16).max(1),
            body_idle_timeout: std::time::Duration::from_secs(
                s.body_idle_timeout.unwrap_or(30).clamp(1, 3600),
            ),
            max_requests_per_client: s.max_requests_per_client.unwrap_or(128).max(1),
            audit_retention: s
                .audit_retention_days
                .filter(|d| *d > 0)
                .map(|d| chrono::Duration::days(i64::from(d))),
            tls,
            log_format: s.log_format.unwrap_or_default(),
        })
    }
}

/// `1GiB`, `512MiB`, `10MB`, `4096`: a size in bytes, at least 1.
pub fn parse_size(raw: &str) -> Result<u64, ConfigError> {
    let bad = || {
        ConfigError(format!(
            "size {raw:?} must be a number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB"
        ))
    };
    let trimmed = raw.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" | "k" => 1 << 10,
        "mib" | "m" => 1 << 20,
        "gib" | "g" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).filter(|b| *b > 0).ok_or_else(bad)
}

/// A trusted proxy: an address (`10.0.0.5`) or a network (`10.0.0.0/8`).
fn parse_net(raw: &str) -> Result<ipnet::IpNet, ConfigError> {
    raw.parse::<ipnet::IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            ConfigError(format!(
                "trusted proxy {raw:?} is not an IP address or CIDR network"
            ))
        })
}

/// Out-of-range throttle settings would disable throttling (a zero window) or overflow
/// `Instant` arithmetic (a huge ban), so they are refused at start.
fn check_range(what: &str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError(format!(
            "{what} {value}s must be between {min} and {max} seconds"
        )))
    }
}

/// An `http(s)://host[:port][/prefix]` base URL without trailing slash, or a config error.
/// Checked at start-up so a typo fails `serve` rather than every pull.
fn base_url(raw: &str, what: &str) -> Result<String, ConfigError> {
    let bad = || ConfigError(format!("{what} {raw:?} must be an http:// or https:// URL"));
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

    fn file(text: &str) -> SettingsFile {
        SettingsFile::parse("test.toml", text).expect("toml")
    }

    fn resolve(flags: ServeSettings, file: &SettingsFile) -> Result<ServeConfig, ConfigError> {
        ServeConfig::resolve(file.overlay(&flags)?)
    }

    #[test]
    fn flags_win_over_file_over_defaults() {
        let file = file("issuer = \"from-file\"\ntoken_ttl = 120\nservices = [\"a\", \"b\"]");
        let flags = ServeSettings {
            issuer: Some("from-flag".into()),
            ..Default::default()
        };
        let cfg = resolve(flags, &file).expect("resolve");
        assert_eq!(cfg.issuer, "from-flag");
        assert_eq!(cfg.token_ttl, 120);
        assert_eq!(cfg.services, vec!["a", "b"]);
        assert_eq!(cfg.listen, DEFAULT_LISTEN);
        assert_eq!(cfg.signing_alg, SigningAlg::Rs256);
        assert_eq!(cfg.usage_flush_ms, DEFAULT_USAGE_FLUSH_MS);
        let flags = ServeSettings {
            services: vec!["c".into()],
            ..Default::default()
        };
        assert_eq!(resolve(flags, &file).expect("resolve").services, vec!["c"]);
    }

    #[test]
    fn tls_files_go_together_and_log_format_reads_from_the_file() {
        let file = file("tls_cert = \"/etc/wvs/cert.pem\"\nlog_format = \"json\"");
        let half = resolve(ServeSettings::default(), &file).expect_err("cert without key");
        assert!(half.0.contains("--tls-cert and --tls-key"), "{half}");
        let flags = ServeSettings {
            tls_key: Some("/etc/wvs/key.pem".into()),
            ..Default::default()
        };
        let cfg = resolve(flags, &file).expect("resolve");
        assert_eq!(
            cfg.tls,
            Some(TlsFiles {
                cert: "/etc/wvs/cert.pem".into(),
                key: "/etc/wvs/key.pem".into(),
            })
        );
        assert_eq!(cfg.log_format, LogFormat::Json);
        let plain = resolve(ServeSettings::default(), &SettingsFile::default()).expect("resolve");
        assert_eq!((plain.tls, plain.log_format), (None, LogFormat::Text));
    }

    #[test]
    fn global_settings_come_from_the_same_file() {
        let file = file("data_dir = \"/srv/wvs\"\ndatabase_url = \"sqlite:///srv/wvs/x.db\"\nlisten = \"0.0.0.0:1\"");
        let global = file.overlay(&GlobalSettings::default()).expect("global");
        assert_eq!(global.data_dir, Some(PathBuf::from("/srv/wvs")));
        assert_eq!(
            global.database_url.as_deref(),
            Some("sqlite:///srv/wvs/x.db")
        );
        let flags = GlobalSettings {
            data_dir: Some("/elsewhere".into()),
            ..Default::default()
        };
        let global = file.overlay(&flags).expect("global");
        assert_eq!(global.data_dir, Some(PathBuf::from("/elsewhere")));
    }

    #[test]
    fn signing_alg_from_file_and_flag() {
        let file = file("signing_alg = \"ES256\"");
        let cfg = resolve(ServeSettings::default(), &file).expect("resolve");
        assert_eq!(cfg.signing_alg, SigningAlg::Es256);
        let flags = ServeSettings {
            signing_alg: Some(SigningAlg::Rs256),
            ..Default::default()
        };
        let cfg = resolve(flags, &file).expect("resolve");
        assert_eq!(cfg.signing_alg, SigningAlg::Rs256);
        let bad = SettingsFile::parse("t", "signing_alg = \"HS256\"").expect("parses");
        assert!(bad.overlay(&ServeSettings::default()).is_err());
    }

    #[test]
    fn rsa_kernel_is_measured_unless_set() {
        let cfg = resolve(ServeSettings::default(), &SettingsFile::default()).expect("resolve");
        assert_eq!(cfg.rsa_kernel, RsaKernel::Auto);
        let file = file("rsa_kernel = \"library\"");
        let cfg = resolve(ServeSettings::default(), &file).expect("resolve");
        assert_eq!(cfg.rsa_kernel, RsaKernel::Library);
        let flags = ServeSettings {
            rsa_kernel: Some(RsaKernel::Avx2),
            ..Default::default()
        };
        let cfg = resolve(flags, &file).expect("resolve");
        assert_eq!(cfg.rsa_kernel, RsaKernel::Avx2);
    }

    #[test]
    fn token_header_is_x5c_unless_set() {
        let cfg = resolve(ServeSettings::default(), &SettingsFile::default()).expect("resolve");
        assert_eq!(cfg.token_header, TokenHeader::X5c);
        let file = file("token_header = \"kid\"");
        let cfg = resolve(ServeSettings::default(), &file).expect("resolve");
        assert_eq!(cfg.token_header, TokenHeader::Kid);
        let flags = ServeSettings {
            token_header: Some(TokenHeader::X5c),
            ..Default::default()
        };
        assert_eq!(
            resolve(flags, &file).expect("resolve").token_header,
            TokenHeader::X5c,
            "the flag wins over the file"
        );
        let bad = SettingsFile::parse("t", "token_header = \"jwk\"").expect("parses");
        assert!(bad.overlay(&ServeSettings::default()).is_err());
    }

    #[test]
    fn proxy_services_default_and_must_not_overlap() {
        let cfg = resolve(ServeSettings::default(), &SettingsFile::default()).expect("defaults");
        assert_eq!(cfg.proxy_services, vec![DEFAULT_PROXY_SERVICE]);
        assert_eq!(cfg.proxy_registry, None);

        let file = file(
            "proxy_services = [\"dp\", \"dp2\"]\nproxy_registry = \"http://cache:5000/\"\npublic_url = \"https://auth.example.com\"",
        );
        let cfg = resolve(ServeSettings::default(), &file).expect("resolve");
        assert_eq!(cfg.proxy_services, vec!["dp", "dp2"]);
        assert_eq!(cfg.proxy_registry.as_deref(), Some("http://cache:5000"));
        assert_eq!(cfg.public_url.as_deref(), Some("https://auth.example.com"));

        let flags = ServeSettings {
            services: vec!["a".into(), "shared".into()],
            proxy_services: vec!["shared".into()],
            ..Default::default()
        };
        let err = resolve(flags, &SettingsFile::default()).expect_err("overlap");
        assert!(err.to_string().contains("shared"), "{err}");

        for bad in [
            "cache:5000",
            "ftp://cache",
            "http://",
            "http://a b",
            "http://u@h",
        ] {
            let flags = ServeSettings {
                proxy_registry: Some(bad.into()),
                ..Default::default()
            };
            assert!(
                resolve(flags, &SettingsFile::default()).is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn rejects_short_ttl_and_unknown_keys() {
        let flags = ServeSettings {
            token_ttl: Some(5),
            ..Default::default()
        };
        assert!(resolve(flags, &SettingsFile::default()).is_err());
        let typo = SettingsFile::parse("t.toml", "isuer = \"typo\"").expect_err("unknown key");
        assert!(typo.to_string().contains("isuer"), "{typo}");
        let flags = ServeSettings {
            throttle_window_secs: Some(0),
            ..Default::default()
        };
        assert!(resolve(flags, &SettingsFile::default()).is_err());
        let flags = ServeSettings {
            throttle_ban_secs: Some(u64::MAX),
            ..Default::default()
        };
        assert!(resolve(flags, &SettingsFile::default()).is_err());
        let flags = ServeSettings {
            usage_flush_ms: Some(0),
            ..Default::default()
        };
        assert!(resolve(flags, &SettingsFile::default()).is_err());
    }

    #[test]
    fn sizes_with_units() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512 MiB"), Ok(512 << 20));
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        for bad in ["", "0", "GiB", "1TiB", "-1", "99999999999999999999GiB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let cfg = resolve(ServeSettings::default(), &SettingsFile::default()).expect("ok");
        assert_eq!(cfg.max_package_size, DEFAULT_MAX_PACKAGE_SIZE);
    }

    #[test]
    fn every_setting_has_a_flag_and_an_environment_variable() {
        for arg in AllSettings::command().get_arguments() {
            let id = arg.get_id().as_str();
            assert!(arg.get_long().is_some(), "{id} has no flag");
            assert!(arg.get_env().is_some(), "{id} has no WVS_AUTH_ variable");
        }
    }
}
