//! The storage interface: every read and write the realms, the managers, the pages and the
//! CLI make, as backend-neutral traits. SQLite implements them (`crate::store::sqlite`); a
//! PostgreSQL backend implements the same traits.
//!
//! The traits are split by who reads (lldap's read and write handlers are the model): the
//! realms' hot path needs only [`DeployTokenLookup`], [`ProjectDirectory`],
//! [`UserDirectory`] and [`GroupSettings`], which the lookup cache can answer from memory;
//! management needs the `*Store` traits, whose writes take the audit event that describes
//! them and commit both in one transaction (or neither).

use chrono::{DateTime, NaiveDate, Utc};

use super::audit::{AuditEvent, NewAuditEvent};
use super::deploy_token::{DeployToken, TokenOwner, TokenScope};
use super::namespace::{Group, Project, Visibility};
use super::package::{Digests, Package, PackageFile, PackageFormat};
use super::path::NamespacePath;
use super::personal_access_token::{PatScope, PersonalAccessToken};
use super::role::Role;
use super::secret::HashedToken;
use super::user::{Membership, User};

/// What went wrong in storage, by kind: callers answer 404, 409 or 503 on the kind, never on
/// a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A row the write needs does not exist (the message names it, for the log).
    #[error("not found: {0}")]
    NotFound(String),
    /// A unique key is taken (a path, a username).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database did not answer (busy, gone, out of connections).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored value the domain cannot read: a bug or a hand-edited database.
    #[error("storage holds a malformed value: {0}")]
    Corrupt(String),
    /// A memory-only view could not answer without I/O; the caller asks again on the
    /// blocking pool (see `crate::store::lookup_cache::MemoryOnly`).
    #[error("not in memory")]
    NotInMemory,
}

/// Read side of projects, as the realms need it.
pub trait ProjectDirectory: Send + Sync {
    /// The project owning a repository name: the project whose full path is the name's
    /// longest path-segment prefix (`acme/app/worker` → `acme/app`).
    fn owning_project(&self, repository: &str) -> Result<Option<Project>, StoreError>;

    /// The project at exactly `path` (git URLs name a project, not a repository below it).
    fn project_by_path(&self, path: &NamespacePath) -> Result<Option<Project>, StoreError>;
}

/// What authentication needs of deploy tokens.
pub trait DeployTokenLookup: Send + Sync {
    /// The token whose secret digests to `digest`, revoked or not.
    fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError>;

    /// The token with this id, revoked or not. LFS download links name their token by id
    /// and re-check it on use, so revocation stops downloads on the very next request.
    fn find_by_id(&self, id: i64) -> Result<Option<DeployToken>, StoreError>;
}

/// Group settings the realms read on every request (so a change needs no restart).
pub trait GroupSettings: Send + Sync {
    /// Is the Dependency Proxy enabled for this group? A group that no longer exists is off.
    fn dependency_proxy_enabled(&self, group_id: i64) -> Result<bool, StoreError>;
}

/// A user as stored, with the password hash sign-in compares against.
#[derive(Debug, Clone)]
pub struct StoredUser {
    pub user: User,
    /// argon2id PHC string; `None`: no password sign-in.
    pub password_hash: Option<String>,
}

/// What authentication needs of users: sign-in by password or personal access token, and
/// the memberships the rules decide on.
pub trait UserDirectory: Send + Sync {
    /// The user with this username (case-insensitive) and their password hash, if any.
    fn find_user_by_username(&self, username: &str) -> Result<Option<StoredUser>, StoreError>;

    fn find_user(&self, id: i64) -> Result<Option<User>, StoreError>;

    /// Every membership of the user, with the paths of their groups and projects.
    fn memberships_of(&self, user_id: i64) -> Result<Vec<Membership>, StoreError>;

    /// The personal access token with this id, revoked or not. LFS links name the PAT that
    /// asked and re-check it on use, so revocation stops them on the very next request.
    fn find_pat(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError>;

    /// The personal access token whose secret digests to `digest`, revoked or not.
    fn find_pat_by_digest(
        &self,
        digest: &HashedToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError>;
}

/// Groups and projects for management: listing, lookups by id, and the writes.
pub trait NamespaceStore: Send + Sync {
    fn group_by_id(&self, id: i64) -> Result<Option<Group>, StoreError>;
    fn group_by_path(&self, path: &NamespacePath) -> Result<Option<Group>, StoreError>;
    /// Every group, by path.
    fn list_groups(&self) -> Result<Vec<Group>, StoreError>;
    fn project_by_id(&self, id: i64) -> Result<Option<Project>, StoreError>;
    /// Every project, by path.
    fn list_projects(&self) -> Result<Vec<Project>, StoreError>;

    /// Creates a group below `parent` (which must exist: `NotFound` otherwise); `Conflict`
    /// when a group or project holds the path.
    fn create_group(
        &self,
        path: &NamespacePath,
        dependency_proxy: bool,
        event: &NewAuditEvent,
    ) -> Result<Group, StoreError>;

    /// Creates a project, under the same rules as a group.
    fn create_project(
        &self,
        path: &NamespacePath,
        visibility: Visibility,
        event: &NewAuditEvent,
    ) -> Result<Project, StoreError>;

    /// Turns the group's Dependency Proxy on or off; effective on the next token request.
    fn set_dependency_proxy(
        &self,
        group_id: i64,
        enabled: bool,
        event: &NewAuditEvent,
    ) -> Result<Group, StoreError>;
}

/// What the manager decides when creating a token; the store adds id and timestamps.
#[derive(Debug, Clone)]
pub struct NewDeployToken {
    pub owner: TokenOwner,
    pub name: String,
    pub custom_username: Option<String>,
    pub scopes: Vec<TokenScope>,
    pub expires_at: Option<NaiveDate>,
    pub created_by: Option<i64>,
    /// AES-256-GCM sealed secret: only for the CI token `wvs-deploy-token` (SPEC §1).
    pub sealed_secret: Option<Vec<u8>>,
}

/// The result of a revocation request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    Revoked,
    AlreadyRevoked,
}

/// Deploy tokens for management, and the batched `last_used_at` writes.
pub trait DeployTokenStore: Send + Sync {
    /// Every token of a project or group, revoked and expired ones included, oldest first.
    fn deploy_tokens_of(&self, owner: &TokenOwner) -> Result<Vec<DeployToken>, StoreError>;

    /// Every deploy token of every namespace (the admin listing), oldest first.
    fn all_deploy_tokens(&self) -> Result<Vec<DeployToken>, StoreError>;

    /// The project's CI tokens (named `wvs-deploy-token`, with a sealed secret), newest
    /// first, with their sealed secrets.
    fn ci_deploy_tokens(&self, project_id: i64) -> Result<Vec<(DeployToken, Vec<u8>)>, StoreError>;

    /// Stores the token and `event` (its `deploy_token_id` set to the new id) together.
    fn create_deploy_token(
        &self,
        new: &NewDeployToken,
        digest: &HashedToken,
        event: &NewAuditEvent,
    ) -> Result<DeployToken, StoreError>;

    /// Revokes at once: the next request with this token is refused. `event` commits with
    /// the revocation and is not written when the token was already revoked; `NotFound`
    /// when there is no such token.
    fn revoke_deploy_token(
        &self,
        id: i64,
        at: DateTime<Utc>,
        event: &NewAuditEvent,
    ) -> Result<Revocation, StoreError>;

    /// Records `last_used_at` for a batch of tokens (called off the request path). A
    /// token's first use is an audit event (SPEC §7), written in the same transaction as
    /// built by `first_use` from the token as stored (at the time of the use).
    fn record_deploy_token_uses(
        &self,
        uses: &[(i64, DateTime<Utc>)],
        first_use: &dyn Fn(&DeployToken) -> NewAuditEvent,
    ) -> Result<(), StoreError>;
}

/// Where a membership is added: the namespace's id, resolved by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberOf {
    Group(i64),
    Project(i64),
}

/// A personal access token about to be stored (its secret only as a digest).
#[derive(Debug, Clone)]
pub struct NewPat {
    pub user_id: i64,
    pub name: String,
    pub scopes: Vec<PatScope>,
    pub expires_at: Option<NaiveDate>,
}

/// Users, memberships and personal access tokens for management.
pub trait UserStore: Send + Sync {
    /// Every user, by id.
    fn list_users(&self) -> Result<Vec<User>, StoreError>;

    /// `Conflict` when the username is taken (case-insensitively).
    fn create_user(
        &self,
        username: &str,
        password_hash: Option<&str>,
        is_admin: bool,
        event: &NewAuditEvent,
    ) -> Result<User, StoreError>;

    /// Blocks (`true`) or unblocks the user with `event`; `false` (and no event) when it
    /// already was so or does not exist.
    fn set_user_blocked(
        &self,
        user_id: i64,
        blocked: bool,
        at: DateTime<Utc>,
        event: &NewAuditEvent,
    ) -> Result<bool, StoreError>;

    /// Deletes the user, their memberships, personal access tokens and sessions, with
    /// `event`. Deploy tokens they created stay (tokens outlive their creator).
    fn delete_user(&self, user_id: i64, event: &NewAuditEvent) -> Result<bool, StoreError>;

    /// Adds the membership, or changes its role when the user is already a member there.
    /// Returns the previous role, if any. `event` is built from that previous role, in the
    /// same transaction.
    fn set_membership(
        &self,
        user_id: i64,
        of: MemberOf,
        role: Role,
        event: &dyn Fn(Option<Role>) -> NewAuditEvent,
    ) -> Result<Option<Role>, StoreError>;

    /// Removes a membership; `false` (and no event) when there was none.
    fn remove_membership(
        &self,
        user_id: i64,
        of: MemberOf,
        event: &NewAuditEvent,
    ) -> Result<bool, StoreError>;

    fn create_pat(
        &self,
        new: &NewPat,
        digest: &HashedToken,
        event: &NewAuditEvent,
    ) -> Result<PersonalAccessToken, StoreError>;

    /// Revokes a PAT at once; `false` (and no event) if it does not exist or was already
    /// revoked.
    fn revoke_pat(
        &self,
        id: i64,
        at: DateTime<Utc>,
        event: &NewAuditEvent,
    ) -> Result<bool, StoreError>;
}

/// A file about to be recorded, with the package version it belongs to (created if new).
#[derive(Debug, Clone)]
pub struct NewPackageFile {
    pub project_id: i64,
    pub format: PackageFormat,
    pub name: String,
    pub normalized_name: String,
    pub version: String,
    /// Format-specific JSON for the version; `None` keeps what is stored.
    pub metadata: Option<String>,
    pub file_name: String,
    pub size: i64,
    pub digests: Digests,
    /// Who uploaded it: the principal's name, and its deploy token or user id.
    pub uploaded_by: String,
    pub deploy_token_id: Option<i64>,
    pub user_id: Option<i64>,
    /// Tags (npm's dist-tags) to point at this version, in the same transaction.
    pub tags: Vec<String>,
}

/// What a publish may do to what is already there, by format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishMode {
    /// A file of the same name in the version is replaced (generic packages).
    ReplaceFile,
    /// A file of the same name in the version is refused (`Conflict`): PyPI's "File
    /// already exists".
    NewFile,
    /// An existing version is refused (`Conflict`): npm versions are immutable.
    NewVersion,
}

/// The result of a publish: the version, the file, and the blob of a replaced file if no
/// other file refers to it any more (the caller removes it).
#[derive(Debug, Clone)]
pub struct Published {
    pub package: Package,
    pub file: PackageFile,
    pub unreferenced: Option<String>,
}

/// Package versions, their files and tags. Reads take a set of projects, so the group and
/// instance endpoints read every project the caller may see in one query.
pub trait PackageStore: Send + Sync {
    /// The project's packages (of one format, or all), newest first.
    fn project_packages(
        &self,
        project_id: i64,
        format: Option<PackageFormat>,
    ) -> Result<Vec<Package>, StoreError>;

    fn package(&self, id: i64) -> Result<Option<Package>, StoreError>;

    fn package_files(&self, package_id: i64) -> Result<Vec<PackageFile>, StoreError>;

    /// Every version of a package in any of `projects`, with its files, oldest first.
    fn versions_of(
        &self,
        projects: &[i64],
        format: PackageFormat,
        normalized_name: &str,
    ) -> Result<Vec<(Package, Vec<PackageFile>)>, StoreError>;

    /// The distinct normalized names of a format's packages in `projects`, sorted.
    fn package_names(
        &self,
        projects: &[i64],
        format: PackageFormat,
    ) -> Result<Vec<String>, StoreError>;

    /// The file with this SHA-256 and name in a package of `projects`.
    fn file_by_digest(
        &self,
        projects: &[i64],
        format: PackageFormat,
        sha256: &str,
        file_name: &str,
    ) -> Result<Option<(Package, PackageFile)>, StoreError>;

    /// A named file of one version in one project.
    fn version_file(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        version: &str,
        file_name: &str,
    ) -> Result<Option<(Package, PackageFile)>, StoreError>;

    /// Records the file (creating its version if new) and `event`, in one transaction.
    fn publish(
        &self,
        new: &NewPackageFile,
        mode: PublishMode,
        event: &NewAuditEvent,
    ) -> Result<Published, StoreError>;

    /// Deletes a version and its files and tags with `event`; returns the blobs no other
    /// file refers to any more (the caller removes them).
    fn delete_package(&self, id: i64, event: &NewAuditEvent) -> Result<Vec<String>, StoreError>;

    /// Whether any package file names the blob `sha256` (a refused publish removes a blob
    /// only no file names).
    fn blob_referenced(&self, sha256: &str) -> Result<bool, StoreError>;

    /// Replaces a version's format metadata with `event`, in one transaction (`NotFound`
    /// when the version is gone): Cargo's yank flag lives there.
    fn set_package_metadata(
        &self,
        id: i64,
        metadata: &str,
        event: &NewAuditEvent,
    ) -> Result<(), StoreError>;

    /// The tags of a package in a project: `(tag, version)`, by tag.
    fn package_tags(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
    ) -> Result<Vec<(String, String)>, StoreError>;

    /// Points `tag` at `version` (which must exist: `NotFound` otherwise).
    fn set_package_tag(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        tag: &str,
        version: &str,
    ) -> Result<(), StoreError>;

    /// Removes a tag; `false` when there was none.
    fn remove_package_tag(
        &self,
        project_id: i64,
        format: PackageFormat,
        normalized_name: &str,
        tag: &str,
    ) -> Result<bool, StoreError>;
}

/// A live browser session of the settings pages, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    pub user_id: i64,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// Sessions, keyed by the digest of the cookie value (never the value itself).
pub trait SessionStore: Send + Sync {
    /// Stores a new session, dropping ended ones on the way.
    fn create_session(
        &self,
        digest: &HashedToken,
        user_id: i64,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The session with this digest, unless it has ended by `now`.
    fn find_session(
        &self,
        digest: &HashedToken,
        now: DateTime<Utc>,
    ) -> Result<Option<StoredSession>, StoreError>;

    /// Ends a session (sign-out). Unknown digests are fine: the result is the same. Its
    /// flashes go with it.
    fn delete_session(&self, digest: &HashedToken) -> Result<(), StoreError>;

    /// Keeps a sealed one-shot message for `page` of the session `session` (which must
    /// exist), dropping that session's flashes created before `expired_before` and all but
    /// its newest [`MAX_FLASHES_PER_SESSION`], so a client looping on POSTs cannot grow the
    /// table.
    fn put_flash(
        &self,
        session: &HashedToken,
        page: &str,
        sealed: &[u8],
        now: DateTime<Utc>,
        expired_before: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Removes and returns the session's flashes for `page` created at or after
    /// `not_before`, oldest first. Two instances rendering the page at once never both
    /// get one: it is deleted and returned in one statement.
    fn take_flashes(
        &self,
        session: &HashedToken,
        page: &str,
        not_before: DateTime<Utc>,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
}

/// Flashes kept per session at most.
pub const MAX_FLASHES_PER_SESSION: i64 = 20;

/// The audit log: append-only, but for the retention the operator set.
pub trait AuditLog: Send + Sync {
    /// An event that belongs to no change (a failed authentication).
    fn record_audit(&self, event: &NewAuditEvent) -> Result<(), StoreError>;

    /// Events at or after `since` (all when `None`), oldest first, at most `limit`.
    fn audit_events(
        &self,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>, StoreError>;

    /// Deletes events before `before`, at most `batch` of them (one short transaction, so
    /// pruning a large backlog never holds the write lock or grows the journal for long);
    /// returns how many went. Callers repeat until it returns less than `batch`.
    fn prune_audit(&self, before: DateTime<Utc>, batch: u32) -> Result<u64, StoreError>;
}

/// Is the database there? For `/-/health`.
pub trait Health: Send + Sync {
    fn ping(&self) -> Result<(), StoreError>;
}

/// The reads every realm makes per request (authentication, projects, group settings): the
/// part the lookup cache can answer from memory.
pub trait RealmReads: DeployTokenLookup + ProjectDirectory + UserDirectory + GroupSettings {}

impl<T> RealmReads for T where
    T: DeployTokenLookup + ProjectDirectory + UserDirectory + GroupSettings
{
}

/// An error that may stand for a storage failure, so a first attempt answered from memory
/// only can tell "needs I/O" (retry on the blocking pool) from a real answer.
pub trait StoreFailure {
    fn store_error(&self) -> Option<&StoreError>;

    fn needs_io(&self) -> bool {
        matches!(self.store_error(), Some(StoreError::NotInMemory))
    }
}

impl StoreFailure for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

/// Everything a backend implements; what the app holds as `Arc<dyn Store>`.
pub trait Store:
    ProjectDirectory
    + DeployTokenLookup
    + GroupSettings
    + UserDirectory
    + NamespaceStore
    + DeployTokenStore
    + UserStore
    + SessionStore
    + AuditLog
    + Health
    + PackageStore
{
}

impl<T> Store for T where
    T: ProjectDirectory
        + DeployTokenLookup
        + GroupSettings
        + UserDirectory
        + NamespaceStore
        + DeployTokenStore
        + UserStore
        + SessionStore
        + AuditLog
        + Health
        + PackageStore
{
}
