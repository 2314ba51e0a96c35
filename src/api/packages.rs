//! The Packages API: `GET /projects/:id/packages` and `GET|DELETE
//! /projects/:id/packages/:package_id`, in GitLab's shapes, for users' personal access
//! tokens (reporters read, maintainers delete; the package manager decides).

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Serialize;

use super::auth::authenticate;
use super::error::{manage_error, GitlabError};
use super::namespace::Target;
use super::on_pool;
use crate::app::AppState;
use crate::domain::package::{Package, PackageFile};
use crate::domain::principal::Principal;
use crate::request::ids::parse_token_id;

/// GitLab's package entity (with the total size of its files besides).
#[derive(Debug, Serialize)]
pub struct PackageEntity {
    id: i64,
    name: String,
    version: String,
    package_type: &'static str,
    status: &'static str,
    created_at: String,
    /// Bytes of all its files.
    size: i64,
    files: Vec<PackageFileEntity>,
}

#[derive(Debug, Serialize)]
struct PackageFileEntity {
    id: i64,
    file_name: String,
    size: i64,
    file_md5: String,
    file_sha1: String,
    file_sha256: String,
    created_at: String,
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl PackageEntity {
    fn of((package, files): (Package, Vec<PackageFile>)) -> Self {
        Self {
            id: package.id,
            name: package.name,
            version: package.version,
            package_type: package.format.as_str(),
            status: "default",
            created_at: time(package.created_at),
            size: files.iter().map(|f| f.size).sum(),
            files: files
                .into_iter()
                .map(|f| PackageFileEntity {
                    id: f.id,
                    file_name: f.file_name,
                    size: f.size,
                    file_md5: f.digests.md5,
                    file_sha1: f.digests.sha1,
                    file_sha256: f.digests.sha256,
                    created_at: time(f.created_at),
                })
                .collect(),
        }
    }
}

fn package_id(req: &HttpRequest) -> Result<i64, GitlabError> {
    req.match_info()
        .get("package_id")
        .and_then(parse_token_id)
        .ok_or_else(|| GitlabError::BadRequest("package_id is invalid".into()))
}

/// `GET /projects/:id/packages`, newest first.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = Principal::User(Box::new(authenticate(&req, &state).await?));
    let target = Target::project_of(&req)?;
    let packages = on_pool(&state, move |s| {
        let project = target.project(&s.manage.tokens)?;
        s.manage
            .packages
            .list(&user, &project)
            .map_err(manage_error)
    })
    .await?;
    let body: Vec<PackageEntity> = packages.into_iter().map(PackageEntity::of).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// `GET /projects/:id/packages/:package_id`.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = Principal::User(Box::new(authenticate(&req, &state).await?));
    let target = Target::project_of(&req)?;
    let id = package_id(&req)?;
    let package = on_pool(&state, move |s| {
        let project = target.project(&s.manage.tokens)?;
        s.manage
            .packages
            .get(&user, &project, id)
            .map_err(manage_error)
    })
    .await?;
    Ok(HttpResponse::Ok().json(PackageEntity::of(package)))
}

/// `DELETE /projects/:id/packages/:package_id`: 204; its files are gone at once.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, GitlabError> {
    let user = Principal::User(Box::new(authenticate(&req, &state).await?));
    let target = Target::project_of(&req)?;
    let id = package_id(&req)?;
    on_pool(&state, move |s| {
        let project = target.project(&s.manage.tokens)?;
        s.manage
            .packages
            .delete_by_id(&user, &project, id)
            .map_err(manage_error)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
