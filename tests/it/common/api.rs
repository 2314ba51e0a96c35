//! Helpers for the management API (`/api/v4`): users with personal access tokens made by the
//! CLI, and JSON requests with `PRIVATE-TOKEN` or Bearer credentials.

use serde_json::Value;

use super::http::{agent, answer, Answer};
use super::{Env, Server};

/// A user's personal access token as `user token create --json` printed it.
#[derive(Debug, Clone)]
pub struct Pat {
    pub id: i64,
    pub secret: String,
}

/// `user create NAME [--admin]`, then `user add-member` for each `(flag, path, role)` with
/// `flag` `--project` or `--group`.
pub fn user(env: &Env, name: &str, admin: bool, memberships: &[(&str, &str, &str)]) {
    let mut args = vec!["user", "create", name];
    if admin {
        args.push("--admin");
    }
    env.cli_ok(&args);
    for (flag, path, role) in memberships {
        env.cli_ok(&["user", "add-member", name, flag, path, "--role", role]);
    }
}

/// `user token create NAME --name N --scopes SCOPES [extra…] --json`.
pub fn pat(env: &Env, user: &str, scopes: &str, extra: &[&str]) -> Pat {
    let mut args = vec![
        "user", "token", "create", user, "--name", "test", "--scopes", scopes, "--json",
    ];
    args.extend_from_slice(extra);
    let v: Value = serde_json::from_str(&env.cli_ok(&args)).expect("user token create --json");
    Pat {
        id: v["id"].as_i64().expect("id"),
        secret: v["token"].as_str().expect("token").to_string(),
    }
}

/// The numeric id of a project or group (`kind` is `project` or `group`).
pub fn namespace_id(env: &Env, kind: &str, path: &str) -> i64 {
    let listed: Value =
        serde_json::from_str(&env.cli_ok(&[kind, "list", "--json"])).expect("list --json");
    listed
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["path"] == path))
        .and_then(|r| r["id"].as_i64())
        .unwrap_or_else(|| panic!("{kind} {path} not listed"))
}

/// `acme/platform/api` as GitLab's `:id`: `acme%2Fplatform%2Fapi`.
pub fn encoded(path: &str) -> String {
    path.replace('/', "%2F")
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    None,
    PrivateToken(&'a str),
    Bearer(&'a str),
    /// Any raw `Authorization` header value.
    Header(&'a str),
}

/// One API base URL (`…/api/v4`).
pub struct Api {
    pub base: String,
}

impl Api {
    pub fn new(server: &Server) -> Self {
        Self {
            base: format!("{}/api/v4", server.url),
        }
    }

    fn request(&self, method: &str, path: &str, auth: Auth) -> ureq::Request {
        let req = agent().request(method, &format!("{}{path}", self.base));
        match auth {
            Auth::None => req,
            Auth::PrivateToken(t) => req.set("PRIVATE-TOKEN", t),
            Auth::Bearer(t) => req.set("Authorization", &format!("Bearer {t}")),
            Auth::Header(h) => req.set("Authorization", h),
        }
    }

    pub fn get(&self, path: &str, auth: Auth) -> Answer {
        answer(self.request("GET", path, auth).call())
    }

    pub fn delete(&self, path: &str, auth: Auth) -> Answer {
        answer(self.request("DELETE", path, auth).call())
    }

    pub fn post_json(&self, path: &str, auth: Auth, body: &Value) -> Answer {
        answer(self.request("POST", path, auth).send_json(body.clone()))
    }

    /// A raw body with an explicit content type.
    pub fn post_raw(&self, path: &str, auth: Auth, content_type: &str, body: &[u8]) -> Answer {
        answer(
            self.request("POST", path, auth)
                .set("Content-Type", content_type)
                .send_bytes(body),
        )
    }

    pub fn send(&self, method: &str, path: &str, auth: Auth) -> Answer {
        answer(self.request(method, path, auth).call())
    }
}

/// Asserts a status and returns the JSON body.
pub fn expect(answer: &Answer, status: u16, what: &str) -> Value {
    assert_eq!(answer.status, status, "{what}: {answer:?}");
    if status == 204 {
        assert!(answer.body.is_empty(), "{what}: 204 with a body {answer:?}");
        return Value::Null;
    }
    assert!(
        answer
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{what}: not JSON {answer:?}"
    );
    answer.json()
}
