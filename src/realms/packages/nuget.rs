//! A NuGet registry per project, readable per group too (SPEC §6, PACKAGE-NOTES §1, §2),
//! at GitLab's paths under `P|G/packages/nuget`, speaking Microsoft's NuGet server API v3:
//!
//! - `index.json`: the service index. It names `PackagePublish/2.0.0` (project only),
//!   `PackageBaseAddress/3.0.0` (`download`), `RegistrationsBaseUrl` (`metadata`, also
//!   `/3.0.0-beta` and `/3.0.0-rc`) and `SearchQueryService` (`query`, likewise), each URL
//!   under the prefix the client used, so the credentials it holds for the index reach
//!   them all.
//! - `download/{lower-id}/index.json` (`{"versions":[…]}`), `…/{v}/{id}.{v}.nupkg` and
//!   `…/{v}/{id}.nuspec`: the flat container, by lower-cased id and normalised lower-cased version.
//!   Files are served directly, never through a redirect (clients do not follow one).
//! - `metadata/{lower-id}/index.json` and `…/{v}.json`: the registration index (one
//!   inlined page) and leaves, whose `catalogEntry` carries what the `.nuspec` says.
//! - `query?q=&skip=&take=&prerelease=`: search.
//! - `PUT P/packages/nuget` (also with a trailing slash, and `…/v2` for older clients):
//!   push, `multipart/form-data` with the `.nupkg` as part `package`; 201, 409 for a
//!   version already there. `DELETE P/packages/nuget/{id}/{version}`: 204.
//!
//! Credentials: policy `NUGET` (`Deploy-Token`, `X-NuGet-ApiKey`, Bearer, Basic whose
//! username must be the token's). The service index answers without credentials, as
//! GitLab's does: it is made from the URL alone, without looking the project up, so it
//! tells nothing about it, and clients that send credentials only after a challenge (every
//! NuGet client) fetch it first. Presented credentials are still checked there, so a wrong
//! token gets the same 401 on every route. Everything else reads only with the rights of
//! the package rules (anonymous on public projects).

use std::io::{Read, Seek};

use actix_multipart::Multipart;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::manage_error;
use super::{
    authenticate_with, base_url, group_path, not_found, prefix_of, project, publish,
    readable_below, stream_file, PackageError,
};
use crate::app::AppState;
use crate::auth::Policy;
use crate::domain::namespace::Project;
use crate::domain::package::nuget::{
    lower_id, parse_nuspec, validate_id, NugetVersion, Nuspec, NuspecError,
};
use crate::domain::package::{Package, PackageFile, PackageFormat, PackageOperation};
use crate::domain::principal::Principal;
use crate::domain::store::PublishMode;
use crate::manage::packages::Upload;
use crate::store::blobs;

const FORMAT: PackageFormat = PackageFormat::Nuget;
/// The largest `.nuspec` read out of a package: real ones are a few KiB. The read stops
/// there whatever the zip claims, so a compressed bomb costs this much at most.
const NUSPEC_LIMIT: u64 = 1 << 20;
/// Bytes of multipart parts other than `package` a push may carry (none, from nuget).
const OTHER_PARTS_LIMIT: usize = 64 * 1024;
/// Parts a push may carry: clients send one; empty parts would otherwise cost nothing
/// against [`OTHER_PARTS_LIMIT`] and could go on for as long as the connection lasts.
const MAX_PARTS: usize = 16;
/// Search's page size without `take`, and its upper bound.
const DEFAULT_TAKE: usize = 20;
const MAX_TAKE: usize = 1000;

/// Which endpoint answers: a project's, or a group's (reads over its projects).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Project,
    Group,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v4/projects/{id}/packages/nuget")
            .app_data(Level::Project)
            .service(
                // `nuget push -Source P/packages/nuget` sends `PUT …/nuget/`; its first
                // `GET` of the source URL itself finds the 404 it expects.
                web::resource(["", "/", "/v2", "/v2/"])
                    .route(web::put().to(push))
                    .default_service(web::to(not_found)),
            )
            .configure(read_routes)
            .service(
                web::resource("/{name}/{version}")
                    .route(web::delete().to(delete))
                    .default_service(web::to(not_found)),
            )
            .default_service(web::to(not_found)),
    )
    .service(
        web::scope("/api/v4/groups/{id}/-/packages/nuget")
            .app_data(Level::Group)
            .configure(read_routes)
            .default_service(web::to(not_found)),
    );
}

/// The protocol has every read URL answer `HEAD` as well as `GET` (actix sends no body
/// for a `HEAD`).
fn read() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}

fn read_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/index.json", read().to(service_index))
        .route("/download/{name}/index.json", read().to(versions))
        .route("/download/{name}/{version}/{file}", read().to(download))
        .route("/metadata/{name}/index.json", read().to(registration))
        .route("/metadata/{name}/{leaf}", read().to(registration_leaf))
        .route("/query", read().to(search));
}

fn level(req: &HttpRequest) -> Level {
    req.app_data::<Level>().copied().unwrap_or(Level::Project)
}

fn bad(message: impl Into<String>) -> PackageError {
    PackageError::BadRequest(message.into())
}

fn segment<'a>(req: &'a HttpRequest, name: &str) -> &'a str {
    req.match_info().get(name).unwrap_or_default()
}

/// The lower-cased id of a path segment, refused (400) when it is no NuGet id.
fn id_of(req: &HttpRequest) -> Result<String, PackageError> {
    let id = segment(req, "name");
    validate_id(id).map_err(|e| bad(e.to_string()))?;
    Ok(lower_id(id))
}

fn version_of(text: &str) -> Result<NugetVersion, PackageError> {
    NugetVersion::parse(text).map_err(|e| bad(e.to_string()))
}

/// What a version keeps as metadata: the manifest as read, and its text, which the flat
/// container serves as the `.nuspec`.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    #[serde(flatten)]
    manifest: Nuspec,
    nuspec: String,
}

/// One version as the read endpoints use it.
struct Entry {
    package: Package,
    file: PackageFile,
    manifest: Nuspec,
    nuspec: String,
    version: NugetVersion,
}

impl Entry {
    fn of(package: Package, files: Vec<PackageFile>) -> Option<Self> {
        let stored: Option<Stored> = package
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok());
        let file = files.into_iter().find(|f| f.file_name.ends_with(".nupkg"));
        let (Some(stored), Some(file)) = (stored, file) else {
            log::error!(
                "nuget package {} {} has no readable manifest or file",
                package.name,
                package.version
            );
            return None;
        };
        let version = NugetVersion::parse(&stored.manifest.version).ok()?;
        Some(Self {
            package,
            file,
            manifest: stored.manifest,
            nuspec: stored.nuspec,
            version,
        })
    }
}

/// Every version of `lower` in `projects`, by NuGet's order; a version in two projects of
/// a group is served from the first.
fn entries_of(state: &AppState, projects: &[i64], lower: &str) -> Result<Vec<Entry>, PackageError> {
    let mut entries: Vec<Entry> = state
        .store
        .versions_of(projects, FORMAT, lower)?
        .into_iter()
        .filter_map(|(package, files)| Entry::of(package, files))
        .collect();
    entries.sort_by(|a, b| a.version.precedence(&b.version));
    entries.dedup_by(|b, a| a.version.key() == b.version.key());
    Ok(entries)
}

async fn load(
    state: &web::Data<AppState>,
    projects: Vec<i64>,
    lower: String,
) -> Result<Vec<Entry>, PackageError> {
    state
        .clone()
        .into_inner()
        .on_pool(move |s| entries_of(s, &projects, &lower))
        .await
}

/// The projects this request reads: the project, or every readable one below the group.
async fn readable(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<Vec<i64>, PackageError> {
    let principal = authenticate_with(req, state, &Policy::NUGET).await?;
    match level(req) {
        Level::Project => Ok(vec![
            project(req, state, &principal, PackageOperation::Read)
                .await?
                .id,
        ]),
        Level::Group => {
            let group = group_path(req, state).await?;
            if group.is_none() && !matches!(principal, Principal::Anonymous) {
                return Err(PackageError::NotFound("Group"));
            }
            Ok(readable_below(state, &principal, group)
                .await?
                .iter()
                .map(|p| p.id)
                .collect())
        }
    }
}

/// The URLs of one endpoint, all under the prefix the client used.
struct Urls {
    base: String,
}

impl Urls {
    fn of(req: &HttpRequest, state: &AppState) -> Self {
        let prefix = prefix_of(req, "/packages/nuget").unwrap_or_default();
        Self {
            base: format!("{}{prefix}", base_url(req, state)),
        }
    }

    fn download(&self) -> String {
        format!("{}/download", self.base)
    }

    fn metadata(&self) -> String {
        format!("{}/metadata", self.base)
    }

    fn registration(&self, lower: &str) -> String {
        format!("{}/{lower}/index.json", self.metadata())
    }

    fn leaf(&self, lower: &str, key: &str) -> String {
        format!("{}/{lower}/{key}.json", self.metadata())
    }

    fn content(&self, lower: &str, key: &str) -> String {
        format!("{}/{lower}/{key}/{lower}.{key}.nupkg", self.download())
    }
}

/// `GET …/index.json`.
async fn service_index(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    authenticate_with(&req, &state, &Policy::NUGET).await?;
    let urls = Urls::of(&req, &state);
    let mut resources = Vec::new();
    if level(&req) == Level::Project {
        resources.push(json!({
            "@id": urls.base,
            "@type": "PackagePublish/2.0.0",
            "comment": "Push and delete packages",
        }));
    }
    resources.push(json!({
        "@id": urls.download(),
        "@type": "PackageBaseAddress/3.0.0",
        "comment": "Version lists, .nupkg and .nuspec files",
    }));
    for suffix in ["", "/3.0.0-beta", "/3.0.0-rc"] {
        resources.push(json!({
            "@id": urls.metadata(),
            "@type": format!("RegistrationsBaseUrl{suffix}"),
            "comment": "Package metadata",
        }));
    }
    for suffix in ["", "/3.0.0-beta", "/3.0.0-rc"] {
        resources.push(json!({
            "@id": format!("{}/query", urls.base),
            "@type": format!("SearchQueryService{suffix}"),
            "comment": "Search packages",
        }));
    }
    Ok(HttpResponse::Ok().json(json!({ "version": "3.0.0", "resources": resources })))
}

/// `GET download/{id}/index.json`: the versions, lower-cased and normalised, ascending.
async fn versions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let lower = id_of(&req)?;
    let projects = readable(&req, &state).await?;
    let entries = load(&state, projects, lower).await?;
    if entries.is_empty() {
        return Err(PackageError::NotFound("Package"));
    }
    let versions: Vec<String> = entries.iter().map(|e| e.version.key()).collect();
    Ok(HttpResponse::Ok().json(json!({ "versions": versions })))
}

/// `GET download/{id}/{version}/{id}.{version}.nupkg` or `…/{version}/{id}.nuspec`.
async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let lower = id_of(&req)?;
    let key = version_of(segment(&req, "version"))?.key();
    let file = segment(&req, "file").to_ascii_lowercase();
    let wants_nuspec = if file == format!("{lower}.{key}.nupkg") {
        false
    } else if file == format!("{lower}.nuspec") {
        true
    } else {
        return Err(PackageError::NotFound("Package file"));
    };
    let projects = readable(&req, &state).await?;
    let entries = load(&state, projects, lower).await?;
    let entry = entries
        .into_iter()
        .find(|e| e.version.key() == key)
        .ok_or(PackageError::NotFound("Package"))?;
    if wants_nuspec {
        return Ok(HttpResponse::Ok()
            .content_type("application/xml; charset=utf-8")
            .body(entry.nuspec));
    }
    stream_file(&state, &entry.file, "application/octet-stream").await
}

/// A registration leaf's `catalogEntry`: the manifest's fields, with the dependency
/// groups as the protocol names them.
fn catalog_entry(urls: &Urls, lower: &str, entry: &Entry) -> Value {
    let key = entry.version.key();
    let m = &entry.manifest;
    let groups: Vec<Value> = m
        .dependency_groups
        .iter()
        .map(|g| {
            let deps: Vec<Value> = g
                .dependencies
                .iter()
                .map(|d| {
                    let mut dep = json!({
                        "@type": "PackageDependency",
                        "id": d.id,
                        "registration": urls.registration(&lower_id(&d.id)),
                    });
                    if let Some(range) = &d.range {
                        dep["range"] = json!(range);
                    }
                    dep
                })
                .collect();
            let mut group = json!({ "@type": "PackageDependencyGroup", "dependencies": deps });
            if let Some(tf) = &g.target_framework {
                group["targetFramework"] = json!(tf);
            }
            group
        })
        .collect();
    let mut out = json!({
        "@id": urls.leaf(lower, &key),
        "@type": "PackageDetails",
        "id": m.id,
        "version": entry.version.normalized(),
        "authors": m.authors,
        "description": m.description,
        "tags": m.tags,
        "listed": true,
        "published": published(entry),
        "packageContent": urls.content(lower, &key),
        "dependencyGroups": groups,
    });
    for (field, value) in [
        ("title", &m.title),
        ("summary", &m.summary),
        ("projectUrl", &m.project_url),
        ("licenseUrl", &m.license_url),
        ("iconUrl", &m.icon_url),
    ] {
        if let Some(v) = value {
            out[field] = json!(v);
        }
    }
    out
}

fn published(entry: &Entry) -> String {
    entry
        .package
        .created_at
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `GET metadata/{id}/index.json`: every version in one inlined page (the protocol lets a
/// server inline its pages; clients read `items` when present).
async fn registration(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let lower = id_of(&req)?;
    let projects = readable(&req, &state).await?;
    let entries = load(&state, projects, lower.clone()).await?;
    let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
        return Err(PackageError::NotFound("Package"));
    };
    let urls = Urls::of(&req, &state);
    let index = urls.registration(&lower);
    let (low, high) = (first.version.normalized(), last.version.normalized());
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            let key = e.version.key();
            json!({
                "@id": urls.leaf(&lower, &key),
                "@type": "Package",
                "commitTimeStamp": published(e),
                "packageContent": urls.content(&lower, &key),
                "registration": index,
                "catalogEntry": catalog_entry(&urls, &lower, e),
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "@id": index,
        "count": 1,
        "items": [{
            "@id": format!("{index}#page/{}/{}", low.to_ascii_lowercase(), high.to_ascii_lowercase()),
            "@type": "catalog:CatalogPage",
            "count": items.len(),
            "lower": low,
            "upper": high,
            "parent": index,
            "items": items,
        }],
    })))
}

/// `GET metadata/{id}/{version}.json`: one registration leaf.
async fn registration_leaf(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let lower = id_of(&req)?;
    let version = segment(&req, "leaf")
        .strip_suffix(".json")
        .ok_or(PackageError::NotFound("Package"))?;
    let key = version_of(version)?.key();
    let projects = readable(&req, &state).await?;
    let entries = load(&state, projects, lower.clone()).await?;
    let entry = entries
        .iter()
        .find(|e| e.version.key() == key)
        .ok_or(PackageError::NotFound("Package"))?;
    let urls = Urls::of(&req, &state);
    Ok(HttpResponse::Ok().json(json!({
        "@id": urls.leaf(&lower, &key),
        "@type": ["Package", "http://schema.nuget.org/catalog#Permalink"],
        "listed": true,
        "published": published(entry),
        "packageContent": urls.content(&lower, &key),
        "registration": urls.registration(&lower),
        "catalogEntry": catalog_entry(&urls, &lower, entry),
    })))
}

/// Search's parameters (the others, `semVerLevel` and `packageType`, change nothing here:
/// every version is served to every client).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Query {
    terms: Vec<String>,
    skip: usize,
    take: usize,
    prerelease: bool,
}

impl Query {
    fn parse(query_string: &str) -> Result<Self, PackageError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query_string)
            .map_err(|e| bad(format!("invalid query string: {e}")))?;
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let number = |name: &str, default: usize| -> Result<usize, PackageError> {
            get(name).map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| bad(format!("{name} must be a non-negative integer")))
            })
        };
        let prerelease = match get("prerelease").map(str::to_ascii_lowercase).as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(_) => return Err(bad("prerelease must be true or false")),
        };
        Ok(Self {
            terms: get("q")
                .unwrap_or_default()
                .split_whitespace()
                .map(str::to_lowercase)
                .collect(),
            skip: number("skip", 0)?,
            take: number("take", DEFAULT_TAKE)?.min(MAX_TAKE),
            prerelease,
        })
    }

    /// Every term occurs in the id, the title, the description or a tag (ignoring case).
    fn matches(&self, m: &Nuspec) -> bool {
        let haystack = format!(
            "{}\n{}\n{}\n{}",
            m.id,
            m.title.as_deref().unwrap_or_default(),
            m.description,
            m.tags.join("\n")
        )
        .to_lowercase();
        self.terms.iter().all(|t| haystack.contains(t.as_str()))
    }
}

/// `GET query`: packages whose latest version (stable only unless `prerelease=true`)
/// matches, by id, `skip` and `take` applied after the match, `totalHits` before.
async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let query = Query::parse(req.query_string())?;
    let projects = readable(&req, &state).await?;
    let matcher = query.clone();
    let found = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<Vec<Vec<Entry>>, PackageError> {
            let mut out = Vec::new();
            for name in s.store.package_names(&projects, FORMAT)? {
                let entries: Vec<Entry> = entries_of(s, &projects, &name)?
                    .into_iter()
                    .filter(|e| matcher.prerelease || !e.version.is_prerelease())
                    .collect();
                if entries.last().is_some_and(|e| matcher.matches(&e.manifest)) {
                    out.push(entries);
                }
            }
            Ok(out)
        })
        .await?;
    let urls = Urls::of(&req, &state);
    let data: Vec<Value> = found
        .iter()
        .skip(query.skip)
        .take(query.take)
        .filter_map(|entries| {
            let latest = entries.last()?;
            let lower = lower_id(&latest.manifest.id);
            let versions: Vec<Value> = entries
                .iter()
                .map(|e| {
                    json!({
                        "version": e.version.normalized(),
                        "downloads": 0,
                        "@id": urls.leaf(&lower, &e.version.key()),
                    })
                })
                .collect();
            let m = &latest.manifest;
            Some(json!({
                "@id": urls.registration(&lower),
                "@type": "Package",
                "registration": urls.registration(&lower),
                "id": m.id,
                "version": latest.version.normalized(),
                "description": m.description,
                "summary": m.summary.clone().unwrap_or_default(),
                "title": m.title.clone().unwrap_or_else(|| m.id.clone()),
                "authors": m.authors,
                "tags": m.tags,
                "totalDownloads": 0,
                "verified": false,
                "packageTypes": [{ "name": "Dependency" }],
                "versions": versions,
            }))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "totalHits": found.len(), "data": data })))
}

/// Why a pushed `.nupkg` is refused; each is a 400.
#[derive(Debug, thiserror::Error)]
pub enum NupkgError {
    #[error("the package is not a readable zip archive: {0}")]
    Zip(String),
    #[error("the package contains no .nuspec manifest")]
    NoManifest,
    #[error("the package contains more than one .nuspec manifest")]
    ManyManifests,
    #[error("the package's .nuspec is larger than {NUSPEC_LIMIT} bytes")]
    ManifestTooLarge,
    #[error("the package's .nuspec is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Manifest(#[from] NuspecError),
}

/// The `.nuspec` at the root of a `.nupkg`, parsed, with its text. Only that entry is
/// decompressed, and at most [`NUSPEC_LIMIT`] bytes of it, whatever its header claims.
pub fn manifest_of<R: Read + Seek>(reader: R) -> Result<(Nuspec, String), NupkgError> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| NupkgError::Zip(e.to_string()))?;
    let mut names = Vec::new();
    for name in zip.file_names() {
        let name = name.map_err(|e| NupkgError::Zip(e.to_string()))?;
        if !name.contains('/') && name.to_ascii_lowercase().ends_with(".nuspec") {
            names.push(name.into_owned());
        }
    }
    let name = match names.as_slice() {
        [] => return Err(NupkgError::NoManifest),
        [one] => one,
        _ => return Err(NupkgError::ManyManifests),
    };
    let file = zip
        .by_name(name)
        .map_err(|e| NupkgError::Zip(e.to_string()))?;
    if file.size() > NUSPEC_LIMIT {
        return Err(NupkgError::ManifestTooLarge);
    }
    let mut bytes = Vec::new();
    file.take(NUSPEC_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| NupkgError::Zip(e.to_string()))?;
    if bytes.len() as u64 > NUSPEC_LIMIT {
        return Err(NupkgError::ManifestTooLarge);
    }
    let text = String::from_utf8(bytes).map_err(|_| NupkgError::NotUtf8)?;
    let manifest = parse_nuspec(&text)?;
    Ok((manifest, text))
}

/// The multipart boundary of a `Content-Type` header (quoted or not).
fn boundary_of(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    value.split(';').skip(1).find_map(|param| {
        let (name, v) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|b| !b.is_empty())
    })
}

/// Copies `buf[..upto]` to `out`, putting a `\r` before every `\n--boundary` (`delim`)
/// that lacks one; `last` is the byte copied before `buf` (across chunks).
fn copy_with_crlf(buf: &[u8], upto: usize, delim: &[u8], last: &mut Option<u8>, out: &mut Vec<u8>) {
    let mut start = 0;
    let mut from = 0;
    while let Some(offset) = buf[from..upto].iter().position(|&b| b == b'\n') {
        let at = from + offset;
        let before = if at == 0 { *last } else { Some(buf[at - 1]) };
        if before != Some(b'\r') && buf[at..].starts_with(delim) {
            out.extend_from_slice(&buf[start..at]);
            out.push(b'\r');
            start = at;
        }
        from = at + 1;
    }
    out.extend_from_slice(&buf[start..upto]);
    if upto > 0 {
        *last = Some(buf[upto - 1]);
    }
}

/// Debian's nuget (2.8.7) ends its part with `\n--boundary--`, a bare LF where RFC 2046
/// wants CRLF, which the multipart parser never finds. This puts the CR back, streaming:
/// it holds back only the bytes that could begin a delimiter split across chunks.
fn lenient_delimiters<S>(
    body: S,
    boundary: &str,
) -> impl futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin,
{
    struct State<S> {
        body: S,
        delim: Vec<u8>,
        held: Vec<u8>,
        last: Option<u8>,
        done: bool,
    }
    let state = State {
        body,
        delim: format!("\n--{boundary}").into_bytes(),
        held: Vec::new(),
        last: None,
        done: false,
    };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let mut out = Vec::new();
            match st.body.next().await {
                Some(Ok(chunk)) => {
                    st.held.extend_from_slice(&chunk);
                    let keep = st.delim.len().saturating_sub(1);
                    let upto = st.held.len().saturating_sub(keep);
                    copy_with_crlf(&st.held, upto, &st.delim, &mut st.last, &mut out);
                    st.held.drain(..upto);
                }
                Some(Err(e)) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                None => {
                    let upto = st.held.len();
                    copy_with_crlf(&st.held, upto, &st.delim, &mut st.last, &mut out);
                    st.held.clear();
                    st.done = true;
                }
            }
            if !out.is_empty() {
                return Some((Ok(web::Bytes::from(out)), st));
            }
        }
    })
    // The multipart parser may poll again after the end, which `unfold` alone forbids.
    .fuse()
}

/// `PUT P/packages/nuget[/][v2]`: a push. Credentials are checked before the body is read,
/// so nuget's first, anonymous attempt gets its challenge at once. The package streams
/// into staging; its manifest is read there, and only a valid package is kept.
async fn push(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let principal = authenticate_with(&req, &state, &Policy::NUGET).await?;
    let project = project(&req, &state, &principal, PackageOperation::Publish).await?;
    let limit = state.realms.max_package_size;
    let body = lenient_delimiters(payload, &boundary_of(&req).unwrap_or_default());
    let mut multipart = Multipart::new(req.headers(), Box::pin(body));
    let mut staged = None;
    let mut other = 0usize;
    let mut parts = 0usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| bad(format!("malformed multipart body: {e}")))?;
        parts += 1;
        if parts > MAX_PARTS {
            return Err(bad(format!("the push carries more than {MAX_PARTS} parts")));
        }
        if field.name() == Some("package") {
            if staged.is_some() {
                return Err(bad("the push carries more than one package"));
            }
            staged = Some(blobs::receive(state.blobs.as_ref(), &mut field, limit).await?);
            continue;
        }
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| bad(format!("malformed multipart body: {e}")))?;
            other += chunk.len();
            if other > OTHER_PARTS_LIMIT {
                return Err(bad("the push carries parts other than `package`"));
            }
        }
    }
    let staged = staged.ok_or_else(|| bad("the push has no `package` part"))?;
    let path = staged.path().to_path_buf();
    let (manifest, nuspec) = state
        .reads
        .pool()
        .storage(move || {
            let file = std::fs::File::open(&path).map_err(|e| {
                log::error!("cannot reopen a staged nuget package: {e}");
                PackageError::Unavailable
            })?;
            manifest_of(std::io::BufReader::new(file)).map_err(|e| bad(e.to_string()))
        })
        .await??;
    let version = version_of(&manifest.version)?;
    let (lower, key) = (lower_id(&manifest.id), version.key());
    let conflict = format!(
        "Package {} {} already exists in this project",
        manifest.id,
        version.normalized()
    );
    // Refused here, with NuGet's wording, before the staged file is kept; a concurrent push
    // of the same version is still refused by the store (and its blob not kept).
    let existing = load(&state, vec![project.id], lower.clone()).await?;
    if existing.iter().any(|e| e.version.key() == key) {
        return Err(PackageError::Conflict(conflict));
    }
    let upload = Upload {
        format: FORMAT,
        name: manifest.id.clone(),
        version: key.clone(),
        file_name: format!("{lower}.{key}.nupkg"),
        metadata: Some(
            serde_json::to_string(&Stored { manifest, nuspec }).map_err(|e| bad(e.to_string()))?,
        ),
        tags: Vec::new(),
    };
    publish(
        &state,
        principal,
        project,
        staged,
        upload,
        PublishMode::NewVersion,
        move || PackageError::Conflict(conflict),
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({ "message": "201 Created" })))
}

/// `DELETE P/packages/nuget/{id}/{version}` (`nuget delete`): the version and its file,
/// audited by the manager. Maintainers and tokens with `write_package_registry`.
async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let lower = id_of(&req)?;
    let key = version_of(segment(&req, "version"))?.key();
    let principal = authenticate_with(&req, &state, &Policy::NUGET).await?;
    let project: Project = project(&req, &state, &principal, PackageOperation::Delete).await?;
    let entries = load(&state, vec![project.id], lower).await?;
    let entry = entries
        .into_iter()
        .find(|e| e.version.key() == key)
        .ok_or(PackageError::NotFound("Package"))?;
    state
        .clone()
        .into_inner()
        .on_pool(move |s| {
            s.manage
                .packages
                .delete(&principal, &project, &entry.package)
                .map_err(manage_error)
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    const NUSPEC: &str = r#"<?xml version="1.0"?>
<package><metadata><id>Demo.Lib</id><version>1.0</version><authors>a</authors>
<description>d</description></metadata></package>"#;

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut out);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Stored);
            for (name, body) in entries {
                zip.start_file(*name, options).expect("start");
                zip.write_all(body).expect("write");
            }
            zip.finish().expect("finish");
        }
        out.into_inner()
    }

    #[test]
    fn the_manifest_is_read_from_the_root_of_the_zip() {
        let nupkg = zip_of(&[
            ("_rels/.rels", b"<x/>"),
            ("Demo.Lib.nuspec", NUSPEC.as_bytes()),
            ("content/other.nuspec", b"not read"),
        ]);
        let (manifest, text) = manifest_of(Cursor::new(nupkg)).expect("valid");
        assert_eq!(manifest.id, "Demo.Lib");
        assert_eq!(text, NUSPEC);
    }

    #[test]
    fn broken_packages_are_refused() {
        let of = |bytes: Vec<u8>| manifest_of(Cursor::new(bytes)).err();
        assert!(matches!(
            of(b"not a zip".to_vec()),
            Some(NupkgError::Zip(_))
        ));
        assert!(matches!(
            of(zip_of(&[("lib/a.dll", b"x")])),
            Some(NupkgError::NoManifest)
        ));
        assert!(matches!(
            of(zip_of(&[
                ("a.nuspec", NUSPEC.as_bytes()),
                ("b.NUSPEC", b"")
            ])),
            Some(NupkgError::ManyManifests)
        ));
        assert!(matches!(
            of(zip_of(&[("a.nuspec", &[0xff, 0xfe])])),
            Some(NupkgError::NotUtf8)
        ));
        assert!(matches!(
            of(zip_of(&[("a.nuspec", b"<package/>")])),
            Some(NupkgError::Manifest(NuspecError::NotNuspec))
        ));
        let huge = vec![b' '; (NUSPEC_LIMIT + 1) as usize];
        assert!(matches!(
            of(zip_of(&[("a.nuspec", &huge)])),
            Some(NupkgError::ManifestTooLarge | NupkgError::Zip(_))
        ));
        // A bomb: 64 MiB of spaces deflated to a few KiB, its sizes rewritten to claim 100
        // bytes. The zip reader stops at the claimed size (and the checksum fails); were it
        // to go on, the read would still stop after the limit.
        let mut bomb = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut bomb);
            let options = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            zip.start_file("a.nuspec", options).expect("start");
            let spaces = vec![b' '; 1 << 20];
            for _ in 0..64 {
                zip.write_all(&spaces).expect("write");
            }
            zip.finish().expect("finish");
        }
        let mut bomb = bomb.into_inner();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let small = 100u32.to_le_bytes();
        for (signature, at) in [(&b"PK\x03\x04"[..], 22), (&b"PK\x01\x02"[..], 24)] {
            let start = bomb
                .windows(4)
                .position(|w| w == signature)
                .expect("header");
            bomb[start + at..start + at + 4].copy_from_slice(&small);
        }
        assert!(matches!(
            of(bomb),
            Some(NupkgError::ManifestTooLarge | NupkgError::Zip(_))
        ));
        // An end record claiming far more entries and directory than the file holds.
        let mut lying = b"PK\x05\x06\0\0\0\0\xff\xff\xff\xff".to_vec();
        lying.extend_from_slice(&[0xf0, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(of(lying), Some(NupkgError::Zip(_))));
        // A truncated archive: its central directory is gone.
        let mut cut = zip_of(&[("a.nuspec", NUSPEC.as_bytes())]);
        cut.truncate(cut.len() / 2);
        assert!(matches!(of(cut), Some(NupkgError::Zip(_))));
    }

    async fn fixed(chunks: &[&[u8]], boundary: &str) -> Vec<u8> {
        let stream = futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(web::Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        let out = lenient_delimiters(stream, boundary)
            .collect::<Vec<_>>()
            .await;
        out.into_iter()
            .flat_map(|c| c.expect("no error").to_vec())
            .collect()
    }

    #[actix_web::test]
    async fn bare_lf_delimiters_get_their_cr_in_any_chunking() {
        let sent =
            b"--XB\r\nContent-Disposition: form-data; name=\"package\"\r\n\r\nPK\n-x\n--XB--";
        let want =
            b"--XB\r\nContent-Disposition: form-data; name=\"package\"\r\n\r\nPK\n-x\r\n--XB--";
        for split in 0..sent.len() {
            let (a, b) = sent.split_at(split);
            assert_eq!(fixed(&[a, b], "XB").await, want, "split at {split}");
        }
        let bytes: Vec<&[u8]> = sent.chunks(1).collect();
        assert_eq!(fixed(&bytes, "XB").await, want);
        // Already CRLF: unchanged.
        let proper = b"--XB\r\n\r\nbody\r\n--XB--\r\n";
        assert_eq!(fixed(&[proper], "XB").await, proper);
        // The boundary's text without its dashes is content, left alone.
        assert_eq!(fixed(&[b"a\nXB\n-XB"], "XB").await, b"a\nXB\n-XB");
    }

    #[test]
    fn search_parameters() {
        let q = Query::parse("q=Demo%20lib&skip=2&take=5000&prerelease=True").expect("valid");
        assert_eq!(
            q,
            Query {
                terms: vec!["demo".into(), "lib".into()],
                skip: 2,
                take: MAX_TAKE,
                prerelease: true,
            }
        );
        let d = Query::parse("").expect("valid");
        assert_eq!((d.skip, d.take, d.prerelease), (0, DEFAULT_TAKE, false));
        assert!(d.terms.is_empty());
        for bad in ["skip=-1", "take=x", "prerelease=maybe"] {
            assert!(Query::parse(bad).is_err(), "{bad}");
        }
        let manifest = parse_nuspec(NUSPEC).expect("valid");
        assert!(q.matches(&manifest));
        assert!(!Query::parse("q=other").expect("valid").matches(&manifest));
    }

    #[test]
    fn the_nuget_policy_checks_the_basic_username() {
        use crate::auth::credentials::presented;
        use crate::domain::authn::Presented;
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
        use base64::Engine;
        let with = |name: &str, value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_str(value).expect("value"),
            );
            presented(&h, Policy::NUGET.sources).expect("well-formed")
        };
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("tok-user:wvsdt-x")
        );
        // Basic keeps its username, so the token's is compared with it.
        assert!(matches!(
            with("authorization", &basic),
            Some(Presented::Login(c)) if c.username == "tok-user"
        ));
        assert!(matches!(
            with("x-nuget-apikey", "wvsdt-x"),
            Some(Presented::Token(_))
        ));
        assert!(matches!(
            with("authorization", "Bearer wvsdt-x"),
            Some(Presented::Token(_))
        ));
    }
}
