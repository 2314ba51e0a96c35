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
//!
//! The cache is generic over its "has anything changed" source ([`ChangeWatch`]): SQLite's
//! is the WAL-index header (`sqlite/wal_watch.rs`); a PostgreSQL backend brings its own.
//! [`MemoryOnly`] is the same cache answering from memory alone, so a request whose reads
//! are all remembered never leaves its async worker (`crate::store::Reads`).
//!
//! How lookups were answered is counted in [`LookupStats`] (plain atomics, read by the
//! metrics at each scrape), so an operator sees whether the cache is doing its work.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::domain::deploy_token::DeployToken;
use crate::domain::namespace::Project;
use crate::domain::path::NamespacePath;
use crate::domain::personal_access_token::PersonalAccessToken;
use crate::domain::secret::HashedToken;
use crate::domain::store::{
    DeployTokenLookup, GroupSettings, ProjectDirectory, RealmReads, StoreError, StoredUser,
    UserDirectory,
};
use crate::domain::user::{Membership, User};

/// Entries per map: a deploy token and a project take a few hundred bytes each.
pub const MAX_ENTRIES: usize = 10_000;

/// Tells whether the database changed, without a transaction. Equal versions mean equal
/// content; every commit of every process must change the version before it returns.
pub trait ChangeWatch: Send + Sync + 'static {
    type Version: Copy + Eq + Send + 'static;

    /// The current version, or `None` when it cannot be told right now: the caller then
    /// reads the database.
    fn version(&self) -> Option<Self::Version>;
}

/// The watch of a backend whose lookups are never remembered: no version is ever known,
/// so every lookup reads the database.
pub struct Unwatched;

impl ChangeWatch for Unwatched {
    type Version = ();

    fn version(&self) -> Option<()> {
        None
    }
}

/// How the remembered lookups were answered, by map.
#[derive(Debug, Default)]
pub struct LookupStats {
    pub tokens: Outcomes,
    pub projects: Outcomes,
}

/// One map's answers. Each lookup counts once, whether it was tried from memory on the async
/// worker or on the blocking pool; a decision repeated on the pool (`Reads::run`) counts its
/// lookups again.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Answered from memory.
    pub hit: AtomicU64,
    /// Read from the database at a known version (and remembered if found).
    pub miss: AtomicU64,
    /// Read from the database because the version could not be told (a commit under way,
    /// or no watch at all).
    pub bypass: AtomicU64,
}

impl Outcomes {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl LookupStats {
    /// `(lookup, result, count)` for every map and outcome.
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        let mut all = Vec::with_capacity(6);
        for (lookup, o) in [("token", &self.tokens), ("project", &self.projects)] {
            for (result, n) in [("hit", &o.hit), ("miss", &o.miss), ("bypass", &o.bypass)] {
                all.push((lookup, result, n.load(Ordering::Relaxed)));
            }
        }
        all
    }
}

/// What was read at one database version.
struct Entries<V> {
    version: V,
    /// Only `Some`: see the module comment.
    tokens: HashMap<HashedToken, Option<DeployToken>>,
    /// Repository name → its owning project, `None` for "no project owns it".
    projects: HashMap<String, Option<Project>>,
}

/// A backend's realm reads with its token and project lookups remembered per version.
pub struct CachedLookups<W: ChangeWatch> {
    store: Arc<dyn RealmReads>,
    /// `None`: no cache, every lookup reads the database.
    watch: Option<W>,
    entries: Mutex<Option<Entries<W::Version>>>,
    stats: Arc<LookupStats>,
}

impl<W: ChangeWatch> CachedLookups<W> {
    pub fn new(store: Arc<dyn RealmReads>, watch: Option<W>) -> Self {
        Self {
            store,
            watch,
            entries: Mutex::new(None),
            stats: Arc::default(),
        }
    }

    /// How lookups have been answered so far.
    pub fn stats(&self) -> Arc<LookupStats> {
        self.stats.clone()
    }

    /// Runs `f` on the entries of `version`, emptying them first if they are of another.
    fn with_entries<T>(
        &self,
        version: W::Version,
        f: impl FnOnce(&mut Entries<W::Version>) -> T,
    ) -> T {
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
        map: fn(&mut Entries<W::Version>) -> &mut HashMap<K, V>,
        outcomes: &Outcomes,
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
        let Some(version) = self.watch.as_ref().and_then(ChangeWatch::version) else {
            Outcomes::count(&outcomes.bypass);
            return read();
        };
        if let Some(hit) = self.with_entries(version, |e| map(e).get(key).cloned()) {
            Outcomes::count(&outcomes.hit);
            return Ok(hit);
        }
        Outcomes::count(&outcomes.miss);
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

    /// The remembered answer for `key` at the current version, if there is one. Only a hit
    /// is counted: without one the lookup is repeated by [`Self::cached`], which counts it.
    fn remembered<K, Q, V>(
        &self,
        map: fn(&mut Entries<W::Version>) -> &mut HashMap<K, V>,
        outcomes: &Outcomes,
        key: &Q,
    ) -> Option<V>
    where
        K: Borrow<Q> + std::hash::Hash + Eq,
        Q: std::hash::Hash + Eq + ?Sized,
        V: Clone,
    {
        let version = self.watch.as_ref().and_then(ChangeWatch::version)?;
        let hit = self.with_entries(version, |e| map(e).get(key).cloned());
        if hit.is_some() {
            Outcomes::count(&outcomes.hit);
        }
        hit
    }
}

impl<V> Entries<V> {
    fn empty(version: V) -> Self {
        Self {
            version,
            tokens: HashMap::new(),
            projects: HashMap::new(),
        }
    }
}

impl<W: ChangeWatch> DeployTokenLookup for CachedLookups<W> {
    fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError> {
        self.cached(
            |e| &mut e.tokens,
            &self.stats.tokens,
            digest,
            || self.store.find_by_digest(digest),
            Option::is_some,
        )
    }

    fn find_by_id(&self, id: i64) -> Result<Option<DeployToken>, StoreError> {
        self.store.find_by_id(id)
    }
}

impl<W: ChangeWatch> ProjectDirectory for CachedLookups<W> {
    fn owning_project(&self, repository: &str) -> Result<Option<Project>, StoreError> {
        self.cached(
            |e| &mut e.projects,
            &self.stats.projects,
            repository,
            || self.store.owning_project(repository),
            |_| true,
        )
    }

    fn project_by_path(&self, path: &NamespacePath) -> Result<Option<Project>, StoreError> {
        self.store.project_by_path(path)
    }
}

/// Users and group settings are not remembered: they are read on password and PAT logins
/// and proxy requests, which are rare beside deploy-token logins.
impl<W: ChangeWatch> UserDirectory for CachedLookups<W> {
    fn find_user_by_username(&self, username: &str) -> Result<Option<StoredUser>, StoreError> {
        self.store.find_user_by_username(username)
    }

    fn find_user(&self, id: i64) -> Result<Option<User>, StoreError> {
        self.store.find_user(id)
    }

    fn memberships_of(&self, user_id: i64) -> Result<Vec<Membership>, StoreError> {
        self.store.memberships_of(user_id)
    }

    fn find_pat(&self, id: i64) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.store.find_pat(id)
    }

    fn find_pat_by_digest(
        &self,
        digest: &HashedToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        self.store.find_pat_by_digest(digest)
    }
}

impl<W: ChangeWatch> GroupSettings for CachedLookups<W> {
    fn dependency_proxy_enabled(&self, group_id: i64) -> Result<bool, StoreError> {
        self.store.dependency_proxy_enabled(group_id)
    }
}

/// The cache answering from memory alone: a remembered token or owning project, or
/// [`StoreError::NotInMemory`] for anything that would need the database.
pub struct MemoryOnly<W: ChangeWatch>(pub Arc<CachedLookups<W>>);

impl<W: ChangeWatch> DeployTokenLookup for MemoryOnly<W> {
    fn find_by_digest(&self, digest: &HashedToken) -> Result<Option<DeployToken>, StoreError> {
        self.0
            .remembered(|e| &mut e.tokens, &self.0.stats.tokens, digest)
            .ok_or(StoreError::NotInMemory)
    }

    fn find_by_id(&self, _id: i64) -> Result<Option<DeployToken>, StoreError> {
        Err(StoreError::NotInMemory)
    }
}

impl<W: ChangeWatch> ProjectDirectory for MemoryOnly<W> {
    fn owning_project(&self, repository: &str) -> Result<Option<Project>, StoreError> {
        self.0
            .remembered(|e| &mut e.projects, &self.0.stats.projects, repository)
            .ok_or(StoreError::NotInMemory)
    }

    fn project_by_path(&self, _path: &NamespacePath) -> Result<Option<Project>, StoreError> {
        Err(StoreError::NotInMemory)
    }
}

impl<W: ChangeWatch> UserDirectory for MemoryOnly<W> {
    fn find_user_by_username(&self, _: &str) -> Result<Option<StoredUser>, StoreError> {
        Err(StoreError::NotInMemory)
    }

    fn find_user(&self, _: i64) -> Result<Option<User>, StoreError> {
        Err(StoreError::NotInMemory)
    }

    fn memberships_of(&self, _: i64) -> Result<Vec<Membership>, StoreError> {
        Err(StoreError::NotInMemory)
    }

    fn find_pat(&self, _: i64) -> Result<Option<PersonalAccessToken>, StoreError> {
        Err(StoreError::NotInMemory)
    }

    fn find_pat_by_digest(
        &self,
        _: &HashedToken,
    ) -> Result<Option<PersonalAccessToken>, StoreError> {
        Err(StoreError::NotInMemory)
    }
}

impl<W: ChangeWatch> GroupSettings for MemoryOnly<W> {
    fn dependency_proxy_enabled(&self, _: i64) -> Result<bool, StoreError> {
        Err(StoreError::NotInMemory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{AuditAction, AuditActor, NewAuditEvent};
    use crate::domain::deploy_token::{TokenOwner, TokenScope};
    use crate::domain::namespace::Visibility;
    use crate::domain::store::{DeployTokenStore, NamespaceStore, NewDeployToken};
    use crate::store::sqlite::{SqliteStore, WalWatch};

    fn path(p: &str) -> NamespacePath {
        NamespacePath::parse(p).expect("path")
    }

    fn event() -> NewAuditEvent {
        NewAuditEvent::by(&AuditActor::cli(), AuditAction::GroupCreated, "test")
    }

    type Cache = CachedLookups<WalWatch>;

    /// A cache over one pool (watched or not) and a second pool for the writes, as another
    /// process would make them.
    fn setup_with(watched: bool) -> (tempfile::TempDir, Cache, SqliteStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("wvs.db");
        let writer = SqliteStore::open(&file, 2).expect("open");
        writer
            .create_group(&path("acme"), false, &event())
            .expect("group");
        let reader = SqliteStore::open(&file, 2).expect("second open");
        let watch = watched.then(|| reader.watch().expect("watch"));
        (dir, CachedLookups::new(Arc::new(reader), watch), writer)
    }

    fn setup() -> (tempfile::TempDir, Cache, SqliteStore) {
        setup_with(true)
    }

    /// Revokes through `writer`; the cache's next answer must say so.
    fn assert_revocation_seen(cache: &Cache, writer: &SqliteStore, id: i64, digest: &HashedToken) {
        writer
            .revoke_deploy_token(id, chrono::Utc::now(), &event())
            .expect("revoke");
        let found = cache
            .find_by_digest(digest)
            .expect("lookup")
            .expect("found");
        assert!(found.revoked_at.is_some(), "a stale row was served");
    }

    fn token(writer: &SqliteStore, secret: &str) -> DeployToken {
        let project = match writer.project_by_path(&path("acme/app")).expect("lookup") {
            Some(p) => p,
            None => writer
                .create_project(&path("acme/app"), Visibility::Private, &event())
                .expect("project"),
        };
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
            .create_deploy_token(&new, &HashedToken::of(secret), &event())
            .expect("token")
    }

    fn cached_tokens(cache: &Cache) -> usize {
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
        let stats = cache.stats();
        let tokens = &stats.tokens;
        assert_eq!(tokens.miss.load(Ordering::Relaxed), 1);
        assert_eq!(tokens.hit.load(Ordering::Relaxed), 2);
        assert_revocation_seen(&cache, &writer, t.id, &digest);
        assert_eq!(tokens.miss.load(Ordering::Relaxed), 2, "a change is a miss");
    }

    #[test]
    fn the_memory_only_view_answers_remembered_reads_and_nothing_else() {
        let (_dir, cache, writer) = setup();
        let cache = Arc::new(cache);
        let memory = MemoryOnly(cache.clone());
        let t = token(&writer, "wvsdt-mem");
        let digest = HashedToken::of("wvsdt-mem");
        assert_eq!(
            memory.find_by_digest(&digest).err(),
            Some(StoreError::NotInMemory)
        );
        cache.find_by_digest(&digest).expect("lookup");
        let hit = memory.find_by_digest(&digest).expect("remembered");
        assert_eq!(hit.map(|t| t.id), Some(t.id));
        // The memory view's miss is counted once, by the database read that follows it.
        let counted: Vec<u64> = cache.stats().snapshot().iter().map(|s| s.2).collect();
        assert_eq!(counted, [1, 1, 0, 0, 0, 0], "token hit, token miss");
        assert!(cache
            .owning_project("acme/app/img")
            .expect("lookup")
            .is_some());
        assert!(memory
            .owning_project("acme/app/img")
            .expect("remembered")
            .is_some());
        assert_eq!(memory.find_by_id(t.id).err(), Some(StoreError::NotInMemory));
        // A change anywhere makes every remembered answer stale at once.
        writer
            .revoke_deploy_token(t.id, chrono::Utc::now(), &event())
            .expect("revoke");
        assert_eq!(
            memory.find_by_digest(&digest).err(),
            Some(StoreError::NotInMemory)
        );
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
            .create_project(&path("acme/new"), Visibility::Private, &event())
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
        assert_eq!(cache.stats().tokens.bypass.load(Ordering::Relaxed), 2);
    }
}
