//! Group and project paths (`acme/platform/api`).
//!
//! A path is the identity of a namespace everywhere: in registry repository names, in git
//! URLs and in the CLI. Validating it in one place keeps shell and URL specials out of all of
//! them.

use std::fmt;

/// Longest full path, as in GitLab.
pub const MAX_PATH_LEN: usize = 255;
/// Deepest nesting of groups, as in GitLab.
pub const MAX_DEPTH: usize = 20;
/// Top-level names the HTTP surfaces use for themselves (`/v2/` of the Dependency Proxy,
/// `/jwt/auth`, `/api/v4/`): a group or project there would have its git URLs shadowed.
pub const RESERVED_TOP_LEVEL: [&str; 3] = ["api", "jwt", "v2"];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path is empty")]
    Empty,
    #[error("path is longer than {MAX_PATH_LEN} characters")]
    TooLong,
    #[error("path is nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("path segment {0:?} must match [a-z0-9]([a-z0-9._-]*[a-z0-9])?")]
    BadSegment(String),
    #[error("path segment {0:?} must not end in .git")]
    GitSuffix(String),
    #[error("{0:?} is reserved at the top level (it is one of wvs-auth's own URL prefixes)")]
    Reserved(String),
}

/// A validated, normalised namespace path: lowercase segments joined by `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespacePath(String);

impl NamespacePath {
    pub fn parse(raw: &str) -> Result<Self, PathError> {
        let trimmed = raw.trim_matches('/');
        if trimmed.is_empty() {
            return Err(PathError::Empty);
        }
        if trimmed.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        let segments: Vec<&str> = trimmed.split('/').collect();
        if segments.len() > MAX_DEPTH {
            return Err(PathError::TooDeep);
        }
        for seg in &segments {
            if !valid_segment(seg) {
                return Err(PathError::BadSegment((*seg).to_string()));
            }
            // `.git` is how the git realm recognises a repository URL.
            if seg.ends_with(".git") {
                return Err(PathError::GitSuffix((*seg).to_string()));
            }
        }
        if RESERVED_TOP_LEVEL.contains(&segments[0]) {
            return Err(PathError::Reserved(segments[0].to_string()));
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The enclosing group's path, `None` at top level.
    pub fn parent(&self) -> Option<NamespacePath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| NamespacePath(parent.to_string()))
    }

    /// True when `self` is `other` or lies below it (`acme/app` is within `acme`).
    pub fn is_within(&self, other: &NamespacePath) -> bool {
        self.0 == other.0
            || (self.0.len() > other.0.len()
                && self.0.starts_with(&other.0)
                && self.0.as_bytes()[other.0.len()] == b'/')
    }
}

impl fmt::Display for NamespacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn valid_segment(seg: &str) -> bool {
    let b = seg.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let inner = |c: u8| edge(c) || c == b'.' || c == b'_' || c == b'-';
    match b {
        [] => false,
        [only] => edge(*only),
        [first, middle @ .., last] => {
            b.len() <= 255 && edge(*first) && edge(*last) && middle.iter().all(|c| inner(*c))
        }
    }
}

/// Every path-segment prefix of a repository name, longest first
/// (`acme/app/worker` → `acme/app/worker`, `acme/app`, `acme`). A repository belongs to the
/// project whose path is the longest of these.
pub fn segment_prefixes(name: &str) -> Vec<&str> {
    let mut out = vec![name];
    let mut rest = name;
    while let Some((head, _)) = rest.rsplit_once('/') {
        out.push(head);
        rest = head;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_paths() {
        let p = NamespacePath::parse("acme/platform/api").expect("valid");
        assert_eq!(p.parent().expect("parent").as_str(), "acme/platform");
        assert!(p.is_within(&NamespacePath::parse("acme").expect("valid")));
        assert!(!p.is_within(&NamespacePath::parse("acm").expect("valid")));
        assert!(!NamespacePath::parse("acme")
            .expect("valid")
            .is_within(&NamespacePath::parse("acme/platform").expect("valid")));
    }

    #[test]
    fn rejects_bad_paths() {
        for bad in [
            "", "/", "Acme", "a b", "-a", "a-", "a//b", "a/../b", "x.git", "a/$(id)", "v2",
            "v2/app", "api/x", "jwt",
        ] {
            assert!(NamespacePath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(
            NamespacePath::parse("acme/v2").is_ok(),
            "reserved only at the top level"
        );
        let deep = vec!["a"; MAX_DEPTH + 1].join("/");
        assert_eq!(NamespacePath::parse(&deep), Err(PathError::TooDeep));
        assert_eq!(
            NamespacePath::parse(&"a".repeat(256)),
            Err(PathError::TooLong)
        );
    }

    #[test]
    fn prefixes_longest_first() {
        assert_eq!(
            segment_prefixes("acme/app/worker"),
            vec!["acme/app/worker", "acme/app", "acme"]
        );
        assert_eq!(segment_prefixes("solo"), vec!["solo"]);
    }
}
