//! Webhook HMAC verification: base64(HMAC-SHA256(app secret, raw body)), compared in constant time.
//!
//! This is not a JSON parser: it only ever sees the exact bytes Shopify sent.
//!
//! The HMAC is ring's (already linked for TLS through rustls): its SHA-256 is assembly that uses
//! the CPU's SHA extensions, as fast as OpenSSL whatever the crate's `opt-level`, where the
//! RustCrypto `hmac`/`sha2` crates built with the release profile's `opt-level = "z"` took twice
//! as long (BENCHMARKS.md, "Core").

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;
use ring::hmac;
use secrecy::{ExposeSecret, SecretString};

/// Header names that carry the signature: classic webhooks, then Shopify's newer "Events" product.
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-shopify-hmac-sha256", "shopify-hmac-sha256"];

/// Why a delivery failed verification. Every variant means "do not trust this body".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    /// Neither signature header is present.
    #[error(
        "the request has no X-Shopify-Hmac-Sha256 header: it was not sent by Shopify, or a proxy dropped the header"
    )]
    MissingHeader,
    /// The header is not standard base64 of exactly 32 bytes.
    #[error("the X-Shopify-Hmac-Sha256 header is not base64 of a 32-byte SHA-256 HMAC")]
    Malformed,
    /// The signature does not match the body under any configured secret.
    #[error(
        "the HMAC does not match the body under any configured secret: check SHOPIFY_WEBHOOK_SECRETS is the app's client secret (webhooks created in the Shopify admin are signed with a different key)"
    )]
    Mismatch,
}

/// The app client secrets a webhook may be signed with: current first, then previous ones during a
/// rotation (Shopify can take up to an hour to switch to a new secret).
#[derive(Clone)]
pub struct WebhookSecrets(Vec<SecretString>);

impl WebhookSecrets {
    /// Wraps the secrets; empty strings are dropped.
    pub fn new(secrets: impl IntoIterator<Item = SecretString>) -> Self {
        Self(
            secrets
                .into_iter()
                .filter(|s| !s.expose_secret().trim().is_empty())
                .collect(),
        )
    }

    /// Parses a comma-separated list (the `SHOPIFY_WEBHOOK_SECRETS` format), trimming each entry.
    pub fn from_comma_separated(list: &str) -> Self {
        Self::new(
            list.split(',')
                .map(|s| SecretString::from(s.trim().to_owned())),
        )
    }

    /// True when no secret is configured, which would reject every webhook.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secrets' values (the registry keeps them as the relay's other secrets).
    pub(crate) fn exposed(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| s.expose_secret())
    }

    /// The number of configured secrets.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl std::fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecrets([REDACTED; {}])", self.0.len())
    }
}

/// Verifies a delivery from its headers and raw body. Returns the index of the secret that matched,
/// so operators can tell when the previous secret of a rotation is no longer used.
///
/// # Errors
/// [`VerifyError`] when the header is missing, malformed, or matches under no secret.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
) -> Result<usize, VerifyError> {
    let header = SIGNATURE_HEADERS
        .iter()
        .find_map(|name| headers.get(*name))
        .ok_or(VerifyError::MissingHeader)?;
    let value = header.to_str().map_err(|_| VerifyError::Malformed)?;
    verify_signature(value, body, secrets)
}

/// Verifies a base64 signature value against the raw body under each secret in turn.
///
/// # Errors
/// [`VerifyError::Malformed`] or [`VerifyError::Mismatch`].
pub fn verify_signature(
    signature: &str,
    body: &[u8],
    secrets: &WebhookSecrets,
) -> Result<usize, VerifyError> {
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| VerifyError::Malformed)?;
    if signature.len() != 32 {
        return Err(VerifyError::Malformed);
    }
    secrets
        .0
        .iter()
        // `hmac::verify` compares in constant time.
        .position(|secret| {
            hmac::verify(&key(secret.expose_secret().as_bytes()), body, &signature).is_ok()
        })
        .ok_or(VerifyError::Mismatch)
}

/// Computes the header value Shopify would send for `body` signed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    STANDARD.encode(hmac::sign(&key(secret), body))
}

/// An HMAC-SHA256 key; any length is accepted (longer ones are hashed first).
fn key(secret: &[u8]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &str) -> WebhookSecrets {
        WebhookSecrets::from_comma_separated(list)
    }

    fn headers(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        h
    }

    #[test]
    fn accepts_the_official_shopify_api_js_vector() {
        let h = headers(
            "X-Shopify-Hmac-Sha256",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        );
        assert_eq!(
            verify(&h, br#"{"foo": "bar"}"#, &secrets("test_secret_key")),
            Ok(0)
        );
    }

    #[test]
    fn accepts_the_official_shopify_api_php_vector() {
        let h = headers(
            "x-shopify-hmac-sha256",
            "/Redz4YXHLnSmmSN8grr5/Jl/Ua3d7yX3iWbjb8R8wo=",
        );
        assert_eq!(verify(&h, br#"{"foo":"bar"}"#, &secrets("steffi")), Ok(0));
    }

    #[test]
    fn accepts_the_events_header_name() {
        let h = headers(
            "Shopify-Hmac-Sha256",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        );
        assert_eq!(
            verify(&h, br#"{"foo": "bar"}"#, &secrets("test_secret_key")),
            Ok(0)
        );
    }

    #[test]
    fn rejects_tampered_body() {
        let h = headers(
            "X-Shopify-Hmac-Sha256",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        );
        assert_eq!(
            verify(&h, br#"{"foo":"bar"}"#, &secrets("test_secret_key")),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn rejects_wrong_secret() {
        let h = headers(
            "X-Shopify-Hmac-Sha256",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        );
        assert_eq!(
            verify(&h, br#"{"foo": "bar"}"#, &secrets("steffi")),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn accepts_either_secret_during_rotation() {
        let h = headers(
            "X-Shopify-Hmac-Sha256",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g=",
        );
        assert_eq!(
            verify(
                &h,
                br#"{"foo": "bar"}"#,
                &secrets("new-secret, test_secret_key")
            ),
            Ok(1)
        );
    }

    #[test]
    fn distinguishes_missing_and_malformed_headers() {
        let body = br#"{"foo": "bar"}"#;
        let s = secrets("test_secret_key");
        assert_eq!(
            verify(&HeaderMap::new(), body, &s),
            Err(VerifyError::MissingHeader)
        );
        for bad in [
            "not base64!",
            "AAAA",
            "",
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g",
        ] {
            let h = headers("X-Shopify-Hmac-Sha256", bad);
            assert_eq!(verify(&h, body, &s), Err(VerifyError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn sign_reproduces_the_official_vector() {
        assert_eq!(
            sign(b"test_secret_key", br#"{"foo": "bar"}"#),
            "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="
        );
    }

    #[test]
    fn empty_secret_list_rejects_everything() {
        let s = secrets(" , ");
        assert!(s.is_empty());
        let h = headers("X-Shopify-Hmac-Sha256", &sign(b"", b"{}"));
        assert_eq!(verify(&h, b"{}", &s), Err(VerifyError::Mismatch));
    }

    #[test]
    fn debug_never_prints_secrets() {
        assert!(!format!("{:?}", secrets("hunter2")).contains("hunter2"));
    }
}
