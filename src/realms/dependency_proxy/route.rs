//! The `/v2/` paths wvs-auth answers in front of the pull-through cache.
//!
//! GitLab users' CI files pull `HOST/<group>/dependency_proxy/containers/<image>:<tag>`,
//! so docker asks `HOST/v2/<group>/dependency_proxy/containers/<image>/manifests/<tag>`
//! and `…/blobs/<digest>`. Only those and the `/v2/` base are routes; anything else under
//! `/v2/` is 404. Everything is validated before it becomes part of a URL to the cache.

use crate::domain::dependency_proxy::GitLabImage;

/// What a manifest or blob request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Manifest,
    Blob,
}

impl ObjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Manifest => "manifests",
            ObjectKind::Blob => "blobs",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/` (or `/v2`): the API version check `docker login` starts with.
    Base,
    /// A manifest (by tag or digest) or a blob (by digest) of a GitLab-style image.
    Object {
        image: GitLabImage,
        kind: ObjectKind,
        reference: String,
    },
}

/// Parses a raw (still percent-encoded) request path. `%` never validates, so encoded
/// slashes or dots cannot sneak past the checks.
pub fn parse(path: &str) -> Option<Route> {
    if path == "/v2" || path == "/v2/" {
        return Some(Route::Base);
    }
    let rest = path.strip_prefix("/v2/")?;
    let (rest, reference) = rest.rsplit_once('/')?;
    let (name, kind) = rest.rsplit_once('/')?;
    let kind = match kind {
        "manifests" if valid_tag(reference) || valid_digest(reference) => ObjectKind::Manifest,
        "blobs" if valid_digest(reference) => ObjectKind::Blob,
        _ => return None,
    };
    let image = GitLabImage::parse(name)?;
    Some(Route::Object {
        image,
        kind,
        reference: reference.to_string(),
    })
}

/// Is this a write-method path on a GitLab-style name (a push attempt)? Those are refused
/// with 403 rather than 404, so docker tells the user the proxy is read-only.
pub fn is_proxy_name_path(path: &str) -> bool {
    path.strip_prefix("/v2/")
        .is_some_and(|rest| rest.contains(crate::domain::dependency_proxy::MARKER))
}

/// distribution's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    matches!(b.first(), Some(&c) if word(c))
        && b.len() <= 128
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// OCI digest grammar: `algorithm:encoded`, algorithm `[a-z0-9]+([+._-][a-z0-9]+)*`,
/// encoded `[a-zA-Z0-9=_-]+` (at least 32 characters, as every registered algorithm has).
pub fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return false;
    };
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let sep = |c: u8| matches!(c, b'+' | b'.' | b'_' | b'-');
    let a = algorithm.as_bytes();
    let algorithm_ok = matches!((a.first(), a.last()), (Some(&f), Some(&l)) if alnum(f) && alnum(l))
        && a.iter().all(|&c| alnum(c) || sep(c))
        && !a.windows(2).any(|w| sep(w[0]) && sep(w[1]));
    let encoded_ok = (32..=256).contains(&encoded.len())
        && encoded
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'=' | b'_' | b'-'));
    algorithm_ok && encoded_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn object(path: &str) -> (String, String, ObjectKind, String) {
        match parse(path) {
            Some(Route::Object {
                image,
                kind,
                reference,
            }) => (
                image.group.to_string(),
                image.upstream_name(),
                kind,
                reference,
            ),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn base_and_objects() {
        assert_eq!(parse("/v2/"), Some(Route::Base));
        assert_eq!(parse("/v2"), Some(Route::Base));
        assert_eq!(
            object("/v2/acme/dependency_proxy/containers/alpine/manifests/3.19"),
            (
                "acme".into(),
                "library/alpine".into(),
                ObjectKind::Manifest,
                "3.19".into()
            )
        );
        assert_eq!(
            object(&format!(
                "/v2/acme/platform/dependency_proxy/containers/foo/bar/blobs/{DIGEST}"
            )),
            (
                "acme/platform".into(),
                "foo/bar".into(),
                ObjectKind::Blob,
                DIGEST.into()
            )
        );
        let (_, _, kind, reference) = object(&format!(
            "/v2/acme/dependency_proxy/containers/alpine/manifests/{DIGEST}"
        ));
        assert_eq!((kind, reference.as_str()), (ObjectKind::Manifest, DIGEST));
        // An image may itself be called `manifests`.
        let (_, name, _, _) =
            object("/v2/acme/dependency_proxy/containers/manifests/manifests/latest");
        assert_eq!(name, "library/manifests");
    }

    #[test]
    fn everything_else_is_not_a_route() {
        for bad in [
            "/v2/_catalog",
            "/v2/acme/app/manifests/latest",
            "/v2/acme/dependency_proxy/containers/alpine/tags/list",
            "/v2/acme/dependency_proxy/containers/alpine/blobs/uploads/",
            "/v2/acme/dependency_proxy/containers/alpine/blobs/latest",
            "/v2/acme/dependency_proxy/containers/alpine/manifests/",
            "/v2/acme/dependency_proxy/containers/alpine/manifests/..",
            "/v2/acme/dependency_proxy/containers/alpine/manifests/-x",
            "/v2/acme/dependency_proxy/containers/alp%69ne/manifests/latest",
            "/v2/acme/dependency_proxy/containers/../x/manifests/latest",
            "/v2/acme/dependency_proxy/containers/alpine/manifests/a%2f..",
            "/v3/acme/dependency_proxy/containers/alpine/manifests/latest",
            "/v2//dependency_proxy/containers/alpine/manifests/latest",
        ] {
            assert_eq!(parse(bad), None, "{bad:?} parsed");
        }
    }

    #[test]
    fn tags_and_digests() {
        assert!(valid_tag("latest") && valid_tag("3.19.1-r0") && valid_tag("_x"));
        assert!(!valid_tag("") && !valid_tag(".x") && !valid_tag("a/b") && !valid_tag("a:b"));
        assert!(!valid_tag(&"a".repeat(129)));
        assert!(valid_digest(DIGEST));
        assert!(valid_digest(&format!("sha512:{}", "ab".repeat(64))));
        for bad in [
            "sha256",
            "sha256:",
            "sha256:abc",
            ":0123456789abcdef0123456789abcdef",
            "SHA256:0123456789abcdef0123456789abcdef",
            "sha256:0123456789abcdef0123456789abcdef/..",
            "sha256:0123456789abcdef0123456789abcde%",
            "sha__256:0123456789abcdef0123456789abcdef",
        ] {
            assert!(!valid_digest(bad), "{bad:?} accepted");
        }
    }

    #[test]
    fn write_paths_are_recognised() {
        assert!(is_proxy_name_path(
            "/v2/acme/dependency_proxy/containers/alpine/blobs/uploads/"
        ));
        assert!(!is_proxy_name_path("/v2/acme/app/blobs/uploads/"));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(raw in "/v2/.{0,200}") {
                let _ = parse(&raw);
            }

            /// Whatever is routed names only characters that are safe in a URL path.
            #[test]
            fn routed_paths_are_url_safe(raw in "/v2/[a-z]{1,4}/dependency_proxy/containers/[a-z0-9/._%:-]{0,30}") {
                if let Some(Route::Object { image, reference, .. }) = parse(&raw) {
                    let url = format!("{}/{}", image.upstream_name(), reference);
                    prop_assert!(url.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
                    prop_assert!(!url.contains('%'));
                }
            }
        }
    }
}
