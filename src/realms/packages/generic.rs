//! Generic packages: `PUT|GET P/packages/generic/:name/:version/:file` with a raw body, as
//! curl and CI scripts send them. The same file again replaces it; GET answers the bytes
//! with `X-Checksum-SHA256`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{authenticate, project, publish, stream_file, PackageError};
use crate::app::AppState;
use crate::domain::package::{validate_generic, PackageFormat, PackageOperation};
use crate::domain::store::PublishMode;
use crate::manage::packages::Upload;
use crate::store::blobs;

type Coordinates = web::Path<(String, String, String, String)>;

/// The name, version and file of the route, validated before anything else happens.
fn coordinates(path: &Coordinates) -> Result<(String, String, String), PackageError> {
    let (_, name, version, file) = path.as_ref();
    validate_generic(name, version, file).map_err(|e| PackageError::BadRequest(e.to_string()))?;
    Ok((name.clone(), version.clone(), file.clone()))
}

pub async fn upload(
    req: HttpRequest,
    path: Coordinates,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let (name, version, file_name) = coordinates(&path)?;
    let principal = authenticate(&req, &state).await?;
    let project = project(&req, &state, &principal, PackageOperation::Publish).await?;
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
    let new = Upload {
        format: PackageFormat::Generic,
        name,
        version,
        file_name,
        metadata: None,
        tags: Vec::new(),
    };
    // Replacing is allowed, so a name is never "taken".
    publish(
        &state,
        principal,
        project,
        staged,
        new,
        PublishMode::ReplaceFile,
        || PackageError::Unavailable,
    )
    .await?;
    Ok(HttpResponse::Created().json(json!({ "message": "201 Created" })))
}

pub async fn download(
    req: HttpRequest,
    path: Coordinates,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PackageError> {
    let (name, version, file_name) = coordinates(&path)?;
    let principal = authenticate(&req, &state).await?;
    let project = project(&req, &state, &principal, PackageOperation::Read).await?;
    let found = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<_, PackageError> {
            Ok(s.store.version_file(
                project.id,
                PackageFormat::Generic,
                &name,
                &version,
                &file_name,
            )?)
        })
        .await?;
    let (_, file) = found.ok_or(PackageError::NotFound("Package"))?;
    stream_file(&state, &file, "application/octet-stream").await
}
