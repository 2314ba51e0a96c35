//! Maven (PACKAGE-NOTES §1, §2): `PUT|GET P/packages/maven/<group path>/<artifact>/<version>/<file>`
//! as `mvn deploy` and `mvn dependency:get` speak it; reads also at `G/packages/maven/…`
//! and `I/packages/maven/…`.
//!
//! - A package is GitLab's: named by the artifact's path (`com/example/my-app`), one per
//!   version; the artifact's own `maven-metadata.xml` lives in a versionless package (the
//!   store's empty version), a SNAPSHOT's in its version.
//! - Checksum files (`.md5`, `.sha1`, `.sha256`, `.sha512`) are never stored: a GET is
//!   answered from the digests kept with the file, a PUT is checked against them (409 on a
//!   mismatch, 204 on a match), as GitLab checks `.sha1`.
//! - A release's file is written once: the same bytes again are accepted (a retried deploy),
//!   other bytes are a 409. Metadata and SNAPSHOT files are replaced.
//! - `maven-metadata.xml` is served as the client wrote it; when none was uploaded it is
//!   generated from the stored versions (and a SNAPSHOT's from its timestamped files), so
//!   resolution works for artifacts deployed without one.
//! - Group and instance reads look in every project below the group (every project, at the
//!   instance) that the caller may read, as GitLab does: a file or a stored metadata file
//!   found in several projects is served from the newest upload; generated metadata lists
//!   the versions of all of them.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::{authenticate, group_path, project, readable_below, stream_file, PackageError};
use crate::app::AppState;
use crate::domain::namespace::Project;
use crate::domain::package::maven::{is_snapshot, parse_path, snapshot_file, MavenPath};
use crate::domain::package::{
    package_access, Package, PackageAccess, PackageFile, PackageFormat, PackageOperation,
};
use crate::domain::principal::Principal;
use crate::domain::store::PublishMode;
use crate::manage::packages::Upload;
use crate::request::body::{read_bounded, BodyError};
use crate::store::blobs;
use crate::store::memo::{Content, MemoKey, Rendered};

const FORMAT: PackageFormat = PackageFormat::Maven;

/// Which endpoint a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Project,
    Group,
    Instance,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    for (prefix, level) in [
        ("/api/v4/projects/{id}/packages/maven", Level::Project),
        ("/api/v4/groups/{id}/-/packages/maven", Level::Group),
        ("/api/v4/packages/maven", Level::Instance),
    ] {
        cfg.service(
            web::scope(prefix)
                .app_data(level)
                .service(
                    web::resource("/{path:.+}")
                        .route(web::get().to(download))
                        .route(web::head().to(download))
                        .route(web::put().to(upload))
                        .default_service(web::to(super::method_not_allowed)),
                )
                .default_service(web::to(super::not_found)),
        );
    }
}

fn level(req: &HttpRequest) -> Level {
    req.app_data::<Level>().copied().unwrap_or(Level::Project)
}

/// The route's path below `packages/maven/`, decoded and validated before anything else.
fn maven_path(req: &HttpRequest) -> Result<MavenPath, PackageError> {
    let raw = req.match_info().get("path").unwrap_or_default();
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| PackageError::BadRequest("the path is not UTF-8".into()))?;
    parse_path(&decoded).map_err(|e| PackageError::BadRequest(e.to_string()))
}

fn content_type(file: &str) -> &'static str {
    match file.rsplit('.').next() {
        Some("jar" | "war" | "ear") => "application/java-archive",
        Some("pom" | "xml") => "text/xml",
        _ => "application/octet-stream",
    }
}

/// Every project a read at the instance level covers: each one `principal` may read. An
/// anonymous caller who may read none is asked to authenticate.
async fn readable_anywhere(
    state: &web::Data<AppState>,
    principal: &Principal,
) -> Result<Vec<Project>, PackageError> {
    let principal_for = principal.clone();
    let projects = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<Vec<Project>, PackageError> {
            Ok(s.store
                .list_projects()?
                .into_iter()
                .filter(|p| {
                    package_access(&principal_for, Some(p), PackageOperation::Read)
                        == PackageAccess::Allowed
                })
                .collect())
        })
        .await?;
    if projects.is_empty() && matches!(principal, Principal::Anonymous) {
        return Err(PackageError::Unauthorized);
    }
    Ok(projects)
}

/// The projects a read at this request's level covers.
async fn readable(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    principal: &Principal,
) -> Result<Vec<i64>, PackageError> {
    let projects = match level(req) {
        Level::Project => vec![project(req, state, principal, PackageOperation::Read).await?],
        Level::Group => {
            let group = group_path(req, state).await?;
            if group.is_none() && !matches!(principal, Principal::Anonymous) {
                return Err(PackageError::NotFound("Group"));
            }
            readable_below(state, principal, group).await?
        }
        Level::Instance => readable_anywhere(state, principal).await?,
    };
    Ok(projects.into_iter().map(|p| p.id).collect())
}

/// What a GET finds: a stored file, or metadata made from what is stored.
enum Found {
    Stored(PackageFile),
    Generated(String),
}

impl Found {
    /// As the memo keeps it, with the ETag of its bytes.
    fn rendered(self) -> Rendered {
        match self {
            Found::Stored(file) => Rendered {
                etag: format!("\"{}\"", file.digests.sha256),
                content: Content::Stored(file),
            },
            Found::Generated(xml) => {
                let etag = format!("\"{}\"", blobs::digests(xml.as_bytes()).sha256);
                Rendered::body(xml.into(), etag)
            }
        }
    }
}

/// `GET` (and `HEAD`) of a file, a checksum or metadata.
async fn download(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let path = maven_path(&req)?;
    let principal = authenticate(&req, &state).await?;
    let ids = readable(&req, &state, &principal).await?;
    // Found once per database version and set of projects read: every file of an
    // artifact, its metadata above all, is looked up among all its versions, so an
    // artifact with 10^3 versions would otherwise cost a hundred times one with 10.
    let key = MemoKey {
        format: FORMAT,
        projects: ids.clone(),
        name: format!(
            "{}/{}/{}",
            path.package_name(),
            path.stored_version(),
            path.file_name
        ),
    };
    let wanted = path.clone();
    let found = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<_, PackageError> {
            Ok(s.memo.rendered(key, &mut || {
                let versions = s.store.versions_of(&ids, FORMAT, &wanted.package_name())?;
                Ok(find(&wanted, &versions).map(Found::rendered))
            })?)
        })
        .await?;
    let found = found.ok_or(PackageError::NotFound("Package file"))?;
    match (&found.content, path.checksum) {
        (Content::Stored(file), None) => {
            stream_file(&state, file, content_type(&path.file_name)).await
        }
        (Content::Stored(file), Some(kind)) => Ok(checksum_answer(kind.of(&file.digests))),
        (Content::Body(xml), None) => Ok(HttpResponse::Ok()
            .content_type("text/xml")
            .insert_header((header::ETAG, found.etag.clone()))
            .body(xml.clone())),
        (Content::Body(xml), Some(kind)) => Ok(checksum_answer(kind.of(&blobs::digests(xml)))),
    }
}

fn checksum_answer(hex: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(hex.to_string())
}

/// The file `path` names among the versions of its artifact (across projects, oldest
/// first): the newest upload of it, else for metadata what the stored versions say.
fn find(path: &MavenPath, versions: &[(Package, Vec<PackageFile>)]) -> Option<Found> {
    let stored = versions
        .iter()
        .filter(|(p, _)| p.version == path.stored_version())
        .flat_map(|(_, files)| files)
        .filter(|f| f.file_name == path.file_name)
        .max_by_key(|f| (f.created_at, f.id))
        .cloned();
    if let Some(file) = stored {
        return Some(Found::Stored(file));
    }
    if !path.is_metadata() {
        return None;
    }
    let group_id = path.group_id();
    match path.version.as_deref() {
        None => {
            let listed: Vec<(&str, DateTime<Utc>)> = versions
                .iter()
                .filter(|(p, _)| !p.version.is_empty())
                .map(|(p, files)| {
                    let updated = files.iter().map(|f| f.created_at).max();
                    (p.version.as_str(), updated.unwrap_or(p.created_at))
                })
                .collect();
            artifact_metadata(&group_id, &path.artifact_id, &listed).map(Found::Generated)
        }
        Some(version) => {
            let files: Vec<&str> = versions
                .iter()
                .filter(|(p, _)| p.version == version)
                .flat_map(|(_, files)| files.iter().map(|f| f.file_name.as_str()))
                .collect();
            snapshot_metadata(&group_id, &path.artifact_id, version, &files).map(Found::Generated)
        }
    }
}

/// Maven's `lastUpdated`: `yyyyMMddHHmmss`, UTC.
fn last_updated(at: DateTime<Utc>) -> String {
    at.format("%Y%m%d%H%M%S").to_string()
}

/// An artifact's `maven-metadata.xml` from its versions in upload order (a version in
/// several projects counts where it first appears), with when each was last written:
/// `latest` is the last uploaded, `release` the last that is not a SNAPSHOT
/// (what `mvn deploy` itself writes when it merges). Derived from stored data only, so the
/// document and its checksum files agree. Names and versions passed the path's
/// validation (`[A-Za-z0-9._+~!-]`), so nothing needs escaping.
pub fn artifact_metadata(
    group_id: &str,
    artifact_id: &str,
    versions: &[(&str, DateTime<Utc>)],
) -> Option<String> {
    let mut listed: Vec<&str> = Vec::new();
    for (v, _) in versions {
        if !listed.contains(v) {
            listed.push(*v);
        }
    }
    let latest = listed.last()?;
    let updated = versions.iter().map(|(_, at)| *at).max()?;
    let release = listed.iter().rev().find(|v| !is_snapshot(v));
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n  <groupId>{group_id}</groupId>\n  \
         <artifactId>{artifact_id}</artifactId>\n  <versioning>\n    <latest>{latest}</latest>\n"
    );
    if let Some(release) = release {
        xml.push_str(&format!("    <release>{release}</release>\n"));
    }
    xml.push_str("    <versions>\n");
    for v in &listed {
        xml.push_str(&format!("      <version>{v}</version>\n"));
    }
    xml.push_str(&format!(
        "    </versions>\n    <lastUpdated>{}</lastUpdated>\n  </versioning>\n</metadata>\n",
        last_updated(updated)
    ));
    Some(xml)
}

/// A SNAPSHOT version's `maven-metadata.xml` from its timestamped files: the newest
/// build (by timestamp, then build number) with one `snapshotVersion` per file of it.
/// `None` when no file is timestamped; Maven then asks for `…-SNAPSHOT.jar` itself.
pub fn snapshot_metadata(
    group_id: &str,
    artifact_id: &str,
    version: &str,
    files: &[&str],
) -> Option<String> {
    let parsed: Vec<_> = files
        .iter()
        .filter_map(|f| snapshot_file(artifact_id, version, f))
        .collect();
    let newest = parsed.iter().map(|f| (f.timestamp, f.build)).max()?;
    let (timestamp, build) = newest;
    let updated = timestamp.replace('.', "");
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata modelVersion=\"1.1.0\">\n  \
         <groupId>{group_id}</groupId>\n  <artifactId>{artifact_id}</artifactId>\n  \
         <version>{version}</version>\n  <versioning>\n    <snapshot>\n      \
         <timestamp>{timestamp}</timestamp>\n      <buildNumber>{build}</buildNumber>\n    \
         </snapshot>\n    <lastUpdated>{updated}</lastUpdated>\n    <snapshotVersions>\n"
    );
    let mut seen = Vec::new();
    for f in parsed.iter().filter(|f| (f.timestamp, f.build) == newest) {
        if seen.contains(&(f.classifier, f.extension)) {
            continue;
        }
        seen.push((f.classifier, f.extension));
        xml.push_str("      <snapshotVersion>\n");
        if let Some(c) = f.classifier {
            xml.push_str(&format!("        <classifier>{c}</classifier>\n"));
        }
        xml.push_str(&format!(
            "        <extension>{}</extension>\n        <value>{}</value>\n        \
             <updated>{updated}</updated>\n      </snapshotVersion>\n",
            f.extension,
            f.value(version)
        ));
    }
    xml.push_str("    </snapshotVersions>\n  </versioning>\n</metadata>\n");
    Some(xml)
}

/// `PUT` of a file, its checksum or metadata; only at project level.
async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let path = maven_path(&req)?;
    if level(&req) != Level::Project {
        return Err(PackageError::Refused(
            "packages are published at the project level".into(),
        ));
    }
    let principal = authenticate(&req, &state).await?;
    let project = project(&req, &state, &principal, PackageOperation::Publish).await?;
    let project_id = project.id;
    if let Some(kind) = path.checksum {
        let body = read_bounded(payload, 1024).await.map_err(|e| match e {
            BodyError::TooLarge(_) => PackageError::TooLarge(e.to_string()),
            BodyError::Unreadable => PackageError::BadRequest(e.to_string()),
        })?;
        let claimed = kind.parse_body(&body).ok_or_else(|| {
            PackageError::BadRequest(format!("the body is not a {} digest", kind.extension()))
        })?;
        let file = stored_file(&state, project_id, &path)
            .await?
            .ok_or(PackageError::NotFound("Package file"))?;
        return if kind.of(&file.digests) == claimed {
            Ok(HttpResponse::NoContent().finish())
        } else {
            Err(PackageError::Conflict(format!(
                "the {} of {} does not match the stored file",
                kind.extension(),
                path.file_name
            )))
        };
    }
    let limit = state.realms.max_package_size;
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit) {
        return Err(PackageError::TooLarge(format!(
            "the file exceeds the limit of {limit} bytes"
        )));
    }
    let staged = blobs::receive(state.blobs.as_ref(), payload, limit).await?;
    let taken = {
        let file = path.file_name.clone();
        move || {
            PackageError::Conflict(format!(
                "{file} is already stored with other content; a release is never replaced"
            ))
        }
    };
    let mode = if path.replaceable() {
        PublishMode::ReplaceFile
    } else {
        // The same bytes again (a retried deploy) change nothing; the staged copy goes.
        match stored_file(&state, project_id, &path).await? {
            Some(f) if f.digests.sha256 == staged.digests.sha256 => return Ok(stored()),
            Some(_) => return Err(taken()),
            None => PublishMode::NewFile,
        }
    };
    let sha256 = staged.digests.sha256.clone();
    let upload = Upload {
        format: FORMAT,
        name: path.package_name(),
        version: path.stored_version().to_string(),
        file_name: path.file_name.clone(),
        metadata: None,
        tags: Vec::new(),
    };
    let published = super::publish(&state, principal, project, staged, upload, mode, || {
        PackageError::Conflict(String::new())
    })
    .await;
    match published {
        Ok(()) => Ok(stored()),
        // A concurrent deploy of the same release file got in first: fine if it was
        // these bytes.
        Err(PackageError::Conflict(_)) => match stored_file(&state, project_id, &path).await? {
            Some(f) if f.digests.sha256 == sha256 => Ok(stored()),
            _ => Err(taken()),
        },
        Err(e) => Err(e),
    }
}

/// The project's stored file that `path` names.
async fn stored_file(
    state: &web::Data<AppState>,
    project_id: i64,
    path: &MavenPath,
) -> Result<Option<PackageFile>, PackageError> {
    let (name, version, file) = (
        path.package_name(),
        path.stored_version().to_string(),
        path.file_name.clone(),
    );
    state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<Option<PackageFile>, PackageError> {
            Ok(s.store
                .version_file(project_id, FORMAT, &name, &version, &file)?
                .map(|(_, f)| f))
        })
        .await
}

fn stored() -> HttpResponse {
    HttpResponse::Created().json(json!({ "message": "201 Created" }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::package::maven::METADATA;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn artifact_metadata_lists_versions_in_upload_order() {
        let xml = artifact_metadata(
            "com.example",
            "my-app",
            &[
                ("1.0", at("2026-12-03T10:00:00Z")),
                ("1.1", at("2026-12-03T11:00:00Z")),
                ("2.0-SNAPSHOT", at("2026-12-03T12:45:30Z")),
                ("1.0", at("2026-12-03T09:00:00Z")),
            ],
        )
        .expect("versions");
        assert!(xml.contains("<groupId>com.example</groupId>"), "{xml}");
        assert!(xml.contains("<artifactId>my-app</artifactId>"), "{xml}");
        assert!(xml.contains("<latest>2.0-SNAPSHOT</latest>"), "{xml}");
        assert!(xml.contains("<release>1.1</release>"), "{xml}");
        assert_eq!(xml.matches("<version>1.0</version>").count(), 1, "{xml}");
        let order: Vec<usize> = ["1.0<", "1.1<", "2.0-SNAPSHOT<"]
            .iter()
            .map(|v| xml.find(&format!("<version>{v}")).expect("listed"))
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{xml}");
        assert!(
            xml.contains("<lastUpdated>20261203124530</lastUpdated>"),
            "{xml}"
        );
        assert_eq!(artifact_metadata("g", "a", &[]), None);
        let only_snapshots =
            artifact_metadata("g", "a", &[("1-SNAPSHOT", at("2026-12-03T10:00:00Z"))])
                .expect("one");
        assert!(!only_snapshots.contains("<release>"), "{only_snapshots}");
    }

    #[test]
    fn snapshot_metadata_names_the_newest_build_s_files() {
        let xml = snapshot_metadata(
            "com.example",
            "my-app",
            "1.0-SNAPSHOT",
            &[
                "my-app-1.0-20261203.100000-1.jar",
                "my-app-1.0-20261203.100000-1.pom",
                "my-app-1.0-20261203.110000-2.jar",
                "my-app-1.0-20261203.110000-2-sources.jar",
                "my-app-1.0-20261203.110000-2.pom",
                "my-app-1.0-SNAPSHOT.jar",
            ],
        )
        .expect("timestamped");
        assert!(
            xml.contains("<timestamp>20261203.110000</timestamp>"),
            "{xml}"
        );
        assert!(xml.contains("<buildNumber>2</buildNumber>"), "{xml}");
        assert!(xml.contains("<version>1.0-SNAPSHOT</version>"), "{xml}");
        assert_eq!(xml.matches("<snapshotVersion>").count(), 3, "{xml}");
        assert_eq!(
            xml.matches("<value>1.0-20261203.110000-2</value>").count(),
            3
        );
        assert!(xml.contains("<classifier>sources</classifier>"), "{xml}");
        assert!(!xml.contains("-1</value>"), "{xml}");
        assert!(
            xml.contains("<lastUpdated>20261203110000</lastUpdated>"),
            "{xml}"
        );
        assert_eq!(
            snapshot_metadata("g", "a", "1-SNAPSHOT", &["a-1-SNAPSHOT.jar"]),
            None
        );
    }

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("a-1.jar"), "application/java-archive");
        assert_eq!(content_type("a-1.pom"), "text/xml");
        assert_eq!(content_type(METADATA), "text/xml");
        assert_eq!(content_type("a-1.zip"), "application/octet-stream");
    }
}
