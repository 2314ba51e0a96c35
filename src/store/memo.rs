//! Answers found or rendered from many rows — a crate's index file, an artifact's Maven
//! metadata or the one stored file among its versions — remembered while the database is
//! unchanged.
//!
//! Why: such an answer joins one row per version, so without this a crate with 10^3 versions
//! costs a hundred times one with 10 on every request, even on the revalidations (`304`)
//! Cargo sends for every index file it already holds. Why it is safe: the same rule as
//! [`crate::store::lookup_cache`] — an entry is used only while the database's version is
//! the one observed *before* it was rendered, and every commit of any process changes that
//! version, so a publish or a yank shows on the next request. Only the rendering is kept:
//! who may read it is decided on every request, before the memo is asked.
//!
//! Bounds: at most [`MAX_ENTRIES`] entries and [`MAX_BYTES`] of bodies; the memo is emptied
//! when either would be passed, and an answer larger than a tenth of the byte bound is never
//! kept. Nothing is kept for names that render to nothing (unknown crates), so guessing
//! cannot fill it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::domain::package::{PackageFile, PackageFormat};
use crate::domain::store::StoreError;
use crate::store::lookup_cache::ChangeWatch;

/// Entries kept at most.
pub const MAX_ENTRIES: usize = 4096;
/// Body bytes kept at most.
pub const MAX_BYTES: usize = 64 << 20;

/// What an answer is for: one name (a crate, a file's path) of one format, read across
/// `projects` (one for a project's route; those the caller may read at a group or the
/// instance, so callers who see different projects never share an answer).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MemoKey {
    pub format: PackageFormat,
    pub projects: Vec<i64>,
    pub name: String,
}

impl MemoKey {
    fn weight(&self) -> usize {
        self.projects.len() * 8 + self.name.len()
    }
}

/// An answer and the validator clients revalidate it with.
#[derive(Debug)]
pub struct Rendered {
    pub content: Content,
    pub etag: String,
}

#[derive(Debug, Clone)]
pub enum Content {
    /// A body made from rows.
    Body(Bytes),
    /// A stored file, streamed from the blob store by whoever answers.
    Stored(PackageFile),
}

impl Rendered {
    /// A body made from rows.
    pub fn body(body: Bytes, etag: String) -> Self {
        Self {
            content: Content::Body(body),
            etag,
        }
    }

    /// Bytes the memo counts for this answer.
    fn weight(&self) -> usize {
        self.etag.len()
            + match &self.content {
                Content::Body(b) => b.len(),
                Content::Stored(_) => 256,
            }
    }
}

/// Rendered answers, remembered while the database is unchanged.
pub trait Memo: Send + Sync {
    /// The answer for `key`: remembered, or rendered now by `render` (`None`: nothing to
    /// answer, never remembered).
    fn rendered(
        &self,
        key: MemoKey,
        render: &mut dyn FnMut() -> Result<Option<Rendered>, StoreError>,
    ) -> Result<Option<Arc<Rendered>>, StoreError>;
}

struct Kept<V> {
    version: V,
    entries: HashMap<MemoKey, Arc<Rendered>>,
    bytes: usize,
}

/// The memo over a backend's change watch; without a watch every answer is rendered.
pub struct VersionedMemo<W: ChangeWatch> {
    watch: Option<W>,
    kept: Mutex<Option<Kept<W::Version>>>,
    max_entries: usize,
    max_bytes: usize,
}

impl<W: ChangeWatch> VersionedMemo<W> {
    pub fn new(watch: Option<W>) -> Self {
        Self::with_bounds(watch, MAX_ENTRIES, MAX_BYTES)
    }

    fn with_bounds(watch: Option<W>, max_entries: usize, max_bytes: usize) -> Self {
        Self {
            watch,
            kept: Mutex::new(None),
            max_entries,
            max_bytes,
        }
    }

    /// Runs `f` on what is kept for `version`, dropping what was kept for another.
    fn with_kept<T>(&self, version: W::Version, f: impl FnOnce(&mut Kept<W::Version>) -> T) -> T {
        // A poisoned lock only means another thread panicked mid-update of a plain map.
        let mut guard = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let kept = guard.get_or_insert_with(|| Kept {
            version,
            entries: HashMap::new(),
            bytes: 0,
        });
        if kept.version != version {
            *kept = Kept {
                version,
                entries: HashMap::new(),
                bytes: 0,
            };
        }
        f(kept)
    }

    /// Entries and body bytes kept now (for the tests of the bounds).
    #[cfg(test)]
    fn size(&self) -> (usize, usize) {
        let guard = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .map_or((0, 0), |k| (k.entries.len(), k.bytes))
    }
}

impl<W: ChangeWatch> Memo for VersionedMemo<W> {
    fn rendered(
        &self,
        key: MemoKey,
        render: &mut dyn FnMut() -> Result<Option<Rendered>, StoreError>,
    ) -> Result<Option<Arc<Rendered>>, StoreError> {
        // The version is taken before rendering, so a commit racing with it leaves an entry
        // under the old version, which the next request no longer uses.
        let Some(version) = self.watch.as_ref().and_then(ChangeWatch::version) else {
            return Ok(render()?.map(Arc::new));
        };
        if let Some(hit) = self.with_kept(version, |k| k.entries.get(&key).cloned()) {
            return Ok(Some(hit));
        }
        let Some(fresh) = render()?.map(Arc::new) else {
            return Ok(None);
        };
        let key_weight = key.weight();
        let len = fresh.weight() + key_weight;
        if len <= self.max_bytes / 10 {
            self.with_kept(version, |k| {
                if k.entries.len() >= self.max_entries || k.bytes + len > self.max_bytes {
                    k.entries.clear();
                    k.bytes = 0;
                }
                if let Some(old) = k.entries.insert(key, fresh.clone()) {
                    k.bytes -= old.weight() + key_weight;
                }
                k.bytes += len;
            });
        }
        Ok(Some(fresh))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A watch whose version the test moves, as a commit would.
    struct Manual(Arc<AtomicU32>);

    impl ChangeWatch for Manual {
        type Version = u32;
        fn version(&self) -> Option<u32> {
            match self.0.load(Ordering::SeqCst) {
                0 => None,
                v => Some(v),
            }
        }
    }

    fn key(name: &str) -> MemoKey {
        MemoKey {
            format: PackageFormat::Cargo,
            projects: vec![1],
            name: name.into(),
        }
    }

    fn body_of(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    fn bytes(content: &Content) -> Vec<u8> {
        match content {
            Content::Body(b) => b.to_vec(),
            Content::Stored(f) => panic!("a stored file: {f:?}"),
        }
    }

    fn answer(text: &str) -> Option<Rendered> {
        Some(Rendered::body(
            Bytes::copy_from_slice(text.as_bytes()),
            "e".into(),
        ))
    }

    #[test]
    fn answers_are_rendered_again_after_any_change() {
        let version = Arc::new(AtomicU32::new(1));
        let memo = VersionedMemo::new(Some(Manual(version.clone())));
        let renders = std::cell::Cell::new(0);
        let ask = |text: &str| {
            let got = memo
                .rendered(key("a"), &mut || {
                    renders.set(renders.get() + 1);
                    Ok(answer(text))
                })
                .expect("renders")
                .expect("an answer");
            bytes(&got.content)
        };
        assert_eq!(ask("one"), body_of("one"));
        assert_eq!(ask("two"), body_of("one"), "unchanged database: remembered");
        version.store(2, Ordering::SeqCst);
        assert_eq!(ask("two"), body_of("two"), "a commit: rendered again");
        version.store(0, Ordering::SeqCst);
        assert_eq!(
            ask("three"),
            body_of("three"),
            "no version: always rendered"
        );
        assert_eq!(ask("four"), body_of("four"));
        assert_eq!(renders.get(), 4);
    }

    #[test]
    fn nothing_is_kept_for_names_without_an_answer() {
        let memo = VersionedMemo::new(Some(Manual(Arc::new(AtomicU32::new(1)))));
        for i in 0..100 {
            let none = memo
                .rendered(key(&format!("guess{i}")), &mut || Ok(None))
                .expect("renders");
            assert!(none.is_none());
        }
        assert_eq!(memo.size(), (0, 0));
    }

    #[test]
    fn the_bounds_hold_past_them_and_answers_stay_right() {
        let memo = VersionedMemo::with_bounds(Some(Manual(Arc::new(AtomicU32::new(1)))), 8, 1000);
        // Entries past the count bound.
        for i in 0..50 {
            let name = format!("c{i}");
            let got = memo
                .rendered(key(&name), &mut || Ok(answer(&name)))
                .expect("renders")
                .expect("an answer");
            assert_eq!(bytes(&got.content), body_of(&name));
            let (entries, _) = memo.size();
            assert!(entries <= 8, "{entries} entries");
        }
        // Bytes past the byte bound: each answer is 91 bytes, 11 do not fit in 1000.
        let long = "x".repeat(90);
        for i in 0..30 {
            let got = memo
                .rendered(key(&format!("l{i}")), &mut || Ok(answer(&long)))
                .expect("renders")
                .expect("an answer");
            assert_eq!(bytes(&got.content), body_of(&long));
            let (_, bytes) = memo.size();
            assert!(bytes <= 1000, "{bytes} bytes");
        }
        // An answer over a tenth of the bound is served but not kept.
        let huge = "y".repeat(200);
        let before = memo.size();
        let got = memo
            .rendered(key("huge"), &mut || Ok(answer(&huge)))
            .expect("renders")
            .expect("an answer");
        assert_eq!(bytes(&got.content), body_of(&huge));
        assert_eq!(memo.size(), before);
    }
}
