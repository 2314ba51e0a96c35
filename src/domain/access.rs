//! Who may do what in the container registry (SPEC §2).
//!
//! A denied action is dropped, never an error: the registry then answers the client with
//! `insufficient_scope`, which is what docker and skopeo expect.

use super::deploy_token::TokenScope;
use super::namespace::{Project, Visibility};
use super::principal::Principal;
use super::scope::ResourceScope;

pub const REPOSITORY: &str = "repository";
pub const PULL: &str = "pull";
pub const PUSH: &str = "push";

/// Can this principal use the registry at all? A deploy token with neither registry scope
/// (say a package-only token) is refused outright with 403.
pub fn may_use_registry(principal: &Principal) -> bool {
    match principal {
        Principal::Anonymous => true,
        Principal::DeployToken(_) => {
            principal.has_scope(TokenScope::ReadRegistry)
                || principal.has_scope(TokenScope::WriteRegistry)
        }
    }
}

/// The actions of `scope` that `principal` is granted, in the order asked. `project` is the
/// owner of the scope's repository name, if any.
pub fn registry_actions(
    principal: &Principal,
    scope: &ResourceScope,
    project: Option<&Project>,
) -> Vec<String> {
    // Only repository scopes are ever granted here: `registry:catalog:*` and unknown types
    // are for administrators, which deploy tokens and anonymous callers never are.
    if scope.resource_type != REPOSITORY {
        return Vec::new();
    }
    let Some(project) = project else {
        return Vec::new();
    };
    let covered = match principal {
        Principal::Anonymous => false,
        Principal::DeployToken(t) => t.covers(project.id, &project.path),
    };
    let may_pull = project.visibility == Visibility::Public
        || (covered && principal.has_scope(TokenScope::ReadRegistry));
    let may_push = covered && principal.has_scope(TokenScope::WriteRegistry);

    scope
        .actions
        .iter()
        .filter(|action| match action.as_str() {
            PULL => may_pull,
            PUSH => may_push,
            // `delete` and `*` are never granted to deploy tokens or anonymous callers.
            _ => false,
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy_token::TokenOwner;
    use crate::domain::fixtures::{path, project, token};

    fn scope(s: &str) -> ResourceScope {
        ResourceScope::parse(s).expect("valid scope")
    }

    #[test]
    fn project_token_pull_push_only_on_own_project() {
        let app = project(1, "acme/app", Visibility::Private);
        let other = project(2, "acme/other", Visibility::Private);
        let t = token(
            TokenOwner::Project {
                id: 1,
                path: path("acme/app"),
            },
            &[TokenScope::ReadRegistry, TokenScope::WriteRegistry],
        );
        let s = scope("repository:acme/app:pull,push,delete,*");
        assert_eq!(registry_actions(&t, &s, Some(&app)), vec!["pull", "push"]);
        let s = scope("repository:acme/other:pull,push");
        assert!(registry_actions(&t, &s, Some(&other)).is_empty());
        assert!(registry_actions(&t, &s, None).is_empty());
    }

    #[test]
    fn write_only_token_pushes_without_pull() {
        let app = project(1, "acme/app", Visibility::Private);
        let t = token(
            TokenOwner::Project {
                id: 1,
                path: path("acme/app"),
            },
            &[TokenScope::WriteRegistry],
        );
        let s = scope("repository:acme/app:pull,push");
        assert_eq!(registry_actions(&t, &s, Some(&app)), vec!["push"]);
    }

    #[test]
    fn group_token_covers_subgroups_not_siblings() {
        let deep = project(5, "acme/platform/api", Visibility::Private);
        let sibling = project(6, "acmecorp/api", Visibility::Private);
        let t = token(
            TokenOwner::Group {
                id: 9,
                path: path("acme"),
            },
            &[TokenScope::ReadRegistry],
        );
        let s = scope("repository:acme/platform/api:pull");
        assert_eq!(registry_actions(&t, &s, Some(&deep)), vec!["pull"]);
        let s = scope("repository:acmecorp/api:pull");
        assert!(registry_actions(&t, &s, Some(&sibling)).is_empty());
    }

    #[test]
    fn public_pull_for_anyone_internal_not_for_strangers() {
        let public = project(1, "oss/lib", Visibility::Public);
        let internal = project(2, "corp/lib", Visibility::Internal);
        let s = scope("repository:oss/lib:pull,push");
        assert_eq!(
            registry_actions(&Principal::Anonymous, &s, Some(&public)),
            vec!["pull"]
        );
        let stranger = token(
            TokenOwner::Project {
                id: 7,
                path: path("x/y"),
            },
            &[TokenScope::ReadRegistry],
        );
        let s = scope("repository:corp/lib:pull");
        assert!(registry_actions(&stranger, &s, Some(&internal)).is_empty());
        assert!(registry_actions(&Principal::Anonymous, &s, Some(&internal)).is_empty());
    }

    #[test]
    fn catalog_never_granted() {
        let t = token(
            TokenOwner::Group {
                id: 9,
                path: path("acme"),
            },
            &[TokenScope::ReadRegistry, TokenScope::WriteRegistry],
        );
        let s = scope("registry:catalog:*");
        assert!(registry_actions(&t, &s, None).is_empty());
    }

    #[test]
    fn package_only_token_may_not_use_registry() {
        let t = token(
            TokenOwner::Group {
                id: 9,
                path: path("acme"),
            },
            &[TokenScope::ReadPackageRegistry],
        );
        assert!(!may_use_registry(&t));
        assert!(may_use_registry(&Principal::Anonymous));
    }
}
