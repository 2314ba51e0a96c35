//! `GET /-/metrics` (SPEC §6) against a real `wvs-auth serve`: a few requests of every kind
//! move exactly the counters they should, the text passes `promtool check metrics`
//! (Debian's `prometheus` package) without a lint problem, and no label carries a name a
//! client chose.

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::common;
use common::http::{agent, answer, basic, creds, Answer};
use common::{have, Env, Server};

/// Every sample of one scrape, by series (`name{label="value",…}`, labels sorted by name
/// as the server writes them).
struct Scrape {
    text: String,
    samples: HashMap<String, f64>,
}

impl Scrape {
    fn of(server: &Server) -> Self {
        let a = answer(agent().get(&format!("{}/-/metrics", server.url)).call());
        assert_eq!(a.status, 200, "{a:?}");
        assert!(
            a.header("content-type")
                .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
            "{a:?}"
        );
        let samples = a
            .body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        Self {
            text: a.body,
            samples,
        }
    }

    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(&series(name, labels))
            .copied()
            .unwrap_or(0.0)
    }
}

fn series(name: &str, labels: &[(&str, &str)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let mut labels = labels.to_vec();
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// How much each series grew between two scrapes.
fn moved(before: &Scrape, after: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    after.get(name, labels) - before.get(name, labels)
}

fn token_url(server: &Server, scope: &str) -> String {
    format!(
        "{}/jwt/auth?service=container_registry&scope={}",
        server.url,
        scope.replace('/', "%2F")
    )
}

/// A `/jwt/auth` GET, as the client `forwarded_for` behind the trusted proxy if given.
fn token(server: &Server, auth: Option<&str>, forwarded_for: Option<&str>) -> Answer {
    let mut req = agent().get(&token_url(server, "repository:acme/app/img:pull"));
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    if let Some(ip) = forwarded_for {
        req = req.set("X-Forwarded-For", ip);
    }
    answer(req.call())
}

/// `promtool check metrics` on `text`: its exit status and everything it printed.
fn promtool(text: &str) -> (bool, String) {
    assert!(
        have("promtool"),
        "promtool is not on PATH; tests/run installs Debian's prometheus package"
    );
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), printed)
}

#[test]
fn counters_move_with_requests_and_promtool_accepts_the_text() {
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["project", "create", "acme/app"],
    ] {
        env.cli_ok(args);
    }
    let t = env.token(
        &["--project", "acme/app"],
        "read_registry,read_repository,read_package_registry,write_package_registry",
        &[],
    );
    let revoked = env.token(&["--project", "acme/app"], "read_registry", &[]);
    env.cli_ok(&["token", "revoke", &revoked.id.to_string()]);
    env.user("alice", Some("correct horse battery staple"));
    // An LFS object where git-lfs would have put it (a download reads it as it is).
    let object = common::git::random_bytes(70_000, 5);
    let oid: String = Sha256::digest(&object)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stored = common::git::bare(&env.data_dir(), "acme/app")
        .join("lfs/objects")
        .join(&oid[0..2])
        .join(&oid[2..4]);
    std::fs::create_dir_all(&stored).expect("mkdir");
    std::fs::write(stored.join(&oid), &object).expect("write object");

    // Three failures ban a client; one request in flight per client; uses are written
    // once a minute, so nothing changes the database while the lookups are remembered.
    let server = env.serve(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--throttle-failures",
        "3",
        "--max-requests-per-client",
        "1",
        "--usage-flush-ms",
        "60000",
    ]);
    let before = Scrape::of(&server);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        before.get("wvs_auth_build_info", &[("version", version)]),
        1.0
    );
    assert!(
        before
            .text
            .contains("\nwvs_auth_signing_key_info{alg=\"ES256\",kid=\"")
            || before
                .text
                .contains("\nwvs_auth_signing_key_info{alg=\"RS256\",kid=\""),
        "{}",
        before.text
    );
    assert_eq!(before.get("wvs_auth_signing_keys_published", &[]), 1.0);

    // Tokens: three to a deploy token, back to back (the last two from memory), one anonymous.
    for _ in 0..3 {
        token(&server, Some(&creds(&t)), None).token();
    }
    token(&server, None, None).token();
    // Refusals from one client behind the proxy, each reason once; the third bans it.
    let guesser = Some("10.1.1.1");
    let refused = [
        basic("alice", "wrong"),
        basic("someone", "wvsdt-AAAAAAAAAAAAAAAAAAAAAAAA"),
        creds(&revoked),
    ];
    for auth in &refused {
        assert_eq!(token(&server, Some(auth), guesser).status, 401);
    }
    let banned = token(&server, Some(&refused[1]), guesser);
    assert_eq!(banned.status, 429, "{banned:?}");

    // A request held in flight (its body never comes) makes the client's next one a 429.
    // On a loaded machine a probe may reach the server before the held head does, take the
    // slot and get the held request refused instead: then the head is sent again.
    let hold = || {
        let mut held = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        held.write_all(
            b"POST /jwt/auth HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 10.2.2.2\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=",
        )
        .expect("send head");
        held.set_nonblocking(true).expect("nonblocking");
        held
    };
    let mut held = hold();
    std::thread::sleep(Duration::from_millis(100));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut last = None;
    let busy = loop {
        let a = answer(
            agent()
                .get(&format!("{}/-/health", server.url))
                .set("X-Forwarded-For", "10.2.2.2")
                .call(),
        );
        if a.status == 429 {
            break Some(a);
        }
        last = Some(a);
        if std::time::Instant::now() > deadline {
            break None;
        }
        let mut byte = [0u8; 1];
        if matches!(held.peek(&mut byte), Ok(n) if n > 0) {
            held = hold(); // answered (refused) while a probe held the slot
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        busy.is_some(),
        "the held request never filled the client's slot; last probe {last:?}"
    );
    drop(held);

    // Bytes served: a ref advertisement, an LFS object and a package file.
    let refs = answer(
        agent()
            .get(&format!(
                "{}/acme/app.git/info/refs?service=git-upload-pack",
                server.url
            ))
            .set("Authorization", &creds(&t))
            .call(),
    );
    assert_eq!(refs.status, 200, "{refs:?}");
    let mut lfs_body = Vec::new();
    let lfs = agent()
        .get(&format!(
            "{}/acme/app.git/info/lfs/objects/{oid}",
            server.url
        ))
        .set("Authorization", &creds(&t))
        .call()
        .expect("LFS download");
    std::io::Read::read_to_end(&mut lfs.into_reader(), &mut lfs_body).expect("LFS body");
    assert_eq!(lfs_body, object);
    let package = format!(
        "{}/api/v4/projects/acme%2Fapp/packages/generic/tool/1.0.0/tool.bin",
        server.url
    );
    let content = b"a package file of forty-two bytes, exactly".to_vec();
    let put = answer(
        agent()
            .put(&package)
            .set("Deploy-Token", &t.secret)
            .send_bytes(&content),
    );
    assert_eq!(put.status, 201, "{put:?}");
    let got = answer(agent().get(&package).set("Deploy-Token", &t.secret).call());
    assert_eq!(got.body.as_bytes(), content);

    let after = Scrape::of(&server);
    let m = |name: &str, labels: &[(&str, &str)]| moved(&before, &after, name, labels);
    let issued = "wvs_auth_tokens_issued_total";
    let service = ("service", "container_registry");
    assert_eq!(m(issued, &[service, ("principal", "deploy_token")]), 3.0);
    assert_eq!(m(issued, &[service, ("principal", "anonymous")]), 1.0);
    assert_eq!(m(issued, &[service, ("principal", "password")]), 0.0);

    let failures = "wvs_auth_auth_failures_total";
    for reason in ["bad_password", "unknown_secret", "revoked"] {
        let labels = [("surface", "registry"), ("reason", reason)];
        assert_eq!(m(failures, &labels), 1.0, "{reason}");
    }
    let throttled = "wvs_auth_throttled_requests_total";
    assert_eq!(m(throttled, &[("limit", "auth_failures")]), 1.0);
    assert_eq!(m(throttled, &[("limit", "requests_in_flight")]), 1.0);
    assert_eq!(m(throttled, &[("limit", "git_processes")]), 0.0);

    let requests = "wvs_auth_http_requests_total";
    let jwt = |status| {
        [
            ("route", "/jwt/auth"),
            ("method", "GET"),
            ("status", status),
        ]
    };
    assert_eq!(m(requests, &jwt("200")), 4.0);
    assert_eq!(m(requests, &jwt("401")), 3.0);
    assert_eq!(m(requests, &jwt("429")), 1.0);
    let health = [("route", "/-/health"), ("method", "GET"), ("status", "429")];
    assert_eq!(m(requests, &health), 1.0);
    let git_refs = [
        ("route", "/{repository}.git/info/refs"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(m(requests, &git_refs), 1.0);
    let lfs_route = [
        ("route", "/{repository}.git/info/lfs/objects/{oid}"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(m(requests, &lfs_route), 1.0);
    let generic = "/api/v4/projects/{id}/packages/generic/{name}/{version}/{file}";
    assert_eq!(
        m(
            requests,
            &[("route", generic), ("method", "PUT"), ("status", "201")]
        ),
        1.0
    );
    let latency = "wvs_auth_http_request_duration_seconds_count";
    assert_eq!(
        m(latency, &[("route", "/jwt/auth"), ("method", "GET")]),
        8.0
    );
    // The scrape before counts in the one after.
    let scraped = [
        ("route", "/-/metrics"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert_eq!(m(requests, &scraped), 1.0);

    let served = "wvs_auth_served_bytes_total";
    assert_eq!(m(served, &[("kind", "git")]), refs.body.len() as f64);
    assert_eq!(m(served, &[("kind", "lfs")]), object.len() as f64);
    assert_eq!(m(served, &[("kind", "package")]), content.len() as f64);

    // The lookups of three identical token requests in a row: the first reads the
    // database, the others are remembered.
    let lookups = "wvs_auth_lookup_cache_requests_total";
    let token_hits = m(lookups, &[("lookup", "token"), ("result", "hit")]);
    assert!(token_hits >= 1.0, "{}", after.text);
    let project_hits = m(lookups, &[("lookup", "project"), ("result", "hit")]);
    assert!(project_hits >= 1.0, "{}", after.text);
    assert!(m("wvs_auth_storage_call_duration_seconds_count", &[]) >= 3.0);
    assert!(m("wvs_auth_storage_wait_duration_seconds_count", &[]) >= 3.0);
    // The scrape's own request is the one in flight.
    assert_eq!(after.get("wvs_auth_http_requests_in_flight", &[]), 1.0);

    // Nothing a client chose is a label.
    for name in [
        "acme", "alice", "someone", "10.1.1.1", "10.2.2.2", &oid, "tool.bin",
    ] {
        assert!(!after.text.contains(name), "{name} in the metrics");
    }

    let (ok, printed) = promtool(&after.text);
    assert!(ok && printed.trim().is_empty(), "promtool: {printed}");
}

/// The README's alert rules are the rule file, which Prometheus loads, and each alert
/// fires on the series it is written for (`promtool test rules`).
#[test]
fn the_readme_alerts_are_valid_rules_that_fire() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = std::fs::read_to_string(root.join("docs/prometheus-alerts.yml")).expect("rules");
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    assert!(
        readme.contains(&format!("```yaml\n{rules}```")),
        "README's alerts differ from docs/prometheus-alerts.yml"
    );
    assert_eq!(rules.matches("- alert: ").count(), 5);
    assert!(
        have("promtool"),
        "promtool is not on PATH; tests/run installs it"
    );
    for args in [
        &["check", "rules", "prometheus-alerts.yml"][..],
        &["test", "rules", "prometheus-alerts.test.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(root.join("docs"))
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
