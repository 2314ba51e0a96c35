//! The Cargo registry with the real client: `cargo publish` of a crate made here with a
//! deploy token, then `cargo build` of a second crate depending on it (project and group
//! tokens), each with its own `CARGO_HOME` and `credential-provider = ["cargo:token"]`; a
//! read-only token builds but cannot publish; a version published twice is refused;
//! `cargo yank` hides a version from new resolutions and `--undo` brings it back. Nothing
//! reaches crates.io: neither crate has a dependency there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;
use crate::packages::{files_below, get, put, Cred};
use common::{have, Env, Server, Token};

struct Cargo<'a> {
    env: &'a Env,
    index: String,
}

impl Cargo<'_> {
    /// A fresh `CARGO_HOME` naming the registry `wvs`, so no index cache is shared.
    fn home(&self, name: &str) -> PathBuf {
        let home = self.env.path(name);
        std::fs::create_dir_all(&home).expect("cargo home");
        std::fs::write(
            home.join("config.toml"),
            format!(
                "[registries.wvs]\nindex = \"{}\"\ncredential-provider = [\"cargo:token\"]\n",
                self.index
            ),
        )
        .expect("config.toml");
        home
    }

    /// `cargo ARGS` in `dir` with `token` as the registry's token (`as_sent` is the string
    /// Cargo puts in `Authorization`: bare or with `Bearer`).
    fn run(&self, home: &Path, dir: &Path, token: &str, args: &[&str]) -> Output {
        Command::new("cargo")
            .args(args)
            .current_dir(dir)
            .env("CARGO_HOME", home)
            .env("CARGO_TARGET_DIR", self.env.path("target"))
            .env("CARGO_REGISTRIES_WVS_TOKEN", token)
            .env("CARGO_TERM_COLOR", "never")
            .env_remove("CARGO_REGISTRY_TOKEN")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_BUILD_TARGET")
            .output()
            .expect("cargo runs")
    }
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output, what: &str) -> String {
    let text = said(out);
    assert!(out.status.success(), "{what} failed: {text}");
    text
}

/// The library crate `wvs_demo` at `version`, answering `answer`.
fn library(dir: &Path, version: &str, answer: u32) {
    std::fs::create_dir_all(dir.join("src")).expect("src");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"wvs_demo\"\nversion = \"{version}\"\nedition = \"2021\"\n\
             license = \"MIT\"\ndescription = \"made by the test\"\npublish = [\"wvs\"]\n\n\
             [features]\ndefault = []\nextra = []\n\n[workspace]\n"
        ),
    )
    .expect("Cargo.toml");
    std::fs::write(
        dir.join("src/lib.rs"),
        format!("pub fn answer() -> u32 {{\n    {answer}\n}}\n"),
    )
    .expect("lib.rs");
}

/// A binary crate depending on `wvs_demo` from the registry `wvs`.
fn consumer(dir: &Path, req: &str) {
    std::fs::create_dir_all(dir.join("src")).expect("src");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"consumer\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             publish = false\n\n[dependencies]\nwvs_demo = {{ version = \"{req}\", \
             registry = \"wvs\" }}\n\n[workspace]\n"
        ),
    )
    .expect("Cargo.toml");
    std::fs::write(
        dir.join("src/main.rs"),
        "fn main() {\n    println!(\"answer={}\", wvs_demo::answer());\n}\n",
    )
    .expect("main.rs");
}

fn publish(cargo: &Cargo, home: &Path, src: &Path, token: &str) -> Output {
    cargo.run(
        home,
        src,
        token,
        &[
            "publish",
            "--registry",
            "wvs",
            "--no-verify",
            "--allow-dirty",
        ],
    )
}

#[test]
fn cargo_publishes_builds_and_yanks_with_deploy_tokens() {
    assert!(have("cargo"), "cargo is not on PATH");
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["project", "create", "acme/app"],
    ] {
        env.cli_ok(args);
    }
    let rw: Token = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let ro = env.token(&["--project", "acme/app"], "read_package_registry", &[]);
    let group_read = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let server: Server = env.serve(&[]);
    let prefix = "/api/v4/projects/acme%2Fapp/packages/cargo";
    let cargo = Cargo {
        env: &env,
        index: format!("sparse+{}{prefix}/index/", server.url),
    };

    // Publish 0.1.0 (the token with `Bearer`, as Cargo's docs suggest) and 0.2.0 (bare).
    let src = env.path("src");
    library(&src, "0.1.0", 1);
    let publisher = cargo.home("home-publisher");
    ok(
        &publish(&cargo, &publisher, &src, &format!("Bearer {}", rw.secret)),
        "cargo publish 0.1.0",
    );
    let again = publish(&cargo, &publisher, &src, &rw.secret);
    assert!(!again.status.success(), "republished: {}", said(&again));
    assert!(said(&again).contains("already"), "{}", said(&again));
    library(&src, "0.2.0", 2);
    ok(
        &publish(&cargo, &publisher, &src, &rw.secret),
        "cargo publish 0.2.0",
    );

    // A read-only token cannot publish: Cargo shows the 403 and our detail.
    library(&src, "0.3.0", 3);
    let refused = publish(&cargo, &cargo.home("home-ro-publish"), &src, &ro.secret);
    assert!(
        !refused.status.success(),
        "read-only published: {}",
        said(&refused)
    );
    assert!(said(&refused).contains("403"), "{}", said(&refused));

    // The project's read-only token and the group's token build the consumer.
    for (n, token) in [(1, &ro), (2, &group_read)] {
        let dir = env.path(&format!("consumer{n}"));
        consumer(&dir, "0.2");
        let home = cargo.home(&format!("home-consumer{n}"));
        let out = ok(
            &cargo.run(&home, &dir, &token.secret, &["run", "--quiet"]),
            &format!("cargo run with token {n}"),
        );
        assert!(out.contains("answer=2"), "{out}");
    }

    // Yanked: a new resolution of `0.1` finds nothing; the version is still downloadable.
    let yank = |undo: bool| {
        let mut args = vec!["yank", "--version", "0.1.0", "--registry", "wvs"];
        if undo {
            args.push("--undo");
        }
        cargo.run(&publisher, &src, &rw.secret, &args)
    };
    let by_reader = cargo.run(
        &cargo.home("home-ro-yank"),
        &src,
        &ro.secret,
        &["yank", "--version", "0.1.0", "--registry", "wvs"],
    );
    assert!(!by_reader.status.success(), "{}", said(&by_reader));
    ok(&yank(false), "cargo yank");
    let dir = env.path("consumer-yanked");
    consumer(&dir, "=0.1.0");
    let hidden = cargo.run(
        &cargo.home("home-yanked"),
        &dir,
        &ro.secret,
        &["build", "--quiet"],
    );
    assert!(!hidden.status.success(), "built a yanked version");
    assert!(said(&hidden).contains("yanked"), "{}", said(&hidden));
    ok(&yank(true), "cargo yank --undo");
    let out = ok(
        &cargo.run(
            &cargo.home("home-unyanked"),
            &dir,
            &ro.secret,
            &["run", "--quiet"],
        ),
        "cargo run after unyank",
    );
    assert!(out.contains("answer=1"), "{out}");
}

#[test]
fn cargo_routes_answer_in_cargo_s_shape() {
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["project", "create", "acme/app"],
        &["project", "create", "acme/pub", "--visibility", "public"],
    ] {
        env.cli_ok(args);
    }
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let server = env.serve(&[]);
    let base = format!("{}/api/v4/projects/acme%2Fapp/packages/cargo", server.url);

    // config.json: a challenge without a token, Cargo's links with one.
    let anon = get(&format!("{base}/index/config.json"), Cred::None);
    assert_eq!(anon.status, 401);
    assert!(anon.header("www-authenticate").is_some());
    assert!(
        anon.json()["errors"][0]["detail"].is_string(),
        "{}",
        anon.body
    );
    let config = get(&format!("{base}/index/config.json"), Cred::Raw(&rw.secret));
    assert_eq!(config.status, 200, "{}", config.body);
    let config = config.json();
    assert_eq!(config["api"], base.as_str());
    assert_eq!(config["dl"], format!("{base}/api/v1/crates").as_str());
    assert_eq!(config["auth-required"], true);
    let public = get(
        &format!(
            "{}/api/v4/projects/acme%2Fpub/packages/cargo/index/config.json",
            server.url
        ),
        Cred::None,
    );
    assert_eq!(public.status, 200, "{}", public.body);
    assert_eq!(public.json()["auth-required"], false);

    // The web API: an invalid token is 403 in Cargo's shape; a bad body is 400.
    let invalid = put(
        &format!("{base}/api/v1/crates/new"),
        Cred::Raw("wvsdt-not-a-real-token-000000000000"),
        b"",
    );
    assert_eq!(invalid.status, 403, "{}", invalid.body);
    assert!(invalid.json()["errors"][0]["detail"].is_string());
    for body in [
        &b""[..],
        &[9, 0, 0, 0, b'{'][..],
        &[2, 0, 0, 0, b'{', b'}'][..],
    ] {
        let bad = put(
            &format!("{base}/api/v1/crates/new"),
            Cred::Raw(&rw.secret),
            body,
        );
        assert_eq!(bad.status, 400, "{body:?}: {}", bad.body);
        assert!(bad.json()["errors"][0]["detail"].is_string());
    }

    // A publish by hand, then its index file with an ETag Cargo revalidates with.
    let krate = b"not really a tarball, but bytes";
    let frame = |meta: &[u8]| {
        let mut body = Vec::new();
        body.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        body.extend_from_slice(meta);
        body.extend_from_slice(&(krate.len() as u32).to_le_bytes());
        body.extend_from_slice(krate);
        body
    };
    let body = frame(br#"{"name":"ab","vers":"1.0.0","deps":[],"features":{}}"#);
    let published = put(
        &format!("{base}/api/v1/crates/new"),
        Cred::Raw(&rw.secret),
        &body,
    );
    assert_eq!(published.status, 200, "{}", published.body);
    let twice = put(
        &format!("{base}/api/v1/crates/new"),
        Cred::Raw(&rw.secret),
        &body,
    );
    assert_eq!(twice.status, 409, "{}", twice.body);
    // The same version with other bytes: refused by the store, and its blob is not kept.
    let blobs = env.data_dir().join("packages/blobs");
    let kept = files_below(&blobs).len();
    let mut other = body.clone();
    let last = other.len() - 1;
    other[last] ^= 0xff;
    let refused = put(
        &format!("{base}/api/v1/crates/new"),
        Cred::Raw(&rw.secret),
        &other,
    );
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(
        files_below(&blobs).len(),
        kept,
        "a refused publish keeps no blob"
    );
    // Build metadata does not make another version (crates.io's rule).
    let rebuilt = put(
        &format!("{base}/api/v1/crates/new"),
        Cred::Raw(&rw.secret),
        &frame(br#"{"name":"ab","vers":"1.0.0+rebuilt","deps":[],"features":{}}"#),
    );
    assert_eq!(rebuilt.status, 409, "{}", rebuilt.body);
    assert!(rebuilt.body.contains("build metadata"), "{}", rebuilt.body);
    let index = get(&format!("{base}/index/2/ab"), Cred::Raw(&rw.secret));
    assert_eq!(index.status, 200, "{}", index.body);
    let line: serde_json::Value =
        serde_json::from_str(index.body.lines().next().unwrap_or_default()).expect("a line");
    assert_eq!(line["vers"], "1.0.0");
    assert_eq!(line["yanked"], false);
    assert_eq!(line["cksum"].as_str().map(str::len), Some(64));
    let etag = index.header("etag").expect("an ETag").to_string();
    let revalidated = crate::common::http::answer(
        crate::common::http::agent()
            .get(&format!("{base}/index/2/ab"))
            .set("Authorization", &rw.secret)
            .set("If-None-Match", &etag)
            .call(),
    );
    assert_eq!(revalidated.status, 304);
    // A path that is not the one Cargo would ask for that name, and unknown crates: 404.
    for path in ["1/ab", "2/zz", "3/a/abc", "ab/cd/../ab"] {
        let missing = get(&format!("{base}/index/{path}"), Cred::Raw(&rw.secret));
        assert_eq!(missing.status, 404, "{path}: {}", missing.body);
    }
    // The download carries the bytes published.
    let file = get(
        &format!("{base}/api/v1/crates/ab/1.0.0/download"),
        Cred::Raw(&rw.secret),
    );
    assert_eq!(file.status, 200);
    assert_eq!(file.body.as_bytes(), krate);
}
