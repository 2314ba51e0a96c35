//! The RSA kernel choice of `serve` (`keys/rsa_kernel.rs`): whatever it picks, tokens verify
//! with the published key, and the log says what was picked and why.

use crate::common;

use common::http::{agent, answer, creds, pair, verify_jwt};
use common::{env_with_projects, Env, Server};
use serde_json::json;
use wvs_auth::keys::rsa_kernel::{no_choice_on_this_cpu, parse_rate, AVX2_CAPS};

const SVC: &str = "container_registry";

/// What the log says after "RSA signing kernel: ", line by line: one line, or two when the
/// server started again with the AVX2 mask.
fn kernel_lines(env: &Env, server: &Server) -> Vec<String> {
    let log = std::fs::read_to_string(env.path(&format!("serve-{}.log", server.port)))
        .expect("server log");
    let lines: Vec<String> = log
        .lines()
        .filter_map(|l| {
            l.split_once("RSA signing kernel: ")
                .map(|(_, k)| k.to_string())
        })
        .collect();
    assert!(!lines.is_empty(), "no kernel line in the log:\n{log}");
    lines
}

fn kernel_line(env: &Env, server: &Server) -> String {
    kernel_lines(env, server).remove(0)
}

/// A pull,push token for acme/app from `server`, checked against its JWKS.
fn token_verifies(env: &Env, server: &Server) {
    let t = env.token(
        &["--project", "acme/app"],
        "read_registry,write_registry",
        &[],
    );
    let query = format!(
        "{}&{}&{}",
        pair("service", SVC),
        pair("scope", "repository:acme/app:pull,push"),
        pair("account", &t.username)
    );
    let a = answer(
        agent()
            .get(&format!("{}/jwt/auth?{query}", server.url))
            .set("Authorization", &creds(&t))
            .call(),
    );
    assert_eq!(a.status, 200, "{a:?}");
    let jwks = answer(agent().get(&format!("{}/-/jwks", server.url)).call()).json();
    let claims = verify_jwt(&a.token(), &jwks, "wvs-auth", SVC);
    assert_eq!(
        claims["access"],
        json!([{ "type": "repository", "name": "acme/app", "actions": ["pull", "push"] }])
    );
}

#[test]
fn each_setting_signs_tokens_the_published_key_verifies() {
    let env = env_with_projects();
    env.cli_ok(&["keys", "init"]);

    let server = env.serve(&["--rsa-kernel", "library"]);
    assert_eq!(
        kernel_line(&env, &server),
        "the library's choice (rsa_kernel = library)"
    );
    token_verifies(&env, &server);
    drop(server);

    let server = env.serve(&["--rsa-kernel", "avx2"]);
    let line = kernel_line(&env, &server);
    match no_choice_on_this_cpu() {
        None => {
            assert!(
                line.starts_with("AVX2 RSAZ (rsa_kernel = avx2); starting again"),
                "{line}"
            );
            assert_eq!(
                kernel_lines(&env, &server).last().map(String::as_str),
                Some("AVX2 RSAZ (OPENSSL_ia32cap=~0:~0x80000, as chosen above)")
            );
        }
        Some(why) => assert_eq!(line, format!("the library's choice ({why})")),
    }
    token_verifies(&env, &server);
    drop(server);

    // auto: both kernels measured, the faster one used.
    let server = env.serve(&[]);
    let line = kernel_line(&env, &server);
    if no_choice_on_this_cpu().is_none() {
        assert!(
            line.contains("CRT exponentiation pairs per second: ADX cleared (AVX2 RSAZ) "),
            "{line}"
        );
        // Chosen: the same process runs again with the mask, and says so.
        let lines = kernel_lines(&env, &server);
        if line.starts_with("AVX2 RSAZ") {
            assert_eq!(lines.len(), 2, "{lines:?}");
            assert!(
                lines[1].starts_with("AVX2 RSAZ (OPENSSL_ia32cap="),
                "{lines:?}"
            );
        } else {
            assert_eq!(lines.len(), 1, "{lines:?}");
        }
    }
    token_verifies(&env, &server);
}

#[test]
fn an_operator_cpu_mask_is_left_alone() {
    let env = env_with_projects();
    let server = env.serve_with(&["env", "OPENSSL_ia32cap=~0:~0"], &[]);
    assert_eq!(kernel_line(&env, &server), "as OPENSSL_ia32cap=~0:~0 says");
    token_verifies(&env, &server);
}

#[test]
fn es256_keys_are_not_probed() {
    let env = env_with_projects();
    let server = env.serve(&["--signing-alg", "ES256"]);
    let line = kernel_line(&env, &server);
    assert!(line.contains("the signing key is not RSA"), "{line}");
    token_verifies(&env, &server);
}

#[test]
fn an_unknown_setting_is_a_usage_error() {
    let env = Env::new();
    let out = env.cli(&["serve", "--rsa-kernel", "fastest"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("fastest"), "{stderr}");
    assert!(!env.data_dir().join("wvs.db").exists());
}

/// The probe `serve` runs in a child process, run here directly on any CPU (so its calls
/// into aws-lc run even where `serve` has no reason to probe): with and without the mask it
/// prints one positive rate.
#[test]
fn the_probe_times_both_masks() {
    let env = Env::new();
    for caps in [None, Some(AVX2_CAPS)] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wvs-auth"));
        cmd.args(["__rsa-kernel-probe", "--millis", "5", "--threads", "2"])
            .current_dir(env.path(""))
            .env_remove("OPENSSL_ia32cap");
        if let Some(caps) = caps {
            cmd.env("OPENSSL_ia32cap", caps);
        }
        let out = cmd.output().expect("run the probe");
        assert!(out.status.success(), "{caps:?}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let rate = parse_rate(&stdout).unwrap_or_else(|| panic!("{caps:?}: {stdout}"));
        assert!(rate > 0.0, "{stdout}");
    }
}
