//! `serve --tls-cert --tls-key` (SPEC §5): HTTPS with h2 and HTTP/1.1 by ALPN, plain HTTP
//! on the TLS port refused, a registry whose realm is `https://…` driven by skopeo and the
//! docker CLI, and a certificate renewed in place while connections stay open.
//!
//! The certificates come from a CA made here; clients trust it the way operators' clients
//! do (`SSL_CERT_FILE`, `--cacert`, a root store), never by skipping verification.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::tools::*;
use common::{env_with_projects, Env, Server};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A CA and the server certificates it issues, as PEM files in a temporary directory.
struct TestCa {
    dir: tempfile::TempDir,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wvs-auth test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).expect("CA certificate");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write CA");
        Self {
            dir,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// (Re)issues the server certificate for 127.0.0.1 and localhost with a new key,
    /// writing the certificate first and the key second, as a renewal does.
    fn issue_server(&self) {
        let key = rcgen::KeyPair::generate().expect("server key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wvs-auth test server");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("server certificate");
        std::fs::write(self.cert(), cert.pem()).expect("write certificate");
        std::fs::write(self.key(), key.serialize_pem()).expect("write key");
    }
}

/// `serve` over HTTPS with `ca`'s server certificate, once `/-/health` answers through it.
fn serve_tls(env: &Env, ca: &TestCa, extra: &[&str]) -> Server {
    let cert = ca.cert().display().to_string();
    let key = ca.key().display().to_string();
    let mut args = vec!["--tls-cert", cert.as_str(), "--tls-key", key.as_str()];
    args.extend_from_slice(extra);
    let mut server = env.spawn_serve(&[], &args);
    server.url = format!("https://127.0.0.1:{}", server.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while curl(ca, &["-f", &format!("{}/-/health", server.url)]).0 != 0 {
        if Instant::now() > deadline || server.child.try_wait().expect("try_wait").is_some() {
            panic!(
                "wvs-auth did not come up over HTTPS:\n{}",
                server_log(env, &server)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

fn server_log(env: &Env, server: &Server) -> String {
    std::fs::read_to_string(env.path(&format!("serve-{}.log", server.port))).unwrap_or_default()
}

/// curl trusting `ca`: (exit code, stdout).
fn curl(ca: &TestCa, args: &[&str]) -> (i32, String) {
    let out = bounded("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(ca.ca())
        .args(args)
        .output()
        .expect("run curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A rustls client trusting only `ca`, offering `alpn`.
fn client_config(ca: &Path, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("read CA") {
        roots.add(cert.expect("CA PEM")).expect("add CA");
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

type TlsStream = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn connect(port: u16, config: Arc<rustls::ClientConfig>) -> TlsStream {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let conn = rustls::ClientConnection::new(config, name).expect("client connection");
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    stream
}

/// The leaf certificate the server presented on `stream`.
fn leaf(stream: &TlsStream) -> Vec<u8> {
    stream.conn.peer_certificates().expect("peer certificates")[0].to_vec()
}

/// One keep-alive `GET /-/health` on an HTTP/1.1 connection; its answer's head and body.
fn health_over(stream: &mut TlsStream) -> String {
    stream
        .write_all(b"GET /-/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write request");
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("\"ok\"}") {
        let n = stream.read(&mut chunk).expect("read answer");
        assert!(n > 0, "connection closed after {answer:?}");
        answer.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn https_speaks_h2_and_http1_and_refuses_plain_http() {
    require_tools(&["curl"]);
    let env = env_with_projects();
    let t = env.token(&["--project", "acme/app"], "read_registry", &[]);
    let ca = TestCa::new();
    ca.issue_server();
    let server = serve_tls(&env, &ca, &[]);
    let health = format!("{}/-/health", server.url);
    let probe = ["-o", "/dev/null", "-w", "%{http_version} %{http_code}"];

    let (code, out) = curl(&ca, &[&["--http2"], &probe[..], &[&health]].concat());
    assert_eq!((code, out.as_str()), (0, "2 200"), "h2 by ALPN");
    let (code, out) = curl(&ca, &[&["--http1.1"], &probe[..], &[&health]].concat());
    assert_eq!((code, out.as_str()), (0, "1.1 200"), "HTTP/1.1 by ALPN");
    for (offered, chosen) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], b"h2".as_slice()),
        (&[b"http/1.1".as_slice()][..], b"http/1.1".as_slice()),
    ] {
        let stream = connect(server.port, client_config(&ca.ca(), offered));
        assert_eq!(stream.conn.alpn_protocol(), Some(chosen));
    }

    // A token over HTTPS, as a registry client fetches it.
    let url = format!(
        "{}/jwt/auth?service=container_registry&scope=repository:acme/app:pull",
        server.url
    );
    let userpass = format!("{}:{}", t.username, t.secret);
    let (code, out) = curl(&ca, &["-f", "-u", &userpass, &url]);
    assert_eq!(code, 0, "token over HTTPS: {out}");
    let body: serde_json::Value = serde_json::from_str(&out).expect("token JSON");
    assert!(body["token"].as_str().is_some_and(|t| t.len() > 100));

    // Not trusted without the CA: the certificate really is checked.
    let out = bounded("curl")
        .args(["-sS", "--max-time", "10", "-o", "/dev/null", &health])
        .output()
        .expect("curl");
    assert_eq!(out.status.code(), Some(60), "curl without the CA");

    // Plain HTTP on the TLS port: no HTTP answer, the connection is closed.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    plain
        .write_all(b"GET /-/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("write");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/"),
        "plain HTTP answered on the TLS port: {answer:?}"
    );
    // The server goes on serving HTTPS.
    assert_eq!(curl(&ca, &["-f", "-o", "/dev/null", &health]).0, 0);
}

#[test]
fn a_bad_certificate_or_key_fails_serve_with_one_line() {
    let env = Env::new();
    let ca = TestCa::new();
    ca.issue_server();
    let cert = ca.cert().display().to_string();
    let key = ca.key().display().to_string();
    let listen = format!("127.0.0.1:{}", common::free_port());
    for (args, expected) in [
        (
            vec!["--tls-cert", cert.as_str()],
            "--tls-cert and --tls-key",
        ),
        (
            vec!["--tls-cert", cert.as_str(), "--tls-key", cert.as_str()],
            "no PEM private key",
        ),
        (
            vec!["--tls-cert", key.as_str(), "--tls-key", key.as_str()],
            "no PEM certificate",
        ),
        (
            vec![
                "--tls-cert",
                "/nonexistent/cert.pem",
                "--tls-key",
                key.as_str(),
            ],
            "cannot read /nonexistent/cert.pem",
        ),
    ] {
        let out = env.cli(&[&["serve", "--listen", listen.as_str()], &args[..]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} served");
        let last = stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("error: ") && last.contains(expected),
            "{args:?}: {stderr}"
        );
    }
    // The key of another certificate.
    let other = TestCa::new();
    other.issue_server();
    let other_key = other.key().display().to_string();
    let out = env.cli(&[
        "serve",
        "--listen",
        &listen,
        "--tls-cert",
        &cert,
        "--tls-key",
        &other_key,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("error: "),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn renewed_certificate_is_served_without_dropping_connections() {
    let env = env_with_projects();
    let ca = TestCa::new();
    ca.issue_server();
    let server = serve_tls(&env, &ca, &[]);
    let config = client_config(&ca.ca(), &[b"http/1.1"]);

    let mut old = connect(server.port, config.clone());
    let before = leaf(&old);
    assert!(health_over(&mut old).starts_with("HTTP/1.1 200"));

    ca.issue_server();
    let deadline = Instant::now() + Duration::from_secs(10);
    let renewed = loop {
        let fresh = connect(server.port, config.clone());
        if leaf(&fresh) != before {
            break fresh;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate is not served after 10 s:\n{}",
            server_log(&env, &server)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut renewed = renewed;
    assert!(health_over(&mut renewed).starts_with("HTTP/1.1 200"));
    // The connection made before the renewal is still open and answers.
    assert!(health_over(&mut old).starts_with("HTTP/1.1 200"));
    assert_eq!(leaf(&old), before);
    assert!(server_log(&env, &server).contains("TLS certificate reloaded"));
}

/// Production's shape: the registry and its realm both on HTTPS under one CA.
#[test]
fn registry_with_an_https_realm_serves_skopeo_and_docker() {
    require_tools(REGISTRY_TOOLS);
    let env = env_with_projects();
    env.cli_ok(&["keys", "init"]);
    let t = env.token(
        &["--project", "acme/app"],
        "read_registry,write_registry",
        &[],
    );
    let ca = TestCa::new();
    ca.issue_server();
    let auth = serve_tls(&env, &ca, &[]);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/registry/config.yml");
    let mut overrides = trust(&env, &auth);
    assert!(overrides[0].1.starts_with("https://"), "{overrides:?}");
    overrides.push((
        "REGISTRY_HTTP_TLS_CERTIFICATE",
        ca.cert().display().to_string(),
    ));
    overrides.push(("REGISTRY_HTTP_TLS_KEY", ca.key().display().to_string()));
    let registry = RegistryProcess::start(&config, &overrides);
    let scratch = tempfile::tempdir().expect("tempdir");
    let ca_file = ca.ca().display().to_string();

    // skopeo verifies both servers; it trusts the test CA through SSL_CERT_FILE only.
    let image = oci_image(scratch.path(), "tls realm");
    let dest = registry.docker_url("acme/app", "tls");
    let copy = |skopeo: &Skopeo, from: String, to: String, prefix: &str| {
        let mut args = vec!["copy".to_string()];
        args.extend(creds_args(prefix, Some(&t)));
        args.extend([from, to]);
        skopeo.run(&args)
    };
    let untrusting = Skopeo::new(scratch.path());
    let refused = copy(&untrusting, image.reference(), dest.clone(), "--dest-");
    assert!(
        !refused.status.success() && text(&refused).contains("certificate"),
        "skopeo trusted an unknown CA: {}",
        text(&refused)
    );
    let skopeo = Skopeo::new(scratch.path()).with_env("SSL_CERT_FILE", &ca_file);
    assert_ok(
        &copy(&skopeo, image.reference(), dest.clone(), "--dest-"),
        "skopeo copy in",
    );
    let out = scratch.path().join("out");
    assert_ok(
        &copy(
            &skopeo,
            dest,
            format!("oci:{}:out", out.display()),
            "--src-",
        ),
        "skopeo copy out",
    );
    assert_eq!(oci_manifest_digest(&out), image.manifest_digest);
    assert!(
        server_log(&env, &auth).contains("status=200"),
        "no token was issued over HTTPS"
    );

    // docker: the CLI logs in and the daemon pushes and pulls through the same realm
    // (the daemon, not this process, verifies its certificate: 127.0.0.0/8 registries are
    // insecure to it by default, so this checks the protocol over TLS, not the trust).
    let docker = Docker::new(&registry.host);
    docker.login_ok(&t);
    let reference = registry.image("acme/app", "docker-tls");
    let id = docker.build(&reference);
    assert_ok(&docker.push(&reference), "docker push");
    docker.rmi(&reference);
    assert_ok(&docker.pull(&reference), "docker pull");
    assert_eq!(docker.image_id(&reference), id);
}
