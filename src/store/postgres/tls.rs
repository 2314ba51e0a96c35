//! TLS to PostgreSQL (rustls, on the aws-lc provider the HTTPS server uses), asked for in
//! the URL as libpq users write it: `?sslmode=require` (or `verify-ca`, `verify-full`) and,
//! for a private CA, `&sslrootcert=/path/ca.pem`.
//!
//! Why always verified: rustls has no "encrypt but trust anyone" mode, and a database that
//! holds every token digest deserves none. `require` here means libpq's `verify-full`: the
//! certificate chains to `sslrootcert` (or the system's CAs) and names the host. Without
//! `sslmode=require`, the connection is plain, as it was before, even to a server that
//! offers TLS (the driver's default, `prefer`, would otherwise fail on self-signed servers).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::DbError;

/// Where the system's CAs are on Debian (ca-certificates).
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The URL with our own options taken out, and what they asked for.
pub struct TlsChoice {
    /// The URL as the driver parses it.
    pub url: String,
    /// `Some`: TLS is required, verified against these roots (`None`: the system's).
    pub required: Option<Option<PathBuf>>,
}

/// Takes `sslrootcert` out of the query (the driver does not know it) and turns libpq's
/// `verify-ca` and `verify-full` into the driver's `require`.
pub fn choose(url: &str) -> TlsChoice {
    let Some((base, query)) = url.split_once('?') else {
        return TlsChoice {
            url: url.to_string(),
            required: None,
        };
    };
    let mut kept = Vec::new();
    let mut root = None;
    let mut require = false;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslrootcert" => {
                let decoded = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                root = Some(PathBuf::from(decoded.into_owned()));
            }
            "sslmode" if matches!(value, "require" | "verify-ca" | "verify-full") => {
                require = true;
                kept.push("sslmode=require".to_string());
            }
            _ => kept.push(pair.to_string()),
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    TlsChoice {
        url,
        required: require.then_some(root),
    }
}

/// The connector: verifying against `roots` (a PEM file) when TLS is required, unused
/// otherwise (the connection is then made with `sslmode=disable`).
pub fn connector(required: &Option<Option<PathBuf>>) -> Result<MakeRustlsConnect, DbError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    if let Some(file) = required {
        let path = file.clone().unwrap_or_else(|| PathBuf::from(SYSTEM_ROOTS));
        let shown = path.display().to_string();
        let certs = CertificateDer::pem_file_iter(&path)
            .map_err(|e| DbError::Tls(format!("cannot read sslrootcert {shown}: {e}")))?;
        for cert in certs {
            let cert = cert.map_err(|e| DbError::Tls(format!("sslrootcert {shown}: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| DbError::Tls(format!("sslrootcert {shown}: {e}")))?;
        }
        if roots.is_empty() {
            return Err(DbError::Tls(format!(
                "sslrootcert {shown} holds no certificate"
            )));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpq_options_are_understood() {
        let plain = choose("postgres://u@h/db");
        assert_eq!(plain.url, "postgres://u@h/db");
        assert!(plain.required.is_none());
        let tls = choose(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
        );
        assert_eq!(
            tls.url,
            "postgres://u@h/db?sslmode=require&connect_timeout=3"
        );
        assert_eq!(tls.required, Some(Some(PathBuf::from("/etc/ca.pem"))));
        let system = choose("postgres://u@h/db?sslmode=require");
        assert_eq!(system.required, Some(None));
        let prefer = choose("postgres://u@h/db?sslmode=prefer");
        assert!(prefer.required.is_none());
    }
}
