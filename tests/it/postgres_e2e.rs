//! PostgreSQL as the database of several instances (SPEC §5, §7), against Debian's server
//! started by the tests themselves (`common::postgres`): migrations raced by processes
//! starting together, the database restarted under load, and `db copy` from SQLite.
//! These run on PostgreSQL whatever `WVS_TEST_DATABASE` says.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::{agent, answer, pull_answer};
use common::postgres::{self, Cluster};
use common::Env;

/// An installation whose database is `url`.
fn env_on(url: String) -> Env {
    let mut env = Env::sqlite();
    env.database_url = Some(url);
    env
}

fn database_name(url: &str) -> &str {
    url.rsplit('/').next().expect("database name")
}

#[test]
fn processes_starting_together_on_an_empty_database_migrate_it_once() {
    let url = postgres::shared_database();
    let env = env_on(url.clone());
    // Five commands and two servers at once on a database nobody has opened yet.
    let clis: Vec<_> = (0..5)
        .map(|i| {
            env.command(&[])
                .args(["group", "create", &format!("g{i}")])
                .output()
        })
        .collect::<Vec<_>>();
    let a = env.spawn_serve(&[], &[]);
    let b = env.sharing_database().spawn_serve(&[], &[]);
    for (i, out) in clis.into_iter().enumerate() {
        let out = out.expect("run wvs-auth");
        assert!(
            out.status.success(),
            "group create g{i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for server in [&a, &b] {
        common::wait_ready(&format!("{}/-/health", server.url), Duration::from_secs(30));
    }
    let cluster = postgres::shared();
    let versions = cluster
        .psql(database_name(&url), "SELECT version FROM wvs_schema")
        .expect("schema version");
    assert_eq!(versions, "7", "one row, the newest version");
    let groups = env.cli_ok(&["group", "list", "--json"]);
    let groups: serde_json::Value = serde_json::from_str(&groups).expect("json");
    assert_eq!(groups.as_array().map(Vec::len), Some(5), "{groups}");
    assert!(
        !env.data_dir().join("wvs.db").exists(),
        "nothing may be written to a SQLite file when the URL names PostgreSQL"
    );

    // An older binary refuses a newer schema, as with SQLite.
    cluster
        .psql(database_name(&url), "UPDATE wvs_schema SET version = 99")
        .expect("bump");
    let out = env.cli(&["group", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn a_password_in_the_url_is_never_printed() {
    let env = env_on("postgres://wvs:hunter2-secret@127.0.0.1:1/nothing".to_string());
    let out = env.cli(&["group", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("hunter2-secret"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn postgresql_restarted_under_load_gives_503_then_service_resumes_without_a_restart() {
    let cluster = Cluster::start();
    let env = common::with_projects(env_on(cluster.database()));
    let token = env.token(&["--project", "acme/app"], "read_registry", &[]);
    let server = env.serve(&[]);
    assert_eq!(pull_answer(&server.url, &token, "acme/app").status, 200);

    // Pulls go on from two threads the whole time: each answer is 200 or 503, never 500.
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let unavailable = Arc::new(AtomicU64::new(0));
    let load: Vec<_> = (0..2)
        .map(|_| {
            let (stop, ok, unavailable) = (stop.clone(), ok.clone(), unavailable.clone());
            let (url, token) = (server.url.clone(), token.clone());
            std::thread::spawn(move || {
                let mut others = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(120);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let got = pull_answer(&url, &token, "acme/app");
                    match got.status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        503 => unavailable.fetch_add(1, Ordering::Relaxed),
                        _ => {
                            others.push(format!("{} {}", got.status, got.body));
                            0
                        }
                    };
                    std::thread::sleep(Duration::from_millis(20));
                }
                others
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    cluster.stop();
    // While the database is away: token requests 503 with the JSON error shape, health 503.
    let deadline = Instant::now() + Duration::from_secs(30);
    let refused = loop {
        let got = pull_answer(&server.url, &token, "acme/app");
        if got.status == 503 {
            break got;
        }
        assert_eq!(got.status, 200, "{got:?}");
        assert!(
            Instant::now() < deadline,
            "never 503 with the database stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (code, _message) = refused.expect_error(503);
    assert!(!code.is_empty(), "{refused:?}");
    let health = answer(agent().get(&format!("{}/-/health", server.url)).call());
    assert_eq!(health.status, 503, "{health:?}");

    cluster.resume();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = pull_answer(&server.url, &token, "acme/app");
        if got.status == 200 {
            break;
        }
        assert_eq!(got.status, 503, "{got:?}");
        assert!(
            Instant::now() < deadline,
            "no recovery 30 s after PostgreSQL came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let health = answer(agent().get(&format!("{}/-/health", server.url)).call());
    assert_eq!(health.status, 200, "{health:?}");
    // Writes work again too: a token made now is honoured by the same server.
    let fresh = env.token(&["--project", "acme/app"], "read_registry", &[]);
    assert_eq!(pull_answer(&server.url, &fresh, "acme/app").status, 200);

    stop.store(true, Ordering::Relaxed);
    let others: Vec<String> = load
        .into_iter()
        .flat_map(|t| t.join().expect("load thread"))
        .collect();
    assert!(others.is_empty(), "answers other than 200/503: {others:?}");
    assert!(ok.load(Ordering::Relaxed) > 0);
    assert!(unavailable.load(Ordering::Relaxed) > 0);
}

#[test]
fn db_copy_moves_a_sqlite_installation_to_postgresql_and_its_tokens_keep_working() {
    let from = common::with_projects(Env::sqlite());
    let kept = from.token(&["--project", "acme/app"], "read_registry", &[]);
    let group = from.token(&["--group", "acme"], "read_registry", &[]);
    let revoked = from.token(&["--project", "acme/app"], "read_registry", &[]);
    from.cli_ok(&["token", "revoke", &revoked.id.to_string()]);
    from.cli_ok(&["user", "create", "alice", "--admin"]);
    let pat: serde_json::Value = serde_json::from_str(&from.cli_ok(&[
        "user", "token", "create", "alice", "--name", "ci", "--scopes", "api", "--json",
    ]))
    .expect("pat json");
    let audit_before = from.cli_ok(&["audit", "--json"]);
    {
        let server = from.serve(&[]);
        assert_eq!(pull_answer(&server.url, &kept, "acme/app").status, 200);
    }

    let url = postgres::shared_database();
    let out = from.cli_ok(&["db", "copy", "--to", &url]);
    assert!(out.contains("copied"), "{out}");
    // Copying again: the target is no longer empty, and nothing changes.
    let again = from.cli(&["db", "copy", "--to", &url]);
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // The same installation (keys and data dir) on the copy.
    let mut to = Env::sqlite();
    to.dir = from.dir;
    to.database_url = Some(url.clone());
    std::fs::remove_file(to.data_dir().join("wvs.db")).expect("SQLite file gone");
    let server = to.serve(&[]);
    assert_eq!(pull_answer(&server.url, &kept, "acme/app").status, 200);
    assert_eq!(pull_answer(&server.url, &group, "acme/app").status, 200);
    assert_eq!(pull_answer(&server.url, &revoked, "acme/app").status, 401);
    let pat_secret = pat["token"].as_str().expect("pat");
    let who = answer(
        agent()
            .get(&format!("{}/api/v4/deploy_tokens", server.url))
            .set("PRIVATE-TOKEN", pat_secret)
            .call(),
    );
    assert_eq!(who.status, 200, "the personal access token works: {who:?}");
    assert_eq!(who.json().as_array().map(Vec::len), Some(3), "{who:?}");
    // The copied audit log is there, in order, and new rows get new ids.
    let audit_after = to.cli_ok(&["audit", "--json"]);
    let before: serde_json::Value = serde_json::from_str(&audit_before).expect("json");
    let after: serde_json::Value = serde_json::from_str(&audit_after).expect("json");
    let ids = |v: &serde_json::Value| -> Vec<i64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|e| e["id"].as_i64().expect("id"))
            .collect()
    };
    assert!(ids(&after).starts_with(&ids(&before)), "{before} / {after}");
    let next = to.token(&["--project", "acme/app"], "read_registry", &[]);
    assert!(next.id > revoked.id, "ids continue after the copied ones");
    assert_eq!(pull_answer(&server.url, &next, "acme/app").status, 200);
}

#[test]
fn db_copy_refuses_what_it_cannot_do_in_one_line() {
    let env = Env::sqlite();
    let out = env.cli(&["db", "copy", "--to", &postgres::shared_database()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to copy"), "{err}");
    env.cli_ok(&["group", "create", "acme"]);
    let out = env.cli(&["db", "copy", "--to", "sqlite:///tmp/x.db"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("postgres://"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// TLS to PostgreSQL, asked for as libpq users ask: `sslmode=require` with `sslrootcert`.
/// The server's connections are then encrypted (pg_stat_ssl says so), and a certificate
/// that does not chain to the given CA is refused in one line, before anything is read.
#[test]
fn tls_to_postgresql_is_used_and_verified_when_the_url_asks_for_it() {
    let (cluster, ca) = Cluster::start_with_tls();
    let url = cluster.database();
    let env = env_on(format!(
        "{url}?sslmode=require&sslrootcert={}",
        ca.display()
    ));
    env.cli_ok(&["group", "create", "acme"]);
    let server = env.serve(&[]);
    assert_eq!(
        answer(agent().get(&format!("{}/-/health", server.url)).call()).status,
        200
    );
    let count = |ssl: bool| {
        cluster
            .psql(
                "postgres",
                &format!(
                    "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
                     WHERE a.application_name = 'wvs-auth' AND s.ssl = {ssl}"
                ),
            )
            .expect("pg_stat_ssl")
    };
    assert_ne!(count(true), "0", "the server's connections use TLS");
    assert_eq!(count(false), "0", "no plain connection of wvs-auth");

    let other = common::postgres::make_ca(cluster.dir(), "other");
    let wrong = env_on(format!(
        "{url}?sslmode=require&sslrootcert={}",
        other.display()
    ));
    let out = wrong.cli(&["group", "list"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("certificate") || err.contains("TLS"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
