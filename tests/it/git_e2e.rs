//! End to end with the real `git` and `git-lfs` against wvs-auth's git realm (SPEC §2, §6).
//!
//! Each fixture pushes a repository with an LFS-tracked file into the projects' bare
//! repositories over `file://` (git-lfs's standalone transfer writes the objects into
//! `<repo>.git/lfs/objects`), then clones it back over HTTP through wvs-auth and checks the
//! LFS content byte for byte after smudge. The tools are required: a missing one fails the
//! test, it never skips it.

use crate::common;

use std::path::Path;

use chrono::{Days, Utc};
use common::git::{
    bare, peak_rss_kib, random_bytes, text, url, url_as, with_git_projects, GitClient,
};
use common::{have, Env, Server, Token};

/// One wvs-auth with groups `acme`, `acme/platform`, `oss` and projects `acme/app`,
/// `acme/platform/api`, `acme/other` (private) and `oss/lib` (public), the first, second
/// and fourth holding the seeded repository.
struct Fixture {
    env: Env,
    git: GitClient,
    server: Server,
    lfs_content: Vec<u8>,
    scratch: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let env = with_git_projects();
        let git = GitClient::new();
        let scratch = tempfile::tempdir().expect("tempdir");
        let lfs_content = random_bytes(300_000, 7);
        let work = scratch.path().join("work");
        git.seed(&work, &lfs_content);
        for p in ["acme/app", "acme/platform/api", "oss/lib"] {
            git.push_file(&work, &bare(&env.data_dir(), p));
        }
        let server = env.serve(&[]);
        Self {
            env,
            git,
            server,
            lfs_content,
            scratch,
        }
    }

    fn dir(&self, name: &str) -> std::path::PathBuf {
        self.scratch.path().join(name)
    }

    /// Clones `url` and checks the working tree: README and the smudged LFS file.
    fn clone_ok(&self, url: &str, name: &str, extra: &[&str]) -> std::path::PathBuf {
        let dir = self.dir(name);
        let out = self.git.clone(url, &dir, extra);
        assert!(out.status.success(), "clone {url} failed: {}", text(&out));
        self.assert_checked_out(&dir);
        dir
    }

    fn assert_checked_out(&self, dir: &Path) {
        let readme = std::fs::read_to_string(dir.join("README")).expect("README");
        assert_eq!(readme, "hello from wvs-auth\n");
        let blob = std::fs::read(dir.join("blob.bin")).expect("blob.bin");
        assert!(
            blob == self.lfs_content,
            "blob.bin is not the LFS content ({} bytes, starts {:?})",
            blob.len(),
            String::from_utf8_lossy(&blob[..blob.len().min(60)])
        );
    }

    /// A clone that must fail; returns git's combined output, lowercased.
    fn clone_refused(&self, url: &str, name: &str) -> String {
        let out = self.git.clone(url, &self.dir(name), &[]);
        assert!(
            !out.status.success(),
            "clone {url} succeeded: {}",
            text(&out)
        );
        text(&out).to_lowercase()
    }

    fn token(&self, owner: &[&str], scopes: &str) -> Token {
        self.env.token(owner, scopes, &[])
    }
}

#[test]
fn project_token_clones_and_fetches_with_lfs() {
    let f = Fixture::new();
    let t = f.token(&["--project", "acme/app"], "read_repository");
    let dir = f.clone_ok(&url(&f.server, Some(&t), "acme/app.git"), "c", &[]);

    // A new commit (and LFS object) pushed to the bare repository arrives by fetch.
    let work = f.dir("work");
    let second = random_bytes(120_000, 99);
    std::fs::write(work.join("second.bin"), &second).expect("write");
    f.git.ok(Some(&work), &["add", "second.bin"]);
    f.git.ok(Some(&work), &["commit", "-q", "-m", "second"]);
    f.git.push_file(&work, &bare(&f.env.data_dir(), "acme/app"));
    f.git.ok(Some(&dir), &["pull", "-q", "--ff-only"]);
    assert_eq!(std::fs::read(dir.join("second.bin")).expect("read"), second);
    let log = f.git.ok(Some(&dir), &["log", "--format=%s"]);
    assert_eq!(log.lines().collect::<Vec<_>>(), vec!["second", "initial"]);
}

#[test]
fn group_token_clones_a_subgroup_project_with_lfs() {
    let f = Fixture::new();
    let t = f.token(&["--group", "acme"], "read_repository");
    f.clone_ok(&url(&f.server, Some(&t), "acme/platform/api.git"), "c", &[]);
    // The subgroup's own token, and the URL without `.git`.
    let sub = f.token(&["--group", "acme/platform"], "read_repository");
    f.clone_ok(&url(&f.server, Some(&sub), "acme/platform/api"), "d", &[]);
    // A group token does not reach outside its group.
    let out = f.clone_refused(&url(&f.server, Some(&sub), "acme/app.git"), "e");
    assert!(out.contains("not found"), "{out}");
}

#[test]
fn both_protocol_versions_work() {
    let f = Fixture::new();
    let t = f.token(&["--project", "acme/app"], "read_repository");
    let u = url(&f.server, Some(&t), "acme/app.git");
    f.clone_ok(&u, "v0", &["-c", "protocol.version=0"]);
    f.clone_ok(&u, "v2", &["-c", "protocol.version=2"]);
    // A shallow clone exercises a negotiation round of its own.
    f.clone_ok(&u, "shallow", &["--depth", "1"]);
}

#[test]
fn refusals() {
    let f = Fixture::new();
    let app = "acme/app.git";
    let good = f.token(&["--project", "acme/app"], "read_repository");

    // Wrong secret, and a well-formed secret nobody holds.
    let out = f.clone_refused(&url_as(&f.server, &good.username, "wvsdt-nope", app), "w1");
    assert!(out.contains("authentication failed"), "{out}");
    let out = f.clone_refused(
        &url_as(&f.server, "someone", &format!("{}x", good.secret), app),
        "w2",
    );
    assert!(out.contains("authentication failed"), "{out}");
    // The right secret under another username.
    let out = f.clone_refused(&url_as(&f.server, "someone", &good.secret, app), "w3");
    assert!(out.contains("authentication failed"), "{out}");

    // Revoked: works, then not on the very next request.
    let revoked = f.token(&["--project", "acme/app"], "read_repository");
    f.clone_ok(&url(&f.server, Some(&revoked), app), "r0", &[]);
    f.env.cli_ok(&["token", "revoke", &revoked.id.to_string()]);
    let out = f.clone_refused(&url(&f.server, Some(&revoked), app), "r1");
    assert!(out.contains("authentication failed"), "{out}");

    // Expired at 00:00 UTC today (created "yesterday" under libfaketime).
    assert!(have("faketime"), "faketime is not on PATH (CI installs it)");
    let today = Utc::now().date_naive();
    let yesterday = today.checked_sub_days(Days::new(1)).expect("date");
    let at = format!("{yesterday} 12:00:00");
    let expired = f.env.token_with(
        &["env", "TZ=UTC", "faketime", &at],
        &["--project", "acme/app"],
        "read_repository",
        &["--expires-at", &today.to_string()],
    );
    let out = f.clone_refused(&url(&f.server, Some(&expired), app), "x");
    assert!(out.contains("authentication failed"), "{out}");

    // Valid, but without read_repository: git shows the server's reason.
    let registry_only = f.token(&["--project", "acme/app"], "read_registry,write_registry");
    let out = f.clone_refused(&url(&f.server, Some(&registry_only), app), "s");
    assert!(out.contains("deploy token lacks read_repository"), "{out}");

    // Another project's token: "not found", exactly as for a project that does not exist.
    let other = f.token(&["--project", "acme/other"], "read_repository");
    let out = f.clone_refused(&url(&f.server, Some(&other), app), "o");
    assert!(out.contains("not found"), "{out}");
    let out_unknown = f.clone_refused(&url(&f.server, Some(&other), "acme/nope.git"), "u");
    assert!(out_unknown.contains("not found"), "{out_unknown}");

    // Anonymous on a private project: git needs credentials and may not prompt.
    let out = f.clone_refused(&url(&f.server, None, app), "a");
    assert!(out.contains("could not read username"), "{out}");
}

#[test]
fn push_is_refused_with_a_message() {
    let f = Fixture::new();
    let t = f.token(&["--group", "acme"], "read_repository");
    let dir = f.clone_ok(&url(&f.server, Some(&t), "acme/app.git"), "c", &[]);
    std::fs::write(dir.join("README"), "changed\n").expect("write");
    f.git.ok(Some(&dir), &["commit", "-q", "-am", "change"]);
    let out = f.git.run(Some(&dir), &["push", "origin", "main"]);
    assert!(!out.status.success(), "push succeeded: {}", text(&out));
    let all = text(&out);
    assert!(
        all.contains("remote: deploy tokens are read-only") && all.contains("403"),
        "{all}"
    );
    let head = f.git.ok(
        Some(&bare(&f.env.data_dir(), "acme/app")),
        &["log", "-1", "--format=%s", "main"],
    );
    assert_eq!(head.trim(), "initial", "the bare repository was changed");
}

#[test]
fn public_project_clones_anonymously_with_lfs() {
    let f = Fixture::new();
    f.clone_ok(&url(&f.server, None, "oss/lib.git"), "anon", &[]);
    // A token of some other project does not take public access away.
    let t = f.token(&["--project", "acme/other"], "read_registry");
    f.clone_ok(&url(&f.server, Some(&t), "oss/lib.git"), "tok", &[]);
}

#[test]
fn projects_created_before_git_get_a_repository_on_first_use() {
    let f = Fixture::new();
    // Simulate a project from before git support: its repository is missing.
    let dir = bare(&f.env.data_dir(), "acme/other");
    std::fs::remove_dir_all(&dir).expect("remove repository");
    let t = f.token(&["--project", "acme/other"], "read_repository");
    let out = f.git.clone(
        &url(&f.server, Some(&t), "acme/other.git"),
        &f.dir("c"),
        &[],
    );
    assert!(out.status.success(), "clone failed: {}", text(&out));
    assert!(dir.join("HEAD").is_file(), "repository not created");
    // And it is the empty repository git warns about, not an error.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("empty repository"),
        "{}",
        text(&out)
    );
}

/// wvs-auth streams: cloning a repository with a 48 MB blob and a 48 MB LFS object keeps the
/// server's peak RSS far below the data's size.
#[test]
fn large_clone_is_streamed_not_buffered() {
    const SIZE: usize = 48 * 1024 * 1024;
    const LIMIT_KIB: u64 = 64 * 1024;
    let env = Env::new();
    env.cli_ok(&["group", "create", "big"]);
    env.cli_ok(&["project", "create", "big/repo"]);
    let git = GitClient::new();
    let scratch = tempfile::tempdir().expect("tempdir");
    let work = scratch.path().join("work");
    let lfs = random_bytes(SIZE, 3);
    git.seed(&work, &lfs);
    std::fs::write(work.join("plain.dat"), random_bytes(SIZE, 5)).expect("write");
    git.ok(Some(&work), &["add", "plain.dat"]);
    git.ok(Some(&work), &["commit", "-q", "-m", "plain blob"]);
    git.push_file(&work, &bare(&env.data_dir(), "big/repo"));

    let server = env.serve(&[]);
    let before = peak_rss_kib(server.child.id());
    let t = env.token(&["--project", "big/repo"], "read_repository", &[]);
    let dir = scratch.path().join("clone");
    let out = git.clone(&url(&server, Some(&t), "big/repo.git"), &dir, &[]);
    assert!(out.status.success(), "clone failed: {}", text(&out));
    assert!(std::fs::read(dir.join("blob.bin")).expect("blob") == lfs);
    assert_eq!(
        std::fs::metadata(dir.join("plain.dat"))
            .expect("plain")
            .len(),
        SIZE as u64
    );
    let peak = peak_rss_kib(server.child.id());
    eprintln!("wvs-auth peak RSS: {before} KiB before the clone, {peak} KiB after");
    assert!(
        peak < LIMIT_KIB,
        "wvs-auth peaked at {peak} KiB (before the clone: {before} KiB) serving ~{} MiB",
        2 * SIZE / (1024 * 1024)
    );
}
