//! The Dependency Proxy end to end with real parts on 127.0.0.1 (SPEC §2): a stock
//! `docker-registry` plays the upstream (Docker Hub), a second one is the pull-through cache
//! configured by `deploy/dependency-proxy/config.yml` (with environment overrides), and
//! wvs-auth is the cache's token realm and serves the GitLab-style paths in front of it.
//! Driven by the docker CLI and skopeo. The tools are required: a missing one fails.

use crate::common;

use std::path::{Path, PathBuf};

use common::tools::*;
use common::{free_port, Env, Server, Token};

const RW: &str = "read_registry,write_registry";

/// Configuration of an upstream without authentication.
const UPSTREAM_CONFIG: &str = "version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
health:
  storagedriver:
    enabled: false
";

/// The registry standing in for Docker Hub.
///
/// The protected variant is what Docker Hub is: a registry behind a token server that
/// wants Basic credentials (here a second, unrelated wvs-auth with a `library` project).
/// Not htpasswd: distribution 2.8's proxy answers only Bearer challenges upstream and
/// never sends Basic credentials to the upstream registry itself (checked by hand: an
/// htpasswd upstream sees every proxied request without credentials).
struct Upstream {
    registry: RegistryProcess,
    /// The upstream's own token server, when protected.
    _hub_auth: Option<(Server, Env)>,
    /// Credentials for the upstream, when protected.
    login: Option<Token>,
}

impl Upstream {
    fn start(dir: &Path, protected: bool) -> Self {
        if !protected {
            let config = dir.join("upstream.yml");
            std::fs::write(&config, UPSTREAM_CONFIG).expect("upstream config");
            return Self {
                registry: RegistryProcess::start(&config, &[]),
                _hub_auth: None,
                login: None,
            };
        }
        let hub = Env::new();
        hub.cli_ok(&["project", "create", "library"]);
        let login = hub.token(&["--project", "library"], RW, &[]);
        let auth = hub.serve(&[]);
        let registry = RegistryProcess::trusting(&hub, &auth, &[]);
        Self {
            registry,
            _hub_auth: Some((auth, hub)),
            login: Some(login),
        }
    }

    /// Copies `image` into the upstream as `repository:tag`.
    fn preload(&self, skopeo: &Skopeo, image: &OciImage, repository: &str, tag: &str) {
        let dest = self.registry.docker_url(repository, tag);
        assert_ok(
            &skopeo.push(image, &dest, self.login.as_ref()),
            &format!("preloading the upstream with {repository}:{tag}"),
        );
    }
}

/// wvs-auth with the GitLab-style endpoint, the pull-through cache trusting it, and the
/// upstream behind the cache.
struct Fixture {
    // Drop order: processes first, then directories.
    cache: RegistryProcess,
    upstream: Option<Upstream>,
    auth: Server,
    /// `127.0.0.1:PORT` of wvs-auth, the registry part of GitLab-style references.
    auth_host: String,
    scratch: tempfile::TempDir,
    env: Env,
}

impl Fixture {
    fn new(protected_upstream: bool) -> Self {
        Self::with_cache_credentials(protected_upstream, true)
    }

    /// `pass_credentials`: whether the cache is given the upstream's username/password.
    fn with_cache_credentials(protected_upstream: bool, pass_credentials: bool) -> Self {
        require_tools(REGISTRY_TOOLS);
        let env = Env::new();
        for command in [
            "group create acme --dependency-proxy",
            "group create acme/platform",
            "project create acme/app",
        ] {
            env.cli_ok(&command.split(' ').collect::<Vec<_>>());
        }
        env.cli_ok(&["keys", "init"]);
        let scratch = tempfile::tempdir().expect("tempdir");
        let upstream = Upstream::start(scratch.path(), protected_upstream);

        let cache_port = free_port();
        let cache_url = format!("http://127.0.0.1:{cache_port}");
        let auth = env.serve(&["--proxy-registry", &cache_url]);
        let config =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/dependency-proxy/config.yml");
        let mut overrides = trust(&env, &auth);
        overrides.push((
            "REGISTRY_PROXY_REMOTEURL",
            format!("http://{}", upstream.registry.host),
        ));
        if let (Some(login), true) = (&upstream.login, pass_credentials) {
            overrides.push(("REGISTRY_PROXY_USERNAME", login.username.clone()));
            overrides.push(("REGISTRY_PROXY_PASSWORD", login.secret.clone()));
        }
        let cache = RegistryProcess::start_on(cache_port, &config, &overrides);
        let auth_host = format!("127.0.0.1:{}", auth.port);
        Self {
            cache,
            upstream: Some(upstream),
            auth,
            auth_host,
            scratch,
            env,
        }
    }

    fn upstream(&self) -> &Upstream {
        self.upstream.as_ref().expect("upstream running")
    }

    /// Stops the upstream for good: from now on only the cache can answer.
    fn stop_upstream(&mut self) {
        let host = self.upstream().registry.host.clone();
        self.upstream = None;
        let gone = ureq::get(&format!("http://{host}/")).call().is_err();
        assert!(gone, "upstream {host} still answers");
    }

    fn group_token(&self, group: &str, scopes: &str) -> Token {
        self.env.token(&["--group", group], scopes, &[])
    }

    fn skopeo(&self) -> Skopeo {
        Skopeo::new(self.scratch.path())
    }

    fn dir(&self, label: &str) -> PathBuf {
        let dir = self.scratch.path().join(unique(label));
        std::fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    /// A new image (unique content) preloaded upstream as `repository:v1`.
    fn preloaded(&self, repository: &str) -> OciImage {
        let image = oci_image(&self.dir("layout"), &unique(repository));
        self.upstream()
            .preload(&self.skopeo(), &image, repository, "v1");
        image
    }

    /// `127.0.0.1:WVS/acme/dependency_proxy/containers/IMAGE:TAG`.
    fn gitlab_image(&self, group: &str, image: &str, tag: &str) -> String {
        format!(
            "{}/{group}/dependency_proxy/containers/{image}:{tag}",
            self.auth_host
        )
    }

    fn cache_log(&self) -> String {
        self.cache.log()
    }
}

/// A unique image name, usable as a Docker Hub official image (`library/NAME`).
fn image_name(label: &str) -> String {
    unique(label).replace('_', "-")
}

/// The manifest digest docker recorded for a pulled image.
fn docker_repo_digests(docker: &Docker, reference: &str) -> String {
    docker.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        reference,
    ])
}

// ---------------------------------------------------------------------------------------

#[test]
fn docker_pulls_through_the_cache_both_ways_then_from_the_cache_alone() {
    let mut fx = Fixture::new(false);
    let name = image_name("official");
    let image = fx.preloaded(&format!("library/{name}"));
    let token = fx.group_token("acme", RW);

    // Straight at the cache, as Docker Hub names it.
    let at_cache = Docker::new(&fx.cache.host);
    at_cache.login_ok(&token);
    let direct = fx.cache.image(&format!("library/{name}"), "v1");
    assert_ok(&at_cache.pull(&direct), "docker pull through the cache");
    assert!(docker_repo_digests(&at_cache, &direct).contains(&image.manifest_digest));

    // GitLab style, through wvs-auth: `NAME` reaches the upstream as `library/NAME`.
    let at_auth = Docker::new(&fx.auth_host);
    at_auth.login_ok(&token);
    let gitlab = fx.gitlab_image("acme", &name, "v1");
    assert_ok(
        &at_auth.pull(&gitlab),
        "docker pull of the GitLab-style path",
    );
    assert!(docker_repo_digests(&at_auth, &gitlab).contains(&image.manifest_digest));

    // A two-part name stays as it is, and subgroups of the token's group are covered.
    let team = format!("team/{}", image_name("tool"));
    let team_image = fx.preloaded(&team);
    let sub = format!("docker://{}", fx.gitlab_image("acme/platform", &team, "v1"));
    fx.skopeo()
        .pull_matches(&sub, &fx.dir("out"), Some(&token), &team_image);

    // Upstream gone: both ways are served from the cache.
    fx.stop_upstream();
    at_cache.rmi(&direct);
    at_auth.rmi(&gitlab);
    assert_ok(
        &at_cache.pull(&direct),
        "docker pull from the cache with the upstream stopped",
    );
    assert_ok(
        &at_auth.pull(&gitlab),
        "docker pull of the GitLab-style path with the upstream stopped",
    );
    assert!(docker_repo_digests(&at_auth, &gitlab).contains(&image.manifest_digest));
}

#[test]
fn skopeo_pulls_both_ways_from_an_upstream_that_needs_credentials() {
    let fx = Fixture::new(true);
    let skopeo = fx.skopeo();
    let token = fx.group_token("acme", RW);
    let name = image_name("official");
    let image = fx.preloaded(&format!("library/{name}"));

    // The upstream really wants credentials.
    let upstream = fx
        .upstream()
        .registry
        .docker_url(&format!("library/{name}"), "v1");
    assert_refused(
        &skopeo.inspect(&upstream, None),
        "anonymous inspect at the protected upstream",
    );

    let direct = fx.cache.docker_url(&format!("library/{name}"), "v1");
    skopeo.pull_matches(&direct, &fx.dir("out"), Some(&token), &image);
    let gitlab = format!("docker://{}", fx.gitlab_image("acme", &name, "v1"));
    skopeo.pull_matches(&gitlab, &fx.dir("out"), Some(&token), &image);
    // Tag listing is not part of the GitLab-style surface (404, as in GitLab): --no-tags.
    let mut args = vec![
        "inspect".to_string(),
        "--no-tags".into(),
        "--tls-verify=false".into(),
    ];
    args.extend(creds_args("--", Some(&token)));
    args.push(gitlab.clone());
    assert_ok(
        &skopeo.run(&args),
        "skopeo inspect --no-tags of the GitLab-style path",
    );
}

#[test]
fn a_cache_without_the_upstream_credentials_cannot_pull() {
    let fx = Fixture::with_cache_credentials(true, false);
    let name = image_name("official");
    fx.preloaded(&format!("library/{name}"));
    let token = fx.group_token("acme", RW);
    let out = fx.skopeo().pull(
        &fx.cache.docker_url(&format!("library/{name}"), "v1"),
        &fx.dir("out"),
        Some(&token),
    );
    assert!(
        !out.status.success(),
        "pulled although the cache has no upstream credentials: {}",
        text(&out)
    );
}

#[test]
fn refusals_for_every_principal_outside_the_rule_and_for_pushes() {
    let fx = Fixture::new(false);
    let name = image_name("official");
    let image = fx.preloaded(&format!("library/{name}"));
    let good = fx.group_token("acme", RW);
    let revoked = fx.group_token("acme", RW);
    fx.env.cli_ok(&["token", "revoke", &revoked.id.to_string()]);
    let refused = [
        (
            "project token",
            fx.env.token(&["--project", "acme/app"], RW, &[]),
        ),
        (
            "group token with read_registry only",
            fx.group_token("acme", "read_registry"),
        ),
        (
            "group token with write_registry only",
            fx.group_token("acme", "write_registry"),
        ),
        (
            "group with the proxy disabled",
            fx.group_token("acme/platform", RW),
        ),
        ("revoked token", revoked),
        (
            "expired token",
            fx.env.expired_token(&["--group", "acme"], RW),
        ),
    ];
    let skopeo = fx.skopeo();
    let direct = fx.cache.docker_url(&format!("library/{name}"), "v1");
    let gitlab = format!("docker://{}", fx.gitlab_image("acme", &name, "v1"));
    for (what, token) in &refused {
        for host in [&fx.cache.host, &fx.auth_host] {
            let docker = Docker::new(host);
            assert_refused(
                &docker.login(token),
                &format!("docker login to {host}, {what}"),
            );
        }
        for src in [&direct, &gitlab] {
            assert_refused(
                &skopeo.inspect(src, Some(token)),
                &format!("skopeo inspect {src}, {what}"),
            );
            assert_refused(
                &skopeo.pull(src, &fx.dir("out"), Some(token)),
                &format!("skopeo copy {src}, {what}"),
            );
        }
    }

    // Pushes, with the good token: refused by the cache and by the GitLab-style endpoint.
    let push_direct = fx.cache.docker_url(&format!("library/{name}"), "pushed");
    let push_gitlab = format!("docker://{}", fx.gitlab_image("acme", &name, "pushed"));
    for dest in [&push_direct, &push_gitlab] {
        assert_refused(
            &skopeo.push(&image, dest, Some(&good)),
            &format!("skopeo copy into {dest}"),
        );
    }
    for host in [&fx.cache.host, &fx.auth_host] {
        let docker = Docker::new(host);
        docker.login_ok(&good);
        let reference = if *host == fx.auth_host {
            fx.gitlab_image("acme", &name, "docker-push")
        } else {
            fx.cache.image(&format!("library/{name}"), "docker-push")
        };
        docker.build(&reference);
        assert_refused(
            &docker.push(&reference),
            &format!("docker push {reference}"),
        );
    }
    // The good token still pulls: the refusals were about the others.
    skopeo.pull_matches(&gitlab, &fx.dir("out"), Some(&good), &image);
}

// ---------------------------------------------------------------------------------------
// Streaming: a large layer goes through wvs-auth without growing its memory.

/// Layer size: far above the memory bound, so a buffered body could not pass.
const LARGE_LAYER_BYTES: usize = 64 * 1024 * 1024;
/// Bound on wvs-auth's peak resident memory (VmHWM) after the pull.
const MEMORY_BOUND_KB: u64 = 64 * 1024;

/// An OCI layout with one uncompressed layer holding `LARGE_LAYER_BYTES` of random data.
fn large_image(dir: &Path) -> OciImage {
    let work = tempfile::tempdir().expect("tempdir");
    let mut data = vec![0u8; LARGE_LAYER_BYTES];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut data);
    std::fs::write(work.path().join("random.bin"), &data).expect("write");
    drop(data);
    let tar = tar_layer(work.path(), "random.bin");
    let layer_bytes = std::fs::read(&tar).expect("read layer");
    let layer = put_blob(dir, "application/vnd.oci.image.layer.v1.tar", &layer_bytes);
    let diff_id = layer["digest"].as_str().expect("digest").to_string();
    drop(layer_bytes);
    finish_oci_layout(dir, layer, &diff_id)
}

/// Peak resident set size of a process, in kB (`VmHWM` in /proc/PID/status).
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

#[test]
fn a_large_layer_streams_through_wvs_auth_with_flat_memory() {
    let fx = Fixture::new(false);
    let name = image_name("large");
    let image = large_image(&fx.dir("layout"));
    fx.upstream()
        .preload(&fx.skopeo(), &image, &format!("library/{name}"), "v1");
    // skopeo compresses the layer on the way in, so the upstream's manifest is the reference.
    let inspected = fx.skopeo().run(&[
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        "--format",
        "{{.Digest}}",
        &fx.upstream()
            .registry
            .docker_url(&format!("library/{name}"), "v1"),
    ]);
    assert_ok(&inspected, "skopeo inspect at the upstream");
    let expected = String::from_utf8_lossy(&inspected.stdout)
        .trim()
        .to_string();
    let token = fx.group_token("acme", RW);
    let before = peak_rss_kb(fx.auth.child.id());

    let gitlab = format!("docker://{}", fx.gitlab_image("acme", &name, "v1"));
    let out = fx.dir("out");
    let pulled = fx.skopeo().pull(&gitlab, &out, Some(&token));
    assert_ok(
        &pulled,
        "skopeo copy of a large image via the GitLab-style path",
    );
    assert_eq!(oci_manifest_digest(&out), expected);
    // skopeo verified the layer's digest; check it really came through whole.
    let layer_files: u64 = std::fs::read_dir(out.join("blobs/sha256"))
        .expect("blobs")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .max()
        .unwrap_or(0);
    // Random data does not compress: the layer is still over the bound in size.
    assert!(
        layer_files >= (LARGE_LAYER_BYTES as u64) * 99 / 100,
        "layer truncated: {layer_files} bytes"
    );

    let after = peak_rss_kb(fx.auth.child.id());
    eprintln!("wvs-auth VmHWM: {before} kB before, {after} kB after the pull");
    assert!(
        after < MEMORY_BOUND_KB,
        "wvs-auth peak RSS grew from {before} kB to {after} kB streaming a {} MB layer \
         (cache log: {})",
        LARGE_LAYER_BYTES >> 20,
        fx.cache_log()
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
}
