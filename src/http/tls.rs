//! HTTPS on the listener (`serve --tls-cert FILE --tls-key FILE`), with rustls.
//!
//! Certificates are renewed in place (certbot rewrites `live/…/fullchain.pem`, cert-manager
//! swaps the files of a mounted secret), and a restart to pick them up would drop every
//! clone and upload in flight. So the certificate is chosen per handshake by
//! [`CertificateFiles`], which looks at both files' modification time and size at most once a
//! second and swaps in the new pair once it loads and the key matches the certificate. A
//! half-written renewal (new certificate, old key) keeps the previous pair until the key
//! follows. Connections already open keep the certificate they were made with.
//!
//! ALPN offers h2 and HTTP/1.1 (actix adds both). A client that speaks plain HTTP to the TLS
//! port gets no HTTP answer: the handshake fails and the connection is closed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::TlsFiles;
use crate::poll::Interval;

/// How often the files are looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// TLS 1.2 sessions remembered by id, for clients that resume without a ticket. TLS 1.3
/// sessions never land here: they resume from stateless tickets (see
/// [`CertificateFiles::server_config`]). Full, the store is about 6 MB of RSS.
const SESSION_CACHE_ENTRIES: usize = 16_384;

/// Why a certificate and key cannot be served; one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", path.display())]
    NoKey { path: PathBuf },
    #[error("{}: {source}", key.display())]
    Key { key: PathBuf, source: rustls::Error },
    #[error("cannot set up TLS: {0}")]
    Setup(rustls::Error),
}

/// Modification time and length of both files: what changes when either is rewritten.
type Stamp = Option<[(SystemTime, u64); 2]>;

fn stamp(files: &TlsFiles) -> Stamp {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| Ok((m.modified()?, m.len())))
            .ok()
    };
    Some([one(&files.cert)?, one(&files.key)?])
}

/// The certificate served, following its files.
pub struct CertificateFiles {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    loaded: ArcSwap<CertifiedKey>,
    /// The stamp of the files as last looked at, loaded or not: a pair that failed to load
    /// is tried again (and logged) only when a file changes again.
    seen: Mutex<Stamp>,
    check: Interval,
}

impl std::fmt::Debug for CertificateFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateFiles")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl CertificateFiles {
    /// Loads the pair now: a bad certificate or key fails `serve` at start.
    pub fn open(files: TlsFiles) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let seen = stamp(&files);
        let loaded = load(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            loaded: ArcSwap::from_pointee(loaded),
            seen: Mutex::new(seen),
            check: Interval::new(CHECK_EVERY),
        })
    }

    /// The rustls configuration of the listener, choosing the certificate through `self`.
    pub fn server_config(self: &Arc<Self>) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        // Resumption skips the certificate signature (with RSA-2048 the dearest part of a
        // handshake). Sessions resume from stateless tickets: the session sealed with a key
        // only this process holds (AES-256-CBC and HMAC-SHA256, a new key every 6 hours),
        // opened without a lookup and costing no memory per client. rustls' stateful store
        // instead finds a TLS 1.3 ticket by a linear search of every id it holds (its
        // `take`), under one lock: once full (16,384), that search (memcmp) was 31 % of the
        // server's CPU in a profile of resumed handshakes. And docker, which never resumes,
        // still gets two tickets per pull, so the store kept a session that would be resumed
        // for 8,192 pulls at most. bench/README.md ("HTTPS token benchmark") has the figures.
        config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(TlsError::Setup)?;
        config.session_storage =
            rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES);
        Ok(config)
    }

    fn refresh_if_due(&self) {
        if !self.check.due() {
            return;
        }
        let current = stamp(&self.files);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if *seen == current {
                return;
            }
            *seen = current;
        }
        match load(&self.files, &self.provider) {
            Ok(fresh) => {
                log::info!(
                    "TLS certificate reloaded from {}",
                    self.files.cert.display()
                );
                self.loaded.store(Arc::new(fresh));
            }
            Err(e) => {
                // Most likely a renewal between its two writes; the next change retries.
                log::warn!("TLS certificate not reloaded, keeping the previous one: {e}");
            }
        }
    }
}

impl ResolvesServerCert for CertificateFiles {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh_if_due();
        Some(self.loaded.load_full())
    }
}

fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(&files.cert)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    }
    let key_pem = read(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::NoKey {
        path: files.key.clone(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Key {
        key: files.key.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::client::ClientConfig;
    use rustls::pki_types::ServerName;
    use rustls::server::StoresServerSessions;
    use rustls::{ClientConnection, ConnectionCommon, HandshakeKind, ServerConnection};
    use std::ops::DerefMut;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn pair(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    fn files(dir: &Path) -> TlsFiles {
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    /// A new pair for `name`, written to the two files in `dir`; the files and the certificate.
    fn written_pair(dir: &Path, name: &str) -> (TlsFiles, String) {
        let f = files(dir);
        let (cert, key) = pair(name);
        std::fs::write(&f.cert, &cert).expect("write");
        std::fs::write(&f.key, &key).expect("write");
        (f, cert)
    }

    fn served(certs: &Arc<CertificateFiles>) -> Vec<u8> {
        certs.refresh_if_due();
        certs.loaded.load().cert[0].to_vec()
    }

    #[test]
    fn bad_pairs_are_refused_at_start_with_the_file_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = files(dir.path());
        assert!(matches!(
            CertificateFiles::open(f.clone()),
            Err(TlsError::Read { .. })
        ));
        let (cert, key) = pair("a.test");
        let (_, other_key) = pair("b.test");
        std::fs::write(&f.cert, "not pem").expect("write");
        std::fs::write(&f.key, &key).expect("write");
        assert!(matches!(
            CertificateFiles::open(f.clone()),
            Err(TlsError::NoCertificate { .. })
        ));
        std::fs::write(&f.cert, &cert).expect("write");
        std::fs::write(&f.key, &cert).expect("write");
        assert!(matches!(
            CertificateFiles::open(f.clone()),
            Err(TlsError::NoKey { .. })
        ));
        std::fs::write(&f.key, &other_key).expect("write");
        let mismatch = CertificateFiles::open(f.clone()).expect_err("mismatch");
        assert!(matches!(mismatch, TlsError::Key { .. }), "{mismatch}");
        std::fs::write(&f.key, &key).expect("write");
        CertificateFiles::open(f).expect("a matching pair");
    }

    /// The server's session store, counting what reaches it.
    #[derive(Debug)]
    struct CountingStore {
        inner: Arc<dyn StoresServerSessions>,
        puts: AtomicUsize,
        takes: AtomicUsize,
    }

    impl StoresServerSessions for CountingStore {
        fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
            self.puts.fetch_add(1, Ordering::Relaxed);
            self.inner.put(key, value)
        }
        fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.inner.get(key)
        }
        fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
            self.takes.fetch_add(1, Ordering::Relaxed);
            self.inner.take(key)
        }
        fn can_cache(&self) -> bool {
            self.inner.can_cache()
        }
    }

    /// One connection in memory, until neither side has anything left to send (TLS 1.3
    /// tickets follow the handshake): was it a full handshake or a resumed one?
    fn connect(client: &Arc<ClientConfig>, server: &Arc<rustls::ServerConfig>) -> HandshakeKind {
        let name = ServerName::try_from("a.test").expect("name");
        let mut client = ClientConnection::new(client.clone(), name).expect("client");
        let mut server = ServerConnection::new(server.clone()).expect("server");
        fn pass(
            from: &mut impl DerefMut<Target = ConnectionCommon<impl Sized>>,
            to: &mut impl DerefMut<Target = ConnectionCommon<impl Sized>>,
        ) -> bool {
            let mut bytes = Vec::new();
            while from.wants_write() {
                from.write_tls(&mut bytes).expect("write_tls");
            }
            let mut rest = &bytes[..];
            while !rest.is_empty() {
                to.read_tls(&mut rest).expect("read_tls");
                to.process_new_packets().expect("TLS");
            }
            !bytes.is_empty()
        }
        // `|`, not `||`: both directions on every turn.
        while pass(&mut client, &mut server) | pass(&mut server, &mut client) {}
        assert!(!client.is_handshaking() && !server.is_handshaking());
        server.handshake_kind().expect("handshake kind")
    }

    #[test]
    fn sessions_resume_from_tickets_and_tls13_leaves_the_store_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (f, cert) = written_pair(dir.path(), "a.test");
        let certs = Arc::new(CertificateFiles::open(f).expect("open"));
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(cert.as_bytes()).expect("PEM"))
            .expect("root");
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let mut server = certs.server_config().expect("config");
            assert!(server.ticketer.enabled(), "stateless tickets");
            let store = Arc::new(CountingStore {
                inner: server.session_storage.clone(),
                puts: AtomicUsize::new(0),
                takes: AtomicUsize::new(0),
            });
            server.session_storage = store.clone();
            let server = Arc::new(server);
            let client = Arc::new(
                ClientConfig::builder_with_provider(certs.provider.clone())
                    .with_protocol_versions(&[version])
                    .expect("version")
                    .with_root_certificates(roots.clone())
                    .with_no_client_auth(),
            );
            assert_eq!(
                connect(&client, &server),
                HandshakeKind::Full,
                "{version:?}"
            );
            for _ in 0..3 {
                assert_eq!(
                    connect(&client, &server),
                    HandshakeKind::Resumed,
                    "{version:?}"
                );
            }
            if version == &rustls::version::TLS13 {
                assert_eq!(store.puts.load(Ordering::Relaxed), 0);
                assert_eq!(store.takes.load(Ordering::Relaxed), 0);
            }
        }
    }

    #[test]
    fn a_renewal_is_served_once_both_files_match() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (f, _) = written_pair(dir.path(), "a.test");
        let certs = Arc::new(CertificateFiles::open(f.clone()).expect("open"));
        let first = served(&certs);

        // The renewal's first write: a new certificate, the old key. Not served.
        let (cert2, key2) = pair("a.test");
        std::fs::write(&f.cert, &cert2).expect("write");
        certs.check.make_due();
        assert_eq!(served(&certs), first);
        // Its second write: now the pair matches and is served.
        std::fs::write(&f.key, &key2).expect("write");
        certs.check.make_due();
        let second = served(&certs);
        assert_ne!(second, first);
        // Nothing changed: nothing reloaded, still the renewal.
        certs.check.make_due();
        assert_eq!(served(&certs), second);
    }
}
