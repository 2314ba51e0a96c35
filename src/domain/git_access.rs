//! Who may do what with a git repository over HTTP, LFS included (SPEC §2 "Git over HTTP").
//!
//! One function decides for every git surface (refs advertisement, upload-pack, LFS batch,
//! LFS object downloads), so group tokens can never work for one and fail for another —
//! GitLab's group-token LFS bug came from LFS checking "token's project == this project".
//! Here the question is always "does the token cover this project" ([`DeployToken::covers`]).
//!
//! [`DeployToken::covers`]: super::deploy_token::DeployToken::covers

use super::deploy_token::TokenScope;
use super::namespace::{Project, Visibility};
use super::personal_access_token::PatScope;
use super::principal::Principal;
use super::role::Role;
use super::user::UserPrincipal;

/// What the client wants to do with the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitOperation {
    /// Clone, fetch, LFS download.
    Read,
    /// Push, LFS upload.
    Write,
}

/// The decision. Each variant maps to one HTTP answer; none of them depends on whether a
/// project the caller may not see exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitAccess {
    Allowed,
    /// No credentials and the repository is not public: 401, so git asks for credentials.
    /// Unknown repositories answer the same, so anonymous callers learn nothing.
    CredentialsRequired,
    /// A deploy token without `read_repository`: refused whatever the repository, so the
    /// answer reveals nothing about it (as the registry's 403 for tokens without its scopes).
    MissingScope,
    /// Deploy tokens never push (SPEC §2), whatever the repository.
    ReadOnly,
    /// The token does not cover the project, or there is no such project: the same answer.
    NotFound,
    /// A user who may read the project but not push to it (below developer).
    Forbidden,
}

/// Decides `operation` on `project` (`None`: no project has this path).
pub fn git_access(
    principal: &Principal,
    project: Option<&Project>,
    operation: GitOperation,
) -> GitAccess {
    // Public code is readable by anyone; presenting credentials never takes that away.
    if operation == GitOperation::Read
        && project.is_some_and(|p| p.visibility == Visibility::Public)
    {
        return GitAccess::Allowed;
    }
    match principal {
        Principal::Anonymous => GitAccess::CredentialsRequired,
        Principal::DeployToken(token) => match operation {
            GitOperation::Write => GitAccess::ReadOnly,
            GitOperation::Read if !token.has(TokenScope::ReadRepository) => GitAccess::MissingScope,
            GitOperation::Read => match project {
                Some(p) if token.covers(p.id, &p.path) => GitAccess::Allowed,
                _ => GitAccess::NotFound,
            },
        },
        Principal::User(user) => user_access(user, project, operation),
    }
}

/// Users: reporter+ (or anyone signed in, for internal projects) read, developer+ push
/// (SPEC §2, issue 6). A PAT needs `read_repository` or `write_repository` to read and
/// `write_repository` to push; `api` implies both.
fn user_access(
    user: &UserPrincipal,
    project: Option<&Project>,
    operation: GitOperation,
) -> GitAccess {
    let Some(project) = project else {
        return GitAccess::NotFound;
    };
    let role = user.role_in_project(project);
    let visible =
        project.visibility == Visibility::Internal || role.is_some_and(|r| r >= Role::Reporter);
    if !visible {
        return GitAccess::NotFound;
    }
    match operation {
        GitOperation::Read => {
            if user.allows(PatScope::ReadRepository) || user.allows(PatScope::WriteRepository) {
                GitAccess::Allowed
            } else {
                GitAccess::MissingScope
            }
        }
        GitOperation::Write => {
            if !user.allows(PatScope::WriteRepository) {
                GitAccess::MissingScope
            } else if role.is_some_and(|r| r >= Role::Developer) {
                GitAccess::Allowed
            } else {
                GitAccess::Forbidden
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deploy_token::TokenOwner;
    use crate::domain::fixtures::{path, project, token};

    fn group_token(g: &str, scopes: &[TokenScope]) -> Principal {
        token(
            TokenOwner::Group {
                id: 9,
                path: path(g),
            },
            scopes,
        )
    }

    use GitOperation::{Read, Write};

    #[test]
    fn project_token_reads_its_project_only() {
        let app = project(1, "acme/app", Visibility::Private);
        let other = project(2, "acme/other", Visibility::Internal);
        let t = token(
            TokenOwner::Project {
                id: 1,
                path: path("acme/app"),
            },
            &[TokenScope::ReadRepository],
        );
        assert_eq!(git_access(&t, Some(&app), Read), GitAccess::Allowed);
        assert_eq!(git_access(&t, Some(&other), Read), GitAccess::NotFound);
        assert_eq!(git_access(&t, None, Read), GitAccess::NotFound);
    }

    #[test]
    fn group_token_reads_every_project_below_the_group() {
        let deep = project(5, "acme/platform/api", Visibility::Private);
        let sibling = project(6, "acmecorp/api", Visibility::Private);
        let t = group_token("acme", &[TokenScope::ReadRepository]);
        assert_eq!(git_access(&t, Some(&deep), Read), GitAccess::Allowed);
        assert_eq!(git_access(&t, Some(&sibling), Read), GitAccess::NotFound);
    }

    #[test]
    fn scope_is_required_and_says_nothing_about_the_project() {
        let app = project(1, "acme/app", Visibility::Private);
        let t = group_token("acme", &[TokenScope::ReadRegistry]);
        assert_eq!(git_access(&t, Some(&app), Read), GitAccess::MissingScope);
        assert_eq!(git_access(&t, None, Read), GitAccess::MissingScope);
    }

    #[test]
    fn anonymous_reads_public_only_and_unknown_looks_private() {
        let public = project(1, "oss/lib", Visibility::Public);
        let private = project(2, "acme/app", Visibility::Private);
        let internal = project(3, "corp/lib", Visibility::Internal);
        let anon = Principal::Anonymous;
        assert_eq!(git_access(&anon, Some(&public), Read), GitAccess::Allowed);
        for p in [Some(&private), Some(&internal), None] {
            assert_eq!(git_access(&anon, p, Read), GitAccess::CredentialsRequired);
        }
        let stranger = group_token("x", &[TokenScope::ReadRegistry]);
        assert_eq!(
            git_access(&stranger, Some(&public), Read),
            GitAccess::Allowed
        );
    }

    #[test]
    fn deploy_tokens_never_write() {
        let app = project(1, "acme/app", Visibility::Public);
        let t = group_token("acme", &TokenScope::ALL);
        assert_eq!(git_access(&t, Some(&app), Write), GitAccess::ReadOnly);
        assert_eq!(git_access(&t, None, Write), GitAccess::ReadOnly);
        assert_eq!(
            git_access(&Principal::Anonymous, Some(&app), Write),
            GitAccess::CredentialsRequired
        );
    }
}
