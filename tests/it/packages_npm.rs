//! npm with the real client: `npm publish` with a deploy token, `npm install` from the
//! project, group and instance endpoints (tarball URLs keep the prefix npm authenticated
//! against), `npm dist-tag` add/ls/rm with deploy tokens, a version published twice refused,
//! and `npm unpublish`. Packages are made by the test; nothing reaches npmjs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;
use crate::packages::{get, Cred};
use common::{have, Env, Server, Token};

struct Npm<'a> {
    env: &'a Env,
    server: &'a Server,
}

impl Npm<'_> {
    /// An `.npmrc` sending `@acme` to `prefix` with `token` (for that prefix only).
    fn config(&self, name: &str, prefix: &str, token: &Token) -> PathBuf {
        let host = self.server.url.trim_start_matches("http://");
        let path = self.env.path(name);
        std::fs::write(
            &path,
            format!(
                "@acme:registry={}{prefix}\n//{host}{prefix}:_authToken={}\n",
                self.server.url, token.secret
            ),
        )
        .expect("write npmrc");
        path
    }

    fn run(&self, dir: &Path, npmrc: &Path, args: &[&str]) -> Output {
        std::fs::create_dir_all(dir).expect("dir");
        Command::new("npm")
            .args(args)
            .arg("--userconfig")
            .arg(npmrc)
            .args(["--cache"])
            .arg(self.env.path("npm-cache"))
            .args(["--no-audit", "--no-fund", "--no-update-notifier"])
            .current_dir(dir)
            .env("HOME", self.env.path("home"))
            .env("NO_COLOR", "1")
            .env_remove("NPM_CONFIG_REGISTRY")
            .output()
            .expect("npm runs")
    }
}

fn ok(out: &Output, what: &str) -> String {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed: {said}");
    said
}

fn package(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(
        dir.join("package.json"),
        format!(
            r#"{{"name":"@acme/app","version":"{version}","main":"index.js","license":"MIT"}}"#
        ),
    )
    .expect("package.json");
    std::fs::write(
        dir.join("index.js"),
        format!("module.exports = {version:?};\n"),
    )
    .expect("index.js");
}

#[test]
fn npm_publishes_installs_tags_and_unpublishes_with_deploy_tokens() {
    assert!(
        have("npm"),
        "npm is not on PATH (it comes with the machine's Node)"
    );
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["project", "create", "acme/app"],
    ] {
        env.cli_ok(args);
    }
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let group_read = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let server = env.serve(&[]);
    std::fs::create_dir_all(env.path("home")).expect("home");
    let npm = Npm {
        env: &env,
        server: &server,
    };
    let project_prefix = "/api/v4/projects/acme%2Fapp/packages/npm/";
    let project_rc = npm.config("project.npmrc", project_prefix, &rw);

    let src = env.path("src");
    package(&src, "1.0.0");
    ok(
        &npm.run(&src, &project_rc, &["publish"]),
        "npm publish 1.0.0",
    );
    // Publishing the same version again is refused.
    let again = npm.run(&src, &project_rc, &["publish"]);
    assert!(!again.status.success(), "republished: {again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("403"),
        "{again:?}"
    );
    package(&src, "1.1.0");
    ok(
        &npm.run(&src, &project_rc, &["publish"]),
        "npm publish 1.1.0",
    );

    // Installs from every level, each with the token configured for its prefix only.
    for (n, prefix, token) in [
        (1, project_prefix, &rw),
        (2, "/api/v4/groups/acme/-/packages/npm/", &group_read),
        (3, "/api/v4/packages/npm/", &group_read),
    ] {
        let rc = npm.config(&format!("level{n}.npmrc"), prefix, token);
        let dir = env.path(&format!("app{n}"));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(
            dir.join("package.json"),
            r#"{"name":"consumer","version":"1.0.0"}"#,
        )
        .expect("package.json");
        ok(
            &npm.run(&dir, &rc, &["install", "@acme/app@1.0.0"]),
            &format!("install from {prefix}"),
        );
        let installed = std::fs::read_to_string(dir.join("node_modules/@acme/app/index.js"))
            .expect("installed");
        assert!(installed.contains("1.0.0"), "{installed}");
        // The packument's tarball URLs stay under the prefix it was fetched from.
        let doc = get(
            &format!("{}{prefix}@acme%2fapp", server.url),
            Cred::Bearer(token),
        )
        .json();
        let tarball = doc["versions"]["1.0.0"]["dist"]["tarball"]
            .as_str()
            .expect("tarball")
            .to_string();
        assert!(
            tarball.starts_with(&format!("{}{prefix}", server.url)),
            "{tarball}"
        );
        assert_eq!(doc["dist-tags"]["latest"], "1.1.0", "{doc}");
    }

    // dist-tags with the deploy token.
    ok(
        &npm.run(
            &src,
            &project_rc,
            &["dist-tag", "add", "@acme/app@1.0.0", "stable"],
        ),
        "dist-tag add",
    );
    let tags = ok(
        &npm.run(&src, &project_rc, &["dist-tag", "ls", "@acme/app"]),
        "dist-tag ls",
    );
    assert!(tags.contains("stable: 1.0.0"), "{tags}");
    assert!(tags.contains("latest: 1.1.0"), "{tags}");
    ok(
        &npm.run(
            &src,
            &project_rc,
            &["dist-tag", "rm", "@acme/app", "stable"],
        ),
        "dist-tag rm",
    );
    let tags = ok(
        &npm.run(&src, &project_rc, &["dist-tag", "ls", "@acme/app"]),
        "dist-tag ls",
    );
    assert!(!tags.contains("stable"), "{tags}");
    // A read-only token cannot move tags.
    let read_rc = npm.config("read.npmrc", project_prefix, &group_read);
    let refused = npm.run(&src, &read_rc, &["dist-tag", "add", "@acme/app@1.0.0", "x"]);
    assert!(!refused.status.success(), "{refused:?}");

    // Unpublish one version, then the package.
    ok(
        &npm.run(
            &src,
            &project_rc,
            &["unpublish", "@acme/app@1.0.0", "--force"],
        ),
        "unpublish 1.0.0",
    );
    let doc = get(
        &format!("{}{project_prefix}@acme%2fapp", server.url),
        Cred::Bearer(&rw),
    )
    .json();
    assert!(doc["versions"]["1.0.0"].is_null(), "{doc}");
    assert!(doc["versions"]["1.1.0"].is_object(), "{doc}");
    ok(
        &npm.run(&src, &project_rc, &["unpublish", "@acme/app", "--force"]),
        "unpublish all",
    );
    let gone = get(
        &format!("{}{project_prefix}@acme%2fapp", server.url),
        Cred::Bearer(&rw),
    );
    assert_eq!(gone.status, 404, "{gone:?}");
    let deleted: serde_json::Value =
        serde_json::from_str(&env.cli_ok(&["audit", "--json"])).expect("json");
    let deleted = deleted
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["action"] == "package_deleted")
        .count();
    assert_eq!(deleted, 2);
}
