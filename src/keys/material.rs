//! Making a key — RSA-2048 or ECDSA P-256, both PKCS#8 PEM — its RFC 7638 thumbprint and a
//! self-signed certificate. The pure-Rust `rsa` crate is used only here, to generate and
//! read RSA keys, never to sign (RUSTSEC-2023-0071 concerns its signing timing); P-256 keys
//! are generated and read with rcgen (aws-lc underneath).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{KeyError, SigningAlg};

pub struct KeyMaterial {
    pub kid: String,
    pub alg: SigningAlg,
    pub private_pem: String,
    pub cert_pem: String,
}

fn crypto(e: impl std::fmt::Display) -> KeyError {
    KeyError::Crypto(e.to_string())
}

/// `n` and `e` of an RSA key, base64url without padding, as JWKs carry them.
fn rsa_components(key: &RsaPrivateKey) -> (String, String) {
    (
        URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
    )
}

/// `x` and `y` of a P-256 key, base64url without padding, from its uncompressed public
/// point `0x04 || x || y` (32 bytes each).
fn ec_components(key: &rcgen::KeyPair) -> Result<(String, String), KeyError> {
    match key.public_key_raw() {
        [0x04, point @ ..] if point.len() == 64 => Ok((
            URL_SAFE_NO_PAD.encode(&point[..32]),
            URL_SAFE_NO_PAD.encode(&point[32..]),
        )),
        _ => Err(KeyError::Crypto(
            "not an uncompressed P-256 public key".into(),
        )),
    }
}

/// RFC 7638 thumbprint of an RSA key: SHA-256 over the required members in lexicographic
/// order.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// RFC 7638 thumbprint of an EC key: the required members `crv`, `kty`, `x`, `y`, in that
/// (lexicographic) order.
fn ec_thumbprint(crv: &str, x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A self-signed certificate for `signing` (what `x5c` and a registry's bundle carry).
fn self_signed(signing: &rcgen::KeyPair, kid: &str) -> Result<String, KeyError> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(crypto)?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("wvs-auth token signer {kid}"),
    );
    // Registries check the chain's validity period: start a day back for clock skew,
    // and last long, since rotation (not expiry) is how keys are replaced.
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    Ok(params.self_signed(signing).map_err(crypto)?.pem())
}

impl KeyMaterial {
    pub fn generate(alg: SigningAlg) -> Result<Self, KeyError> {
        match alg {
            SigningAlg::Rs256 => Self::generate_rsa(),
            SigningAlg::Es256 => Self::generate_ec(),
        }
    }

    pub fn generate_rsa() -> Result<Self, KeyError> {
        let key = RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).map_err(crypto)?;
        let private_pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(crypto)?
            .to_string();
        let (n, e) = rsa_components(&key);
        let kid = thumbprint(&n, &e);
        let signing =
            rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(&private_pem, &rcgen::PKCS_RSA_SHA256)
                .map_err(crypto)?;
        let cert_pem = self_signed(&signing, &kid)?;
        Ok(Self {
            kid,
            alg: SigningAlg::Rs256,
            private_pem,
            cert_pem,
        })
    }

    /// A P-256 key (PKCS#8 PEM) and a certificate it signed itself with ECDSA-SHA256.
    pub fn generate_ec() -> Result<Self, KeyError> {
        let signing =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(crypto)?;
        let private_pem = signing.serialize_pem();
        let (x, y) = ec_components(&signing)?;
        let kid = ec_thumbprint("P-256", &x, &y);
        let cert_pem = self_signed(&signing, &kid)?;
        Ok(Self {
            kid,
            alg: SigningAlg::Es256,
            private_pem,
            cert_pem,
        })
    }
}

/// The public JWK of a key, for `/-/jwks` and `keys jwks`. `alg` (from the manifest) says
/// what kind of key the PEM holds.
pub fn jwk_for_key(
    private_pem: &str,
    kid: &str,
    alg: SigningAlg,
) -> Result<serde_json::Value, KeyError> {
    Ok(match alg {
        SigningAlg::Rs256 => {
            let key = RsaPrivateKey::from_pkcs8_pem(private_pem).map_err(crypto)?;
            let (n, e) = rsa_components(&key);
            json!({ "kty": "RSA", "use": "sig", "alg": alg.name(), "kid": kid, "n": n, "e": e })
        }
        SigningAlg::Es256 => {
            let key = rcgen::KeyPair::from_pkcs8_pem_and_sign_algo(
                private_pem,
                &rcgen::PKCS_ECDSA_P256_SHA256,
            )
            .map_err(crypto)?;
            let (x, y) = ec_components(&key)?;
            json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": alg.name(), "kid": kid,
                "x": x, "y": y,
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_example_thumbprint() {
        // The example key of RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generated_key_has_matching_kid_and_cert() {
        let m = KeyMaterial::generate_rsa().expect("generate");
        assert!(m.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(m.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let jwk = jwk_for_key(&m.private_pem, &m.kid, SigningAlg::Rs256).expect("jwk");
        let n = jwk["n"].as_str().expect("n");
        assert_eq!(thumbprint(n, "AQAB"), m.kid);
    }

    /// The thumbprint computed independently: serde_json's map keeps keys sorted, so
    /// serialising the required members gives RFC 7638's canonical form.
    fn canonical_thumbprint(jwk: &serde_json::Value, members: &[&str]) -> String {
        let required: serde_json::Map<String, serde_json::Value> = members
            .iter()
            .map(|m| (m.to_string(), jwk[*m].clone()))
            .collect();
        let text = serde_json::to_string(&required).expect("json");
        URL_SAFE_NO_PAD.encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn ec_thumbprint_of_a_known_key() {
        // The P-256 public key of RFC 7515 Appendix A.3 (the ES256 example). RFC 7638 gives
        // no EC vector; this value is SHA-256 over the canonical JSON computed independently
        // (python3 hashlib over the same string) and pins the member order and encoding.
        let x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
        let y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
        let jwk = json!({ "kty": "EC", "crv": "P-256", "x": x, "y": y });
        let expected = canonical_thumbprint(&jwk, &["crv", "kty", "x", "y"]);
        assert_eq!(ec_thumbprint("P-256", x, y), expected);
        assert_eq!(
            ec_thumbprint("P-256", x, y),
            "oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U"
        );
    }

    #[test]
    fn generated_ec_key_has_matching_kid_jwk_and_cert() {
        let m = KeyMaterial::generate_ec().expect("generate");
        assert_eq!(m.alg, SigningAlg::Es256);
        assert!(m.private_pem.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(m.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let jwk = jwk_for_key(&m.private_pem, &m.kid, SigningAlg::Es256).expect("jwk");
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert_eq!(jwk["use"], "sig");
        assert_eq!(jwk["kid"], m.kid.as_str());
        for c in ["x", "y"] {
            let bytes = URL_SAFE_NO_PAD
                .decode(jwk[c].as_str().expect("coordinate"))
                .expect("base64url");
            assert_eq!(bytes.len(), 32, "{c} is a 32-byte coordinate");
        }
        assert_eq!(canonical_thumbprint(&jwk, &["crv", "kty", "x", "y"]), m.kid);
        // Stable: reading the same PEM again gives the same JWK.
        let again = jwk_for_key(&m.private_pem, &m.kid, SigningAlg::Es256).expect("jwk");
        assert_eq!(again, jwk);
        // An EC key is not an RSA key.
        assert!(jwk_for_key(&m.private_pem, &m.kid, SigningAlg::Rs256).is_err());
    }
}
