//! The Maven registry with the real client, offline: Debian's `mvn` with a `settings.xml`
//! that mirrors `central` to `file:///usr/share/maven-repo` (where Debian's deploy and
//! dependency plugins live), `mvn deploy:deploy-file` with the Deploy-Token header or Basic,
//! and `mvn dependency:get` (its `.sha1` checked) from a fresh local repository at the
//! project, group and instance levels. Then the route's contract with raw HTTP: checksum
//! files, checksum uploads, `Expect: 100-continue`, who may do what, bad paths.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use md5::Md5;
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::common;
use crate::packages::{files_below, get, put, Cred};
use common::{have, Env, Server, Token};

/// `acme/app` and `other/lib` (both private), `acme/sub` a subgroup with `acme/sub/svc`.
fn env() -> Env {
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["group", "create", "acme/sub"],
        &["group", "create", "other"],
        &["project", "create", "acme/app"],
        &["project", "create", "acme/sub/svc"],
        &["project", "create", "other/lib"],
    ] {
        env.cli_ok(args);
    }
    env
}

fn rw(env: &Env, project: &str) -> Token {
    env.token(
        &["--project", project],
        "read_package_registry,write_package_registry",
        &[],
    )
}

fn project_url(server: &Server, project: &str) -> String {
    format!(
        "{}/api/v4/projects/{}/packages/maven",
        server.url,
        project.replace('/', "%2F")
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How `settings.xml` hands the token to Maven for the server `wvs`.
enum Auth<'a> {
    Header(&'a Token),
    Basic(&'a Token),
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

/// `mvn` with this settings file and a local repository of its own, so every resolution
/// really asks the server.
struct Mvn<'a> {
    env: &'a Env,
    settings: PathBuf,
}

impl<'a> Mvn<'a> {
    fn new(env: &'a Env, name: &str, auth: Auth<'_>) -> Self {
        let server = match auth {
            Auth::Header(t) => format!(
                "<configuration><httpHeaders><property><name>Deploy-Token</name>\
                 <value>{}</value></property></httpHeaders></configuration>",
                t.secret
            ),
            Auth::Basic(t) => format!(
                "<username>{}</username><password>{}</password>",
                t.username, t.secret
            ),
        };
        let settings = env.path(&format!("settings-{name}.xml"));
        std::fs::write(
            &settings,
            format!(
                "<settings>\n  <mirrors><mirror><id>debian</id><mirrorOf>central</mirrorOf>\
                 <url>file:///usr/share/maven-repo</url></mirror></mirrors>\n  \
                 <servers><server><id>wvs</id>{server}</server></servers>\n</settings>\n"
            ),
        )
        .expect("settings.xml");
        Self { env, settings }
    }

    /// Runs `mvn ARGS` in batch mode; returns its output and the local repository.
    fn run(&self, args: &[&str]) -> (Output, PathBuf) {
        let n = RUNS.fetch_add(1, Ordering::SeqCst);
        let local = self.env.path(&format!("m2-{n}"));
        let out = Command::new("mvn")
            .arg("-B")
            .arg("-s")
            .arg(&self.settings)
            .arg(format!("-Dmaven.repo.local={}", local.display()))
            .args(args)
            .current_dir(self.env.dir.path())
            .env_remove("MAVEN_OPTS")
            .env_remove("MAVEN_ARGS")
            .output()
            .expect("mvn runs");
        (out, local)
    }

    /// `deploy:deploy-file` of `file` as `coords` (`group:artifact:version`) to `url`.
    fn deploy(&self, url: &str, coords: &str, file: &Path) -> Output {
        let [group, artifact, version] = parts(coords);
        self.run(&[
            "deploy:deploy-file",
            &format!("-Dfile={}", file.display()),
            &format!("-DgroupId={group}"),
            &format!("-DartifactId={artifact}"),
            &format!("-Dversion={version}"),
            "-Dpackaging=jar",
            "-DrepositoryId=wvs",
            &format!("-Durl={url}"),
        ])
        .0
    }

    /// `dependency:get` of `coords` from `url`: the jar it resolved, once the `.sha1` it
    /// fetched beside it is checked. (`-C`, strict checksums, would fail on the Debian
    /// mirror, which has none.)
    fn resolve(&self, url: &str, coords: &str) -> Result<Vec<u8>, String> {
        self.resolve_to(url, coords, parts(coords)[2])
    }

    /// The same for a version Maven finds in `maven-metadata.xml` (`RELEASE`, `LATEST`):
    /// the jar of `version`.
    fn resolve_to(&self, url: &str, coords: &str, version: &str) -> Result<Vec<u8>, String> {
        let (out, local) = self.run(&[
            "dependency:get",
            &format!("-Dartifact={coords}"),
            &format!("-DremoteRepositories=wvs::default::{url}"),
            "-Dtransitive=false",
        ]);
        if !out.status.success() {
            return Err(said(&out));
        }
        let [group, artifact, _] = parts(coords);
        let jar = local
            .join(group.replace('.', "/"))
            .join(artifact)
            .join(version)
            .join(format!("{artifact}-{version}.jar"));
        let bytes =
            std::fs::read(&jar).map_err(|e| format!("{}: {e}\n{}", jar.display(), said(&out)))?;
        // Beside the jar (a SNAPSHOT's under its timestamped name).
        let want = hex(&Sha1::digest(&bytes));
        let dir = jar.parent().map(Path::to_path_buf).unwrap_or_default();
        let checked = std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".jar.sha1"))
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.trim() == want));
        if !checked {
            return Err(format!(
                "no .jar.sha1 of {want} in {}\n{}",
                dir.display(),
                said(&out)
            ));
        }
        Ok(bytes)
    }
}

fn parts(coords: &str) -> [&str; 3] {
    let v: Vec<&str> = coords.split(':').collect();
    [v[0], v[1], v[2]]
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output, what: &str) {
    assert!(out.status.success(), "{what} failed: {}", said(out));
}

/// A "jar" with these bytes (Maven never opens it).
fn jar(env: &Env, name: &str, content: &str) -> PathBuf {
    let path = env.path(name);
    std::fs::write(&path, content).expect("jar");
    path
}

fn audit(env: &Env, action: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&env.cli_ok(&["audit", "--json"])).expect("json");
    v.as_array()
        .expect("array")
        .iter()
        .filter(|e| e["action"] == action)
        .cloned()
        .collect()
}

#[test]
fn mvn_deploys_releases_and_resolves_them_at_every_level() {
    if !have("mvn") {
        eprintln!("skipped: mvn is not on PATH (tests/run installs maven's plugins)");
        return;
    }
    let env = env();
    let app = rw(&env, "acme/app");
    let lib = rw(&env, "other/lib");
    let read_only = env.token(&["--project", "acme/app"], "read_package_registry", &[]);
    let group = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let server = env.serve(&[]);
    let p_app = project_url(&server, "acme/app");
    let p_lib = project_url(&server, "other/lib");

    // Deploy with the Deploy-Token header, and with Basic (the password is the token).
    let header = Mvn::new(&env, "header", Auth::Header(&app));
    let v1 = jar(&env, "v1.jar", "release one");
    ok(
        &header.deploy(&p_app, "com.example:my-app:1.0", &v1),
        "deploy 1.0",
    );
    let basic = Mvn::new(&env, "basic", Auth::Basic(&lib));
    let other = jar(&env, "lib.jar", "the library");
    ok(
        &basic.deploy(&p_lib, "org.other:lib:2.0", &other),
        "deploy with Basic",
    );

    // The metadata is kept as mvn wrote it.
    let meta = get(
        &format!("{p_app}/com/example/my-app/maven-metadata.xml"),
        Cred::DeployToken(&app),
    );
    assert_eq!(meta.status, 200, "{meta:?}");
    assert!(meta.body.contains("<release>1.0</release>"), "{meta:?}");
    assert!(meta.body.contains("<lastUpdated>"), "{meta:?}");

    // Resolution from P (both tokens), G (the group token) and I.
    assert_eq!(
        header.resolve(&p_app, "com.example:my-app:1.0").as_deref(),
        Ok(&b"release one"[..])
    );
    assert_eq!(
        basic.resolve(&p_lib, "org.other:lib:2.0").as_deref(),
        Ok(&b"the library"[..])
    );
    let by_group = Mvn::new(&env, "group", Auth::Header(&group));
    let g = format!("{}/api/v4/groups/acme/-/packages/maven", server.url);
    assert_eq!(
        by_group.resolve(&g, "com.example:my-app:1.0").as_deref(),
        Ok(&b"release one"[..])
    );
    let i = format!("{}/api/v4/packages/maven", server.url);
    assert_eq!(
        by_group.resolve(&i, "com.example:my-app:1.0").as_deref(),
        Ok(&b"release one"[..])
    );
    assert_eq!(
        basic.resolve(&i, "org.other:lib:2.0").as_deref(),
        Ok(&b"the library"[..])
    );
    // The group token sees nothing outside its group, at any level.
    let outside = by_group.resolve(&i, "org.other:lib:2.0");
    assert!(outside.is_err(), "{outside:?}");

    // A read-only token resolves but cannot deploy.
    let reader = Mvn::new(&env, "reader", Auth::Header(&read_only));
    assert_eq!(
        reader.resolve(&p_app, "com.example:my-app:1.0").as_deref(),
        Ok(&b"release one"[..])
    );
    let refused = reader.deploy(&p_app, "com.example:my-app:1.1", &v1);
    assert!(!refused.status.success(), "{}", said(&refused));
    assert!(said(&refused).contains("403"), "{}", said(&refused));

    // A release again: the same bytes are fine, other bytes are refused.
    ok(
        &header.deploy(&p_app, "com.example:my-app:1.0", &v1),
        "same bytes again",
    );
    let changed = jar(&env, "v1b.jar", "release one, changed");
    let twice = header.deploy(&p_app, "com.example:my-app:1.0", &changed);
    assert!(!twice.status.success(), "{}", said(&twice));
    assert!(said(&twice).contains("409"), "{}", said(&twice));
    assert_eq!(
        header.resolve(&p_app, "com.example:my-app:1.0").as_deref(),
        Ok(&b"release one"[..])
    );

    // Every upload went through the package manager's audit.
    let published = audit(&env, "package_published");
    assert!(
        published.iter().any(|e| e["target"] == "acme/app"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("format=maven") && d.contains("file=my-app-1.0.jar"))),
        "{published:?}"
    );
    assert!(published
        .iter()
        .all(|e| e["target"] != "acme/app" || e["actor"] == app.username.as_str()));
}

#[test]
fn mvn_redeploys_snapshots_and_resolves_the_newest() {
    if !have("mvn") {
        eprintln!("skipped: mvn is not on PATH (tests/run installs maven's plugins)");
        return;
    }
    let env = env();
    let token = rw(&env, "acme/sub/svc");
    let group = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let server = env.serve(&[]);
    let p = project_url(&server, "acme/sub/svc");
    let mvn = Mvn::new(&env, "snap", Auth::Header(&token));
    let coords = "com.example.svc:svc:2.0-SNAPSHOT";
    ok(
        &mvn.deploy(&p, coords, &jar(&env, "s1.jar", "snapshot one")),
        "first snapshot",
    );
    assert_eq!(mvn.resolve(&p, coords).as_deref(), Ok(&b"snapshot one"[..]));
    ok(
        &mvn.deploy(&p, coords, &jar(&env, "s2.jar", "snapshot two")),
        "second snapshot",
    );
    ok(
        &mvn.deploy(&p, coords, &jar(&env, "s3.jar", "snapshot three")),
        "third snapshot",
    );

    // The version's metadata is the client's and names build 3.
    let meta = get(
        &format!("{p}/com/example/svc/svc/2.0-SNAPSHOT/maven-metadata.xml"),
        Cred::DeployToken(&token),
    );
    assert_eq!(meta.status, 200, "{meta:?}");
    assert!(
        meta.body.contains("<buildNumber>3</buildNumber>"),
        "{meta:?}"
    );
    assert_eq!(
        mvn.resolve(&p, coords).as_deref(),
        Ok(&b"snapshot three"[..])
    );
    let by_group = Mvn::new(&env, "snap-group", Auth::Basic(&group));
    let g = format!("{}/api/v4/groups/acme%2Fsub/-/packages/maven", server.url);
    assert_eq!(
        by_group.resolve(&g, coords).as_deref(),
        Ok(&b"snapshot three"[..])
    );
}

/// Files put there without any `maven-metadata.xml` (as curl or another tool might): mvn
/// still resolves `RELEASE` and a SNAPSHOT, from metadata made of the stored files.
#[test]
fn mvn_resolves_through_generated_metadata() {
    if !have("mvn") {
        eprintln!("skipped: mvn is not on PATH (tests/run installs maven's plugins)");
        return;
    }
    let env = env();
    let token = rw(&env, "acme/app");
    let server = env.serve(&[]);
    let p = project_url(&server, "acme/app");
    let base = format!("{p}/com/example/gen");
    let pom = |v: &str| {
        format!(
            "<project><modelVersion>4.0.0</modelVersion><groupId>com.example</groupId>\
             <artifactId>gen</artifactId><version>{v}</version></project>"
        )
    };
    for (dir, file, body) in [
        ("1.0", "gen-1.0.jar", "gen one".to_string()),
        ("1.0", "gen-1.0.pom", pom("1.0")),
        ("1.1", "gen-1.1.jar", "gen one-one".to_string()),
        ("1.1", "gen-1.1.pom", pom("1.1")),
        (
            "2.0-SNAPSHOT",
            "gen-2.0-20261203.100000-1.jar",
            "snap 1".to_string(),
        ),
        (
            "2.0-SNAPSHOT",
            "gen-2.0-20261203.100000-1.pom",
            pom("2.0-SNAPSHOT"),
        ),
        (
            "2.0-SNAPSHOT",
            "gen-2.0-20261203.110000-2.jar",
            "snap 2".to_string(),
        ),
        (
            "2.0-SNAPSHOT",
            "gen-2.0-20261203.110000-2.pom",
            pom("2.0-SNAPSHOT"),
        ),
    ] {
        let a = put(
            &format!("{base}/{dir}/{file}"),
            Cred::DeployToken(&token),
            body.as_bytes(),
        );
        assert_eq!(a.status, 201, "{file}: {a:?}");
    }
    let mvn = Mvn::new(&env, "gen", Auth::Header(&token));
    assert_eq!(
        mvn.resolve_to(&p, "com.example:gen:RELEASE", "1.1")
            .as_deref(),
        Ok(&b"gen one-one"[..])
    );
    assert_eq!(
        mvn.resolve(&p, "com.example:gen:2.0-SNAPSHOT").as_deref(),
        Ok(&b"snap 2"[..])
    );
    let i = format!("{}/api/v4/packages/maven", server.url);
    assert_eq!(
        mvn.resolve(&i, "com.example:gen:2.0-SNAPSHOT").as_deref(),
        Ok(&b"snap 2"[..])
    );
    // HEAD answers like GET, without the body.
    let head = common::http::answer(
        common::http::agent()
            .head(&format!("{base}/1.0/gen-1.0.jar"))
            .set("Deploy-Token", &token.secret)
            .call(),
    );
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(head.header("content-length"), Some("7"));
    assert!(head.body.is_empty());
}

/// A raw HTTP/1.1 exchange: `head` (without the blank line), then the body only once the
/// server said `100 Continue`. Returns the interim line and the final status line.
fn expect_continue(server: &Server, head: &str, body: &[u8]) -> (String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{head}\r\nContent-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("write head");
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        let n = s
            .read(&mut byte)
            .expect("an interim answer before the body");
        assert_eq!(n, 1, "closed before an interim answer: {interim:?}");
        interim.push(byte[0]);
    }
    s.write_all(body).expect("write body");
    let mut rest = String::new();
    s.read_to_string(&mut rest).expect("final answer");
    let first = |t: &str| t.lines().next().unwrap_or_default().to_string();
    (first(&String::from_utf8_lossy(&interim)), first(&rest))
}

#[test]
fn maven_routes_checksums_metadata_and_refusals() {
    let env = env();
    let token = rw(&env, "acme/app");
    let read_only = env.token(&["--project", "acme/app"], "read_package_registry", &[]);
    let group = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let server = env.serve(&[]);
    let p = project_url(&server, "acme/app");
    let dir = format!("{p}/com/example/raw/1.0");
    let jar_url = format!("{dir}/raw-1.0.jar");
    let body = b"raw jar bytes".to_vec();

    // The file under Expect: 100-continue, as mvn sends every PUT.
    let path = jar_url.trim_start_matches(&server.url);
    let (interim, last) = expect_continue(
        &server,
        &format!(
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nDeploy-Token: {}",
            token.secret
        ),
        &body,
    );
    assert_eq!(interim, "HTTP/1.1 100 Continue");
    assert!(last.starts_with("HTTP/1.1 201"), "{last}");
    let a = get(&jar_url, Cred::DeployToken(&token));
    assert_eq!((a.status, a.body.as_bytes()), (200, &body[..]), "{a:?}");

    // Checksums of the stored file, answered from its digests.
    for (ext, want) in [
        ("md5", hex(&Md5::digest(&body))),
        ("sha1", hex(&Sha1::digest(&body))),
        ("sha256", hex(&Sha256::digest(&body))),
        ("sha512", hex(&Sha512::digest(&body))),
    ] {
        let a = get(&format!("{jar_url}.{ext}"), Cred::Basic(&group));
        assert_eq!((a.status, a.body.as_str()), (200, want.as_str()), "{ext}");
        // A checksum PUT is checked, never stored: the right one 2xx, another 409.
        let a = put(
            &format!("{jar_url}.{ext}"),
            Cred::DeployToken(&token),
            want.as_bytes(),
        );
        assert_eq!(a.status, 204, "{ext}: {a:?}");
        let wrong = "0".repeat(want.len());
        let a = put(
            &format!("{jar_url}.{ext}"),
            Cred::DeployToken(&token),
            wrong.as_bytes(),
        );
        assert_eq!(a.status, 409, "{ext}: {a:?}");
        assert!(a.json()["message"].is_string(), "{a:?}");
    }
    let sha1 = hex(&Sha1::digest(&body));
    let named = format!("{sha1}  raw-1.0.jar\n");
    assert_eq!(
        put(
            &format!("{jar_url}.sha1"),
            Cred::DeployToken(&token),
            named.as_bytes()
        )
        .status,
        204
    );
    assert_eq!(
        put(
            &format!("{jar_url}.sha1"),
            Cred::DeployToken(&token),
            b"not hex"
        )
        .status,
        400
    );
    assert_eq!(
        put(
            &format!("{dir}/raw-1.0.pom.sha1"),
            Cred::DeployToken(&token),
            sha1.as_bytes()
        )
        .status,
        404
    );
    assert_eq!(files_below(&env.data_dir().join("packages/blobs")).len(), 1);

    // No metadata was uploaded: it is made from the stored versions, checksums agree.
    assert_eq!(
        put(
            &format!("{p}/com/example/raw/1.1/raw-1.1.jar"),
            Cred::DeployToken(&token),
            b"v1.1"
        )
        .status,
        201
    );
    let meta_url = format!("{p}/com/example/raw/maven-metadata.xml");
    let meta = get(&meta_url, Cred::DeployToken(&read_only));
    assert_eq!(meta.status, 200, "{meta:?}");
    for v in [
        "<groupId>com.example</groupId>",
        "<artifactId>raw</artifactId>",
        "<version>1.0</version>",
        "<version>1.1</version>",
        "<release>1.1</release>",
    ] {
        assert!(meta.body.contains(v), "{v}: {}", meta.body);
    }
    let meta_sha1 = get(&format!("{meta_url}.sha1"), Cred::DeployToken(&read_only));
    assert_eq!(meta_sha1.body, hex(&Sha1::digest(meta.body.as_bytes())));
    // The same at group and instance level.
    let g_meta = format!(
        "{}/api/v4/groups/acme/-/packages/maven/com/example/raw/maven-metadata.xml",
        server.url
    );
    assert_eq!(get(&g_meta, Cred::DeployToken(&group)).body, meta.body);
    let i_jar = format!(
        "{}/api/v4/packages/maven/com/example/raw/1.0/raw-1.0.jar",
        server.url
    );
    assert_eq!(
        get(&i_jar, Cred::DeployToken(&group)).body.as_bytes(),
        &body[..]
    );
    assert_eq!(
        get(
            &format!("{p}/com/example/none/maven-metadata.xml"),
            Cred::DeployToken(&token)
        )
        .status,
        404
    );

    // A release file is never replaced by other bytes; the same bytes are fine.
    assert_eq!(put(&jar_url, Cred::DeployToken(&token), &body).status, 201);
    let a = put(&jar_url, Cred::DeployToken(&token), b"other bytes");
    assert_eq!(a.status, 409, "{a:?}");
    assert_eq!(
        get(&jar_url, Cred::DeployToken(&token)).body.as_bytes(),
        &body[..]
    );
    // A SNAPSHOT's file is.
    let snap = format!("{p}/com/example/raw/2.0-SNAPSHOT/raw-2.0-SNAPSHOT.jar");
    assert_eq!(put(&snap, Cred::DeployToken(&token), b"s1").status, 201);
    assert_eq!(put(&snap, Cred::DeployToken(&token), b"s2").status, 201);
    assert_eq!(get(&snap, Cred::DeployToken(&token)).body, "s2");
    let blobs = files_below(&env.data_dir().join("packages/blobs"));
    assert_eq!(blobs.len(), 3, "raw-1.0, raw-1.1, s2: {blobs:?}");

    // 401 with the challenge, 403 without the scope or at G/I, 404 for other projects.
    for cred in [Cred::None, Cred::Raw("Bearer wvsdt-nonsense")] {
        for a in [get(&jar_url, cred), put(&jar_url, cred, b"x")] {
            assert_eq!(a.status, 401, "{a:?}");
            assert_eq!(
                a.header("www-authenticate"),
                Some(r#"Basic realm="wvs-auth""#)
            );
        }
    }
    assert_eq!(
        put(
            &format!("{dir}/raw-1.0.pom"),
            Cred::DeployToken(&read_only),
            b"<project/>"
        )
        .status,
        403
    );
    let g_put = format!(
        "{}/api/v4/groups/acme/-/packages/maven/com/example/raw/1.2/raw-1.2.jar",
        server.url
    );
    assert_eq!(put(&g_put, Cred::DeployToken(&token), b"x").status, 403);
    let other = project_url(&server, "other/lib");
    assert_eq!(
        get(
            &format!("{other}/com/example/raw/1.0/raw-1.0.jar"),
            Cred::DeployToken(&token)
        )
        .status,
        404
    );
    assert_eq!(
        put(
            &format!("{other}/com/example/raw/1.0/raw-1.0.jar"),
            Cred::DeployToken(&token),
            b"x"
        )
        .status,
        404
    );
    let missing = project_url(&server, "acme/nothing");
    assert_eq!(
        get(
            &format!("{missing}/com/example/raw/1.0/raw-1.0.jar"),
            Cred::DeployToken(&token)
        )
        .status,
        404
    );
    assert_eq!(
        get(
            &format!("{p}/com/example/raw/9.9/raw-9.9.jar"),
            Cred::DeployToken(&token)
        )
        .status,
        404
    );

    // Bad paths: 400 (or 404 for what no route takes), JSON, nothing stored.
    let before = files_below(&env.data_dir().join("packages")).len();
    let published = audit(&env, "package_published").len();
    for bad in [
        "com/example/raw/1.0/..",
        "com/example/raw/..%2F..%2Fx/raw-1.0.jar",
        "com/%2e%2e/raw/1.0/raw-1.0.jar",
        "..%2F..%2Fetc/raw/1.0/raw-1.0.jar",
        "com//raw/1.0/raw-1.0.jar",
        "com/example/raw/1.0/",
        "raw/1.0/raw-1.0.jar",
        "raw/maven-metadata.xml",
        "com/example/raw/1.0/other-1.0.jar",
        "com/example/ra%20w/1.0/ra%20w-1.0.jar",
        "com/example/raw/1.0/raw-1.0.jar%00",
        "com/example/raw/1.0/raw-1.0.jar%2F..%2F..%2Fescape",
    ] {
        for a in [
            put(&format!("{p}/{bad}"), Cred::DeployToken(&token), b"evil"),
            get(&format!("{p}/{bad}"), Cred::DeployToken(&token)),
        ] {
            assert!(a.status == 400 || a.status == 404, "{bad}: {a:?}");
            assert!(a.json()["message"].is_string(), "{bad}: {a:?}");
        }
    }
    assert_eq!(files_below(&env.data_dir().join("packages")).len(), before);
    assert_eq!(audit(&env, "package_published").len(), published);
}
