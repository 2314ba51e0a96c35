//! The git realm's HTTP contract, request by request: the 401/403/404 shapes and that they
//! reveal nothing about which projects exist, the LFS batch API and its signed download
//! links, protocol v2 and gzip request bodies through `git http-backend`, and that the other
//! routes still answer as before.

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::git::{bare, random_bytes, with_git_projects, GitClient};
use common::{Env, Server, Token};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const LFS: &str = "application/vnd.git-lfs+json";

#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {self:?} {}", self.text()))
    }

    /// Status and content type, and the body as text.
    fn expect(&self, status: u16, content_type: &str) -> String {
        assert_eq!(self.status, status, "{self:?}: {}", self.text());
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with(content_type)),
            "content type of {self:?}"
        );
        self.text()
    }
}

fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let headers = response
        .headers_names()
        .into_iter()
        .map(|name| {
            let value = response.header(&name).unwrap_or_default().to_string();
            (name.to_ascii_lowercase(), value)
        })
        .collect();
    let mut body = Vec::new();
    response
        .into_reader()
        .take(100 * 1024 * 1024)
        .read_to_end(&mut body)
        .expect("read body");
    Answer {
        status,
        headers,
        body,
    }
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(30))
        .build()
}

fn basic(t: &Token) -> String {
    basic_as(&t.username, &t.secret)
}

fn basic_as(user: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = agent().get(&format!("{}{path}", server.url));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(req.call())
}

fn post(server: &Server, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Answer {
    let mut req = agent().post(&format!("{}{path}", server.url));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    answer(req.send_bytes(body))
}

fn refs(server: &Server, repo: &str, auth: Option<&str>) -> Answer {
    let path = format!("/{repo}/info/refs?service=git-upload-pack");
    match auth {
        Some(a) => get(server, &path, &[("Authorization", a)]),
        None => get(server, &path, &[]),
    }
}

fn batch(server: &Server, repo: &str, auth: Option<&str>, op: &str, objects: Value) -> Answer {
    let body = json!({ "operation": op, "transfers": ["basic"], "objects": objects });
    let mut headers = vec![("Accept", LFS), ("Content-Type", LFS)];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    post(
        server,
        &format!("/{repo}.git/info/lfs/objects/batch"),
        &headers,
        body.to_string().as_bytes(),
    )
}

/// Projects `acme/app`, `acme/platform/api`, `acme/other` (private), `oss/lib` (public);
/// `acme/app` and `acme/platform/api` hold one commit and one LFS object.
struct Fixture {
    env: Env,
    server: Server,
    object: Vec<u8>,
    oid: String,
}

impl Fixture {
    fn new() -> Self {
        let env = with_git_projects();
        let object = random_bytes(200_000, 11);
        let oid = hex(&Sha256::digest(&object));
        let git = GitClient::new();
        let work = env.path("work");
        git.seed(&work, &object);
        for p in ["acme/app", "acme/platform/api"] {
            git.push_file(&work, &bare(&env.data_dir(), p));
        }
        let stored = bare(&env.data_dir(), "acme/app")
            .join("lfs/objects")
            .join(&oid[0..2])
            .join(&oid[2..4])
            .join(&oid);
        assert!(
            stored.is_file(),
            "git-lfs did not store {}",
            stored.display()
        );
        let server = env.serve(&[]);
        Self {
            env,
            server,
            object,
            oid,
        }
    }

    fn token(&self, owner: &[&str], scopes: &str) -> Token {
        self.env.token(owner, scopes, &[])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn unknown_projects_look_exactly_like_private_ones() {
    let f = Fixture::new();
    let s = &f.server;

    // Anonymous: 401 with the Basic challenge, the same bytes for private and unknown.
    let private = refs(s, "acme/app.git", None);
    let body = private.expect(401, "text/plain");
    assert_eq!(
        private.header("www-authenticate"),
        Some(r#"Basic realm="wvs-auth""#)
    );
    assert!(!body.contains("acme"), "{body}");
    for unknown in [
        "acme/nope.git",
        "nope/x/y.git",
        "acme/app/sub.git",
        "acme.git",
    ] {
        let a = refs(s, unknown, None);
        assert_eq!(
            (a.status, a.header("www-authenticate"), a.body.clone()),
            (
                401,
                private.header("www-authenticate"),
                private.body.clone()
            ),
            "{unknown}"
        );
    }

    // A valid token that does not cover the project: one 404 for "not yours" and "none".
    let other = f.token(&["--project", "acme/other"], "read_repository");
    let not_yours = refs(s, "acme/app.git", Some(&basic(&other)));
    not_yours.expect(404, "text/plain");
    let none = refs(s, "acme/nope.git", Some(&basic(&other)));
    assert_eq!((none.status, none.body), (404, not_yours.body.clone()));
    // Also for the LFS API, which answers in its own media type.
    let lfs_not_yours = batch(s, "acme/app", Some(&basic(&other)), "download", json!([]));
    lfs_not_yours.expect(404, LFS);
    let lfs_none = batch(s, "acme/nope", Some(&basic(&other)), "download", json!([]));
    assert_eq!(lfs_none.body, lfs_not_yours.body);

    // No read_repository: 403 whatever the path.
    let registry = f.token(&["--project", "acme/app"], "read_registry");
    for repo in ["acme/app.git", "acme/nope.git"] {
        let body = refs(s, repo, Some(&basic(&registry))).expect(403, "text/plain");
        assert_eq!(body, "deploy token lacks read_repository\n");
    }

    // Wrong credentials: 401 with the challenge, never a hint.
    let good = f.token(&["--project", "acme/app"], "read_repository");
    let wrong = refs(
        s,
        "acme/app.git",
        Some(&basic_as(&good.username, "wvsdt-x")),
    );
    wrong.expect(401, "text/plain");
    assert!(wrong.header("www-authenticate").is_some());
    let wrong_user = refs(s, "acme/app.git", Some(&basic_as("someone", &good.secret)));
    assert_eq!(wrong_user.status, 401);
    // And the right ones work, with or without `.git`.
    refs(s, "acme/app.git", Some(&basic(&good)))
        .expect(200, "application/x-git-upload-pack-advertisement");
    refs(s, "acme/app", Some(&basic(&good)))
        .expect(200, "application/x-git-upload-pack-advertisement");
    // A malformed Authorization header is a client error.
    refs(s, "acme/app.git", Some("Basic !!!")).expect(400, "text/plain");
}

#[test]
fn push_is_refused_for_deploy_tokens() {
    let f = Fixture::new();
    let s = &f.server;
    let t = f.token(&["--group", "acme"], "read_repository,write_registry");
    let path = "/acme/app.git/info/refs?service=git-receive-pack";
    let anon = get(s, path, &[]);
    anon.expect(401, "text/plain");
    assert!(
        anon.header("www-authenticate").is_some(),
        "git must be asked for credentials"
    );
    let body = get(s, path, &[("Authorization", &basic(&t))]).expect(403, "text/plain");
    assert_eq!(body, "deploy tokens are read-only\n");
    let body = post(
        s,
        "/acme/app.git/git-receive-pack",
        &[
            ("Authorization", &basic(&t)),
            ("Content-Type", "application/x-git-receive-pack-request"),
        ],
        b"0000",
    )
    .expect(403, "text/plain");
    assert_eq!(body, "deploy tokens are read-only\n");
    // Unknown project: the same refusal, nothing revealed.
    let unknown = get(
        s,
        "/acme/nope.git/info/refs?service=git-receive-pack",
        &[("Authorization", &basic(&t))],
    );
    assert_eq!(unknown.status, 403);
    // LFS uploads too.
    let up = batch(
        s,
        "acme/app",
        Some(&basic(&t)),
        "upload",
        json!([{"oid": f.oid, "size": 1}]),
    );
    assert_eq!(
        up.expect(403, LFS),
        r#"{"message":"deploy tokens are read-only"}"#
    );
    let up = batch(s, "acme/app", None, "upload", json!([]));
    up.expect(401, LFS);
    assert!(up.header("lfs-authenticate").is_some());
}

#[test]
fn other_routes_are_unchanged() {
    let f = Fixture::new();
    let s = &f.server;
    assert_eq!(get(s, "/-/health", &[]).status, 200);
    assert_eq!(get(s, "/-/jwks", &[]).status, 200);
    let token = get(s, "/jwt/auth?service=container_registry", &[]);
    assert_eq!(token.status, 200);
    assert!(token.json()["token"].is_string());
    // Unknown routes, and git URLs wvs-auth does not serve (the dumb protocol), are the
    // usual JSON 404.
    for path in [
        "/nope",
        "/acme/app.git/HEAD",
        "/acme/app.git/objects/info/packs",
        "/acme/app.git/info/lfs/objects/xyz",
        "/acme/%61pp.git/info/refs",
    ] {
        let a = get(s, path, &[]);
        let body = a.expect(404, "application/json");
        assert!(
            a.json()["errors"][0]["code"] == "NOT_FOUND",
            "{path}: {body}"
        );
    }
    // Wrong method on a git endpoint, and info/refs without the smart service.
    assert_eq!(get(s, "/acme/app.git/git-upload-pack", &[]).status, 405);
    assert_eq!(post(s, "/acme/app.git/info/refs", &[], b"").status, 405);
    get(s, "/acme/app.git/info/refs", &[]).expect(400, "text/plain");
}

#[test]
fn protocol_v2_and_gzip_bodies_reach_upload_pack() {
    let f = Fixture::new();
    let s = &f.server;
    let t = f.token(&["--project", "acme/app"], "read_repository");
    let auth = basic(&t);

    let v2 = get(
        s,
        "/acme/app.git/info/refs?service=git-upload-pack",
        &[("Authorization", &auth), ("Git-Protocol", "version=2")],
    );
    let body = v2.expect(200, "application/x-git-upload-pack-advertisement");
    assert!(
        body.contains("version 2") && body.contains("fetch"),
        "{body}"
    );

    // v0: the advertisement names the head; a gzip-compressed "want, done" gets a pack.
    let v0 = get(
        s,
        "/acme/app.git/info/refs?service=git-upload-pack",
        &[("Authorization", &auth)],
    );
    let body = v0.expect(200, "application/x-git-upload-pack-advertisement");
    assert!(
        body.starts_with("001e# service=git-upload-pack\n0000"),
        "{body}"
    );
    let head = body
        .lines()
        .find_map(|l| l.split_once(" refs/heads/main").map(|(h, _)| h.to_string()))
        .expect("main advertised");
    let sha = &head[head.len() - 40..];
    let want = format!("want {sha}\n");
    let request = format!("{:04x}{want}00000009done\n", want.len() + 4);
    let mut gzip = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    gzip.stdin
        .take()
        .expect("stdin")
        .write_all(request.as_bytes())
        .expect("write");
    let compressed = gzip.wait_with_output().expect("gzip output").stdout;
    let pack = post(
        s,
        "/acme/app.git/git-upload-pack",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/x-git-upload-pack-request"),
            ("Content-Encoding", "gzip"),
        ],
        &compressed,
    );
    assert_eq!(pack.status, 200, "{}", pack.text());
    assert_eq!(
        pack.header("content-type"),
        Some("application/x-git-upload-pack-result")
    );
    assert!(pack.body.starts_with(b"0008NAK\n"), "{:?}", pack.text());
    assert!(pack.body.windows(4).any(|w| w == b"PACK"), "no pack data");
}

#[test]
fn lfs_batch_and_signed_downloads() {
    let f = Fixture::new();
    let s = &f.server;
    let group = f.token(&["--group", "acme"], "read_repository");
    let unknown_oid = "0".repeat(64);
    let objects = json!([
        { "oid": f.oid, "size": f.object.len() },
        { "oid": unknown_oid, "size": 5 },
        { "oid": "not-an-oid", "size": 5 },
    ]);

    // The group token on a subgroup's project: what GitLab cannot do.
    let a = batch(
        s,
        "acme/platform/api",
        Some(&basic(&group)),
        "download",
        objects.clone(),
    );
    a.expect(200, LFS);
    let v = a.json();
    assert_eq!(v["transfer"], "basic");
    let found = &v["objects"][0];
    assert_eq!(found["oid"], f.oid.as_str());
    assert_eq!(found["size"], f.object.len());
    let download = &found["actions"]["download"];
    let href = download["href"].as_str().expect("href");
    assert_eq!(
        href,
        format!("{}/acme/platform/api.git/info/lfs/objects/{}", s.url, f.oid)
    );
    assert!(download["expires_in"]
        .as_i64()
        .is_some_and(|e| e > 0 && e <= 3600));
    let link = download["header"]["Authorization"]
        .as_str()
        .expect("header")
        .to_string();
    assert!(link.starts_with("RemoteAuth "), "{link}");
    assert_eq!(v["objects"][1]["error"]["code"], 404);
    assert!(v["objects"][1].get("actions").is_none());
    assert_eq!(v["objects"][2]["error"]["code"], 422);

    // The link downloads the object, byte for byte, with its length.
    let path = href.strip_prefix(&s.url).expect("same server");
    let got = get(s, path, &[("Authorization", &link)]);
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("content-length"),
        Some(f.object.len().to_string().as_str())
    );
    assert!(got.body == f.object, "object bytes differ");

    // Bound to its repository and object, and not forgeable.
    let other_repo = format!("/acme/app.git/info/lfs/objects/{}", f.oid);
    get(s, &other_repo, &[("Authorization", &link)]).expect(401, LFS);
    let tampered = format!("{}x", link);
    get(s, path, &[("Authorization", &tampered)]).expect(401, LFS);
    // Without credentials: the challenge. With Basic credentials: served directly.
    let anon = get(s, path, &[]);
    anon.expect(401, LFS);
    assert!(anon.header("lfs-authenticate").is_some());
    assert_eq!(
        get(s, path, &[("Authorization", &basic(&group))]).status,
        200
    );
    // A missing object with good credentials.
    let missing = format!("/acme/app.git/info/lfs/objects/{unknown_oid}");
    get(s, &missing, &[("Authorization", &basic(&group))]).expect(404, LFS);

    // Revocation stops the link on the very next request.
    f.env.cli_ok(&["token", "revoke", &group.id.to_string()]);
    get(s, path, &[("Authorization", &link)]).expect(401, LFS);

    // The batch API checks Accept, and refuses what it cannot parse.
    let t = f.token(&["--project", "acme/app"], "read_repository");
    let wrong_accept = post(
        s,
        "/acme/app.git/info/lfs/objects/batch",
        &[("Accept", "text/html"), ("Authorization", &basic(&t))],
        b"{}",
    );
    wrong_accept.expect(406, LFS);
    let bad = post(
        s,
        "/acme/app.git/info/lfs/objects/batch",
        &[("Accept", LFS), ("Authorization", &basic(&t))],
        b"{not json",
    );
    bad.expect(422, LFS);
    assert!(bad.json()["message"].is_string());
    let sha512 = post(
        s,
        "/acme/app.git/info/lfs/objects/batch",
        &[("Accept", LFS), ("Authorization", &basic(&t))],
        br#"{"operation":"download","objects":[],"hash_algo":"sha512"}"#,
    );
    assert_eq!(sha512.status, 409);
}

#[test]
fn public_projects_serve_lfs_anonymously() {
    let f = Fixture::new();
    let s = &f.server;
    // oss/lib has no objects: anonymous batch gets per-object 404s, not a 401.
    let a = batch(
        s,
        "oss/lib",
        None,
        "download",
        json!([{ "oid": f.oid, "size": 1 }]),
    );
    a.expect(200, LFS);
    assert_eq!(a.json()["objects"][0]["error"]["code"], 404);
    // Anonymous batch on a private project: the challenge.
    let a = batch(
        s,
        "acme/app",
        None,
        "download",
        json!([{ "oid": f.oid, "size": 1 }]),
    );
    a.expect(401, LFS);
}
