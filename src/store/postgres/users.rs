//! The `users` and `memberships` tables.

use chrono::Utc;
use postgres::Row;

use super::{audit, is_unique_violation, DbError, PostgresStore};
use crate::domain::audit::NewAuditEvent;
use crate::domain::personal_access_token::PersonalAccessToken;
use crate::domain::role::Role;
use crate::domain::secret::HashedToken;
use crate::domain::store::{MemberOf, NewPat, StoreError, StoredUser, UserDirectory, UserStore};
use crate::domain::user::{Membership, User};
use crate::store::rows::fmt_time;
use crate::store::rows::users::{
    member_column, parse_role, RawMembership, RawUser, COLUMNS, MEMBERSHIPS,
};

fn from_row(r: &Row) -> Result<RawUser, postgres::Error> {
    Ok(RawUser {
        id: r.try_get(0)?,
        username: r.try_get(1)?,
        is_admin: r.try_get(2)?,
        created_at: r.try_get(3)?,
        password_hash: r.try_get(4)?,
        blocked_at: r.try_get(5)?,
    })
}

fn build(row: Option<Row>) -> Result<Option<StoredUser>, DbError> {
    Ok(row
        .map(|r| from_row(&r))
        .transpose()?
        .map(RawUser::build)
        .transpose()?)
}

impl PostgresStore {
    fn insert_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        is_admin: bool,
        event: &NewAuditEvent,
    ) -> Result<User, DbError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        let now = Utc::now();
        // The unique index on lower(username) refuses a name taken in any case, as
        // SQLite's NOCASE column does.
        let id: i64 = tx
            .query_one(
                "INSERT INTO users (username, password_hash, is_admin, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&username, &password_hash, &is_admin, &fmt_time(now)],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    DbError::Conflict(format!("user {username} already exists"))
                } else {
                    e.into()
                }
            })?
            .try_get(0)?;
        audit::insert(&mut tx, event, now)?;
        tx.commit()?;
        Ok(User {
            id,
            username: username.to_string(),
            is_admin,
            created_at: now,
            blocked_at: None,
        })
    }

    /// The user and their password hash (case-insensitive username). `lower()` on both
    /// sides matches the unique index; under COLLATE "C" it folds ASCII only, exactly as
    /// SQLite's NOCASE does, whatever the database's locale.
    fn user_row_by_name(&self, username: &str) -> Result<Option<StoredUser>, DbError> {
        let mut conn = self.conn()?;
        let statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM users WHERE lower(username) = lower($1::text COLLATE \"C\")"
        ))?;
        build(conn.query_opt(&statement, &[&username])?)
    }

    fn user_row(&self, id: i64) -> Result<Option<User>, DbError> {
        let mut conn = self.conn()?;
        let statement =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))?;
        Ok(build(conn.query_opt(&statement, &[&id])?)?.map(|s| s.user))
    }

    fn all_users(&self) -> Result<Vec<User>, DbError> {
        let rows = self
            .conn()?
            .query(&format!("SELECT {COLUMNS} FROM users ORDER BY id"), &[])?;
        rows.iter()
            .map(|r| Ok(from_row(r)?.build()?.user))
            .collect()
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
        let mut tx = conn.transaction()?;
        // SQLite's IMMEDIATE transaction made "read the role, then update or insert" one
        // step. Here two instances could both find no membership and both insert (the
        // second failing on the unique constraint), or both report the same previous
        // role. Locking the user's row serialises changes to one user's memberships
        // (NO KEY UPDATE: inserts referencing the user are not held up); FOR UPDATE on
        // the membership holds off a concurrent removal until the update is done. A
        // missing user is left to the insert's foreign key, as on SQLite.
        tx.execute(
            "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
            &[&user_id],
        )?;
        let previous: Option<String> = tx
            .query_opt(
                &format!(
                    "SELECT role FROM memberships WHERE user_id = $1 AND {column} = $2 \
                     FOR UPDATE"
                ),
                &[&user_id, &id],
            )?
            .map(|r| r.try_get(0))
            .transpose()?;
        if previous.is_some() {
            tx.execute(
                &format!("UPDATE memberships SET role = $3 WHERE user_id = $1 AND {column} = $2"),
                &[&user_id, &id, &role.as_str()],
            )?;
        } else {
            tx.execute(
                &format!(
                    "INSERT INTO memberships (user_id, {column}, role, created_at) \
                     VALUES ($1, $2, $3, $4)"
                ),
                &[&user_id, &id, &role.as_str(), &fmt_time(Utc::now())],
            )?;
        }
        let previous = previous.as_deref().map(parse_role).transpose()?;
        audit::insert(&mut tx, &event(previous), Utc::now())?;
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
        let mut tx = conn.transaction()?;
        // One statement decides: of two removals at once, only one deletes the row.
        let changed = tx.execute(
            &format!("DELETE FROM memberships WHERE user_id = $1 AND {column} = $2"),
            &[&user_id, &id],
        )?;
        if changed == 1 {
            audit::insert(&mut tx, event, Utc::now())?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }

    fn membership_rows(&self, user_id: i64) -> Result<Vec<Membership>, DbError> {
        let mut conn = self.conn()?;
        let statement =
            conn.prepare_cached(&format!("{MEMBERSHIPS} WHERE m.user_id = $1 ORDER BY m.id"))?;
        let rows = conn.query(&statement, &[&user_id])?;
        rows.iter()
            .map(|r| {
                let pair = |id: Option<i64>, path: Option<String>| id.zip(path);
                let raw = RawMembership {
                    group: pair(r.try_get(0)?, r.try_get(1)?),
                    project: pair(r.try_get(2)?, r.try_get(3)?),
                    role: r.try_get(4)?,
                };
                Ok(raw.build(user_id)?)
            })
            .collect()
    }
}

impl UserDirectory for PostgresStore {
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

impl UserStore for PostgresStore {
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
        let mut tx = conn.transaction()?;
        // Conditional UPDATEs: of two instances blocking at once, only one changes the row
        // (the other waits for its row lock, then finds it blocked) and records the event.
        let changed = if blocked {
            tx.execute(
                "UPDATE users SET blocked_at = $1 WHERE id = $2 AND blocked_at IS NULL",
                &[&fmt_time(at), &user_id],
            )?
        } else {
            tx.execute(
                "UPDATE users SET blocked_at = NULL WHERE id = $1 AND blocked_at IS NOT NULL",
                &[&user_id],
            )?
        };
        if changed == 1 {
            if blocked {
                // Signed-in browsers are signed out at once.
                tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])?;
            }
            audit::insert(&mut tx, event, at)?;
            tx.commit()?;
        }
        Ok(changed == 1)
    }

    fn delete_user(&self, user_id: i64, event: &NewAuditEvent) -> Result<bool, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction()?;
        // Memberships, PATs and sessions go with the row (ON DELETE CASCADE); deploy
        // tokens keep their `created_by`, which has no foreign key on purpose.
        let changed = tx.execute("DELETE FROM users WHERE id = $1", &[&user_id])?;
        if changed == 1 {
            audit::insert(&mut tx, event, Utc::now())?;
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
