//! Shared harness for integration tests: a temporary data/keys directory, the real
//! `wvs-auth` binary, and servers started on free 127.0.0.1 ports and killed on drop.
#![allow(dead_code)]

pub mod api;
pub mod git;
pub mod http;
pub mod postgres;
pub mod tools;
pub mod users;
pub mod web;
pub mod webdriver;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_wvs-auth");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Polls `url` until it answers 200, for at most `limit`.
pub fn wait_ready(url: &str, limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(r) = ureq::get(url).timeout(Duration::from_millis(500)).call() {
            if r.status() == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{url} not ready after {limit:?}");
}

/// A deploy token as `token create --json` printed it.
#[derive(Debug, Clone)]
pub struct Token {
    pub id: i64,
    pub username: String,
    pub secret: String,
}

/// The registry tests' installation (keys are made by the first `serve`) with a small tree:
/// `acme/{app,other}` private, `acme/pub` public, `acme/int` internal, `acme/sub/svc` private.
pub fn env_with_projects() -> Env {
    with_projects(Env::new())
}

/// `env` with the groups and projects of [`env_with_projects`].
pub fn with_projects(env: Env) -> Env {
    for args in [
        &["group", "create", "acme"][..],
        &["group", "create", "acme/sub"],
        &["project", "create", "acme/app"],
        &["project", "create", "acme/other"],
        &["project", "create", "acme/pub", "--visibility", "public"],
        &["project", "create", "acme/int", "--visibility", "internal"],
        &["project", "create", "acme/sub/svc"],
    ] {
        env.cli_ok(args);
    }
    env
}

/// One wvs-auth installation: a data dir and a keys dir in a temp directory, and its
/// database: SQLite in the data dir, or with `WVS_TEST_DATABASE=postgres` a fresh database
/// of the test process's PostgreSQL cluster (`postgres.rs`).
pub struct Env {
    pub dir: tempfile::TempDir,
    /// `--database-url`, when it is not the SQLite default.
    pub database_url: Option<String>,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            database_url: postgres::wanted().then(postgres::shared_database),
        }
    }

    /// An installation on SQLite whatever the suite runs against, for tests of what only
    /// SQLite has (its file, `backup`).
    pub fn sqlite() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            database_url: None,
        }
    }

    /// Another installation on this one's database (a second instance behind a balancer):
    /// its own data and keys directories unless the test shares them.
    pub fn sharing_database(&self) -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
            database_url: self.database_url.clone(),
        }
    }

    /// Runs one SQL statement on this installation's database, whichever it is, and returns
    /// the first column of the rows it gives (`… RETURNING id` counts changed rows). For
    /// what no command may do, such as dating a token in the past.
    pub fn sql(&self, sql: &str) -> Vec<String> {
        match &self.database_url {
            Some(url) => {
                let database = url.rsplit('/').next().expect("database name");
                postgres::shared()
                    .psql(database, sql)
                    .unwrap_or_else(|e| panic!("{sql}: {e}"))
                    .lines()
                    .map(|l| l.split('|').next().unwrap_or_default().to_string())
                    .collect()
            }
            None => {
                let db = rusqlite::Connection::open(self.data_dir().join("wvs.db")).expect("db");
                db.busy_timeout(Duration::from_secs(5))
                    .expect("busy timeout");
                let mut statement = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
                let rows = statement
                    .query_map([], |row| {
                        Ok(match row.get_ref(0)? {
                            rusqlite::types::ValueRef::Null => String::new(),
                            rusqlite::types::ValueRef::Integer(i) => i.to_string(),
                            rusqlite::types::ValueRef::Real(f) => f.to_string(),
                            rusqlite::types::ValueRef::Text(t)
                            | rusqlite::types::ValueRef::Blob(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                        })
                    })
                    .unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.map(|r| r.expect("row")).collect()
            }
        }
    }

    /// What the database holds, by where it is held: each file of the data directory on
    /// SQLite, the dump (with bytea values as bytes) on PostgreSQL. For tests that check
    /// what is, and what is not, stored.
    pub fn stored(&self) -> Vec<(PathBuf, Vec<u8>)> {
        match &self.database_url {
            Some(url) => {
                let database = url.rsplit('/').next().expect("database name");
                vec![(
                    PathBuf::from(url),
                    postgres::shared().stored_bytes(database),
                )]
            }
            None => std::fs::read_dir(self.data_dir())
                .expect("data dir")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.is_file())
                .map(|p| {
                    let bytes = std::fs::read(&p).expect("read data file");
                    (p, bytes)
                })
                .collect(),
        }
    }

    /// Does this installation keep its database in the SQLite file `data/wvs.db`?
    pub fn on_sqlite(&self) -> bool {
        self.database_url.is_none()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn keys_dir(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with this env's directories, optionally behind a wrapper (e.g. faketime).
    pub fn command(&self, wrapper: &[&str]) -> Command {
        let mut cmd = match wrapper.split_first() {
            None => Command::new(BIN),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
        };
        cmd.arg("--data-dir")
            .arg(self.data_dir())
            .arg("--keys-dir")
            .arg(self.keys_dir());
        if let Some(url) = &self.database_url {
            cmd.arg("--database-url").arg(url);
        }
        cmd.env_remove("WVS_AUTH_CONFIG");
        cmd
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        self.command(&[]).args(args).output().expect("run wvs-auth")
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        self.cli_ok_with(&[], args)
    }

    /// As [`Env::cli_ok`], behind `wrapper` (e.g. faketime) if it is not empty.
    pub fn cli_ok_with(&self, wrapper: &[&str], args: &[&str]) -> String {
        let out = self
            .command(wrapper)
            .args(args)
            .output()
            .expect("run wvs-auth");
        assert!(
            out.status.success(),
            "wvs-auth {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8 stdout")
    }

    /// `token create … --json`, parsed. `owner` is `["--project", "acme/app"]` or similar.
    pub fn token(&self, owner: &[&str], scopes: &str, extra: &[&str]) -> Token {
        self.token_with(&[], owner, scopes, extra)
    }

    pub fn token_with(
        &self,
        wrapper: &[&str],
        owner: &[&str],
        scopes: &str,
        extra: &[&str],
    ) -> Token {
        let mut args = vec!["token", "create"];
        args.extend_from_slice(owner);
        args.extend_from_slice(&["--name", "test", "--scopes", scopes, "--json"]);
        args.extend_from_slice(extra);
        let v: serde_json::Value =
            serde_json::from_str(&self.cli_ok_with(wrapper, &args)).expect("token create --json");
        Token {
            id: v["id"].as_i64().expect("id"),
            username: v["username"].as_str().expect("username").to_string(),
            secret: v["token"].as_str().expect("token").to_string(),
        }
    }

    /// A token that expired at 00:00 UTC today: created "yesterday" under libfaketime, since
    /// the CLI refuses dates that are not in the future.
    pub fn expired_token(&self, owner: &[&str], scopes: &str) -> Token {
        assert!(have("faketime"), "faketime is not on PATH; CI installs it");
        let today = chrono::Utc::now().date_naive();
        let yesterday = today.pred_opt().expect("date");
        let at = format!("{yesterday} 12:00:00");
        let today = today.to_string();
        self.token_with(
            &["env", "TZ=UTC", "faketime", &at],
            owner,
            scopes,
            &["--expires-at", &today],
        )
    }

    /// Writes `keys bundle` to a file (creating keys if needed) and returns its path.
    pub fn bundle(&self) -> PathBuf {
        self.cli_ok(&["keys", "init"]);
        let path = self.path("bundle.pem");
        std::fs::write(&path, self.cli_ok(&["keys", "bundle"])).expect("write bundle");
        path
    }

    pub fn serve(&self, extra: &[&str]) -> Server {
        self.serve_with(&[], extra)
    }

    /// Starts `serve` on a free port (behind `wrapper`, if any) and waits until healthy.
    pub fn serve_with(&self, wrapper: &[&str], extra: &[&str]) -> Server {
        let server = self.spawn_serve(wrapper, extra);
        wait_ready(&format!("{}/-/health", server.url), Duration::from_secs(20));
        server
    }

    /// Starts `serve` on a free port and returns at once; `url` is `http://…` (a test of
    /// HTTPS replaces the scheme and waits itself).
    pub fn spawn_serve(&self, wrapper: &[&str], extra: &[&str]) -> Server {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(self.path(&format!("serve-{port}.log"))).expect("log");
        let mut cmd = self.command(wrapper);
        if !wrapper.is_empty() {
            // Wrappers such as faketime fork the server and pass no signal on, so killing
            // the wrapper would orphan it: give them a process group that Drop kills whole.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        }
        // Uses are written every 100 ms (unless the test says otherwise), so a test that
        // waits for `last_used_at` or a first-use event polls for a moment rather than the
        // production default's 5 s.
        cmd.args(["serve", "--listen", &listen, "--workers", "2"]);
        if !extra.contains(&"--usage-flush-ms") {
            cmd.args(["--usage-flush-ms", "100"]);
        }
        let child = cmd
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn serve");
        Server {
            child,
            url: format!("http://{listen}"),
            port,
        }
    }
}

/// A running process killed when dropped, with its process group if it leads one.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Process group `pid` exists only if the (not yet reaped) child leads it, as a
        // wrapped server does; otherwise this fails harmlessly.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Is `program` on PATH?
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| Path::new(&d).join(program).is_file()))
        .unwrap_or(false)
}
