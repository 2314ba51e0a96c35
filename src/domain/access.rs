//! Who may do what in the container registry (SPEC §2).
//!
//! A denied action is dropped, never an error: the registry then answers the client with
//! `insufficient_scope`, which is what docker and skopeo expect.

use super::deploy_token::TokenScope;
use super::namespace::{Project, Visibility};
use super::personal_access_token::PatScope;
use super::principal::Principal;
use super::role::Role;
use super::scope::ResourceScope;
use super::user::UserPrincipal;

pub const REPOSITORY: &str = "repository";
pub const PULL: &str = "pull";
pub const PUSH: &str = "push";
pub const DELETE: &str = "delete";

/// Can this principal use the registry at all? A deploy token with neither registry scope
/// (say a package-only token), or a PAT without one, is refused outright with 403.
pub fn may_use_registry(principal: &Principal) -> bool {
    match principal {
        Principal::Anonymous => true,
        Principal::DeployToken(_) => {
            principal.has_scope(TokenScope::ReadRegistry)
                || principal.has_scope(TokenScope::WriteRegistry)
        }
        Principal::User(u) => u.allows(PatScope::ReadRegistry) || u.allows(PatScope::WriteRegistry),
    }
}

/// What a principal may do with one project's repositories.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Allowed {
    pull: bool,
    push: bool,
    delete: bool,
}

fn deploy_token_allows(principal: &Principal, covered: bool) -> Allowed {
    Allowed {
        pull: covered && principal.has_scope(TokenScope::ReadRegistry),
        push: covered && principal.has_scope(TokenScope::WriteRegistry),
        // `delete` and `*` are never granted to deploy tokens (SPEC §2).
        delete: false,
    }
}

/// Users: reporter+ pull, developer+ push, maintainer+ delete (SPEC §2), each also needing
/// the credential's scope. Internal projects are readable by any signed-in user.
fn user_allows(user: &UserPrincipal, project: &Project) -> Allowed {
    let role = user.role_in_project(project);
    let at_least = |min: Role| role.is_some_and(|r| r >= min);
    let read = user.allows(PatScope::ReadRegistry);
    let write = user.allows(PatScope::WriteRegistry);
    Allowed {
        pull: read && (at_least(Role::Reporter) || project.visibility == Visibility::Internal),
        push: write && at_least(Role::Developer),
        delete: write && at_least(Role::Maintainer),
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
    // are for registry operators, which nobody here is.
    if scope.resource_type != REPOSITORY {
        return Vec::new();
    }
    let Some(project) = project else {
        return Vec::new();
    };
    let mut allowed = match principal {
        Principal::Anonymous => Allowed::default(),
        Principal::DeployToken(t) => {
            deploy_token_allows(principal, t.covers(project.id, &project.path))
        }
        Principal::User(u) => user_allows(u, project),
    };
    allowed.pull |= project.visibility == Visibility::Public;

    scope
        .actions
        .iter()
        .filter(|action| match action.as_str() {
            PULL => allowed.pull,
            PUSH => allowed.push,
            DELETE => allowed.delete,
            // `*` is never granted: it would include actions added to the protocol later.
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

    #[test]
    fn users_pull_push_delete_by_role() {
        use crate::domain::fixtures::user;
        use crate::domain::role::Role;
        use crate::domain::user::MembershipTarget;
        let app = project(1, "acme/app", Visibility::Private);
        let internal = project(2, "corp/lib", Visibility::Internal);
        let s = scope("repository:acme/app:pull,push,delete,*");
        let on_group = |role| {
            user(&[(
                MembershipTarget::Group {
                    id: 1,
                    path: path("acme"),
                },
                role,
            )])
        };
        assert!(registry_actions(&on_group(Role::Guest), &s, Some(&app)).is_empty());
        assert_eq!(
            registry_actions(&on_group(Role::Reporter), &s, Some(&app)),
            vec!["pull"]
        );
        assert_eq!(
            registry_actions(&on_group(Role::Developer), &s, Some(&app)),
            vec!["pull", "push"]
        );
        assert_eq!(
            registry_actions(&on_group(Role::Maintainer), &s, Some(&app)),
            vec!["pull", "push", "delete"]
        );
        let s = scope("repository:corp/lib:pull,push");
        assert_eq!(
            registry_actions(&on_group(Role::Guest), &s, Some(&internal)),
            vec!["pull"]
        );
    }

    #[test]
    fn pat_scopes_limit_users() {
        use crate::domain::fixtures::user;
        use crate::domain::personal_access_token::PatScope;
        use crate::domain::role::Role;
        use crate::domain::user::{MembershipTarget, UserCredential};
        let app = project(1, "acme/app", Visibility::Private);
        let mut p = user(&[(
            MembershipTarget::Project {
                id: 1,
                path: path("acme/app"),
            },
            Role::Owner,
        )]);
        if let Principal::User(u) = &mut p {
            u.credential = UserCredential::PersonalAccessToken {
                id: 1,
                scopes: vec![PatScope::ReadRegistry],
                expires_at: None,
            };
        }
        let s = scope("repository:acme/app:pull,push,delete");
        assert_eq!(registry_actions(&p, &s, Some(&app)), vec!["pull"]);
        if let Principal::User(u) = &mut p {
            u.credential = UserCredential::PersonalAccessToken {
                id: 1,
                scopes: vec![PatScope::ReadRepository],
                expires_at: None,
            };
        }
        assert!(!may_use_registry(&p));
    }
}
