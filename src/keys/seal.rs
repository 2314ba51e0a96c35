//! Sealing the secrets that must be handed out again: the CI deploy token's
//! (`wvs-deploy-token`, SPEC §1), and a new token's secret between the settings page's
//! POST and the page it redirects to (`app::flash`). AES-256-GCM under a 256-bit key kept beside the signing
//! keys (`<keys-dir>/ci-seal.key`, mode 0600), so a copy of the database alone reveals
//! nothing. Every sealed value carries its own random 96-bit nonce.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;

use super::KeyError;

const FILE_NAME: &str = "ci-seal.key";
const KEY_LEN: usize = 32;

/// What sealed values are bound to: a value sealed for one purpose does not open as another.
const AAD: &[u8] = b"wvs-auth ci deploy token v1";

/// What a value is sealed for, which is authenticated with it (the AEAD's associated data).
pub enum Purpose<'a> {
    /// The CI deploy token's secret (the associated data of every value sealed so far).
    CiDeployToken,
    /// A one-shot message of one session for one page: a row moved to another session or
    /// page in the database does not open there.
    Flash(&'a crate::domain::secret::HashedToken, &'a str),
}

impl Purpose<'_> {
    fn aad(&self) -> Vec<u8> {
        match self {
            Purpose::CiDeployToken => AAD.to_vec(),
            Purpose::Flash(session, page) => {
                let mut aad = b"wvs-auth flash v1\0".to_vec();
                aad.extend_from_slice(session.as_bytes());
                aad.push(0);
                aad.extend_from_slice(page.as_bytes());
                aad
            }
        }
    }
}

pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("sealed value cannot be opened (wrong key or damaged)")]
pub struct OpenError;

impl Sealer {
    /// Reads the key, making it on first use. A world-readable key is refused, like a
    /// signing key.
    pub fn load_or_create(keys_dir: &Path) -> Result<Self, KeyError> {
        let path = keys_dir.join(FILE_NAME);
        let io = |e: std::io::Error| KeyError::Io(path.display().to_string(), e);
        if !path.exists() {
            fs::create_dir_all(keys_dir).map_err(io)?;
            let mut bytes = [0u8; KEY_LEN];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| KeyError::Crypto("no randomness for the seal key".into()))?;
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            // Written whole under a name of its own, then linked into place: instances
            // sharing the keys directory and starting together never read a half-written
            // key, and the first link wins.
            let staged = keys_dir.join(format!(".{FILE_NAME}.{}", std::process::id()));
            let written = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&staged)
                .and_then(|mut f| {
                    f.write_all(format!("{text}\n").as_bytes())?;
                    f.sync_all()
                });
            let linked = written.and_then(|()| fs::hard_link(&staged, &path));
            let _ = fs::remove_file(&staged);
            match linked {
                Ok(()) => {}
                // Another process made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        Self::load(&path)
    }

    fn load(path: &PathBuf) -> Result<Self, KeyError> {
        let shown = path.display().to_string();
        let meta = fs::metadata(path).map_err(|e| KeyError::Io(shown.clone(), e))?;
        let mode = meta.permissions().mode();
        if mode & 0o004 != 0 {
            return Err(KeyError::WorldReadable(shown, mode & 0o777));
        }
        let text = fs::read_to_string(path).map_err(|e| KeyError::Io(shown.clone(), e))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .filter(|b| b.len() == KEY_LEN)
            .ok_or_else(|| KeyError::Crypto(format!("{shown} is not a base64 256-bit key")))?;
        Self::from_bytes(&bytes)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| KeyError::Crypto("bad AES-256 key".into()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// `nonce || ciphertext || tag`, for the CI deploy token.
    pub fn seal(&self, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.seal_for(&Purpose::CiDeployToken, plaintext)
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        self.open_for(&Purpose::CiDeployToken, sealed)
    }

    /// `nonce || ciphertext || tag`, bound to `purpose`.
    pub fn seal_for(&self, purpose: &Purpose<'_>, plaintext: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Crypto("no randomness for a nonce".into()))?;
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.aad()),
                &mut body,
            )
            .map_err(|_| KeyError::Crypto("sealing failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn open_for(&self, purpose: &Purpose<'_>, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        if sealed.len() < NONCE_LEN {
            return Err(OpenError);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| OpenError)?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.aad()), &mut body)
            .map_err(|_| OpenError)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_detects_tampering() {
        let dir = tempfile::tempdir().expect("tmp");
        let sealer = Sealer::load_or_create(dir.path()).expect("key");
        let a = sealer.seal(b"wvsdt-secret").expect("seal");
        let b = sealer.seal(b"wvsdt-secret").expect("seal");
        assert_ne!(a, b, "fresh nonce each time");
        assert_eq!(sealer.open(&a).expect("open"), b"wvsdt-secret");
        let mut bad = a.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(sealer.open(&bad).is_err());
        let again = Sealer::load_or_create(dir.path()).expect("same key reloaded");
        assert_eq!(again.open(&a).expect("open"), b"wvsdt-secret");
        let mode = fs::metadata(dir.path().join(FILE_NAME))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = Sealer::from_bytes(&[7u8; 32]).expect("key");
        assert!(other.open(&a).is_err());
    }

    #[test]
    fn a_value_opens_only_for_its_purpose() {
        let sealer = Sealer::from_bytes(&[9u8; 32]).expect("key");
        let (one, two) = (
            crate::domain::secret::HashedToken::of("1"),
            crate::domain::secret::HashedToken::of("2"),
        );
        let flash = sealer
            .seal_for(&Purpose::Flash(&one, "project:1"), b"x")
            .expect("seal");
        assert_eq!(
            sealer
                .open_for(&Purpose::Flash(&one, "project:1"), &flash)
                .expect("open"),
            b"x"
        );
        assert!(sealer
            .open_for(&Purpose::Flash(&two, "project:1"), &flash)
            .is_err());
        assert!(sealer
            .open_for(&Purpose::Flash(&one, "project:2"), &flash)
            .is_err());
        assert!(sealer.open(&flash).is_err(), "a flash is no CI token");
        let ci = sealer.seal(b"wvsdt-x").expect("seal");
        assert!(sealer
            .open_for(&Purpose::Flash(&one, "project:1"), &ci)
            .is_err());
    }
}
