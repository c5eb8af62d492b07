//! The RS256 JWT the Voice REST API wants as `Authorization: Bearer`: signed with the Vonage
//! application's private key, claims `application_id`, `iat`, `exp` and a unique `jti`.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};

/// How long one token is good for. A fresh one is signed for every request.
pub const TOKEN_TTL_SECS: u64 = 300;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the private key {path}: {error}")]
    Read { path: String, error: String },
    #[error("the private key is not a PEM block (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)")]
    NotPem,
    #[error("the private key is not a usable RSA key: {0}")]
    Rejected(String),
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the Vonage API token")]
pub struct SignError;

/// Signs API tokens for one Vonage application.
pub struct ApiSigner {
    application_id: String,
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl ApiSigner {
    /// Reads the application's private key (the PEM Vonage's dashboard downloads).
    pub fn load(application_id: &str, path: &Path) -> Result<Self, KeyError> {
        let pem = std::fs::read_to_string(path).map_err(|e| KeyError::Read {
            path: path.display().to_string(),
            error: e.to_string(),
        })?;
        Self::from_pem(application_id, &pem)
    }

    /// PKCS#8 (`BEGIN PRIVATE KEY`, what Vonage issues) or PKCS#1 (`BEGIN RSA PRIVATE KEY`).
    pub fn from_pem(application_id: &str, pem: &str) -> Result<Self, KeyError> {
        let (der, pkcs8) = if let Some(der) = pem_block(pem, "PRIVATE KEY") {
            (der, true)
        } else if let Some(der) = pem_block(pem, "RSA PRIVATE KEY") {
            (der, false)
        } else {
            return Err(KeyError::NotPem);
        };
        let key = if pkcs8 {
            RsaKeyPair::from_pkcs8(&der)
        } else {
            RsaKeyPair::from_der(&der)
        }
        .map_err(|e| KeyError::Rejected(e.to_string()))?;
        Ok(ApiSigner {
            application_id: application_id.to_string(),
            key,
            rng: SystemRandom::new(),
        })
    }

    /// A token issued at `now` (Unix seconds), unique by `jti`.
    pub fn token(&self, now: u64, jti: &str) -> Result<String, SignError> {
        let header = B64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "application_id": self.application_id,
            "iat": now,
            "nbf": now.saturating_sub(1),
            "exp": now + TOKEN_TTL_SECS,
            "jti": jti,
        });
        let claims = B64.encode(claims.to_string());
        let signed = format!("{header}.{claims}");
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &self.rng,
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| SignError)?;
        Ok(format!("{signed}.{}", B64.encode(signature)))
    }
}

/// The DER inside `-----BEGIN {label}-----` … `-----END {label}-----`.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let body: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    STANDARD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    fn pem_of(key: &RsaKeyPair) -> String {
        let der = key.as_der().unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    #[test]
    fn tokens_verify_with_the_public_key_and_carry_the_claims() {
        let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let public = key.public_key().as_ref().to_vec();
        let signer = ApiSigner::from_pem("app-1", &pem_of(&key)).unwrap();
        let token = signer.token(1_000, "jti-1").unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let signature = B64.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("RS256 signature verifies");
        let claims: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["application_id"], "app-1");
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 1_000 + TOKEN_TTL_SECS);
        assert_eq!(claims["jti"], "jti-1");
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
    }

    #[test]
    fn bad_keys_are_clear_errors() {
        assert!(matches!(
            ApiSigner::from_pem("app", "not a key"),
            Err(KeyError::NotPem)
        ));
        assert!(matches!(
            ApiSigner::from_pem(
                "app",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            ),
            Err(KeyError::Rejected(_))
        ));
        assert!(matches!(
            ApiSigner::load("app", Path::new("/nonexistent/key.pem")),
            Err(KeyError::Read { .. })
        ));
    }
}
