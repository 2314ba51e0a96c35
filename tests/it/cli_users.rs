//! The people side of the command line (SPEC §5, issue 6): users and passwords,
//! memberships, personal access tokens, the CI variables and the audit log.

use crate::common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::Env;
use serde_json::Value;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A refusal: non-zero exit, nothing on stdout, exactly one line on stderr.
fn refused(env: &Env, args: &[&str]) -> String {
    let out = env.cli(args);
    assert!(
        !out.status.success(),
        "{args:?} succeeded: {}",
        text(&out.stdout)
    );
    assert_eq!(text(&out.stdout), "", "{args:?} printed on stdout");
    let err = text(&out.stderr);
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: not one line:\n{err}"
    );
    err
}

fn with_stdin(env: &Env, args: &[&str], input: &str) -> Output {
    let mut child = env
        .command(&[])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wvs-auth");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// Every byte of the data dir (database, WAL), to look for secrets at rest.
/// Every byte the database holds, wherever it holds them.
fn stored_bytes(env: &Env) -> Vec<u8> {
    env.stored().into_iter().flat_map(|(_, b)| b).collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn env_with_app() -> Env {
    let env = Env::new();
    env.cli_ok(&["group", "create", "acme"]);
    env.cli_ok(&["project", "create", "acme/app"]);
    env
}

#[test]
fn users_are_created_with_argon2_hashed_passwords() {
    let env = env_with_app();
    let out = with_stdin(
        &env,
        &["user", "create", "alice", "--password-stdin"],
        "s3cret-horse-battery\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    env.cli_ok(&["user", "create", "root", "--admin"]);
    let list: Value = serde_json::from_str(&env.cli_ok(&["user", "list", "--json"])).expect("json");
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(list[0]["admin"], false);
    assert_eq!(list[1]["admin"], true);
    let bytes = stored_bytes(&env);
    assert!(contains(&bytes, "$argon2id$"), "no argon2id hash stored");
    assert!(
        !contains(&bytes, "s3cret-horse-battery"),
        "password stored in clear"
    );

    refused(&env, &["user", "create", "alice"]);
    refused(&env, &["user", "create", "ALICE"]);
    refused(&env, &["user", "create", "bad name"]);
    refused(&env, &["user", "create", "wvs+deploy-token-1"]);
    let short = with_stdin(
        &env,
        &["user", "create", "bob", "--password-stdin"],
        "short\n",
    );
    assert!(!short.status.success());
    assert!(text(&short.stderr).contains("8"), "{}", text(&short.stderr));
}

#[test]
fn memberships_are_added_changed_and_removed() {
    let env = env_with_app();
    env.cli_ok(&["user", "create", "alice"]);
    let added = env.cli_ok(&[
        "user",
        "add-member",
        "alice",
        "--group",
        "acme",
        "--role",
        "developer",
    ]);
    assert!(added.contains("developer"), "{added}");
    let changed = env.cli_ok(&[
        "user",
        "add-member",
        "alice",
        "--group",
        "acme",
        "--role",
        "owner",
    ]);
    assert!(changed.contains("from developer to owner"), "{changed}");
    env.cli_ok(&[
        "user",
        "add-member",
        "alice",
        "--project",
        "acme/app",
        "--role",
        "reporter",
    ]);
    env.cli_ok(&["user", "remove-member", "alice", "--project", "acme/app"]);
    refused(
        &env,
        &["user", "remove-member", "alice", "--project", "acme/app"],
    );
    refused(
        &env,
        &[
            "user",
            "add-member",
            "alice",
            "--group",
            "acme",
            "--role",
            "admin",
        ],
    );
    refused(
        &env,
        &[
            "user",
            "add-member",
            "nobody",
            "--group",
            "acme",
            "--role",
            "guest",
        ],
    );
    refused(
        &env,
        &[
            "user",
            "add-member",
            "alice",
            "--group",
            "nope",
            "--role",
            "guest",
        ],
    );
    refused(&env, &["user", "add-member", "alice", "--role", "guest"]);
}

#[test]
fn personal_access_tokens_are_strong_prefixed_and_digest_only() {
    let env = env_with_app();
    env.cli_ok(&["user", "create", "alice"]);
    let v: Value = serde_json::from_str(&env.cli_ok(&[
        "user",
        "token",
        "create",
        "alice",
        "--name",
        "laptop",
        "--scopes",
        "read_registry,api",
        "--json",
    ]))
    .expect("json");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["expires_at", "id", "name", "scopes", "token"]);
    let secret = v["token"].as_str().expect("token");
    assert!(secret.starts_with("wvspat-"), "{secret}");
    // 24 random bytes in URL-safe base64: 192 bits.
    assert_eq!(secret.len(), "wvspat-".len() + 32);
    assert_eq!(v["scopes"], serde_json::json!(["api", "read_registry"]));
    assert!(
        !contains(&stored_bytes(&env), secret),
        "PAT stored in clear"
    );

    refused(
        &env,
        &[
            "user",
            "token",
            "create",
            "alice",
            "--name",
            "x",
            "--scopes",
            "read_package_registry",
        ],
    );
    refused(
        &env,
        &[
            "user",
            "token",
            "create",
            "alice",
            "--name",
            "x",
            "--expires-at",
            "2001-01-01",
        ],
    );
    refused(&env, &["user", "token", "create", "nobody", "--name", "x"]);
    env.cli_ok(&["user", "token", "revoke", &v["id"].to_string()]);
    refused(&env, &["user", "token", "revoke", &v["id"].to_string()]);
}

#[test]
fn ci_variables_expose_only_the_active_project_wvs_deploy_token() {
    let env = env_with_app();
    // Nothing yet: success, empty stdout, a note on stderr.
    let none = env.cli(&["ci", "variables", "--project", "acme/app"]);
    assert!(none.status.success());
    assert_eq!(text(&none.stdout), "");

    // A group token of that name is never exposed, nor a project token of another name.
    env.cli_ok(&[
        "token",
        "create",
        "--group",
        "acme",
        "--name",
        "wvs-deploy-token",
        "--scopes",
        "read_registry",
    ]);
    env.cli_ok(&[
        "token",
        "create",
        "--project",
        "acme/app",
        "--name",
        "other",
        "--scopes",
        "read_registry",
    ]);
    assert_eq!(
        env.cli_ok(&["ci", "variables", "--project", "acme/app"]),
        ""
    );

    let out = env.cli_ok(&[
        "token",
        "create",
        "--project",
        "acme/app",
        "--name",
        "wvs-deploy-token",
        "--scopes",
        "read_registry,read_repository",
        "--username",
        "ci-bot",
        "--json",
    ]);
    let token: Value = serde_json::from_str(&out).expect("json");
    let secret = token["token"].as_str().expect("secret");
    let vars = env.cli_ok(&["ci", "variables", "--project", "acme/app"]);
    assert_eq!(
        vars,
        format!("CI_DEPLOY_USER=ci-bot\nCI_DEPLOY_PASSWORD={secret}\n")
    );
    // Sealed, not stored in clear; the seal key lives in the keys dir, 0600.
    assert!(
        !contains(&stored_bytes(&env), secret),
        "CI secret stored in clear"
    );
    let key = env.keys_dir().join("ci-seal.key");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key)
        .expect("seal key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    env.cli_ok(&["token", "revoke", &token["id"].to_string()]);
    assert_eq!(
        env.cli_ok(&["ci", "variables", "--project", "acme/app"]),
        ""
    );
    refused(&env, &["ci", "variables", "--project", "acme/nope"]);
    refused(&env, &["ci", "variables", "--project", "Bad Path"]);
}

#[test]
fn audit_lists_creation_and_revocation_with_actor() {
    let env = env_with_app();
    let t = env.token(&["--project", "acme/app"], "read_registry", &[]);
    env.cli_ok(&["token", "revoke", &t.id.to_string()]);
    let events: Value = serde_json::from_str(&env.cli_ok(&["audit", "--json"])).expect("json");
    let events = events.as_array().expect("array");
    // The group and project the fixture made come first (SPEC §5: every change).
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        actions,
        [
            "group_created",
            "project_created",
            "deploy_token_created",
            "deploy_token_revoked"
        ]
    );
    let token_events: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["action"]
                .as_str()
                .is_some_and(|a| a.starts_with("deploy_token"))
        })
        .collect();
    assert_eq!(token_events.len(), 2);
    for e in token_events {
        assert_eq!(e["actor"], "cli");
        assert_eq!(e["deploy_token_id"], t.id);
        assert_eq!(e["target"], "acme/app");
    }
    let plain = env.cli_ok(&["audit"]);
    assert_eq!(plain.lines().count(), 4, "{plain}");
    assert!(!plain.contains(&t.secret));
    assert_eq!(
        env.cli_ok(&["audit", "--since", "2999-01-01T00:00:00Z"]),
        ""
    );
    assert_eq!(
        env.cli_ok(&["audit", "--since", "2000-01-01T00:00:00Z"])
            .lines()
            .count(),
        4
    );
    refused(&env, &["audit", "--since", "yesterday"]);
}

/// SPEC §5: every management change is an event, committed with the change; a refused
/// change writes none.
#[test]
fn every_management_change_is_audited() {
    let env = env_with_app();
    env.cli_ok(&["group", "update", "acme", "--dependency-proxy", "on"]);
    env.cli_ok(&["user", "create", "alice"]);
    env.cli_ok(&[
        "user",
        "add-member",
        "alice",
        "--project",
        "acme/app",
        "--role",
        "developer",
    ]);
    env.cli_ok(&[
        "user",
        "add-member",
        "alice",
        "--project",
        "acme/app",
        "--role",
        "maintainer",
    ]);
    env.cli_ok(&["user", "remove-member", "alice", "--project", "acme/app"]);
    let pat: Value = serde_json::from_str(&env.cli_ok(&[
        "user", "token", "create", "alice", "--name", "laptop", "--json",
    ]))
    .expect("json");
    let pat_id = pat["id"].as_i64().expect("id");
    env.cli_ok(&["user", "token", "revoke", &pat_id.to_string()]);
    // Refused changes leave nothing behind.
    refused(
        &env,
        &["user", "remove-member", "alice", "--project", "acme/app"],
    );
    refused(&env, &["user", "token", "revoke", &pat_id.to_string()]);
    refused(&env, &["group", "create", "acme"]);

    let events: Value = serde_json::from_str(&env.cli_ok(&["audit", "--json"])).expect("json");
    let events = events.as_array().expect("array");
    let seen: Vec<(&str, &str)> = events
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or(""),
                e["target"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("group_created", "acme"),
            ("project_created", "acme/app"),
            ("group_updated", "acme"),
            ("user_created", "alice"),
            ("member_added", "acme/app"),
            ("member_updated", "acme/app"),
            ("member_removed", "acme/app"),
            ("pat_created", "alice"),
            ("pat_revoked", "alice"),
        ],
        "{events:?}"
    );
    for e in events {
        assert_eq!(e["actor"], "cli", "{e}");
    }
    let detail = |action: &str| {
        events
            .iter()
            .find(|e| e["action"] == action)
            .and_then(|e| e["detail"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    assert!(detail("member_updated").contains("role=maintainer was=developer"));
    assert!(detail("pat_created").contains(&format!("pat={pat_id}")));
    assert!(!env
        .cli_ok(&["audit"])
        .contains(pat["token"].as_str().unwrap_or("?")));
}

#[test]
fn first_use_and_failed_logins_reach_the_audit_log() {
    use base64::Engine;
    use std::time::{Duration, Instant};
    let env = env_with_app();
    env.cli_ok(&["keys", "init"]);
    let t = env.token(&["--project", "acme/app"], "read_registry", &[]);
    let server = env.serve(&[]);
    let url = format!(
        "{}/jwt/auth?service=container_registry&scope=repository:acme/app:pull",
        server.url
    );
    let basic = |user: &str, secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
        )
    };
    for _ in 0..3 {
        let r = ureq::get(&url)
            .set("Authorization", &basic(&t.username, &t.secret))
            .call();
        assert_eq!(r.map(|r| r.status()).ok(), Some(200));
    }
    let r = ureq::get(&url)
        .set(
            "Authorization",
            &basic("intruder", "wvsdt-not-a-real-token"),
        )
        .call();
    assert!(matches!(r, Err(ureq::Error::Status(401, _))));

    // Uses are written in batches (every 100 ms under the test harness).
    let start = Instant::now();
    let events = loop {
        let v: Value = serde_json::from_str(&env.cli_ok(&["audit", "--json"])).expect("json");
        let done = v
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["action"] == "deploy_token_first_used"));
        if done || start.elapsed() > Duration::from_secs(10) {
            break v;
        }
        std::thread::sleep(Duration::from_millis(250));
    };
    let events = events.as_array().expect("array");
    let of = |action: &str| {
        events
            .iter()
            .filter(|e| e["action"] == action)
            .collect::<Vec<_>>()
    };
    let first = of("deploy_token_first_used");
    assert_eq!(first.len(), 1, "{events:?}");
    assert_eq!(first[0]["deploy_token_id"], t.id);
    assert_eq!(first[0]["actor"], t.username.as_str());
    let failures = of("auth_failure");
    assert_eq!(failures.len(), 1, "{events:?}");
    assert_eq!(failures[0]["actor"], "intruder");
    assert!(failures[0]["detail"]
        .as_str()
        .unwrap_or("")
        .contains("127.0.0.1"));
    // Two more uses later: still one first-use event. A second token used after them
    // shows when a flush has written them: a batch holds every use made before it.
    let r = ureq::get(&url)
        .set("Authorization", &basic(&t.username, &t.secret))
        .call();
    assert_eq!(r.map(|r| r.status()).ok(), Some(200));
    let marker = env.token(&["--project", "acme/app"], "read_registry", &[]);
    let r = ureq::get(&url)
        .set("Authorization", &basic(&marker.username, &marker.secret))
        .call();
    assert_eq!(r.map(|r| r.status()).ok(), Some(200));
    let start = Instant::now();
    let again = loop {
        let again = env.cli_ok(&["audit"]);
        if again.matches("deploy_token_first_used").count() >= 2
            || start.elapsed() > Duration::from_secs(10)
        {
            break again;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        again.matches("deploy_token_first_used").count(),
        2,
        "one first use of each token: {again}"
    );
    assert!(!again.contains(&t.secret));
}
