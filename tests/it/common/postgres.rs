//! Debian's PostgreSQL, started by the tests themselves on 127.0.0.1: an `initdb` cluster in
//! a temporary directory, run as the `postgres` user when the tests run as root (the server
//! refuses root).
//!
//! `WVS_TEST_DATABASE=postgres` makes every [`super::Env`] use a fresh database of one
//! cluster shared by the test process ([`shared_database`]), so the same suites run against
//! both backends. Tests that stop or restart PostgreSQL start a [`Cluster`] of their own.
//!
//! The shared cluster lives in a static and is never dropped, so a watchdog started beside
//! it stops it and removes its directory once the test process has gone, however it ended.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::free_port;

/// Which backend the suites run against: `WVS_TEST_DATABASE` (`sqlite`, the default, or
/// `postgres`).
pub fn wanted() -> bool {
    match std::env::var("WVS_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Ok("") | Err(_) => false,
        Ok(other) => panic!("WVS_TEST_DATABASE={other:?}: use sqlite or postgres"),
    }
}

/// The directory of Debian's server binaries (`initdb`, `postgres`, `pg_ctl`), newest first.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is not installed (/usr/lib/postgresql); tests/run installs it")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("postgres").is_file())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions
        .pop()
        .expect("no PostgreSQL server under /usr/lib/postgresql/*/bin")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A PostgreSQL server of its own: data directory, socket directory and log in `dir`.
pub struct Cluster {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// Removed on drop (a cluster of one test), kept for the watchdog (the shared one).
    owned: bool,
}

impl Cluster {
    /// Creates and starts a cluster on a free port; waits until it answers.
    pub fn start() -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("wvs-pg-")
            .tempdir()
            .expect("tempdir")
            .keep();
        let bin = bin_dir();
        let cluster = Cluster {
            port: free_port(),
            dir,
            bin,
            owned: true,
        };
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&cluster.dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let out = cluster
            .as_server_user(&cluster.bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(cluster.data())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.resume();
        cluster
    }

    /// Starts a cluster that also speaks TLS, with a server certificate for 127.0.0.1
    /// signed by a CA made for it; returns the cluster and the CA's PEM file.
    pub fn start_with_tls() -> (Cluster, PathBuf) {
        let cluster = Cluster::start();
        let dir = &cluster.dir;
        let ca = make_ca(dir, "ca");
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write extensions");
        openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        if is_root() {
            for file in ["server.key", "server.crt"] {
                let status = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(dir.join(file))
                    .status()
                    .expect("chown");
                assert!(status.success());
            }
        }
        std::fs::set_permissions(
            dir.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod key");
        for setting in [
            format!(
                "ALTER SYSTEM SET ssl_cert_file = '{}'",
                dir.join("server.crt").display()
            ),
            format!(
                "ALTER SYSTEM SET ssl_key_file = '{}'",
                dir.join("server.key").display()
            ),
            "ALTER SYSTEM SET ssl = on".to_string(),
            "SELECT pg_reload_conf()".to_string(),
        ] {
            cluster
                .psql("postgres", &setting)
                .unwrap_or_else(|e| panic!("{setting}: {e}"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while cluster.psql("postgres", "SHOW ssl").as_deref() != Ok("on") {
            assert!(Instant::now() < deadline, "ssl did not come on");
            std::thread::sleep(Duration::from_millis(100));
        }
        (cluster, ca)
    }

    /// A directory for a test's own files beside the cluster's.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `program` as the `postgres` user when we are root, as ourselves otherwise.
    fn as_server_user(&self, program: &Path) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// Starts the server (again) on the same port and waits until it accepts queries.
    /// fsync is off: these clusters hold test data only, and a machine crash is not tested.
    pub fn resume(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400 \
             -c shared_buffers=32MB",
            self.port,
            self.dir.display()
        );
        let out = self
            .as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()
            .expect("run pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.psql("postgres", "SELECT 1").is_err() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not answer in 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server at once (`immediate`: as if it crashed; clients see their
    /// connections drop).
    pub fn stop(&self) {
        let _ = self
            .as_server_user(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs one SQL command with `psql` in `database`; its output, or stderr on failure.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
            ])
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                database,
            ])
            .args(["-c", sql])
            .output()
            .map_err(|e| format!("cannot run psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Everything `database` holds, as `pg_dump` writes it, followed by the bytes of every
    /// `bytea` value in it (which the dump shows as `\\x` and hex), so a test can search
    /// the stored bytes as it searches a SQLite file.
    pub fn stored_bytes(&self, database: &str) -> Vec<u8> {
        let out = Command::new(self.bin.join("pg_dump"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["--data-only", database])
            .output()
            .expect("run pg_dump");
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut all = out.stdout.clone();
        let text = String::from_utf8_lossy(&out.stdout);
        for piece in text.split("\\x").skip(1) {
            let hex: String = piece.chars().take_while(char::is_ascii_hexdigit).collect();
            for pair in hex.as_bytes().chunks_exact(2) {
                let pair = std::str::from_utf8(pair).expect("ascii");
                all.push(u8::from_str_radix(pair, 16).expect("hex"));
            }
        }
        all
    }

    /// A new, empty database and its URL.
    pub fn database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = self.psql("postgres", &format!("CREATE DATABASE {name}")) {
            panic!("CREATE DATABASE {name}: {e}");
        }
        self.url(&name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the cluster and removes it once process `pid` has gone: a detached shell that
    /// checks once a second (bounded by the process's life). It is never waited for: it
    /// must outlive the test process, and init reaps it then.
    #[allow(clippy::zombie_processes)]
    fn watch_over(mut self, pid: u32) -> Cluster {
        self.owned = false;
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             pid=$(head -1 '{data}/postmaster.pid' 2>/dev/null); \
             [ -n \"$pid\" ] && kill -QUIT \"$pid\" 2>/dev/null; sleep 2; rm -rf '{dir}'",
            data = self.data().display(),
            dir = self.dir.display()
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn().expect("start the cluster's watchdog");
        self
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            self.stop();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A self-signed CA `NAME.pem` (key `NAME.key`) in `dir`; its certificate's path.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=wvs-test-{name}"),
        ])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"])
        .args([
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ])
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl req -x509: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(format!("{name}.pem"))
}

/// The cluster every `Env` of this test process shares, started on first use.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| Cluster::start().watch_over(std::process::id()))
}

/// A fresh database in the shared cluster, for one `Env`.
pub fn shared_database() -> String {
    shared().database()
}
