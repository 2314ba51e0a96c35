//! Has the database changed? Answered without a transaction, by reading the header SQLite
//! keeps in the WAL index (`wvs.db-shm`).
//!
//! Why: a token request reads two rows, and each read transaction takes and drops a
//! shared lock on the WAL index. SQLite does that under one process-wide mutex held across
//! an `fcntl`, so two workers queue on it: `strace` counted ~2.4 `fcntl` and ~2.6 `futex`
//! calls per token, and answering from memory instead raised ES256 tokens/s by half
//! (`bench/token_bench.sh`). What remembers the rows (`lookup_cache.rs`) must still see a
//! revocation made by any process — `wvs-auth token revoke` is a separate process — on the
//! very next request.
//!
//! Every commit in WAL mode rewrites the WAL-index header before `COMMIT` returns: it bumps
//! `iChange`, and moves `mxFrame` and the frame checksum (a WAL restart changes the salts
//! too). The header is documented file format (<https://www.sqlite.org/walformat.html>
//! §2.1), shared by every SQLite version that opens the file, and SQLite's own readers check
//! it without a lock the same way: two copies, written second-then-first, compared. So the
//! 48 bytes of the header are a version of the whole database: equal bytes, same content.
//! Reading them is one `pread` of the page cache that SQLite's writers map: no lock, no
//! contention.
//!
//! The watch keeps a connection of its own open. SQLite truncates and rebuilds the WAL
//! index only when the first connection opens the database; while ours is open that cannot
//! happen, so a version seen once is never seen again for different content.
//!
//! Its descriptor of the index is never closed: closing any descriptor of a file drops
//! every POSIX lock the process holds on that file, SQLite's own on the index included, and
//! SQLite cannot know about a descriptor it did not open.

use std::fs::File;
use std::mem::ManuallyDrop;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Bytes of one copy of `WalIndexHdr`.
const HEADER_LEN: usize = 48;
/// `iVersion` of the only WAL-index format there is (`WALINDEX_MAX_VERSION`).
const WALINDEX_VERSION: u32 = 3_007_000;
/// Offset of `isInit` (after `iVersion`, padding and `iChange`).
const IS_INIT: usize = 12;

/// The database's content version: the WAL-index header's bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DbVersion([u8; HEADER_LEN]);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot open {0} to watch it: {1}")]
    Open(String, String),
    #[error("cannot open the WAL index {0}: {1}")]
    Index(String, std::io::Error),
    #[error("the WAL index {0} has no header this build understands")]
    Format(String),
}

/// Reads the WAL-index header of one database file.
pub struct WalWatch {
    /// Keeps the WAL index from being rebuilt (see the module comment). Never queried
    /// again; the mutex only makes the watch shareable between workers.
    _keeper: Mutex<Connection>,
    /// Never closed (see the module comment): one descriptor per watch, for the process's life.
    index: ManuallyDrop<File>,
}

impl WalWatch {
    /// Watches `db_file`, which must already be in WAL mode (`SqliteStore::open` makes it so).
    pub fn open(db_file: &Path) -> Result<Self, WatchError> {
        let shown = db_file.display().to_string();
        let keeper = Connection::open_with_flags(
            db_file,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| WatchError::Open(shown.clone(), e.to_string()))?;
        keeper
            .busy_timeout(Duration::from_secs(5))
            .map_err(|e| WatchError::Open(shown.clone(), e.to_string()))?;
        // A read maps the WAL index and takes the lock that keeps it from being rebuilt.
        keeper
            .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| WatchError::Open(shown.clone(), e.to_string()))?;
        // The name SQLite itself derived the index's from (symbolic links resolved), so the
        // watch reads the index SQLite writes, never a stale file beside a link.
        let index_path = index_path(Path::new(keeper.path().unwrap_or_default()));
        let index = File::open(&index_path)
            .map_err(|e| WatchError::Index(index_path.display().to_string(), e))?;
        let watch = Self {
            _keeper: Mutex::new(keeper),
            index: ManuallyDrop::new(index),
        };
        if watch.version().is_none() {
            return Err(WatchError::Format(index_path.display().to_string()));
        }
        Ok(watch)
    }

    /// The current version, or `None` when it cannot be told right now (a commit is
    /// rewriting the header, or the read failed): the caller then reads the database.
    pub fn version(&self) -> Option<DbVersion> {
        let mut both = [0u8; 2 * HEADER_LEN];
        self.index.read_exact_at(&mut both, 0).ok()?;
        parse(&both)
    }
}

impl crate::store::lookup_cache::ChangeWatch for WalWatch {
    type Version = DbVersion;

    fn version(&self) -> Option<DbVersion> {
        WalWatch::version(self)
    }
}

/// `<db>-shm`, where SQLite keeps the WAL index of `<db>`.
fn index_path(db_file: &Path) -> PathBuf {
    let mut name = db_file.as_os_str().to_owned();
    name.push("-shm");
    PathBuf::from(name)
}

/// The header if both copies agree and it is initialised. Copies differ while a commit is
/// between its two `memcpy`s; SQLite's readers retry then, we just read the database.
fn parse(both: &[u8; 2 * HEADER_LEN]) -> Option<DbVersion> {
    let (first, second) = both.split_at(HEADER_LEN);
    if first != second {
        return None;
    }
    // The WAL index is in the host's byte order.
    let version = u32::from_ne_bytes([first[0], first[1], first[2], first[3]]);
    if version != WALINDEX_VERSION || first[IS_INIT] != 1 {
        return None;
    }
    let mut header = [0u8; HEADER_LEN];
    header.copy_from_slice(first);
    Some(DbVersion(header))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{AuditAction, AuditActor, NewAuditEvent};
    use crate::domain::store::{Health, NamespaceStore};
    use crate::store::sqlite::SqliteStore;

    fn open(dir: &Path) -> SqliteStore {
        SqliteStore::open(&dir.join("wvs.db"), 2).expect("open")
    }

    fn file(dir: &Path) -> PathBuf {
        dir.join("wvs.db")
    }

    fn header(i_change: u32) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0..4].copy_from_slice(&WALINDEX_VERSION.to_ne_bytes());
        h[8..12].copy_from_slice(&i_change.to_ne_bytes());
        h[IS_INIT] = 1;
        h
    }

    fn both(a: [u8; HEADER_LEN], b: [u8; HEADER_LEN]) -> [u8; 2 * HEADER_LEN] {
        let mut out = [0u8; 2 * HEADER_LEN];
        out[..HEADER_LEN].copy_from_slice(&a);
        out[HEADER_LEN..].copy_from_slice(&b);
        out
    }

    #[test]
    fn agreeing_initialised_copies_are_a_version() {
        assert_eq!(
            parse(&both(header(7), header(7))),
            Some(DbVersion(header(7)))
        );
        assert_ne!(
            parse(&both(header(7), header(7))),
            parse(&both(header(8), header(8)))
        );
    }

    #[test]
    fn torn_uninitialised_or_foreign_headers_are_no_version() {
        assert_eq!(
            parse(&both(header(7), header(8))),
            None,
            "commit in progress"
        );
        let mut uninit = header(7);
        uninit[IS_INIT] = 0;
        assert_eq!(parse(&both(uninit, uninit)), None);
        let mut foreign = header(7);
        foreign[0..4].copy_from_slice(&3_007_001u32.to_ne_bytes());
        assert_eq!(parse(&both(foreign, foreign)), None);
        assert_eq!(parse(&[0u8; 2 * HEADER_LEN]), None, "all zero");
    }

    #[test]
    fn a_commit_from_another_connection_changes_the_version_and_reads_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(dir.path());
        let watch = WalWatch::open(&dir.path().join("wvs.db")).expect("watch");
        let before = watch.version().expect("version");
        db.ping().expect("read");
        assert_eq!(watch.version(), Some(before), "a read is not a change");

        // Another process's commit looks the same: a separate connection to the file.
        let other = Connection::open(dir.path().join("wvs.db")).expect("second connection");
        other
            .execute_batch("CREATE TABLE scratch (a INTEGER); INSERT INTO scratch VALUES (1);")
            .expect("commit");
        let after = watch.version().expect("version after the commit");
        assert_ne!(after, before);
        other
            .execute("UPDATE scratch SET a = 2", [])
            .expect("second commit");
        let second = watch.version().expect("version");
        assert_ne!(second, after);

        // A checkpoint moves the WAL into the database; the next commit starts the WAL
        // afresh (new salts, frame count from zero) and must still be a new version.
        other
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            })
            .expect("checkpoint");
        other
            .execute("UPDATE scratch SET a = 3", [])
            .expect("commit after the checkpoint");
        let restarted = watch.version().expect("version");
        for old in [before, after, second] {
            assert_ne!(restarted, old);
        }
    }

    #[test]
    fn the_index_sqlite_uses_is_read_through_a_symbolic_link() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        let db = open(&real);
        let link = dir.path().join("linked");
        std::fs::create_dir(&link).expect("dir");
        std::os::unix::fs::symlink(file(&real), file(&link)).expect("symlink");
        // A leftover index beside the link, with a valid-looking header that never changes.
        std::fs::copy(index_path(&file(&real)), index_path(&file(&link))).expect("copy");
        let watch = WalWatch::open(&file(&link)).expect("watch");
        let before = watch.version().expect("version");
        let event = NewAuditEvent::by(&AuditActor::cli(), AuditAction::GroupCreated, "acme");
        db.create_group(
            &crate::domain::path::NamespacePath::parse("acme").expect("path"),
            false,
            &event,
        )
        .expect("commit");
        assert_ne!(watch.version().expect("version"), before);
    }

    #[test]
    fn dropping_a_watch_keeps_sqlite_locks_on_the_index() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open(dir.path());
        let index = index_path(&file(dir.path()));
        assert!(
            locked_by_another_process(&index),
            "SQLite's lock before the watch"
        );
        drop(WalWatch::open(&file(dir.path())).expect("watch"));
        // Had the watch closed its descriptor, the process would have lost SQLite's shared
        // lock on the index's "in use" byte, and another process could rebuild the index
        // under the open pool.
        assert!(
            locked_by_another_process(&index),
            "the lock was dropped with the watch"
        );
        db.ping().expect("still usable");
    }

    /// Can another process take the WAL index's "in use" byte (offset 128, where SQLite's
    /// unix VFS keeps a shared lock while any connection has the index open) exclusively?
    /// Asked from a child process: a process's own POSIX locks never conflict with it.
    fn locked_by_another_process(index: &Path) -> bool {
        const PROBE: &str = "import fcntl, os, sys\n\
fd = os.open(sys.argv[1], os.O_RDWR)\n\
try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 128)\n    print('free')\n\
except OSError:\n    print('held')\n";
        let out = std::process::Command::new("python3")
            .args(["-c", PROBE])
            .arg(index)
            .output()
            .expect("python3 runs");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "lock probe failed: {out:?}");
        said.trim() == "held"
    }

    #[test]
    fn a_database_that_was_never_opened_cannot_be_watched() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(WalWatch::open(&dir.path().join("absent.db")).is_err());
    }
}
