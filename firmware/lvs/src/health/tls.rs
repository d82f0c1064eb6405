//! TLS for HTTPS checks (keepalived `SSL_GET`): a rustls client on the ring provider, and how it
//! trusts a real server's certificate.
//!
//! keepalived does not verify a real server's certificate unless a CA is configured (its `SSL`
//! block's `ca`); [`TlsTrust::AnyCertificate`] does the same: any chain and any name are taken,
//! but the handshake's signatures are still checked with the provider's algorithms, so the server
//! must hold the key of the certificate it presents. [`TlsTrust::Anchors`] verifies the chain
//! against configured trust anchors (PEM or DER) and the name against the check's virtual host
//! (else the target address), as webpki does for any client.
//!
//! One `ClientConfig` per trust, built on first use and shared by every check with that trust.
//! Session resumption is off: each check is a full handshake, as a new client's would be, so a
//! certificate or key problem is seen at the next check (and 1000 servers hold no session cache).
//! No ALPN; SNI is the check's virtual host when it is a DNS name, none otherwise.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::reply::FailReason;

/// How an HTTPS check trusts the real server's certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TlsTrust {
    /// Any certificate chain for any name (keepalived's default without a CA); the handshake
    /// signatures are still verified.
    AnyCertificate,
    /// The chain must lead to one of these anchors and name the server.
    Anchors(TrustAnchors),
    /// Anchors were asked for but cannot be used (this says why, naming the trust set): every
    /// handshake fails as not trusted, so a server is never taken as verified when it was not.
    Unusable(String),
}

/// Trust anchors (CA certificates) for [`TlsTrust::Anchors`]. Compared, hashed and ordered by
/// their DER bytes, so two checks with the same CA share one check and one client config.
#[derive(Clone)]
pub struct TrustAnchors {
    inner: Arc<AnchorsInner>,
}

struct AnchorsInner {
    der: Vec<Vec<u8>>,
    config: OnceLock<Result<Arc<ClientConfig>, String>>,
}

/// Why trust anchors cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsSetupError {
    /// No certificate was given.
    #[error("no CA certificate found; give one or more PEM `CERTIFICATE` blocks")]
    NoCertificates,
    /// The PEM text is malformed.
    #[error("CA certificates are not readable PEM ({0}); give PEM `CERTIFICATE` blocks")]
    Pem(String),
    /// A certificate cannot be a trust anchor.
    #[error("CA certificate {index} cannot be a trust anchor ({reason}); give a valid X.509 CA certificate")]
    BadCertificate {
        /// Position among the given certificates, from 1.
        index: usize,
        /// What webpki said.
        reason: String,
    },
}

impl TrustAnchors {
    /// Anchors from PEM text (every `CERTIFICATE` block; other blocks are skipped).
    pub fn from_pem(pem: &[u8]) -> Result<Self, TlsSetupError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(|c| c.as_ref().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsSetupError::Pem(e.to_string()))?;
        Self::from_der(certs)
    }

    /// Anchors from DER certificates; each must parse as a trust anchor.
    pub fn from_der(certs: Vec<Vec<u8>>) -> Result<Self, TlsSetupError> {
        if certs.is_empty() {
            return Err(TlsSetupError::NoCertificates);
        }
        roots(&certs)?;
        Ok(TrustAnchors {
            inner: Arc::new(AnchorsInner {
                der: certs,
                config: OnceLock::new(),
            }),
        })
    }

    /// How many anchors.
    pub fn len(&self) -> usize {
        self.inner.der.len()
    }

    /// Never true: [`TrustAnchors::from_der`] refuses an empty list.
    pub fn is_empty(&self) -> bool {
        self.inner.der.is_empty()
    }
}

fn roots(certs: &[Vec<u8>]) -> Result<RootCertStore, TlsSetupError> {
    let mut store = RootCertStore::empty();
    for (index, der) in certs.iter().enumerate() {
        store
            .add(CertificateDer::from(der.as_slice()).into_owned())
            .map_err(|e| TlsSetupError::BadCertificate {
                index: index + 1,
                reason: e.to_string(),
            })?;
    }
    Ok(store)
}

impl fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustAnchors({} certificates)", self.inner.der.len())
    }
}

impl PartialEq for TrustAnchors {
    fn eq(&self, other: &Self) -> bool {
        self.inner.der == other.inner.der
    }
}

impl Eq for TrustAnchors {}

impl std::hash::Hash for TrustAnchors {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.der.hash(state);
    }
}

impl PartialOrd for TrustAnchors {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TrustAnchors {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.inner.der.cmp(&other.inner.der)
    }
}

/// Accepts any certificate chain for any name, and verifies the handshake signatures with the
/// provider's algorithms (so the peer proves it holds the certificate's key).
#[derive(Debug)]
struct AcceptAnyChain {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyChain {
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
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn build_config(trust: &TlsTrust) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let mut config = match trust {
        TlsTrust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyChain { algorithms }))
            .with_no_client_auth(),
        TlsTrust::Anchors(anchors) => builder
            .with_root_certificates(roots(&anchors.inner.der).map_err(|e| e.to_string())?)
            .with_no_client_auth(),
        TlsTrust::Unusable(why) => return Err(why.clone()),
    };
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// The shared client config of `trust`.
fn client_config(trust: &TlsTrust) -> Result<Arc<ClientConfig>, FailReason> {
    static ANY: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    let cell = match trust {
        TlsTrust::AnyCertificate => &ANY,
        TlsTrust::Anchors(anchors) => &anchors.inner.config,
        TlsTrust::Unusable(why) => return Err(FailReason::Certificate(why.clone())),
    };
    cell.get_or_init(|| build_config(trust))
        .clone()
        .map_err(|e| FailReason::TlsHandshake(format!("TLS client setup: {e}")))
}

/// The name the handshake is for: `host` when it is a DNS name (sent as SNI) or an address
/// (no SNI), else the target's address (no SNI).
pub fn server_name(host: Option<&str>, target: SocketAddr) -> ServerName<'static> {
    host.and_then(|h| ServerName::try_from(h.to_owned()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()))
}

/// Runs the TLS handshake on a connected socket.
pub async fn connect(
    trust: &TlsTrust,
    host: Option<&str>,
    target: SocketAddr,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, FailReason> {
    let config = client_config(trust)?;
    TlsConnector::from(config)
        .connect(server_name(host, target), tcp)
        .await
        .map_err(|e| handshake_failure(&e))
}

/// What a failed handshake says to the operator: a certificate the trust refused, or the
/// handshake error (alert, protocol, a peer that does not speak TLS).
fn handshake_failure(error: &std::io::Error) -> FailReason {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(why)) => FailReason::Certificate(why.to_string()),
        Some(other) => FailReason::TlsHandshake(other.to_string()),
        None => FailReason::TlsHandshake(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_and_sni() {
        let target: SocketAddr = "192.0.2.7:443".parse().unwrap();
        assert_eq!(
            server_name(Some("api.example"), target),
            ServerName::try_from("api.example").unwrap()
        );
        assert_eq!(
            server_name(None, target),
            ServerName::IpAddress("192.0.2.7".parse::<std::net::IpAddr>().unwrap().into())
        );
        // Not a name rustls can send: the address, without SNI.
        assert_eq!(
            server_name(Some("bad name!"), target),
            ServerName::IpAddress("192.0.2.7".parse::<std::net::IpAddr>().unwrap().into())
        );
    }

    #[test]
    fn anchors_refuse_what_cannot_be_trusted() {
        assert_eq!(
            TrustAnchors::from_pem(b"no certificates here"),
            Err(TlsSetupError::NoCertificates)
        );
        assert!(matches!(
            TrustAnchors::from_der(vec![b"not DER".to_vec()]),
            Err(TlsSetupError::BadCertificate { index: 1, .. })
        ));
        let broken = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            TrustAnchors::from_pem(broken),
            Err(TlsSetupError::Pem(_))
        ));
    }

    #[test]
    fn configs_build_for_each_trust() {
        let any = client_config(&TlsTrust::AnyCertificate).unwrap();
        assert!(any.alpn_protocols.is_empty());
        assert!(Arc::ptr_eq(
            &any,
            &client_config(&TlsTrust::AnyCertificate).unwrap()
        ));
    }
}
