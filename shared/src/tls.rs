//! The CA certificates both HTTPS clients trust (the AWS SDK's and the Pinterest client's): the
//! system's, read from disk once per process and shared.
//!
//! Each client would otherwise read and parse the whole system store itself at start-up, which was
//! most of the dispatch function's init time. The store is read from the system's CA bundle file
//! (`SSL_CERT_FILE`, else the first of [`BUNDLES`] that exists: one file, where
//! `rustls-native-certs` would also open every file of the certificate directory, 290 on Debian);
//! only without one does it fall back to `rustls-native-certs`. Certificates rustls cannot use are
//! left out here, once, so neither client meets them.

use std::sync::{Arc, OnceLock};

use base64::Engine as _;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

/// The usable system roots: as DER, and as the store built from them.
struct Roots {
    ders: Vec<CertificateDer<'static>>,
    store: RootCertStore,
}

static ROOTS: OnceLock<Roots> = OnceLock::new();

/// Where distributions keep their CA bundle: Amazon Linux 2023 (Lambda's `provided.al2023`) and
/// RHEL, Debian and Ubuntu, SUSE, Alpine.
pub const BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The certificates of the system's CA bundle file, if there is one that reads and parses.
fn bundle_certs() -> Option<Vec<CertificateDer<'static>>> {
    let path = std::env::var_os("SSL_CERT_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            BUNDLES
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.is_file())
        })?;
    let pem = std::fs::read(&path).ok()?;
    let certs: Vec<CertificateDer<'static>> =
        rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
            .filter_map(Result::ok)
            .collect();
    (!certs.is_empty()).then_some(certs)
}

fn roots() -> &'static Roots {
    ROOTS.get_or_init(|| {
        let certs = bundle_certs().unwrap_or_else(|| {
            let loaded = rustls_native_certs::load_native_certs();
            if !loaded.errors.is_empty() {
                tracing::warn!(errors = ?loaded.errors, "some system CA certificates could not be read");
            }
            loaded.certs
        });
        let mut store = RootCertStore::empty();
        let mut ders = Vec::with_capacity(certs.len());
        for der in certs {
            if store.add(der.clone()).is_ok() {
                ders.push(der);
            }
        }
        if ders.is_empty() {
            tracing::warn!("no usable system CA certificates: every TLS connection will fail");
        }
        Roots { ders, store }
    })
}

/// The usable system roots as PEM, the form the AWS SDK's trust store takes.
pub fn roots_pem() -> Vec<u8> {
    let engine = base64::engine::general_purpose::STANDARD;
    let mut pem = Vec::new();
    for der in &roots().ders {
        pem.extend_from_slice(b"-----BEGIN CERTIFICATE-----\n");
        for line in engine.encode(der.as_ref()).as_bytes().chunks(64) {
            pem.extend_from_slice(line);
            pem.push(b'\n');
        }
        pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    }
    pem
}

/// A rustls client configuration on ring over the system roots, offering HTTP/2 and HTTP/1.1.
pub fn client_config() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // ring implements both of rustls's default versions, TLS 1.2 and 1.3.
        .expect("ring supports TLS 1.2 and 1.3");
    let mut config = builder
        .with_root_certificates(roots().store.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_roots_round_trip_through_pem() {
        let pem = roots_pem();
        let back: Vec<CertificateDer<'static>> =
            rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(back, roots().ders);
        assert_eq!(roots().store.len(), roots().ders.len());
    }

    #[test]
    fn the_client_config_offers_http2_then_http1() {
        let config = client_config();
        assert_eq!(
            config.alpn_protocols,
            [b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }
}
