//! Several instances (SPEC §7): two `wvs-auth serve` processes on one database, one keys
//! directory and one data directory, behind Debian's nginx as the realm of Debian's
//! `docker-registry`; docker and skopeo push and pull through it. A token made through one
//! instance works on the other; revoked through one, the other refuses it on its next
//! request; one instance killed with SIGKILL while pulls go on fails none of them.
//!
//! The suite runs on whichever database the run uses (`WVS_TEST_DATABASE`): on SQLite both
//! processes share the file, on PostgreSQL one database — the deployment of several machines.

use crate::common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{expect, pat, user, Api, Auth};
use common::http::{agent, answer, basic, pull_answer};
use common::tools::*;
use common::{free_port, Env, Server, Token};

/// Debian's nginx with a configuration of its own, in the foreground; killed on drop.
struct Nginx {
    process: Server,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Balances `upstreams` round robin, as an operator would: a failed connection or a
    /// 502/503 is retried on the next instance (idempotent requests only, nginx's default),
    /// and the client's address is passed on in `X-Forwarded-For`.
    fn balancing(upstreams: &[&Server]) -> Nginx {
        require_tools(&["nginx"]);
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let servers: String = upstreams
            .iter()
            .map(|s| {
                format!(
                    "    server 127.0.0.1:{} max_fails=1 fail_timeout=2s;\n",
                    s.port
                )
            })
            .collect();
        let d = dir.path().display();
        let config = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 512; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
             proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
             uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             client_max_body_size 0;\n\
             upstream wvs {{\n{servers}    keepalive 16;\n  }}\n\
             server {{\n    listen 127.0.0.1:{port};\n    location / {{\n      \
             proxy_pass http://wvs;\n      proxy_http_version 1.1;\n      \
             proxy_set_header Connection \"\";\n      proxy_set_header Host $http_host;\n      \
             proxy_set_header X-Forwarded-For $remote_addr;\n      \
             proxy_next_upstream error timeout http_502 http_503;\n      \
             proxy_connect_timeout 1s;\n    }}\n  }}\n}}\n"
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).expect("write nginx.conf");
        let log = std::fs::File::create(dir.path().join("stderr.log")).expect("log");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn nginx");
        let process = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
        };
        common::wait_ready(
            &format!("{}/-/health", process.url),
            Duration::from_secs(20),
        );
        Nginx { process, _dir: dir }
    }
}

/// Two instances of one installation, nginx in front, and a registry whose realm is nginx.
struct Pair {
    // Fields drop in this order: clients' processes first, then their directories.
    registry: RegistryProcess,
    nginx: Nginx,
    a: Server,
    b: Option<Server>,
    scratch: tempfile::TempDir,
    env: Env,
}

impl Pair {
    fn new() -> Pair {
        require_tools(REGISTRY_TOOLS);
        let env = Env::new();
        for command in ["group create acme", "project create acme/app"] {
            env.cli_ok(&command.split(' ').collect::<Vec<_>>());
        }
        env.cli_ok(&["keys", "init"]);
        // Both read the same directories: the keys directory is the shared keys store.
        let a = env.serve(&["--trusted-proxy", "127.0.0.1"]);
        let b = env.serve(&["--trusted-proxy", "127.0.0.1"]);
        let nginx = Nginx::balancing(&[&a, &b]);
        let registry = RegistryProcess::trusting(&env, &nginx.process, &[]);
        Pair {
            registry,
            nginx,
            a,
            b: Some(b),
            scratch: tempfile::tempdir().expect("tempdir"),
            env,
        }
    }

    fn b(&self) -> &Server {
        self.b.as_ref().expect("instance b runs")
    }
}

fn pull_token(server: &Server, token: &Token) -> u16 {
    pull_answer(&server.url, token, "acme/app").status
}

#[test]
fn docker_and_skopeo_push_and_pull_through_two_instances() {
    let pair = Pair::new();
    let rw = pair.env.token(
        &["--project", "acme/app"],
        "read_registry,write_registry",
        &[],
    );
    let docker = Docker::new(&pair.registry.host);
    let reference = pair.registry.image("acme/app", "v1");
    let id = docker.build(&reference);
    docker.login_ok(&rw);
    assert_ok(&docker.push(&reference), "docker push through nginx");
    docker.rmi(&reference);
    assert_ok(&docker.pull(&reference), "docker pull through nginx");
    assert_eq!(docker.image_id(&reference), id);

    let skopeo = Skopeo::new(pair.scratch.path());
    let image = oci_image(&pair.scratch.path().join("oci"), "through two instances");
    let dest = format!("docker://{}/acme/app:skopeo", pair.registry.host);
    assert_ok(&skopeo.push(&image, &dest, Some(&rw)), "skopeo copy in");
    let into = pair.scratch.path().join("pulled");
    skopeo.pull_matches(&dest, &into, Some(&rw), &image);

    // nginx spread the token requests over both instances.
    let log =
        std::fs::read_to_string(pair.nginx._dir.path().join("access.log")).unwrap_or_default();
    assert!(log.contains("/jwt/auth"), "{log}");
    for server in [&pair.a, pair.b()] {
        let served = std::fs::read_to_string(pair.env.path(&format!("serve-{}.log", server.port)))
            .unwrap_or_default();
        assert!(
            served.contains("wvs_auth::access] token"),
            "instance {} answered no token request: {served}",
            server.port
        );
    }
}

/// Through the management API: created on one instance, used on the other; revoked on the
/// other, refused by the first on its very next request.
#[test]
fn a_token_made_on_one_instance_works_on_the_other_and_revocation_reaches_it_at_once() {
    let pair = Pair::new();
    user(&pair.env, "owner", false, &[("--group", "acme", "owner")]);
    let admin = pat(&pair.env, "owner", "api", &[]).secret;
    let project = common::api::namespace_id(&pair.env, "project", "acme/app");
    let base = format!("/projects/{project}/deploy_tokens");
    for round in 0..5 {
        let created = expect(
            &Api::new(&pair.a).post_json(
                &base,
                Auth::PrivateToken(&admin),
                &serde_json::json!({"name": format!("ci-{round}"), "scopes": ["read_registry"]}),
            ),
            201,
            "create on a",
        );
        let token = Token {
            id: created["id"].as_i64().expect("id"),
            username: created["username"].as_str().expect("username").to_string(),
            secret: created["token"].as_str().expect("token").to_string(),
        };
        // Both instances answer, and keep answering from what they may remember.
        for _ in 0..3 {
            assert_eq!(pull_token(pair.b(), &token), 200, "made on a, used on b");
            assert_eq!(pull_token(&pair.a, &token), 200, "made on a, used on a");
        }
        let revoked =
            Api::new(pair.b()).delete(&format!("{base}/{}", token.id), Auth::PrivateToken(&admin));
        assert_eq!(revoked.status, 204, "revoke on b: {revoked:?}");
        assert_eq!(
            pull_token(&pair.a, &token),
            401,
            "revoked on b, next request on a"
        );
        assert_eq!(
            pull_token(pair.b(), &token),
            401,
            "revoked on b, next request on b"
        );
    }
    // The CLI, a third process, reaches both as well.
    let t = pair
        .env
        .token(&["--project", "acme/app"], "read_registry", &[]);
    assert_eq!(pull_token(&pair.a, &t), 200);
    assert_eq!(pull_token(pair.b(), &t), 200);
    pair.env.cli_ok(&["token", "revoke", &t.id.to_string()]);
    assert_eq!(pull_token(pair.b(), &t), 401);
    assert_eq!(pull_token(&pair.a, &t), 401);
    // All of it with lookups remembered: the rule held with the cache in use, not beside it.
    let metrics = answer(agent().get(&format!("{}/-/metrics", pair.a.url)).call()).body;
    let hits: f64 = metrics
        .lines()
        .find(|l| {
            l.starts_with(r#"wvs_auth_lookup_cache_requests_total{lookup="token",result="hit"}"#)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(hits > 0.0, "no token lookup was remembered:\n{metrics}");
}

/// Both instances sign with the one active key: a key rotated and activated by the CLI is
/// used and published by both within 2 s, without a restart.
#[test]
fn both_instances_sign_with_the_key_the_cli_activates() {
    let pair = Pair::new();
    let jwks = |s: &Server| answer(agent().get(&format!("{}/-/jwks", s.url)).call()).json();
    assert_eq!(jwks(&pair.a), jwks(pair.b()));
    pair.env.cli_ok(&["keys", "rotate"]);
    let listed: serde_json::Value =
        serde_json::from_str(&pair.env.cli_ok(&["keys", "list", "--json"])).expect("json");
    let newest = listed
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["state"] == "published"))
        .and_then(|k| k["kid"].as_str())
        .unwrap_or_else(|| panic!("no published key in {listed}"))
        .to_string();
    pair.env.cli_ok(&["keys", "activate", &newest]);
    let t = pair
        .env
        .token(&["--project", "acme/app"], "read_registry", &[]);
    let deadline = Instant::now() + Duration::from_secs(2);
    for server in [&pair.a, pair.b()] {
        loop {
            let got = answer(
                agent()
                    .get(&format!(
                        "{}/jwt/auth?service=container_registry&scope=repository:acme/app:pull",
                        server.url
                    ))
                    .set("Authorization", &basic(&t.username, &t.secret))
                    .call(),
            );
            assert_eq!(got.status, 200, "{got:?}");
            let jwt = got.json()["token"].as_str().expect("token").to_string();
            let header = jsonwebtoken::decode_header(&jwt).expect("header");
            if header.kid.as_deref() == Some(newest.as_str()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "instance {} still signs with {:?} 2 s after activate",
                server.port,
                header.kid
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(jwks(&pair.a), jwks(pair.b()));
}

/// `kill -9` of one instance while 20 pulls go on through nginx: none fails, and pushes
/// go on through the one left.
#[test]
fn one_instance_killed_during_twenty_pulls_fails_none() {
    let mut pair = Pair::new();
    let rw = pair.env.token(
        &["--project", "acme/app"],
        "read_registry,write_registry",
        &[],
    );
    let skopeo = Skopeo::new(pair.scratch.path());
    let image = oci_image(&pair.scratch.path().join("oci"), "pulled twenty times");
    let dest = format!("docker://{}/acme/app:load", pair.registry.host);
    assert_ok(&skopeo.push(&image, &dest, Some(&rw)), "skopeo copy in");

    let b = pair.b.take().expect("instance b");
    let scratch = pair.scratch.path().to_path_buf();
    std::thread::scope(|scope| {
        let pulls: Vec<_> = (0..20)
            .map(|i| {
                let (skopeo, dest, rw, image) = (&skopeo, &dest, &rw, &image);
                let into = scratch.join(format!("pull-{i}"));
                scope.spawn(move || skopeo.pull_matches(dest, &into, Some(rw), image))
            })
            .collect();
        // While they run, instance b goes, with whatever it was serving.
        std::thread::sleep(Duration::from_millis(300));
        let mut b = b;
        b.child.kill().expect("kill -9 instance b");
        let _ = b.child.wait();
        for (i, pull) in pulls.into_iter().enumerate() {
            assert!(
                pull.join().is_ok(),
                "pull {i} failed with an instance killed"
            );
        }
    });
    let docker = Docker::new(&pair.registry.host);
    let reference = pair.registry.image("acme/app", "after");
    docker.build(&reference);
    docker.login_ok(&rw);
    assert_ok(&docker.push(&reference), "push with one instance left");
}
