//! The `users` and `memberships` tables.

use chrono::Utc;
use rusqlite::{params, OptionalExtension, Row};

use super::{audit, fmt_time, DbError, SqliteStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::personal_access_token::PersonalAccessToken;
use crate::domain::role::Role;
use crate::domain::secret::HashedToken;
use crate::domain::store::{MemberOf, NewPat, StoreError, StoredUser, UserDirectory, UserStore};
use crate::domain::user::{Membership, User};
use crate::store::rows::users::{
    member_column, parse_role, RawMembership, RawUser, COLUMNS, MEMBERSHIPS,
};

fn from_row(r: &Row<'_>) -> rusqlite::Result<RawUser> {
    Ok(RawUser {
        id: r.get(0)?,
        username: r.get(1)?,
        is_admin: r.get(2)?,
        created_at: r.get(3)?,
        password_hash: r.get(4)?,
        blocked_at: r.get(5)?,
    })
}

impl SqliteStore {
    fn insert_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        is_admin: bool,
        event: &NewAuditEvent,
    ) -> Result<User, DbError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now = Utc::now();
        tx.execute(
            "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![username, password_hash, is_admin, fmt_time(now)],
        )
        .map_err(|e| {
            if super::is_unique_violation(&e) {
                DbError::Conflict(format!("user {username} already exists"))
            } else {
                e.into()
            }
        })?;
        let id = tx.last_insert_rowid();
        audit::insert(&tx, event, now)?;
        tx.commit()?;
        Ok(User {
            id,
            username: username.to_string(),
            is_admin,
            created_at: now,
            blocked_at: None,
        })
    }

    /// The user and their password hash (case-insensitive username).
    fn user_row_by_name(&self, username: &str) -> Result<Option<StoredUser>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE username = ?1"))?
            .query_row([username], from_row)
            .optional()?;
        Ok(row.map(RawUser::build).transpose()?)
    }

    fn user_row(&self, id: i64) -> Result<Option<User>, DbError> {
        let conn = self.conn()?;
        let row = conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = ?1"))?
            .query_row([id], from_row)
            .optional()?;
        Ok(row.map(RawUser::build).transpose()?.map(|s| s.user))
    }

    fn all_users(&self) -> Result<Vec<User>, DbError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users ORDER BY id"))?;
        let rows = stmt
            .query_map([], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|r| r.build().map(|s| s.user))
            .collect::<Result<_, _>>()?)
    }

    /// Adds the membership, or changes its role when the user is already a member there.
    /// Returns the previous role, if any.
    fn upsert_membership(
        &self,
        user_id: i64,
        of: MemberOf,
        role: Role,
        event: &dyn Fn(Option<Role>) -> NewAuditEvent,
    ) -> Result<Option<Role>, DbError> {
        let (column, id) = member_column(of);
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let previous: Option<String> = tx
            .query_row(
                &format!("SELECT role FROM memberships WHERE user_id = ?1 AND {column} = ?2"),
                params![user_id, id],
                |r| r.get(0),
            )
            .optional()?;
        if previous.is_some() {
            tx.execute(
                &format!("UPDATE memberships SET role = ?3 WHERE user_id = ?1 AND {column} = ?2"),
                params![user_id, id, role.as_str()],
            )?;
        } else {
            tx.execute(
                &format!(
                    "INSERT INTO memberships (user_id, {column}, role, created_at) VALUES (?1, ?2, ?3, ?4)"
                ),
                params![user_id, id, role.as_str(), fmt_time(Utc::now())],
            )?;
        }
        let previous = previous.as_deref().map(parse_role).transpose()?;
        audit::insert(&tx, &event(previous), Utc::now())?;
        tx.commit()?;
        Ok(previous)
    }

    /// Removes a membership; `false` when there was none.
    fn delete_membership(
        &self,
        user_id: i64,
        of: MemberOf,
        event: &NewAuditEvent,
    ) -> Result<bool, DbError> {
        let (column, id) = member_column(of);
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let changed = tx.execute(
            &format!("DELETE FROM memberships WHERE user_id = ?1 AND {column} = ?2"),
            params![user_id, id],
        )?;
        if changed == 1 {
            audit::insert(&tx, event, Utc::now())?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }

    fn membership_rows(&self, user_id: i64) -> Result<Vec<Membership>, DbError> {
        let conn = self.conn()?;
        let mut stmt =
            conn.prepare_cached(&format!("{MEMBERSHIPS} WHERE m.user_id = ?1 ORDER BY m.id"))?;
        let rows = stmt
            .query_map([user_id], |r| {
                let pair = |id: Option<i64>, path: Option<String>| id.zip(path);
                Ok(RawMembership {
                    group: pair(r.get(0)?, r.get(1)?),
                    project: pair(r.get(2)?, r.get(3)?),
                    role: r.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows
            .into_iter()
            .map(|r| r.build(user_id))
            .collect::<Result<_, _>>()?)
    }
}

impl UserDirectory for SqliteStore {
    fn find_user_by_username(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        Ok(self.user_row_by_name(username)?)
    }

    fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        Ok(self.user_row(id)?)
    }

    fn memberships_of(&self, user_id: i64) -> Result<Vec<Membership>, StoreError> {
        Ok(self.membership_rows(user_id)?)
    }

    fn find_pat(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError> {
        Ok(self.pat_row(id)?)
    }

    fn find_pat_by_digest(
        &self,
        digest: &HashedToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        Ok(self.pat_row_by_digest(digest)?)
    }
}

impl UserStore for SqliteStore {
    fn list_users(&self) -> Result<Vec<User>, StoreError> {
        Ok(self.all_users()?)
    }

    fn create_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        is_admin: bool,
        event: &NewAuditEvent,
    ) -> Result<User, StoreError> {
        Ok(self.insert_user(username, password_hash, is_admin, event)?)
    }

    fn set_membership(
        &self,
        user_id: i64,
        of: MemberOf,
        role: Role,
        event: &dyn Fn(Option<Role>) -> NewAuditEvent,
    ) -> Result<Option<Role>, StoreError> {
        Ok(self.upsert_membership(user_id, of, role, event)?)
    }

    fn set_user_blocked(
        &self,
        user_id: i64,
        blocked: bool,
        at: chrono::DateTime<Utc>,
        event: &NewAuditEvent,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let changed = if blocked {
            tx.execute(
                "UPDATE users SET blocked_at = ?1 WHERE id = ?2 AND blocked_at IS NULL",
                params![fmt_time(at), user_id],
            )?
        } else {
            tx.execute(
                "UPDATE users SET blocked_at = NULL WHERE id = ?1 AND blocked_at IS NOT NULL",
                [user_id],
            )?
        };
        if changed == 1 {
            if blocked {
                // Signed-in browsers are signed out at once.
                tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id])?;
            }
            audit::insert(&tx, event, at)?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }

    fn delete_user(&self, user_id: i64, event: &NewAuditEvent) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        // Memberships, PATs and sessions go with the row (ON DELETE CASCADE); deploy
        // tokens keep their `created_by`, which has no foreign key on purpose.
        let changed = tx.execute("DELETE FROM users WHERE id = ?1", [user_id])?;
        if changed == 1 {
            audit::insert(&tx, event, Utc::now())?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }

    fn remove_membership(
        &self,
        user_id: i64,
        of: MemberOf,
        event: &NewAuditEvent,
    ) -> Result<bool, StoreError> {
        Ok(self.delete_membership(user_id, of, event)?)
    }

    fn create_pat(
        &self,
        new: &NewPat,
        digest: &HashedToken,
        event: &NewAuditEvent,
    ) -> Result<PersonalAccessToken, StoreError> {
        Ok(self.insert_pat(new, digest, event)?)
    }

    fn revoke_pat(
        &self,
        id: i64,
        at: chrono::DateTime<Utc>,
        event: &NewAuditEvent,
    ) -> Result<bool, StoreError> {
        Ok(self.update_pat_revoked(id, at, event)?)
    }
}
