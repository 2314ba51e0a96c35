//! Recognising git URLs: `/<project path>[.git]/<endpoint>`.
//!
//! Parsed by hand rather than with actix route patterns: a project path has any number of
//! segments, and the endpoint is found at the end of the URL, which actix's `{tail:.*}`
//! matching cannot express for `/a/b/info/refs` versus `/a/b.git/info/refs` without
//! ambiguity. Everything that is not exactly a git URL is `None` and ends as the usual 404.

use crate::domain::path::NamespacePath;

/// A Git LFS object id: SHA-256 as 64 lowercase hex digits. Validated, so it is safe as a
/// file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Oid(String);

impl Oid {
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = raw.len() == 64
            && raw
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        ok.then(|| Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The git and LFS endpoints wvs-auth serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET info/refs?service=…`
    InfoRefs,
    /// `POST git-upload-pack`
    UploadPack,
    /// `POST git-receive-pack` (always refused for deploy tokens)
    ReceivePack,
    /// `POST info/lfs/objects/batch`
    LfsBatch,
    /// `GET` (download) or `PUT` (upload) `info/lfs/objects/<oid>`
    LfsObject(Oid),
}

impl Endpoint {
    /// A short name for logs; for the git endpoints also the path below the repository
    /// that `git http-backend` expects in `PATH_INFO`.
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::InfoRefs => "info/refs",
            Endpoint::UploadPack => "git-upload-pack",
            Endpoint::ReceivePack => "git-receive-pack",
            Endpoint::LfsBatch => "lfs-batch",
            Endpoint::LfsObject(_) => "lfs-object",
        }
    }

    /// The endpoint as a route pattern, the `route` label of the metrics: the repository
    /// and the oid stay out of it.
    pub fn route_label(&self) -> &'static str {
        match self {
            Endpoint::InfoRefs => "/{repository}.git/info/refs",
            Endpoint::UploadPack => "/{repository}.git/git-upload-pack",
            Endpoint::ReceivePack => "/{repository}.git/git-receive-pack",
            Endpoint::LfsBatch => "/{repository}.git/info/lfs/objects/batch",
            Endpoint::LfsObject(_) => "/{repository}.git/info/lfs/objects/{oid}",
        }
    }

    pub fn is_lfs(&self) -> bool {
        matches!(self, Endpoint::LfsBatch | Endpoint::LfsObject(_))
    }

    /// Does the endpoint answer `method`? Only LFS objects answer two (download, upload).
    pub fn accepts(&self, method: &str) -> bool {
        method == self.method() || (matches!(self, Endpoint::LfsObject(_)) && method == "PUT")
    }

    /// The HTTP method the endpoint answers (for LFS objects, the download's).
    pub fn method(&self) -> &'static str {
        match self {
            Endpoint::InfoRefs | Endpoint::LfsObject(_) => "GET",
            Endpoint::UploadPack | Endpoint::ReceivePack | Endpoint::LfsBatch => "POST",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitRoute {
    /// The project path (`acme/app`), without `.git`.
    pub repo: NamespacePath,
    pub endpoint: Endpoint,
}

const LFS_OBJECTS: &str = "/info/lfs/objects/";

/// Parses a raw (not percent-decoded) URL path. A percent sign, `..`, a doubled slash or any
/// other character outside project paths fails [`NamespacePath`] validation, so nothing
/// that reaches the filesystem was not validated here.
pub fn parse(path: &str) -> Option<GitRoute> {
    let (repo, endpoint) = if let Some(repo) = path.strip_suffix("/info/refs") {
        (repo, Endpoint::InfoRefs)
    } else if let Some(repo) = path.strip_suffix("/git-upload-pack") {
        (repo, Endpoint::UploadPack)
    } else if let Some(repo) = path.strip_suffix("/git-receive-pack") {
        (repo, Endpoint::ReceivePack)
    } else if let Some(repo) = path.strip_suffix("/info/lfs/objects/batch") {
        (repo, Endpoint::LfsBatch)
    } else {
        let at = path.rfind(LFS_OBJECTS)?;
        let oid = Oid::parse(&path[at + LFS_OBJECTS.len()..])?;
        (&path[..at], Endpoint::LfsObject(oid))
    };
    let repo = repo.strip_prefix('/')?;
    let repo = repo.strip_suffix(".git").unwrap_or(repo);
    let parsed = NamespacePath::parse(repo).ok()?;
    // `parse` trims slashes; the URL must already be in canonical form.
    (parsed.as_str() == repo).then_some(GitRoute {
        repo: parsed,
        endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn route(path: &str) -> Option<(String, Endpoint)> {
        parse(path).map(|r| (r.repo.to_string(), r.endpoint))
    }

    const OID: &str = "4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393";

    #[test]
    fn recognises_git_and_lfs_urls_with_and_without_dot_git() {
        let app = |e| Some(("acme/app".to_string(), e));
        assert_eq!(route("/acme/app.git/info/refs"), app(Endpoint::InfoRefs));
        assert_eq!(route("/acme/app/info/refs"), app(Endpoint::InfoRefs));
        assert_eq!(
            route("/acme/app.git/git-upload-pack"),
            app(Endpoint::UploadPack)
        );
        assert_eq!(
            route("/acme/app/git-receive-pack"),
            app(Endpoint::ReceivePack)
        );
        assert_eq!(
            route("/acme/app.git/info/lfs/objects/batch"),
            app(Endpoint::LfsBatch)
        );
        assert_eq!(
            route(&format!("/acme/app.git/info/lfs/objects/{OID}")),
            app(Endpoint::LfsObject(Oid::parse(OID).expect("oid")))
        );
        assert_eq!(
            route("/a/b/c/d.git/info/refs").map(|r| r.0),
            Some("a/b/c/d".into())
        );
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "/info/refs",
            "/.git/info/refs",
            "acme/app/info/refs",
            "//acme/app/info/refs",
            "/acme//app/info/refs",
            "/acme/app/../x/info/refs",
            "/acme/%61pp/info/refs",
            "/Acme/app/info/refs",
            "/acme/app.git.git/info/refs",
            "/acme/app.git/info/refs/",
            "/acme/app.git/objects/info/packs",
            "/acme/app.git/HEAD",
            "/acme/app.git/info/lfs/objects/abc",
            "/acme/app.git/info/lfs/objects/",
            "/acme/app.git/info/lfs/objects/batch/x",
            "/jwt/auth",
            "/-/health",
            "/-/x/info/refs",
        ] {
            assert_eq!(route(bad), None, "{bad:?} accepted");
        }
        assert_eq!(
            route(&format!("/a/info/lfs/objects/{}", OID.to_uppercase())),
            None
        );
    }

    proptest! {
        #[test]
        fn never_panics(raw in "[/a-z0-9.%_-]{0,120}(/info/refs|/git-upload-pack|/info/lfs/objects/[0-9a-f]{0,70})?") {
            let _ = parse(&raw);
        }

        #[test]
        fn never_panics_on_any_text(raw in ".{0,200}") {
            let _ = parse(&raw);
        }
    }
}
