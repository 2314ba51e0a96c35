//! PyPI: `twine upload --repository-url P/packages/pypi` and `pip install --index-url
//! P|G/packages/pypi/simple` (PACKAGE-NOTES §1, §2).
//!
//! The upload is twine's `multipart/form-data` (`:action=file_upload`, `name`, `version`,
//! `requires_python`, `sha256_digest`, …, and the file as `content`), streamed into the
//! blob store. The index is PEP 503 HTML with `#sha256=` fragments, or PEP 691 JSON when
//! the client prefers it; names are PEP 503-normalised. File links are absolute paths
//! under the prefix the client used (project or group), so pip sends them its credentials.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use super::{
    authenticate, group_path, not_found, prefix_of, project, publish, readable_below, stream_file,
    PackageError,
};
use crate::app::AppState;
use crate::domain::package::{
    pep503_normalize, validate_file_name, validate_pypi_name, validate_version, PackageFormat,
    PackageOperation,
};
use crate::domain::store::PublishMode;
use crate::manage::packages::Upload;
use crate::store::blobs;

const FORMAT: PackageFormat = PackageFormat::Pypi;
/// A form field other than the file: twine's are a few hundred bytes (the description may
/// be longer, but stays far below this).
const FIELD_LIMIT: usize = 256 * 1024;
const JSON_TYPE: &str = "application/vnd.pypi.simple.v1+json";

/// Which endpoint serves the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Project,
    Group,
}

pub fn read_routes(cfg: &mut web::ServiceConfig, level: Level) {
    cfg.app_data(level)
        .route("/simple", web::get().to(index))
        .route("/simple/", web::get().to(index))
        .route("/simple/{name}", web::get().to(project_page))
        .route("/simple/{name}/", web::get().to(project_page))
        .route("/files/{sha256}/{file}", web::get().to(file))
        .default_service(web::to(not_found));
}

fn level(req: &HttpRequest) -> Level {
    req.app_data::<Level>().copied().unwrap_or(Level::Project)
}

/// The ids of the projects this request reads: the project, or every readable one below
/// the group.
async fn projects(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<Vec<i64>, PackageError> {
    let principal = authenticate(req, state).await?;
    match level(req) {
        Level::Project => Ok(vec![
            project(req, state, &principal, PackageOperation::Read)
                .await?
                .id,
        ]),
        Level::Group => {
            let group = group_path(req, state).await?;
            if group.is_none()
                && !matches!(principal, crate::domain::principal::Principal::Anonymous)
            {
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

/// Does the client prefer PEP 691 JSON over HTML (by `Accept` and its q-values)?
fn wants_json(req: &HttpRequest) -> bool {
    let Some(accept) = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut json_q = 0.0_f32;
    let mut html_q = 0.0_f32;
    for part in accept.split(',') {
        let mut pieces = part.split(';').map(str::trim);
        let media = pieces.next().unwrap_or_default().to_ascii_lowercase();
        let q = pieces
            .find_map(|p| p.strip_prefix("q="))
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        match media.as_str() {
            JSON_TYPE => json_q = json_q.max(q),
            "application/vnd.pypi.simple.v1+html" | "text/html" | "*/*" => html_q = html_q.max(q),
            _ => {}
        }
    }
    json_q > 0.0 && json_q >= html_q
}

/// Text for an HTML attribute or element.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET …/simple/`: every project name of the index.
pub async fn index(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let ids = projects(&req, &state).await?;
    let names = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<Vec<String>, PackageError> {
            Ok(s.store.package_names(&ids, FORMAT)?)
        })
        .await?;
    if wants_json(&req) {
        let projects: Vec<_> = names.iter().map(|n| json!({ "name": n })).collect();
        return Ok(HttpResponse::Ok()
            .content_type(JSON_TYPE)
            .json(json!({ "meta": { "api-version": "1.0" }, "projects": projects })));
    }
    let mut html = String::from(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">\
         <title>Simple index</title></head><body>\n",
    );
    for name in &names {
        html.push_str(&format!("<a href=\"{name}/\">{name}</a><br/>\n"));
    }
    html.push_str("</body></html>\n");
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// `GET …/simple/:name/`: the files of every version, newest last.
pub async fn project_page(
    req: HttpRequest,
    name: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let normalized = pep503_normalize(&name.1);
    validate_pypi_name(&normalized).map_err(|e| PackageError::BadRequest(e.to_string()))?;
    let ids = projects(&req, &state).await?;
    let wanted = normalized.clone();
    let versions = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<_, PackageError> {
            Ok(s.store.versions_of(&ids, FORMAT, &wanted)?)
        })
        .await?;
    if versions.is_empty() {
        return Err(PackageError::NotFound("Package"));
    }
    let prefix = prefix_of(&req, "/packages/pypi").unwrap_or("/packages/pypi");
    let mut files = Vec::new();
    for (package, package_files) in &versions {
        let requires_python = package
            .metadata
            .as_deref()
            .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
            .and_then(|m| m["requires_python"].as_str().map(str::to_string))
            .filter(|r| !r.is_empty());
        for f in package_files {
            let url = format!("{prefix}/files/{}/{}", f.digests.sha256, f.file_name);
            files.push((f, url, requires_python.clone()));
        }
    }
    if wants_json(&req) {
        let files: Vec<_> = files
            .iter()
            .map(|(f, url, requires)| {
                let mut entry = json!({
                    "filename": f.file_name,
                    "url": url,
                    "hashes": { "sha256": f.digests.sha256 },
                    "size": f.size,
                    "upload-time": f.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                });
                if let Some(r) = requires {
                    entry["requires-python"] = json!(r);
                }
                entry
            })
            .collect();
        return Ok(HttpResponse::Ok().content_type(JSON_TYPE).json(json!({
            "meta": { "api-version": "1.0" },
            "name": normalized,
            "files": files,
        })));
    }
    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">\
         <title>Links for {normalized}</title></head><body>\n<h1>Links for {normalized}</h1>\n"
    );
    for (f, url, requires) in &files {
        let requires = requires
            .as_deref()
            .map(|r| format!(" data-requires-python=\"{}\"", escape(r)))
            .unwrap_or_default();
        html.push_str(&format!(
            "<a href=\"{url}#sha256={}\"{requires}>{}</a><br/>\n",
            f.digests.sha256, f.file_name
        ));
    }
    html.push_str("</body></html>\n");
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// `GET …/files/:sha256/:file`.
pub async fn file(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let (_, sha256, file_name) = path.into_inner();
    validate_file_name(&file_name).map_err(|e| PackageError::BadRequest(e.to_string()))?;
    let ids = projects(&req, &state).await?;
    let found = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<_, PackageError> {
            Ok(s.store.file_by_digest(&ids, FORMAT, &sha256, &file_name)?)
        })
        .await?;
    let (_, file) = found.ok_or(PackageError::NotFound("Package"))?;
    stream_file(&state, &file, "application/octet-stream").await
}

/// The text fields of an upload, as twine names them.
#[derive(Default)]
struct Form {
    action: Option<String>,
    name: Option<String>,
    version: Option<String>,
    requires_python: Option<String>,
    summary: Option<String>,
    sha256_digest: Option<String>,
    md5_digest: Option<String>,
}

/// `POST P/packages/pypi`: twine's upload. The same file twice is 400, as on PyPI.
pub async fn upload(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let principal = authenticate(&req, &state).await?;
    let project = project(&req, &state, &principal, PackageOperation::Publish).await?;
    let limit = state.realms.max_package_size;
    let bad = |m: String| PackageError::BadRequest(m);
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut form = Form::default();
    let mut content = None;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| bad(format!("malformed multipart body: {e}")))?;
        let name = field.name().unwrap_or_default().to_string();
        if name == "content" {
            if content.is_some() {
                return Err(bad("more than one file in the upload".into()));
            }
            let file_name = field
                .content_disposition()
                .and_then(|cd| cd.get_filename())
                .unwrap_or_default()
                .to_string();
            validate_file_name(&file_name).map_err(|e| bad(e.to_string()))?;
            let staged = blobs::receive(state.blobs.as_ref(), &mut field, limit).await?;
            content = Some((file_name, staged));
            continue;
        }
        let value = match field.bytes(FIELD_LIMIT).await {
            Ok(Ok(bytes)) => String::from_utf8(bytes.to_vec())
                .map_err(|_| bad(format!("field {name} is not UTF-8")))?,
            Ok(Err(e)) => return Err(bad(format!("malformed multipart body: {e}"))),
            Err(_) => return Err(bad(format!("field {name} is too large"))),
        };
        let slot = match name.as_str() {
            ":action" => &mut form.action,
            "name" => &mut form.name,
            "version" => &mut form.version,
            "requires_python" => &mut form.requires_python,
            "summary" => &mut form.summary,
            "sha256_digest" => &mut form.sha256_digest,
            "md5_digest" => &mut form.md5_digest,
            _ => continue,
        };
        *slot = Some(value);
    }
    if form.action.as_deref().is_some_and(|a| a != "file_upload") {
        return Err(bad("only :action=file_upload is supported".into()));
    }
    let (file_name, staged) = content.ok_or_else(|| bad("the upload has no content".into()))?;
    let name = form.name.unwrap_or_default();
    let version = form.version.unwrap_or_default();
    validate_pypi_name(&name).map_err(|e| bad(e.to_string()))?;
    validate_version(&version).map_err(|e| bad(e.to_string()))?;
    for (claimed, actual, what) in [
        (&form.sha256_digest, &staged.digests.sha256, "sha256_digest"),
        (&form.md5_digest, &staged.digests.md5, "md5_digest"),
    ] {
        if let Some(claimed) = claimed.as_deref().filter(|c| !c.is_empty()) {
            if !claimed.eq_ignore_ascii_case(actual) {
                return Err(bad(format!("{what} does not match the uploaded file")));
            }
        }
    }
    let metadata = json!({
        "requires_python": form.requires_python.unwrap_or_default(),
        "summary": form.summary.unwrap_or_default(),
    })
    .to_string();
    let upload = Upload {
        format: FORMAT,
        name,
        version,
        file_name,
        metadata: Some(metadata),
        tags: Vec::new(),
    };
    publish(
        &state,
        principal,
        project,
        staged,
        upload,
        PublishMode::NewFile,
        || {
            PackageError::BadRequest(
                "400 File already exists: a release file cannot be uploaded twice".into(),
            )
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({ "message": "201 Created" })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn pip_gets_json_a_browser_html() {
        let pip = TestRequest::default()
            .insert_header((
                header::ACCEPT,
                "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.1, text/html;q=0.01",
            ))
            .to_http_request();
        assert!(wants_json(&pip));
        let old_pip = TestRequest::default()
            .insert_header((header::ACCEPT, "text/html"))
            .to_http_request();
        assert!(!wants_json(&old_pip));
        assert!(!wants_json(&TestRequest::default().to_http_request()));
        let html_first = TestRequest::default()
            .insert_header((
                header::ACCEPT,
                "text/html, application/vnd.pypi.simple.v1+json;q=0.5",
            ))
            .to_http_request();
        assert!(!wants_json(&html_first));
    }

    #[test]
    fn attributes_are_escaped() {
        assert_eq!(escape(">=3.8,<4"), "&gt;=3.8,&lt;4");
        assert_eq!(escape("\"&"), "&quot;&amp;");
    }
}
