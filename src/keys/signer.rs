//! Signing JWTs with the active key.
//!
//! jsonwebtoken's `encode` re-parses the private key on every call; a token server signs on
//! every request, so the parsed aws-lc key (constant-time RSA or P-256) and the encoded
//! header — constant for a key and a [`TokenHeader`] — are built once here and reused.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};

use super::{KeyError, SigningAlg};

/// What a token's header carries besides `alg`, `typ` and `kid` (SPEC §3), chosen by
/// `serve --token-header`.
///
/// It decides which registry configurations accept the tokens. Distribution 2.8 and 3.x
/// with `rootcertbundle` accept `x5c` tokens. Distribution 3.x checks an `x5c` chain
/// against `rootcertbundle` only and rejects the token when that fails, so a 3.x registry
/// configured with `jwks:` alone needs tokens without `x5c`; it then finds the key by
/// `kid` (RFC 7638 thumbprint) among the JWKS entries and the bundle's certificates.
/// Distribution 2.8 names bundle keys by libtrust key IDs, which are not our `kid`s, so it
/// refuses `kid`-only tokens: hence the default.
///
/// Every JWT a server signs follows the one setting ([`super::LiveKeys`] builds its signer
/// with it). Registry tokens and the Dependency Proxy's tokens for its cache are verified
/// by a distribution registry, which is what the setting is for. The proxy's bearer tokens
/// and LFS links are verified only by wvs-auth (`keys::verify`), which finds the key by
/// `kid` and never reads `x5c`: for them the header changes nothing but the size, and one
/// header per server keeps "what do this server's tokens look like" a single answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TokenHeader {
    /// `kid` and `x5c` (the signing key's certificate): distribution 2.8, and 3.x with
    /// `rootcertbundle`.
    #[default]
    X5c,
    /// `kid` only: distribution 3.x with `jwks` (or `rootcertbundle`); 2.8 refuses these.
    Kid,
}

impl TokenHeader {
    pub fn name(self) -> &'static str {
        match self {
            TokenHeader::X5c => "x5c",
            TokenHeader::Kid => "kid",
        }
    }
}

impl std::fmt::Display for TokenHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The parsed private key.
enum SigningKey {
    Rsa(RsaKeyPair),
    /// `ECDSA_P256_SHA256_FIXED_SIGNING`: signatures are the 64-byte `r || s` JWS wants.
    Ec(EcdsaKeyPair),
}

pub struct JwtSigner {
    kid: String,
    token_header: TokenHeader,
    /// `base64url(header) + "."` for `token_header`, ready to prepend to every token.
    header_prefix: String,
    key: SigningKey,
    rng: SystemRandom,
}

fn crypto(e: impl std::fmt::Display) -> KeyError {
    KeyError::Crypto(e.to_string())
}

impl JwtSigner {
    /// A signer for the PKCS#8 PEM key `private_pem` of algorithm `alg` (from the manifest)
    /// whose tokens carry `token_header`; `cert_pem` is its certificate, for `x5c`.
    pub fn from_pem(
        kid: &str,
        alg: SigningAlg,
        private_pem: &str,
        cert_pem: &str,
        token_header: TokenHeader,
    ) -> Result<Self, KeyError> {
        // Both kinds of key are stored as PKCS#8 PEM (see `material.rs`).
        let der = STANDARD.decode(pem_body(private_pem)).map_err(crypto)?;
        let (key, header_alg) = match alg {
            SigningAlg::Rs256 => (
                SigningKey::Rsa(RsaKeyPair::from_pkcs8(&der).map_err(crypto)?),
                Algorithm::RS256,
            ),
            SigningAlg::Es256 => (
                SigningKey::Ec(
                    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
                        .map_err(crypto)?,
                ),
                Algorithm::ES256,
            ),
        };

        let mut header = Header::new(header_alg);
        header.typ = Some("JWT".into());
        header.kid = Some(kid.to_string());
        if token_header == TokenHeader::X5c {
            // x5c is the PEM body: base64 (standard alphabet) of the DER certificate.
            header.x5c = Some(vec![pem_body(cert_pem)]);
        }
        let header_json = serde_json::to_vec(&header).map_err(crypto)?;
        let header_prefix = format!("{}.", URL_SAFE_NO_PAD.encode(header_json));
        Ok(Self {
            kid: kid.to_string(),
            token_header,
            header_prefix,
            key,
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// What the tokens' header carries besides `alg`, `typ` and `kid`.
    pub fn token_header(&self) -> TokenHeader {
        self.token_header
    }

    pub fn alg(&self) -> SigningAlg {
        match self.key {
            SigningKey::Rsa(_) => SigningAlg::Rs256,
            SigningKey::Ec(_) => SigningAlg::Es256,
        }
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(crypto)?;
        let mut token = String::with_capacity(self.header_prefix.len() + payload.len() * 2 + 400);
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = match &self.key {
            SigningKey::Rsa(key) => {
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(
                    &RSA_PKCS1_SHA256,
                    &self.rng,
                    token.as_bytes(),
                    &mut signature,
                )
                .map_err(crypto)?;
                signature
            }
            SigningKey::Ec(key) => key
                .sign(&self.rng, token.as_bytes())
                .map_err(crypto)?
                .as_ref()
                .to_vec(),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyMaterial;
    use jsonwebtoken::{decode, decode_header, DecodingKey, Validation};

    fn signer_for(m: &KeyMaterial, token_header: TokenHeader) -> JwtSigner {
        JwtSigner::from_pem(&m.kid, m.alg, &m.private_pem, &m.cert_pem, token_header)
            .expect("signer")
    }

    fn signs_tokens_jsonwebtoken_verifies(alg: SigningAlg) {
        for token_header in [TokenHeader::X5c, TokenHeader::Kid] {
            signs_tokens_with_header_jsonwebtoken_verifies(alg, token_header);
        }
    }

    fn signs_tokens_with_header_jsonwebtoken_verifies(alg: SigningAlg, token_header: TokenHeader) {
        let m = KeyMaterial::generate(alg).expect("generate");
        let signer = signer_for(&m, token_header);
        assert_eq!(signer.alg(), alg);
        assert_eq!(signer.token_header(), token_header);
        let claims = serde_json::json!({ "sub": "x", "aud": "svc", "exp": 4_000_000_000u64 });
        let token = signer.sign(&claims).expect("sign");

        let header = decode_header(&token).expect("header");
        let expected = match alg {
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
        };
        assert_eq!(header.alg, expected);
        assert_eq!(header.kid.as_deref(), Some(m.kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        match token_header {
            TokenHeader::X5c => {
                let x5c = header.x5c.as_ref().expect("x5c");
                assert_eq!(x5c, &vec![pem_body(&m.cert_pem)], "x5c is the certificate");
            }
            TokenHeader::Kid => assert_eq!(header.x5c, None),
        }

        let jwk = crate::keys::jwk_for_key(&m.private_pem, &m.kid, alg).expect("jwk");
        assert_eq!(jwk["alg"], alg.name());
        let key = match alg {
            SigningAlg::Rs256 => DecodingKey::from_rsa_components(
                jwk["n"].as_str().expect("n"),
                jwk["e"].as_str().expect("e"),
            ),
            SigningAlg::Es256 => DecodingKey::from_ec_components(
                jwk["x"].as_str().expect("x"),
                jwk["y"].as_str().expect("y"),
            ),
        }
        .expect("decoding key");
        let mut validation = Validation::new(expected);
        validation.set_audience(&["svc"]);
        let data = decode::<serde_json::Value>(&token, &key, &validation).expect("verifies");
        assert_eq!(data.claims["sub"], "x");

        assert_eq!(data.claims, claims);
    }

    #[test]
    fn rs256_tokens_jsonwebtoken_verifies() {
        signs_tokens_jsonwebtoken_verifies(SigningAlg::Rs256);
    }

    #[test]
    fn es256_tokens_jsonwebtoken_verifies() {
        signs_tokens_jsonwebtoken_verifies(SigningAlg::Es256);
        // The JWS signature of ES256 is the fixed 64-byte r || s, not DER.
        let m = KeyMaterial::generate_ec().expect("generate");
        let token = signer_for(&m, TokenHeader::default())
            .sign(&serde_json::json!({}))
            .expect("sign");
        let (_, sig) = token.rsplit_once('.').expect("three parts");
        assert_eq!(URL_SAFE_NO_PAD.decode(sig).expect("base64").len(), 64);
    }

    /// The header as JSON, straight from the token: what a registry reads, field by field.
    fn raw_header(token: &str) -> serde_json::Map<String, serde_json::Value> {
        let (header, _) = token.split_once('.').expect("three parts");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url")).expect("json")
    }

    #[test]
    fn kid_header_has_kid_and_no_x5c_default_has_both() {
        assert_eq!(TokenHeader::default(), TokenHeader::X5c);
        for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
            let m = KeyMaterial::generate(alg).expect("generate");
            let claims = serde_json::json!({ "sub": "x" });
            let kid_only = raw_header(
                &signer_for(&m, TokenHeader::Kid)
                    .sign(&claims)
                    .expect("sign"),
            );
            let mut keys: Vec<&str> = kid_only.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["alg", "kid", "typ"], "{kid_only:?}");
            assert_eq!(kid_only["kid"], m.kid.as_str());

            let default = raw_header(
                &signer_for(&m, TokenHeader::default())
                    .sign(&claims)
                    .expect("sign"),
            );
            let mut keys: Vec<&str> = default.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(keys, ["alg", "kid", "typ", "x5c"], "{default:?}");
            assert_eq!(default["kid"], m.kid.as_str());
        }
    }

    #[test]
    fn wrong_algorithm_for_the_pem_is_refused() {
        let ec = KeyMaterial::generate_ec().expect("generate");
        assert!(JwtSigner::from_pem(
            &ec.kid,
            SigningAlg::Rs256,
            &ec.private_pem,
            &ec.cert_pem,
            TokenHeader::default()
        )
        .is_err());
    }
}
