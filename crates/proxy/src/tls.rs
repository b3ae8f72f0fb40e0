//! TLS at the edge (issue 19): the certificates the proxy serves, chosen by the client's SNI —
//! one per app host (from ACME, set by the control plane) and a default one from files (the
//! operator's `--tls-cert/--tls-key`, reloaded when they change) — and the ACME HTTP-01 answers
//! the plain-HTTP listener gives while a certificate is ordered.
//!
//! A new certificate is swapped in atomically: connections already open keep theirs; the next
//! handshake gets the new one. Nothing is ever dropped to change certificates.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_util::sync::CancellationToken;

/// Why a certificate and key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No certificate in the PEM text.
    #[error("no certificate in {what} (expected PEM: -----BEGIN CERTIFICATE-----)")]
    NoCertificate {
        /// Where it was looked for.
        what: String,
    },
    /// No usable private key in the PEM text.
    #[error(
        "no usable private key in {what} (expected PEM: PKCS#8, PKCS#1 RSA or SEC1 EC): {reason}"
    )]
    NoKey {
        /// Where it was looked for.
        what: String,
        /// What rustls said.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error("the private key does not belong to the certificate: {reason}")]
    Mismatch {
        /// What rustls said.
        reason: String,
    },
}

/// The crypto the proxy's TLS uses: rustls with ring (one provider for the whole program, named
/// here rather than picked by which features the dependency graph happens to enable). rustls
/// marks ring's provider deprecated for lacking post-quantum key exchange (X25519MLKEM768, which
/// only its aws-lc-rs provider has); ring is what the rest of racer (bollard's TLS) builds on, and
/// a second crypto library would cost a C/assembly build of aws-lc. Clients get X25519.
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate chain and its key, from PEM text (`what` names them in errors).
pub fn certified_key(
    cert_pem: &[u8],
    key_pem: &[u8],
    what: &str,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .filter_map(Result::ok)
        .collect();
    if chain.is_empty() {
        return Err(TlsError::NoCertificate { what: what.into() });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::NoKey {
        what: what.into(),
        reason: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                reason: e.to_string(),
            },
            other => TlsError::NoKey {
                what: what.into(),
                reason: other.to_string(),
            },
        })
}

/// A certificate and key from two PEM files.
pub fn load_files(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let (c, k) = (read(cert)?, read(key)?);
    certified_key(&c, &k, &format!("{} and {}", cert.display(), key.display()))
}

/// What the TLS listener serves and what the plain one answers to ACME.
#[derive(Debug, Default)]
struct Certs {
    /// From `--tls-cert/--tls-key`: served to any name no host certificate covers.
    files: ArcSwapOption<CertifiedKey>,
    /// By host name (lower case): ACME certificates of app hosts.
    hosts: ArcSwap<HashMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            let hosts = self.hosts.load();
            if let Some(ck) = hosts.get(&name.to_ascii_lowercase()) {
                return Some(ck.clone());
            }
        }
        self.files.load_full()
    }
}

/// The proxy's TLS state: certificates by host, the default certificate, ACME's HTTP-01 answers.
/// Shared between the proxy (which serves them) and the control plane (which orders them).
pub struct Tls {
    certs: Arc<Certs>,
    /// ACME HTTP-01: token → key authorization.
    challenges: ArcSwap<HashMap<String, String>>,
    /// `None` only if ring refused every protocol version (logged): handshakes then fail.
    config: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("hosts", &self.certs.hosts.load().len())
            .field("files", &self.certs.files.load().is_some())
            .finish()
    }
}

impl Default for Tls {
    fn default() -> Tls {
        Tls::new()
    }
}

impl Tls {
    /// No certificate yet: a handshake fails until one is set.
    pub fn new() -> Tls {
        let certs = Arc::new(Certs::default());
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map(|b| {
                let mut c = b.with_no_client_auth().with_cert_resolver(certs.clone());
                // The proxy speaks HTTP/1.1 (WebSockets included).
                c.alpn_protocols = vec![b"http/1.1".to_vec()];
                Arc::new(c)
            })
            .inspect_err(|e| tracing::error!(error = %e, "TLS is unavailable"))
            .ok();
        Tls {
            certs,
            challenges: ArcSwap::default(),
            config,
        }
    }

    /// The default certificate (files); `None` removes it.
    pub fn set_default(&self, ck: Option<Arc<CertifiedKey>>) {
        self.certs.files.store(ck);
    }

    /// `host`'s certificate (ACME).
    pub fn set_host(&self, host: &str, ck: Arc<CertifiedKey>) {
        let host = host.to_ascii_lowercase();
        self.certs.hosts.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(host.clone(), ck.clone());
            m
        });
    }

    /// Stops serving `host`'s certificate.
    pub fn remove_host(&self, host: &str) {
        let host = host.to_ascii_lowercase();
        self.certs.hosts.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.remove(&host);
            m
        });
    }

    /// The hosts with a certificate of their own.
    pub fn hosts(&self) -> Vec<String> {
        let mut v: Vec<String> = self.certs.hosts.load().keys().cloned().collect();
        v.sort();
        v
    }

    /// Whether any certificate is set.
    pub fn has_certificate(&self) -> bool {
        self.certs.files.load().is_some() || !self.certs.hosts.load().is_empty()
    }

    /// Answers `token` with `key_authorization` on plain HTTP (ACME HTTP-01).
    pub fn set_challenge(&self, token: &str, key_authorization: &str) {
        self.challenges.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.insert(token.to_string(), key_authorization.to_string());
            m
        });
    }

    /// Stops answering `token`.
    pub fn clear_challenge(&self, token: &str) {
        self.challenges.rcu(|m| {
            let mut m = HashMap::clone(m);
            m.remove(token);
            m
        });
    }

    /// The key authorization for `token`, if one is being answered.
    pub(crate) fn challenge(&self, token: &str) -> Option<String> {
        self.challenges.load().get(token).cloned()
    }

    pub(crate) fn acceptor(&self) -> Option<tokio_rustls::TlsAcceptor> {
        self.config.clone().map(tokio_rustls::TlsAcceptor::from)
    }

    /// Serves `cert` and `key` as the default certificate and reloads them whenever either
    /// file changes (checked every `every`), until `shutdown`. A pair that does not load (a
    /// file half written, a key of another certificate) is logged and the previous pair kept;
    /// it is tried again at the next change. The first load's error is returned.
    pub fn watch_files(
        self: &Arc<Self>,
        cert: PathBuf,
        key: PathBuf,
        every: Duration,
        shutdown: CancellationToken,
    ) -> Result<impl std::future::Future<Output = ()> + Send + 'static, TlsError> {
        self.set_default(Some(load_files(&cert, &key)?));
        let me = self.clone();
        let mut seen = stamp(&cert, &key);
        Ok(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let now = stamp(&cert, &key);
                if now == seen {
                    continue;
                }
                match load_files(&cert, &key) {
                    Ok(ck) => {
                        me.set_default(Some(ck));
                        seen = now;
                        tracing::info!(cert = %cert.display(), "reloaded the TLS certificate");
                    }
                    Err(e) => {
                        // Not marked as seen: a pair written in two steps loads once both are.
                        tracing::warn!(error = %e, "the changed TLS files do not load; still serving the previous certificate");
                    }
                }
            }
        })
    }
}

/// When the files last changed (modification time and length of both).
fn stamp(cert: &Path, key: &Path) -> Option<[(SystemTime, u64); 2]> {
    let one = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())))
    };
    Some([one(cert)?, one(key)?])
}
