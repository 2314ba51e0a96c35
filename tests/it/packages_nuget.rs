//! The NuGet registry with real parts: Debian's `nuget` (2.8.7 on mono, which speaks only
//! the v2 protocol) packs packages made here from `.nuspec` files and pushes them with
//! `-ApiKey` and with `sources add -UserName -Password` (Basic after a challenge), each run
//! with its own `HOME` and `-ConfigFile`; a wrong username, a read-only token and a second
//! push of a version are refused; `nuget delete` removes a version. The v3 read path is
//! driven by [`V3`], a client that follows Microsoft's protocol documentation: it is given
//! the service index URL only and takes every other URL from the documents it reads.
//! Route shapes (401 with a challenge, 403, 404, 409, 400 for a broken package, nothing
//! half-kept) are checked over plain HTTP.

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::common;
use crate::packages::files_below;
use common::http::{agent, answer, basic, Answer};
use common::{have, Env, Token};

/// Debian's nuget is a mono program: both must be there (tests/run installs them).
fn nuget_missing() -> bool {
    if have("nuget") && have("mono") {
        return false;
    }
    eprintln!("skipping: `nuget` or `mono` is not on PATH (tests/run installs Debian's nuget)");
    true
}

/// One `nuget` user: its own `HOME` (mono keeps the key that encrypts stored passwords
/// under `~/.config/.mono`) and its own `NuGet.Config`, so nothing is read from or written
/// to the machine's.
struct Nuget {
    home: PathBuf,
    config: PathBuf,
}

impl Nuget {
    fn new(env: &Env, name: &str) -> Self {
        let home = env.path(name);
        std::fs::create_dir_all(&home).expect("nuget home");
        let config = home.join("NuGet.Config");
        std::fs::write(
            &config,
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n</configuration>\n",
        )
        .expect("NuGet.Config");
        Self { home, config }
    }

    /// `nuget ARGS -ConfigFile … -NonInteractive` in `dir` (`pack` reads no config and
    /// takes no `-ConfigFile`).
    fn run(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new("nuget");
        cmd.args(args);
        if args.first() != Some(&"pack") {
            cmd.arg("-ConfigFile").arg(&self.config);
        }
        cmd.arg("-NonInteractive")
            .current_dir(dir)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env_remove("http_proxy")
            .env_remove("HTTP_PROXY")
            .output()
            .expect("nuget runs")
    }

    /// `nuget sources add -Name wvs` with Basic credentials.
    fn add_source(&self, dir: &Path, url: &str, username: &str, password: &str) {
        ok(
            &self.run(
                dir,
                &[
                    "sources",
                    "add",
                    "-Name",
                    "wvs",
                    "-Source",
                    url,
                    "-UserName",
                    username,
                    "-Password",
                    password,
                ],
            ),
            "nuget sources add",
        );
    }
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: &Output, what: &str) -> String {
    let text = said(out);
    assert!(out.status.success(), "{what} failed: {text}");
    text
}

/// A `.nuspec` for `nuget pack`, with one file so the package has content.
fn nuspec(id: &str, version: &str, description: &str, dependencies: &str) -> String {
    format!(
        r#"<?xml version="1.0"?>
<package xmlns="http://schemas.microsoft.com/packaging/2010/07/nuspec.xsd">
  <metadata>
    <id>{id}</id>
    <version>{version}</version>
    <authors>The Test</authors>
    <description>{description}</description>
    <tags>wvs test</tags>
    <dependencies>{dependencies}</dependencies>
  </metadata>
  <files>
    <file src="readme.txt" target="content" />
  </files>
</package>
"#
    )
}

/// Packs `id` `version` in `dir` and returns the `.nupkg`'s file name (relative: nuget
/// 2.8.7 misreads absolute package paths) and its bytes.
fn pack(nuget: &Nuget, dir: &Path, id: &str, version: &str, spec: &str) -> (String, Vec<u8>) {
    std::fs::create_dir_all(dir).expect("package dir");
    std::fs::write(dir.join("readme.txt"), format!("{id} {version}\n")).expect("readme");
    let spec_file = format!("{id}.{version}.nuspec");
    std::fs::write(dir.join(&spec_file), spec).expect("nuspec");
    ok(&nuget.run(dir, &["pack", &spec_file]), "nuget pack");
    let name = format!("{id}.{version}.nupkg");
    let bytes = std::fs::read(dir.join(&name)).expect("the package nuget made");
    (name, bytes)
}

fn push_with_key(nuget: &Nuget, dir: &Path, file: &str, source: &str, key: &str) -> Output {
    nuget.run(dir, &["push", file, "-Source", source, "-ApiKey", key])
}

/// A NuGet v3 client by Microsoft's documentation ("Service index", "Package content",
/// "Package metadata", "Search"): it knows the service index URL and nothing else.
struct V3 {
    auth: String,
    resources: Vec<(String, String)>,
}

impl V3 {
    fn discover(index: &str, auth: String) -> Self {
        let a = get(index, Some(&auth));
        assert_eq!(a.status, 200, "service index: {a:?}");
        let doc = a.json();
        assert_eq!(doc["version"], "3.0.0", "{doc}");
        let resources = doc["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .map(|r| {
                (
                    r["@type"].as_str().expect("@type").to_string(),
                    r["@id"].as_str().expect("@id").to_string(),
                )
            })
            .collect();
        Self { auth, resources }
    }

    fn has(&self, kind: &str) -> bool {
        self.resources.iter().any(|(t, _)| t == kind)
    }

    /// The `@id` of the resource of this `@type`, without a trailing slash (clients
    /// append `/…` to it).
    fn resource(&self, kind: &str) -> String {
        let found = self
            .resources
            .iter()
            .find(|(t, _)| t == kind)
            .unwrap_or_else(|| panic!("no {kind} in {:?}", self.resources));
        found.1.trim_end_matches('/').to_string()
    }

    fn json(&self, url: &str) -> Value {
        let a = get(url, Some(&self.auth));
        assert_eq!(a.status, 200, "{url}: {a:?}");
        a.json()
    }

    fn bytes(&self, url: &str) -> Vec<u8> {
        let (status, body) = get_bytes(url, Some(&self.auth));
        assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
        body
    }

    /// `GET {PackageBaseAddress}/{lower-id}/index.json`.
    fn versions(&self, id: &str) -> Vec<String> {
        let base = self.resource("PackageBaseAddress/3.0.0");
        let v = self.json(&format!("{base}/{}/index.json", id.to_lowercase()));
        v["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|s| s.as_str().expect("a string").to_string())
            .collect()
    }

    fn nupkg(&self, id: &str, version: &str) -> Vec<u8> {
        let (id, version) = (id.to_lowercase(), version.to_lowercase());
        let base = self.resource("PackageBaseAddress/3.0.0");
        self.bytes(&format!("{base}/{id}/{version}/{id}.{version}.nupkg"))
    }

    fn nuspec(&self, id: &str, version: &str) -> String {
        let (id, version) = (id.to_lowercase(), version.to_lowercase());
        let base = self.resource("PackageBaseAddress/3.0.0");
        String::from_utf8(self.bytes(&format!("{base}/{id}/{version}/{id}.nuspec"))).expect("UTF-8")
    }

    /// The registration index, and every leaf in it (pages inlined, or fetched by their
    /// `@id` when a server does not inline them).
    fn registration(&self, id: &str) -> Vec<Value> {
        let base = self.resource("RegistrationsBaseUrl");
        let index = self.json(&format!("{base}/{}/index.json", id.to_lowercase()));
        let mut leaves = Vec::new();
        for page in index["items"].as_array().expect("pages") {
            let page = match page["items"].as_array() {
                Some(_) => page.clone(),
                None => self.json(page["@id"].as_str().expect("page @id")),
            };
            leaves.extend(page["items"].as_array().expect("leaves").iter().cloned());
        }
        leaves
    }

    fn search(&self, query: &str) -> Value {
        let base = self.resource("SearchQueryService");
        self.json(&format!("{base}?{query}"))
    }
}

fn get(url: &str, auth: Option<&str>) -> Answer {
    let req = agent().get(url);
    answer(match auth {
        Some(a) => req.set("Authorization", a).call(),
        None => req.call(),
    })
}

/// A download as bytes (the harness's `Answer` holds text).
fn get_bytes(url: &str, auth: Option<&str>) -> (u16, Vec<u8>) {
    let req = agent().get(url);
    let sent = match auth {
        Some(a) => req.set("Authorization", a).call(),
        None => req.call(),
    };
    let response = match sent {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("transport error: {e}"),
    };
    let status = response.status();
    let mut body = Vec::new();
    response
        .into_reader()
        .read_to_end(&mut body)
        .expect("read body");
    (status, body)
}

fn auth_of(t: &Token) -> String {
    basic(&t.username, &t.secret)
}

fn leaf_of<'a>(leaves: &'a [Value], version: &str) -> &'a Value {
    leaves
        .iter()
        .find(|l| l["catalogEntry"]["version"] == version)
        .unwrap_or_else(|| panic!("no leaf for {version} in {leaves:?}"))
}

/// The dependency groups of a catalog entry as `(targetFramework, [(id, range)])`.
fn groups(entry: &Value) -> Vec<(String, Vec<(String, String)>)> {
    entry["dependencyGroups"]
        .as_array()
        .expect("dependencyGroups")
        .iter()
        .map(|g| {
            let deps = g["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .map(|d| {
                    (
                        d["id"].as_str().expect("id").to_string(),
                        d["range"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect();
            (
                g["targetFramework"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                deps,
            )
        })
        .collect()
}

#[test]
fn nuget_pushes_and_a_v3_client_reads_by_discovery() {
    if nuget_missing() {
        return;
    }
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["group", "create", "acme/sub"],
        &["project", "create", "acme/sub/app"],
        &["project", "create", "acme/tools"],
    ] {
        env.cli_ok(args);
    }
    let rw = env.token(
        &["--project", "acme/sub/app"],
        "read_package_registry,write_package_registry",
        &["--username", "nuget-bot"],
    );
    let ro = env.token(&["--project", "acme/sub/app"], "read_package_registry", &[]);
    let group_read = env.token(&["--group", "acme"], "read_package_registry", &[]);
    let server = env.serve(&[]);
    let source = format!(
        "{}/api/v4/projects/acme%2Fsub%2Fapp/packages/nuget",
        server.url
    );
    let dir = env.path("packages");
    let packer = Nuget::new(&env, "home-packer");
    let with_deps = r#"
      <group targetFramework="net45">
        <dependency id="Newtonsoft.Json" version="[13.0.1, 14.0)" />
      </group>
      <group>
        <dependency id="Other.Lib" version="2.0" />
      </group>"#;
    let (stable, stable_bytes) = pack(
        &packer,
        &dir,
        "Demo.Lib",
        "1.0.0",
        &nuspec("Demo.Lib", "1.0.0", "the demo library", with_deps),
    );
    let (beta, beta_bytes) = pack(
        &packer,
        &dir,
        "Demo.Lib",
        "1.2.0-Beta",
        &nuspec(
            "Demo.Lib",
            "1.2.0-Beta",
            "the demo library, next",
            with_deps,
        ),
    );
    let (tool, tool_bytes) = pack(
        &packer,
        &dir,
        "Other.Tool",
        "2.0",
        &nuspec("Other.Tool", "2.0", "a command-line helper", ""),
    );

    // -ApiKey: X-NuGet-ApiKey on the PUT. A second push of the version is refused.
    let keyed = Nuget::new(&env, "home-keyed");
    let out = ok(
        &push_with_key(&keyed, &dir, &stable, &source, &rw.secret),
        "nuget push -ApiKey",
    );
    assert!(out.contains("pushed"), "{out}");
    let again = push_with_key(&keyed, &dir, &stable, &source, &rw.secret);
    assert!(!again.status.success(), "pushed twice: {}", said(&again));
    assert!(said(&again).contains("Conflict"), "{}", said(&again));

    // A read-only token may not push.
    let refused = push_with_key(&keyed, &dir, &tool, &source, &ro.secret);
    assert!(!refused.status.success(), "{}", said(&refused));
    assert!(said(&refused).contains("Forbidden"), "{}", said(&refused));

    // A source with credentials: nuget sends Basic after the 401 challenge.
    let basic_user = Nuget::new(&env, "home-basic");
    basic_user.add_source(&dir, &source, &rw.username, &rw.secret);
    let out = ok(
        &basic_user.run(&dir, &["push", &beta, "-Source", "wvs"]),
        "nuget push with source credentials",
    );
    assert!(out.contains("pushed"), "{out}");

    // The same token under another username is refused.
    let impostor = Nuget::new(&env, "home-impostor");
    impostor.add_source(&dir, &source, "someone-else", &rw.secret);
    let out = impostor.run(&dir, &["push", &tool, "-Source", "wvs"]);
    let text = said(&out);
    assert!(
        !out.status.success(),
        "pushed under a wrong username: {text}"
    );
    // nuget sent the stored Basic credentials and was challenged again.
    assert!(
        text.contains("Using credentials from config. UserName: someone-else")
            && text.contains("Please provide credentials"),
        "{text}"
    );

    // Older clients' v2 path.
    ok(
        &push_with_key(&keyed, &dir, &tool, &format!("{source}/v2"), &rw.secret),
        "nuget push to …/v2",
    );

    // The v3 read path, from the project's service index with the read-only token.
    let v3 = V3::discover(&format!("{source}/index.json"), auth_of(&ro));
    for kind in [
        "PackagePublish/2.0.0",
        "RegistrationsBaseUrl/3.0.0-beta",
        "RegistrationsBaseUrl/3.0.0-rc",
        "SearchQueryService/3.0.0-beta",
        "SearchQueryService/3.0.0-rc",
    ] {
        assert!(v3.has(kind), "{kind} missing from {:?}", v3.resources);
    }
    assert_eq!(v3.versions("Demo.Lib"), ["1.0.0", "1.2.0-beta"]);
    assert_eq!(v3.versions("other.tool"), ["2.0.0"]);
    assert!(
        v3.nupkg("Demo.Lib", "1.0.0") == stable_bytes,
        "1.0.0's bytes"
    );
    assert!(
        v3.nupkg("Demo.Lib", "1.2.0-Beta") == beta_bytes,
        "beta's bytes"
    );
    assert!(
        v3.nupkg("Other.Tool", "2.0.0") == tool_bytes,
        "tool's bytes"
    );
    let manifest = v3.nuspec("Demo.Lib", "1.2.0-beta");
    assert!(
        manifest.contains("<version>1.2.0-Beta</version>"),
        "{manifest}"
    );

    let leaves = v3.registration("Demo.Lib");
    assert_eq!(leaves.len(), 2, "{leaves:?}");
    let leaf = leaf_of(&leaves, "1.0.0");
    let entry = &leaf["catalogEntry"];
    assert_eq!(entry["id"], "Demo.Lib");
    assert_eq!(entry["authors"], "The Test");
    assert_eq!(entry["description"], "the demo library");
    let mut found = groups(entry);
    found.sort();
    assert_eq!(
        found,
        [
            (
                String::new(),
                vec![("Other.Lib".into(), "[2.0.0, )".into())]
            ),
            (
                ".NETFramework4.5".into(),
                vec![("Newtonsoft.Json".into(), "[13.0.1, 14.0)".into())]
            ),
        ]
    );
    // The package content and the leaf, by the URLs the registration gives.
    let content = leaf["packageContent"].as_str().expect("packageContent");
    assert!(v3.bytes(content) == stable_bytes, "packageContent's bytes");
    let single = v3.json(leaf["@id"].as_str().expect("leaf @id"));
    assert_eq!(single["catalogEntry"]["id"], "Demo.Lib");
    assert_eq!(single["catalogEntry"]["version"], "1.0.0");
    assert_eq!(groups(&single["catalogEntry"]).len(), 2);
    assert_eq!(single["packageContent"], content);

    // Search: stable versions unless asked, q over ids and descriptions, skip and take.
    let hits = v3.search("q=demo");
    assert_eq!(hits["totalHits"], 1, "{hits}");
    assert_eq!(hits["data"][0]["id"], "Demo.Lib");
    assert_eq!(hits["data"][0]["version"], "1.0.0");
    assert_eq!(
        hits["data"][0]["versions"].as_array().map(Vec::len),
        Some(1)
    );
    let hits = v3.search("q=DEMO&prerelease=true");
    assert_eq!(hits["data"][0]["version"], "1.2.0-Beta", "{hits}");
    let versions = hits["data"][0]["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 2);
    let by_link = v3.json(versions[1]["@id"].as_str().expect("version @id"));
    assert_eq!(by_link["catalogEntry"]["version"], "1.2.0-Beta");
    let hits = v3.search("q=command-line");
    assert_eq!(hits["totalHits"], 1, "{hits}");
    assert_eq!(hits["data"][0]["id"], "Other.Tool");
    let page = v3.search("q=&skip=1&take=1&prerelease=true");
    assert_eq!(page["totalHits"], 2, "{page}");
    assert_eq!(page["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["data"][0]["id"], "Other.Tool");
    assert_eq!(v3.search("q=nothing-like-it")["totalHits"], 0);

    // The group's index with the group's token: reads only, over the projects below.
    let group = V3::discover(
        &format!(
            "{}/api/v4/groups/acme/-/packages/nuget/index.json",
            server.url
        ),
        auth_of(&group_read),
    );
    assert!(!group.has("PackagePublish/2.0.0"), "{:?}", group.resources);
    assert!(group
        .resource("SearchQueryService")
        .contains("/groups/acme/-/"));
    assert_eq!(group.versions("Demo.Lib"), ["1.0.0", "1.2.0-beta"]);
    assert!(
        group.nupkg("Demo.Lib", "1.0.0") == stable_bytes,
        "group bytes"
    );
    let leaves = group.registration("Demo.Lib");
    let leaf = leaf_of(&leaves, "1.0.0");
    assert_eq!(groups(&leaf["catalogEntry"]).len(), 2);
    let content = leaf["packageContent"].as_str().expect("packageContent");
    assert!(content.contains("/groups/acme/-/"), "{content}");
    assert!(group.bytes(content) == stable_bytes, "group packageContent");
    let hits = group.search("q=demo&prerelease=true");
    assert_eq!(hits["totalHits"], 1, "{hits}");

    // `nuget delete`, audited; the version is gone from every list.
    ok(
        &keyed.run(
            &dir,
            &[
                "delete",
                "Other.Tool",
                "2.0.0",
                "-Source",
                &source,
                "-ApiKey",
                &rw.secret,
            ],
        ),
        "nuget delete",
    );
    let base = v3.resource("PackageBaseAddress/3.0.0");
    assert_eq!(
        get(
            &format!("{base}/other.tool/index.json"),
            Some(&auth_of(&ro))
        )
        .status,
        404
    );
    assert_eq!(v3.search("q=&prerelease=true")["totalHits"], 1);
    let audit = env.cli_ok(&["audit", "--json"]);
    assert!(
        audit.contains("package_deleted") && audit.contains("name=Other.Tool"),
        "{audit}"
    );
}

/// A `.nupkg` made here (stored entries): the manifest and one content file.
fn nupkg(id: &str, version: &str) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file(format!("{id}.nuspec"), options)
            .expect("start");
        zip.write_all(nuspec(id, version, "made by hand", "").as_bytes())
            .expect("write");
        zip.start_file("content/readme.txt", options)
            .expect("start");
        zip.write_all(b"hello").expect("write");
        zip.finish().expect("finish");
    }
    out.into_inner()
}

/// A push as nuget sends it: `multipart/form-data`, the package as part `package`.
fn push(url: &str, headers: &[(&str, &str)], part: &str, package: &[u8]) -> Answer {
    let boundary = "----wvs-nuget-test-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"package\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(package);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut req = agent().put(url).set(
        "Content-Type",
        &format!("multipart/form-data; boundary={boundary}"),
    );
    for (name, value) in headers {
        req = req.set(name, value);
    }
    answer(req.send_bytes(&body))
}

fn challenged(a: &Answer) {
    assert_eq!(a.status, 401, "{a:?}");
    assert!(
        a.header("www-authenticate")
            .is_some_and(|c| c.starts_with("Basic realm=")),
        "{a:?}"
    );
}

#[test]
fn nuget_routes_answer_with_the_package_rules() {
    let env = Env::new();
    for args in [
        &["group", "create", "acme"][..],
        &["project", "create", "acme/app"],
        &["project", "create", "acme/pub", "--visibility", "public"],
    ] {
        env.cli_ok(args);
    }
    let rw = env.token(
        &["--project", "acme/app"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let ro = env.token(&["--project", "acme/app"], "read_package_registry", &[]);
    let pub_rw = env.token(
        &["--project", "acme/pub"],
        "read_package_registry,write_package_registry",
        &[],
    );
    let server = env.serve(&[]);
    let base = format!("{}/api/v4/projects/acme%2Fapp/packages/nuget", server.url);
    let key = |t: &Token| ("X-NuGet-ApiKey", t.secret.clone());
    let package = nupkg("Hand.Made", "1.0");

    // The service index answers without credentials (it is made from the URL alone), but
    // not with wrong ones; its URLs keep the prefix the client used.
    let anon = get(&format!("{base}/index.json"), None);
    assert_eq!(anon.status, 200, "{anon:?}");
    assert!(
        anon.body.contains(&format!("{base}/download")),
        "{}",
        anon.body
    );
    challenged(&get(
        &format!("{base}/index.json"),
        Some(&basic(&rw.username, "wvsdt-not-a-real-token-0000000000")),
    ));
    let by_id = get(
        &format!("{}/api/v4/projects/1/packages/nuget/index.json", server.url),
        None,
    );
    assert!(by_id
        .body
        .contains("/api/v4/projects/1/packages/nuget/query"));

    // Pushes: no credentials, a wrong username and a wrong key are challenged; a
    // read-only token is forbidden; an unknown project is not found.
    let url = format!("{base}/");
    challenged(&push(&url, &[], "package", &package));
    challenged(&push(
        &url,
        &[("Authorization", &basic("not-the-token-user", &rw.secret))],
        "package",
        &package,
    ));
    challenged(&push(
        &url,
        &[("X-NuGet-ApiKey", "wvsdt-not-a-real-token-0000000000")],
        "package",
        &package,
    ));
    let (name, value) = key(&ro);
    assert_eq!(
        push(&url, &[(name, &value)], "package", &package).status,
        403
    );
    let (name, value) = key(&rw);
    let rw_key = [(name, value.as_str())];
    let missing = push(
        &format!("{}/api/v4/projects/acme%2Fnope/packages/nuget", server.url),
        &rw_key,
        "package",
        &package,
    );
    assert_eq!(missing.status, 404, "{missing:?}");

    // Broken packages are 400 with a message, and leave nothing behind.
    let blobs = env.data_dir().join("packages/blobs");
    let mut truncated = package.clone();
    truncated.truncate(package.len() / 2);
    let no_manifest = {
        let mut out = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        zip.start_file("lib/a.dll", zip::write::SimpleFileOptions::default())
            .expect("start");
        zip.write_all(b"x").expect("write");
        zip.finish().expect("finish");
        out.into_inner()
    };
    for (what, body, part) in [
        ("not a zip", &b"definitely not a zip"[..], "package"),
        ("truncated", &truncated[..], "package"),
        ("no manifest", &no_manifest[..], "package"),
        ("wrong part", &package[..], "file"),
    ] {
        let a = push(&url, &rw_key, part, body);
        assert_eq!(a.status, 400, "{what}: {a:?}");
        assert!(a.json()["message"].is_string(), "{what}: {a:?}");
    }
    assert!(files_below(&blobs).is_empty(), "a refused push kept a blob");
    // A push of a thousand empty parts is cut off at the part bound (the push right after
    // goes through).
    let boundary = "----wvs-many-parts";
    let mut many = Vec::new();
    for _ in 0..1000 {
        many.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n\r\n")
                .as_bytes(),
        );
    }
    many.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let mut req = agent().put(&url).set(
        "Content-Type",
        &format!("multipart/form-data; boundary={boundary}"),
    );
    for (name, value) in &rw_key {
        req = req.set(name, value);
    }
    let cut = answer(req.send_bytes(&many));
    assert_eq!(cut.status, 400, "{cut:?}");
    assert!(cut.body.contains("parts"), "{cut:?}");

    // A push by the project path and by `/v2`; the same version again is 409.
    let pushed = push(&base, &rw_key, "package", &package);
    assert_eq!(pushed.status, 201, "{pushed:?}");
    let twice = push(&format!("{base}/v2"), &rw_key, "package", &package);
    assert_eq!(twice.status, 409, "{twice:?}");
    let again = push(&url, &rw_key, "package", &nupkg("hand.made", "1.0.0.0"));
    assert_eq!(
        again.status, 409,
        "the same id and version spelled otherwise: {again:?}"
    );

    // Reads: challenged without or with wrong credentials (a token under a wrong Basic
    // username too), 404 for an unknown package or project, 400 for a bad id.
    let versions = format!("{base}/download/hand.made/index.json");
    challenged(&get(&versions, None));
    challenged(&get(
        &versions,
        Some(&basic("not-the-token-user", &ro.secret)),
    ));
    let reader = auth_of(&ro);
    let a = get(&versions, Some(&reader));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["versions"], serde_json::json!(["1.0.0"]));
    assert_eq!(
        get(&versions, Some(&format!("Bearer {}", ro.secret))).status,
        200
    );
    let deploy = answer(
        agent()
            .get(&versions)
            .set("Deploy-Token", &ro.secret)
            .call(),
    );
    assert_eq!(deploy.status, 200, "{deploy:?}");
    assert_eq!(
        get(
            &format!("{base}/download/no.such/index.json"),
            Some(&reader)
        )
        .status,
        404
    );
    assert_eq!(
        get(
            &format!(
                "{}/api/v4/projects/acme%2Fnope/packages/nuget/download/hand.made/index.json",
                server.url
            ),
            Some(&reader)
        )
        .status,
        404
    );
    let bad_id = get(
        &format!("{base}/download/bad%20id/index.json"),
        Some(&reader),
    );
    assert_eq!(bad_id.status, 400, "{bad_id:?}");
    // Downloads answer directly, never through a redirect.
    let (status, bytes) = get_bytes(
        &format!("{base}/download/hand.made/1.0.0/hand.made.1.0.0.nupkg"),
        Some(&reader),
    );
    assert_eq!(status, 200);
    assert!(bytes == package, "the pushed bytes");
    let head = answer(
        agent()
            .head(&format!(
                "{base}/download/hand.made/1.0.0/hand.made.1.0.0.nupkg"
            ))
            .set("Authorization", &reader)
            .call(),
    );
    assert_eq!(head.status, 200, "{head:?}");
    assert_eq!(
        head.header("content-length"),
        Some(package.len().to_string().as_str())
    );
    assert!(head.body.is_empty());

    // A public project reads anonymously, and still refuses anonymous pushes.
    let public = format!("{}/api/v4/projects/acme%2Fpub/packages/nuget", server.url);
    challenged(&push(&public, &[], "package", &package));
    let pub_key = ("X-NuGet-ApiKey", pub_rw.secret.as_str());
    let pub_package = nupkg("Pub.Made", "1.0");
    assert_eq!(
        push(&public, &[pub_key], "package", &pub_package).status,
        201
    );
    let listed = get(&format!("{public}/download/pub.made/index.json"), None);
    assert_eq!(listed.status, 200, "{listed:?}");
    assert!(listed.body.contains("\"1.0.0\""), "{}", listed.body);

    // Groups have no push route.
    let group_push = push(
        &format!("{}/api/v4/groups/acme/-/packages/nuget", server.url),
        &rw_key,
        "package",
        &package,
    );
    assert_eq!(group_push.status, 404, "{group_push:?}");

    // Delete: read-only 403, the writer 204, then 404.
    let version_url = format!("{base}/Hand.Made/1.0.0");
    let delete = |t: &Token| {
        answer(
            agent()
                .delete(&version_url)
                .set("X-NuGet-ApiKey", &t.secret)
                .call(),
        )
    };
    assert_eq!(delete(&ro).status, 403);
    assert_eq!(delete(&rw).status, 204);
    assert_eq!(delete(&rw).status, 404);
    assert_eq!(get(&versions, Some(&reader)).status, 404);
    assert_eq!(
        files_below(&blobs).len(),
        1,
        "the deleted version's blob is gone, the public project's stays"
    );
}
