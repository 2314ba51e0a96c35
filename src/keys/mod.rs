//! The keys directory: signing keys, their certificates and a manifest of their states.
//!
//! Keys are files, not database rows, so several wvs-auth instances can share one directory
//! (or a copy of it) and a registry can read the bundle straight from it. Rotation without
//! downtime: `rotate` publishes a new key, `activate` makes it the signer once registries
//! trust it, `retire` withdraws the old one.
//!
//! A key is RSA-2048 (RS256, the default) or ECDSA P-256 (ES256); the manifest records
//! which. The algorithm is a property of the key, not of the server: changing it is a
//! rotation (`keys rotate --alg ES256`, then `keys activate KID`), so registries trust the
//! new key before any token is signed with it.

pub mod issue;
mod live;
mod material;
pub mod rsa_kernel;
pub mod seal;
mod signer;
pub mod verify;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use live::{LiveKeys, LoadedKeys};
pub use material::{jwk_for_key, KeyMaterial};

/// The JWS algorithm of a signing key. Docker's distribution accepts RS* and ES* only;
/// these are the two wvs-auth makes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum SigningAlg {
    /// RSA-2048, RSASSA-PKCS1-v1_5 with SHA-256.
    #[default]
    #[serde(rename = "RS256")]
    #[value(name = "RS256")]
    Rs256,
    /// ECDSA over P-256 with SHA-256: much cheaper to sign than RSA, same registry support.
    #[serde(rename = "ES256")]
    #[value(name = "ES256")]
    Es256,
}

impl SigningAlg {
    /// The JWS `alg` name, as the manifest, the JWK and the token header carry it.
    pub fn name(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(SigningAlg::Rs256),
            "ES256" => Some(SigningAlg::Es256),
            _ => None,
        }
    }
}

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
pub use signer::{JwtSigner, TokenHeader};

const MANIFEST: &str = "keys.json";
const LOCK: &str = ".keys.lock";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("keys directory {0}: {1}")]
    Io(String, std::io::Error),
    #[error("keys manifest {0} is malformed: {1}")]
    Manifest(String, serde_json::Error),
    #[error("no active signing key in {0}: run `wvs-auth keys init`")]
    NoActiveKey(String),
    #[error("no key with kid {0}")]
    UnknownKid(String),
    #[error("key {0} is {1}: {2}")]
    BadState(String, KeyState, &'static str),
    #[error("private key {0} is readable by every user (mode {1:o}); run chmod 600 on it")]
    WorldReadable(String, u32),
    #[error("key generation or parsing failed: {0}")]
    Crypto(String),
    #[error("key {0} signed tokens that may be valid for {1} more seconds: retire it after that, or with --force (registries then reject those tokens)")]
    StillValid(String, i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Signs new tokens and is published.
    Active,
    /// Published in the bundle and JWKS so registries trust it, but not signing (yet or any more).
    Published,
    /// Neither signs nor is published.
    Retired,
}

impl std::fmt::Display for KeyState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyState::Active => "active",
            KeyState::Published => "published",
            KeyState::Retired => "retired",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMeta {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    pub created_at: DateTime<Utc>,
    /// When the key stopped signing (another was activated): tokens it signed stay valid
    /// for their lifetime after that, so it may not be retired before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl KeyMeta {
    pub fn is_published(&self) -> bool {
        self.state != KeyState::Retired
    }

    /// The key's algorithm; a manifest naming one wvs-auth does not make is an error.
    pub fn signing_alg(&self) -> Result<SigningAlg, KeyError> {
        SigningAlg::parse(&self.alg).ok_or_else(|| {
            KeyError::Crypto(format!(
                "key {} has unsupported algorithm {:?}",
                self.kid, self.alg
            ))
        })
    }
}

pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The keys directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn io(&self, e: std::io::Error) -> KeyError {
        KeyError::Io(self.dir.display().to_string(), e)
    }

    fn key_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.key.pem"))
    }

    /// A new private key file, readable by its owner only from the first byte.
    fn create_private(&self, kid: &str) -> Result<fs::File, KeyError> {
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.key_path(kid))
            .map_err(|e| self.io(e))
    }

    fn cert_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.crt.pem"))
    }

    /// Modification time and size of the manifest: what [`LiveKeys`] watches.
    pub fn manifest_stamp(&self) -> Option<(std::time::SystemTime, u64)> {
        let meta = fs::metadata(self.dir.join(MANIFEST)).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    pub fn list(&self) -> Result<Vec<KeyMeta>, KeyError> {
        let path = self.dir.join(MANIFEST);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| KeyError::Manifest(path.display().to_string(), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.io(e)),
        }
    }

    /// Writes the manifest durably: a temp file, fsynced, renamed over the old one.
    fn save(&self, keys: &[KeyMeta]) -> Result<(), KeyError> {
        let tmp = self.dir.join(format!("{MANIFEST}.tmp"));
        let body = serde_json::to_vec_pretty(keys)
            .map_err(|e| KeyError::Manifest(tmp.display().to_string(), e))?;
        let mut file = fs::File::create(&tmp).map_err(|e| self.io(e))?;
        file.write_all(&body).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&tmp, self.dir.join(MANIFEST)).map_err(|e| self.io(e))
    }

    /// Runs a read-modify-write of the manifest under an exclusive lock on the keys
    /// directory, so two `keys` commands on a shared directory cannot lose a key.
    fn update<T>(
        &self,
        change: impl FnOnce(&Self, &mut Vec<KeyMeta>) -> Result<T, KeyError>,
    ) -> Result<T, KeyError> {
        self.locked(|me| {
            let mut keys = me.list()?;
            let out = change(me, &mut keys)?;
            me.save(&keys)?;
            Ok(out)
        })
    }

    /// Runs `work` holding the directory's exclusive lock (released when the file closes).
    fn locked<T>(&self, work: impl FnOnce(&Self) -> Result<T, KeyError>) -> Result<T, KeyError> {
        fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK))
            .map_err(|e| self.io(e))?;
        lock.lock().map_err(|e| self.io(e))?;
        work(self)
    }

    /// Copies the manifest and every key file it names into `to` (a new directory), under
    /// the directory's lock, so a rotation running meanwhile cannot leave a manifest naming
    /// a key the copy lacks. Private keys keep mode 0600.
    pub fn copy_to(&self, to: &Path) -> Result<usize, KeyError> {
        let target = KeyStore::new(to);
        fs::create_dir_all(to).map_err(|e| target.io(e))?;
        self.locked(|me| {
            let keys = me.list()?;
            for key in &keys {
                let private = match fs::read(me.key_path(&key.kid)) {
                    Ok(private) => private,
                    // A retired key's files may have been cleaned up by hand.
                    Err(e)
                        if key.state == KeyState::Retired
                            && e.kind() == std::io::ErrorKind::NotFound =>
                    {
                        continue
                    }
                    Err(e) => return Err(me.io(e)),
                };
                let mut file = target.create_private(&key.kid)?;
                file.write_all(&private).map_err(|e| target.io(e))?;
                file.sync_all().map_err(|e| target.io(e))?;
                fs::copy(me.cert_path(&key.kid), target.cert_path(&key.kid))
                    .map_err(|e| target.io(e))?;
            }
            target.save(&keys)?;
            Ok(keys.len())
        })
    }

    /// The active key's metadata, if there is one.
    pub fn active(&self) -> Result<Option<KeyMeta>, KeyError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|k| k.state == KeyState::Active))
    }

    /// Makes sure an active key exists, creating an `alg` key if not. Returns the new key's
    /// metadata if one was created. An existing active key is kept whatever its algorithm:
    /// switching algorithms is a rotation.
    pub fn init(&self, alg: SigningAlg) -> Result<Option<KeyMeta>, KeyError> {
        if self.list()?.iter().any(|k| k.state == KeyState::Active) {
            return Ok(None);
        }
        self.update(|me, keys| {
            if keys.iter().any(|k| k.state == KeyState::Active) {
                return Ok(None); // another process made one while we waited for the lock
            }
            let meta = me.generate(alg, KeyState::Active)?;
            keys.push(meta.clone());
            Ok(Some(meta))
        })
    }

    /// Publishes a new `alg` key without signing with it.
    pub fn rotate(&self, alg: SigningAlg) -> Result<KeyMeta, KeyError> {
        self.update(|me, keys| {
            let meta = me.generate(alg, KeyState::Published)?;
            keys.push(meta.clone());
            Ok(meta)
        })
    }

    /// Makes a published key the signer; the previous signer stays published. Running
    /// servers pick the change up within a second (see [`LiveKeys`]).
    pub fn activate(&self, kid: &str) -> Result<(), KeyError> {
        self.update(|_, keys| {
            if find(keys, kid)?.state == KeyState::Retired {
                return Err(KeyError::BadState(
                    kid.into(),
                    KeyState::Retired,
                    "rotate a new key instead",
                ));
            }
            if find(keys, kid)?.state == KeyState::Active {
                return Ok(());
            }
            let now = Utc::now();
            for k in keys.iter_mut().filter(|k| k.state == KeyState::Active) {
                k.state = KeyState::Published;
                k.deactivated_at = Some(now);
            }
            let key = find(keys, kid)?;
            key.state = KeyState::Active;
            key.deactivated_at = None;
            Ok(())
        })
    }

    /// Withdraws a key from the bundle and JWKS. The active key cannot be retired, nor —
    /// unless `force` — one that stopped signing less than `valid_for` ago: registries would
    /// reject the tokens it signed that are still within their lifetime (SPEC §4).
    pub fn retire(
        &self,
        kid: &str,
        valid_for: chrono::Duration,
        force: bool,
    ) -> Result<(), KeyError> {
        self.update(|_, keys| {
            let key = find(keys, kid)?;
            if key.state == KeyState::Active {
                return Err(KeyError::BadState(
                    kid.into(),
                    KeyState::Active,
                    "activate another key first",
                ));
            }
            if let Some(stopped) = key.deactivated_at {
                let left = (stopped + valid_for - Utc::now()).num_seconds();
                if left > 0 && !force {
                    return Err(KeyError::StillValid(kid.into(), left));
                }
            }
            key.state = KeyState::Retired;
            Ok(())
        })
    }

    fn generate(&self, alg: SigningAlg, state: KeyState) -> Result<KeyMeta, KeyError> {
        fs::create_dir_all(&self.dir).map_err(|e| self.io(e))?;
        let material = KeyMaterial::generate(alg)?;
        let kid = material.kid.clone();
        let mut file = self.create_private(&kid)?;
        file.write_all(material.private_pem.as_bytes())
            .map_err(|e| self.io(e))?;
        fs::write(self.cert_path(&kid), material.cert_pem.as_bytes()).map_err(|e| self.io(e))?;
        Ok(KeyMeta {
            kid,
            alg: material.alg.name().into(),
            state,
            created_at: Utc::now(),
            deactivated_at: None,
        })
    }

    fn read_private(&self, kid: &str) -> Result<String, KeyError> {
        fs::read_to_string(self.key_path(kid)).map_err(|e| self.io(e))
    }

    fn read_cert(&self, kid: &str) -> Result<String, KeyError> {
        fs::read_to_string(self.cert_path(kid)).map_err(|e| self.io(e))
    }

    /// PEM certificates of every published key: what a registry's `rootcertbundle` reads.
    pub fn bundle(&self) -> Result<String, KeyError> {
        let mut out = String::new();
        for key in self.list()?.iter().filter(|k| k.is_published()) {
            out.push_str(&self.read_cert(&key.kid)?);
        }
        Ok(out)
    }

    /// The JWKS document of every published key (distribution 3.x's `jwks` option).
    pub fn jwks(&self) -> Result<serde_json::Value, KeyError> {
        let mut keys = Vec::new();
        for key in self.list()?.iter().filter(|k| k.is_published()) {
            keys.push(jwk_for_key(
                &self.read_private(&key.kid)?,
                &key.kid,
                key.signing_alg()?,
            )?);
        }
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// Loads the active key for signing tokens with `token_header`, refusing a private key
    /// other users can read.
    pub fn signer(&self, token_header: TokenHeader) -> Result<JwtSigner, KeyError> {
        let keys = self.list()?;
        let active = keys
            .iter()
            .find(|k| k.state == KeyState::Active)
            .ok_or_else(|| KeyError::NoActiveKey(self.dir.display().to_string()))?;
        let key_path = self.key_path(&active.kid);
        let mode = fs::metadata(&key_path)
            .map_err(|e| self.io(e))?
            .permissions()
            .mode();
        if mode & 0o004 != 0 {
            return Err(KeyError::WorldReadable(
                key_path.display().to_string(),
                mode & 0o777,
            ));
        }
        let pem = fs::read_to_string(&key_path).map_err(|e| self.io(e))?;
        let cert = self.read_cert(&active.kid)?;
        JwtSigner::from_pem(
            &active.kid,
            active.signing_alg()?,
            &pem,
            &cert,
            token_header,
        )
    }
}

fn find<'a>(keys: &'a mut [KeyMeta], kid: &str) -> Result<&'a mut KeyMeta, KeyError> {
    keys.iter_mut()
        .find(|k| k.kid == kid)
        .ok_or_else(|| KeyError::UnknownKid(kid.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_rotate_activate_retire() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        let first = store
            .init(SigningAlg::Rs256)
            .expect("init")
            .expect("created");
        assert!(
            store.init(SigningAlg::Rs256).expect("init again").is_none(),
            "init is idempotent"
        );
        let mode = fs::metadata(store.key_path(&first.kid))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let second = store.rotate(SigningAlg::Rs256).expect("rotate");
        assert_eq!(
            store
                .bundle()
                .expect("bundle")
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );
        assert_eq!(
            store.signer(TokenHeader::default()).expect("signer").kid(),
            first.kid,
            "rotate does not sign"
        );

        store.activate(&second.kid).expect("activate");
        assert_eq!(
            store.signer(TokenHeader::default()).expect("signer").kid(),
            second.kid
        );
        let none_outstanding = chrono::Duration::zero();
        assert!(
            store.retire(&second.kid, none_outstanding, true).is_err(),
            "active key cannot retire, not even by force"
        );
        // The first key just stopped signing: its tokens may still be valid.
        let ttl = chrono::Duration::seconds(360);
        assert!(matches!(
            store.retire(&first.kid, ttl, false),
            Err(KeyError::StillValid(_, left)) if left > 350
        ));
        store
            .retire(&first.kid, none_outstanding, false)
            .expect("retire");
        assert_eq!(
            store
                .bundle()
                .expect("bundle")
                .matches("BEGIN CERTIFICATE")
                .count(),
            1
        );
        assert_eq!(store.jwks().expect("jwks")["keys"][0]["kid"], second.kid);
    }

    #[test]
    fn refuses_world_readable_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        let meta = store
            .init(SigningAlg::Rs256)
            .expect("init")
            .expect("created");
        fs::set_permissions(store.key_path(&meta.kid), fs::Permissions::from_mode(0o644))
            .expect("chmod");
        assert!(matches!(
            store.signer(TokenHeader::default()),
            Err(KeyError::WorldReadable(..))
        ));
    }

    #[test]
    fn algorithms_change_by_rotation() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        let rsa = store
            .init(SigningAlg::Rs256)
            .expect("init")
            .expect("created");
        assert_eq!(rsa.alg, "RS256");
        assert!(
            store.init(SigningAlg::Es256).expect("init").is_none(),
            "an active key of another algorithm is kept"
        );

        let ec = store.rotate(SigningAlg::Es256).expect("rotate");
        assert_eq!(ec.alg, "ES256");
        let mode = fs::metadata(store.key_path(&ec.kid))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            store.signer(TokenHeader::default()).expect("signer").alg(),
            SigningAlg::Rs256
        );
        let jwks = store.jwks().expect("jwks");
        let keys = jwks["keys"].as_array().expect("keys");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0]["kty"], "RSA");
        assert_eq!(keys[0]["alg"], "RS256");
        assert_eq!(keys[1]["kty"], "EC");
        assert_eq!(keys[1]["crv"], "P-256");
        assert_eq!(keys[1]["alg"], "ES256");
        assert_eq!(keys[1]["kid"], ec.kid.as_str());
        assert!(keys[1].get("n").is_none());
        assert_eq!(
            store
                .bundle()
                .expect("bundle")
                .matches("BEGIN CERTIFICATE")
                .count(),
            2
        );

        store.activate(&ec.kid).expect("activate");
        let signer = store.signer(TokenHeader::default()).expect("signer");
        assert_eq!(
            (signer.kid(), signer.alg()),
            (ec.kid.as_str(), SigningAlg::Es256)
        );
        let back = store.rotate(SigningAlg::Rs256).expect("rotate back");
        store.activate(&back.kid).expect("activate");
        store
            .retire(&ec.kid, chrono::Duration::zero(), false)
            .expect("retire");
        store
            .retire(&rsa.kid, chrono::Duration::zero(), false)
            .expect("retire");
        let jwks = store.jwks().expect("jwks");
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            store.signer(TokenHeader::default()).expect("signer").alg(),
            SigningAlg::Rs256
        );
    }

    #[test]
    fn unknown_manifest_algorithm_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        store.init(SigningAlg::Es256).expect("init");
        let mut keys = store.list().expect("list");
        keys[0].alg = "HS256".into();
        store.save(&keys).expect("save");
        assert!(store.signer(TokenHeader::default()).is_err());
        assert!(store.jwks().is_err());
    }
}
