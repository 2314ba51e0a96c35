//! Users, memberships and personal access tokens made through the real CLI, for the realm
//! tests. A PAT comes back as a [`Token`] (username = the owner's), so the Basic-header and
//! git-URL helpers work for it unchanged.

use std::io::Write;
use std::process::Stdio;

use super::{have, Env, Token};

impl Env {
    /// `user create NAME [--password-stdin]`.
    pub fn user(&self, name: &str, password: Option<&str>) {
        let mut cmd = self.command(&[]);
        cmd.args(["user", "create", name]);
        if password.is_some() {
            cmd.arg("--password-stdin");
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run wvs-auth");
        if let (Some(p), Some(mut stdin)) = (password, child.stdin.take()) {
            writeln!(stdin, "{p}").expect("write password");
        }
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "user create {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `user add-member NAME --project P|--group G --role ROLE`; `target` is
    /// `["--group", "acme"]` or similar.
    pub fn member(&self, name: &str, target: &[&str], role: &str) {
        let mut args = vec!["user", "add-member", name];
        args.extend_from_slice(target);
        args.extend_from_slice(&["--role", role]);
        self.cli_ok(&args);
    }

    /// `user token create NAME --scopes … --json`, parsed.
    pub fn pat(&self, user: &str, scopes: &str) -> Token {
        self.pat_with(&[], user, scopes, &[])
    }

    pub fn pat_with(&self, wrapper: &[&str], user: &str, scopes: &str, extra: &[&str]) -> Token {
        let mut args = vec![
            "user", "token", "create", user, "--name", "test", "--scopes", scopes, "--json",
        ];
        args.extend_from_slice(extra);
        let v: serde_json::Value = serde_json::from_str(&self.cli_ok_with(wrapper, &args))
            .expect("user token create --json");
        let secret = v["token"].as_str().expect("token").to_string();
        assert!(secret.starts_with("wvspat-"), "{secret}");
        Token {
            id: v["id"].as_i64().expect("id"),
            username: user.to_string(),
            secret,
        }
    }

    /// A PAT that expired at 00:00 UTC today: created "yesterday" under libfaketime, since
    /// the CLI refuses dates that are not in the future.
    pub fn expired_pat(&self, user: &str, scopes: &str) -> Token {
        assert!(have("faketime"), "faketime is not on PATH; CI installs it");
        let today = chrono::Utc::now().date_naive();
        let yesterday = today.pred_opt().expect("date");
        let at = format!("{yesterday} 12:00:00");
        self.pat_with(
            &["env", "TZ=UTC", "faketime", &at],
            user,
            scopes,
            &["--expires-at", &today.to_string()],
        )
    }
}

/// Password credentials in the shape the Basic-header and git-URL helpers take.
pub fn password(user: &str, password: &str) -> Token {
    Token {
        id: 0,
        username: user.to_string(),
        secret: password.to_string(),
    }
}
