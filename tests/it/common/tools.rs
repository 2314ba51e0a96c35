//! Real clients for end-to-end tests: the docker CLI (private `DOCKER_CONFIG`), skopeo (own
//! policy and auth files), hand-written OCI image layouts, and stock `docker-registry`
//! processes on free loopback ports. Every command runs under `timeout`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::{free_port, have, Env, Server, Token};

/// What every registry end-to-end test drives: the real clients, the stock registry, and
/// the tools that build OCI layouts.
pub const REGISTRY_TOOLS: &[&str] = &[
    "docker",
    "skopeo",
    "docker-registry",
    "tar",
    "gzip",
    "timeout",
];

/// Upper bound for any one docker/skopeo command (they are killed after it).
pub const COMMAND_LIMIT: &str = "120";

pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        assert!(
            have(tool),
            "{tool} is not on PATH; these tests need it (CI installs it)"
        );
    }
}

/// A string no other test (or earlier run) produces: image content, tags.
pub fn unique(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos();
    format!(
        "{label}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// stdout and stderr of a finished command, for assertions and failure messages.
pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `program args` under coreutils `timeout`, so a hung client cannot hang the suite.
pub fn bounded(program: &str) -> Command {
    bounded_for(COMMAND_LIMIT, program)
}

/// As [`bounded`], killed after `seconds` instead: for what legitimately takes longer than
/// one client command (building an image, bringing a compose stack up).
pub fn bounded_for(seconds: &str, program: &str) -> Command {
    let mut cmd = Command::new("timeout");
    cmd.args(["-k", "5", seconds, program]).stdin(Stdio::null());
    cmd
}

pub fn assert_ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", text(out));
}

/// The client was refused by the registry or the token endpoint, not broken otherwise.
pub fn assert_refused(out: &Output, what: &str) {
    assert!(
        !out.status.success(),
        "{what} unexpectedly succeeded: {}",
        text(out)
    );
    let all = text(out).to_lowercase();
    assert!(
        // skopeo reports a 403 from the token endpoint only as "403 (forbidden)".
        ["denied", "unauthorized", "insufficient", "forbidden"]
            .iter()
            .any(|w| all.contains(w)),
        "{what} failed, but not with an authorization error: {all}"
    );
}

/// Refused by wvs-auth's token endpoint itself (401): wrong, revoked or expired credentials.
pub fn assert_bad_credentials(out: &Output, what: &str) {
    assert_refused(out, what);
    let all = text(out).to_lowercase();
    assert!(
        all.contains("unauthorized") && all.contains("credentials are wrong, revoked or expired"),
        "{what} was not refused by the token endpoint: {all}"
    );
}

// ---------------------------------------------------------------------------------------
// docker

/// The docker CLI with a private `DOCKER_CONFIG`, so logins never reach `~/.docker`. Images
/// it built or pulled are removed from the daemon on drop.
pub struct Docker {
    config: tempfile::TempDir,
    host: String,
    images: std::cell::RefCell<Vec<String>>,
}

impl Docker {
    pub fn new(host: &str) -> Self {
        Self {
            config: tempfile::tempdir().expect("tempdir"),
            host: host.to_string(),
            images: Default::default(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        bounded("docker")
            .args(args)
            .env("DOCKER_CONFIG", self.config.path())
            .output()
            .expect("run docker")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_ok(&out, &format!("docker {args:?}"));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn login(&self, token: &Token) -> Output {
        let mut child = bounded("docker")
            .args([
                "login",
                "--username",
                &token.username,
                "--password-stdin",
                &self.host,
            ])
            .env("DOCKER_CONFIG", self.config.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn docker login");
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin
                .write_all(token.secret.as_bytes())
                .expect("write secret");
        }
        child.wait_with_output().expect("docker login")
    }

    pub fn login_ok(&self, token: &Token) {
        assert_ok(
            &self.login(token),
            &format!("docker login as {}", token.username),
        );
    }

    pub fn logout(&self) {
        self.ok(&["logout", &self.host]);
    }

    /// `docker build`s a `FROM scratch` image holding one file of unique content, tagged
    /// `reference`; returns its image id.
    pub fn build(&self, reference: &str) -> String {
        let context = tempfile::tempdir().expect("tempdir");
        std::fs::write(context.path().join("content.txt"), unique(reference)).expect("write");
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM scratch\nCOPY content.txt /\n",
        )
        .expect("write Dockerfile");
        self.images.borrow_mut().push(reference.to_string());
        let context = context.path().to_str().expect("utf-8 path");
        self.ok(&["build", "--quiet", "--tag", reference, context]);
        self.image_id(reference)
    }

    pub fn image_id(&self, reference: &str) -> String {
        self.ok(&["image", "inspect", "--format", "{{.Id}}", reference])
    }

    pub fn push(&self, reference: &str) -> Output {
        self.run(&["push", reference])
    }

    pub fn pull(&self, reference: &str) -> Output {
        self.images.borrow_mut().push(reference.to_string());
        self.run(&["pull", reference])
    }

    /// Removes the image, and checks it is gone, so a later pull really downloads it.
    pub fn rmi(&self, reference: &str) {
        self.ok(&["rmi", reference]);
        let inspect = self.run(&["image", "inspect", reference]);
        assert!(
            !inspect.status.success(),
            "{reference} still present after rmi"
        );
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        for image in self.images.borrow().iter() {
            // Already removed by the test, or never created: both fine.
            let _ = self.run(&["rmi", "--force", image]);
        }
    }
}

// ---------------------------------------------------------------------------------------
// skopeo

/// skopeo with its own policy, registries.conf and empty auth files, so nothing under
/// /etc/containers or the user's home decides the outcome.
pub struct Skopeo {
    home: PathBuf,
    /// Extra environment, e.g. `SSL_CERT_FILE` for a realm served over HTTPS.
    env: Vec<(String, String)>,
}

impl Skopeo {
    pub fn new(scratch: &Path) -> Self {
        let home = scratch.join(unique("skopeo-home"));
        std::fs::create_dir_all(home.join("docker")).expect("mkdir");
        std::fs::write(
            home.join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .expect("policy");
        std::fs::write(home.join("registries.conf"), "").expect("registries.conf");
        std::fs::write(home.join("auth.json"), "{}").expect("auth.json");
        Self {
            home,
            env: Vec::new(),
        }
    }

    /// The same skopeo with `key=value` in its environment.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Output {
        bounded("skopeo")
            .arg("--policy")
            .arg(self.home.join("policy.json"))
            .args(args)
            .env("HOME", &self.home)
            .env("XDG_RUNTIME_DIR", &self.home)
            .env("XDG_CONFIG_HOME", &self.home)
            .env("DOCKER_CONFIG", self.home.join("docker"))
            .env("REGISTRY_AUTH_FILE", self.home.join("auth.json"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.home.join("registries.conf"),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run skopeo")
    }

    /// Copies a local OCI layout into the registry (anonymously if `creds` is `None`).
    pub fn push(&self, image: &OciImage, dest: &str, creds: Option<&Token>) -> Output {
        let mut args = vec!["copy".to_string(), "--dest-tls-verify=false".into()];
        args.extend(creds_args("--dest-", creds));
        args.extend([image.reference(), dest.to_string()]);
        self.run(&args)
    }

    /// Copies an image out of the registry into a new OCI layout at `into`.
    pub fn pull(&self, src: &str, into: &Path, creds: Option<&Token>) -> Output {
        let mut args = vec!["copy".to_string(), "--src-tls-verify=false".into()];
        args.extend(creds_args("--src-", creds));
        args.extend([src.to_string(), format!("oci:{}:out", into.display())]);
        self.run(&args)
    }

    pub fn inspect(&self, src: &str, creds: Option<&Token>) -> Output {
        let mut args = vec!["inspect".to_string(), "--tls-verify=false".into()];
        args.extend(creds_args("--", creds));
        args.push(src.to_string());
        self.run(&args)
    }

    /// Pulls `src` and checks the copy is the image that was pushed.
    pub fn pull_matches(&self, src: &str, into: &Path, creds: Option<&Token>, image: &OciImage) {
        assert_ok(
            &self.pull(src, into, creds),
            &format!("skopeo copy {src} out"),
        );
        assert_eq!(
            oci_manifest_digest(into),
            image.manifest_digest,
            "{src} came back as a different image"
        );
    }
}

/// `--creds U:S`, or `--no-creds` for an anonymous request, with `prefix` (`--src-` ...).
pub fn creds_args(prefix: &str, creds: Option<&Token>) -> Vec<String> {
    match creds {
        Some(t) => vec![
            format!("{prefix}creds"),
            format!("{}:{}", t.username, t.secret),
        ],
        None => vec![format!("{prefix}no-creds")],
    }
}

// ---------------------------------------------------------------------------------------
// A hand-written OCI image layout, so skopeo needs no docker daemon.

pub struct OciImage {
    pub dir: PathBuf,
    pub manifest_digest: String,
}

impl OciImage {
    /// `oci:DIR:TAG` as skopeo names it.
    pub fn reference(&self) -> String {
        format!("oci:{}:latest", self.dir.display())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Stores `bytes` as a blob of the layout at `dir`; returns its descriptor.
pub fn put_blob(dir: &Path, media_type: &str, bytes: &[u8]) -> serde_json::Value {
    let digest = format!("sha256:{}", hex(&Sha256::digest(bytes)));
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("mkdir blobs");
    std::fs::write(blobs.join(&digest["sha256:".len()..]), bytes).expect("write blob");
    serde_json::json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() })
}

/// `DIR/layer.tar` holding the single file `DIR/NAME`, owned by root, as image layers are.
pub fn tar_layer(dir: &Path, name: &str) -> PathBuf {
    let tar = dir.join("layer.tar");
    let status = Command::new("tar")
        .args(["--owner=0", "--group=0", "--numeric-owner", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(dir)
        .arg(name)
        .status()
        .expect("run tar");
    assert!(status.success(), "tar failed");
    tar
}

/// An OCI layout (tag `latest`) with one gzip layer holding `content.txt` = `content`.
pub fn oci_image(dir: &Path, content: &str) -> OciImage {
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("content.txt"), content).expect("write");
    let tar = tar_layer(work.path(), "content.txt");
    let status = Command::new("gzip")
        .arg("-n")
        .arg(&tar)
        .status()
        .expect("run gzip");
    assert!(status.success(), "gzip failed");
    let layer = std::fs::read(work.path().join("layer.tar.gz")).expect("read layer");
    let diff_id = {
        let out = Command::new("gzip")
            .arg("-dc")
            .arg(work.path().join("layer.tar.gz"))
            .output();
        let out = out.expect("run gzip -d");
        format!("sha256:{}", hex(&Sha256::digest(&out.stdout)))
    };

    let layer = put_blob(dir, "application/vnd.oci.image.layer.v1.tar+gzip", &layer);
    finish_oci_layout(dir, layer, &diff_id)
}

/// Completes an OCI layout (tag `latest`) around one layer already stored with
/// [`put_blob`]: the image config, the manifest and the index.
pub fn finish_oci_layout(dir: &Path, layer: serde_json::Value, diff_id: &str) -> OciImage {
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    });
    let config = put_blob(
        dir,
        "application/vnd.oci.image.config.v1+json",
        config.to_string().as_bytes(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let mut manifest = put_blob(
        dir,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    let manifest_digest = manifest["digest"].as_str().expect("digest").to_string();
    manifest["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": "latest" });
    let index = serde_json::json!({ "schemaVersion": 2, "manifests": [manifest] });
    std::fs::write(dir.join("index.json"), index.to_string()).expect("index.json");
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    OciImage {
        dir: dir.to_path_buf(),
        manifest_digest,
    }
}

/// The digest of the (only) manifest in the layout at `dir`.
pub fn oci_manifest_digest(dir: &Path) -> String {
    let index = std::fs::read_to_string(dir.join("index.json")).expect("index.json");
    let index: serde_json::Value = serde_json::from_str(&index).expect("index json");
    index["manifests"][0]["digest"]
        .as_str()
        .expect("manifest digest")
        .to_string()
}

// ---------------------------------------------------------------------------------------
// docker-registry processes

/// A `docker-registry serve CONFIG` on a free 127.0.0.1 port, with its own storage
/// directory; killed on drop.
pub struct RegistryProcess {
    /// `127.0.0.1:PORT`, the registry part of image references.
    pub host: String,
    pub process: Server,
    pub storage: tempfile::TempDir,
}

/// The overrides that make a registry trust `auth`: its realm, and `env`'s key bundle.
pub fn trust(env: &Env, auth: &Server) -> Vec<(&'static str, String)> {
    vec![
        (
            "REGISTRY_AUTH_TOKEN_REALM",
            format!("{}/jwt/auth", auth.url),
        ),
        (
            "REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE",
            env.bundle().display().to_string(),
        ),
    ]
}

impl RegistryProcess {
    /// `docker-registry serve deploy/registry/config.yml` trusting `auth` (see [`trust`]),
    /// with `extra` overrides on top.
    pub fn trusting(env: &Env, auth: &Server, extra: &[(&'static str, String)]) -> Self {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/registry/config.yml");
        let mut overrides = trust(env, auth);
        overrides.extend_from_slice(extra);
        Self::start(&config, &overrides)
    }

    /// Starts `docker-registry serve config` with `env` overrides (on top of the address,
    /// storage directory and HTTP secret set here) and waits until `GET /` answers.
    pub fn start(config: &Path, env: &[(&str, String)]) -> Self {
        Self::start_on(free_port(), config, env)
    }

    /// As [`RegistryProcess::start`], on a port chosen beforehand (when another process
    /// must know the address first).
    pub fn start_on(port: u16, config: &Path, env: &[(&str, String)]) -> Self {
        let storage = tempfile::tempdir().expect("tempdir");
        let host = format!("127.0.0.1:{port}");
        let log_path = storage.path().join("registry.log");
        let log = std::fs::File::create(&log_path).expect("registry log");
        let secret: [u8; 16] = rand::random();
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve")
            .arg(config)
            .env("REGISTRY_HTTP_ADDR", &host)
            .env(
                "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
                storage.path().join("data"),
            )
            .env("REGISTRY_HTTP_SECRET", hex(&secret));
        for (key, value) in env {
            cmd.env(key, value);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn docker-registry");
        // A registry given a certificate serves HTTPS only: ready once it accepts.
        let tls = env
            .iter()
            .any(|(k, _)| *k == "REGISTRY_HTTP_TLS_CERTIFICATE");
        let mut process = Server {
            child,
            url: format!("{}://{host}", if tls { "https" } else { "http" }),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = if tls {
                std::net::TcpStream::connect(&host).is_ok()
            } else {
                let answer = ureq::get(&format!("{}/", process.url))
                    .timeout(Duration::from_millis(500))
                    .call();
                matches!(&answer, Ok(r) if r.status() == 200)
            };
            if ready {
                break;
            }
            let exited = process.child.try_wait().expect("try_wait");
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "docker-registry not ready ({exited:?}): {}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            host,
            process,
            storage,
        }
    }

    /// The registry's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.storage.path().join("registry.log")).unwrap_or_default()
    }

    pub fn image(&self, repository: &str, tag: &str) -> String {
        format!("{}/{repository}:{tag}", self.host)
    }

    pub fn docker_url(&self, repository: &str, tag: &str) -> String {
        format!("docker://{}", self.image(repository, tag))
    }
}
