//! `/jwt/auth` for users (issue 6, SPEC §2, §3): personal access tokens and passwords in
//! the Basic header, roles from group and project memberships, PAT scopes, revocation and
//! expiry, and the JWT's `sub`, `auth_type` and `exp`.

use crate::common;

use chrono::{Days, Utc};
use common::http::{agent, answer, creds, jwt_part, pair, verify_jwt, Answer};
use common::users::password;
use common::{env_with_projects, have, Server, Token};
use serde_json::{json, Value};

const SVC: &str = "container_registry";
const RW: &str = "read_registry,write_registry";
const ALL: &str = "repository:acme/app:pull,push,delete";

fn ask(server: &Server, t: &Token, scopes: &[&str]) -> Answer {
    let mut q = pair("service", SVC);
    for s in scopes {
        q.push('&');
        q.push_str(&pair("scope", s));
    }
    answer(
        agent()
            .get(&format!("{}/jwt/auth?{q}", server.url))
            .set("Authorization", &creds(t))
            .call(),
    )
}

fn repo(name: &str, actions: &[&str]) -> Value {
    json!({ "type": "repository", "name": name, "actions": actions })
}

/// The `access` a token request for `scopes` gets; nothing granted is `[]`.
fn access(server: &Server, t: &Token, scopes: &[&str]) -> Value {
    ask(server, t, scopes).access()
}

fn assert_unauthorized(a: &Answer, secret: &str) {
    assert_eq!(a.expect_error(401).0, "UNAUTHORIZED");
    assert_eq!(
        a.header("www-authenticate"),
        Some(r#"Basic realm="wvs-auth""#),
        "{a:?}"
    );
    assert!(!a.body.contains(secret), "secret in error body: {}", a.body);
}

const ROLES: [&str; 5] = ["guest", "reporter", "developer", "maintainer", "owner"];

/// What each role gets on a private project with a read+write registry PAT.
fn expected(role: &str) -> &'static [&'static str] {
    match role {
        "guest" => &[],
        "reporter" => &["pull"],
        "developer" => &["pull", "push"],
        _ => &["pull", "push", "delete"],
    }
}

#[test]
fn each_role_by_group_and_by_project_membership() {
    let env = env_with_projects();
    let mut pats = Vec::new();
    for role in ROLES {
        for (how, target) in [("g", ["--group", "acme"]), ("p", ["--project", "acme/app"])] {
            let name = format!("{role}-{how}");
            env.user(&name, None);
            env.member(&name, &target, role);
            pats.push((role, how, env.pat(&name, RW)));
        }
    }
    let server = env.serve(&[]);
    let jwks = answer(agent().get(&format!("{}/-/jwks", server.url)).call()).json();
    for (role, how, pat) in &pats {
        let a = ask(&server, pat, &[ALL, "repository:acme/sub/svc:pull"]);
        let claims = verify_jwt(&a.token(), &jwks, "wvs-auth", SVC);
        assert_eq!(claims["sub"], pat.username.as_str());
        assert_eq!(claims["auth_type"], "personal_access_token");
        let mut want = Vec::new();
        if !expected(role).is_empty() {
            want.push(repo("acme/app", expected(role)));
        }
        // Group roles are inherited by subgroups' projects; a project role is not.
        if *how == "g" && *role != "guest" {
            want.push(repo("acme/sub/svc", &["pull"]));
        }
        assert_eq!(claims["access"], json!(want), "{role} via {how}");
        // Another project of the group: only group members reach it.
        let other = access(&server, pat, &["repository:acme/other:pull,push,delete"]);
        let want = if *how == "g" && !expected(role).is_empty() {
            json!([repo("acme/other", expected(role))])
        } else {
            json!([])
        };
        assert_eq!(other, want, "{role} via {how} on acme/other");
    }
}

#[test]
fn non_members_pull_internal_projects_only() {
    let env = env_with_projects();
    env.user("stranger", None);
    let pat = env.pat("stranger", RW);
    let server = env.serve(&[]);
    assert_eq!(
        access(
            &server,
            &pat,
            &["repository:acme/int:pull,push", "repository:acme/app:pull"]
        ),
        json!([repo("acme/int", &["pull"])])
    );
}

#[test]
fn pat_scopes_limit_what_the_role_allows() {
    let env = env_with_projects();
    env.user("mia", None);
    env.member("mia", &["--project", "acme/app"], "maintainer");
    let read = env.pat("mia", "read_registry");
    let write = env.pat("mia", "write_registry");
    let api = env.pat("mia", "api");
    let git_only = env.pat("mia", "read_repository,write_repository");
    let server = env.serve(&[]);

    assert_eq!(
        access(&server, &read, &[ALL]),
        json!([repo("acme/app", &["pull"])])
    );
    assert_eq!(
        access(&server, &write, &[ALL]),
        json!([repo("acme/app", &["push", "delete"])])
    );
    assert_eq!(
        access(&server, &api, &[ALL]),
        json!([repo("acme/app", &["pull", "push", "delete"])])
    );
    // `*` and the catalog are never granted, whatever the role.
    assert_eq!(
        access(
            &server,
            &api,
            &["repository:acme/app:*", "registry:catalog:*"]
        ),
        json!([])
    );

    // No registry scope at all: refused outright, and the message names the PAT.
    for scopes in [&[ALL][..], &[]] {
        let a = ask(&server, &git_only, scopes);
        assert_eq!(a.expect_error(403).0, "DENIED");
        assert_eq!(
            a.json()["errors"][0]["message"],
            "personal access token lacks read_registry/write_registry"
        );
        assert!(!a.body.contains(&git_only.secret));
    }
}

#[test]
fn password_login_and_refusals() {
    let env = env_with_projects();
    env.user("dev", Some("correct horse battery"));
    env.member("dev", &["--group", "acme"], "developer");
    env.user("other", None);
    let pat = env.pat("dev", RW);
    let revoked = env.pat("dev", RW);
    let server = env.serve(&[]);

    // The password works as docker login sends it: Basic, and as containerd: the OAuth form.
    let by_password = password("dev", "correct horse battery");
    let a = ask(&server, &by_password, &[ALL]);
    let claims = jwt_part(&a.token(), 1);
    assert_eq!(claims["sub"], "dev");
    assert_eq!(claims["auth_type"], "user");
    assert_eq!(
        claims["access"],
        json!([repo("acme/app", &["pull", "push"])])
    );
    let form = format!(
        "grant_type=password&{}&{}&{}&{}",
        pair("username", "dev"),
        pair("password", "correct horse battery"),
        pair("service", SVC),
        pair("scope", "repository:acme/app:pull")
    );
    let a = answer(
        agent()
            .post(&format!("{}/jwt/auth", server.url))
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_string(&form),
    );
    assert_eq!(a.access(), json!([repo("acme/app", &["pull"])]));

    // Wrong password, unknown user, a PAT under another username.
    assert_unauthorized(
        &ask(&server, &password("dev", "wrong horse"), &[ALL]),
        "wrong horse",
    );
    assert_unauthorized(
        &ask(&server, &password("nobody", "correct horse battery"), &[]),
        "correct horse battery",
    );
    let borrowed = Token {
        username: "other".into(),
        ..pat.clone()
    };
    assert_unauthorized(&ask(&server, &borrowed, &[ALL]), &pat.secret);

    // Revoked: works, then not on the very next request.
    assert_eq!(ask(&server, &revoked, &[]).status, 200);
    env.cli_ok(&["user", "token", "revoke", &revoked.id.to_string()]);
    assert_unauthorized(&ask(&server, &revoked, &[ALL]), &revoked.secret);
    assert_unauthorized(&ask(&server, &revoked, &[]), &revoked.secret);

    // Expired at 00:00 UTC today (made "yesterday" under libfaketime).
    let expired = env.expired_pat("dev", RW);
    assert_unauthorized(&ask(&server, &expired, &[ALL]), &expired.secret);
}

/// The JWT never outlives the PAT: asked two minutes before the PAT's expiry, it expires
/// at that midnight, not five minutes later.
#[test]
fn jwt_exp_is_capped_by_the_pat_expiry() {
    assert!(have("faketime"), "faketime is not on PATH (CI installs it)");
    let env = env_with_projects();
    env.user("dev", None);
    env.member("dev", &["--project", "acme/app"], "developer");
    env.cli_ok(&["keys", "init"]); // not inside a faked server's start-up
    let expiry = Utc::now()
        .date_naive()
        .checked_add_days(Days::new(2))
        .expect("date");
    let eve = expiry.pred_opt().expect("date");
    let pat = env.pat_with(&[], "dev", RW, &["--expires-at", &expiry.to_string()]);
    let spec = format!("@{eve} 23:58:00");
    let server = env.serve_with(&["env", "TZ=UTC", "faketime", "-f", &spec], &[]);
    let claims = jwt_part(&ask(&server, &pat, &[ALL]).token(), 1);
    let midnight = expiry
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp();
    let iat = claims["iat"].as_i64().expect("iat");
    assert!(
        iat < midnight && iat > midnight - 300,
        "faketime did not move the clock: iat {iat}"
    );
    assert_eq!(claims["exp"].as_i64(), Some(midnight), "{claims}");
}
