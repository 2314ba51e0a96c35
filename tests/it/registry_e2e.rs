//! End to end through real parts on 127.0.0.1: wvs-auth as the token realm of Debian's
//! `docker-registry` (CNCF distribution 2.8), driven by the real docker CLI (and daemon) and
//! skopeo (SPEC §2, §3). Expiry around midnight UTC runs wvs-auth under libfaketime.
//!
//! The tools are required: a missing one fails the test, it never skips it.

use crate::common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use chrono::{DateTime, Days, NaiveDate, Utc};
use common::tools::*;
use common::{Env, Server, Token};

const RW: &str = "read_registry,write_registry";

// ---------------------------------------------------------------------------------------
// Fixture: wvs-auth + docker-registry + a scratch directory for clients.

/// `docker-registry serve deploy/registry/config.yml` trusting one wvs-auth.
type Registry = RegistryProcess;

fn start_registry(env: &Env, auth: &Server) -> Registry {
    RegistryProcess::trusting(env, auth, &[])
}

/// One installation with the namespaces of SPEC's examples, its server and its registry.
struct Fixture {
    // Fields drop in this order: processes first, then their directories.
    registry: Registry,
    auth: Server,
    /// Scratch space for skopeo's configuration and image layouts.
    scratch: tempfile::TempDir,
    env: Env,
}

impl Fixture {
    fn new() -> Self {
        Self::with_keys(&["keys", "init"])
    }

    /// The fixture with its first signing key made by `keys_init` (before `serve` starts).
    fn with_keys(keys_init: &[&str]) -> Self {
        require_tools(REGISTRY_TOOLS);
        let env = Env::new();
        for command in [
            "group create acme",
            "group create acme/platform",
            "group create oss",
            "project create acme/app",
            "project create acme/platform/api",
            "project create acme/sibling",
            "project create acme/secret --visibility private",
            "project create oss/lib --visibility public",
        ] {
            env.cli_ok(&command.split(' ').collect::<Vec<_>>());
        }
        env.cli_ok(keys_init);
        let auth = env.serve(&[]);
        let registry = start_registry(&env, &auth);
        Self {
            env,
            registry,
            scratch: tempfile::tempdir().expect("tempdir"),
            auth,
        }
    }

    fn project_token(&self, project: &str, scopes: &str) -> Token {
        self.env.token(&["--project", project], scopes, &[])
    }

    fn group_token(&self, group: &str, scopes: &str) -> Token {
        self.env.token(&["--group", group], scopes, &[])
    }

    /// A token that expired at 00:00 UTC today: created "yesterday" under libfaketime, since
    /// the CLI refuses dates that are not in the future.
    fn expired_token(&self, project: &str, scopes: &str) -> Token {
        require_tools(&["faketime"]);
        let today = Utc::now().date_naive();
        let yesterday = today.checked_sub_days(Days::new(1)).expect("date");
        let at = format!("{yesterday} 12:00:00");
        let today = today.to_string();
        let token = self.env.token_with(
            &["env", "TZ=UTC", "faketime", &at],
            &["--project", project],
            scopes,
            &["--expires-at", &today],
        );
        let listed = self
            .env
            .cli_ok(&["token", "list", "--project", project, "--json"]);
        let listed: serde_json::Value = serde_json::from_str(&listed).expect("token list json");
        let row = listed
            .as_array()
            .and_then(|rows| rows.iter().find(|r| r["id"] == token.id))
            .expect("expired token listed");
        assert_eq!(
            row["expired"], true,
            "token list should call it expired: {row}"
        );
        assert_eq!(row["expires_at"], today.as_str());
        token
    }

    fn revoke(&self, token: &Token) {
        self.env.cli_ok(&["token", "revoke", &token.id.to_string()]);
    }

    fn docker(&self) -> Docker {
        Docker::new(&self.registry.host)
    }

    fn skopeo(&self) -> Skopeo {
        Skopeo::new(self.scratch.path())
    }

    /// A fresh directory inside the scratch space.
    fn dir(&self, label: &str) -> PathBuf {
        let dir = self.scratch.path().join(unique(label));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }
}

// ---------------------------------------------------------------------------------------
// Tests: docker

#[test]
fn docker_push_with_write_token_pull_with_read_token() {
    let fx = Fixture::new();
    let docker = fx.docker();
    let rw = fx.project_token("acme/app", RW);
    let ro = fx.project_token("acme/app", "read_registry");
    let reference = fx.registry.image("acme/app", "v1");

    let id = docker.build(&reference);
    docker.login_ok(&rw);
    assert_ok(
        &docker.push(&reference),
        "docker push with a read+write token",
    );

    docker.rmi(&reference);
    docker.logout();
    docker.login_ok(&ro);
    assert_ok(
        &docker.pull(&reference),
        "docker pull with a read-only token",
    );
    assert_eq!(
        docker.image_id(&reference),
        id,
        "pulled image differs from the pushed one"
    );

    // The read-only token may pull but not push, not even a new tag of the same project.
    let other = fx.registry.image("acme/app", "v2");
    docker.build(&other);
    assert_refused(&docker.push(&other), "docker push with a read-only token");
}

#[test]
fn docker_login_refused_for_wrong_revoked_and_expired_tokens() {
    let fx = Fixture::new();
    let docker = fx.docker();
    let good = fx.project_token("acme/app", RW);

    let wrong = Token {
        secret: format!("{}x", good.secret),
        ..good.clone()
    };
    assert_bad_credentials(&docker.login(&wrong), "docker login with a wrong secret");

    // Logged in and pushing; revoked; the very next push and login are refused.
    docker.login_ok(&good);
    let reference = fx.registry.image("acme/app", "v1");
    docker.build(&reference);
    assert_ok(&docker.push(&reference), "docker push before revocation");
    fx.revoke(&good);
    let after = fx.registry.image("acme/app", "v2");
    docker.build(&after);
    assert_bad_credentials(&docker.push(&after), "docker push after revocation");
    assert_bad_credentials(&docker.login(&good), "docker login with a revoked token");

    let expired = fx.expired_token("acme/app", RW);
    assert_bad_credentials(
        &docker.login(&expired),
        "docker login with an expired token",
    );
}

/// SPEC §6 / issue 6: a token made through the management API by a maintainer's personal
/// access token logs docker in and pushes; revoked through the API, the next login fails.
#[test]
fn docker_login_with_a_token_created_through_the_api() {
    use common::api::{encoded, expect, pat, user, Api, Auth};
    let fx = Fixture::new();
    user(
        &fx.env,
        "maint",
        false,
        &[("--group", "acme", "maintainer")],
    );
    let secret = pat(&fx.env, "maint", "api", &[]).secret;
    let api = Api::new(&fx.auth);
    let base = format!("/projects/{}/deploy_tokens", encoded("acme/app"));
    let created = expect(
        &api.post_json(
            &base,
            Auth::PrivateToken(&secret),
            &serde_json::json!({ "name": "docker", "scopes": "read_registry,write_registry" }),
        ),
        201,
        "create through the API",
    );
    let token = Token {
        id: created["id"].as_i64().expect("id"),
        username: created["username"].as_str().expect("username").to_string(),
        secret: created["token"].as_str().expect("token").to_string(),
    };

    let docker = fx.docker();
    docker.login_ok(&token);
    let reference = fx.registry.image("acme/app", "api");
    docker.build(&reference);
    assert_ok(
        &docker.push(&reference),
        "docker push with the API-made token",
    );

    expect(
        &api.delete(&format!("{base}/{}", token.id), Auth::PrivateToken(&secret)),
        204,
        "revoke through the API",
    );
    docker.logout();
    assert_bad_credentials(&docker.login(&token), "docker login after API revocation");
}

// ---------------------------------------------------------------------------------------
// Tests: skopeo

#[test]
fn skopeo_copies_in_and_out_and_is_refused_like_docker() {
    let fx = Fixture::new();
    let skopeo = fx.skopeo();
    let rw = fx.project_token("acme/app", RW);
    let ro = fx.project_token("acme/app", "read_registry");
    let image = oci_image(&fx.dir("layout"), &unique("skopeo"));
    let dest = fx.registry.docker_url("acme/app", "v1");

    assert_ok(
        &skopeo.push(&image, &dest, Some(&rw)),
        "skopeo copy in with a read+write token",
    );
    skopeo.pull_matches(&dest, &fx.dir("out-rw"), Some(&rw), &image);
    skopeo.pull_matches(&dest, &fx.dir("out-ro"), Some(&ro), &image);
    assert_ok(
        &skopeo.inspect(&dest, Some(&ro)),
        "skopeo inspect with a read-only token",
    );

    let ro_dest = fx.registry.docker_url("acme/app", "ro");
    assert_refused(
        &skopeo.push(&image, &ro_dest, Some(&ro)),
        "skopeo copy in, read-only token",
    );

    let wrong = Token {
        secret: format!("{}x", rw.secret),
        ..rw.clone()
    };
    assert_bad_credentials(
        &skopeo.inspect(&dest, Some(&wrong)),
        "skopeo inspect with a wrong secret",
    );
    assert_bad_credentials(
        &skopeo.push(&image, &dest, Some(&wrong)),
        "skopeo copy in, wrong secret",
    );

    let expired = fx.expired_token("acme/app", RW);
    assert_bad_credentials(
        &skopeo.inspect(&dest, Some(&expired)),
        "skopeo inspect, expired token",
    );
    assert_bad_credentials(
        &skopeo.push(&image, &dest, Some(&expired)),
        "skopeo copy in, expired token",
    );

    fx.revoke(&ro);
    assert_bad_credentials(
        &skopeo.pull(&dest, &fx.dir("out-rev"), Some(&ro)),
        "skopeo copy out, revoked",
    );
    assert_bad_credentials(
        &skopeo.inspect(&dest, Some(&ro)),
        "skopeo inspect with a revoked token",
    );
    // Revoking one token leaves the others working.
    assert_ok(
        &skopeo.inspect(&dest, Some(&rw)),
        "skopeo inspect with the unrevoked token",
    );
}

// ---------------------------------------------------------------------------------------
// Tests: ES256

/// Debian's docker-registry (distribution 2.8) accepts ES256 tokens: the keys are P-256
/// from `keys init --alg ES256`, the bundle holds the ECDSA certificate, and docker and
/// skopeo push and pull through `deploy/registry/config.yml` unchanged.
#[test]
fn es256_tokens_push_and_pull_through_the_registry() {
    let fx = Fixture::with_keys(&["keys", "init", "--alg", "ES256"]);
    let listed: serde_json::Value =
        serde_json::from_str(&fx.env.cli_ok(&["keys", "list", "--json"])).expect("keys json");
    assert_eq!(listed[0]["alg"], "ES256", "{listed}");
    assert_eq!(listed[0]["state"], "active", "{listed}");

    let rw = fx.project_token("acme/app", RW);
    let ro = fx.project_token("acme/app", "read_registry");
    let answer = login_request(&fx.auth, &rw);
    assert_granted(&answer, "token request");
    let token = answer.body["token"].as_str().expect("token");
    let header = common::http::jwt_part(token, 0);
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["kid"], listed[0]["kid"], "{header}");

    let docker = fx.docker();
    let reference = fx.registry.image("acme/app", "es256");
    let id = docker.build(&reference);
    docker.login_ok(&rw);
    assert_ok(&docker.push(&reference), "docker push, ES256 token");
    docker.rmi(&reference);
    docker.logout();
    docker.login_ok(&ro);
    assert_ok(&docker.pull(&reference), "docker pull, ES256 token");
    assert_eq!(docker.image_id(&reference), id, "pulled image differs");
    let other = fx.registry.image("acme/app", "es256-ro");
    docker.build(&other);
    assert_refused(&docker.push(&other), "docker push with a read-only token");

    let skopeo = fx.skopeo();
    let image = oci_image(&fx.dir("layout"), &unique("es256"));
    let dest = fx.registry.docker_url("acme/app", "es256-skopeo");
    assert_ok(
        &skopeo.push(&image, &dest, Some(&rw)),
        "skopeo copy in, ES256 token",
    );
    skopeo.pull_matches(&dest, &fx.dir("out"), Some(&ro), &image);
}

// ---------------------------------------------------------------------------------------
// Tests: the token header

/// Distribution 2.8 refuses `--token-header kid` tokens, so the default stays `x5c`: with
/// no `x5c` it looks the `kid` up among the bundle's keys, which it names by libtrust key
/// IDs (a SHA-256 of the public key in base32 groups), never by the RFC 7638 thumbprint
/// wvs-auth's `kid` is. The registry logs "token signed by untrusted key with ID". The same
/// registry and keys with the default header push and pull. (Distribution 3.x, which does
/// accept kid-only tokens, is checked by hand with `bench/v3_check.sh`.)
#[test]
fn distribution_2_8_refuses_kid_only_tokens_and_takes_the_default() {
    require_tools(REGISTRY_TOOLS);
    let env = Env::new();
    env.cli_ok(&["group", "create", "acme"]);
    env.cli_ok(&["project", "create", "acme/app"]);
    env.cli_ok(&["keys", "init"]);
    let rw = env.token(&["--project", "acme/app"], RW, &[]);
    let scratch = tempfile::tempdir().expect("tempdir");
    let skopeo = Skopeo::new(scratch.path());
    let layout = scratch.path().join("layout");
    std::fs::create_dir_all(&layout).expect("mkdir");
    let image = oci_image(&layout, &unique("kid-only"));

    let kid_only = env.serve(&["--token-header", "kid"]);
    let answer = login_request(&kid_only, &rw);
    assert_granted(&answer, "token request");
    let header = common::http::jwt_part(answer.body["token"].as_str().expect("token"), 0);
    assert!(header.get("x5c").is_none(), "{header}");
    let registry = start_registry(&env, &kid_only);
    let dest = registry.docker_url("acme/app", "kid");
    assert_refused(
        &skopeo.push(&image, &dest, Some(&rw)),
        "skopeo copy in to 2.8 with a kid-only token",
    );
    let log = registry.log();
    assert!(
        log.contains("token signed by untrusted key with ID"),
        "the registry refused for another reason: {log}"
    );
    drop(registry);
    drop(kid_only);

    let default = env.serve(&[]);
    let registry = start_registry(&env, &default);
    let dest = registry.docker_url("acme/app", "x5c");
    assert_ok(
        &skopeo.push(&image, &dest, Some(&rw)),
        "skopeo copy in with the default header",
    );
    let out = scratch.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    skopeo.pull_matches(&dest, &out, Some(&rw), &image);
}

// ---------------------------------------------------------------------------------------
// Tests: who reaches which project

#[test]
fn group_token_reaches_subgroup_projects_including_later_ones() {
    let fx = Fixture::new();
    let group = fx.group_token("acme", RW);

    // docker, on a project of a subgroup.
    let docker = fx.docker();
    let reference = fx.registry.image("acme/platform/api", "v1");
    let id = docker.build(&reference);
    docker.login_ok(&group);
    assert_ok(
        &docker.push(&reference),
        "docker push to acme/platform/api with an acme token",
    );
    docker.rmi(&reference);
    assert_ok(
        &docker.pull(&reference),
        "docker pull of acme/platform/api with an acme token",
    );
    assert_eq!(docker.image_id(&reference), id);

    // skopeo, on a project created after the token, in a subgroup created after it too.
    fx.env.cli_ok(&["group", "create", "acme/platform/tools"]);
    fx.env
        .cli_ok(&["project", "create", "acme/platform/tools/later"]);
    let skopeo = fx.skopeo();
    let image = oci_image(&fx.dir("layout"), &unique("later"));
    let dest = fx.registry.docker_url("acme/platform/tools/later", "v1");
    assert_ok(
        &skopeo.push(&image, &dest, Some(&group)),
        "skopeo copy in to a later project",
    );
    skopeo.pull_matches(&dest, &fx.dir("out"), Some(&group), &image);

    // A group token of a subgroup does not reach its parent's projects.
    let sub = fx.group_token("acme/platform", RW);
    let app = fx.registry.docker_url("acme/app", "v1");
    assert_refused(
        &skopeo.push(&image, &app, Some(&sub)),
        "acme/platform token on acme/app",
    );
}

#[test]
fn project_token_refused_on_sibling_project() {
    let fx = Fixture::new();
    let app = fx.project_token("acme/app", RW);
    let group = fx.group_token("acme", RW);
    let skopeo = fx.skopeo();
    let image = oci_image(&fx.dir("layout"), &unique("sibling"));
    let sibling = fx.registry.docker_url("acme/sibling", "v1");
    assert_ok(
        &skopeo.push(&image, &sibling, Some(&group)),
        "seeding acme/sibling",
    );

    // The token works on its own project ...
    let own = fx.registry.docker_url("acme/app", "v1");
    assert_ok(
        &skopeo.push(&image, &own, Some(&app)),
        "skopeo copy in to acme/app",
    );
    // ... and nowhere else: neither push nor pull on the sibling.
    let other = fx.registry.docker_url("acme/sibling", "v2");
    assert_refused(
        &skopeo.push(&image, &other, Some(&app)),
        "skopeo push to acme/sibling",
    );
    let out = fx.dir("out");
    assert_refused(
        &skopeo.pull(&sibling, &out, Some(&app)),
        "skopeo pull from acme/sibling",
    );
    assert_refused(
        &skopeo.inspect(&sibling, Some(&app)),
        "skopeo inspect of acme/sibling",
    );

    let docker = fx.docker();
    docker.login_ok(&app);
    let pushed = fx.registry.image("acme/sibling", "docker");
    docker.build(&pushed);
    assert_refused(
        &docker.push(&pushed),
        "docker push to acme/sibling, acme/app token",
    );
    let seeded = fx.registry.image("acme/sibling", "v1");
    assert_refused(
        &docker.pull(&seeded),
        "docker pull from acme/sibling, acme/app token",
    );
}

#[test]
fn anonymous_pull_of_public_project_only() {
    let fx = Fixture::new();
    let skopeo = fx.skopeo();
    let image = oci_image(&fx.dir("layout"), &unique("public"));
    let public = fx.registry.docker_url("oss/lib", "v1");
    let private = fx.registry.docker_url("acme/secret", "v1");
    let oss = fx.group_token("oss", RW);
    let acme = fx.group_token("acme", RW);
    assert_ok(
        &skopeo.push(&image, &public, Some(&oss)),
        "push to oss/lib with an oss token",
    );
    assert_ok(
        &skopeo.push(&image, &private, Some(&acme)),
        "push to acme/secret, acme token",
    );

    assert_ok(
        &skopeo.inspect(&public, None),
        "anonymous skopeo inspect of oss/lib",
    );
    skopeo.pull_matches(&public, &fx.dir("out"), None, &image);
    let anon_push = fx.registry.docker_url("oss/lib", "anon");
    assert_refused(
        &skopeo.push(&image, &anon_push, None),
        "anonymous push to oss/lib",
    );

    assert_refused(
        &skopeo.inspect(&private, None),
        "anonymous skopeo inspect of acme/secret",
    );
    let out = fx.dir("out-private");
    assert_refused(
        &skopeo.pull(&private, &out, None),
        "anonymous skopeo copy of acme/secret",
    );

    let docker = fx.docker();
    docker.login_ok(&oss);
    docker.logout();
    let reference = fx.registry.image("oss/lib", "v1");
    assert_ok(&docker.pull(&reference), "anonymous docker pull of oss/lib");
    let reference = fx.registry.image("acme/secret", "v1");
    assert_refused(
        &docker.pull(&reference),
        "anonymous docker pull of acme/secret",
    );
}

// ---------------------------------------------------------------------------------------
// Tests: expiry at midnight UTC, with wvs-auth's clock moved by libfaketime

/// `GET /jwt/auth` as `docker login` sends it. Returns status, headers we check, body.
struct AuthAnswer {
    status: u16,
    challenge: Option<String>,
    /// The server's clock, from the `Date` header.
    date: DateTime<Utc>,
    body: serde_json::Value,
}

fn login_request(server: &Server, token: &Token) -> AuthAnswer {
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", token.username, token.secret));
    let result = ureq::get(&format!("{}/jwt/auth", server.url))
        .query("service", "container_registry")
        .query("account", &token.username)
        .query("client_id", "docker")
        .query("offline_token", "true")
        .set("Authorization", &format!("Basic {basic}"))
        .timeout(Duration::from_secs(10))
        .call();
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("token request to {} failed: {e}", server.url),
    };
    let status = response.status();
    let challenge = response.header("WWW-Authenticate").map(str::to_string);
    let date = response.header("Date").expect("Date header").to_string();
    let date = DateTime::parse_from_rfc2822(&date)
        .expect("HTTP date")
        .with_timezone(&Utc);
    let body = response.into_json().expect("JSON body");
    AuthAnswer {
        status,
        challenge,
        date,
        body,
    }
}

fn assert_granted(answer: &AuthAnswer, what: &str) {
    assert_eq!(answer.status, 200, "{what}: {}", answer.body);
    assert!(answer.body["token"].is_string(), "{what}: {}", answer.body);
}

fn assert_expired(answer: &AuthAnswer, what: &str) {
    assert_eq!(answer.status, 401, "{what}: {}", answer.body);
    assert_eq!(
        answer.challenge.as_deref(),
        Some(r#"Basic realm="wvs-auth""#),
        "{what}"
    );
    assert_eq!(answer.body["errors"][0]["code"], "UNAUTHORIZED", "{what}");
}

/// The server's clock from the token's `issued_at` (second precision).
fn issued_at(answer: &AuthAnswer) -> DateTime<Utc> {
    let raw = answer.body["issued_at"].as_str().expect("issued_at");
    DateTime::parse_from_rfc3339(raw)
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

/// wvs-auth whose clock starts at `start` (UTC) and runs on.
fn serve_at(env: &Env, start: &str) -> Server {
    let spec = format!("@{start}");
    env.serve_with(&["env", "TZ=UTC", "faketime", "-f", &spec], &[])
}

fn midnight(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(chrono::NaiveTime::MIN).and_utc()
}

#[test]
fn token_expires_at_midnight_utc_of_its_date() {
    require_tools(&["faketime"]);
    let env = Env::new();
    env.cli_ok(&["group", "create", "acme"]);
    env.cli_ok(&["project", "create", "acme/app"]);
    env.cli_ok(&["keys", "init"]); // not inside a faked server's start-up
    let expiry = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(2))
        .expect("date");
    let eve = expiry.pred_opt().expect("date");
    let token = env.token(
        &["--project", "acme/app"],
        "read_registry",
        &["--expires-at", &expiry.to_string()],
    );

    // Real clock: two days to go.
    assert_granted(&login_request(&env.serve(&[]), &token), "real clock");

    // Midday before: valid; and faketime really moves the binary's clock.
    let server = serve_at(&env, &format!("{eve} 12:00:00"));
    let answer = login_request(&server, &token);
    assert_granted(&answer, "noon of the day before");
    let noon = midnight(eve) + chrono::Duration::hours(12);
    let seen = issued_at(&answer);
    assert!(
        seen >= noon && seen < noon + chrono::Duration::seconds(30),
        "faketime did not move wvs-auth's clock: issued_at {seen}, expected about {noon}"
    );
    drop(server);

    // Just after midnight: refused at once.
    let server = serve_at(&env, &format!("{expiry} 00:00:01"));
    let answer = login_request(&server, &token);
    assert!(
        answer.date >= midnight(expiry),
        "server clock {} not faked",
        answer.date
    );
    assert_expired(&answer, "one second after midnight");
    drop(server);

    // Across midnight on one running server: granted at 23:59:5x, refused at 00:00:0x.
    let server = serve_at(&env, &format!("{eve} 23:59:58"));
    let before = login_request(&server, &token);
    assert_granted(
        &before,
        &format!("just before midnight (server date {})", before.date),
    );
    let seen = issued_at(&before);
    assert!(
        seen < midnight(expiry) && seen >= midnight(expiry) - chrono::Duration::seconds(3),
        "first request was not served just before midnight (issued_at {seen})"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        std::thread::sleep(Duration::from_millis(250));
        let health = ureq::get(&format!("{}/-/health", server.url))
            .call()
            .expect("health");
        let date = health.header("Date").expect("Date header");
        let date = DateTime::parse_from_rfc2822(date).expect("HTTP date");
        if date >= midnight(expiry) {
            break login_request(&server, &token);
        }
        assert!(
            Instant::now() < deadline,
            "fake clock did not pass midnight within 5 s"
        );
    };
    assert!(after.date >= midnight(expiry));
    assert_expired(&after, "just after midnight, same server");
}
