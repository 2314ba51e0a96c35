//! PyPI with the real clients: `twine upload` with a deploy token, `pip install` from the
//! project and the group index (PEP 691 JSON, which pip asks for), the PEP 503 HTML page
//! with `#sha256=` and `data-requires-python`, name normalisation, and a file uploaded
//! twice refused as PyPI does. twine and pip live in `target/test-venv` (tests/run makes it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;
use crate::packages::{files_below, get, Cred};
use common::{Env, Server, Token};

/// A program of the test virtual environment, or a clear failure saying how to get it.
fn venv(program: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-venv/bin")
        .join(program);
    assert!(
        path.is_file(),
        "{} is missing: tests/run installs twine and pip there",
        path.display()
    );
    path
}

/// A wheel built here, the way `bdist_wheel` lays one out (PEP 427), with PEP 621's
/// `Requires-Python`.
fn build_wheel(dir: &Path, dist_name: &str, version: &str) -> PathBuf {
    let script = r#"
import base64, hashlib, sys, zipfile
out, name, version = sys.argv[1], sys.argv[2], sys.argv[3]
module = name.replace("-", "_").replace(".", "_").lower()
dist = f"{module}-{version}.dist-info"
files = {
    f"{module}/__init__.py": f"VERSION = {version!r}\n",
    f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: a test package\nRequires-Python: >=3.8\n",
    f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: wvs-auth-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
path = f"{out}/{module}-{version}-py3-none-any.whl"
with zipfile.ZipFile(path, "w") as z:
    for n, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{n},sha256={digest},{len(data)}")
        z.writestr(n, data)
    record.append(f"{dist}/RECORD,,")
    z.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
print(path)
"#;
    let out = Command::new(venv("python"))
        .args(["-c", script])
        .arg(dir)
        .args([dist_name, version])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{out:?}");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn run(cmd: &mut Command, home: &Path) -> Output {
    cmd.env("HOME", home)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .env("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
        .env("NO_COLOR", "1")
        .output()
        .expect("client runs")
}

fn twine(env: &Env, server: &Server, project: &str, token: &Token, wheel: &Path) -> Output {
    let url = format!(
        "{}/api/v4/projects/{}/packages/pypi",
        server.url,
        project.replace('/', "%2F")
    );
    run(
        Command::new(venv("twine"))
            .args([
                "upload",
                "--non-interactive",
                "--disable-progress-bar",
                "--repository-url",
                &url,
                "-u",
                "anything",
                "-p",
                &token.secret,
            ])
            .arg(wheel),
        &env.path("home"),
    )
}

fn pip_install(env: &Env, index: &str, requirement: &str, target: &Path) -> Output {
    run(
        Command::new(venv("pip"))
            .args([
                "install",
                "--disable-pip-version-check",
                "--no-cache-dir",
                "--no-deps",
                "--index-url",
                index,
                "--target",
            ])
            .arg(target)
            .arg(requirement),
        &env.path("home"),
    )
}

/// `http://user:secret@host:port`: pip sends the credentials of the index URL.
fn with_userinfo(server: &Server, token: &Token) -> String {
    server
        .url
        .replacen("http://", &format!("http://whoever:{}@", token.secret), 1)
}

#[test]
fn twine_uploads_and_pip_installs_at_project_and_group_level() {
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["project", "create", "acme/app"],
        &["project", "create", "acme/lib"],
    ] {
        env.cli_ok(args);
    }
    let writer = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let reader = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let server = env.serve(&[]);
    std::fs::create_dir_all(env.path("home")).expect("home");
    std::fs::create_dir_all(env.path("dist")).expect("dist");
    let wheel = build_wheel(&env.path("dist"), "Demo.Pkg", "1.0.0");

    let up = twine(&env, &server, "acme/app", &writer, &wheel);
    assert!(up.status.success(), "twine upload: {up:?}");
    // The same file again: PyPI's 400, which twine reports as a failure.
    let again = twine(&env, &server, "acme/app", &writer, &wheel);
    assert!(
        !again.status.success(),
        "a second upload was accepted: {again:?}"
    );
    let said = String::from_utf8_lossy(&again.stderr).to_string()
        + &String::from_utf8_lossy(&again.stdout);
    assert!(said.contains("400"), "{said}");
    // A read-only token cannot publish.
    let refused = twine(&env, &server, "acme/lib", &reader, &wheel);
    assert!(!refused.status.success(), "{refused:?}");

    // pip from the project's index and from the group's, by any spelling of the name.
    for (index, requirement, n) in [
        (
            format!(
                "{}/api/v4/projects/acme%2Fapp/packages/pypi/simple",
                with_userinfo(&server, &writer)
            ),
            "demo-pkg",
            1,
        ),
        (
            format!(
                "{}/api/v4/groups/acme/-/packages/pypi/simple",
                with_userinfo(&server, &reader)
            ),
            "DEMO_pkg==1.0.0",
            2,
        ),
    ] {
        let target = env.path(&format!("site-{n}"));
        let out = pip_install(&env, &index, requirement, &target);
        assert!(out.status.success(), "pip install from {index}: {out:?}");
        let installed =
            std::fs::read_to_string(target.join("demo_pkg/__init__.py")).expect("installed");
        assert!(installed.contains("1.0.0"), "{installed}");
    }
    // Without credentials pip gets the 401 challenge and fails.
    let target = env.path("site-anon");
    let anon = pip_install(
        &env,
        &format!(
            "{}/api/v4/projects/acme%2Fapp/packages/pypi/simple",
            server.url
        ),
        "demo-pkg",
        &target,
    );
    assert!(!anon.status.success(), "{anon:?}");

    // The PEP 503 page for clients that ask for HTML.
    let page = crate::common::http::answer(
        crate::common::http::agent()
            .get(&format!(
                "{}/api/v4/projects/acme%2Fapp/packages/pypi/simple/Demo.Pkg/",
                server.url
            ))
            .set("Deploy-Token", &writer.secret)
            .set("Accept", "text/html")
            .call(),
    );
    assert_eq!(page.status, 200, "{page:?}");
    let file = wheel.file_name().and_then(|f| f.to_str()).expect("name");
    let sha = files_below(&env.data_dir().join("packages/blobs"))
        .first()
        .and_then(|p| p.file_name())
        .and_then(|f| f.to_str())
        .expect("one blob")
        .to_string();
    assert!(
        page.body.contains(&format!(
            "href=\"/api/v4/projects/acme%2Fapp/packages/pypi/files/{sha}/{file}#sha256={sha}\""
        )),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-requires-python=\"&gt;=3.8\""),
        "{}",
        page.body
    );
    let index = get(
        &format!("{}/api/v4/groups/acme/-/packages/pypi/simple/", server.url),
        Cred::DeployToken(&reader),
    );
    assert!(index.body.contains("demo-pkg"), "{index:?}");
}
