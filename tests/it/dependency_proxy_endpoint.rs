//! The HTTP contract of the Dependency Proxy (SPEC §2, §3) against a real `wvs-auth serve`:
//! `/jwt/auth` for service `dependency_proxy`, and the GitLab-style `/v2/` endpoint up to
//! the point where it would call the cache (the cache itself: `dependency_proxy_e2e.rs`).

use crate::common;

use common::http::{agent, answer, creds, jwt_part, pair, verify_jwt, Answer};
use common::{free_port, Env, Server, Token};
use serde_json::{json, Value};

const SVC: &str = "dependency_proxy";
const RW: &str = "read_registry,write_registry";
const ALPINE: &str = "acme/dependency_proxy/containers/alpine";

/// `acme` (proxy on) with project `acme/app`, `acme/platform` (off), `other` (on).
fn env() -> Env {
    let env = Env::new();
    for args in [
        &["group", "create", "acme", "--dependency-proxy"][..],
        &["group", "create", "acme/platform"],
        &["group", "create", "other", "--dependency-proxy"],
        &["project", "create", "acme/app"],
    ] {
        env.cli_ok(args);
    }
    env
}

fn ask_service(server: &Server, service: &str, auth: Option<&str>, scopes: &[&str]) -> Answer {
    let mut q = pair("service", service);
    for s in scopes {
        q.push('&');
        q.push_str(&pair("scope", s));
    }
    let mut req = agent().get(&format!("{}/jwt/auth?{q}", server.url));
    if let Some(a) = auth {
        req = req.set("Authorization", a);
    }
    answer(req.call())
}

fn ask(server: &Server, token: Option<&Token>, scopes: &[&str]) -> Answer {
    let auth = token.map(creds);
    ask_service(server, SVC, auth.as_deref(), scopes)
}

fn repo(name: &str, actions: &[&str]) -> Value {
    json!({ "type": "repository", "name": name, "actions": actions })
}

fn jwks(server: &Server) -> Value {
    answer(agent().get(&format!("{}/-/jwks", server.url)).call()).json()
}

/// A refusal in SPEC §3's JSON shape; returns the message.
fn refused(a: &Answer, status: u16, code: &str) -> String {
    let (c, message) = a.expect_error(status);
    assert_eq!(c, code, "{a:?}");
    if status == 401 {
        assert_eq!(
            a.header("www-authenticate"),
            Some(r#"Basic realm="wvs-auth""#)
        );
    }
    message
}

#[test]
fn group_token_with_both_scopes_gets_pull_never_push() {
    let env = env();
    let token = env.token(&["--group", "acme"], RW, &[]);
    let server = env.serve(&[]);

    let a = ask(
        &server,
        Some(&token),
        &[
            "repository:library/alpine:pull,push,delete,*",
            &format!("repository:{ALPINE}:pull,push"),
            "repository:acme/platform/dependency_proxy/containers/foo/bar:pull",
            // Another group's GitLab-style path, a push-only scope and the catalog: dropped.
            "repository:other/dependency_proxy/containers/alpine:pull",
            "repository:library/busybox:push",
            "registry:catalog:*",
        ],
    );
    let jwt = a.token();
    let claims = verify_jwt(&jwt, &jwks(&server), "wvs-auth", SVC);
    assert_eq!(
        claims["access"],
        json!([
            repo("library/alpine", &["pull"]),
            repo(ALPINE, &["pull"]),
            repo(
                "acme/platform/dependency_proxy/containers/foo/bar",
                &["pull"]
            ),
        ])
    );
    assert_eq!(claims["aud"], SVC);
    assert_eq!(claims["sub"], token.username.as_str());
    assert_eq!(claims["group"], "acme");
    assert!(jwt_part(&jwt, 0)["x5c"].is_array());

    // `docker login`: no scope, an empty access list.
    let login = ask(&server, Some(&token), &[]);
    assert_eq!(jwt_part(&login.token(), 1)["access"], json!([]));

    // containerd's OAuth POST reaches the same decision.
    let body = format!(
        "grant_type=password&{}&{}&{}&{}",
        pair("username", &token.username),
        pair("password", &token.secret),
        pair("service", SVC),
        pair("scope", "repository:library/alpine:pull,push")
    );
    let a = answer(
        agent()
            .post(&format!("{}/jwt/auth", server.url))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&body),
    );
    assert_eq!(
        jwt_part(&a.token(), 1)["access"],
        json!([repo("library/alpine", &["pull"])])
    );

    // The same token at the registry service keeps its registry rights (and no group claim).
    let registry = ask_service(
        &server,
        "container_registry",
        Some(&creds(&token)),
        &["repository:acme/app:pull,push"],
    );
    let claims = jwt_part(&registry.token(), 1);
    assert_eq!(
        claims["access"],
        json!([repo("acme/app", &["pull", "push"])])
    );
    assert!(claims.get("group").is_none(), "{claims}");
}

#[test]
fn every_other_principal_is_refused_with_a_reason() {
    let env = env();
    let scope = [format!("repository:{ALPINE}:pull")];
    let scope: Vec<&str> = scope.iter().map(String::as_str).collect();
    let project = env.token(&["--project", "acme/app"], RW, &[]);
    let read_only = env.token(&["--group", "acme"], "read_registry", &[]);
    let write_only = env.token(&["--group", "acme"], "write_registry", &[]);
    let packages = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let disabled = env.token(&["--group", "acme/platform"], RW, &[]);
    let revoked = env.token(&["--group", "acme"], RW, &[]);
    env.cli_ok(&["token", "revoke", &revoked.id.to_string()]);
    let expired = env.expired_token(&["--group", "acme"], RW);
    let good = env.token(&["--group", "acme"], RW, &[]);
    let server = env.serve(&[]);

    let m = refused(&ask(&server, Some(&project), &scope), 403, "DENIED");
    assert!(m.contains("group deploy token"), "{m}");
    for one_scope in [&read_only, &write_only, &packages] {
        let m = refused(&ask(&server, Some(one_scope), &scope), 403, "DENIED");
        assert!(m.contains("read_registry and write_registry"), "{m}");
    }
    let m = refused(&ask(&server, Some(&disabled), &scope), 403, "DENIED");
    assert!(m.contains("disabled for group acme/platform"), "{m}");
    // docker login (no scope) is refused the same way, so it fails at once.
    refused(&ask(&server, Some(&disabled), &[]), 403, "DENIED");
    refused(&ask(&server, Some(&project), &[]), 403, "DENIED");

    for bad in [&revoked, &expired] {
        let a = ask(&server, Some(bad), &scope);
        refused(&a, 401, "UNAUTHORIZED");
        assert!(!a.body.contains(&bad.secret));
    }
    let wrong = Token {
        secret: format!("{}x", good.secret),
        ..good.clone()
    };
    refused(&ask(&server, Some(&wrong), &scope), 401, "UNAUTHORIZED");
    refused(&ask(&server, None, &scope), 401, "UNAUTHORIZED");

    // The group switch takes effect on the next request, both ways.
    assert_eq!(
        jwt_part(&ask(&server, Some(&good), &scope).token(), 1)["access"],
        json!([repo(ALPINE, &["pull"])])
    );
    env.cli_ok(&["group", "update", "acme", "--dependency-proxy", "off"]);
    let m = refused(&ask(&server, Some(&good), &scope), 403, "DENIED");
    assert!(m.contains("disabled for group acme"), "{m}");
    env.cli_ok(&["group", "update", "acme", "--dependency-proxy", "on"]);
    ask(&server, Some(&good), &scope).token();
}

#[test]
fn proxy_service_names_are_configurable_and_distinct() {
    let env = env();
    let token = env.token(&["--group", "acme"], RW, &[]);
    let server = env.serve(&["--proxy-service", "dp-a", "--proxy-service", "dp-b"]);
    for service in ["dp-a", "dp-b"] {
        let a = ask_service(
            &server,
            service,
            Some(&creds(&token)),
            &["repository:library/alpine:pull,push"],
        );
        let claims = jwt_part(&a.token(), 1);
        assert_eq!(claims["aud"], service);
        assert_eq!(claims["access"], json!([repo("library/alpine", &["pull"])]));
    }
    let a = ask_service(&server, SVC, Some(&creds(&token)), &[]);
    refused(&a, 404, "NOT_FOUND");
    drop(server);

    let out = env
        .command(&[])
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--service",
            "shared",
            "--proxy-service",
            "shared",
        ])
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shared") && err.trim().lines().count() == 1,
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// The GitLab-style /v2/ endpoint, with the cache address pointing at a closed port.

/// A `/v2/` refusal: registry JSON, the API version header, a Bearer challenge on 401.
fn v2_refused(a: &Answer, status: u16, code: &str) {
    let (c, _) = a.expect_error(status);
    assert_eq!(c, code, "{a:?}");
    assert_eq!(
        a.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    if status == 401 {
        assert!(a
            .header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer realm=")));
    }
}

fn v2(server: &Server, method: &str, path: &str, bearer: Option<&str>) -> Answer {
    let mut req = agent().request(method, &format!("{}{path}", server.url));
    if let Some(t) = bearer {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    answer(req.call())
}

fn manifest_path(name: &str) -> String {
    format!("/v2/{name}/manifests/latest")
}

#[test]
fn v2_challenges_verifies_and_refuses_like_a_registry() {
    let env = env();
    let token = env.token(&["--group", "acme"], RW, &[]);
    let closed = free_port();
    let server = env.serve(&["--proxy-registry", &format!("http://127.0.0.1:{closed}")]);
    let realm = format!("{}/jwt/auth", server.url);

    // The base endpoint: challenge, then 200 with any valid token (docker login).
    let a = v2(&server, "GET", "/v2/", None);
    v2_refused(&a, 401, "UNAUTHORIZED");
    assert_eq!(
        a.header("www-authenticate"),
        Some(format!(r#"Bearer realm="{realm}",service="{SVC}""#).as_str())
    );
    assert_eq!(
        a.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let login = ask(&server, Some(&token), &[]).token();
    let a = v2(&server, "GET", "/v2/", Some(&login));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(
        a.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    let a = v2(&server, "GET", "/v2/", Some("not.a.jwt"));
    v2_refused(&a, 401, "UNAUTHORIZED");
    assert!(a
        .header("www-authenticate")
        .is_some_and(|c| c.ends_with(r#"error="invalid_token""#)));

    // A manifest: challenge with the scope docker must ask for.
    let a = v2(&server, "GET", &manifest_path(ALPINE), None);
    v2_refused(&a, 401, "UNAUTHORIZED");
    assert_eq!(
        a.header("www-authenticate"),
        Some(
            format!(r#"Bearer realm="{realm}",service="{SVC}",scope="repository:{ALPINE}:pull""#)
                .as_str()
        )
    );
    // A token without that access (docker login's), or for another name: insufficient.
    let other = ask(
        &server,
        Some(&token),
        &["repository:acme/dependency_proxy/containers/busybox:pull"],
    )
    .token();
    for t in [&login, &other] {
        let a = v2(&server, "GET", &manifest_path(ALPINE), Some(t));
        v2_refused(&a, 401, "UNAUTHORIZED");
        assert!(a
            .header("www-authenticate")
            .is_some_and(|c| c.ends_with(r#"error="insufficient_scope""#)));
    }
    // A registry-service token for the same name: wrong audience.
    let registry = ask_service(
        &server,
        "container_registry",
        Some(&creds(&token)),
        &[&format!("repository:{ALPINE}:pull")],
    )
    .token();
    let a = v2(&server, "GET", &manifest_path(ALPINE), Some(&registry));
    assert!(a
        .header("www-authenticate")
        .is_some_and(|c| c.ends_with(r#"error="invalid_token""#)));
    // A tampered token.
    let good = ask(
        &server,
        Some(&token),
        &[&format!("repository:{ALPINE}:pull")],
    )
    .token();
    let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
    let claims = jwt_part(&good, 1).to_string().replace("acme", "acmf");
    parts[1] = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims);
    let a = v2(
        &server,
        "GET",
        &manifest_path(ALPINE),
        Some(&parts.join(".")),
    );
    v2_refused(&a, 401, "UNAUTHORIZED");

    // The good token gets through to the cache, which is down: 502, JSON.
    let a = v2(&server, "GET", &manifest_path(ALPINE), Some(&good));
    let (code, _) = a.expect_error(502);
    assert_eq!(code, "UNAVAILABLE");
    let a = v2(&server, "HEAD", &manifest_path(ALPINE), Some(&good));
    assert_eq!(a.status, 502);

    // Pushes are refused; other /v2/ paths do not exist.
    let a = v2(
        &server,
        "POST",
        &format!("/v2/{ALPINE}/blobs/uploads/"),
        Some(&good),
    );
    v2_refused(&a, 403, "DENIED");
    let a = v2(&server, "PUT", &manifest_path(ALPINE), Some(&good));
    v2_refused(&a, 403, "DENIED");
    for path in [
        "/v2/_catalog",
        "/v2/acme/app/manifests/latest",
        &format!("/v2/{ALPINE}/tags/list"),
        &format!("/v2/{ALPINE}/manifests/..%2f..%2fx"),
        "/v2x",
    ] {
        let a = v2(&server, "GET", path, Some(&good));
        v2_refused(&a, 404, "NOT_FOUND");
    }
}

#[test]
fn v2_checks_the_group_in_the_path_and_the_realm_is_configurable() {
    let env = env();
    let acme = env.token(&["--group", "acme"], RW, &[]);
    let other = env.token(&["--group", "other"], RW, &[]);
    let closed = free_port();
    let server = env.serve(&[
        "--proxy-registry",
        &format!("http://127.0.0.1:{closed}"),
        "--public-url",
        "https://auth.example.com/",
    ]);
    let a = v2(&server, "GET", "/v2/", None);
    assert_eq!(
        a.header("www-authenticate"),
        Some(r#"Bearer realm="https://auth.example.com/jwt/auth",service="dependency_proxy""#)
    );
    // /jwt/auth never grants another group's path ...
    let a = ask(
        &server,
        Some(&other),
        &[&format!("repository:{ALPINE}:pull")],
    );
    assert_eq!(jwt_part(&a.token(), 1)["access"], json!([]));
    // ... and /v2/ checks the group claim even for a name the token holds: a subgroup path
    // of acme passes, other's token on acme's path does not.
    let sub = "acme/platform/dependency_proxy/containers/alpine";
    let t = ask(&server, Some(&acme), &[&format!("repository:{sub}:pull")]).token();
    assert_eq!(
        v2(&server, "GET", &manifest_path(sub), Some(&t)).status,
        502
    );
    let t = ask(
        &server,
        Some(&other),
        &[&format!("repository:{ALPINE}:pull")],
    )
    .token();
    v2_refused(
        &v2(&server, "GET", &manifest_path(ALPINE), Some(&t)),
        401,
        "UNAUTHORIZED",
    );
}

#[test]
fn v2_is_not_served_without_a_proxy_registry() {
    let env = env();
    let server = env.serve(&[]);
    let a = v2(&server, "GET", "/v2/", None);
    let (code, _) = a.expect_error(404);
    assert_eq!(code, "NOT_FOUND");
}
