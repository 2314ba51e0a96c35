//! Who may pull through the Dependency Proxy (SPEC §2), and the names it is asked for.
//!
//! The proxy is a stock pull-through cache; wvs-auth only decides who may read it. The rule
//! is GitLab's: a **group** deploy token holding both `read_registry` and `write_registry`,
//! for a group with the proxy enabled, may pull; nobody ever pushes. Unlike the registry,
//! a principal outside the rule is refused outright (401/403) instead of getting an empty
//! token, so `docker login` to the proxy fails at once with a reason.

use super::deploy_token::{TokenOwner, TokenScope};
use super::path::NamespacePath;
use super::principal::Principal;
use super::scope::ResourceScope;

pub use super::access::PULL;

/// The path segments between the group and the image in GitLab-style names:
/// `acme/dependency_proxy/containers/alpine`.
pub const MARKER: &str = "/dependency_proxy/containers/";

/// Why a principal may not use the Dependency Proxy at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyRefusal {
    /// No credentials: the proxy never serves anonymous callers (401, so clients log in).
    #[error("the dependency proxy needs a group deploy token")]
    AuthenticationRequired,
    #[error("the dependency proxy needs a group deploy token, not a project deploy token")]
    ProjectToken,
    #[error("the dependency proxy needs a group deploy token, not a user's credentials")]
    NotADeployToken,
    #[error("the dependency proxy needs a group deploy token with both read_registry and write_registry")]
    MissingScopes,
    #[error("the dependency proxy is disabled for group {0}")]
    Disabled(NamespacePath),
}

/// The group whose setting decides, if the principal is a group deploy token with both
/// registry scopes. Both are required, as in GitLab: the proxy writes into its cache on the
/// token's behalf, so read-only tokens do not qualify.
pub fn proxy_group(principal: &Principal) -> Result<(i64, &NamespacePath), ProxyRefusal> {
    let token = match principal {
        Principal::Anonymous => return Err(ProxyRefusal::AuthenticationRequired),
        // SPEC §2: the proxy is for group deploy tokens only.
        Principal::User(_) => return Err(ProxyRefusal::NotADeployToken),
        Principal::DeployToken(t) => t,
    };
    let (id, path) = match &token.owner {
        TokenOwner::Project { .. } => return Err(ProxyRefusal::ProjectToken),
        TokenOwner::Group { id, path } => (*id, path),
    };
    if !(token.has(TokenScope::ReadRegistry) && token.has(TokenScope::WriteRegistry)) {
        return Err(ProxyRefusal::MissingScopes);
    }
    Ok((id, path))
}

/// The actions of `scope` granted to a qualifying token of `group`: `pull` and nothing
/// else, on repository scopes only. A GitLab-style name must lie in the token's group (or
/// below it), so one group's token cannot borrow another group's proxy path; plain names
/// (`library/alpine`, as the cache itself is asked) are the upstream's and open to any
/// qualifying token.
pub fn proxy_actions(group: &NamespacePath, scope: &ResourceScope) -> Vec<String> {
    if scope.resource_type != "repository" || !scope.wants(PULL) {
        return Vec::new();
    }
    if scope.name.contains(MARKER) {
        match GitLabImage::parse(&scope.name) {
            Some(image) if image.group.is_within(group) => {}
            _ => return Vec::new(),
        }
    }
    vec![PULL.to_string()]
}

/// A GitLab-style Dependency Proxy name: `<group path>/dependency_proxy/containers/<image>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLabImage {
    pub group: NamespacePath,
    /// The upstream image as written (`alpine`, `foo/bar`), validated.
    pub image: String,
}

impl GitLabImage {
    /// Parses a repository name; `None` if it is not GitLab-style or any part is invalid.
    pub fn parse(name: &str) -> Option<Self> {
        let (group, image) = name.split_once(MARKER)?;
        let group = NamespacePath::parse(group).ok()?;
        // `trim_matches` in NamespacePath::parse would accept `/acme`; names must be exact.
        if group.as_str().len() != name.len() - MARKER.len() - image.len() {
            return None;
        }
        if !valid_image(image) {
            return None;
        }
        Some(Self {
            group,
            image: image.to_string(),
        })
    }

    /// The name the cache and the upstream know the image by. Docker Hub files official
    /// images under `library/`: `alpine` must be asked for as `library/alpine`, while
    /// `foo/bar` stays `foo/bar`.
    pub fn upstream_name(&self) -> String {
        if self.image.contains('/') {
            self.image.clone()
        } else {
            format!("library/{}", self.image)
        }
    }

    /// The full name, as it appears in scopes and `/v2/` paths.
    pub fn full_name(&self) -> String {
        format!("{}{MARKER}{}", self.group, self.image)
    }
}

/// Most characters of an image name; distribution allows 255 for a whole repository name.
const MAX_IMAGE_LEN: usize = 255;

/// distribution's repository-name grammar: lowercase alphanumeric components separated by
/// `/`, each joined inside by `.`, `_`, `__` or runs of `-`. Checked strictly here because
/// the image ends up in a URL wvs-auth requests from the cache: no `..`, `%`, or empty
/// segments can travel through.
pub fn valid_image(image: &str) -> bool {
    !image.is_empty()
        && image.len() <= MAX_IMAGE_LEN
        && image.split('/').all(valid_component)
        && !image.contains(MARKER)
}

fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = c.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    // Separators: one `.`, one or two `_`, or any run of `-`, always between alphanumerics.
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|s| s == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{path, token};

    fn group_token(scopes: &[TokenScope]) -> Principal {
        token(
            TokenOwner::Group {
                id: 7,
                path: path("acme"),
            },
            scopes,
        )
    }

    const RW: [TokenScope; 2] = [TokenScope::ReadRegistry, TokenScope::WriteRegistry];

    #[test]
    fn only_group_tokens_with_both_registry_scopes_qualify() {
        let rw = group_token(&RW);
        let (id, group) = proxy_group(&rw).expect("qualifies");
        assert_eq!((id, group.as_str()), (7, "acme"));
        let all = group_token(&TokenScope::ALL);
        assert!(proxy_group(&all).is_ok());

        for scopes in [
            &[TokenScope::ReadRegistry][..],
            &[TokenScope::WriteRegistry],
            &[TokenScope::ReadPackageRegistry, TokenScope::ReadRepository],
        ] {
            assert_eq!(
                proxy_group(&group_token(scopes)),
                Err(ProxyRefusal::MissingScopes),
                "{scopes:?}"
            );
        }
        let project = token(
            TokenOwner::Project {
                id: 3,
                path: path("acme/app"),
            },
            &RW,
        );
        assert_eq!(proxy_group(&project), Err(ProxyRefusal::ProjectToken));
        assert_eq!(
            proxy_group(&Principal::Anonymous),
            Err(ProxyRefusal::AuthenticationRequired)
        );
    }

    fn actions(group: &str, scope: &str) -> Vec<String> {
        proxy_actions(
            &path(group),
            &ResourceScope::parse(scope).expect("valid scope"),
        )
    }

    #[test]
    fn pull_only_never_push_delete_or_catalog() {
        assert_eq!(
            actions("acme", "repository:library/alpine:pull,push,delete,*"),
            vec!["pull"]
        );
        assert!(actions("acme", "repository:library/alpine:push").is_empty());
        assert!(actions("acme", "registry:catalog:*").is_empty());
        assert_eq!(
            actions(
                "acme",
                "repository:acme/dependency_proxy/containers/alpine:pull"
            ),
            vec!["pull"]
        );
    }

    #[test]
    fn gitlab_names_must_lie_in_the_token_group() {
        assert_eq!(
            actions(
                "acme",
                "repository:acme/platform/dependency_proxy/containers/foo/bar:pull"
            ),
            vec!["pull"]
        );
        assert!(actions(
            "acme/platform",
            "repository:acme/dependency_proxy/containers/alpine:pull"
        )
        .is_empty());
        assert!(actions(
            "acme",
            "repository:acmecorp/dependency_proxy/containers/alpine:pull"
        )
        .is_empty());
        // Malformed GitLab-style names are never granted.
        assert!(actions(
            "acme",
            "repository:acme/dependency_proxy/containers/Alpine:pull"
        )
        .is_empty());
    }

    #[test]
    fn gitlab_names_parse_and_rewrite_official_images() {
        let img = GitLabImage::parse("acme/dependency_proxy/containers/alpine").expect("parses");
        assert_eq!(img.group.as_str(), "acme");
        assert_eq!(img.image, "alpine");
        assert_eq!(img.upstream_name(), "library/alpine");
        assert_eq!(img.full_name(), "acme/dependency_proxy/containers/alpine");

        let img = GitLabImage::parse("acme/platform/dependency_proxy/containers/foo/bar")
            .expect("parses");
        assert_eq!(img.group.as_str(), "acme/platform");
        assert_eq!(img.upstream_name(), "foo/bar");

        let img =
            GitLabImage::parse("acme/dependency_proxy/containers/library/alpine").expect("parses");
        assert_eq!(img.upstream_name(), "library/alpine");
    }

    #[test]
    fn bad_gitlab_names_do_not_parse() {
        for bad in [
            "acme/alpine",
            "dependency_proxy/containers/alpine",
            "/acme/dependency_proxy/containers/alpine",
            "Acme/dependency_proxy/containers/alpine",
            "acme/dependency_proxy/containers/",
            "acme/dependency_proxy/containers/../etc",
            "acme/dependency_proxy/containers/a//b",
            "acme/dependency_proxy/containers/a/",
            "acme/dependency_proxy/containers/a%2fb",
            "acme/dependency_proxy/containers/-a",
            "acme/dependency_proxy/containers/a..b",
            "acme/dependency_proxy/containers/a___b",
            "acme/dependency_proxy/containers/x/dependency_proxy/containers/y",
        ] {
            assert_eq!(GitLabImage::parse(bad), None, "{bad:?} parsed");
        }
    }

    #[test]
    fn image_components_follow_distribution() {
        for good in ["a", "a.b", "a_b", "a__b", "a---b", "a-b.c_d", "0", "x/y/z"] {
            assert!(valid_image(good), "{good:?} refused");
        }
        for bad in [
            "", ".", "a.", "_a", "a.-b", "a._b", "A", "a b", "a:b", "a@b",
        ] {
            assert!(!valid_image(bad), "{bad:?} accepted");
        }
        assert!(!valid_image(&"a".repeat(256)));
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(raw in ".{0,200}") {
                let _ = GitLabImage::parse(&raw);
                let _ = valid_image(&raw);
            }

            /// Whatever parses names only safe characters and round-trips.
            #[test]
            fn parsed_names_round_trip(raw in "[a-z0-9/._%-]{0,20}/dependency_proxy/containers/[a-z0-9/._%-]{0,20}") {
                if let Some(img) = GitLabImage::parse(&raw) {
                    prop_assert_eq!(img.full_name(), raw);
                    prop_assert!(img.upstream_name().split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
                    prop_assert!(!img.upstream_name().contains('%'));
                }
            }
        }
    }
}
