//! Who may manage what (SPEC §1 "Management"). Deploy tokens: project tokens by maintainers
//! and owners; group tokens listed by maintainers, created and revoked by owners. Groups and
//! projects: top-level ones by admins, below a group by its owners (projects also by its
//! maintainers). Members: a project's by its maintainers, a group's by its owners, never to
//! a role above the granter's own. Users by admins; personal access tokens by their user or
//! an admin. Admins may do everything; deploy tokens never reach these rules (the API
//! refuses them at sign-in).

use super::deploy_token::TokenOwner;
use super::path::NamespacePath;
use super::role::Role;
use super::user::{MembershipTarget, UserPrincipal};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    List,
    Create,
    Revoke,
}

/// The role `user` needs for `action` on tokens of `owner`.
pub fn required_role(owner: &TokenOwner, action: TokenAction) -> Role {
    match (owner, action) {
        (TokenOwner::Project { .. }, _) => Role::Maintainer,
        (TokenOwner::Group { .. }, TokenAction::List) => Role::Maintainer,
        (TokenOwner::Group { .. }, _) => Role::Owner,
    }
}

/// The user's role on the token's owner (inherited through groups; admins are owners).
/// Only the owner's id and path matter, so no project row needs reading.
pub fn role_on(user: &UserPrincipal, owner: &TokenOwner) -> Option<Role> {
    match owner {
        TokenOwner::Project { id, path } => user.role_in_project_at(*id, path),
        TokenOwner::Group { path, .. } => user.role_in_group(path),
    }
}

/// May `user` do `action` on `owner`'s tokens?
pub fn may(user: &UserPrincipal, owner: &TokenOwner, action: TokenAction) -> bool {
    role_on(user, owner).is_some_and(|r| r >= required_role(owner, action))
}

/// Is the user a member of `owner` with any role? Non-members of a private namespace get
/// the same 404 as for one that does not exist.
pub fn may_see(user: &UserPrincipal, owner: &TokenOwner) -> bool {
    role_on(user, owner).is_some()
}

/// A change to the namespace tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NamespaceAction {
    CreateGroup,
    CreateProject,
    /// A group's own settings (the Dependency Proxy switch).
    ChangeGroupSettings,
}

/// May `user` do `action` at `at`: below the group `at` for creations (`None`: at top
/// level), on the group `at` itself for settings?
pub fn may_change_namespaces(
    user: &UserPrincipal,
    at: Option<&NamespacePath>,
    action: NamespaceAction,
) -> bool {
    if user.user.is_admin {
        return true;
    }
    let Some(group) = at else {
        return false;
    };
    let needed = match action {
        NamespaceAction::CreateProject => Role::Maintainer,
        NamespaceAction::CreateGroup | NamespaceAction::ChangeGroupSettings => Role::Owner,
    };
    user.role_in_group(group).is_some_and(|r| r >= needed)
}

/// May `user` give someone `role` on `target`, or take a membership away (`role` then is
/// the membership's current role)? Only up to the user's own role, so a maintainer never
/// mints owners.
pub fn may_manage_member(user: &UserPrincipal, target: &MembershipTarget, role: Role) -> bool {
    if user.user.is_admin {
        return true;
    }
    let (mine, needed) = match target {
        MembershipTarget::Project { id, path } => {
            (user.role_in_project_at(*id, path), Role::Maintainer)
        }
        MembershipTarget::Group { path, .. } => (user.role_in_group(path), Role::Owner),
    };
    mine.is_some_and(|r| r >= needed && r >= role)
}

/// Accounts are the administrators' business.
pub fn may_manage_users(user: &UserPrincipal) -> bool {
    user.user.is_admin
}

/// A personal access token is its user's (or an admin's) to create and revoke.
pub fn may_manage_pats_of(user: &UserPrincipal, owner_id: i64) -> bool {
    user.user.is_admin || user.user.id == owner_id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::{path, user};
    use crate::domain::principal::Principal;
    use crate::domain::user::MembershipTarget;

    fn as_user(p: Principal) -> UserPrincipal {
        match p {
            Principal::User(u) => *u,
            _ => unreachable!("fixture builds users"),
        }
    }

    #[test]
    fn project_maintainers_manage_group_owners_create() {
        let project_owner = TokenOwner::Project {
            id: 3,
            path: path("acme/app"),
        };
        let group_owner = TokenOwner::Group {
            id: 1,
            path: path("acme"),
        };
        let on_group = |role| {
            as_user(user(&[(
                MembershipTarget::Group {
                    id: 1,
                    path: path("acme"),
                },
                role,
            )]))
        };
        let dev = on_group(Role::Developer);
        let maint = on_group(Role::Maintainer);
        let owner = on_group(Role::Owner);
        for action in [TokenAction::List, TokenAction::Create, TokenAction::Revoke] {
            assert!(!may(&dev, &project_owner, action));
            assert!(may(&maint, &project_owner, action));
            assert!(may(&owner, &group_owner, action));
        }
        assert!(may(&maint, &group_owner, TokenAction::List));
        assert!(!may(&maint, &group_owner, TokenAction::Create));
        assert!(!may(&maint, &group_owner, TokenAction::Revoke));
        assert!(may_see(&dev, &project_owner));
        let stranger = as_user(user(&[]));
        assert!(!may_see(&stranger, &group_owner));
    }

    #[test]
    fn namespaces_admins_at_top_level_owners_below() {
        let acme = path("acme");
        let on_acme = |role| {
            as_user(user(&[(
                MembershipTarget::Group {
                    id: 1,
                    path: path("acme"),
                },
                role,
            )]))
        };
        let owner = on_acme(Role::Owner);
        let maint = on_acme(Role::Maintainer);
        let stranger = as_user(user(&[]));
        for action in [NamespaceAction::CreateGroup, NamespaceAction::CreateProject] {
            assert!(!may_change_namespaces(&owner, None, action), "top level");
            assert!(may_change_namespaces(&owner, Some(&acme), action));
            assert!(!may_change_namespaces(&stranger, Some(&acme), action));
        }
        assert!(may_change_namespaces(
            &maint,
            Some(&path("acme/sub")),
            NamespaceAction::CreateProject
        ));
        assert!(!may_change_namespaces(
            &maint,
            Some(&acme),
            NamespaceAction::CreateGroup
        ));
        assert!(!may_change_namespaces(
            &maint,
            Some(&acme),
            NamespaceAction::ChangeGroupSettings
        ));
    }

    #[test]
    fn members_never_above_the_granters_own_role() {
        let app = MembershipTarget::Project {
            id: 3,
            path: path("acme/app"),
        };
        let group = MembershipTarget::Group {
            id: 1,
            path: path("acme"),
        };
        let maint = as_user(user(&[(app.clone(), Role::Maintainer)]));
        assert!(may_manage_member(&maint, &app, Role::Developer));
        assert!(may_manage_member(&maint, &app, Role::Maintainer));
        assert!(!may_manage_member(&maint, &app, Role::Owner));
        assert!(!may_manage_member(&maint, &group, Role::Guest));
        let dev = as_user(user(&[(app.clone(), Role::Developer)]));
        assert!(!may_manage_member(&dev, &app, Role::Guest));
        assert!(!may_manage_users(&maint));
        assert!(may_manage_pats_of(&maint, 1));
        assert!(!may_manage_pats_of(&maint, 2));
    }
}
