//! Git smart HTTP and Git LFS on wvs-auth's listener (SPEC §2, §6).
//!
//! Every URL no other route claims comes here; what is not a git URL is the usual JSON 404.
//! A request is authenticated exactly as at `/jwt/auth` (same Basic parsing, same
//! `authenticate`, same throttle), decided by `domain::git_access`, and only then handed to
//! `git http-backend` or the LFS code. One log line per request, like the token endpoint:
//! client IP, username (never the secret), repository, endpoint, status, latency.

use super::client::{client_ip, loggable_username};
use super::login::{login, LoginError};
use std::time::Instant;

use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chrono::Utc;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::basic::parse_basic;
use super::error::ApiError;
use super::limits::MAX_BODY_BYTES;
use super::AppState;
use crate::domain::git_access::{git_access, GitAccess, GitOperation};
use crate::domain::namespace::Project;
use crate::domain::path::NamespacePath;
use crate::domain::principal::Principal;
use crate::git::http_backend::{self, CgiRequest};
use crate::git::lfs::{self, Lookup, Operation};
use crate::git::route::{self, Endpoint, GitRoute, Oid};
use crate::git::{link, GitError, Surface};

/// Entry point: the default service of the app. The logged latency is the time to the
/// response headers; a streamed pack goes on after it.
pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let Some(route) = route::parse(req.uri().path()) else {
        return ApiError::NotFound("no such route".into()).error_response();
    };
    let started = Instant::now();
    let surface = if route.endpoint.is_lfs() {
        Surface::Lfs
    } else {
        Surface::Git
    };
    let peer = client_ip(&req, &state.trusted_proxies);
    let mut ctx = Ctx {
        req: &req,
        state: &state,
        peer,
        ip: peer.map(|ip| ip.to_string()).unwrap_or_default(),
        user: String::new(),
    };
    let response = if req.method().as_str() != route.endpoint.method() {
        GitError::MethodNotAllowed.render(surface)
    } else {
        match handle(&mut ctx, &route, payload).await {
            Ok(response) => response,
            Err(e) => {
                if let GitError::Unavailable = e {
                    log::error!("git {} {}: unavailable", route.repo, route.endpoint.name());
                }
                e.render(surface)
            }
        }
    };
    log::info!(
        "git ip={} user={:?} repo={} endpoint={} status={} latency_us={}",
        ctx.ip,
        ctx.user,
        route.repo,
        route.endpoint.name(),
        response.status().as_u16(),
        started.elapsed().as_micros()
    );
    response
}

/// What every step of one request needs.
struct Ctx<'a> {
    req: &'a HttpRequest,
    state: &'a AppState,
    /// The client (behind trusted proxies, the forwarded address), for throttling.
    peer: Option<std::net::IpAddr>,
    ip: String,
    /// The presented username, for the log line.
    user: String,
}

async fn handle(
    ctx: &mut Ctx<'_>,
    route: &GitRoute,
    payload: web::Payload,
) -> Result<HttpResponse, GitError> {
    match &route.endpoint {
        Endpoint::InfoRefs => {
            let service = query_service(ctx.req)?;
            let op = match service.as_str() {
                "git-upload-pack" => GitOperation::Read,
                "git-receive-pack" => GitOperation::Write,
                _ => {
                    return Err(GitError::BadRequest(
                        "only the smart HTTP protocol is served: use git 1.6.6 or later".into(),
                    ))
                }
            };
            let (principal, project) = authorize(ctx, &route.repo, op)?;
            // Only upload-pack gets this far today (deploy tokens never write); should a
            // writer ever be allowed, the repository's `http.receivepack false` still stops
            // receive-pack in the backend until that is made deliberate.
            let query = format!("service={service}");
            backend(ctx, &principal, &project, route, query, None).await
        }
        Endpoint::UploadPack => {
            let (principal, project) = authorize(ctx, &route.repo, GitOperation::Read)?;
            backend(
                ctx,
                &principal,
                &project,
                route,
                String::new(),
                Some(payload),
            )
            .await
        }
        Endpoint::ReceivePack => {
            // Refused for every deploy token (401 without credentials, so git asks).
            authorize(ctx, &route.repo, GitOperation::Write)?;
            Err(GitError::ReadOnly)
        }
        Endpoint::LfsBatch => lfs_batch(ctx, route, payload).await,
        Endpoint::LfsObject(oid) => lfs_object(ctx, &route.repo, oid).await,
    }
}

/// `service` of `info/refs?service=…`.
fn query_service(req: &HttpRequest) -> Result<String, GitError> {
    let params: Vec<(String, String)> = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| GitError::BadRequest("query string is not valid URL encoding".into()))?;
    Ok(params
        .into_iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v)
        .unwrap_or_default())
}

/// Authenticates (if credentials came), looks the project up by its exact path and decides.
/// `Ok` carries an existing project the principal may use for `op`.
fn authorize(
    ctx: &mut Ctx<'_>,
    repo: &NamespacePath,
    op: GitOperation,
) -> Result<(Principal, Project), GitError> {
    let state = ctx.state;
    let credentials = match ctx.req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            Some(parse_basic(value.as_bytes()).map_err(|e| GitError::BadRequest(e.to_string()))?)
        }
    };
    if let Some(c) = &credentials {
        ctx.user = loggable_username(&c.username);
    }
    let principal = login(state, ctx.peer, credentials.as_ref(), None).map_err(|e| match e {
        LoginError::Throttled(secs) => GitError::Throttled(secs),
        LoginError::Unavailable => GitError::Unavailable,
        LoginError::Refused(reason) => {
            log::info!(
                "authentication failed ip={} user={:?}: {reason}",
                ctx.ip,
                ctx.user
            );
            GitError::Unauthorized
        }
    })?;
    let project = decide(state, &principal, repo, op)?;
    if let Principal::DeployToken(t) = &principal {
        state.usage.touch(t.id, Utc::now());
    }
    Ok((principal, project))
}

/// Project lookup and the access rule, shared by Basic-authenticated requests and LFS links.
fn decide(
    state: &AppState,
    principal: &Principal,
    repo: &NamespacePath,
    op: GitOperation,
) -> Result<Project, GitError> {
    let project = state.directory.project_by_path(repo).map_err(|e| {
        log::error!("project lookup failed: {e}");
        GitError::Unavailable
    })?;
    match git_access(principal, project.as_ref(), op) {
        // Allowed implies a project; the `ok_or` only avoids an unwrap.
        GitAccess::Allowed => project.ok_or(GitError::NotFound),
        GitAccess::CredentialsRequired => Err(GitError::Unauthorized),
        GitAccess::MissingScope if matches!(principal, Principal::User(_)) => {
            Err(GitError::PatScope)
        }
        GitAccess::MissingScope => Err(GitError::MissingScope),
        GitAccess::ReadOnly => Err(GitError::ReadOnly),
        GitAccess::NotFound => Err(GitError::NotFound),
        GitAccess::Forbidden => Err(GitError::PushForbidden),
    }
}

/// Hands an authorised smart-HTTP request to `git http-backend`, creating the project's
/// repository first if it predates git support.
async fn backend(
    ctx: &Ctx<'_>,
    principal: &Principal,
    project: &Project,
    route: &GitRoute,
    query: String,
    body: Option<web::Payload>,
) -> Result<HttpResponse, GitError> {
    let repos = ctx.state.repos.clone();
    let path = project.path.clone();
    let created = web::block(move || repos.ensure(&path))
        .await
        .map_err(|e| {
            log::error!("repository creation task failed: {e}");
            GitError::Unavailable
        })?
        .map_err(|e| {
            log::error!("cannot create repository of {}: {e}", project.path);
            GitError::Unavailable
        })?;
    if created {
        log::info!("created repository of {} on first use", project.path);
    }
    let header = |name: &str| {
        ctx.req
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let request = CgiRequest {
        path_info: format!("/{}.git/{}", project.path, route.endpoint.name()),
        method: route.endpoint.method(),
        query,
        content_type: header("content-type"),
        content_encoding: header("content-encoding").filter(|v| {
            v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b',' || c == b' ')
        }),
        git_protocol: header("git-protocol").filter(|v| http_backend::valid_git_protocol(v)),
        remote_user: principal.subject(),
        remote_addr: ctx.ip.clone(),
    };
    http_backend::run(&ctx.state.repos, request, body)
        .await
        .map_err(|e| {
            log::error!("git http-backend for {}: {e}", project.path);
            GitError::Unavailable
        })
}

/// `POST /<repo>.git/info/lfs/objects/batch`.
async fn lfs_batch(
    ctx: &mut Ctx<'_>,
    route: &GitRoute,
    payload: web::Payload,
) -> Result<HttpResponse, GitError> {
    let accept = ctx
        .req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    if !lfs::accepts_lfs(accept) {
        return Err(GitError::NotAcceptable);
    }
    let body = read_body(payload).await?;
    let (op, objects) = lfs::parse_batch(&body)?;
    let op = match op {
        Operation::Download => GitOperation::Read,
        Operation::Upload => GitOperation::Write,
    };
    let (principal, project) = authorize(ctx, &route.repo, op)?;

    // Links point back at the host the client used (behind a proxy, its `Forwarded` /
    // `X-Forwarded-Host`). A client can only misdirect its own links, which carry its own
    // credentials' worth of access anyway.
    let info = ctx.req.connection_info();
    let base = format!("{}://{}", info.scheme(), info.host());
    let token_id = match &principal {
        Principal::DeployToken(t) => Some(t.id),
        Principal::Anonymous | Principal::User(_) => None,
    };
    let now = Utc::now();
    let keys = ctx.state.issuer.keys.current();
    let mut answers = Vec::with_capacity(objects.len());
    for requested in objects {
        let lookup = match lfs::requested_oid(&requested) {
            None => None,
            Some(oid) => Some(match object_size(ctx.state, &project.path, &oid) {
                None => Lookup::Missing,
                Some(size) => {
                    let jwt = link::issue(
                        &keys.signer,
                        &principal.subject(),
                        token_id,
                        &project.path,
                        &oid,
                        now,
                    )
                    .map_err(|e| {
                        log::error!("signing an LFS link failed: {e}");
                        GitError::Unavailable
                    })?;
                    Lookup::Found {
                        size,
                        href: format!(
                            "{base}/{}.git/info/lfs/objects/{}",
                            project.path,
                            oid.as_str()
                        ),
                        auth: format!("{} {jwt}", link::SCHEME),
                    }
                }
            }),
        };
        answers.push(lfs::answer_object(requested, lookup));
    }
    let answer = lfs::BatchResponse {
        transfer: "basic",
        objects: answers,
        hash_algo: "sha256",
    };
    let body = serde_json::to_vec(&answer).map_err(|e| {
        log::error!("cannot encode LFS batch answer: {e}");
        GitError::Unavailable
    })?;
    Ok(HttpResponse::Ok().content_type(lfs::MEDIA_TYPE).body(body))
}

/// Size of a stored LFS object, if it is there.
fn object_size(state: &AppState, repo: &NamespacePath, oid: &Oid) -> Option<i64> {
    let meta = std::fs::metadata(state.repos.lfs_object(repo, oid)).ok()?;
    meta.is_file()
        .then(|| i64::try_from(meta.len()).ok())
        .flatten()
}

/// `GET /<repo>.git/info/lfs/objects/<oid>`: with the batch answer's signed link, or with
/// Basic credentials (or none, on a public project) like any other git request.
async fn lfs_object(
    ctx: &mut Ctx<'_>,
    repo: &NamespacePath,
    oid: &Oid,
) -> Result<HttpResponse, GitError> {
    let link_token = ctx
        .req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(link::SCHEME))
        .and_then(|v| v.strip_prefix(' '))
        .map(str::to_string);
    let project = match link_token {
        Some(jwt) => {
            let principal = link_principal(ctx, &jwt, repo, oid)?;
            decide(ctx.state, &principal, repo, GitOperation::Read)?
        }
        None => authorize(ctx, repo, GitOperation::Read)?.1,
    };
    let path = ctx.state.repos.lfs_object(&project.path, oid);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(GitError::ObjectNotFound),
        Err(e) => {
            log::error!("cannot open {}: {e}", path.display());
            return Err(GitError::Unavailable);
        }
    };
    let len = file
        .metadata()
        .await
        .map_err(|e| {
            log::error!("cannot stat {}: {e}", path.display());
            GitError::Unavailable
        })?
        .len();
    let stream = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = BytesMut::with_capacity(64 * 1024);
        match file.read_buf(&mut buf).await {
            Ok(0) => None,
            Ok(_) => Some((Ok::<Bytes, std::io::Error>(buf.freeze()), Some(file))),
            Err(e) => Some((Err(e), None)),
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .no_chunking(len)
        .streaming(stream))
}

/// The principal an LFS link speaks for, re-read from the store: a token revoked or expired
/// since the batch request no longer downloads anything.
fn link_principal(
    ctx: &mut Ctx<'_>,
    jwt: &str,
    repo: &NamespacePath,
    oid: &Oid,
) -> Result<Principal, GitError> {
    let now = Utc::now();
    let claims = link::verify(&ctx.state.issuer.keys.current().signer, jwt, repo, oid, now)
        .ok_or(GitError::Unauthorized)?;
    ctx.user = claims.sub.clone();
    let Some(id) = claims.tok else {
        return Ok(Principal::Anonymous);
    };
    let token = ctx
        .state
        .tokens
        .find_by_id(id)
        .map_err(|e| {
            log::error!("token lookup failed: {e}");
            GitError::Unavailable
        })?
        .filter(|t| t.is_active(now))
        .ok_or(GitError::Unauthorized)?;
    Ok(Principal::DeployToken(Box::new(token)))
}

/// A batch request body, at most [`MAX_BODY_BYTES`] (a 100-object batch is about 10 KiB).
async fn read_body(mut payload: web::Payload) -> Result<BytesMut, GitError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| GitError::BadRequest("could not read body".into()))?;
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(GitError::BadRequest(format!(
                "body exceeds {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
