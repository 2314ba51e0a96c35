//! `docker-compose up` for real (issue 17): `docker-compose.yml` brought up as users bring
//! it up, with `tests/compose/images.yml` swapping in images built on this machine (no
//! image registry is reachable here), and driven from the host through the published
//! ports with the real `docker` CLI and `git`.
//!
//! The images, reproducible from the repository:
//! - a Debian base made by `tests/compose/debian-base.sh` (debootstrap), kept between runs
//!   under a tag keyed by that script's content: it is the slow part and changes with it;
//! - wvs-auth: the Dockerfile's `runtime-base` stage on that base plus the binary these
//!   tests built (`tests/compose/wvs-auth.Dockerfile`), the image users build but for
//!   where the binary was compiled;
//! - the registry: Debian's docker-registry in place of `registry:2`
//!   (`tests/compose/registry.Dockerfile`).
//!
//! The engine's build cache makes the runtime-base and registry builds instant when
//! nothing changed. Images are chained by id, not by tag, so a concurrent run building
//! other Dockerfiles cannot swap them; the tags this run gives them are removed at the end
//! with the stack (`docker-compose down -v`), also when the test fails.
//!
//! The tools are required: a missing one fails the test, it never skips it.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::git::GitClient;
use common::tools::*;
use common::{free_port, Token};
use sha2::{Digest, Sha256};

const RW: &str = "read_registry,write_registry";

/// The label every image this test builds carries (the wvs-auth image inherits it from
/// runtime-base; a `--label` there would cost the build one more layer commit):
/// `docker rmi $(docker images -q --filter label=wvs-auth-test)` removes them all.
const LABEL: &str = "wvs-auth-test=compose";

/// Bounds, in seconds, for the commands that may legitimately run long.
const DEBOOTSTRAP_LIMIT: &str = "600";
const BUILD_LIMIT: &str = "600";
const COMPOSE_LIMIT: &str = "180";
/// How long a service may take to become healthy: its first probe runs one interval (15 s
/// in docker-compose.yml) after it starts.
const HEALTHY_WITHIN: Duration = Duration::from_secs(90);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn output(mut cmd: Command, what: &str) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("run {what}: {e}"))
}

fn stdout_ok(cmd: Command, what: &str) -> String {
    let out = output(cmd, what);
    assert_ok(&out, what);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker(args: &[&str]) -> Command {
    let mut cmd = bounded("docker");
    cmd.args(args);
    cmd
}

fn image_exists(image: &str) -> bool {
    output(docker(&["image", "inspect", image]), "docker image inspect")
        .status
        .success()
}

// ---------------------------------------------------------------------------------------
// Images

/// The images one run uses, by tags of its own; those are removed on drop (also those of
/// a build that failed halfway).
struct Images {
    wvs_auth: String,
    registry: String,
    tags: Vec<String>,
}

impl Images {
    /// Builds (or finds) every image; `run` names this run's tags.
    fn build(run: &str) -> Self {
        let mut images = Self {
            wvs_auth: format!("wvs-auth-test/wvs-auth:{run}"),
            registry: format!("wvs-auth-test/registry:{run}"),
            tags: Vec::new(),
        };
        let base = base_image();
        // The two builds run apt in a container each; side by side they overlap their
        // downloads.
        let (runtime_base, registry) = std::thread::scope(|s| {
            let runtime_base = s.spawn(|| {
                build_image(
                    &repo().join("Dockerfile"),
                    &[
                        "--target",
                        "runtime-base",
                        "--build-arg",
                        &format!("RUNTIME_BASE={base}"),
                        "--label",
                        LABEL,
                        "--tag",
                        "wvs-auth-test/runtime-base:latest",
                    ],
                    None,
                )
            });
            let registry = s.spawn(|| {
                build_image(
                    &repo().join("tests/compose/registry.Dockerfile"),
                    &[
                        "--build-arg",
                        &format!("BASE={base}"),
                        "--label",
                        LABEL,
                        "--tag",
                        "wvs-auth-test/registry:latest",
                    ],
                    None,
                )
            });
            (
                runtime_base.join().expect("runtime-base build"),
                registry.join().expect("registry build"),
            )
        });

        let binary = tempfile::tempdir().expect("tempdir");
        copy_binary(&binary.path().join("wvs-auth"));
        images.tags.push(images.wvs_auth.clone());
        build_image(
            &repo().join("tests/compose/wvs-auth.Dockerfile"),
            &[
                "--build-arg",
                &format!("RUNTIME_BASE={runtime_base}"),
                "--tag",
                &images.wvs_auth,
            ],
            Some(binary.path()),
        );
        // compose names images by reference: a tag of this run's own for the registry
        // too, so a concurrent build moving `:latest` cannot change what this run runs.
        images.tags.push(images.registry.clone());
        stdout_ok(docker(&["tag", &registry, &images.registry]), "docker tag");
        images
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for tag in &self.tags {
            // Untags; deletes the image (and untagged parents) when no other tag holds it.
            let _ = output(docker(&["rmi", tag]), "docker rmi");
        }
    }
}

/// The debootstrapped Debian base, built by `tests/compose/debian-base.sh` unless an image
/// made by the same script is present.
fn base_image() -> String {
    let script = repo().join("tests/compose/debian-base.sh");
    let digest = Sha256::digest(std::fs::read(&script).expect("read debian-base.sh"));
    let image = format!(
        "wvs-auth-test/debian:bookworm-minbase-{}",
        &hex(&digest)[..12]
    );
    if image_exists(&image) {
        return image;
    }
    // debootstrap needs root; CI runs the tests as root or with password-less sudo, as
    // tests/run's apt-get does.
    let mut cmd = if is_root() {
        bounded_for(DEBOOTSTRAP_LIMIT, "bash")
    } else {
        let mut sudo = bounded_for(DEBOOTSTRAP_LIMIT, "sudo");
        sudo.args(["-n", "bash"]);
        sudo
    };
    cmd.arg(&script).arg(&image);
    stdout_ok(cmd, "tests/compose/debian-base.sh (debootstrap)");
    assert!(image_exists(&image), "{image} missing after debian-base.sh");
    image
}

fn is_root() -> bool {
    let mut id = Command::new("id");
    id.arg("-u");
    stdout_ok(id, "id -u") == "0"
}

/// `docker build -f dockerfile ARGS context` (an empty context if `None`); returns the id.
fn build_image(dockerfile: &Path, args: &[&str], context: Option<&Path>) -> String {
    let scratch = tempfile::tempdir().expect("tempdir");
    let iid = scratch.path().join("iid");
    let empty = scratch.path().join("context");
    std::fs::create_dir(&empty).expect("mkdir context");
    let mut cmd = bounded_for(BUILD_LIMIT, "docker");
    cmd.arg("build")
        .arg("--file")
        .arg(dockerfile)
        .arg("--iidfile")
        .arg(&iid)
        .args(args)
        .arg(context.unwrap_or(&empty));
    let out = output(cmd, "docker build");
    assert_ok(&out, &format!("docker build -f {}", dockerfile.display()));
    std::fs::read_to_string(&iid)
        .expect("docker build --iidfile")
        .trim()
        .to_string()
}

/// The binary under test into the image's build context, stripped when `strip` is there
/// (a debug build is ten times the size, all of it debug info).
fn copy_binary(dest: &Path) {
    if common::have("strip") {
        let mut strip = Command::new("strip");
        strip.arg("-o").arg(dest).arg(common::BIN);
        stdout_ok(strip, "strip wvs-auth");
    } else {
        std::fs::copy(common::BIN, dest).expect("copy wvs-auth");
    }
}

// ---------------------------------------------------------------------------------------
// The stack

/// One `docker-compose -p PROJECT` stack on free loopback ports; `down -v` on drop.
struct Stack {
    project: String,
    /// The empty `--env-file`, DOCKER_CONFIG for compose, scratch space.
    dir: tempfile::TempDir,
    wvs_auth: String,
    registry: String,
    dependency_proxy: String,
    secrets: [String; 2],
    // Dropped after `down` (Drop of Stack runs first): the containers must be gone first.
    images: Images,
}

impl Stack {
    fn up(project: String, images: Images) -> Self {
        let host = |port: u16| format!("127.0.0.1:{port}");
        let stack = Self {
            project,
            dir: tempfile::tempdir().expect("tempdir"),
            wvs_auth: host(free_port()),
            registry: host(free_port()),
            dependency_proxy: host(free_port()),
            secrets: [unique("registry-secret"), unique("proxy-secret")],
            images,
        };
        std::fs::write(stack.dir.path().join("empty.env"), "").expect("env file");
        std::fs::create_dir(stack.dir.path().join("docker")).expect("mkdir");
        stack.check_variables_cover_the_compose_files();
        stack.compose_ok(&["up", "-d", "--no-build"]);
        stack
    }

    /// Every variable the compose files read, as this test sets it, so nothing in the
    /// caller's environment (or a `.env` file: `--env-file` names an empty one) decides
    /// the stack.
    fn variables(&self) -> Vec<(&'static str, String)> {
        vec![
            ("WVS_AUTH_IMAGE", self.images.wvs_auth.clone()),
            ("REGISTRY_IMAGE", self.images.registry.clone()),
            // ADDRESS:PORT: published on loopback only, on ports free a moment ago.
            ("WVS_AUTH_PORT", self.wvs_auth.clone()),
            ("REGISTRY_PORT", self.registry.clone()),
            ("DEPENDENCY_PROXY_PORT", self.dependency_proxy.clone()),
            // What the docker daemon on this host is sent to fetch tokens from.
            (
                "WVS_AUTH_REALM",
                format!("http://{}/jwt/auth", self.wvs_auth),
            ),
            // distribution 2.8 in proxy mode exits at start while its upstream is
            // unreachable (Docker Hub is, here); the stack's own registry answers.
            ("DEPENDENCY_PROXY_UPSTREAM", "http://registry:5000".into()),
            ("DOCKER_HUB_USERNAME", String::new()),
            ("DOCKER_HUB_PASSWORD", String::new()),
            ("REGISTRY_HTTP_SECRET", self.secrets[0].clone()),
            ("DEPENDENCY_PROXY_HTTP_SECRET", self.secrets[1].clone()),
            ("RUST_LOG", "info".into()),
        ]
    }

    /// A variable added to the compose files later must be added to [`Stack::variables`].
    fn check_variables_cover_the_compose_files(&self) {
        let set: Vec<&str> = self.variables().iter().map(|(k, _)| *k).collect();
        for file in ["docker-compose.yml", "tests/compose/images.yml"] {
            let text = std::fs::read_to_string(repo().join(file)).expect("read compose file");
            for (at, _) in text.match_indices("${") {
                let name: String = text[at + 2..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    set.contains(&name.as_str()),
                    "{file} reads ${{{name}}}, which compose_e2e does not set"
                );
            }
        }
    }

    fn compose(&self, limit: &str, args: &[&str]) -> Output {
        let mut cmd = bounded_for(limit, "docker-compose");
        cmd.arg("--project-name")
            .arg(&self.project)
            .arg("--file")
            .arg(repo().join("docker-compose.yml"))
            .arg("--file")
            .arg(repo().join("tests/compose/images.yml"))
            .arg("--env-file")
            .arg(self.dir.path().join("empty.env"))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("docker"))
            .env_remove("COMPOSE_FILE")
            .env_remove("COMPOSE_PROJECT_NAME");
        for (key, value) in self.variables() {
            cmd.env(key, value);
        }
        output(cmd, "docker-compose")
    }

    fn compose_ok(&self, args: &[&str]) -> String {
        let out = self.compose(COMPOSE_LIMIT, args);
        assert_ok(&out, &format!("docker-compose {args:?}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The CLI inside the running wvs-auth container, as the compose file's header shows:
    /// `docker-compose exec -T wvs-auth wvs-auth ARGS`; stdout.
    fn cli(&self, args: &[&str]) -> String {
        let mut all = vec!["exec", "-T", "wvs-auth", "wvs-auth"];
        all.extend_from_slice(args);
        self.compose_ok(&all)
    }

    fn token(&self, owner: &[&str], scopes: &str) -> Token {
        let mut args = vec!["token", "create"];
        args.extend_from_slice(owner);
        args.extend_from_slice(&["--name", "compose", "--scopes", scopes, "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&self.cli(&args)).expect("token create --json");
        Token {
            id: v["id"].as_i64().expect("id"),
            username: v["username"].as_str().expect("username").to_string(),
            secret: v["token"].as_str().expect("token").to_string(),
        }
    }

    /// The service's container, found by compose's labels with the docker CLI: each
    /// docker-compose 1.x call costs a second of Python start-up, and the checks below
    /// make many.
    fn container(&self, service: &str) -> String {
        let project = format!("label=com.docker.compose.project={}", self.project);
        let service_label = format!("label=com.docker.compose.service={service}");
        let id = stdout_ok(
            docker(&[
                "ps",
                "--all",
                "--quiet",
                "--filter",
                &project,
                "--filter",
                &service_label,
                "--filter",
                "label=com.docker.compose.oneoff=False",
            ]),
            "docker ps",
        );
        assert!(
            !id.is_empty() && !id.contains('\n'),
            "not one container for {service}: {id:?}"
        );
        id
    }

    /// `docker exec` in the service's container: stdout.
    fn exec(&self, service: &str, args: &[&str]) -> String {
        let container = self.container(service);
        let mut all = vec!["exec", container.as_str()];
        all.extend_from_slice(args);
        stdout_ok(docker(&all), &format!("docker exec ({service}) {args:?}"))
    }

    fn logs(&self, service: &str) -> String {
        let out = output(docker(&["logs", &self.container(service)]), "docker logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn inspect(&self, container: &str, format: &str) -> String {
        stdout_ok(
            docker(&["inspect", "--format", format, container]),
            "docker inspect",
        )
    }

    /// Waits until the service's container runs and its health check says healthy.
    fn wait_healthy(&self, service: &str) {
        let id = self.container(service);
        let format = "{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}";
        let deadline = Instant::now() + HEALTHY_WITHIN;
        loop {
            let state = self.inspect(&id, format);
            if state == "running healthy" {
                return;
            }
            if state.ends_with(" unhealthy") || Instant::now() > deadline {
                panic!(
                    "{service} is {state:?} after {HEALTHY_WITHIN:?}\nprobes: {}\nlogs:\n{}",
                    self.inspect(&id, "{{json .State.Health}}"),
                    self.logs(service)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let out = self.compose(COMPOSE_LIMIT, &["logs", "--no-color", "--tail", "100"]);
            eprintln!(
                "docker-compose logs of {}:\n{}",
                self.project,
                String::from_utf8_lossy(&out.stdout)
            );
        }
        // Containers (one-off `run` ones too), the network, named and anonymous volumes:
        // everything of this project and nothing else.
        let out = self.compose(
            COMPOSE_LIMIT,
            &["down", "--volumes", "--remove-orphans", "--timeout", "5"],
        );
        if !out.status.success() {
            eprintln!("docker-compose down failed: {}", text(&out));
        }
    }
}

// ---------------------------------------------------------------------------------------
// The test

/// One stack for the whole walk: bringing it up costs most of the time, and each step
/// depends on the previous one as a user's would (keys before tokens before pushes).
#[test]
fn compose_up_keys_health_push_pull_and_restart_keeps_tokens() {
    require_tools(&[
        "docker",
        "docker-compose",
        "tar",
        "timeout",
        "git",
        "git-lfs",
    ]);
    let run = unique("compose")
        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        .to_lowercase();
    let stack = Stack::up(run.clone(), Images::build(&run));

    // The one-shot key service ran first, made the first key and exported the bundle.
    let keys = stack.container("wvs-auth-keys");
    assert_eq!(
        stack.inspect(&keys, "{{.State.Status}} {{.State.ExitCode}}"),
        "exited 0",
        "wvs-auth-keys: {}",
        stack.logs("wvs-auth-keys")
    );
    let keys_log = stack.logs("wvs-auth-keys");
    assert!(
        keys_log.contains("created RS256 signing key")
            && keys_log.contains("wrote /certs/bundle.pem"),
        "wvs-auth-keys did not make and export the first key: {keys_log}"
    );

    // Every long-running service passes its own health check.
    for service in ["wvs-auth", "registry", "dependency-proxy"] {
        stack.wait_healthy(service);
    }

    // The registries hold the public bundle wvs-auth signs with, and nothing else: no
    // private key leaves wvs-auth's volume.
    let bundle = stack.cli(&["keys", "bundle"]);
    assert!(bundle.contains("BEGIN CERTIFICATE"), "bundle: {bundle}");
    for registry in ["registry", "dependency-proxy"] {
        assert_eq!(stack.exec(registry, &["ls", "-A", "/keys"]), "bundle.pem");
        assert_eq!(
            stack.exec(registry, &["cat", "/keys/bundle.pem"]),
            bundle,
            "{registry} trusts another bundle than wvs-auth publishes"
        );
    }

    // A project and its tokens, made with the CLI in the container.
    stack.cli(&["group", "create", "acme"]);
    stack.cli(&["project", "create", "acme/app"]);
    stack.cli(&["group", "create", "hub", "--dependency-proxy"]);
    let rw = stack.token(&["--project", "acme/app"], &format!("{RW},read_repository"));
    let proxy = stack.token(&["--group", "hub"], RW);

    // docker login, push, pull through the published ports: the daemon follows the realm
    // to wvs-auth's published port, the registry verifies the JWT against the bundle.
    let docker = Docker::new(&stack.registry);
    let reference = format!("{}/acme/app:v1", stack.registry);
    let id = docker.build(&reference);
    docker.login_ok(&rw);
    assert_ok(&docker.push(&reference), "docker push through compose");
    docker.rmi(&reference);
    assert_ok(&docker.pull(&reference), "docker pull through compose");
    assert_eq!(docker.image_id(&reference), id, "pulled another image");

    // The Dependency Proxy trusts the same keys under its own service name.
    Docker::new(&stack.dependency_proxy).login_ok(&proxy);

    // The git realm in the image: `project create` made the repository in the data
    // volume, `git http-backend` serves it.
    let git = GitClient::new();
    let url = format!(
        "http://{}:{}@{}/acme/app.git",
        rw.username.replace('+', "%2B"),
        rw.secret,
        stack.wvs_auth
    );
    git.ok(None, &["ls-remote", &url]);

    // Running the key service again (as the rotation steps in docker-compose.yml do)
    // exports the same bundle and makes no second key.
    stack.compose_ok(&["run", "--rm", "wvs-auth-keys"]);
    assert_eq!(stack.exec("registry", &["cat", "/keys/bundle.pem"]), bundle);
    let listed = stack.cli(&["keys", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("keys list --json");
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "keys after a second run of wvs-auth-keys: {listed}"
    );

    // A restart keeps every token and the key: the same token logs in again and pulls.
    stack.compose_ok(&["restart", "wvs-auth"]);
    stack.wait_healthy("wvs-auth");
    docker.logout();
    docker.login_ok(&rw);
    docker.rmi(&reference);
    assert_ok(&docker.pull(&reference), "docker pull after restart");
    assert_eq!(docker.image_id(&reference), id, "pulled another image");
    Docker::new(&stack.dependency_proxy).login_ok(&proxy);
    assert_eq!(
        stack.cli(&["keys", "bundle"]),
        bundle,
        "restart changed the keys"
    );
    let tokens = stack.cli(&["token", "list", "--project", "acme/app", "--json"]);
    let tokens: serde_json::Value = serde_json::from_str(&tokens).expect("token list --json");
    assert!(
        tokens
            .as_array()
            .is_some_and(|rows| rows.iter().any(|row| row["id"] == rw.id)),
        "token list after restart: {tokens}"
    );
}

/// The PostgreSQL variant (deploy/postgres/docker-compose.yml over docker-compose.yml):
/// `docker-compose config` accepts it, both replicas get the database URL and share the
/// keys and data volumes, and a missing password is refused by name rather than left empty.
/// (Bringing it up needs the postgres and nginx images, which this machine cannot pull.)
#[test]
fn the_postgres_variant_is_accepted_by_docker_compose_config() {
    let config = |password: Option<&str>| {
        let mut cmd = Command::new("docker-compose");
        cmd.arg("--file")
            .arg(repo().join("docker-compose.yml"))
            .arg("--file")
            .arg(repo().join("deploy/postgres/docker-compose.yml"))
            .arg("config")
            .current_dir(repo())
            .env_remove("COMPOSE_FILE")
            .env_remove("POSTGRES_PASSWORD");
        if let Some(password) = password {
            cmd.env("POSTGRES_PASSWORD", password);
        }
        output(cmd, "docker-compose config")
    };
    let out = config(Some("pw-for-config"));
    assert_ok(&out, "docker-compose config (postgres variant)");
    let text = String::from_utf8_lossy(&out.stdout);
    let services = service_names(&text);
    for service in ["postgres", "wvs-auth", "wvs-auth-2", "balancer", "registry"] {
        assert!(
            services.iter().any(|s| s == service),
            "{service} missing:\n{text}"
        );
    }
    assert_eq!(
        text.matches("WVS_AUTH_DATABASE_URL: postgres://wvs:pw-for-config@postgres:5432/wvs")
            .count(),
        2,
        "both replicas on the database:\n{text}"
    );
    let out = config(None);
    assert!(!out.status.success(), "an empty password must be refused");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("POSTGRES_PASSWORD"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The service names of `docker-compose config` output: the keys indented two spaces under
/// `services:`.
fn service_names(text: &str) -> Vec<String> {
    let mut in_services = false;
    let mut names = Vec::new();
    for line in text.lines() {
        if !line.starts_with(' ') {
            in_services = line.trim_end() == "services:";
            continue;
        }
        if in_services && line.starts_with("  ") && !line.starts_with("   ") {
            if let Some(name) = line.trim().strip_suffix(':') {
                names.push(name.to_string());
            }
        }
    }
    names
}
