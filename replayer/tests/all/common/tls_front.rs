//! An HTTPS front for tests: a private CA and a server certificate for 127.0.0.1 and
//! localhost, both made in the test (rcgen), and a TLS-terminating proxy that forwards
//! each decrypted connection to a plain HTTP server (the simulator, a raw test server).
//! Shared by the replayer's TLS tests and the CLI's.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio_rustls::rustls;

/// A running HTTPS front.
pub struct TlsFront {
    /// `https://127.0.0.1:PORT`.
    pub url: String,
    /// The CA that signed the server's certificate, PEM (what `--cacert` is given).
    pub ca_pem: String,
    /// Handshakes that completed (the client trusted the certificate).
    pub handshakes: Arc<AtomicUsize>,
}

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it.
fn certificates() -> (String, rustls::pki_types::CertificateDer<'static>, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "llmib test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    (ca.pem(), leaf.der().clone(), leaf_key.serialize_der())
}

/// A self-signed server certificate for `names` that also says it is a CA
/// (`basicConstraints CA:TRUE`), as `openssl req -x509 -newkey rsa:2048 -nodes
/// -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1` makes it: its own PEM is
/// what `--cacert` is given.
pub fn openssl_style_certificate(
    names: &[&str],
) -> (String, rustls::pki_types::CertificateDer<'static>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().clone(), key.serialize_der())
}

/// A certificate and its PKCS#8 key from PEM text (e.g. what `openssl req -x509
/// -newkey rsa:2048 -nodes` wrote), in the form [`tls_front_with`] takes.
pub fn pem_certificate(
    cert_pem: &str,
    key_pem: &str,
) -> (String, rustls::pki_types::CertificateDer<'static>, Vec<u8>) {
    use rustls::pki_types::pem::PemObject;
    let cert = rustls::pki_types::CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    (cert_pem.to_string(), cert, key.secret_pkcs8_der().to_vec())
}

/// Starts an HTTPS front on 127.0.0.1 port 0 forwarding to `backend` (`host:port`).
/// `handshake_delay`: how long the front waits after accepting a TCP connection
/// before it takes part in the TLS handshake (so a client's connection setup is
/// measurably longer than a TCP connect).
pub async fn tls_front(backend: String, handshake_delay: Duration) -> TlsFront {
    tls_front_with(backend, handshake_delay, certificates()).await
}

/// [`tls_front`] presenting `certs`: (the PEM to trust, the server's certificate, its
/// PKCS#8 key).
pub async fn tls_front_with(
    backend: String,
    handshake_delay: Duration,
    certs: (String, rustls::pki_types::CertificateDer<'static>, Vec<u8>),
) -> TlsFront {
    let (ca_pem, cert, key) = certs;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let handshakes = Arc::new(AtomicUsize::new(0));
    let ok = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, backend, ok) = (acceptor.clone(), backend.clone(), ok.clone());
            tokio::spawn(async move {
                tokio::time::sleep(handshake_delay).await;
                // A client that refuses the certificate ends the handshake.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                ok.fetch_add(1, Ordering::SeqCst);
                let Ok(mut plain) = tokio::net::TcpStream::connect(&backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    TlsFront {
        url,
        ca_pem,
        handshakes,
    }
}
