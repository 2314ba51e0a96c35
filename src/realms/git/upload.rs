//! Storing an uploaded LFS object (`PUT <repo>.git/info/lfs/objects/<oid>`).
//!
//! The body streams into a temporary file under `<repo>.git/lfs/tmp/` while its SHA-256 is
//! computed; only when the size and the digest match what was announced is the file renamed
//! into `lfs/objects/aa/bb/<oid>`. The rename is atomic on one filesystem, so a download
//! never sees half an object, and two uploads of the same object race harmlessly (the
//! content is the same by construction). Nothing is held in memory beyond one chunk.

use actix_web::web::Payload;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

use super::repo::Repositories;
use super::route::Oid;
use crate::domain::path::NamespacePath;

/// Largest LFS object accepted: 5 GiB, GitLab.com's default file limit. Announced sizes
/// above it are refused in the batch answer, before any byte is sent.
pub const MAX_OBJECT_BYTES: i64 = 5 * 1024 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("the upload is {got} bytes, {expected} were announced")]
    SizeMismatch { expected: u64, got: u64 },
    #[error("the uploaded content does not hash to the object id")]
    HashMismatch,
    #[error("the upload was aborted by the client")]
    Aborted,
    #[error("storing the object failed: {0}")]
    Io(#[from] std::io::Error),
}

impl UploadError {
    /// The client's fault (400) or the server's (503)?
    pub fn is_client_error(&self) -> bool {
        !matches!(self, UploadError::Io(_))
    }
}

/// Removes the temporary file unless it was renamed into place.
struct TempFile(Option<PathBuf>);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Streams `body` into the store as object `oid` of `repo`, which must be exactly `size`
/// bytes hashing to `oid`.
pub async fn store(
    repos: &Repositories,
    repo: &NamespacePath,
    oid: &Oid,
    size: u64,
    mut body: Payload,
) -> Result<(), UploadError> {
    let tmp_dir = repos.dir(repo).join("lfs/tmp");
    tokio::fs::create_dir_all(&tmp_dir).await?;
    let mut tmp = TempFile(Some(tmp_dir.join(format!(
        "{}-{}",
        oid.as_str(),
        uuid::Uuid::new_v4().simple()
    ))));
    let tmp_path = tmp.0.clone().unwrap_or_default();
    let mut file = tokio::fs::File::create(&tmp_path).await?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| UploadError::Aborted)?;
        written += chunk.len() as u64;
        // Stop at once: never store more than was announced.
        if written > size {
            return Err(UploadError::SizeMismatch {
                expected: size,
                got: written,
            });
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await?;
    }
    if written != size {
        return Err(UploadError::SizeMismatch {
            expected: size,
            got: written,
        });
    }
    if hex(&hasher.finalize()) != oid.as_str() {
        return Err(UploadError::HashMismatch);
    }
    file.sync_all().await?;
    drop(file);
    let target = repos.lfs_object(repo, oid);
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::rename(&tmp_path, &target).await?;
    tmp.0 = None;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_sha256() {
        let digest = Sha256::digest(b"hello\n");
        assert_eq!(
            hex(&digest),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
    }
}
