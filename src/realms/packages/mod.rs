//! The package realm (SPEC §6): generic packages, PyPI and npm at GitLab's paths, for deploy
//! tokens with `read_package_registry` / `write_package_registry` and for users by role.
//!
//! - [`generic`]: `PUT|GET P/packages/generic/:name/:version/:file`.
//! - [`pypi`]: twine's upload, the PEP 503 / PEP 691 simple index, files (P and G).
//! - [`npm`]: publish, packuments, tarballs, dist-tags, unpublish (P; reads at G and I).
//! - [`cargo`]: a sparse index and Cargo's web API per project (P only).
//! - [`maven`]: `mvn deploy` and resolution, checksums, `maven-metadata.xml` (P; reads at G and I).
//! - [`nuget`]: NuGet v3 (service index, flat container, registrations, search; P and G), push.
//!
//! Every request authenticates with policy `PACKAGES`, resolves the project (or the
//! projects below a group the caller may read) and asks `domain::package::package_access`;
//! uploads stream into the blob store (`store::blobs`) and are recorded by
//! `manage::PackageManager`. Writes happen only at project level.

pub mod cargo;
mod error;
mod generic;
mod maven;
pub mod npm;
mod nuget;
mod pypi;

use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use tokio::io::AsyncReadExt;

use crate::app::AppState;
use crate::auth::{AuthFailure, Policy};
use crate::domain::namespace::Project;
use crate::domain::package::{package_access, PackageAccess, PackageFile, PackageOperation};
use crate::domain::path::NamespacePath;
use crate::domain::principal::Principal;
use crate::domain::store::PublishMode;
use crate::manage::packages::Upload;
use crate::manage::ManageError;
use crate::metrics::http::count_body;
use crate::metrics::Served;
use crate::request::ids::NamespaceRef;
use crate::store::blobs::Staged;
pub use error::PackageError;

/// The format routes. They are registered before the management API's `/api/v4` scope;
/// `GET P/packages` and `P/packages/:id` (the Packages API) stay the API's.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v4/projects/{id}/packages/generic")
            .service(
                web::resource("/{name}/{version}/{file}")
                    .route(web::put().to(generic::upload))
                    .route(web::get().to(generic::download))
                    .default_service(web::to(method_not_allowed)),
            )
            .default_service(web::to(not_found)),
    )
    .service(
        web::scope("/api/v4/projects/{id}/packages/pypi")
            .service(
                web::resource("")
                    .route(web::post().to(pypi::upload))
                    .default_service(web::to(method_not_allowed)),
            )
            .configure(|c| pypi::read_routes(c, pypi::Level::Project)),
    )
    .service(
        web::scope("/api/v4/groups/{id}/-/packages/pypi")
            .configure(|c| pypi::read_routes(c, pypi::Level::Group)),
    )
    .service(
        web::scope("/api/v4/projects/{id}/packages/npm")
            .app_data(npm::Level::Project)
            .default_service(web::to(npm::dispatch)),
    )
    .service(
        web::scope("/api/v4/groups/{id}/-/packages/npm")
            .app_data(npm::Level::Group)
            .default_service(web::to(npm::dispatch)),
    )
    .service(
        web::scope("/api/v4/packages/npm")
            .app_data(npm::Level::Instance)
            .default_service(web::to(npm::dispatch)),
    )
    .configure(cargo::configure)
    .configure(maven::configure)
    .configure(nuget::configure);
}

async fn not_found() -> Result<HttpResponse, PackageError> {
    Err(PackageError::NotFound("Route"))
}

async fn method_not_allowed() -> Result<HttpResponse, PackageError> {
    Err(PackageError::MethodNotAllowed)
}

/// The principal behind the request, by the package routes' policy. Credentials that
/// cannot be read count as invalid ones: 401 with a challenge.
async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Principal, PackageError> {
    authenticate_with(req, state, &Policy::PACKAGES).await
}

/// The same by another policy of the package rules (Cargo's, which reads its raw token).
async fn authenticate_with(
    req: &HttpRequest,
    state: &AppState,
    policy: &'static Policy,
) -> Result<Principal, PackageError> {
    let attempt = state.auth.attempt(req, policy);
    state.auth.check(&attempt, None).await.map_err(|e| match e {
        AuthFailure::Throttled(secs) => PackageError::Throttled(secs),
        AuthFailure::Unavailable => PackageError::Unavailable,
        AuthFailure::Refused(reason) => {
            if crate::request::refusals::log_refusal(attempt.client.ip) {
                log::info!(
                    "package authentication refused ip={} user={:?}: {reason}",
                    attempt.client.ip_text(),
                    attempt.client.user
                );
            }
            PackageError::Unauthorized
        }
        AuthFailure::Malformed(_)
        | AuthFailure::CredentialsRequired
        | AuthFailure::InsufficientScope => PackageError::Unauthorized,
    })
}

/// The raw `{id}` segment of the route (a numeric id or an encoded full path).
fn namespace_ref(req: &HttpRequest) -> Option<NamespaceRef> {
    req.match_info().get("id").and_then(NamespaceRef::parse)
}

/// The project `{id}` names, if `principal` may do `op` with its packages.
async fn project(
    req: &HttpRequest,
    state: &web::Data<AppState>,
    principal: &Principal,
    op: PackageOperation,
) -> Result<Project, PackageError> {
    let lookup = namespace_ref(req);
    let found = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<Option<Project>, PackageError> {
            Ok(match lookup {
                Some(NamespaceRef::Id(id)) => s.store.project_by_id(id)?,
                Some(NamespaceRef::Path(p)) => match NamespacePath::parse(&p) {
                    Ok(path) => s.store.project_by_path(&path)?,
                    Err(_) => None,
                },
                None => None,
            })
        })
        .await?;
    match package_access(principal, found.as_ref(), op) {
        PackageAccess::Allowed => found.ok_or(PackageError::NotFound("Project")),
        PackageAccess::CredentialsRequired => Err(PackageError::Unauthorized),
        PackageAccess::Forbidden => Err(PackageError::Forbidden),
        PackageAccess::NotFound => Err(PackageError::NotFound("Project")),
    }
}

/// The projects at or below `group` whose packages `principal` may read (resolved now, so
/// a project created later is covered). An anonymous caller who may read none is asked to
/// authenticate; anyone else simply finds nothing.
async fn readable_below(
    state: &web::Data<AppState>,
    principal: &Principal,
    group: Option<NamespacePath>,
) -> Result<Vec<Project>, PackageError> {
    let principal_for = principal.clone();
    let projects = state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<Vec<Project>, PackageError> {
            let Some(group) = group else {
                return Ok(Vec::new());
            };
            Ok(s.store
                .list_projects()?
                .into_iter()
                .filter(|p| p.path.is_within(&group))
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

/// Records a verified upload through the manager, on the blocking pool. `taken` words the
/// refusal of a name the format does not let be reused.
async fn publish(
    state: &web::Data<AppState>,
    principal: Principal,
    project: Project,
    staged: Staged,
    upload: Upload,
    mode: PublishMode,
    taken: impl FnOnce() -> PackageError + Send + 'static,
) -> Result<(), PackageError> {
    state
        .clone()
        .into_inner()
        .on_pool(move |s| {
            s.manage
                .packages
                .publish(&principal, &project, staged, upload, mode)
                .map(|_| ())
                .map_err(|e| match e {
                    ManageError::Conflict(_) => taken(),
                    other => error::manage_error(other),
                })
        })
        .await
}

/// The group `{id}` names (by id or path), if there is one.
async fn group_path(
    req: &HttpRequest,
    state: &web::Data<AppState>,
) -> Result<Option<NamespacePath>, PackageError> {
    let lookup = namespace_ref(req);
    state
        .clone()
        .into_inner()
        .on_pool(move |s| -> Result<Option<NamespacePath>, PackageError> {
            Ok(match lookup {
                Some(NamespaceRef::Id(id)) => s.store.group_by_id(id)?.map(|g| g.path),
                Some(NamespaceRef::Path(p)) => match NamespacePath::parse(&p) {
                    Ok(path) => s.store.group_by_path(&path)?.map(|g| g.path),
                    Err(_) => None,
                },
                None => None,
            })
        })
        .await
}

/// A stored file as the answer, streamed from the blob store with its length; the headers
/// every format's clients check (`X-Checksum-SHA256`, an ETag of the digest).
async fn stream_file(
    state: &web::Data<AppState>,
    file: &PackageFile,
    content_type: &str,
) -> Result<HttpResponse, PackageError> {
    let blobs = state.blobs.clone();
    let sha = file.digests.sha256.clone();
    let opened = state
        .reads
        .pool()
        .storage(move || blobs.open(&sha))
        .await?
        .map_err(|e| {
            log::error!("cannot open package blob: {e}");
            PackageError::Unavailable
        })?;
    let Some(opened) = opened else {
        log::error!(
            "package file {} names blob {} which is missing",
            file.id,
            file.digests.sha256
        );
        return Err(PackageError::NotFound("Package file"));
    };
    let len = u64::try_from(file.size).unwrap_or_default();
    let stream =
        futures_util::stream::unfold(Some(tokio::fs::File::from_std(opened)), |f| async move {
            let mut f = f?;
            let mut buf = BytesMut::with_capacity(256 * 1024);
            match f.read_buf(&mut buf).await {
                Ok(0) => None,
                Ok(_) => Some((Ok::<Bytes, std::io::Error>(buf.freeze()), Some(f))),
                Err(e) => Some((Err(e), None)),
            }
        });
    let response = HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("X-Checksum-SHA256", file.digests.sha256.clone()))
        .insert_header((header::ETAG, format!("\"{}\"", file.digests.sha256)))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}\"", file.file_name),
        ))
        .no_chunking(len)
        .streaming(stream);
    Ok(count_body(response, state.metrics.served(Served::Package)))
}

/// `scheme://host` as the client addressed wvs-auth (honouring `X-Forwarded-*`), or
/// `--public-url`: links in indexes point back at it.
fn base_url(req: &HttpRequest, state: &AppState) -> String {
    if let Some(public) = &state.realms.public_url {
        return public.clone();
    }
    let info = req.connection_info();
    format!("{}://{}", info.scheme(), info.host())
}

/// The request path up to and including `marker` (`/packages/npm`), as the client sent it:
/// links keep the prefix the client authenticated against.
fn prefix_of<'a>(req: &'a HttpRequest, marker: &str) -> Option<&'a str> {
    let path = req.uri().path();
    path.find(marker).map(|at| &path[..at + marker.len()])
}
