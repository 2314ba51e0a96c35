//! Helpers for the git realm's tests: the real `git` and `git-lfs` with an isolated
//! configuration, and the URLs that carry a deploy token.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{have, Env, Server, Token};

/// Upper bound for one git command, so a hung client cannot hang the suite.
const GIT_LIMIT: &str = "180";

/// `git` with a private HOME and global config (git-lfs filters installed there), no
/// system config, no credential helper and no terminal prompt: a refused clone fails at
/// once instead of asking for a password.
pub struct GitClient {
    pub home: tempfile::TempDir,
}

impl GitClient {
    pub fn new() -> Self {
        for tool in ["git", "git-lfs", "timeout"] {
            assert!(
                have(tool),
                "{tool} is not on PATH; these tests need it (CI installs it)"
            );
        }
        let client = Self {
            home: tempfile::tempdir().expect("tempdir"),
        };
        client.ok(None, &["config", "--global", "user.name", "wvs test"]);
        client.ok(
            None,
            &["config", "--global", "user.email", "test@wvs.invalid"],
        );
        client.ok(None, &["config", "--global", "init.defaultBranch", "main"]);
        client.ok(None, &["lfs", "install", "--skip-repo"]);
        client
    }

    pub fn command(&self, cwd: Option<&Path>) -> Command {
        let mut cmd = Command::new("timeout");
        cmd.args(["-k", "5", GIT_LIMIT, "git"])
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_GLOBAL", self.home.path().join(".gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "")
            .env_remove("SSH_ASKPASS")
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd
    }

    pub fn run(&self, cwd: Option<&Path>, args: &[&str]) -> Output {
        self.command(cwd).args(args).output().expect("run git")
    }

    /// Runs git and insists on success; returns stdout.
    pub fn ok(&self, cwd: Option<&Path>, args: &[&str]) -> String {
        let out = self.run(cwd, args);
        assert!(out.status.success(), "git {args:?} failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A work repository at `dir` with a README and `blob.bin` tracked by git-lfs holding
    /// `lfs_content`, one commit on `main`.
    pub fn seed(&self, dir: &Path, lfs_content: &[u8]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        self.ok(Some(dir), &["init", "-q", "-b", "main"]);
        self.ok(Some(dir), &["lfs", "install", "--local"]);
        self.ok(Some(dir), &["lfs", "track", "*.bin"]);
        std::fs::write(dir.join("README"), "hello from wvs-auth\n").expect("write");
        std::fs::write(dir.join("blob.bin"), lfs_content).expect("write");
        self.ok(Some(dir), &["add", "."]);
        self.ok(Some(dir), &["commit", "-q", "-m", "initial"]);
    }

    /// `git push file://<bare> main`: git-lfs's pre-push hook stores the LFS objects in
    /// the bare repository's `lfs/objects` (standalone file transfer).
    pub fn push_file(&self, work: &Path, bare: &Path) {
        let url = format!("file://{}", bare.display());
        self.ok(Some(work), &["push", "-q", &url, "main"]);
    }

    /// `git clone URL dir`, returning the output whatever happened.
    pub fn clone(&self, url: &str, dir: &Path, extra: &[&str]) -> Output {
        let mut args = vec!["clone", "-q"];
        args.extend_from_slice(extra);
        let dir_s = dir.to_str().expect("utf-8 path");
        args.extend_from_slice(&[url, dir_s]);
        self.run(None, &args)
    }
}

/// An installation with the git tests' tree: groups `acme`, `acme/platform`, `oss`;
/// private `acme/app`, `acme/platform/api`, `acme/other`; public `oss/lib`.
pub fn with_git_projects() -> Env {
    let env = Env::new();
    for g in ["acme", "acme/platform", "oss"] {
        env.cli_ok(&["group", "create", g]);
    }
    for p in ["acme/app", "acme/platform/api", "acme/other"] {
        env.cli_ok(&["project", "create", p]);
    }
    env.cli_ok(&["project", "create", "oss/lib", "--visibility", "public"]);
    env
}

/// `http://[user:secret@]127.0.0.1:PORT/<path>` (append `.git` yourself if wanted).
pub fn url(server: &Server, token: Option<&Token>, path: &str) -> String {
    let auth = token
        .map(|t| format!("{}:{}@", t.username.replace('+', "%2B"), t.secret))
        .unwrap_or_default();
    format!("http://{auth}127.0.0.1:{}/{path}", server.port)
}

/// Like [`url`] with a chosen username and secret.
pub fn url_as(server: &Server, user: &str, secret: &str, path: &str) -> String {
    format!(
        "http://{}:{secret}@127.0.0.1:{}/{path}",
        user.replace('+', "%2B"),
        server.port
    )
}

/// Where `project create` put the bare repository of `project`.
pub fn bare(data_dir: &Path, project: &str) -> PathBuf {
    data_dir.join("repositories").join(format!("{project}.git"))
}

/// Deterministic pseudo-random bytes (xorshift), incompressible enough for git and LFS.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Peak resident set (`VmHWM`, KiB) of a running process.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}
