//! The management API (`/api/v4`, SPEC §6, issue 6) against a real `wvs-auth serve` with a
//! real HTTP client: every role against project and group tokens, every credential case,
//! `:id` forms, validation, the admins' list, CI variables and the audit log.
//!
//! Every test has its own data directory, keys directory and server.

use crate::common;

use common::api::{encoded, expect, namespace_id, pat, user, Api, Auth, Pat};
use common::http::{agent, answer, basic, Answer};
use common::{Env, Server, Token};
use serde_json::{json, Value};

const PROJECT: &str = "acme/platform/api";
const GROUP: &str = "acme/platform";

/// An installation with `acme/platform/api` (and `acme/other`), one user per role on the
/// group `acme/platform` (inherited by the project), a project-only maintainer, an admin and
/// a stranger, each with an `api` personal access token.
struct World {
    // Fields drop in this order: the server first, then its directories.
    server: Server,
    api: Api,
    env: Env,
}

/// `(flag, path, role)` as `user add-member` takes it.
type Membership = (&'static str, &'static str, &'static str);

/// Users of [`World`]: `(name, admin, memberships)`.
const USERS: &[(&str, bool, &[Membership])] = &[
    ("guest", false, &[("--group", GROUP, "guest")]),
    ("reporter", false, &[("--group", GROUP, "reporter")]),
    ("developer", false, &[("--group", GROUP, "developer")]),
    ("maintainer", false, &[("--group", GROUP, "maintainer")]),
    ("owner", false, &[("--group", GROUP, "owner")]),
    ("projmaint", false, &[("--project", PROJECT, "maintainer")]),
    ("admin", true, &[]),
    ("stranger", false, &[]),
];

impl World {
    fn new() -> Self {
        let env = Env::new();
        for command in [
            "group create acme",
            "group create acme/platform",
            "project create acme/platform/api",
            "project create acme/other",
        ] {
            env.cli_ok(&command.split(' ').collect::<Vec<_>>());
        }
        for (name, admin, memberships) in USERS {
            user(&env, name, *admin, memberships);
        }
        let server = env.serve(&[]);
        Self {
            api: Api::new(&server),
            server,
            env,
        }
    }

    /// A fresh `api` token of `name` (each call makes a new one).
    fn pat(&self, name: &str) -> String {
        pat(&self.env, name, "api", &[]).secret
    }

    fn cli_token(&self, owner: &[&str], scopes: &str) -> Token {
        self.env.token(owner, scopes, &[])
    }

    /// Creates a token through the API as `who`; returns the 201 body.
    fn create(&self, who: &str, base: &str, body: Value) -> Value {
        let answer = self.api.post_json(
            &format!("{base}/deploy_tokens"),
            Auth::PrivateToken(who),
            &body,
        );
        expect(&answer, 201, "create")
    }

    /// `GET /jwt/auth` for a push+pull of `project` with Basic credentials.
    fn jwt_auth(&self, username: &str, secret: &str, project: &str) -> Answer {
        answer(
            agent()
                .get(&format!(
                    "{}/jwt/auth?service=container_registry&scope=repository:{project}:pull",
                    self.server.url
                ))
                .set("Authorization", &basic(username, secret))
                .call(),
        )
    }
}

fn project_base() -> String {
    format!("/projects/{}", encoded(PROJECT))
}

fn group_base() -> String {
    format!("/groups/{}", encoded(GROUP))
}

fn gitlab_message(answer: &Answer, status: u16, message: &str, what: &str) {
    let body = expect(answer, status, what);
    assert_eq!(body, json!({ "message": message }), "{what}");
}

// ---------------------------------------------------------------------------------------
// Roles

/// Expected statuses of (list, create, show, delete) for one role.
type Row = (&'static str, [u16; 4]);

fn check_matrix(world: &World, base: &str, owner: &[&str], rows: &[Row]) {
    for (name, [list, create, show, delete]) in rows {
        let pat = world.pat(name);
        let who = Auth::PrivateToken(&pat);
        let victim = world.cli_token(owner, "read_registry");
        let what = |op: &str| format!("{name} {op} {base}");

        let a = world.api.get(&format!("{base}/deploy_tokens"), who);
        assert_eq!(a.status, *list, "{}: {a:?}", what("list"));
        let a = world.api.post_json(
            &format!("{base}/deploy_tokens"),
            who,
            &json!({ "name": format!("by-{name}"), "scopes": ["read_registry"] }),
        );
        assert_eq!(a.status, *create, "{}: {a:?}", what("create"));
        let a = world
            .api
            .get(&format!("{base}/deploy_tokens/{}", victim.id), who);
        assert_eq!(a.status, *show, "{}: {a:?}", what("show"));
        let a = world
            .api
            .delete(&format!("{base}/deploy_tokens/{}", victim.id), who);
        assert_eq!(a.status, *delete, "{}: {a:?}", what("delete"));
        if *delete != 204 {
            if *delete == 403 {
                gitlab_message(&a, 403, "403 Forbidden", &what("delete"));
            }
            // Refused means refused: the token still works.
            assert_eq!(
                world
                    .jwt_auth(&victim.username, &victim.secret, PROJECT)
                    .status,
                200
            );
        } else {
            assert_eq!(
                world
                    .jwt_auth(&victim.username, &victim.secret, PROJECT)
                    .status,
                401
            );
        }
    }
}

#[test]
fn project_tokens_maintainers_and_up_manage_others_are_forbidden() {
    let world = World::new();
    const ALL: [u16; 4] = [200, 201, 200, 204];
    const NONE: [u16; 4] = [403; 4];
    check_matrix(
        &world,
        &project_base(),
        &["--project", PROJECT],
        &[
            ("guest", NONE),
            ("reporter", NONE),
            ("developer", NONE),
            // Private project: a non-member is told it does not exist, as GitLab does.
            ("stranger", [404; 4]),
            ("maintainer", ALL),
            ("owner", ALL),
            ("projmaint", ALL),
            ("admin", ALL),
        ],
    );
}

#[test]
fn group_tokens_maintainers_list_owners_create_and_revoke() {
    let world = World::new();
    const ALL: [u16; 4] = [200, 201, 200, 204];
    const NONE: [u16; 4] = [403; 4];
    check_matrix(
        &world,
        &group_base(),
        &["--group", GROUP],
        &[
            ("guest", NONE),
            ("reporter", NONE),
            ("developer", NONE),
            // Non-members of the group, even a project's maintainer below it, see no group.
            ("stranger", [404; 4]),
            ("projmaint", [404; 4]),
            ("maintainer", [200, 403, 200, 403]),
            ("owner", ALL),
            ("admin", ALL),
        ],
    );
}

// ---------------------------------------------------------------------------------------
// Credentials

#[test]
fn only_an_active_api_personal_access_token_opens_the_api() {
    let world = World::new();
    let list = format!("{}/deploy_tokens", project_base());
    let good = world.pat("maintainer");

    expect(
        &world.api.get(&list, Auth::PrivateToken(&good)),
        200,
        "PRIVATE-TOKEN",
    );
    expect(&world.api.get(&list, Auth::Bearer(&good)), 200, "Bearer");

    let unauthorized = |auth: Auth, what: &str| {
        let a = world.api.get(&list, auth);
        gitlab_message(&a, 401, "401 Unauthorized", what);
        assert!(
            a.header("www-authenticate").is_some(),
            "{what}: no challenge"
        );
    };
    unauthorized(Auth::None, "no credentials");
    unauthorized(Auth::PrivateToken("wvspat-nonsense"), "unknown PAT");
    unauthorized(Auth::PrivateToken(&format!("{good}x")), "wrong PAT");
    unauthorized(Auth::PrivateToken(""), "empty PRIVATE-TOKEN");
    // A password is no API credential, even the right Basic pair of a real PAT.
    unauthorized(
        Auth::Header(&basic("maintainer", &good)),
        "Basic with a PAT",
    );

    // A deploy token never opens the management API, in either header.
    let deploy = world.cli_token(&["--project", PROJECT], "read_registry,read_repository");
    unauthorized(
        Auth::PrivateToken(&deploy.secret),
        "deploy token as PRIVATE-TOKEN",
    );
    unauthorized(Auth::Bearer(&deploy.secret), "deploy token as Bearer");

    // A PAT without `api`: GitLab's insufficient_scope 403.
    let narrow = pat(
        &world.env,
        "maintainer",
        "read_repository,read_registry",
        &[],
    );
    let a = world.api.get(&list, Auth::PrivateToken(&narrow.secret));
    let body = expect(&a, 403, "PAT without api");
    assert_eq!(body["error"], "insufficient_scope", "{body}");

    // Revoked: refused on the very next request.
    let revoked = pat(&world.env, "maintainer", "api", &[]);
    expect(
        &world.api.get(&list, Auth::PrivateToken(&revoked.secret)),
        200,
        "before revoke",
    );
    revoke_pat(&world.env, &revoked);
    unauthorized(Auth::PrivateToken(&revoked.secret), "revoked PAT");

    // Expired: made "yesterday" under libfaketime to expire at midnight today.
    let expired = expired_pat(&world.env, "maintainer");
    unauthorized(Auth::PrivateToken(&expired.secret), "expired PAT");

    // Every refusal of a presented credential is in the audit log (SPEC §5), as on the
    // other surfaces; a request without credentials is none, and no secret is written.
    let audit: Value =
        serde_json::from_str(&world.env.cli_ok(&["audit", "--json"])).expect("audit json");
    let failures: Vec<&Value> = audit
        .as_array()
        .expect("array")
        .iter()
        .filter(|e| e["action"] == "auth_failure")
        .collect();
    let on_api = failures
        .iter()
        .filter(|e| {
            e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("surface=api"))
        })
        .count();
    // The unknown and the wrong PAT, the deploy token twice, the revoked and the expired PAT.
    assert_eq!(on_api, 6, "{failures:?}");
    for secret in [&good, &deploy.secret, &revoked.secret, &expired.secret] {
        assert!(
            !audit.to_string().contains(secret.as_str()),
            "secret audited"
        );
    }
}

/// Revoked with the CLI (another process) while the server runs.
fn revoke_pat(env: &Env, pat: &Pat) {
    env.cli_ok(&["user", "token", "revoke", &pat.id.to_string()]);
}

fn expired_pat(env: &Env, user: &str) -> Pat {
    assert!(
        common::have("faketime"),
        "faketime is not on PATH; CI installs it"
    );
    let today = chrono::Utc::now().date_naive();
    let yesterday = today.pred_opt().expect("date");
    let out = env
        .command(&[
            "env",
            "TZ=UTC",
            "faketime",
            &format!("{yesterday} 12:00:00"),
        ])
        .args([
            "user",
            "token",
            "create",
            user,
            "--name",
            "old",
            "--scopes",
            "api",
            "--expires-at",
            &today.to_string(),
            "--json",
        ])
        .output()
        .expect("run wvs-auth");
    assert!(
        out.status.success(),
        "user token create under faketime: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("json");
    Pat {
        id: v["id"].as_i64().expect("id"),
        secret: v["token"].as_str().expect("token").to_string(),
    }
}

// ---------------------------------------------------------------------------------------
// Ids and routes

#[test]
fn ids_are_numeric_or_url_encoded_paths() {
    let world = World::new();
    let admin = world.pat("admin");
    let who = Auth::PrivateToken(&admin);
    let project_id = namespace_id(&world.env, "project", PROJECT);
    let group_id = namespace_id(&world.env, "group", GROUP);
    let token = world.cli_token(&["--project", PROJECT], "read_registry");

    for base in [
        format!("/projects/{project_id}"),
        format!("/projects/{}", encoded(PROJECT)),
        "/projects/acme%2fplatform%2fapi".to_string(),
    ] {
        let body = expect(
            &world.api.get(&format!("{base}/deploy_tokens"), who),
            200,
            &base,
        );
        assert_eq!(body[0]["id"], token.id, "{base}: {body}");
        expect(
            &world
                .api
                .get(&format!("{base}/deploy_tokens/{}", token.id), who),
            200,
            &base,
        );
    }
    for base in [
        format!("/groups/{group_id}"),
        format!("/groups/{}", encoded(GROUP)),
    ] {
        expect(
            &world.api.get(&format!("{base}/deploy_tokens"), who),
            200,
            &base,
        );
    }

    let nf = |path: &str, message: &str| {
        gitlab_message(&world.api.get(path, who), 404, message, path);
    };
    nf(
        "/projects/acme%2Fnope/deploy_tokens",
        "404 Project Not Found",
    );
    nf("/projects/999999/deploy_tokens", "404 Project Not Found");
    // A group is not a project, nor the other way round.
    nf(
        &format!("/projects/{}/deploy_tokens", encoded(GROUP)),
        "404 Project Not Found",
    );
    nf(
        &format!("/groups/{}/deploy_tokens", encoded(PROJECT)),
        "404 Group Not Found",
    );
    nf("/groups/nope/deploy_tokens", "404 Group Not Found");
    // Another project's token, or one that does not exist.
    let other = world.cli_token(&["--project", "acme/other"], "read_registry");
    nf(
        &format!("{}/deploy_tokens/{}", project_base(), other.id),
        "404 Not found",
    );
    nf(
        &format!("{}/deploy_tokens/987654", project_base()),
        "404 Not found",
    );
    let a = world.api.delete(
        &format!("{}/deploy_tokens/{}", project_base(), other.id),
        who,
    );
    gitlab_message(&a, 404, "404 Not found", "delete another project's token");
    assert_eq!(
        world
            .jwt_auth(&other.username, &other.secret, "acme/other")
            .status,
        200
    );

    // A token id that is no integer is GitLab's 400.
    let a = world
        .api
        .get(&format!("{}/deploy_tokens/abc", project_base()), who);
    assert_eq!(
        expect(&a, 400, "token id abc"),
        json!({ "error": "token_id is invalid" })
    );

    // Unencoded nested paths and unknown routes: GitLab's route 404, JSON.
    let a = world
        .api
        .get("/projects/acme/platform/api/deploy_tokens", who);
    assert_eq!(
        expect(&a, 404, "unencoded path"),
        json!({ "error": "404 Not Found" })
    );
    let a = world.api.get("/nothing/here", who);
    assert_eq!(
        expect(&a, 404, "unknown route"),
        json!({ "error": "404 Not Found" })
    );
    // Wrong methods on known routes.
    let a = world
        .api
        .send("PUT", &format!("{}/deploy_tokens", project_base()), who);
    expect(&a, 405, "PUT on the list");
    assert_eq!(a.header("allow"), Some("GET, POST"), "{a:?}");
    let a = world.api.send("POST", "/deploy_tokens", who);
    expect(&a, 405, "POST on the admin list");
}

// ---------------------------------------------------------------------------------------
// Create, use, revoke

#[test]
fn created_token_is_shown_once_works_and_stops_working_after_delete() {
    let world = World::new();
    let maintainer = world.pat("maintainer");
    let who = Auth::PrivateToken(&maintainer);
    let base = project_base();

    let created = world.create(
        &maintainer,
        &base,
        json!({ "name": "deployer", "scopes": ["read_registry", "write_registry"] }),
    );
    let id = created["id"].as_i64().expect("id");
    let username = created["username"].as_str().expect("username");
    let secret = created["token"].as_str().expect("token");
    assert_eq!(username, format!("wvs+deploy-token-{id}"));
    assert!(secret.starts_with("wvsdt-"), "{created}");
    assert_eq!(created["name"], "deployer");
    assert_eq!(
        created["scopes"],
        json!(["read_registry", "write_registry"])
    );
    assert_eq!(created["expires_at"], Value::Null);
    assert_eq!(created["revoked"], false);
    assert_eq!(created["expired"], false);

    // The secret works at /jwt/auth, and is never shown again.
    let granted = world.jwt_auth(username, secret, PROJECT);
    assert_eq!(granted.status, 200, "{granted:?}");
    let listed = expect(
        &world.api.get(&format!("{base}/deploy_tokens"), who),
        200,
        "list",
    );
    let row = listed
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["id"] == id))
        .expect("listed");
    assert!(row.get("token").is_none(), "list shows a secret: {row}");
    let shown = expect(
        &world.api.get(&format!("{base}/deploy_tokens/{id}"), who),
        200,
        "show",
    );
    assert!(shown.get("token").is_none(), "show shows a secret: {shown}");
    assert_eq!(
        shown
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(
            [
                "expired",
                "expires_at",
                "id",
                "name",
                "revoked",
                "scopes",
                "username"
            ]
            .map(String::from)
            .to_vec()
        ),
        "GitLab's entity fields"
    );

    // DELETE: 204, and the very next request is refused.
    let a = world.api.delete(&format!("{base}/deploy_tokens/{id}"), who);
    expect(&a, 204, "delete");
    let refused = world.jwt_auth(username, secret, PROJECT);
    assert_eq!(refused.status, 401, "{refused:?}");
    let shown = expect(
        &world.api.get(&format!("{base}/deploy_tokens/{id}"), who),
        200,
        "show revoked",
    );
    assert_eq!(shown["revoked"], true, "{shown}");
}

#[test]
fn create_accepts_gitlab_body_forms() {
    let world = World::new();
    let owner = world.pat("owner");
    let who = Auth::PrivateToken(&owner);
    let path = format!("{}/deploy_tokens", group_base());
    let next_year = (chrono::Utc::now().date_naive() + chrono::Days::new(365)).to_string();

    // Comma-separated scopes, a custom username, a date.
    let a = world.create(
        &owner,
        &group_base(),
        json!({ "name": "ci", "scopes": "read_repository,read_registry",
                "username": "ci-bot", "expires_at": next_year }),
    );
    assert_eq!(a["scopes"], json!(["read_repository", "read_registry"]));
    assert_eq!(a["username"], "ci-bot");
    assert_eq!(a["expires_at"], format!("{next_year}T00:00:00.000Z"));

    // A midnight-UTC datetime, as Terraform sends; empty username and expiry mean "none".
    let a = world.create(
        &owner,
        &group_base(),
        json!({ "name": "tf", "scopes": ["read_registry"],
                "expires_at": format!("{next_year}T00:00:00.000Z") }),
    );
    assert_eq!(a["expires_at"], format!("{next_year}T00:00:00.000Z"));
    let a = world.create(
        &owner,
        &group_base(),
        json!({ "name": "py", "scopes": ["read_registry"], "username": "", "expires_at": "" }),
    );
    assert_eq!(a["expires_at"], Value::Null);
    assert!(a["username"]
        .as_str()
        .is_some_and(|u| u.starts_with("wvs+deploy-token-")));

    // Form-encoded, Rails-style arrays and a comma string.
    for body in [
        "name=form&scopes%5B%5D=read_registry&scopes%5B%5D=write_registry",
        "name=form2&scopes=read_registry%2Cwrite_registry",
    ] {
        let a = world.api.post_raw(
            &path,
            who,
            "application/x-www-form-urlencoded",
            body.as_bytes(),
        );
        let v = expect(&a, 201, body);
        assert_eq!(
            v["scopes"],
            json!(["read_registry", "write_registry"]),
            "{body}"
        );
    }

    // Bearer works for writes too.
    let a = world.api.post_json(
        &path,
        Auth::Bearer(&owner),
        &json!({ "name": "bearer", "scopes": ["read_registry"] }),
    );
    expect(&a, 201, "create with Bearer");
}

#[test]
fn validation_errors_name_each_field() {
    let world = World::new();
    let maintainer = world.pat("maintainer");
    let who = Auth::PrivateToken(&maintainer);
    let path = format!("{}/deploy_tokens", project_base());
    let fields = |body: Value| -> Value {
        let a = world.api.post_json(&path, who, &body);
        let v = expect(&a, 400, &body.to_string());
        let message = v["message"].clone();
        assert!(message.is_object(), "per-field messages: {v}");
        for (field, messages) in message.as_object().expect("object") {
            let list = messages
                .as_array()
                .unwrap_or_else(|| panic!("{field}: {v}"));
            assert!(
                !list.is_empty()
                    && list
                        .iter()
                        .all(|m| m.as_str().is_some_and(|s| !s.is_empty())),
                "{field}: {v}"
            );
        }
        message
    };

    let m = fields(json!({ "scopes": ["read_registry"] }));
    assert!(m.get("name").is_some(), "missing name: {m}");
    let m = fields(json!({ "name": "x" }));
    assert!(m.get("scopes").is_some(), "missing scopes: {m}");
    let m = fields(json!({ "name": "x", "scopes": ["admin"] }));
    assert!(m.get("scopes").is_some(), "unknown scope: {m}");
    let m = fields(json!({ "name": "x", "scopes": ["read_registry"], "expires_at": "2001-01-01" }));
    assert!(m.get("expires_at").is_some(), "past date: {m}");
    let m = fields(json!({ "name": "x", "scopes": ["read_registry"], "expires_at": "tomorrow" }));
    assert!(m.get("expires_at").is_some(), "no date: {m}");
    let m = fields(json!({ "name": "x", "scopes": ["read_registry"], "username": "a b;rm" }));
    assert!(m.get("username").is_some(), "bad username: {m}");
    // All at once: every field is reported, not just the first.
    let m = fields(
        json!({ "name": "", "scopes": ["nope"], "expires_at": "2001-01-01",
                           "username": "-x" }),
    );
    for field in ["name", "scopes", "expires_at", "username"] {
        assert!(m.get(field).is_some(), "{field} not reported: {m}");
    }

    // Not even a request: GitLab's {"error": …}, never a 500.
    for (content_type, body) in [
        ("application/json", &b"{\"name\":"[..]),
        ("application/json", b"[1,2]"),
        (
            "application/json",
            b"{\"name\":5,\"scopes\":[\"read_registry\"]}",
        ),
        ("application/json", b"\xff\xfe"),
    ] {
        let a = world.api.post_raw(&path, who, content_type, body);
        let v = expect(&a, 400, &String::from_utf8_lossy(body));
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    let big = vec![b' '; 70 * 1024];
    let a = world.api.post_raw(&path, who, "application/json", &big);
    expect(&a, 413, "oversized body");

    // Nothing was created by any of it.
    let listed = expect(&world.api.get(&path, who), 200, "list");
    assert_eq!(listed, json!([]), "{listed}");
}

// ---------------------------------------------------------------------------------------
// Admin list

#[test]
fn admins_list_every_token_filtered_by_active() {
    let world = World::new();
    let admin = world.pat("admin");
    let who = Auth::PrivateToken(&admin);
    let live = world.cli_token(&["--project", PROJECT], "read_registry");
    let group = world.cli_token(&["--group", GROUP], "read_registry");
    let dead = world.cli_token(&["--project", "acme/other"], "read_registry");
    world.env.cli_ok(&["token", "revoke", &dead.id.to_string()]);

    let ids = |query: &str| -> Vec<i64> {
        let v = expect(
            &world.api.get(&format!("/deploy_tokens{query}"), who),
            200,
            query,
        );
        let mut ids: Vec<i64> = v
            .as_array()
            .expect("array")
            .iter()
            .map(|t| t["id"].as_i64().expect("id"))
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(""), vec![live.id, group.id, dead.id]);
    assert_eq!(ids("?active=true"), vec![live.id, group.id]);
    assert_eq!(ids("?active=false"), vec![dead.id]);
    let a = world.api.get("/deploy_tokens?active=perhaps", who);
    assert_eq!(
        expect(&a, 400, "bad active"),
        json!({ "error": "active is invalid" })
    );

    // The per-project list filters the same way.
    let path = format!("{}/deploy_tokens?active=false", project_base());
    assert_eq!(
        expect(&world.api.get(&path, who), 200, "project active=false"),
        json!([])
    );

    for name in ["maintainer", "owner", "stranger"] {
        let pat = world.pat(name);
        let a = world.api.get("/deploy_tokens", Auth::PrivateToken(&pat));
        gitlab_message(&a, 403, "403 Forbidden", name);
    }
    gitlab_message(
        &world.api.get("/deploy_tokens", Auth::None),
        401,
        "401 Unauthorized",
        "anonymous",
    );
}

// ---------------------------------------------------------------------------------------
// CI variables

#[test]
fn ci_deploy_variables_expose_the_wvs_deploy_token_to_maintainers() {
    let world = World::new();
    let maintainer = world.pat("maintainer");
    let owner = world.pat("owner");
    let developer = world.pat("developer");
    let path = format!("{}/ci/deploy_variables", project_base());
    let vars = |pat: &str| expect(&world.api.get(&path, Auth::PrivateToken(pat)), 200, "vars");

    assert_eq!(vars(&maintainer), json!([]), "no wvs-deploy-token yet");
    // A group token of that name is never a CI variable.
    world.create(
        &owner,
        &group_base(),
        json!({ "name": "wvs-deploy-token", "scopes": ["read_registry"] }),
    );
    assert_eq!(vars(&maintainer), json!([]), "group token exposed");

    let created = world.create(
        &maintainer,
        &project_base(),
        json!({ "name": "wvs-deploy-token", "scopes": ["read_registry", "read_repository"] }),
    );
    let v = vars(&maintainer);
    assert_eq!(v[0]["key"], "CI_DEPLOY_USER", "{v}");
    assert_eq!(v[0]["value"], created["username"], "{v}");
    assert_eq!(v[1]["key"], "CI_DEPLOY_PASSWORD", "{v}");
    assert_eq!(v[1]["value"], created["token"], "{v}");
    assert_eq!(v[1]["masked"], true, "{v}");
    let a = world.api.get(&path, Auth::PrivateToken(&maintainer));
    assert_eq!(a.header("cache-control"), Some("no-store"));
    // The password is the token's secret: it logs in.
    let user = v[0]["value"].as_str().expect("user");
    let password = v[1]["value"].as_str().expect("password");
    assert_eq!(world.jwt_auth(user, password, PROJECT).status, 200);

    gitlab_message(
        &world.api.get(&path, Auth::PrivateToken(&developer)),
        403,
        "403 Forbidden",
        "developer",
    );
    gitlab_message(
        &world.api.get(&path, Auth::None),
        401,
        "401 Unauthorized",
        "anonymous",
    );
    gitlab_message(
        &world.api.get(
            "/projects/acme%2Fnope/ci/deploy_variables",
            Auth::PrivateToken(&maintainer),
        ),
        404,
        "404 Project Not Found",
        "unknown project",
    );

    // Revoked: nothing is exposed any more.
    let id = created["id"].as_i64().expect("id");
    expect(
        &world.api.delete(
            &format!("{}/deploy_tokens/{id}", project_base()),
            Auth::PrivateToken(&maintainer),
        ),
        204,
        "revoke",
    );
    assert_eq!(vars(&maintainer), json!([]), "revoked token still exposed");
}

// ---------------------------------------------------------------------------------------
// Audit

#[test]
fn audit_lists_who_created_revoked_and_first_used_tokens() {
    let world = World::new();
    let maintainer = world.pat("maintainer");
    let admin = world.pat("admin");
    let before = chrono::Utc::now() - chrono::Duration::seconds(1);

    let created = world.create(
        &maintainer,
        &project_base(),
        json!({ "name": "audited", "scopes": ["read_registry"] }),
    );
    let id = created["id"].as_i64().expect("id");
    let username = created["username"].as_str().expect("username");
    let secret = created["token"].as_str().expect("token");
    assert_eq!(world.jwt_auth(username, secret, PROJECT).status, 200);
    expect(
        &world.api.delete(
            &format!("{}/deploy_tokens/{id}", project_base()),
            Auth::PrivateToken(&admin),
        ),
        204,
        "revoke",
    );

    let events = |query: &str| -> Vec<Value> {
        let a = world
            .api
            .get(&format!("/audit_events{query}"), Auth::PrivateToken(&admin));
        expect(&a, 200, "audit").as_array().expect("array").clone()
    };
    let of_token = |all: &[Value], action: &str| -> Vec<Value> {
        all.iter()
            .filter(|e| e["deploy_token_id"] == id && e["action"] == action)
            .cloned()
            .collect()
    };
    // First use is recorded off the request path; give it a moment.
    let mut all = events("");
    for _ in 0..100 {
        if !of_token(&all, "deploy_token_first_used").is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        all = events("");
    }
    let created_ev = of_token(&all, "deploy_token_created");
    assert_eq!(created_ev.len(), 1, "{all:?}");
    assert_eq!(created_ev[0]["actor"], "maintainer", "{all:?}");
    assert_eq!(created_ev[0]["target"], PROJECT, "{all:?}");
    let revoked_ev = of_token(&all, "deploy_token_revoked");
    assert_eq!(revoked_ev.len(), 1, "{all:?}");
    assert_eq!(revoked_ev[0]["actor"], "admin", "{all:?}");
    assert_eq!(
        of_token(&all, "deploy_token_first_used").len(),
        1,
        "{all:?}"
    );
    for e in &all {
        assert!(
            !e.to_string().contains(secret),
            "secret in the audit log: {e}"
        );
    }

    let since = pair_value(&before.to_rfc3339());
    assert!(!events(&format!("?created_after={since}")).is_empty());
    let future = pair_value(&(chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339());
    assert_eq!(
        events(&format!("?created_after={future}")),
        Vec::<Value>::new()
    );
    let a = world.api.get(
        "/audit_events?created_after=soon",
        Auth::PrivateToken(&admin),
    );
    expect(&a, 400, "bad created_after");
    gitlab_message(
        &world
            .api
            .get("/audit_events", Auth::PrivateToken(&maintainer)),
        403,
        "403 Forbidden",
        "maintainer reads the audit log",
    );

    // The CLI shows the same events.
    let cli = world.env.cli_ok(&["audit"]);
    assert!(cli.contains("maintainer") && cli.contains("admin"), "{cli}");
}

fn pair_value(value: &str) -> String {
    serde_urlencoded::to_string([("v", value)]).expect("encode")[2..].to_string()
}

// ---------------------------------------------------------------------------------------
// The document

#[test]
fn openapi_document_is_served_and_names_every_route() {
    let world = World::new();
    let a = world.api.get("/openapi.yaml", Auth::None);
    assert_eq!(a.status, 200, "{a:?}");
    for route in [
        "/deploy_tokens:",
        "/projects/{id}/deploy_tokens:",
        "/projects/{id}/deploy_tokens/{token_id}:",
        "/groups/{id}/deploy_tokens:",
        "/groups/{id}/deploy_tokens/{token_id}:",
        "/projects/{id}/ci/deploy_variables:",
        "/projects/{id}/packages:",
        "/projects/{id}/packages/{package_id}:",
        "/users/{user_id}/block:",
        "/users/{user_id}:",
        "/audit_events:",
    ] {
        assert!(a.body.contains(route), "{route} not documented");
    }
    let on_disk =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"))
            .expect("docs/openapi.yaml");
    assert_eq!(a.body, on_disk);
}
