//! [`Tls`]: the hub's own TLS, so browsers reach it over HTTP/2.
//!
//! Browsers speak HTTP/2 only over TLS, and over HTTP/1.1 they open at most
//! six connections per origin: the seventh tab's stream hangs. With TLS the
//! listener offers ALPN `h2` and `http/1.1`; `h2` goes to hyper's HTTP/2
//! server (every stream of every tab on one connection), `http/1.1` to the
//! same paths as a plain connection.
//!
//! The certificate and key are PEM files, read at start (a missing file, a
//! file without a certificate or key, or a key that does not belong to the
//! certificate is a [`TlsError`] naming the file) and again on
//! [`Tls::reload`] (`herald serve` calls it on `SIGHUP`): new handshakes use
//! the new pair, open connections keep theirs, so renewing a certificate
//! drops no stream. A reload that fails keeps the old pair.
//!
//! rustls with the *ring* provider, named explicitly: the process may link
//! another provider through some dependency, and then rustls would refuse
//! to guess.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The ALPN protocols offered, most preferred first.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// TLS settings for [`serve`](crate::serve): a certificate chain and its
/// key, reloadable. Cheap to clone; clones share the loaded pair, so the
/// clone a signal handler keeps reloads what the listener serves.
#[derive(Clone)]
pub struct Tls {
    files: Arc<(PathBuf, PathBuf)>,
    current: Arc<Current>,
    config: Arc<rustls::ServerConfig>,
}

/// The pair new handshakes get.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

impl Tls {
    /// Reads the certificate chain (`cert`: PEM, the server's certificate
    /// first, then intermediates) and its private key (`key`: PEM, PKCS#8,
    /// PKCS#1 or SEC1).
    ///
    /// # Errors
    ///
    /// [`TlsError`] saying which file is unreadable or holds no usable
    /// certificate or key, or that the key does not belong to the
    /// certificate.
    pub fn load(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Result<Tls, TlsError> {
        let files = Arc::new((cert.into(), key.into()));
        let pair = load_pair(&files.0, &files.1)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(pair))));
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&current) as Arc<dyn ResolvesServerCert>);
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Tls {
            files,
            current,
            config: Arc::new(config),
        })
    }

    /// Reads the certificate and key files again; new handshakes use them,
    /// open connections are untouched.
    ///
    /// # Errors
    ///
    /// As [`Tls::load`]; the pair in use then stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = load_pair(&self.files.0, &self.files.1)?;
        *self.current.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(pair);
        Ok(())
    }

    /// The certificate file.
    pub fn cert_path(&self) -> &Path {
        &self.files.0
    }

    /// The acceptor the listener runs handshakes with.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(Arc::clone(&self.config))
    }
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("cert", &self.files.0)
            .field("key", &self.files.1)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_pair(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = read(cert)?;
    let chain = CertificateDer::pem_slice_iter(&chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert.to_owned(),
            source,
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key_pem = read(key)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey(key.to_owned()),
        source => TlsError::Pem {
            path: key.to_owned(),
            source,
        },
    })?;
    CertifiedKey::from_der(chain, private, &provider()).map_err(|error| match error {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: cert.to_owned(),
            key: key.to_owned(),
        },
        error => TlsError::Key {
            path: key.to_owned(),
            source: error,
        },
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A certificate or key that cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// The file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not valid PEM.
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate file holds no certificate.
    NoCertificate(PathBuf),
    /// The key file holds no private key.
    NoKey(PathBuf),
    /// The private key is of a kind the TLS library cannot sign with.
    Key {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rustls::Error,
    },
    /// The private key does not belong to the certificate.
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// The TLS library refused the settings.
    Rustls(rustls::Error),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Read { path, .. } => write!(f, "cannot read {}", path.display()),
            TlsError::Pem { path, .. } => write!(f, "{} is not valid PEM", path.display()),
            TlsError::NoCertificate(path) => {
                write!(f, "{} holds no PEM certificate", path.display())
            }
            TlsError::NoKey(path) => write!(f, "{} holds no PEM private key", path.display()),
            TlsError::Key { path, .. } => {
                write!(f, "the private key in {} cannot be used", path.display())
            }
            TlsError::Mismatch { cert, key } => write!(
                f,
                "the private key in {} does not belong to the certificate in {}",
                key.display(),
                cert.display()
            ),
            TlsError::Rustls(_) => f.write_str("the TLS settings were refused"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Read { source, .. } => Some(source),
            TlsError::Pem { source, .. } => Some(source),
            TlsError::Key { source, .. } | TlsError::Rustls(source) => Some(source),
            TlsError::NoCertificate(_) | TlsError::NoKey(_) | TlsError::Mismatch { .. } => None,
        }
    }
}
