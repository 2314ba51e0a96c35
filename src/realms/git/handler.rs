//! Git smart HTTP and Git LFS on wvs-auth's listener (SPEC §2, §6).
//!
//! Every URL no other route claims comes here; what is not a git URL is the usual JSON 404.
//! A request is authenticated by the one authentication step (`auth`, policy `GIT`: the
//! same Basic parsing, throttle and audit as `/jwt/auth`), decided by
//! `domain::git_access`, and only then handed to `git http-backend` or the LFS code. One
//! log line per request, like the token endpoint: client IP, username (never the secret),
//! repository, endpoint, status, latency.

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::header;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use chrono::Utc;
use tokio::io::AsyncReadExt;

use super::http_backend::{self, CgiRequest, Stdin};
use super::lfs::{self, Lookup, Operation};
use super::link::{Link, LinkAction, LinkClaims};
use super::route::{self, Endpoint, GitRoute, Oid};
use super::{link, upload, GitError, Repositories, Surface};
use crate::app::AppState;
use crate::auth::{AuthFailure, Policy};
use crate::blocking::Signer;
use crate::domain::authn::{reload_user, AuthnError};
use crate::domain::git_access::{git_access, GitAccess, GitOperation};
use crate::domain::namespace::Project;
use crate::domain::path::NamespacePath;
use crate::domain::principal::Principal;
use crate::domain::store::StoreError;
use crate::keys::LoadedKeys;
use crate::logging::AccessLine;
use crate::metrics::{self, Limit, Served};
use crate::request::body::read_bounded;
use crate::request::error::ApiError;
use crate::request::limits::MAX_BODY_BYTES;
use crate::request::refusals;

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
    metrics::http::label_route(&req, route.endpoint.route_label());
    let started = Instant::now();
    let surface = if route.endpoint.is_lfs() {
        Surface::Lfs
    } else {
        Surface::Git
    };
    let peer = state.auth.client_ip(&req);
    let mut ctx = Ctx {
        req: &req,
        state: &state,
        repos: Repositories::new(&state.realms.data_dir),
        ip: peer.map(|ip| ip.to_string()).unwrap_or_default(),
        peer,
        user: String::new(),
    };
    let response = if !route.endpoint.accepts(req.method().as_str()) {
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
    if !response.status().is_client_error() || refusals::log_refusal(peer) {
        AccessLine::new("git")
            .bare("ip", &ctx.ip)
            .quoted("user", &ctx.user)
            .bare("repo", &route.repo)
            .bare("endpoint", route.endpoint.name())
            .number("status", u64::from(response.status().as_u16()))
            .number("latency_us", started.elapsed().as_micros() as u64)
            .emit();
    }
    response
}

/// What every step of one request needs.
struct Ctx<'a> {
    req: &'a HttpRequest,
    state: &'a AppState,
    repos: Repositories,
    /// The client (behind trusted proxies, the forwarded address), for the log.
    ip: String,
    peer: Option<std::net::IpAddr>,
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
            let (principal, project) = authorize(ctx, &route.repo, op).await?;
            // The receive-pack advertisement needs receive-pack enabled too; `op` was
            // authorised above, so this is a decided push.
            let query = format!("service={service}");
            let push = op == GitOperation::Write;
            backend(ctx, &principal, &project, route, query, None, push).await
        }
        Endpoint::UploadPack | Endpoint::ReceivePack => {
            // Receive-pack: developers and up (SPEC §2, issue 6); deploy tokens are
            // read-only, anonymous callers get 401 so git asks for credentials.
            let push = route.endpoint == Endpoint::ReceivePack;
            let op = if push {
                GitOperation::Write
            } else {
                GitOperation::Read
            };
            let (principal, project) = authorize(ctx, &route.repo, op).await?;
            backend(
                ctx,
                &principal,
                &project,
                route,
                String::new(),
                Some(payload),
                push,
            )
            .await
        }
        Endpoint::LfsBatch => lfs_batch(ctx, route, payload).await,
        Endpoint::LfsObject(oid) if ctx.req.method() == actix_web::http::Method::PUT => {
            lfs_upload(ctx, &route.repo, oid, payload).await
        }
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
async fn authorize(
    ctx: &mut Ctx<'_>,
    repo: &NamespacePath,
    op: GitOperation,
) -> Result<(Principal, Project), GitError> {
    let state = ctx.state;
    let attempt = state.auth.attempt(ctx.req, &Policy::GIT);
    ctx.user = attempt.client.user.clone();
    let principal = state
        .auth
        .check(&attempt, None)
        .await
        .map_err(|e| match e {
            AuthFailure::Malformed(e) => GitError::BadRequest(e.to_string()),
            AuthFailure::Throttled(secs) => GitError::Throttled(secs),
            AuthFailure::Unavailable => GitError::Unavailable,
            AuthFailure::Refused(reason) => {
                if refusals::log_refusal(ctx.peer) {
                    log::info!(
                        "authentication failed ip={} user={:?}: {reason}",
                        ctx.ip,
                        ctx.user
                    );
                }
                GitError::Unauthorized
            }
            AuthFailure::CredentialsRequired | AuthFailure::InsufficientScope => {
                GitError::Unauthorized
            }
        })?;
    decide(state, principal, repo, op).await
}

/// Project lookup and the access rule, shared by Basic-authenticated requests and LFS links.
async fn decide(
    state: &AppState,
    principal: Principal,
    repo: &NamespacePath,
    op: GitOperation,
) -> Result<(Principal, Project), GitError> {
    let path = repo.clone();
    let project = state
        .reads
        .blocking(move |reads| reads.project_by_path(&path))
        .await
        .map_err(|e: StoreError| {
            log::error!("project lookup failed: {e}");
            GitError::Unavailable
        })?;
    let allowed = match git_access(&principal, project.as_ref(), op) {
        // Allowed implies a project; the `ok_or` only avoids an unwrap.
        GitAccess::Allowed => project.ok_or(GitError::NotFound),
        GitAccess::CredentialsRequired => Err(GitError::Unauthorized),
        GitAccess::MissingScope if matches!(&principal, Principal::User(_)) => {
            Err(GitError::PatScope)
        }
        GitAccess::MissingScope => Err(GitError::MissingScope),
        GitAccess::ReadOnly => Err(GitError::ReadOnly),
        GitAccess::NotFound => Err(GitError::NotFound),
        GitAccess::Forbidden => Err(GitError::PushForbidden),
    }?;
    Ok((principal, allowed))
}

/// Makes the project's bare repository if it predates git support (off the async workers:
/// it runs `git init`). Shared by smart HTTP and LFS uploads.
async fn ensure_repository(ctx: &Ctx<'_>, project: &Project) -> Result<(), GitError> {
    let repos = ctx.repos.clone();
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
    Ok(())
}

/// Hands an authorised smart-HTTP request to `git http-backend`, creating the project's
/// repository first if it predates git support. `push` only when a push was authorised.
async fn backend(
    ctx: &Ctx<'_>,
    principal: &Principal,
    project: &Project,
    route: &GitRoute,
    query: String,
    body: Option<web::Payload>,
    push: bool,
) -> Result<HttpResponse, GitError> {
    ensure_repository(ctx, project).await?;
    let header = |name: &str| {
        ctx.req
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let mut content_encoding = header("content-encoding").filter(|v| {
        v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b',' || c == b' ')
    });
    // An upload-pack request (any client, anonymous ones on public projects) is received in
    // full before git starts, so a stalled body never holds a git process; its gzip is
    // inflated here under the cap. A push streams (developers only; it may be gigabytes).
    let stdin = match body {
        None => Stdin::None,
        Some(payload) if !push => {
            let gzip = content_encoding.as_deref().is_some_and(|e| {
                e.eq_ignore_ascii_case("gzip") || e.eq_ignore_ascii_case("x-gzip")
            });
            let spooled = http_backend::spool(
                payload,
                gzip,
                http_backend::MAX_REQUEST_BODY,
                ctx.repos.root(),
            )
            .await
            .map_err(|e| match e {
                http_backend::SpoolError::Io(e) => {
                    log::error!("cannot spool a git request: {e}");
                    GitError::Unavailable
                }
                other => GitError::BadRequest(other.to_string()),
            })?;
            if gzip {
                content_encoding = None;
            }
            Stdin::Spooled(spooled)
        }
        Some(payload) => Stdin::Stream(payload),
    };
    let slot = tokio::time::timeout(
        GIT_SLOT_WAIT,
        ctx.state.realms.git_processes.clone().acquire_owned(),
    )
    .await
    .map_err(|_| {
        ctx.state.metrics.throttled(Limit::GitProcesses);
        GitError::Busy
    })?
    .map_err(|_| GitError::Unavailable)?;
    let request = CgiRequest {
        path_info: format!("/{}.git/{}", project.path, route.endpoint.name()),
        method: route.endpoint.method(),
        query,
        content_type: header("content-type"),
        content_encoding,
        git_protocol: header("git-protocol").filter(|v| http_backend::valid_git_protocol(v)),
        remote_user: principal.subject(),
        remote_addr: ctx.ip.clone(),
        allow_push: push,
    };
    let response = http_backend::run(&ctx.repos, request, stdin, slot)
        .await
        .map_err(|e| {
            log::error!("git http-backend for {}: {e}", project.path);
            GitError::Unavailable
        })?;
    Ok(metrics::http::count_body(
        response,
        ctx.state.metrics.served(Served::Git),
    ))
}

/// How long a git request waits for one of the bounded process slots before it is told to
/// come back (503 with `Retry-After`).
const GIT_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

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
    let body = read_bounded(payload, MAX_BODY_BYTES)
        .await
        .map_err(|e| GitError::BadRequest(e.to_string()))?;
    let (op, objects) = lfs::parse_batch(&body)?;
    let op = match op {
        Operation::Download => GitOperation::Read,
        Operation::Upload => GitOperation::Write,
    };
    let (principal, project) = authorize(ctx, &route.repo, op).await?;
    if matches!(principal, Principal::Anonymous) && objects.len() > lfs::MAX_ANONYMOUS_OBJECTS {
        return Err(GitError::BadRequest(format!(
            "anonymous batch requests are limited to {} objects; authenticate for more",
            lfs::MAX_ANONYMOUS_OBJECTS
        )));
    }

    // Links point back at the host the client used (behind a proxy, its `Forwarded` /
    // `X-Forwarded-Host`). A client can only misdirect its own links, which carry its own
    // credentials' worth of access anyway.
    let base = {
        let info = ctx.req.connection_info();
        format!("{}://{}", info.scheme(), info.host())
    };
    let signer = match principal {
        Principal::Anonymous => Signer::Anonymous,
        _ => Signer::Authenticated,
    };
    let batch = BatchJob {
        base,
        keys: ctx.state.keys.live.current(),
        repos: ctx.repos.clone(),
        principal,
        project: project.path.clone(),
        op,
        objects,
    };
    let answers = ctx
        .state
        .reads
        .pool()
        .signing(signer, move || batch.answer())
        .await
        .map_err(|e| {
            log::error!("an LFS batch did not finish: {e}");
            GitError::Unavailable
        })??;
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

/// An LFS batch to answer off the async workers: a stat and, for most objects, a signature
/// each (see [`crate::blocking::BlockingPool::signing`]).
struct BatchJob {
    base: String,
    keys: Arc<LoadedKeys>,
    repos: Repositories,
    principal: Principal,
    project: NamespacePath,
    op: GitOperation,
    objects: Vec<lfs::RequestObject>,
}

impl BatchJob {
    fn answer(self) -> Result<Vec<lfs::ResponseObject>, GitError> {
        let BatchJob {
            base,
            keys,
            repos,
            principal,
            project,
            op,
            objects,
        } = self;
        let now = Utc::now();
        let sign = |action, oid: &Oid, size| {
            let jwt = link::issue(
                &keys.signer,
                &Link {
                    action,
                    principal: &principal,
                    repo: &project,
                    oid,
                    size,
                },
                now,
            )
            .map_err(|e| {
                log::error!("signing an LFS link failed: {e}");
                GitError::Unavailable
            })?;
            let href = format!("{}/{}.git/info/lfs/objects/{}", base, project, oid.as_str());
            Ok::<_, GitError>((href, format!("{} {jwt}", link::SCHEME)))
        };
        let mut answers = Vec::with_capacity(objects.len());
        for requested in objects {
            let lookup = match lfs::requested_oid(&requested) {
                None => None,
                Some(oid) => {
                    let stored = object_size(&repos, &project, &oid);
                    Some(match (op, stored) {
                        (GitOperation::Read, None) => Lookup::Missing,
                        (GitOperation::Read, Some(size)) => {
                            let (href, auth) = sign(LinkAction::Download, &oid, None)?;
                            Lookup::Found { size, href, auth }
                        }
                        (GitOperation::Write, Some(size)) if size == requested.size => {
                            Lookup::Present
                        }
                        (GitOperation::Write, _) if requested.size > upload::MAX_OBJECT_BYTES => {
                            Lookup::TooLarge
                        }
                        (GitOperation::Write, _) => {
                            let (href, auth) =
                                sign(LinkAction::Upload, &oid, Some(requested.size))?;
                            Lookup::Upload { href, auth }
                        }
                    })
                }
            };
            answers.push(lfs::answer_object(requested, lookup));
        }
        Ok(answers)
    }
}

/// Size of a stored LFS object, if it is there.
fn object_size(repos: &Repositories, repo: &NamespacePath, oid: &Oid) -> Option<i64> {
    let meta = std::fs::metadata(repos.lfs_object(repo, oid)).ok()?;
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
    let project = match link_token(ctx.req) {
        Some(jwt) => {
            let (principal, _) = link_principal(ctx, &jwt, LinkAction::Download, repo, oid).await?;
            decide(ctx.state, principal, repo, GitOperation::Read)
                .await?
                .1
        }
        None => authorize(ctx, repo, GitOperation::Read).await?.1,
    };
    let path = ctx.repos.lfs_object(&project.path, oid);
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
    let response = HttpResponse::Ok()
        .content_type("application/octet-stream")
        .no_chunking(len)
        .streaming(stream);
    Ok(metrics::http::count_body(
        response,
        ctx.state.metrics.served(Served::Lfs),
    ))
}

/// `PUT /<repo>.git/info/lfs/objects/<oid>`: with the batch answer's signed upload link
/// (which fixes the size), or with Basic credentials and a `Content-Length`. Developers and
/// up only, like a push; the body must hash to the oid ([`upload::store`]).
async fn lfs_upload(
    ctx: &mut Ctx<'_>,
    repo: &NamespacePath,
    oid: &Oid,
    payload: web::Payload,
) -> Result<HttpResponse, GitError> {
    let content_length = ctx
        .req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (project, size) = match link_token(ctx.req) {
        Some(jwt) => {
            let (principal, claims) =
                link_principal(ctx, &jwt, LinkAction::Upload, repo, oid).await?;
            let project = decide(ctx.state, principal, repo, GitOperation::Write)
                .await?
                .1;
            let size = claims
                .size
                .and_then(|s| u64::try_from(s).ok())
                .ok_or(GitError::Unauthorized)?;
            (project, size)
        }
        None => {
            let project = authorize(ctx, repo, GitOperation::Write).await?.1;
            let size = content_length
                .ok_or_else(|| GitError::BadRequest("an upload needs a Content-Length".into()))?;
            (project, size)
        }
    };
    if content_length.is_some_and(|len| len != size) {
        return Err(GitError::BadRequest(format!(
            "Content-Length differs from the announced size {size}"
        )));
    }
    if size > upload::MAX_OBJECT_BYTES as u64 {
        return Err(GitError::BadRequest(format!(
            "objects are limited to {} bytes",
            upload::MAX_OBJECT_BYTES
        )));
    }
    ensure_repository(ctx, &project).await?;
    upload::store(&ctx.repos, &project.path, oid, size, payload)
        .await
        .map_err(|e| {
            if e.is_client_error() {
                GitError::BadRequest(e.to_string())
            } else {
                log::error!("LFS upload to {}: {e}", project.path);
                GitError::Unavailable
            }
        })?;
    log::info!(
        "stored LFS object {} ({size} bytes) in {}",
        oid.as_str(),
        project.path
    );
    Ok(HttpResponse::Ok().finish())
}

/// The `RemoteAuth` link token of a transfer request, if it carries one.
fn link_token(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(link::SCHEME))
        .and_then(|v| v.strip_prefix(' '))
        .map(str::to_string)
}

/// The principal an LFS link speaks for, re-read from the store: a deploy token or PAT
/// revoked or expired since the batch request, or a user who lost the membership, no
/// longer transfers anything.
async fn link_principal(
    ctx: &mut Ctx<'_>,
    jwt: &str,
    action: LinkAction,
    repo: &NamespacePath,
    oid: &Oid,
) -> Result<(Principal, LinkClaims), GitError> {
    let now = Utc::now();
    let claims = link::verify(&ctx.state.keys.verifier, jwt, action, repo, oid, now)
        .ok_or(GitError::Unauthorized)?;
    ctx.user = claims.sub.clone();
    let (tok, usr, pat) = (claims.tok, claims.usr, claims.pat);
    let found = ctx
        .state
        .reads
        .blocking(move |reads| match (tok, usr) {
            (Some(id), _) => Ok(reads
                .find_by_id(id)?
                .filter(|t| t.is_active(now))
                .map(|t| Principal::DeployToken(Box::new(t)))),
            (None, Some(user)) => match reload_user(reads, user, pat, now) {
                Ok(user) => Ok(Some(Principal::User(Box::new(user)))),
                Err(AuthnError::Store(e)) => Err(e),
                Err(e) => {
                    log::info!("LFS link refused: {e}");
                    Ok(None)
                }
            },
            (None, None) => Ok(Some(Principal::Anonymous)),
        })
        .await
        .map_err(|e: StoreError| {
            log::error!("credential lookup failed: {e}");
            GitError::Unavailable
        })?;
    let principal = found.ok_or(GitError::Unauthorized)?;
    Ok((principal, claims))
}
