//! Who may manage deploy tokens (SPEC §1 "Management"): project tokens by maintainers and
//! owners; group tokens listed by maintainers, created and revoked by owners; admins
//! everything. Deploy tokens never reach these rules: the API refuses them at sign-in.

use super::deploy_token::TokenOwner;
use super::role::Role;
use super::user::UserPrincipal;

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
}
