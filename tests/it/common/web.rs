//! Fixtures and plain-HTTP helpers for the settings-page tests: users made through the
//! CLI, and form posts with cookies, as a browser would send them.

use std::io::Write;
use std::process::Stdio;

use super::http::{answer, Answer};
use super::Env;

/// `user create NAME --password-stdin`, then `user add-member` for each `(flag, path, role)`
/// such as `("--project", "acme/app", "maintainer")`.
pub fn user(env: &Env, name: &str, password: &str, memberships: &[(&str, &str, &str)]) {
    let mut child = env
        .command(&[])
        .args(["user", "create", name, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run wvs-auth user create");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("write password");
    let out = child.wait_with_output().expect("user create");
    assert!(
        out.status.success(),
        "user create {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (flag, path, role) in memberships {
        env.cli_ok(&["user", "add-member", name, flag, path, "--role", role]);
    }
}

/// The value of the first `name="csrf_token"` hidden field in a page.
pub fn csrf_field(html: &str) -> String {
    let marker = r#"name="csrf_token" value=""#;
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf_token field in:\n{html}"))
        + marker.len();
    let len = html[start..].find('"').expect("end of value");
    html[start..start + len].to_string()
}

/// Every `Set-Cookie` header of an answer (ureq's `Answer` keeps one per name).
pub fn set_cookies(result: Result<ureq::Response, ureq::Error>) -> (Answer, Vec<String>) {
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let cookies = response
        .all("set-cookie")
        .into_iter()
        .map(str::to_string)
        .collect();
    (answer(Ok(response)), cookies)
}

/// `name=value` of the cookie `name` among `Set-Cookie` headers, with its attributes.
pub fn cookie<'a>(cookies: &'a [String], name: &str) -> Option<&'a String> {
    cookies.iter().find(|c| c.starts_with(&format!("{name}=")))
}

/// The bare `name=value` pair of a `Set-Cookie` header, for a `Cookie` header.
pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or_default().to_string()
}
