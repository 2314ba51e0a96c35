//! Package file contents: content-addressed by SHA-256 under `<data-dir>/packages/blobs/`,
//! behind a small interface so an object store can take its place later.
//!
//! An upload streams into a staging file while every digest is computed; only a complete
//! upload within the size limit, whose digests match what the client claimed, is moved
//! into place (a rename on the same file system, after an fsync). A failed, refused or
//! interrupted upload leaves nothing behind: the staging file is removed when dropped, and
//! what a `kill -9` leaves in `staging/` is never visible and is swept at the next start.
//! The database row is written only after the blob is in place, so no row ever names a
//! missing file.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use actix_web::web::Bytes;
use futures_util::{Stream, StreamExt};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::domain::package::Digests;

/// Where verified files are kept and staged uploads become them.
pub trait BlobStore: Send + Sync {
    /// A new staging file, in the same file system as the blobs.
    fn stage(&self) -> io::Result<tempfile::NamedTempFile>;
    /// Moves a verified staged file under its SHA-256 (dropping it if that blob exists).
    fn put(&self, staged: tempfile::TempPath, sha256: &str) -> io::Result<()>;
    /// The blob, if there is one.
    fn open(&self, sha256: &str) -> io::Result<Option<File>>;
    /// Removes a blob no file refers to any more; a missing one is fine.
    fn remove(&self, sha256: &str) -> io::Result<()>;
    /// Excludes every other holder, in this process and in every instance sharing the
    /// blobs, until the guard is dropped: held while a blob is kept and recorded, and while
    /// one is found unreferenced and removed (`manage::packages`).
    fn hold_references(&self) -> io::Result<ReferencesHeld>;
}

/// An exclusive `flock` of the blobs' lock file, released when dropped (the file closes).
/// Each holder opens the file anew, so threads of one process exclude each other as
/// processes do.
pub struct ReferencesHeld {
    _file: File,
}

/// Blobs as files: `blobs/ab/cd/abcd…`, staged in `staging/`.
pub struct FsBlobs {
    root: PathBuf,
}

/// Staging files older than this at start belong to uploads that died with their process.
const STALE_STAGING: Duration = Duration::from_secs(3600);

impl FsBlobs {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join("packages"),
        }
    }

    /// Removes staging files of uploads that were interrupted (killed mid-upload). Called
    /// at start; recent files may belong to another instance's live upload and are kept.
    pub fn sweep_staging(&self) {
        let Ok(entries) = std::fs::read_dir(self.root.join("staging")) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let stale = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > STALE_STAGING);
            if stale {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    fn path(&self, sha256: &str) -> Option<PathBuf> {
        // A SHA-256 in hex and nothing else: the name is never a path.
        let valid = sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| {
            self.root
                .join("blobs")
                .join(&sha256[..2])
                .join(&sha256[2..4])
                .join(sha256)
        })
    }
}

fn not_a_digest() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a SHA-256")
}

impl BlobStore for FsBlobs {
    fn hold_references(&self) -> io::Result<ReferencesHeld> {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(&self.root)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".references.lock"))?;
        loop {
            // SAFETY: the descriptor is open for as long as `file` lives; flock has no
            // other precondition.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(ReferencesHeld { _file: file });
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn stage(&self) -> io::Result<tempfile::NamedTempFile> {
        let dir = self.root.join("staging");
        std::fs::create_dir_all(&dir)?;
        tempfile::Builder::new().prefix("upload-").tempfile_in(dir)
    }

    fn put(&self, staged: tempfile::TempPath, sha256: &str) -> io::Result<()> {
        let dest = self.path(sha256).ok_or_else(not_a_digest)?;
        if dest.is_file() {
            return Ok(()); // same content already stored; the staged copy goes with `staged`
        }
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        staged.persist(&dest).map_err(|e| e.error)?;
        Ok(())
    }

    fn open(&self, sha256: &str) -> io::Result<Option<File>> {
        let path = self.path(sha256).ok_or_else(not_a_digest)?;
        match File::open(path) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn remove(&self, sha256: &str) -> io::Result<()> {
        let path = self.path(sha256).ok_or_else(not_a_digest)?;
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Why an upload was not kept.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the file exceeds the limit of {0} bytes")]
    TooLarge(u64),
    #[error("the upload was interrupted")]
    Interrupted,
    #[error("the file is empty")]
    Empty,
    #[error("storage: {0}")]
    Io(#[from] io::Error),
}

/// Every digest at once, fed chunk by chunk.
#[derive(Default)]
struct Hashers {
    sha256: Sha256,
    sha1: Sha1,
    md5: md5::Md5,
    sha512: Sha512,
}

impl Hashers {
    fn update(&mut self, chunk: &[u8]) {
        self.sha256.update(chunk);
        self.sha1.update(chunk);
        self.md5.update(chunk);
        self.sha512.update(chunk);
    }

    fn finish(self) -> Digests {
        Digests {
            sha256: hex(&self.sha256.finalize()),
            sha1: hex(&self.sha1.finalize()),
            md5: hex(&self.md5.finalize()),
            sha512: hex(&self.sha512.finalize()),
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Every digest of content that is not stored (Maven's generated `maven-metadata.xml`,
/// whose checksum files are answered like a stored file's).
pub fn digests(content: &[u8]) -> Digests {
    let mut hashers = Hashers::default();
    hashers.update(content);
    hashers.finish()
}

/// A complete upload in its staging file: what it is, not yet kept.
pub struct Staged {
    pub size: u64,
    pub digests: Digests,
    path: tempfile::TempPath,
}

impl Staged {
    /// The staging file, for formats that look inside what was uploaded (a `.nupkg`'s
    /// manifest) before it is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps it under its SHA-256.
    pub fn keep(self, blobs: &dyn BlobStore) -> io::Result<()> {
        blobs.put(self.path, &self.digests.sha256)
    }
}

/// Streams `body` into a staging file, at most `limit` bytes, computing every digest.
/// The file is synced before it is handed back, so a kept blob survives a crash.
pub async fn receive<S, E>(
    blobs: &dyn BlobStore,
    mut body: S,
    limit: u64,
) -> Result<Staged, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let (file, path) = blobs.stage()?.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let mut hashers = Hashers::default();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| UploadError::Interrupted)?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(UploadError::TooLarge(limit));
        }
        hashers.update(&chunk);
        tokio::io::AsyncWriteExt::write_all(&mut file, &chunk).await?;
    }
    if size == 0 {
        return Err(UploadError::Empty);
    }
    file.sync_all().await?;
    Ok(Staged {
        size,
        digests: hashers.finish(),
        path,
    })
}

/// The same for content already in memory (an npm publish carries its tarball in JSON).
pub fn receive_bytes(
    blobs: &dyn BlobStore,
    content: &[u8],
    limit: u64,
) -> Result<Staged, UploadError> {
    if content.len() as u64 > limit {
        return Err(UploadError::TooLarge(limit));
    }
    if content.is_empty() {
        return Err(UploadError::Empty);
    }
    let (mut file, path) = blobs.stage()?.into_parts();
    file.write_all(content)?;
    file.sync_all()?;
    let mut hashers = Hashers::default();
    hashers.update(content);
    Ok(Staged {
        size: content.len() as u64,
        digests: hashers.finish(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two holders of the references, as two instances sharing a data directory would be:
    /// the second waits until the first lets go.
    #[test]
    fn references_are_held_by_one_holder_at_a_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (FsBlobs::new(dir.path()), FsBlobs::new(dir.path()));
        let first = a.hold_references().expect("first");
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _second = b.hold_references().expect("second");
            tx.send(()).expect("send");
        });
        assert!(
            rx.recv_timeout(Duration::from_millis(300)).is_err(),
            "the second holder got in while the first held"
        );
        drop(first);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("the second holder got in once the first let go");
        waiter.join().expect("thread");
    }

    fn chunks(parts: &[&'static [u8]]) -> impl Stream<Item = Result<Bytes, io::Error>> + Unpin {
        futures_util::stream::iter(
            parts
                .iter()
                .map(|p| Ok(Bytes::from_static(p)))
                .collect::<Vec<_>>(),
        )
    }

    fn staging_files(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("packages/staging")).map_or(0, |d| d.count())
    }

    #[actix_web::test]
    async fn a_complete_upload_is_kept_under_its_digest_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = FsBlobs::new(dir.path());
        let staged = receive(&blobs, chunks(&[b"hello ", b"world"]), 100)
            .await
            .expect("received");
        assert_eq!(staged.size, 11);
        assert_eq!(
            staged.digests.sha256,
            "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"
        );
        assert_eq!(staged.digests.md5, "5eb63bbbe01eeed093cb22bb8f5acdc3");
        assert_eq!(
            staged.digests.sha1,
            "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"
        );
        let sha = staged.digests.sha256.clone();
        staged.keep(&blobs).expect("kept");
        // The same content again: stored once, the second staging file removed.
        receive_bytes(&blobs, b"hello world", 100)
            .expect("received")
            .keep(&blobs)
            .expect("kept");
        assert_eq!(staging_files(dir.path()), 0);
        let mut back = String::new();
        std::io::Read::read_to_string(
            &mut blobs.open(&sha).expect("open").expect("there"),
            &mut back,
        )
        .expect("read");
        assert_eq!(back, "hello world");
        blobs.remove(&sha).expect("remove");
        assert!(blobs.open(&sha).expect("open").is_none());
    }

    #[actix_web::test]
    async fn refused_and_broken_uploads_leave_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = FsBlobs::new(dir.path());
        let big = receive(&blobs, chunks(&[b"0123456789", b"0123456789"]), 15).await;
        assert!(matches!(big, Err(UploadError::TooLarge(15))));
        let broken = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"part")),
            Err(io::Error::other("reset")),
        ]);
        assert!(matches!(
            receive(&blobs, broken, 100).await,
            Err(UploadError::Interrupted)
        ));
        assert!(matches!(
            receive(&blobs, chunks(&[]), 100).await,
            Err(UploadError::Empty)
        ));
        let unkept = receive_bytes(&blobs, b"never kept", 100).expect("received");
        drop(unkept);
        assert_eq!(staging_files(dir.path()), 0);
        assert!(!dir.path().join("packages/blobs").exists());
    }

    #[test]
    fn names_are_digests_never_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blobs = FsBlobs::new(dir.path());
        for bad in ["../../etc/passwd", "", &"A".repeat(64), &"a".repeat(63)] {
            assert!(blobs.open(bad).is_err(), "{bad}");
            assert!(blobs.remove(bad).is_err(), "{bad}");
        }
    }
}
