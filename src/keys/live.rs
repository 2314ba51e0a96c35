//! The keys a running server signs and publishes with, reloaded when the manifest changes.
//!
//! `keys activate` on a shared keys directory must reach every running server without a
//! restart, or a registry that dropped the old key from its bundle rejects every token. The
//! token path therefore stats `keys.json` at most once a second and swaps in a freshly
//! loaded signer when it changed; a reload that fails keeps the previous keys and logs why.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use std::collections::HashMap;

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey};

use super::{JwtSigner, KeyError, KeyStore, SigningAlg, TokenHeader};
use crate::poll::Interval;

/// How often the manifest is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// One consistent generation of keys.
pub struct LoadedKeys {
    pub signer: JwtSigner,
    /// The JWKS document, serialised once per generation for `/-/jwks`.
    pub jwks: Vec<u8>,
    /// Every published key by kid, with the one algorithm its JWK names, for verifying
    /// tokens wvs-auth issued itself.
    pub verifying: HashMap<String, (Algorithm, DecodingKey)>,
    stamp: Option<(SystemTime, u64)>,
}

pub struct LiveKeys {
    store: KeyStore,
    /// Every signer this server loads makes tokens with this header (see [`TokenHeader`]).
    token_header: TokenHeader,
    loaded: ArcSwap<LoadedKeys>,
    check: Interval,
}

impl LiveKeys {
    /// The keys of `store`, signing tokens with `token_header` now and after every reload:
    /// the header is the server's setting, not the key's, so a key activated meanwhile
    /// signs with the same one.
    pub fn open(store: KeyStore, token_header: TokenHeader) -> Result<Self, KeyError> {
        let loaded = load(&store, token_header)?;
        Ok(Self {
            store,
            token_header,
            loaded: ArcSwap::from_pointee(loaded),
            check: Interval::new(CHECK_EVERY),
        })
    }

    /// The current keys, reloaded first if the manifest changed since the last look.
    pub fn current(&self) -> Arc<LoadedKeys> {
        self.refresh_if_due();
        self.loaded.load_full()
    }

    fn refresh_if_due(&self) {
        // One request per interval does the check; the others go on with what is loaded.
        if !self.check.due() {
            return;
        }
        if self.store.manifest_stamp() == self.loaded.load().stamp {
            return;
        }
        match load(&self.store, self.token_header) {
            Ok(fresh) => {
                log::info!("keys changed: now signing with {}", fresh.signer.kid());
                self.loaded.store(Arc::new(fresh));
            }
            Err(e) => {
                log::error!("keys changed but cannot be loaded, keeping the previous ones: {e}")
            }
        }
    }
}

fn load(store: &KeyStore, token_header: TokenHeader) -> Result<LoadedKeys, KeyError> {
    let stamp = store.manifest_stamp();
    let signer = store.signer(token_header)?;
    let document = store.jwks()?;
    let mut verifying = HashMap::new();
    for jwk in document["keys"].as_array().into_iter().flatten() {
        let (Some(kid), Some(alg)) = (jwk["kid"].as_str(), jwk["alg"].as_str()) else {
            continue;
        };
        let bad =
            |err: &dyn std::fmt::Display| KeyError::Crypto(format!("published key {kid}: {err}"));
        let component = |name: &str| {
            jwk[name]
                .as_str()
                .ok_or_else(|| bad(&format!("JWK without {name}")))
        };
        let entry = match SigningAlg::parse(alg) {
            Some(SigningAlg::Rs256) => (
                Algorithm::RS256,
                DecodingKey::from_rsa_components(component("n")?, component("e")?)
                    .map_err(|e| bad(&e))?,
            ),
            Some(SigningAlg::Es256) => (
                Algorithm::ES256,
                DecodingKey::from_ec_components(component("x")?, component("y")?)
                    .map_err(|e| bad(&e))?,
            ),
            None => return Err(bad(&format!("unsupported algorithm {alg}"))),
        };
        verifying.insert(kid.to_string(), entry);
    }
    let jwks = serde_json::to_vec(&document).map_err(|e| KeyError::Crypto(e.to_string()))?;
    Ok(LoadedKeys {
        signer,
        jwks,
        verifying,
        stamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activation_reaches_a_running_signer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = KeyStore::new(dir.path());
        let first = store
            .init(SigningAlg::Rs256)
            .expect("init")
            .expect("created");
        let live = LiveKeys::open(KeyStore::new(dir.path()), TokenHeader::Kid).expect("open");
        assert_eq!(live.current().signer.kid(), first.kid);

        let second = store.rotate(SigningAlg::Es256).expect("rotate");
        store.activate(&second.kid).expect("activate");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while live.current().signer.kid() != second.kid {
            assert!(
                std::time::Instant::now() < deadline,
                "activation not picked up"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let jwks: serde_json::Value =
            serde_json::from_slice(&live.current().jwks).expect("jwks json");
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
        let current = live.current();
        assert_eq!(current.signer.alg(), SigningAlg::Es256);
        assert_eq!(
            current.signer.token_header(),
            TokenHeader::Kid,
            "a reloaded signer keeps the server's header"
        );
        assert_eq!(current.verifying[&first.kid].0, Algorithm::RS256);
        assert_eq!(current.verifying[&second.kid].0, Algorithm::ES256);
    }
}
