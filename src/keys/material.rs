//! Making a key: RSA-2048 (PKCS#8 PEM), its RFC 7638 thumbprint and a self-signed
//! certificate. The pure-Rust `rsa` crate is used only here, to generate and read keys,
//! never to sign (RUSTSEC-2023-0071 concerns its signing timing).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::KeyError;

pub struct KeyMaterial {
    pub kid: String,
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

/// RFC 7638 thumbprint: SHA-256 over the required members in lexicographic order.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl KeyMaterial {
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
        let cert = params.self_signed(&signing).map_err(crypto)?;
        Ok(Self {
            kid,
            private_pem,
            cert_pem: cert.pem(),
        })
    }
}

/// The public JWK of a key, for `/-/jwks` and `keys jwks`.
pub fn jwk_for_key(private_pem: &str, kid: &str, alg: &str) -> Result<serde_json::Value, KeyError> {
    let key = RsaPrivateKey::from_pkcs8_pem(private_pem).map_err(crypto)?;
    let (n, e) = rsa_components(&key);
    Ok(json!({ "kty": "RSA", "use": "sig", "alg": alg, "kid": kid, "n": n, "e": e }))
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
        let jwk = jwk_for_key(&m.private_pem, &m.kid, "RS256").expect("jwk");
        let n = jwk["n"].as_str().expect("n");
        assert_eq!(thumbprint(n, "AQAB"), m.kid);
    }
}
