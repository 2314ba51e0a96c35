//! npm: `npm publish`, `npm install`, `npm dist-tag` and `npm unpublish` against
//! `P/packages/npm/` (PACKAGE-NOTES §1, §2), installs also at `G/packages/npm/` and
//! `I/packages/npm/` (there the package scope names the top-level group).
//!
//! Paths are parsed by hand: a package name is one encoded segment (`@scope%2fname`) or two
//! (`@scope/name`), and a tarball sits below its package (`@scope/name/-/name-1.0.0.tgz`).
//! Tarball URLs in a packument keep the prefix the request came in on — project, group or
//! instance — because npm sends its token only to URLs under the prefix it was configured
//! for (the trap behind GitLab's #352962).

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use percent_encoding::percent_decode_str;
use serde_json::{json, Map, Value};

use super::error::manage_error;
use super::{
    authenticate, base_url, group_path, prefix_of, project, readable_below, stream_file,
    PackageError,
};
use crate::app::AppState;
use crate::domain::namespace::Project;
use crate::domain::package::{
    npm_scope, validate_file_name, validate_npm_name, validate_version, Package, PackageFile,
    PackageFormat, PackageOperation,
};
use crate::domain::path::NamespacePath;
use crate::domain::principal::Principal;
use crate::domain::store::PublishMode;
use crate::manage::packages::Upload;
use crate::request::body::{read_bounded, BodyError};
use crate::store::blobs;

const FORMAT: PackageFormat = PackageFormat::Npm;
const MARKER: &str = "/packages/npm";

/// Which endpoint a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Project,
    Group,
    Instance,
}

impl Level {
    /// The `route` label of the metrics: the scope's pattern, the package path left out.
    fn route_label(self) -> &'static str {
        match self {
            Level::Project => "/api/v4/projects/{id}/packages/npm/{path}",
            Level::Group => "/api/v4/groups/{id}/-/packages/npm/{path}",
            Level::Instance => "/api/v4/packages/npm/{path}",
        }
    }
}

/// What an npm path asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET` the packument, `PUT` a publish.
    Package(String),
    /// `GET` a tarball (file name without the scope).
    Tarball { package: String, file: String },
    /// `PUT {name}/-rev/{rev}` (unpublish of versions), `DELETE` (all of it).
    Revision(String),
    /// `DELETE {tarball}/-rev/{rev}`: one version's tarball.
    TarballRevision { package: String, file: String },
    /// `GET -/package/{name}/dist-tags`.
    Tags(String),
    /// `PUT|DELETE -/package/{name}/dist-tags/{tag}`.
    Tag { package: String, tag: String },
}

fn bad(m: impl Into<String>) -> PackageError {
    PackageError::BadRequest(m.into())
}

/// The route of the path after `/packages/npm/`, fully decoded and validated: a name that
/// decodes to a traversal or a slash where none belongs is a 400.
pub fn parse(tail: &str) -> Result<Route, PackageError> {
    let decoded = percent_decode_str(tail)
        .decode_utf8()
        .map_err(|_| bad("the path is not UTF-8"))?;
    let path = decoded.trim_end_matches('/');
    if path.contains('\0') || path.contains('\\') {
        return Err(bad("the path holds forbidden characters"));
    }
    let name = |n: &str| -> Result<String, PackageError> {
        validate_npm_name(n).map_err(|e| bad(e.to_string()))?;
        Ok(n.to_string())
    };
    let file = |f: &str| -> Result<String, PackageError> {
        // The tarball may be named with its scope (`@scope/name-1.0.0.tgz`).
        let last = f.rsplit('/').next().unwrap_or(f);
        if f.matches('/').count() > 1 || (f.contains('/') && !f.starts_with('@')) {
            return Err(bad("the tarball name is invalid"));
        }
        validate_file_name(last).map_err(|e| bad(e.to_string()))?;
        Ok(last.to_string())
    };
    if let Some(rest) = path.strip_prefix("-/package/") {
        if let Some((package, tag)) = rest.split_once("/dist-tags/") {
            validate_tag(tag)?;
            return Ok(Route::Tag {
                package: name(package)?,
                tag: tag.to_string(),
            });
        }
        if let Some(package) = rest.strip_suffix("/dist-tags") {
            return Ok(Route::Tags(name(package)?));
        }
        return Err(PackageError::NotFound("Route"));
    }
    if let Some((before, rev)) = path.split_once("/-rev/") {
        if rev.is_empty() || rev.contains('/') {
            return Err(bad("the revision is invalid"));
        }
        return match before.split_once("/-/") {
            Some((package, f)) => Ok(Route::TarballRevision {
                package: name(package)?,
                file: file(f)?,
            }),
            None => Ok(Route::Revision(name(before)?)),
        };
    }
    if let Some((package, f)) = path.split_once("/-/") {
        return Ok(Route::Tarball {
            package: name(package)?,
            file: file(f)?,
        });
    }
    Ok(Route::Package(name(path)?))
}

fn validate_tag(tag: &str) -> Result<(), PackageError> {
    // A tag starts with a letter or digit: `.` and `..` (which cargo-fuzz found accepted)
    // must never reach anything that treats the tag as a path segment.
    let ok = tag.starts_with(|c: char| c.is_ascii_alphanumeric())
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        // npm refuses tags that parse as versions; so do we.
        && validate_version(tag).map_or(true, |_| !tag.starts_with(|c: char| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(bad(format!("dist-tag {tag:?} is invalid")))
    }
}

/// Every npm request of one level.
pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let level = req.app_data::<Level>().copied().unwrap_or(Level::Project);
    crate::metrics::http::label_route(&req, level.route_label());
    let mut tail = prefix_of(&req, MARKER)
        .map(|p| &req.uri().path()[p.len()..])
        .unwrap_or_default()
        .trim_start_matches('/');
    // `npm unpublish` appends a tarball URL's whole path to the registry URL
    // (`…/packages/npm/api/v4/projects/…/packages/npm/@acme/app/-/…`): the last prefix counts.
    if let Some(at) = tail.rfind("/packages/npm/") {
        tail = &tail[at + "/packages/npm/".len()..];
    }
    let tail = tail.to_string();
    let route = parse(&tail)?;
    let method = req.method().clone();
    let writes = !matches!(method, Method::GET | Method::HEAD);
    if writes && level != Level::Project {
        return Err(PackageError::Refused(
            "packages are published and changed at the project level".into(),
        ));
    }
    let principal = authenticate(&req, &state).await?;
    match (method, route) {
        (Method::GET | Method::HEAD, Route::Package(name)) => {
            packument(&req, &state, level, &principal, &name).await
        }
        (Method::PUT, Route::Package(name)) => {
            publish(&req, payload, &state, &principal, &name).await
        }
        (Method::GET | Method::HEAD, Route::Tarball { package, file }) => {
            tarball(&req, &state, level, &principal, &package, &file).await
        }
        (Method::GET | Method::HEAD, Route::Tags(name)) => {
            let (ids, _) = readable(&req, &state, level, &principal, &name).await?;
            let tags = tags_of(&state, ids, name).await?;
            Ok(HttpResponse::Ok().json(tags))
        }
        (Method::PUT, Route::Tag { package, tag }) => {
            let project = project(&req, &state, &principal, PackageOperation::Publish).await?;
            let body = read_bounded(payload, 4096).await.map_err(body_error)?;
            let version: String = serde_json::from_slice(&body)
                .map_err(|_| bad("the body must be a JSON string: the version"))?;
            validate_version(&version).map_err(|e| bad(e.to_string()))?;
            let set = state
                .clone()
                .into_inner()
                .on_pool(move |s| -> Result<(), PackageError> {
                    s.store
                        .set_package_tag(project.id, FORMAT, &package, &tag, &version)
                        .map_err(|e| match e {
                            crate::domain::store::StoreError::NotFound(_) => {
                                PackageError::NotFound("Package version")
                            }
                            other => other.into(),
                        })
                })
                .await;
            set?;
            Ok(HttpResponse::Ok().json(json!({ "ok": true })))
        }
        (Method::DELETE, Route::Tag { package, tag }) => {
            let project = project(&req, &state, &principal, PackageOperation::Publish).await?;
            let removed = state
                .clone()
                .into_inner()
                .on_pool(move |s| -> Result<bool, PackageError> {
                    Ok(s.store
                        .remove_package_tag(project.id, FORMAT, &package, &tag)?)
                })
                .await?;
            if removed {
                Ok(HttpResponse::NoContent().finish())
            } else {
                Err(PackageError::NotFound("Tag"))
            }
        }
        (Method::PUT, Route::Revision(name)) => {
            unpublish_versions(payload, &req, &state, &principal, &name).await
        }
        (Method::DELETE, Route::Revision(name)) => {
            unpublish(&req, &state, &principal, &name, None).await
        }
        (Method::DELETE, Route::TarballRevision { package, file }) => {
            unpublish(&req, &state, &principal, &package, Some(file)).await
        }
        _ => Err(PackageError::MethodNotAllowed),
    }
}

fn body_error(e: BodyError) -> PackageError {
    match e {
        BodyError::TooLarge(_) => PackageError::TooLarge(e.to_string()),
        BodyError::Unreadable => bad(e.to_string()),
    }
}

/// The projects a read at this level covers, and the tarball URL prefix to hand out.
async fn readable(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    level: Level,
    principal: &Principal,
    name: &str,
) -> Result<(Vec<i64>, String), PackageError> {
    let prefix = format!(
        "{}{}",
        base_url(req, state),
        prefix_of(req, MARKER).unwrap_or(MARKER)
    );
    let ids = match level {
        Level::Project => vec![
            project(req, state, principal, PackageOperation::Read)
                .await?
                .id,
        ],
        Level::Group => {
            let group = group_path(req, state).await?;
            if group.is_none() && !matches!(principal, Principal::Anonymous) {
                return Err(PackageError::NotFound("Group"));
            }
            ids(readable_below(state, principal, group).await?)
        }
        Level::Instance => {
            // The scope names the top-level group: `@acme/app` lives below `acme`.
            let group = npm_scope(name).and_then(|s| NamespacePath::parse(s).ok());
            if group.is_none() {
                return Err(PackageError::NotFound("Package"));
            }
            ids(readable_below(state, principal, group).await?)
        }
    };
    Ok((ids, prefix))
}

fn ids(projects: Vec<Project>) -> Vec<i64> {
    projects.into_iter().map(|p| p.id).collect()
}

async fn versions(
    state: &web::Data<AppState>,
    ids: Vec<i64>,
    name: String,
) -> Result<Vec<(Package, Vec<PackageFile>)>, PackageError> {
    state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<_, PackageError> {
            Ok(s.store.versions_of(&ids, FORMAT, &name)?)
        })
        .await
}

/// The dist-tags over `ids` (a later project's tag wins on a clash).
async fn tags_of(
    state: &web::Data<AppState>,
    ids: Vec<i64>,
    name: String,
) -> Result<Map<String, Value>, PackageError> {
    state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<_, PackageError> {
            let mut tags = Map::new();
            for id in ids {
                for (tag, version) in s.store.package_tags(id, FORMAT, &name)? {
                    tags.insert(tag, Value::String(version));
                }
            }
            Ok(tags)
        })
        .await
}

/// The tarball's name in URLs: `@scope/name-1.0.0.tgz` or `name-1.0.0.tgz`.
fn tarball_path(name: &str, version: &str) -> String {
    format!("{name}/-/{name}-{version}.tgz")
}

/// The file name a tarball is stored under: without the scope.
fn tarball_file(name: &str, version: &str) -> String {
    let bare = name.rsplit('/').next().unwrap_or(name);
    format!("{bare}-{version}.tgz")
}

/// `GET …/npm/:name`: the packument, with every version's manifest and `dist`.
async fn packument(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    level: Level,
    principal: &Principal,
    name: &str,
) -> Result<HttpResponse, PackageError> {
    let (ids, prefix) = readable(req, state, level, principal, name).await?;
    let found = versions(state, ids.clone(), name.to_string()).await?;
    if found.is_empty() {
        return Err(PackageError::NotFound("Package"));
    }
    let mut tags = tags_of(state, ids, name.to_string()).await?;
    let mut versions_json = Map::new();
    let mut time = Map::new();
    for (package, files) in &found {
        let Some(file) = files.first() else { continue };
        let mut manifest = package
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str::<Value>(m).ok())
            .filter(Value::is_object)
            .unwrap_or_else(|| json!({}));
        manifest["name"] = json!(name);
        manifest["version"] = json!(package.version);
        manifest["dist"] = json!({
            "tarball": format!("{prefix}/{}", tarball_path(name, &package.version)),
            "shasum": file.digests.sha1,
            "integrity": integrity(&file.digests.sha512),
        });
        versions_json.insert(package.version.clone(), manifest);
        time.insert(
            package.version.clone(),
            json!(package
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
    }
    if !tags.contains_key("latest") {
        if let Some((newest, _)) = found.last() {
            tags.insert("latest".into(), json!(newest.version));
        }
    }
    // npm echoes `_rev` in unpublish URLs; the store keeps no revisions, so it only has to
    // change with the versions.
    let rev = format!(
        "{}-{}",
        found.len(),
        found
            .last()
            .and_then(|(_, files)| files.first())
            .map(|f| f.digests.sha1.get(..12).unwrap_or_default().to_string())
            .unwrap_or_default()
    );
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .json(json!({
            "_id": name,
            "_rev": rev,
            "name": name,
            "dist-tags": tags,
            "versions": versions_json,
            "time": time,
        })))
}

/// npm's Subresource Integrity string for a hex SHA-512.
fn integrity(sha512_hex: &str) -> String {
    let bytes: Vec<u8> = (0..sha512_hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(sha512_hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    format!("sha512-{}", STANDARD.encode(bytes))
}

/// `GET …/npm/:name/-/:file`.
async fn tarball(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    level: Level,
    principal: &Principal,
    name: &str,
    file: &str,
) -> Result<HttpResponse, PackageError> {
    let (ids, _) = readable(req, state, level, principal, name).await?;
    let found = versions(state, ids, name.to_string()).await?;
    let file = found
        .into_iter()
        .rev()
        .flat_map(|(_, files)| files)
        .find(|f| f.file_name == file)
        .ok_or(PackageError::NotFound("Package file"))?;
    stream_file(state, &file, "application/octet-stream").await
}

/// `PUT P/packages/npm/:name`: `npm publish`. The tarball arrives base64 in the JSON body;
/// its `shasum` and `integrity` must match the decoded bytes. An existing version is
/// refused (403), as on npmjs.
async fn publish(
    req: &HttpRequest,
    payload: web::Payload,
    state: &web::Data<AppState>,
    principal: &Principal,
    name: &str,
) -> Result<HttpResponse, PackageError> {
    let project = project(req, state, principal, PackageOperation::Publish).await?;
    // base64 is 4/3 of the tarball, plus the manifest.
    let limit = state.realms.max_package_size.saturating_mul(4) / 3 + (1 << 20);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let body = read_bounded(payload, limit).await.map_err(body_error)?;
    let doc: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    if doc["name"].as_str() != Some(name) {
        return Err(bad("the body names another package than the URL"));
    }
    let versions = doc["versions"]
        .as_object()
        .filter(|v| v.len() == 1)
        .ok_or_else(|| bad("a publish carries exactly one version"))?;
    let (version, manifest) = versions
        .iter()
        .next()
        .ok_or_else(|| bad("a publish carries exactly one version"))?;
    validate_version(version).map_err(|e| bad(e.to_string()))?;
    let attachments = doc["_attachments"]
        .as_object()
        .filter(|a| a.len() == 1)
        .ok_or_else(|| bad("a publish carries exactly one tarball"))?;
    let (_, attachment) = attachments
        .iter()
        .next()
        .ok_or_else(|| bad("a publish carries exactly one tarball"))?;
    let data = attachment["data"]
        .as_str()
        .ok_or_else(|| bad("the tarball has no data"))?;
    let tarball = STANDARD
        .decode(data)
        .map_err(|_| bad("the tarball is not valid base64"))?;
    if let Some(length) = attachment["length"].as_u64() {
        if length != tarball.len() as u64 {
            return Err(bad("the tarball's length does not match its data"));
        }
    }
    let staged = blobs::receive_bytes(
        state.blobs.as_ref(),
        &tarball,
        state.realms.max_package_size,
    )?;
    drop(tarball);
    let dist = &manifest["dist"];
    let shasum = dist["shasum"].as_str().unwrap_or_default();
    if !shasum.is_empty() && !shasum.eq_ignore_ascii_case(&staged.digests.sha1) {
        return Err(bad("dist.shasum does not match the tarball"));
    }
    let claimed = dist["integrity"].as_str().unwrap_or_default();
    if claimed.starts_with("sha512-") && claimed != integrity(&staged.digests.sha512) {
        return Err(bad("dist.integrity does not match the tarball"));
    }
    if shasum.is_empty() && claimed.is_empty() {
        return Err(bad("dist.shasum or dist.integrity is required"));
    }
    let mut manifest = manifest.clone();
    if let Some(m) = manifest.as_object_mut() {
        m.remove("dist");
    }
    let tags = doc["dist-tags"]
        .as_object()
        .map(|t| {
            t.iter()
                .filter(|(tag, v)| v.as_str() == Some(version) && validate_tag(tag).is_ok())
                .map(|(tag, _)| tag.clone())
                .collect()
        })
        .unwrap_or_default();
    let upload = Upload {
        format: FORMAT,
        name: name.to_string(),
        version: version.clone(),
        file_name: tarball_file(name, version),
        metadata: Some(manifest.to_string()),
        tags,
    };
    super::publish(
        state,
        principal.clone(),
        project,
        staged,
        upload,
        PublishMode::NewVersion,
        || PackageError::Refused("cannot publish over the previously published version".into()),
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "ok": true, "id": name })))
}

/// `PUT P/packages/npm/:name/-rev/:rev`: `npm unpublish name@version` sends the packument
/// without the versions to remove; those are deleted.
async fn unpublish_versions(
    payload: web::Payload,
    req: &HttpRequest,
    state: &web::Data<AppState>,
    principal: &Principal,
    name: &str,
) -> Result<HttpResponse, PackageError> {
    let project = project(req, state, principal, PackageOperation::Delete).await?;
    let body = read_bounded(payload, 16 << 20).await.map_err(body_error)?;
    let doc: Value =
        serde_json::from_slice(&body).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let kept = doc["versions"]
        .as_object()
        .ok_or_else(|| bad("the body has no versions"))?
        .keys()
        .cloned()
        .collect::<Vec<_>>();
    let found = versions(state, vec![project.id], name.to_string()).await?;
    let gone: Vec<Package> = found
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| !kept.contains(&p.version))
        .collect();
    delete_versions(state, principal, project, gone).await?;
    Ok(HttpResponse::Ok().json(json!({ "ok": true })))
}

/// `DELETE …/-rev/:rev`: the whole package, or the version owning one tarball.
async fn unpublish(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    principal: &Principal,
    name: &str,
    file: Option<String>,
) -> Result<HttpResponse, PackageError> {
    let project = project(req, state, principal, PackageOperation::Delete).await?;
    let found = versions(state, vec![project.id], name.to_string()).await?;
    let gone: Vec<Package> = found
        .into_iter()
        .filter(|(_, files)| {
            file.as_ref()
                .is_none_or(|f| files.iter().any(|x| &x.file_name == f))
        })
        .map(|(p, _)| p)
        .collect();
    if gone.is_empty() && file.is_none() {
        return Err(PackageError::NotFound("Package"));
    }
    // A tarball already gone with its version (npm unpublishes in two steps) is done.
    delete_versions(state, principal, project, gone).await?;
    Ok(HttpResponse::Ok().json(json!({ "ok": true })))
}

async fn delete_versions(
    state: &web::Data<AppState>,
    principal: &Principal,
    project: Project,
    gone: Vec<Package>,
) -> Result<(), PackageError> {
    let principal = principal.clone();
    state
        .clone()
        .into_inner()
        .on_pool(move |s| {
            for package in &gone {
                s.manage
                    .packages
                    .delete(&principal, &project, package)
                    .map_err(manage_error)?;
            }
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(n: &str) -> Route {
        Route::Package(n.into())
    }

    #[test]
    fn paths_as_npm_sends_them() {
        assert_eq!(parse("@acme%2fapp").ok(), Some(package("@acme/app")));
        assert_eq!(parse("@acme%2Fapp").ok(), Some(package("@acme/app")));
        assert_eq!(parse("left-pad").ok(), Some(package("left-pad")));
        assert_eq!(
            parse("@acme/app/-/@acme/app-1.0.0.tgz").ok(),
            Some(Route::Tarball {
                package: "@acme/app".into(),
                file: "app-1.0.0.tgz".into()
            })
        );
        assert_eq!(
            parse("left-pad/-/left-pad-1.0.0.tgz").ok(),
            Some(Route::Tarball {
                package: "left-pad".into(),
                file: "left-pad-1.0.0.tgz".into()
            })
        );
        assert_eq!(
            parse("-/package/@acme%2fapp/dist-tags").ok(),
            Some(Route::Tags("@acme/app".into()))
        );
        assert_eq!(
            parse("-/package/@acme%2fapp/dist-tags/beta").ok(),
            Some(Route::Tag {
                package: "@acme/app".into(),
                tag: "beta".into()
            })
        );
        assert_eq!(
            parse("@acme%2fapp/-rev/3-abc").ok(),
            Some(Route::Revision("@acme/app".into()))
        );
        assert_eq!(
            parse("@acme/app/-/@acme/app-1.0.0.tgz/-rev/3-abc").ok(),
            Some(Route::TarballRevision {
                package: "@acme/app".into(),
                file: "app-1.0.0.tgz".into()
            })
        );
    }

    #[test]
    fn traversal_and_junk_are_refused() {
        for bad in [
            "%2e%2e",
            "..",
            "@acme%2f..",
            "@acme/app/-/..%2f..%2fetc",
            "@acme/app/-/a/b/c.tgz",
            "app%00",
            "-/package/@acme%2fapp/dist-tags/1.0.0",
            // found by cargo-fuzz (fuzz/seeds/package_paths/dot-tag)
            "-/package/c/dist-tags/.",
            "-/package/c/dist-tags/..",
            "-/package/c/dist-tags/%2e%2e",
            "-/package/c/dist-tags/.hidden",
            "%ff",
            "a\\b",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever the path, parsing answers (never panics), and whatever it accepts names
        /// a package and file that cannot leave their directory.
        #[test]
        fn any_path_parses_or_is_refused(
            tail in "(-/package/)?(%2[eEfF]|[@./a-z0-9_~%-]|-/|/-rev/|/dist-tags/){0,40}"
        ) {
            if let Ok(route) = parse(&tail) {
                let (package, file) = match route {
                    Route::Package(p) | Route::Revision(p) | Route::Tags(p) => (p, None),
                    Route::Tag { package, tag } => (package, Some(tag)),
                    Route::Tarball { package, file } | Route::TarballRevision { package, file } => {
                        (package, Some(file))
                    }
                };
                proptest::prop_assert!(!package.contains(".."));
                proptest::prop_assert!(package.matches('/').count() <= 1);
                if let Some(f) = file {
                    proptest::prop_assert!(!f.contains('/') && !f.contains("..") && f != ".");
                }
            }
        }
    }

    #[test]
    fn tarball_names_and_integrity() {
        assert_eq!(tarball_file("@acme/app", "1.0.0"), "app-1.0.0.tgz");
        assert_eq!(
            tarball_path("@acme/app", "1.0.0"),
            "@acme/app/-/@acme/app-1.0.0.tgz"
        );
        assert_eq!(integrity("00ff"), "sha512-AP8=");
    }
}
