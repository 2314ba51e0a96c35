//! A Cargo registry per project (SPEC §6; the Cargo reference's "Registry index", "Registry
//! web API" and "Registry authentication"), at `P/packages/cargo`:
//!
//! - `index/config.json` names `dl` and `api`; `auth-required` unless the project is
//!   public, so Cargo sends its token on every index fetch and download.
//! - `index/<name-length path>`: one JSON line per version, oldest first, with an ETag of
//!   the answer so Cargo's revalidation gets a 304.
//! - `api/v1/crates/new` (`cargo publish`), `…/:name/:version/yank` and `/unyank`,
//!   `…/:name/:version/download`.
//!
//! Cargo sends the configured token raw in `Authorization` (policy `CARGO`). Errors are in
//! Cargo's `{"errors":[{"detail":…}]}` shape, which it prints; on the web API an invalid
//! or missing token is 403, as the reference asks, elsewhere 401 with a challenge.

use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{authenticate_with, base_url, prefix_of, project, stream_file, PackageError};
use crate::app::AppState;
use crate::auth::Policy;
use crate::domain::namespace::{Project, Visibility};
use crate::domain::package::{
    cargo_normalize, crate_of_index_path, validate_crate_name, Package, PackageFile, PackageFormat,
    PackageOperation,
};
use crate::domain::principal::Principal;
use crate::domain::store::{PublishMode, Store, StoreError};
use crate::manage::packages::Upload;
use crate::request::body::{read_bounded, BodyError};
use crate::request::error::BASIC_CHALLENGE;
use crate::store::blobs;
use crate::store::memo::{Content, MemoKey, Rendered};

const FORMAT: PackageFormat = PackageFormat::Cargo;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v4/projects/{id}/packages/cargo")
            .route("/index/config.json", web::get().to(config))
            .route("/index/{path:.+}", web::get().to(index_file))
            .route("/api/v1/crates/new", web::put().to(publish))
            .route(
                "/api/v1/crates/{name}/{version}/download",
                web::get().to(download),
            )
            .route(
                "/api/v1/crates/{name}/{version}/yank",
                web::delete().to(yank),
            )
            .route(
                "/api/v1/crates/{name}/{version}/unyank",
                web::put().to(unyank),
            )
            .default_service(web::to(not_found)),
    );
}

/// A refusal in Cargo's shape. `web_api` marks the publish and yank endpoints, where the
/// reference wants 403 for a token that is missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("{inner}")]
pub struct CargoError {
    inner: PackageError,
    web_api: bool,
}

impl CargoError {
    fn index(inner: PackageError) -> Self {
        Self {
            inner,
            web_api: false,
        }
    }

    fn api(inner: PackageError) -> Self {
        Self {
            inner,
            web_api: true,
        }
    }
}

impl ResponseError for CargoError {
    fn status_code(&self) -> StatusCode {
        match self.inner {
            PackageError::Unauthorized if self.web_api => StatusCode::FORBIDDEN,
            ref other => other.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        match self.inner {
            PackageError::Unauthorized if !self.web_api => {
                res.insert_header((header::WWW_AUTHENTICATE, BASIC_CHALLENGE));
            }
            PackageError::Throttled(secs) => {
                res.insert_header((header::RETRY_AFTER, secs.to_string()));
            }
            _ => {}
        }
        let detail = match &self.inner {
            PackageError::Unauthorized if self.web_api => {
                "a valid token with write_package_registry is required".to_string()
            }
            other => other.to_string(),
        };
        res.json(json!({ "errors": [{ "detail": detail }] }))
    }
}

async fn not_found() -> Result<HttpResponse, CargoError> {
    Err(CargoError::index(PackageError::NotFound("Route")))
}

/// The caller, by Cargo's policy, and the project it may do `op` with; `shape` picks the
/// index's or the web API's refusals. Authentication comes first, so a caller without
/// credentials learns nothing about the project.
async fn caller_and_project(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    op: PackageOperation,
    shape: fn(PackageError) -> CargoError,
) -> Result<(Principal, Project), CargoError> {
    let principal = authenticate_with(req, state, &Policy::CARGO)
        .await
        .map_err(shape)?;
    let project = project(req, state, &principal, op).await.map_err(shape)?;
    Ok((principal, project))
}

/// The index's `config.json`. Links keep the prefix the client used (`{id}` as a number or
/// a path), so the token Cargo holds for this index reaches the downloads too.
async fn config(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, CargoError> {
    let (_, project) =
        caller_and_project(&req, &state, PackageOperation::Read, CargoError::index).await?;
    let prefix = prefix_of(&req, "/packages/cargo").unwrap_or_default();
    let api = format!("{}{prefix}", base_url(&req, &state));
    Ok(HttpResponse::Ok().json(json!({
        "dl": format!("{api}/api/v1/crates"),
        "api": api,
        "auth-required": project.visibility != Visibility::Public,
    })))
}

/// One crate's index file: every version's line, oldest first.
async fn index_file(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CargoError> {
    let (_, index_path) = path.into_inner();
    let name = crate_of_index_path(&index_path)
        .ok_or(CargoError::index(PackageError::NotFound("Crate")))?
        .to_ascii_lowercase();
    let (_, project) =
        caller_and_project(&req, &state, PackageOperation::Read, CargoError::index).await?;
    // Rendered once per database version: a crate with 10^3 versions then costs about
    // what one with 10 does, on the revalidations Cargo sends most of all.
    let key = MemoKey {
        format: FORMAT,
        projects: vec![project.id],
        name: name.clone(),
    };
    let rendered = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<_, PackageError> {
            Ok(s.memo.rendered(key, &mut || {
                render_index_file(s.store.as_ref(), project.id, &name)
            })?)
        })
        .await
        .map_err(CargoError::index)?
        .ok_or(CargoError::index(PackageError::NotFound("Crate")))?;
    let etag = &rendered.etag;
    let revalidated = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    if revalidated {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag.clone()))
            .finish());
    }
    match &rendered.content {
        Content::Body(body) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .insert_header((header::ETAG, etag.clone()))
            .body(body.clone())),
        Content::Stored(file) => stream_file(&state, file, "text/plain; charset=utf-8")
            .await
            .map_err(CargoError::index),
    }
}

/// The index file of crate `name` (lower-cased as Cargo asks for it) in `project`: one
/// stored line per version, oldest first; `None` for a crate it does not hold.
fn render_index_file(
    store: &dyn Store,
    project: i64,
    name: &str,
) -> Result<Option<Rendered>, StoreError> {
    let mut body = String::new();
    for (p, _) in store.versions_of(&[project], FORMAT, &cargo_normalize(name))? {
        // `foo_bar` is not served at `foo-bar`'s path: Cargo asks for the name as written
        // and suggests the other spelling itself.
        if p.name.to_ascii_lowercase() != name {
            continue;
        }
        match p.metadata.as_deref() {
            Some(line) => {
                body.push_str(line);
                body.push('\n');
            }
            None => log::error!("crate {} {} has no index line", p.name, p.version),
        }
    }
    if body.is_empty() {
        return Ok(None);
    }
    let etag = format!("\"{}\"", blobs::hex(&Sha256::digest(body.as_bytes())));
    Ok(Some(Rendered::body(body.into(), etag)))
}

/// What `cargo publish` sends before the `.crate` (the reference's "Publish" section);
/// fields not read here are ignored.
#[derive(Debug, Deserialize)]
struct PublishMeta {
    name: String,
    vers: String,
    #[serde(default)]
    deps: Vec<PublishDep>,
    #[serde(default)]
    features: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    links: Option<String>,
    #[serde(default)]
    rust_version: Option<String>,
}

#[derive(Debug, Deserialize)]
struct PublishDep {
    name: String,
    version_req: String,
    #[serde(default)]
    features: Vec<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default = "yes")]
    default_features: bool,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    explicit_name_in_toml: Option<String>,
}

fn yes() -> bool {
    true
}

/// One line of an index file (the reference's "Index files"), kept as the version's
/// metadata so a read joins stored lines and a yank flips one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexLine {
    pub name: String,
    pub vers: String,
    pub deps: Vec<IndexDep>,
    pub cksum: String,
    pub features: BTreeMap<String, Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features2: Option<BTreeMap<String, Vec<String>>>,
    pub yanked: bool,
    #[serde(default)]
    pub links: Option<String>,
    pub v: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rust_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDep {
    pub name: String,
    pub req: String,
    pub features: Vec<String>,
    pub optional: bool,
    pub default_features: bool,
    pub target: Option<String>,
    pub kind: String,
    pub registry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<String>,
}

/// Why a publish body is refused; each is a 400 that Cargo prints.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("the publish body is truncated")]
    Truncated,
    #[error("the publish body has {0} bytes after the crate")]
    Trailing(usize),
    #[error("invalid publish metadata: {0}")]
    Metadata(String),
    #[error("invalid crate name {0:?}")]
    Name(String),
    #[error("invalid version {0:?}: it must be semver")]
    Version(String),
}

/// Splits `cargo publish`'s body: u32 LE length, the metadata JSON, u32 LE length, the
/// `.crate`, nothing after.
pub fn split_publish(body: &[u8]) -> Result<(&[u8], &[u8]), PublishError> {
    fn take(b: &[u8]) -> Result<(&[u8], &[u8]), PublishError> {
        let (len, rest) = b.split_first_chunk::<4>().ok_or(PublishError::Truncated)?;
        let len = usize::try_from(u32::from_le_bytes(*len)).map_err(|_| PublishError::Truncated)?;
        if rest.len() < len {
            return Err(PublishError::Truncated);
        }
        Ok(rest.split_at(len))
    }
    let (meta, rest) = take(body)?;
    let (krate, rest) = take(rest)?;
    if !rest.is_empty() {
        return Err(PublishError::Trailing(rest.len()));
    }
    Ok((meta, krate))
}

/// The index line for a publish's metadata, once its names and version are checked.
/// Features using `dep:` or `?/` go to `features2` with `v: 2`, as crates.io writes them,
/// so older Cargo versions skip what they cannot read.
pub fn index_line(meta_json: &[u8], cksum: &str) -> Result<IndexLine, PublishError> {
    let meta: PublishMeta =
        serde_json::from_slice(meta_json).map_err(|e| PublishError::Metadata(e.to_string()))?;
    validate_crate_name(&meta.name).map_err(|_| PublishError::Name(meta.name.clone()))?;
    let vers = semver::Version::parse(&meta.vers)
        .map_err(|_| PublishError::Version(meta.vers.clone()))?
        .to_string();
    let mut deps = Vec::with_capacity(meta.deps.len());
    for d in meta.deps {
        validate_crate_name(&d.name).map_err(|_| PublishError::Name(d.name.clone()))?;
        semver::VersionReq::parse(&d.version_req).map_err(|_| {
            PublishError::Metadata(format!("dependency {} has an invalid requirement", d.name))
        })?;
        let (name, package) = match d.explicit_name_in_toml {
            Some(alias) => {
                validate_crate_name(&alias).map_err(|_| PublishError::Name(alias.clone()))?;
                (alias, Some(d.name))
            }
            None => (d.name, None),
        };
        deps.push(IndexDep {
            name,
            req: d.version_req,
            features: d.features,
            optional: d.optional,
            default_features: d.default_features,
            target: d.target,
            kind: d.kind.unwrap_or_else(|| "normal".into()),
            registry: d.registry,
            package,
        });
    }
    let (new_style, features): (BTreeMap<_, _>, BTreeMap<_, _>) =
        meta.features.into_iter().partition(|(_, values)| {
            values
                .iter()
                .any(|v| v.starts_with("dep:") || v.contains("?/"))
        });
    let v = if new_style.is_empty() { 1 } else { 2 };
    Ok(IndexLine {
        name: meta.name,
        vers,
        deps,
        cksum: cksum.to_string(),
        features,
        features2: (!new_style.is_empty()).then_some(new_style),
        yanked: false,
        links: meta.links,
        v,
        rust_version: meta.rust_version,
    })
}

/// The stored file of a version: by normalized name, so every spelling finds it.
fn crate_file(normalized: &str, version: &str) -> String {
    format!("{normalized}-{version}.crate")
}

fn bad(message: impl Into<String>) -> CargoError {
    CargoError::api(PackageError::BadRequest(message.into()))
}

/// `PUT api/v1/crates/new`: `cargo publish`. A version published once is never replaced
/// (Cargo's rule: yank instead), and a name differing from an existing crate's only in case
/// or `-`/`_` is refused, as crates.io does.
async fn publish(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CargoError> {
    let (principal, project) =
        caller_and_project(&req, &state, PackageOperation::Publish, CargoError::api).await?;
    let limit = state.realms.max_package_size.saturating_add(1 << 20);
    let body = read_bounded(payload, usize::try_from(limit).unwrap_or(usize::MAX))
        .await
        .map_err(|e| match e {
            BodyError::TooLarge(_) => CargoError::api(PackageError::TooLarge(e.to_string())),
            BodyError::Unreadable => bad(e.to_string()),
        })?;
    let (meta, krate) = split_publish(&body).map_err(|e| bad(e.to_string()))?;
    let staged = blobs::receive_bytes(state.blobs.as_ref(), krate, state.realms.max_package_size)
        .map_err(|e| CargoError::api(e.into()))?;
    let line = index_line(meta, &staged.digests.sha256).map_err(|e| bad(e.to_string()))?;
    drop(body);

    let normalized = cargo_normalize(&line.name);
    let (project_id, wanted, vers) = (project.id, line.name.clone(), line.vers.clone());
    let clash = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<Option<Clash>, PackageError> {
            Ok(s.store
                .versions_of(&[project_id], FORMAT, &cargo_normalize(&wanted))?
                .into_iter()
                .find_map(|(p, _)| clash_with(&wanted, &vers, &p.name, &p.version)))
        })
        .await
        .map_err(CargoError::api)?;
    match clash {
        Some(Clash::Spelling(existing)) => {
            return Err(CargoError::api(PackageError::Conflict(format!(
                "crate name `{}` is taken by `{existing}` in this registry",
                line.name
            ))))
        }
        Some(Clash::BuildMetadata(existing)) => {
            return Err(CargoError::api(PackageError::Conflict(format!(
                "crate version `{}@{}` is already uploaded as `{existing}`: versions differing \
                 only in build metadata are one version",
                line.name, line.vers
            ))))
        }
        None => {}
    }
    let metadata = serde_json::to_string(&line).map_err(|e| bad(e.to_string()))?;
    let conflict = format!(
        "crate version `{}@{}` is already uploaded",
        line.name, line.vers
    );
    let upload = Upload {
        format: FORMAT,
        name: line.name.clone(),
        version: line.vers.clone(),
        file_name: crate_file(&normalized, &line.vers),
        metadata: Some(metadata),
        tags: Vec::new(),
    };
    super::publish(
        &state,
        principal,
        project,
        staged,
        upload,
        PublishMode::NewVersion,
        move || PackageError::Conflict(conflict),
    )
    .await
    .map_err(CargoError::api)?;
    Ok(HttpResponse::Ok().json(json!({
        "warnings": { "invalid_categories": [], "invalid_badges": [], "other": [] }
    })))
}

/// Why a publish is refused before it reaches the store's own uniqueness rule.
#[derive(Debug, PartialEq, Eq)]
enum Clash {
    /// The crate exists under another spelling (case, `-` against `_`).
    Spelling(String),
    /// The version exists with other build metadata (`1.0.0+a` against `1.0.0`).
    BuildMetadata(String),
}

/// Whether publishing `name@vers` clashes with the stored `existing@existing_vers` of the
/// same normalised crate, as crates.io rules: one spelling per crate, and build metadata
/// does not make a new version (Cargo's resolver ignores it). An identical version is left
/// to the store, which refuses it as a duplicate.
fn clash_with(name: &str, vers: &str, existing: &str, existing_vers: &str) -> Option<Clash> {
    if existing != name {
        return Some(Clash::Spelling(existing.to_string()));
    }
    let release = |v: &str| v.split('+').next().unwrap_or(v).to_string();
    (existing_vers != vers && release(existing_vers) == release(vers))
        .then(|| Clash::BuildMetadata(existing_vers.to_string()))
}

/// The version a web API or download path names, in a project `principal` may `op`.
async fn version_of(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    principal: &Principal,
    op: PackageOperation,
    name: &str,
    version: &str,
) -> Result<(Project, Package, PackageFile), PackageError> {
    validate_crate_name(name).map_err(|e| PackageError::BadRequest(e.to_string()))?;
    let project = project(req, state, principal, op).await?;
    let normalized = cargo_normalize(name);
    let version = version.to_string();
    let project_id = project.id;
    let found = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<_, PackageError> {
            Ok(s.store.version_file(
                project_id,
                FORMAT,
                &normalized,
                &version,
                &crate_file(&normalized, &version),
            )?)
        })
        .await?;
    let (package, file) = found.ok_or(PackageError::NotFound("Crate version"))?;
    Ok((project, package, file))
}

async fn download(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CargoError> {
    let (_, name, version) = path.into_inner();
    let principal = authenticate_with(&req, &state, &Policy::CARGO)
        .await
        .map_err(CargoError::index)?;
    let (_, _, file) = version_of(
        &req,
        &state,
        &principal,
        PackageOperation::Read,
        &name,
        &version,
    )
    .await
    .map_err(CargoError::index)?;
    stream_file(&state, &file, "application/x-tar")
        .await
        .map_err(CargoError::index)
}

async fn yank(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CargoError> {
    set_yanked(req, path, state, true).await
}

async fn unyank(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CargoError> {
    set_yanked(req, path, state, false).await
}

/// `cargo yank` and `cargo yank --undo`: the version stays downloadable (lock files keep
/// working); only new resolutions skip it.
async fn set_yanked(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
    yanked: bool,
) -> Result<HttpResponse, CargoError> {
    let (_, name, version) = path.into_inner();
    let principal = authenticate_with(&req, &state, &Policy::CARGO)
        .await
        .map_err(CargoError::api)?;
    let (project, package, _) = version_of(
        &req,
        &state,
        &principal,
        PackageOperation::Publish,
        &name,
        &version,
    )
    .await
    .map_err(CargoError::api)?;
    let mut line: IndexLine = package
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .ok_or_else(|| {
            log::error!(
                "crate {} {} has no readable index line",
                package.name,
                package.version
            );
            CargoError::api(PackageError::Unavailable)
        })?;
    if line.yanked != yanked {
        line.yanked = yanked;
        let metadata = serde_json::to_string(&line).map_err(|e| bad(e.to_string()))?;
        state
            .clone()
            .into_inner()
            .on_pool(move |s| {
                s.manage
                    .packages
                    .update_metadata(
                        &principal,
                        &project,
                        &package,
                        &metadata,
                        &format!("yanked={yanked}"),
                    )
                    .map_err(super::error::manage_error)
            })
            .await
            .map_err(CargoError::api)?;
    }
    Ok(HttpResponse::Ok().json(json!({ "ok": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(meta: &[u8], krate: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&(meta.len() as u32).to_le_bytes());
        b.extend_from_slice(meta);
        b.extend_from_slice(&(krate.len() as u32).to_le_bytes());
        b.extend_from_slice(krate);
        b
    }

    #[test]
    fn publish_bodies_split_and_refuse_truncation_and_trailing_bytes() {
        let body = frame(b"{}", b"crate");
        assert_eq!(split_publish(&body), Ok((&b"{}"[..], &b"crate"[..])));
        assert_eq!(
            split_publish(&body[..body.len() - 1]),
            Err(PublishError::Truncated)
        );
        assert_eq!(split_publish(&[1, 0]), Err(PublishError::Truncated));
        assert_eq!(
            split_publish(&[0xff, 0xff, 0xff, 0xff, 1]),
            Err(PublishError::Truncated)
        );
        let mut long = body.clone();
        long.push(0);
        assert_eq!(split_publish(&long), Err(PublishError::Trailing(1)));
    }

    #[test]
    fn one_spelling_per_crate_and_build_metadata_is_not_a_version() {
        assert_eq!(
            clash_with("foo_bar", "1.0.0", "Foo-bar", "0.1.0"),
            Some(Clash::Spelling("Foo-bar".into()))
        );
        assert_eq!(
            clash_with("foo", "1.0.0+b2", "foo", "1.0.0+b1"),
            Some(Clash::BuildMetadata("1.0.0+b1".into()))
        );
        assert_eq!(
            clash_with("foo", "1.0.0", "foo", "1.0.0+b1"),
            Some(Clash::BuildMetadata("1.0.0+b1".into()))
        );
        assert_eq!(clash_with("foo", "1.0.0", "foo", "1.0.0"), None);
        assert_eq!(clash_with("foo", "1.0.1", "foo", "1.0.0"), None);
        assert_eq!(clash_with("foo", "1.0.0-rc.1", "foo", "1.0.0"), None);
    }

    #[test]
    fn index_lines_follow_the_reference() {
        let meta = br#"{"name":"Demo_Crate","vers":"1.2.3","deps":[
            {"name":"serde","version_req":"^1","features":["derive"],"optional":true,
             "default_features":false,"target":null,"kind":"normal","registry":null},
            {"name":"real-name","version_req":"=0.1","explicit_name_in_toml":"alias",
             "kind":"dev"}],
            "features":{"default":["std"],"std":[],"json":["dep:serde"]},"links":null}"#;
        let line = index_line(meta, "abc").expect("valid");
        assert_eq!(line.name, "Demo_Crate");
        assert_eq!(line.cksum, "abc");
        assert_eq!(line.v, 2);
        assert_eq!(line.features.keys().collect::<Vec<_>>(), ["default", "std"]);
        assert_eq!(
            line.features2.as_ref().map(|f| f.contains_key("json")),
            Some(true)
        );
        assert_eq!(line.deps[0].req, "^1");
        assert!(line.deps[0].optional && !line.deps[0].default_features);
        assert_eq!(line.deps[1].name, "alias");
        assert_eq!(line.deps[1].package.as_deref(), Some("real-name"));
        assert_eq!(line.deps[1].kind, "dev");
        let text = serde_json::to_string(&line).expect("serialises");
        assert_eq!(serde_json::from_str::<IndexLine>(&text).ok(), Some(line));
    }

    #[test]
    fn index_lines_refuse_bad_names_versions_and_json() {
        let of = |m: &str| index_line(m.as_bytes(), "x").err();
        assert!(matches!(
            of(r#"{"name":"a b","vers":"1.0.0"}"#),
            Some(PublishError::Name(_))
        ));
        assert!(matches!(
            of(r#"{"name":"ok","vers":"1.0"}"#),
            Some(PublishError::Version(_))
        ));
        assert!(matches!(of("not json"), Some(PublishError::Metadata(_))));
        assert!(matches!(
            of(r#"{"name":"ok","vers":"1.0.0","deps":[{"name":"x","version_req":"??"}]}"#),
            Some(PublishError::Metadata(_))
        ));
        assert!(of(r#"{"name":"ok","vers":"1.0.0-rc.1+b"}"#).is_none());
    }
}
