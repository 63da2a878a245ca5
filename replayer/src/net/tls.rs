//! TLS for `https://` endpoints: the rustls configuration every client of a run uses.
//!
//! Why our own configuration rather than reqwest's: reqwest 0.13's rustls backend trusts
//! the platform verifier alone, needs the aws-lc-rs provider by default (cmake and
//! clang to build) and cannot say which roots it loaded. Here:
//! * the crypto provider is `ring` (builds with a C compiler only);
//! * trusted roots are Mozilla's (`webpki-roots`, compiled in, so a container without
//!   a CA bundle still reaches public endpoints) plus the system's native certificates
//!   (`rustls-native-certs`: `/etc/ssl/certs` and friends, or `SSL_CERT_FILE` /
//!   `SSL_CERT_DIR`), which is where a company CA installed on the machine lives;
//! * `--cacert FILE` adds the certificates of a PEM file (one or more) to those roots,
//!   for a private CA or a self-signed server certificate; a server presenting exactly
//!   one of them is accepted even when it is marked as a CA, as OpenSSL-made test
//!   certificates are (see [`crate::net::tls_pinned`]);
//! * `--insecure` skips certificate verification entirely (the handshake signatures are
//!   still checked, so the connection is encrypted, but to an unverified peer);
//! * ALPN offers `http/1.1` only: the replayer speaks HTTP/1.1 (one connection per
//!   request in flight), so a server never picks HTTP/2 behind our back.
//!
//! The handshake happens inside reqwest's connector, which is what the connector layer
//! of [`crate::net::connect`] wraps: a record's `connect_ns` is when the TLS session was up,
//! and the warm-up's connections are TLS sessions ready to use.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::config::TlsOptions;
use crate::error::ReplayError;

/// The ring provider, the one this crate builds rustls with.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for a run. `https`: the endpoint needs TLS, so the roots
/// are loaded (for plain `http://` the configuration is never used and loads nothing).
/// `--cacert` is read in any case, so a wrong path fails before anything is sent.
pub(crate) fn client_config(opts: &TlsOptions, https: bool) -> Result<ClientConfig, ReplayError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ReplayError::Internal(format!("TLS setup: {e}")))?;
    let extra = match &opts.cacert {
        Some(path) => read_pem_certs(path)?,
        None => Vec::new(),
    };
    let mut config = if opts.insecure {
        let verifier = AcceptAnyCertificate(provider.signature_verification_algorithms);
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth()
    } else {
        let roots = if https {
            roots(extra.clone())?
        } else {
            RootCertStore::empty()
        };
        if https && !extra.is_empty() {
            let verifier = crate::net::tls_pinned::PinnedOrWebPki::new(roots, extra, provider)
                .map_err(|e| ReplayError::Config(format!("--cacert: {e}")))?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The configuration of a plain `http://` run (tests).
#[cfg(test)]
pub(crate) fn plain() -> ClientConfig {
    client_config(&TlsOptions::default(), false).expect("no file to read")
}

/// Mozilla's roots, the system's and the `--cacert` ones.
fn roots(extra: Vec<CertificateDer<'static>>) -> Result<RootCertStore, ReplayError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // A system store that is missing or partly unreadable is not an error: the
    // compiled-in roots and --cacert still apply.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    for cert in extra {
        roots
            .add(cert)
            .map_err(|e| ReplayError::Config(format!("--cacert: not a usable certificate: {e}")))?;
    }
    Ok(roots)
}

/// Every certificate of a PEM file (other PEM sections, such as keys, are skipped).
fn read_pem_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ReplayError> {
    let fail = |why: String| ReplayError::Config(format!("--cacert {}: {why}", path.display()));
    // Read once and bounded: `--cacert /dev/zero` once grew without end.
    let pem = formats::read_input(path, formats::InputKind::CERTIFICATES)
        .map_err(|e| ReplayError::Config(format!("--cacert {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_error(e)))?;
    if certs.is_empty() {
        return Err(fail(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into(),
        ));
    }
    Ok(certs)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => io.to_string(),
        other => format!("not a PEM file ({other:?})"),
    }
}

/// `--insecure`: any certificate is accepted; the handshake signatures are still
/// verified with the provider's algorithms (an encrypted session with an unverified
/// peer).
#[derive(Debug)]
struct AcceptAnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// The TLS reason of a failed request, when TLS is why it failed: the rustls error
/// somewhere in its causes (a certificate problem, a handshake failure).
pub(crate) fn tls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut src = Some(e);
    while let Some(s) = src {
        if let Some(t) = s.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        // An io::Error's source() skips the error it wraps (another io::Error, then
        // rustls's, from the connector): descend into it instead.
        src = match s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(wrapped) => Some(wrapped as &(dyn std::error::Error + 'static)),
            None => s.source(),
        };
    }
    None
}

/// One line for a TLS failure, with the flags that address it when it is the
/// certificate.
pub(crate) fn describe_tls(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(_) => format!(
            "TLS: the server's certificate was refused: {e} (trust its CA with --cacert FILE, \
             or skip verification with --insecure)"
        ),
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => format!(
            "TLS handshake failed: {e} (the server does not speak TLS there: http:// instead?)"
        ),
        _ => format!("TLS handshake failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn cacert_reads_every_certificate_of_a_pem_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["a.test".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["b.test".into()]).unwrap();
        let pem = format!(
            "{}{}{}",
            a.cert.pem(),
            a.signing_key.serialize_pem(),
            b.cert.pem()
        );
        let path = write(dir.path(), "ca.pem", &pem);
        let certs = read_pem_certs(&path).unwrap();
        assert_eq!(certs.len(), 2, "the key section is skipped");
        assert_eq!(certs[0].as_ref(), a.cert.der().as_ref());
        // Both become roots beside the compiled-in ones.
        let n = roots(certs).unwrap().len();
        assert_eq!(n, webpki_roots::TLS_SERVER_ROOTS.len() + native_count() + 2);
    }

    fn native_count() -> usize {
        let mut r = RootCertStore::empty();
        r.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        r.len()
    }

    #[test]
    fn a_bad_cacert_is_a_one_line_config_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = write(dir.path(), "empty.pem", "no pem here\n");
        let broken = write(
            dir.path(),
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nnot base64 !!\n",
        );
        for path in [missing, empty, broken] {
            let opts = TlsOptions {
                cacert: Some(path.clone()),
                insecure: false,
            };
            let e = client_config(&opts, false).unwrap_err().to_string();
            assert!(e.starts_with("--cacert "), "{e}");
            assert!(e.contains(&path.display().to_string()), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn the_config_offers_http1_only() {
        let c = client_config(&TlsOptions::default(), true).unwrap();
        assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
        let c = client_config(
            &TlsOptions {
                cacert: None,
                insecure: true,
            },
            true,
        )
        .unwrap();
        assert_eq!(c.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }
}
