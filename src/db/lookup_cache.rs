//! The two reads of every registry token request — the deploy token by digest and the
//! project owning the repository — answered from memory while the database is unchanged.
//!
//! Why: those reads cost more than the rest of an ES256 token (see `wal_watch.rs`). Why it
//! is safe: an entry is only used while the database's version (the WAL-index header) is
//! the one observed *before* the entry was read, and every commit of any process changes
//! that version before it returns. So a revocation, an expiry date moved, a project
//! created — by the CLI, the API or the pages — takes effect on the next request, as
//! without the cache. Expiry itself is decided per request from the row's date. When the
//! version cannot be read (a commit is under way), the database answers.
//!
//! Only found tokens are kept: unknown secrets (guessing) always reach the database and
//! cannot fill memory. Each map holds at most [`MAX_ENTRIES`] and is emptied when full.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::wal_watch::{DbVersion, WalWatch};
use super::Db;
use crate::domain::deploy_token::{DeployToken, HashedToken};
use crate::domain::namespace::Project;
use crate::domain::path::NamespacePath;
use crate::domain::store::{DeployTokenLookup, ProjectDirectory, StoreError};

/// Entries per map: a deploy token and a project take a few hundred bytes each.
pub const MAX_ENTRIES: usize = 10_000;

/// What was read at one database version.
struct Entries {
    version: DbVersion,
    /// Only `Some`: see the module comment.
    tokens: HashMap<HashedToken, Option<DeployToken>>,
    /// Repository name → its owning project, `None` for "no project owns it".
    projects: HashMap<String, Option<Project>>,
}

/// `Db` with its token and project lookups remembered per database version.
pub struct CachedLookups {
    db: Db,
    /// `None`: no cache, every lookup reads the database.
    watch: Option<WalWatch>,
    entries: Mutex<Option<Entries>>,
}

impl CachedLookups {
    pub fn new(db: Db, watch: Option<WalWatch>) -> Self {
        Self {
            db,
            watch,
            entries: Mutex::new(None),
        }
    }

    /// Runs `f` on the entries of `version`, emptying them first if they are of another.
    fn with_entries<T>(&self, version: DbVersion, f: impl FnOnce(&mut Entries) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of plain maps.
        let mut guard = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let entries = guard.get_or_insert_with(|| Entries::empty(version));
        if entries.version != version {
            *entries = Entries::empty(version);
        }
        f(entries)
    }

    /// `lookup` from memory if `version`'s entries have it; else from `read`, remembered.
    /// `key` is borrowed (`&str` for a `String` key), so a hit allocates nothing.
    fn cached<K, Q, V>(
        &self,
        map: fn(&mut Entries) -> &mut HashMap<K, V>,
        key: &Q,
        read: impl FnOnce() -> Result<V, StoreError>,
        keep: impl Fn(&V) -> bool,
    ) -> Result<V, StoreError>
    where
        K: Borrow<Q> + std::hash::Hash + Eq,
        Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
        V: Clone,
    {
        // The version is taken before the read, so a commit racing with the read leaves an
        // entry under the old version, which the next request no longer uses.
        let Some(version) = self.watch.as_ref().and_then(WalWatch::version) else {
            return read();
        };
        if let Some(hit) = self.with_entries(version, |e| map(e).get(key).cloned()) {
            return Ok(hit);
        }
        let value = read()?;
        if keep(&value) {
            self.with_entries(version, |e| {
                let map = map(e);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
                map.insert(key.to_owned(), value.clone());
            });
        }
        Ok(value)
    }
}

impl Entries {
    fn empty(version: DbVersion) -> Self {
        Self {
            version,
            tokens: HashMap::new(),
            projects: HashMap::new(),
        }
    }
}

impl DeployTokenLookup for CachedLookups {
    fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError> {
        self.cached(
            |e| &mut e.tokens,
            digest,
            || self.db.find_by_digest(digest),
            Option::is_some,
        )
    }

    fn find_by_id(&self, id: i64) -> Result<Option<DeployToken>, StoreError> {
        self.db.find_by_id(id)
    }

    fn record_last_used(&self, uses: &[(i64, DateTime<Utc>)]) -> Result<(), StoreError> {
        self.db.record_last_used(uses)
    }
}

impl ProjectDirectory for CachedLookups {
    fn owning_project(&self, repository: &str) -> Result<Option<Project>, StoreError> {
        self.cached(
            |e| &mut e.projects,
            repository,
            || self.db.owning_project(repository),
            |_| true,
        )
    }

    fn project_by_path(&self, path: &NamespacePath) -> Result<Option<Project>, StoreError> {
        self.db.project_by_path(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::NewDeployToken;
    use crate::domain::audit::AuditActor;
    use crate::domain::deploy_token::{TokenOwner, TokenScope};
    use crate::domain::namespace::Visibility;

    fn path(p: &str) -> NamespacePath {
        NamespacePath::parse(p).expect("path")
    }

    /// A cache over one pool (watched or not) and a second pool for the writes, as another
    /// process would make them.
    fn setup_with(watched: bool) -> (tempfile::TempDir, CachedLookups, Db) {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = Db::open(dir.path()).expect("open");
        writer.create_group(&path("acme"), false).expect("group");
        let reader = Db::open(dir.path()).expect("second open");
        let watch = watched.then(|| WalWatch::open(&Db::file(dir.path())).expect("watch"));
        (dir, CachedLookups::new(reader, watch), writer)
    }

    fn setup() -> (tempfile::TempDir, CachedLookups, Db) {
        setup_with(true)
    }

    /// Revokes through `writer`; the cache's next answer must say so.
    fn assert_revocation_seen(cache: &CachedLookups, writer: &Db, id: i64, digest: &HashedToken) {
        writer
            .revoke_deploy_token(id, &AuditActor::cli())
            .expect("revoke");
        let found = cache
            .find_by_digest(digest)
            .expect("lookup")
            .expect("found");
        assert!(found.revoked_at.is_some(), "a stale row was served");
    }

    fn token(writer: &Db, secret: &str) -> DeployToken {
        let project = writer
            .create_project(&path("acme/app"), Visibility::Private)
            .or_else(|_| {
                writer
                    .find_project(&path("acme/app"))
                    .map(|p| p.expect("project"))
            })
            .expect("project");
        let new = NewDeployToken {
            owner: TokenOwner::Project {
                id: project.id,
                path: project.path,
            },
            name: secret.to_string(),
            custom_username: None,
            scopes: vec![TokenScope::ReadRegistry],
            expires_at: None,
            created_by: None,
            sealed_secret: None,
        };
        writer
            .create_deploy_token(&new, &HashedToken::of(secret), &AuditActor::cli())
            .expect("token")
    }

    fn cached_tokens(cache: &CachedLookups) -> usize {
        let guard = cache.entries.lock().expect("lock");
        guard.as_ref().map_or(0, |e| e.tokens.len())
    }

    #[test]
    fn a_revocation_by_another_connection_is_seen_on_the_next_lookup() {
        let (_dir, cache, writer) = setup();
        let t = token(&writer, "wvsdt-first");
        let digest = HashedToken::of("wvsdt-first");
        for _ in 0..3 {
            let found = cache
                .find_by_digest(&digest)
                .expect("lookup")
                .expect("found");
            assert_eq!((found.id, found.revoked_at), (t.id, None));
        }
        assert_eq!(cached_tokens(&cache), 1, "answered from memory");
        assert_revocation_seen(&cache, &writer, t.id, &digest);
    }

    #[test]
    fn unknown_secrets_are_not_remembered() {
        let (_dir, cache, writer) = setup();
        let digest = HashedToken::of("wvsdt-later");
        assert!(cache.find_by_digest(&digest).expect("lookup").is_none());
        assert_eq!(cached_tokens(&cache), 0);
        let t = token(&writer, "wvsdt-later");
        let found = cache
            .find_by_digest(&digest)
            .expect("lookup")
            .expect("created since");
        assert_eq!(found.id, t.id);
    }

    #[test]
    fn a_project_created_later_owns_its_repositories_at_once() {
        let (_dir, cache, writer) = setup();
        assert!(cache
            .owning_project("acme/new/img")
            .expect("lookup")
            .is_none());
        assert!(cache
            .owning_project("acme/new/img")
            .expect("lookup")
            .is_none());
        writer
            .create_project(&path("acme/new"), Visibility::Private)
            .expect("project");
        let owner = cache.owning_project("acme/new/img").expect("lookup");
        assert_eq!(owner.map(|p| p.path), Some(path("acme/new")));
    }

    #[test]
    fn memory_is_bounded() {
        let (_dir, cache, _writer) = setup();
        for i in 0..MAX_ENTRIES + 5 {
            cache
                .owning_project(&format!("acme/none/img{i}"))
                .expect("lookup");
        }
        let guard = cache.entries.lock().expect("lock");
        let n = guard.as_ref().map_or(0, |e| e.projects.len());
        assert!(n > 0 && n <= MAX_ENTRIES, "{n} entries");
    }

    #[test]
    fn without_a_watch_every_lookup_reads_the_database() {
        let (_dir, cache, writer) = setup_with(false);
        let t = token(&writer, "wvsdt-nowatch");
        let digest = HashedToken::of("wvsdt-nowatch");
        assert!(cache.find_by_digest(&digest).expect("lookup").is_some());
        assert_eq!(cached_tokens(&cache), 0);
        assert_revocation_seen(&cache, &writer, t.id, &digest);
    }
}
