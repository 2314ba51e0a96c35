//! The CGI bridge to `git http-backend`.
//!
//! Why http-backend rather than `git upload-pack --stateless-rpc` directly: it is git's own
//! implementation of the smart HTTP protocol, so the refs advertisement framing
//! (`# service=…` and the flush), protocol v2 (`GIT_PROTOCOL`), gzip-encoded request bodies
//! and the `Content-Type`/cache headers are exactly what git clients expect, version after
//! version, without wvs-auth re-implementing any of it. wvs-auth only decides who may ask
//! (before the backend runs) and moves bytes.
//!
//! Both directions stream: the request body is copied into the backend's stdin chunk by
//! chunk by a separate task, and its stdout becomes the response body chunk by chunk, with
//! actix's back-pressure in between. A 1 GB clone never sits in wvs-auth's memory.

use std::process::Stdio;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::HttpResponse;
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout};
use tokio::sync::OwnedSemaphorePermit;

use super::repo::Repositories;

/// Longest CGI header block accepted from the backend (it writes a few hundred bytes).
const MAX_CGI_HEADER: usize = 16 * 1024;
/// How long the backend may take to start answering. http-backend writes its headers before
/// upload-pack does any real work, so this bounds a hung or overloaded git, not a big clone.
const HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest request body streamed to upload-pack. Negotiation sends wants and haves, a few
/// hundred kilobytes for huge repositories; this only stops a client from feeding a
/// process without end.
pub const MAX_REQUEST_BODY: u64 = 64 * 1024 * 1024;
/// Largest request body streamed to receive-pack: the pack of one push. A push is the whole
/// history the server lacks, so it is legitimately large (a first push of a big
/// repository); 2 GiB is GitLab.com's documented push limit too. Only authorised developers
/// get here, and LFS content travels separately, so this bounds a mistake, not an attack.
pub const MAX_PUSH_BODY: u64 = 2 * 1024 * 1024 * 1024;
/// Chunk size of the response stream.
const CHUNK: usize = 64 * 1024;
/// Lines of backend stderr logged per request, so a broken git cannot flood the log.
const MAX_STDERR_LINES: usize = 20;

/// What the backend reads on stdin.
pub enum Stdin {
    None,
    /// An upload-pack request received in full (and inflated) before git starts, so a
    /// stalled client never holds a git process.
    Spooled(std::fs::File),
    /// A push, streamed as it arrives (it may be gigabytes; only developers get here).
    Stream(Payload),
}

/// Why a request body could not be spooled.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the request body exceeds {0} bytes (after inflating)")]
    TooLarge(u64),
    #[error("the request body stalled or was cut off")]
    Interrupted,
    #[error("the request body is not valid gzip")]
    BadGzip,
    #[error("cannot spool the request body: {0}")]
    Io(#[from] std::io::Error),
}

/// Receives a whole upload-pack request into an anonymous temporary file in `dir`,
/// inflating it when the client gzip'd it (git does so for large negotiations), and refuses
/// more than `limit` bytes of the *inflated* body: a few kilobytes of gzip cannot make git
/// chew on gigabytes.
pub async fn spool(
    mut payload: Payload,
    gzip: bool,
    limit: u64,
    dir: &std::path::Path,
) -> Result<std::fs::File, SpoolError> {
    use std::io::{Seek, Write};
    let file = tempfile::tempfile_in(dir)?;
    let mut out = tokio::fs::File::from_std(file.try_clone()?);
    let mut inflate = gzip.then(|| flate2::write::GzDecoder::new(Vec::new()));
    let mut total: u64 = 0;
    let emit = |bytes: Vec<u8>, total: &mut u64| -> Result<Vec<u8>, SpoolError> {
        *total += bytes.len() as u64;
        if *total > limit {
            return Err(SpoolError::TooLarge(limit));
        }
        Ok(bytes)
    };
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| SpoolError::Interrupted)?;
        let plain = match inflate.as_mut() {
            Some(decoder) => {
                decoder.write_all(&chunk).map_err(|_| SpoolError::BadGzip)?;
                std::mem::take(decoder.get_mut())
            }
            None => chunk.to_vec(),
        };
        let plain = emit(plain, &mut total)?;
        out.write_all(&plain).await?;
    }
    if let Some(decoder) = inflate {
        let rest = decoder.finish().map_err(|_| SpoolError::BadGzip)?;
        let rest = emit(rest, &mut total)?;
        out.write_all(&rest).await?;
    }
    out.flush().await?;
    drop(out);
    let mut file = file;
    file.rewind()?;
    // Nothing more is written; `Write` is only in scope for the decoder.
    let _ = file.flush();
    Ok(file)
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("cannot start git http-backend: {0}")]
    Spawn(std::io::Error),
    #[error("reading git http-backend output: {0}")]
    Read(std::io::Error),
    #[error("git http-backend sent no headers within {0:?}")]
    Timeout(Duration),
    #[error("git http-backend wrote a malformed CGI header block")]
    BadHeaders,
}

/// One CGI request: what `git http-backend` needs to know about the HTTP request.
pub struct CgiRequest {
    /// `/acme/app.git/info/refs`: always the canonical `.git` form.
    pub path_info: String,
    pub method: &'static str,
    /// Rebuilt by the caller from validated parts, never the client's raw query.
    pub query: String,
    pub content_type: Option<String>,
    /// http-backend inflates `gzip` bodies itself (git compresses large requests).
    pub content_encoding: Option<String>,
    /// The `Git-Protocol` header (`version=2`), already checked to be harmless.
    pub git_protocol: Option<String>,
    /// Deploy token or user name; empty for anonymous. receive-pack records it in reflogs.
    pub remote_user: String,
    pub remote_addr: String,
    /// Set only after wvs-auth authorised a push: turns `http.receivepack` on for this one
    /// process. Repositories keep `http.receivepack false` in their own config, so nothing
    /// but an authorised request can ever reach receive-pack.
    pub allow_push: bool,
}

/// Runs http-backend for `request`, streaming `body` (POST) into it, and returns a response
/// whose status and headers come from its CGI header block and whose body streams its
/// output.
pub async fn run(
    repos: &Repositories,
    request: CgiRequest,
    body: Stdin,
    slot: OwnedSemaphorePermit,
) -> Result<HttpResponse, BackendError> {
    let mut cmd = tokio::process::Command::new(repos.program());
    cmd.arg("http-backend")
        .env_clear()
        .envs(repos.env())
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", repos.root())
        // Access was decided by wvs-auth before this process started.
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", request.method)
        .env("PATH_INFO", &request.path_info)
        .env("QUERY_STRING", &request.query)
        .env("REMOTE_USER", &request.remote_user)
        .env("REMOTE_ADDR", &request.remote_addr)
        .stdin(match &body {
            Stdin::None => Stdio::null(),
            Stdin::Spooled(file) => Stdio::from(file.try_clone().map_err(BackendError::Spawn)?),
            Stdin::Stream(_) => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A client that goes away drops the response stream and with it the child: kill it
        // rather than let upload-pack finish a pack nobody reads. tokio reaps it.
        .kill_on_drop(true);
    if let Some(v) = &request.content_type {
        cmd.env("CONTENT_TYPE", v);
    }
    if let Some(v) = &request.content_encoding {
        cmd.env("HTTP_CONTENT_ENCODING", v);
    }
    if let Some(v) = &request.git_protocol {
        cmd.env("GIT_PROTOCOL", v);
    }
    let limit = if request.allow_push {
        // Command-scope config (`GIT_CONFIG_KEY_n`) outranks the repository's own
        // `http.receivepack false`.
        let (count, pairs) = repos.config_env(&[("http.receivepack", "true")]);
        cmd.envs(pairs).env("GIT_CONFIG_COUNT", count);
        MAX_PUSH_BODY
    } else {
        MAX_REQUEST_BODY
    };
    let mut child = cmd.spawn().map_err(BackendError::Spawn)?;

    if let (Stdin::Stream(payload), Some(stdin)) = (body, child.stdin.take()) {
        actix_web::rt::spawn(feed_stdin(payload, stdin, limit));
    }
    if let Some(stderr) = child.stderr.take() {
        let label = request.path_info.clone();
        actix_web::rt::spawn(log_stderr(stderr, label));
    }
    let Some(mut stdout) = child.stdout.take() else {
        return Err(BackendError::Read(std::io::Error::other("no stdout pipe")));
    };

    let (head, rest) = tokio::time::timeout(HEADER_TIMEOUT, read_head(&mut stdout))
        .await
        .map_err(|_| BackendError::Timeout(HEADER_TIMEOUT))??;
    let cgi = parse_head(&head).ok_or(BackendError::BadHeaders)?;

    let mut response = HttpResponse::build(cgi.status);
    for (name, value) in cgi.headers {
        response.append_header((name, value));
    }
    let body = Body {
        first: (!rest.is_empty()).then(|| rest.freeze()),
        stdout: Some(stdout),
        child: Some(child),
        path: request.path_info,
        _slot: slot,
    };
    Ok(response.streaming(futures_util::stream::unfold(body, Body::next)))
}

/// Copies the request body into the backend's stdin, then closes it (EOF ends the request
/// for upload-pack). Stops quietly if the backend exits early (broken pipe) or the body
/// grows past `limit` ([`MAX_REQUEST_BODY`], [`MAX_PUSH_BODY`]): the backend then sees a
/// truncated request and fails it.
async fn feed_stdin(mut payload: Payload, mut stdin: tokio::process::ChildStdin, limit: u64) {
    let mut total: u64 = 0;
    loop {
        let chunk = match payload.next().await {
            Some(Ok(chunk)) => chunk,
            None => break,
            Some(Err(_)) => {
                log::info!("git request body aborted or stalled by the client");
                return;
            }
        };
        total += chunk.len() as u64;
        if total > limit {
            log::warn!("git request body exceeds {limit} bytes; cut off");
            return;
        }
        if stdin.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = stdin.shutdown().await;
}

async fn log_stderr(stderr: tokio::process::ChildStderr, label: String) {
    let mut lines = BufReader::new(stderr).lines();
    let mut seen = 0;
    while let Ok(Some(line)) = lines.next_line().await {
        if seen < MAX_STDERR_LINES {
            log::warn!("git http-backend {label}: {line}");
        }
        seen += 1;
    }
}

/// Reads until the blank line that ends the CGI header block. Returns the block and
/// whatever body bytes arrived with it.
async fn read_head<R: AsyncRead + Unpin>(out: &mut R) -> Result<(Vec<u8>, BytesMut), BackendError> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if let Some((end, sep)) = header_end(&buf) {
            let head = buf.split_to(end).to_vec();
            let _ = buf.split_to(sep);
            return Ok((head, buf));
        }
        if buf.len() > MAX_CGI_HEADER {
            return Err(BackendError::BadHeaders);
        }
        let n = out.read_buf(&mut buf).await.map_err(BackendError::Read)?;
        if n == 0 {
            return Err(BackendError::BadHeaders);
        }
    }
}

/// Position and length of the first `\r\n\r\n` or `\n\n`.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

struct CgiHead {
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
}

/// Parses CGI response headers: `Status: 404 Not Found` sets the status (200 without it);
/// every other well-formed header is passed on. Hop-by-hop headers are dropped: actix frames
/// the body itself.
fn parse_head(head: &[u8]) -> Option<CgiHead> {
    let text = std::str::from_utf8(head).ok()?;
    let mut status = StatusCode::OK;
    let mut headers = Vec::new();
    for line in text.split('\n').map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next()?.parse::<u16>().ok()?;
            status = StatusCode::from_u16(code).ok()?;
            continue;
        }
        let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            continue;
        }
        headers.push((name, HeaderValue::from_str(value).ok()?));
    }
    Some(CgiHead { status, headers })
}

/// The response body: the bytes read with the headers, then stdout until EOF, then the
/// child is reaped and a failure logged.
struct Body {
    first: Option<Bytes>,
    stdout: Option<ChildStdout>,
    child: Option<Child>,
    path: String,
    /// One of the bounded git process slots, given back when the answer is done.
    _slot: OwnedSemaphorePermit,
}

impl Body {
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, Self)> {
        if let Some(first) = self.first.take() {
            return Some((Ok(first), self));
        }
        let stdout = self.stdout.as_mut()?;
        let mut buf = BytesMut::with_capacity(CHUNK);
        match stdout.read_buf(&mut buf).await {
            Ok(0) => {
                self.stdout = None;
                self.reap().await;
                None
            }
            Ok(_) => Some((Ok(buf.freeze()), self)),
            Err(e) => {
                self.stdout = None;
                Some((Err(e), self))
            }
        }
    }

    async fn reap(&mut self) {
        if let Some(mut child) = self.child.take() {
            match child.wait().await {
                Ok(status) if status.success() => {}
                Ok(status) => log::warn!("git http-backend {} exited with {status}", self.path),
                Err(e) => log::warn!("git http-backend {}: {e}", self.path),
            }
        }
    }
}

/// Is `value` a plausible `Git-Protocol` header (`version=2`, `version=2:key=value`)? It goes
/// into the backend's environment, so anything outside this small alphabet is dropped.
pub fn valid_git_protocol(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 256
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'=' | b':' | b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cgi_status_and_headers() {
        let head = b"Status: 403 Forbidden\r\nContent-Type: text/plain\r\nExpires: Fri, 01 Jan 1980 00:00:00 GMT\r\nContent-Length: 5";
        let cgi = parse_head(head).expect("valid");
        assert_eq!(cgi.status, StatusCode::FORBIDDEN);
        let names: Vec<_> = cgi.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, vec!["content-type", "expires"]);

        let cgi = parse_head(b"Content-Type: application/x-git-upload-pack-result").expect("ok");
        assert_eq!(cgi.status, StatusCode::OK);
        assert!(parse_head(b"no colon here").is_none());
        assert!(parse_head(b"Status: abc").is_none());
        assert!(parse_head(&[0xff, b':', b'x']).is_none());
    }

    #[test]
    fn finds_either_header_terminator() {
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), Some((4, 4)));
        assert_eq!(header_end(b"A: b\n\nbody"), Some((4, 2)));
        assert_eq!(header_end(b"A: b\r\n"), None);
    }

    #[actix_web::test]
    async fn reads_head_and_keeps_body_bytes() {
        let mut input: &[u8] = b"Content-Type: x\r\n\r\n0008NAK\n";
        let (head, rest) = read_head(&mut input).await.expect("head");
        assert_eq!(head, b"Content-Type: x");
        assert_eq!(&rest[..], b"0008NAK\n");
        let mut endless: &[u8] = &[b'a'; 40_000];
        assert!(read_head(&mut endless).await.is_err());
    }

    #[test]
    fn git_protocol_header_alphabet() {
        assert!(valid_git_protocol("version=2"));
        assert!(valid_git_protocol("version=2:object-format=sha256"));
        assert!(!valid_git_protocol(""));
        assert!(!valid_git_protocol("version=2\nX=1"));
        assert!(!valid_git_protocol("version=2; rm -rf"));
    }
}
