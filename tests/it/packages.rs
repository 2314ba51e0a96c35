//! The package realm's HTTP contract (SPEC §6, PACKAGE-NOTES §0, §1) against a real
//! `wvs-auth serve`: who may read, publish and delete, generic packages byte for byte, and
//! that bad input is refused with nothing left on disk or in the database.

use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common;
use common::http::{agent, answer, basic, Answer};
use common::{Env, Server, Token};

/// `acme/app` (private), `acme/pub` (public), `acme/sub/svc`, `other/x`.
fn env() -> Env {
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["group", "create", "acme/sub"],
        &["group", "create", "other"],
        &["project", "create", "acme/app"],
        &["project", "create", "acme/pub", "--visibility", "public"],
        &["project", "create", "acme/sub/svc"],
        &["project", "create", "other/x"],
    ] {
        env.cli_ok(args);
    }
    env
}

fn encoded(path: &str) -> String {
    path.replace('/', "%2F")
}

pub fn generic_url(
    server: &Server,
    project: &str,
    name: &str,
    version: &str,
    file: &str,
) -> String {
    format!(
        "{}/api/v4/projects/{}/packages/generic/{name}/{version}/{file}",
        server.url,
        encoded(project)
    )
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Cred<'a> {
    None,
    DeployToken(&'a Token),
    Bearer(&'a Token),
    /// Basic with a username that is not the token's: ignored on package routes.
    Basic(&'a Token),
    Raw(&'a str),
}

pub fn with(req: ureq::Request, cred: Cred<'_>) -> ureq::Request {
    match cred {
        Cred::None => req,
        Cred::DeployToken(t) => req.set("Deploy-Token", &t.secret),
        Cred::Bearer(t) => req.set("Authorization", &format!("Bearer {}", t.secret)),
        Cred::Basic(t) => req.set("Authorization", &basic("whoever", &t.secret)),
        Cred::Raw(v) => req.set("Authorization", v),
    }
}

pub fn put(url: &str, cred: Cred<'_>, body: &[u8]) -> Answer {
    answer(with(agent().put(url), cred).send_bytes(body))
}

pub fn get(url: &str, cred: Cred<'_>) -> Answer {
    answer(with(agent().get(url), cred).call())
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Every file below `dir` (none if it does not exist).
pub fn files_below(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn audit(env: &Env, action: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&env.cli_ok(&["audit", "--json"])).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

#[test]
fn generic_packages_round_trip_with_every_credential_form() {
    let env = env();
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let group_read = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let server = env.serve(&[]);
    let url = generic_url(&server, "acme/app", "tool", "1.0.0", "tool-linux.tar.gz");
    let body = b"first build".to_vec();

    let a = put(&url, Cred::DeployToken(&rw), &body);
    assert_eq!(a.status, 201, "{a:?}");
    for cred in [
        Cred::DeployToken(&rw),
        Cred::Bearer(&rw),
        Cred::Basic(&rw),
        Cred::Basic(&group_read),
    ] {
        let a = get(&url, cred);
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.body.as_bytes(), body);
        assert_eq!(
            a.header("x-checksum-sha256"),
            Some(hex_sha256(&body).as_str())
        );
    }
    // The numeric id works as well as the path.
    let id = common::api::namespace_id(&env, "project", "acme/app");
    let by_id = url.replace(&encoded("acme/app"), &id.to_string());
    assert_eq!(get(&by_id, Cred::DeployToken(&rw)).status, 200);

    // The same file again replaces it.
    let second = b"second build, longer".to_vec();
    assert_eq!(put(&url, Cred::Bearer(&rw), &second).status, 201);
    let a = get(&url, Cred::DeployToken(&rw));
    assert_eq!(a.body.as_bytes(), second);
    assert_eq!(
        a.header("x-checksum-sha256"),
        Some(hex_sha256(&second).as_str())
    );
    // The replaced content is gone from disk: one blob left.
    let blobs = files_below(&env.data_dir().join("packages/blobs"));
    assert_eq!(blobs.len(), 1, "{blobs:?}");

    let published = audit(&env, "package_published");
    assert_eq!(published.len(), 2, "{published:?}");
    assert_eq!(published[0]["actor"], rw.username.as_str());
    assert_eq!(published[0]["deploy_token_id"], rw.id);
    assert_eq!(published[0]["target"], "acme/app");
    assert!(!env.cli_ok(&["audit"]).contains(&rw.secret));
}

#[test]
fn who_may_read_and_publish() {
    let env = env();
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let read = env.token(&["--project", "acme/app"], "read_package_registry", &[]);
    let registry = env.token(
        &["--project", "acme/app"],
        "read_registry,write_registry",
        &[],
    );
    let other = env.token(
        &["--project", "other/x"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let group = env.token(
        &["--group", "acme"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let revoked = env.token(&["--project", "acme/app"], "read_package_registry", &[]);
    env.cli_ok(&["token", "revoke", &revoked.id.to_string()]);
    let server = env.serve(&[]);
    let url = generic_url(&server, "acme/app", "tool", "1.0", "t.bin");
    assert_eq!(put(&url, Cred::DeployToken(&rw), b"x").status, 201);

    // 401 with a Basic challenge for none or bad credentials (malformed ones included).
    for (cred, what) in [
        (Cred::None, "none"),
        (Cred::Raw("Basic !!!"), "malformed Basic"),
        (Cred::DeployToken(&revoked), "revoked"),
        (Cred::Raw("Bearer wvsdt-nonsense"), "unknown"),
    ] {
        let a = get(&url, cred);
        assert_eq!(a.status, 401, "{what}: {a:?}");
        assert_eq!(
            a.header("www-authenticate"),
            Some(r#"Basic realm="wvs-auth""#),
            "{what}"
        );
        assert!(a.json()["message"].is_string(), "{what}: {a:?}");
        assert_eq!(put(&url, cred, b"y").status, 401, "{what}");
    }
    // 403: authenticated without the scope; 404: a project the token does not cover.
    assert_eq!(get(&url, Cred::DeployToken(&registry)).status, 403);
    assert_eq!(put(&url, Cred::DeployToken(&read), b"y").status, 403);
    assert_eq!(get(&url, Cred::DeployToken(&other)).status, 404);
    assert_eq!(put(&url, Cred::DeployToken(&other), b"y").status, 404);
    // Group tokens read and write every project below the group, later ones included.
    env.cli_ok(&["project", "create", "acme/sub/later"]);
    let later = generic_url(&server, "acme/sub/later", "tool", "1.0", "t.bin");
    assert_eq!(put(&later, Cred::DeployToken(&group), b"z").status, 201);
    assert_eq!(get(&later, Cred::Basic(&group)).body, "z");
    assert_eq!(get(&url, Cred::DeployToken(&group)).body, "x");

    // Public projects read anonymously; writing still needs credentials.
    let public = generic_url(&server, "acme/pub", "tool", "1.0", "t.bin");
    assert_eq!(put(&public, Cred::DeployToken(&group), b"open").status, 201);
    assert_eq!(get(&public, Cred::None).body, "open");
    assert_eq!(get(&public, Cred::DeployToken(&other)).body, "open");
    assert_eq!(put(&public, Cred::None, b"no").status, 401);
    assert_eq!(put(&public, Cred::DeployToken(&other), b"no").status, 404);

    // Users: a developer publishes, a reporter reads, a PAT needs `api`.
    env.user("dev", Some("a long passphrase"));
    env.user("rep", None);
    env.member("dev", &["--project", "acme/app"], "developer");
    env.member("rep", &["--project", "acme/app"], "reporter");
    let dev = common::users::password("dev", "a long passphrase");
    let rep_pat = env.pat("rep", "api");
    let rep_narrow = env.pat("rep", "read_registry");
    let dev_basic = basic(&dev.username, &dev.secret);
    assert_eq!(put(&url, Cred::Raw(&dev_basic), b"by dev").status, 201);
    assert_eq!(get(&url, Cred::Bearer(&rep_pat)).body, "by dev");
    assert_eq!(put(&url, Cred::Bearer(&rep_pat), b"no").status, 403);
    assert_eq!(get(&url, Cred::Bearer(&rep_narrow)).status, 403);
    let wrong = basic("dev", "not the passphrase");
    assert_eq!(get(&url, Cred::Raw(&wrong)).status, 401);

    // Every refused credential is audited with the surface.
    let failures = audit(&env, "auth_failure");
    assert!(
        failures.iter().any(|e| e["detail"]
            .as_str()
            .is_some_and(|d| d.contains("surface=packages"))),
        "{failures:?}"
    );
}

#[test]
fn bad_input_is_refused_and_leaves_nothing() {
    let env = env();
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let server = env.serve(&["--max-package-size", "1KiB"]);
    let base = format!(
        "{}/api/v4/projects/{}/packages/generic",
        server.url,
        encoded("acme/app")
    );
    for path in [
        "tool/1.0/..",
        "tool/1.0/%2e%2e",
        "tool/1.0/%2e%2e%2fescape",
        "tool/1.0/a%2fb",
        "tool/..%2f..%2f1.0/f",
        "%2e%2e/1.0/f",
        "tool/1.0/%00",
        "tool/1.0/.hidden",
        "tool/1.0/%2fetc%2fpasswd",
    ] {
        let a = put(&format!("{base}/{path}"), Cred::DeployToken(&rw), b"evil");
        assert!(
            a.status == 400 || a.status == 404,
            "{path}: {a:?} (a traversal must never be stored)"
        );
        assert!(a.status < 500, "{path}: {a:?}");
    }
    // Over the limit: 413, announced or not.
    let url = format!("{base}/tool/1.0/big.bin");
    let big = vec![b'x'; 2048];
    let a = put(&url, Cred::DeployToken(&rw), &big);
    assert_eq!(a.status, 413, "{a:?}");
    let chunked = answer(
        agent()
            .put(&url)
            .set("Deploy-Token", &rw.secret)
            .set("Transfer-Encoding", "chunked")
            .send(std::io::Cursor::new(big.clone())),
    );
    assert_eq!(chunked.status, 413, "{chunked:?}");
    // An empty file is refused too.
    assert_eq!(put(&url, Cred::DeployToken(&rw), b"").status, 400);

    // Nothing anywhere: no blob, no staging file, no row, no audit event.
    assert!(files_below(&env.data_dir().join("packages")).is_empty());
    assert!(audit(&env, "package_published").is_empty());
    assert_eq!(get(&url, Cred::DeployToken(&rw)).status, 404);
    assert_eq!(put(&url, Cred::DeployToken(&rw), b"ok").status, 201);
}

/// The Packages API (GitLab's shapes): reporters list, maintainers delete, others see 404;
/// deploy tokens never open it.
#[test]
fn packages_api_lists_and_deletes_by_role() {
    let env = env();
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    env.user("rita", None);
    env.user("max", None);
    env.user("stranger", None);
    env.member("rita", &["--project", "acme/app"], "reporter");
    env.member("max", &["--project", "acme/app"], "maintainer");
    let rita = env.pat("rita", "api");
    let max = env.pat("max", "api");
    let stranger = env.pat("stranger", "api");
    let server = env.serve(&[]);
    let body = b"0123456789".to_vec();
    let url = generic_url(&server, "acme/app", "tool", "1.0.0", "tool.bin");
    assert_eq!(put(&url, Cred::DeployToken(&rw), &body).status, 201);

    let list_url = format!("{}/api/v4/projects/acme%2Fapp/packages", server.url);
    let private = |t: &Token| format!("Bearer {}", t.secret);
    let listed = get(&list_url, Cred::Raw(&private(&rita)));
    assert_eq!(listed.status, 200, "{listed:?}");
    let list = listed.json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let package = &list[0];
    assert_eq!(package["name"], "tool");
    assert_eq!(package["version"], "1.0.0");
    assert_eq!(package["package_type"], "generic");
    assert_eq!(package["status"], "default");
    assert_eq!(package["size"], 10);
    assert_eq!(package["files"][0]["file_sha256"], hex_sha256(&body));
    let id = package["id"].as_i64().expect("id");
    let one = format!("{list_url}/{id}");
    assert_eq!(get(&one, Cred::Raw(&private(&rita))).json()["id"], id);
    assert_eq!(get(&list_url, Cred::Raw(&private(&stranger))).status, 404);
    assert_eq!(get(&list_url, Cred::DeployToken(&rw)).status, 401);
    assert_eq!(
        get(&format!("{list_url}/x"), Cred::Raw(&private(&max))).status,
        400
    );

    let delete = |t: &Token| {
        answer(
            agent()
                .delete(&one)
                .set("Authorization", &private(t))
                .call(),
        )
    };
    assert_eq!(delete(&rita).status, 403);
    assert_eq!(delete(&stranger).status, 404);
    assert_eq!(delete(&max).status, 204);
    assert_eq!(delete(&max).status, 404);
    assert_eq!(get(&url, Cred::DeployToken(&rw)).status, 404);
    assert!(files_below(&env.data_dir().join("packages/blobs")).is_empty());
    let deleted = audit(&env, "package_deleted");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert_eq!(deleted[0]["actor"], "max");
}

/// Sends the head of a request and `part` of its body, then leaves the connection open.
fn start_upload(
    server: &Server,
    path: &str,
    token: &Token,
    length: usize,
    part: &[u8],
) -> std::net::TcpStream {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nDeploy-Token: {}\r\nContent-Length: {length}\r\n\r\n",
        token.secret
    )
    .expect("head");
    stream.write_all(part).expect("part");
    stream.flush().expect("flush");
    stream
}

/// Waits (bounded) until the server has staged the first bytes of an upload.
fn wait_for_staging(env: &Env) {
    let staging = env.data_dir().join("packages/staging");
    for _ in 0..100 {
        if files_below(&staging)
            .iter()
            .any(|f| std::fs::metadata(f).map(|m| m.len() > 0).unwrap_or(false))
        {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the upload never reached the staging directory");
}

/// SPEC §7 "nothing half-written stays": a client that vanishes mid-upload, and a server
/// killed with SIGKILL mid-upload, leave no blob and no row; the next upload works.
#[test]
fn interrupted_uploads_leave_no_file_and_no_row() {
    let env = env();
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let path = "/api/v4/projects/acme%2Fapp/packages/generic/tool/1.0.0/big.bin";
    let part = vec![b'a'; 256 * 1024];

    // The client goes away: the staging file goes with the request.
    let server = env.serve(&[]);
    let stream = start_upload(&server, path, &rw, 4 << 20, &part);
    wait_for_staging(&env);
    drop(stream);
    let staging = env.data_dir().join("packages/staging");
    for _ in 0..100 {
        if files_below(&staging).is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        files_below(&staging).is_empty(),
        "a staging file outlived its request"
    );

    // The server is killed mid-upload.
    let _stream = start_upload(&server, path, &rw, 4 << 20, &part);
    wait_for_staging(&env);
    drop(server); // SIGKILL
    assert!(files_below(&env.data_dir().join("packages/blobs")).is_empty());
    let server = env.serve(&[]);
    let url = format!("{}{path}", server.url);
    assert_eq!(get(&url, Cred::DeployToken(&rw)).status, 404);
    assert!(audit(&env, "package_published").is_empty());
    assert!(files_below(&env.data_dir().join("packages/blobs")).is_empty());
    // What the killed process left is only ever in staging/, never served, and the next
    // upload of the same file succeeds.
    assert_eq!(put(&url, Cred::DeployToken(&rw), b"complete").status, 201);
    assert_eq!(get(&url, Cred::DeployToken(&rw)).body, "complete");
}

/// Wrong checksums and malformed metadata in PyPI and npm uploads: 400, nothing kept.
#[test]
fn bad_checksums_and_metadata_keep_nothing() {
    use base64::Engine;
    let env = env();
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let server = env.serve(&[]);
    let pypi = format!("{}/api/v4/projects/acme%2Fapp/packages/pypi", server.url);
    let multipart = |fields: &[(&str, &str)], file: Option<(&str, &[u8])>| {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--XX\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((filename, content)) = file {
            body.extend_from_slice(
                format!(
                    "--XX\r\nContent-Disposition: form-data; name=\"content\"; filename=\"{filename}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XX--\r\n");
        answer(
            agent()
                .post(&pypi)
                .set("Authorization", &basic("__token__", &rw.secret))
                .set("Content-Type", "multipart/form-data; boundary=XX")
                .send_bytes(&body),
        )
    };
    let base = [
        (":action", "file_upload"),
        ("name", "demo"),
        ("version", "1.0"),
    ];
    let zeros = "0".repeat(64);
    let wrong_digest = [base.as_slice(), &[("sha256_digest", zeros.as_str())]].concat();
    for (fields, file, what) in [
        (
            wrong_digest.clone(),
            Some(("demo-1.0.tar.gz", &b"sdist"[..])),
            "wrong sha256",
        ),
        (base.to_vec(), None, "no file"),
        (
            base[..2].to_vec(),
            Some(("demo-1.0.tar.gz", &b"sdist"[..])),
            "no version",
        ),
        (
            base.to_vec(),
            Some(("../demo-1.0.tar.gz", &b"sdist"[..])),
            "traversal",
        ),
        (
            [base.as_slice(), &[("name", "bad name!")]].concat(),
            Some(("demo-1.0.tar.gz", &b"sdist"[..])),
            "bad name",
        ),
    ] {
        let a = multipart(&fields, file);
        assert_eq!(a.status, 400, "{what}: {a:?}");
    }
    let garbage = answer(
        agent()
            .post(&pypi)
            .set("Authorization", &basic("__token__", &rw.secret))
            .set("Content-Type", "multipart/form-data; boundary=XX")
            .send_bytes(b"--XX\r\nnot a part"),
    );
    assert_eq!(garbage.status, 400, "{garbage:?}");

    let npm = format!(
        "{}/api/v4/projects/acme%2Fapp/packages/npm/@acme%2fapp",
        server.url
    );
    let tarball = b"not really a tarball".to_vec();
    let data = base64::engine::general_purpose::STANDARD.encode(&tarball);
    let publish = |shasum: &str, body_name: &str, data: &str| {
        let doc = serde_json::json!({
            "_id": body_name, "name": body_name,
            "dist-tags": { "latest": "1.0.0" },
            "versions": { "1.0.0": { "name": body_name, "version": "1.0.0",
                "dist": { "shasum": shasum, "tarball": "http://x/y.tgz" } } },
            "_attachments": { "@acme/app-1.0.0.tgz": {
                "content_type": "application/octet-stream", "data": data, "length": tarball.len() } }
        });
        answer(
            agent()
                .put(&npm)
                .set("Authorization", &format!("Bearer {}", rw.secret))
                .send_json(doc),
        )
    };
    assert_eq!(
        publish(&"0".repeat(40), "@acme/app", &data).status,
        400,
        "wrong shasum"
    );
    assert_eq!(publish("", "@acme/app", &data).status, 400, "no checksum");
    assert_eq!(
        publish("x", "@acme/other", &data).status,
        400,
        "another name"
    );
    assert_eq!(publish("x", "@acme/app", "%%%").status, 400, "not base64");
    let not_json = answer(
        agent()
            .put(&npm)
            .set("Authorization", &format!("Bearer {}", rw.secret))
            .send_string("{not json"),
    );
    assert_eq!(not_json.status, 400, "{not_json:?}");

    assert!(files_below(&env.data_dir().join("packages/blobs")).is_empty());
    assert!(files_below(&env.data_dir().join("packages/staging")).is_empty());
    assert!(audit(&env, "package_published").is_empty());
}
