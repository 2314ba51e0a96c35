//! `git push` over HTTP and LFS uploads for users (issue 6, SPEC §2), with the real `git`
//! and `git-lfs`: developers push with a personal access token or their password, the
//! pushed LFS objects come back byte for byte on a deploy token's clone, and everyone else
//! is refused with a reason git prints. The tools are required: a missing one fails.

use crate::common;

use std::path::{Path, PathBuf};

use common::git::{bare, random_bytes, text, url, url_as, with_git_projects, GitClient};
use common::users::password;
use common::{Env, Server, Token};

const PASSWORD: &str = "s3cret-pass-123";

/// The git tests' tree with the seeded repository in `acme/app` and `oss/lib`, and users:
/// `dev` (developer of group `acme`, with a password), `rep` (reporter of `acme/app`),
/// `boss` (maintainer of `acme/app`).
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
        let lfs_content = random_bytes(200_000, 11);
        let work = scratch.path().join("seed");
        git.seed(&work, &lfs_content);
        for p in ["acme/app", "oss/lib"] {
            git.push_file(&work, &bare(&env.data_dir(), p));
        }
        env.user("dev", Some(PASSWORD));
        env.member("dev", &["--group", "acme"], "developer");
        env.user("rep", None);
        env.member("rep", &["--project", "acme/app"], "reporter");
        env.user("boss", None);
        env.member("boss", &["--project", "acme/app"], "maintainer");
        let server = env.serve(&[]);
        Self {
            env,
            git,
            server,
            lfs_content,
            scratch,
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// Clones `url` into `name`, which must succeed, with the seeded LFS file smudged.
    fn clone_ok(&self, url: &str, name: &str) -> PathBuf {
        let dir = self.dir(name);
        let out = self.git.clone(url, &dir, &[]);
        assert!(out.status.success(), "clone {url} failed: {}", text(&out));
        let blob = std::fs::read(dir.join("blob.bin")).expect("blob.bin");
        assert!(blob == self.lfs_content, "blob.bin is not the LFS content");
        dir
    }

    /// Commits a change to README in `dir` (and, if given, a new LFS-tracked file).
    fn commit(&self, dir: &Path, message: &str, lfs: Option<(&str, &[u8])>) {
        std::fs::write(dir.join("README"), format!("{message}\n")).expect("write");
        if let Some((name, content)) = lfs {
            std::fs::write(dir.join(name), content).expect("write");
        }
        self.git.ok(Some(dir), &["add", "."]);
        self.git.ok(Some(dir), &["commit", "-q", "-m", message]);
    }

    fn push(&self, dir: &Path) -> std::process::Output {
        self.git.run(Some(dir), &["push", "origin", "main"])
    }

    /// The subject of `main`'s last commit in the bare repository of `project`.
    fn head(&self, project: &str) -> String {
        self.git
            .ok(
                Some(&bare(&self.env.data_dir(), project)),
                &["log", "-1", "--format=%s", "main"],
            )
            .trim()
            .to_string()
    }

    fn pat(&self, user: &str, scopes: &str) -> Token {
        self.env.pat(user, scopes)
    }

    /// A push from a fresh clone by `who` that must be refused; returns git's output.
    fn push_refused(&self, who: &Token, name: &str) -> String {
        let dir = self.clone_ok(&url(&self.server, Some(who), "acme/app.git"), name);
        self.commit(&dir, name, None);
        let out = self.push(&dir);
        assert!(!out.status.success(), "push succeeded: {}", text(&out));
        assert_eq!(
            self.head("acme/app"),
            "initial",
            "the repository was changed"
        );
        text(&out)
    }
}

#[test]
fn developer_pat_pushes_commits_and_lfs_objects() {
    let f = Fixture::new();
    let pat = f.pat("dev", "read_repository,write_repository");
    let dir = f.clone_ok(&url(&f.server, Some(&pat), "acme/app.git"), "dev");
    let big = random_bytes(1_500_000, 42);
    f.commit(&dir, "second", Some(("second.bin", &big)));
    let out = f.push(&dir);
    assert!(out.status.success(), "push failed: {}", text(&out));
    assert_eq!(f.head("acme/app"), "second");

    // The object landed in the repository's LFS store, and a deploy token's fresh clone
    // gets it back byte for byte.
    let token = f
        .env
        .token(&["--project", "acme/app"], "read_repository", &[]);
    let check = f.clone_ok(&url(&f.server, Some(&token), "acme/app.git"), "check");
    assert!(std::fs::read(check.join("second.bin")).expect("second.bin") == big);
    let log = f.git.ok(Some(&check), &["log", "--format=%s"]);
    assert_eq!(log.lines().collect::<Vec<_>>(), vec!["second", "initial"]);

    // Pushing an object the server already has costs no upload: a second branch with the
    // same content pushes fine.
    f.git.ok(Some(&dir), &["checkout", "-q", "-b", "again"]);
    f.commit(&dir, "third", Some(("copy.bin", &big)));
    let out = f.git.run(Some(&dir), &["push", "origin", "again"]);
    assert!(out.status.success(), "push failed: {}", text(&out));
}

#[test]
fn developer_pushes_with_password_and_api_pat() {
    let f = Fixture::new();
    let by_password = password("dev", PASSWORD);
    let dir = f.clone_ok(&url(&f.server, Some(&by_password), "acme/app.git"), "pw");
    f.commit(
        &dir,
        "by password",
        Some(("pw.bin", &random_bytes(70_000, 5))),
    );
    let out = f.push(&dir);
    assert!(out.status.success(), "push failed: {}", text(&out));
    assert_eq!(f.head("acme/app"), "by password");

    let api = f.pat("dev", "api");
    let dir = f.clone_ok(&url(&f.server, Some(&api), "acme/app.git"), "api");
    f.commit(&dir, "by api pat", None);
    let out = f.push(&dir);
    assert!(out.status.success(), "push failed: {}", text(&out));
    assert_eq!(f.head("acme/app"), "by api pat");
}

#[test]
fn pushes_that_are_refused_say_why() {
    let f = Fixture::new();

    let rep = f.pat("rep", "api");
    let out = f.push_refused(&rep, "reporter");
    assert!(
        out.contains("remote: You are not allowed to push code to this project.")
            && out.contains("403"),
        "{out}"
    );

    let read_only = f.pat("boss", "read_repository");
    let out = f.push_refused(&read_only, "scope");
    assert!(
        out.contains("remote: the personal access token lacks the repository scope"),
        "{out}"
    );

    let deploy = f.env.token(&["--group", "acme"], "read_repository", &[]);
    let out = f.push_refused(&deploy, "deploy");
    assert!(
        out.contains("remote: deploy tokens are read-only") && out.contains("403"),
        "{out}"
    );

    // A wrong password: authentication fails, nothing is pushed.
    let dir = f.clone_ok(&url(&f.server, Some(&rep), "acme/app.git"), "wrong");
    f.commit(&dir, "wrong", None);
    let wrong = url_as(&f.server, "dev", "not-the-password", "acme/app.git");
    let out = f.git.run(Some(&dir), &["push", &wrong, "main"]);
    assert!(!out.status.success(), "push succeeded: {}", text(&out));
    assert!(
        text(&out).to_lowercase().contains("authentication failed"),
        "{}",
        text(&out)
    );

    // Anonymous, even on a public project: git is asked for credentials (and may not
    // prompt here).
    let dir = f.clone_ok(&url(&f.server, None, "oss/lib.git"), "anon");
    f.commit(&dir, "anon", None);
    let out = f.push(&dir);
    assert!(!out.status.success(), "push succeeded: {}", text(&out));
    assert!(
        text(&out)
            .to_lowercase()
            .contains("could not read username"),
        "{}",
        text(&out)
    );
    assert_eq!(f.head("acme/app"), "initial");
    assert_eq!(f.head("oss/lib"), "initial");
}

/// The upload half of the LFS API request by request: what the batch answer offers whom,
/// and what the PUT accepts.
#[test]
fn lfs_upload_contract() {
    use common::http::{agent, answer, creds};
    use sha2::{Digest, Sha256};

    let f = Fixture::new();
    let batch = |who: &Token, oid: &str, size: usize| {
        let body = serde_json::json!({
            "operation": "upload",
            "transfers": ["basic"],
            "objects": [{ "oid": oid, "size": size }],
        });
        answer(
            agent()
                .post(&format!(
                    "{}/acme/app.git/info/lfs/objects/batch",
                    f.server.url
                ))
                .set("Authorization", &creds(who))
                .set("Accept", "application/vnd.git-lfs+json")
                .set("Content-Type", "application/vnd.git-lfs+json")
                .send_string(&body.to_string()),
        )
    };
    let content = random_bytes(10_000, 3);
    let oid: String = Sha256::digest(&content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stored = bare(&f.env.data_dir(), "acme/app")
        .join("lfs/objects")
        .join(&oid[0..2])
        .join(&oid[2..4])
        .join(&oid);

    // Reporters and deploy tokens get no upload actions, only a refusal git-lfs shows.
    let rep = f.pat("rep", "api");
    let a = batch(&rep, &oid, content.len());
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(
        a.json()["message"],
        "You are not allowed to push code to this project."
    );
    let deploy = f
        .env
        .token(&["--project", "acme/app"], "read_repository", &[]);
    let a = batch(&deploy, &oid, content.len());
    assert_eq!(a.status, 403, "{a:?}");
    assert_eq!(a.json()["message"], "deploy tokens are read-only");

    // A developer gets an upload action bound to the announced size.
    let dev = f.pat("dev", "write_repository");
    let a = batch(&dev, &oid, content.len());
    assert_eq!(a.status, 200, "{a:?}");
    let upload = a.json()["objects"][0]["actions"]["upload"].clone();
    let href = upload["href"].as_str().expect("href").to_string();
    let auth = upload["header"]["Authorization"]
        .as_str()
        .expect("auth")
        .to_string();
    assert!(auth.starts_with("RemoteAuth "), "{auth}");
    let put = |body: &[u8], auth: &str| {
        answer(
            agent()
                .put(&href)
                .set("Authorization", auth)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(body),
        )
    };

    // Wrong content of the right size, and a short body: refused, nothing stored.
    let mut wrong = content.clone();
    wrong[0] ^= 1;
    let a = put(&wrong, &auth);
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.body.contains("does not hash to the object id"), "{a:?}");
    assert_eq!(put(&content[..100], &auth).status, 400);
    assert!(!stored.exists(), "a refused upload was stored");

    // The right content is stored.
    assert_eq!(put(&content, &auth).status, 200);
    assert_eq!(std::fs::read(&stored).expect("stored"), content);
    let tmp = bare(&f.env.data_dir(), "acme/app").join("lfs/tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).expect("tmp").count(),
        0,
        "temp files left"
    );

    // Present now: the batch answer has nothing to do for it.
    let a = batch(&dev, &oid, content.len());
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.json()["objects"][0].get("actions").is_none(), "{a:?}");

    // A download link (same repository, same oid) does not upload.
    let download = answer(
        agent()
            .post(&format!(
                "{}/acme/app.git/info/lfs/objects/batch",
                f.server.url
            ))
            .set("Authorization", &creds(&dev))
            .send_string(
                &serde_json::json!({
                    "operation": "download",
                    "objects": [{ "oid": oid, "size": content.len() }],
                })
                .to_string(),
            ),
    );
    let json = download.json();
    let get_auth = json["objects"][0]["actions"]["download"]["header"]["Authorization"]
        .as_str()
        .expect("download link");
    assert_eq!(put(&content, get_auth).status, 401);

    // The link re-checks the PAT: revoked, the same link no longer uploads.
    let other = random_bytes(5_000, 4);
    let other_oid: String = Sha256::digest(&other)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let a = batch(&dev, &other_oid, other.len());
    let json = a.json();
    let link = &json["objects"][0]["actions"]["upload"];
    let href2 = link["href"].as_str().expect("href").to_string();
    let auth2 = link["header"]["Authorization"].as_str().expect("auth");
    f.env
        .cli_ok(&["user", "token", "revoke", &dev.id.to_string()]);
    let a = answer(
        agent()
            .put(&href2)
            .set("Authorization", auth2)
            .send_bytes(&other),
    );
    assert_eq!(a.status, 401, "{a:?}");
}
