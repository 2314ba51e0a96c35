//! Signing JWTs with the active key.
//!
//! jsonwebtoken's `encode` re-parses the private key on every call; a token server signs on
//! every request, so the parsed aws-lc key (constant-time, OpenSSL-speed RSA) and the
//! encoded header — constant for a key — are built once here and reused.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    KeyPair, RsaKeyPair, UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::KeyError;

pub struct JwtSigner {
    kid: String,
    /// `base64url(header) + "."`, ready to prepend to every token.
    header_prefix: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl JwtSigner {
    pub fn from_pem(kid: &str, private_pem: &str, cert_pem: &str) -> Result<Self, KeyError> {
        let crypto = |e: &dyn std::fmt::Display| KeyError::Crypto(e.to_string());
        let der = EncodingKey::from_rsa_pem(private_pem.as_bytes()).map_err(|e| crypto(&e))?;
        // jsonwebtoken hands back the inner PKCS#1 key of a PKCS#8 PEM.
        let key = RsaKeyPair::from_der(der.as_bytes())
            .or_else(|_| RsaKeyPair::from_pkcs8(der.as_bytes()))
            .map_err(|e| crypto(&e))?;

        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.kid = Some(kid.to_string());
        // x5c is the PEM body: base64 (standard alphabet) of the DER certificate.
        header.x5c = Some(vec![pem_body(cert_pem)]);
        let header_json = serde_json::to_vec(&header).map_err(|e| crypto(&e))?;
        let header_prefix = format!("{}.", URL_SAFE_NO_PAD.encode(header_json));
        Ok(Self {
            kid: kid.to_string(),
            header_prefix,
            key,
            rng: SystemRandom::new(),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Crypto(e.to_string()))?;
        let mut token = String::with_capacity(self.header_prefix.len() + payload.len() * 2 + 400);
        token.push_str(&self.header_prefix);
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// The payload (claims JSON) of a token this very key signed, or `None`.
    ///
    /// For tokens wvs-auth hands to itself (LFS download links). The header must be
    /// byte-for-byte the one this signer writes, so no `alg` or `kid` from the token is ever
    /// trusted; then the RS256 signature is checked with this key's public half. Tokens of
    /// another (earlier) active key fail, which costs at most one link lifetime after
    /// `keys activate` and a restart.
    pub fn verify(&self, token: &str) -> Option<Vec<u8>> {
        let rest = token.strip_prefix(&self.header_prefix)?;
        let (payload_b64, signature_b64) = rest.split_once('.')?;
        let signed = &token[..self.header_prefix.len() + payload_b64.len()];
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).ok()?;
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, self.key.public_key().as_ref())
            .verify(signed.as_bytes(), &signature)
            .ok()?;
        URL_SAFE_NO_PAD.decode(payload_b64).ok()
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

    #[test]
    fn signs_tokens_jsonwebtoken_verifies() {
        let m = KeyMaterial::generate_rsa().expect("generate");
        let signer = JwtSigner::from_pem(&m.kid, &m.private_pem, &m.cert_pem).expect("signer");
        let claims = serde_json::json!({ "sub": "x", "aud": "svc", "exp": 4_000_000_000u64 });
        let token = signer.sign(&claims).expect("sign");

        let header = decode_header(&token).expect("header");
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.kid.as_deref(), Some(m.kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.x5c.as_ref().map(Vec::len), Some(1));

        let jwk = crate::keys::jwk_for_key(&m.private_pem, &m.kid, "RS256").expect("jwk");
        let key = DecodingKey::from_rsa_components(
            jwk["n"].as_str().expect("n"),
            jwk["e"].as_str().expect("e"),
        )
        .expect("decoding key");
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["svc"]);
        let data = decode::<serde_json::Value>(&token, &key, &validation).expect("verifies");
        assert_eq!(data.claims["sub"], "x");

        let payload = signer.verify(&token).expect("own token verifies");
        let back: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        assert_eq!(back, claims);
    }

    #[test]
    fn verify_refuses_tampered_and_foreign_tokens() {
        let m = KeyMaterial::generate_rsa().expect("generate");
        let signer = JwtSigner::from_pem(&m.kid, &m.private_pem, &m.cert_pem).expect("signer");
        let token = signer
            .sign(&serde_json::json!({ "oid": "a" }))
            .expect("sign");
        let (head, sig) = token.rsplit_once('.').expect("three parts");
        let (prefix, _) = head.rsplit_once('.').expect("three parts");
        let forged_payload = URL_SAFE_NO_PAD.encode(br#"{"oid":"b"}"#);
        assert!(signer
            .verify(&format!("{prefix}.{forged_payload}.{sig}"))
            .is_none());
        assert!(signer.verify(&format!("{head}.")).is_none());
        assert!(signer.verify("").is_none());
        assert!(signer.verify("a.b.c").is_none());

        let other = KeyMaterial::generate_rsa().expect("generate");
        let other =
            JwtSigner::from_pem(&other.kid, &other.private_pem, &other.cert_pem).expect("signer");
        assert!(other.verify(&token).is_none());
    }
}
