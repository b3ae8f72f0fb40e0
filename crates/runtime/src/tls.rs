//! The files of an engine reached over mutual TLS, read and checked before bollard is handed
//! their paths: bollard reads the client key only during a handshake and, when it cannot, sends
//! no certificate at all, so a bad key would otherwise show as the engine's "bad certificate".
//! Nothing here puts a file's contents in an error: only its role, path and what is wrong.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

use crate::{Error, TlsFile};

/// The crypto provider bollard's TLS uses: ring, installed as the process default once (so no
/// other crate's choice of features can leave rustls without one, or with two to pick from).
/// rustls marks ring's provider deprecated for lacking post-quantum key exchange; it is the one
/// bollard's `ssl` feature builds on, and a Docker engine does not need more.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    if let Some(p) = CryptoProvider::get_default() {
        return p.clone();
    }
    // Another thread may have installed one meanwhile; then that one is the default.
    let _ = rustls::crypto::ring::default_provider().install_default();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn read(file: TlsFile, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| {
        let problem = match e.kind() {
            std::io::ErrorKind::NotFound => {
                "no such file (the server and every worker read it from their own disk)".to_owned()
            }
            std::io::ErrorKind::PermissionDenied => {
                "permission denied: the server's user cannot read it".to_owned()
            }
            _ => format!("cannot read it: {e}"),
        };
        Error::tls(file, path, problem)
    })
}

/// Every certificate of a PEM file; at least one.
fn certs(file: TlsFile, path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bytes = read(file, path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|_| Error::tls(file, path, "not a valid PEM file"))?;
    if certs.is_empty() {
        return Err(Error::tls(
            file,
            path,
            "no certificate in it (a PEM file with -----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// Checks the three files of an engine reached over mutual TLS: the CA holds a usable
/// certificate, the client certificate file holds certificates, and the key file holds exactly
/// one private key that the crypto provider can use and that belongs to the client certificate.
pub(crate) fn check(ca: &Path, cert: &Path, key: &Path) -> Result<(), Error> {
    let provider = provider();
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(TlsFile::Ca, ca)? {
        roots.add(c).map_err(|e| {
            Error::tls(TlsFile::Ca, ca, format!("not a usable CA certificate: {e}"))
        })?;
    }
    let chain = certs(TlsFile::Cert, cert)?;
    let bytes = read(TlsFile::Key, key)?;
    // The errors of the PEM parser may quote a line of the file: never shown for a key.
    let mut keys = Vec::new();
    for item in pem::PemObject::pem_slice_iter(&bytes) {
        let item: PrivateKeyDer<'static> =
            item.map_err(|_| Error::tls(TlsFile::Key, key, "not a valid PEM file"))?;
        keys.push(item);
    }
    let Some(one) = keys.pop() else {
        return Err(Error::tls(
            TlsFile::Key,
            key,
            "no private key in it (a PEM file with -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)",
        ));
    };
    if !keys.is_empty() {
        return Err(Error::tls(
            TlsFile::Key,
            key,
            format!(
                "{} private keys in it; give a file with one",
                keys.len() + 1
            ),
        ));
    }
    CertifiedKey::from_der(chain, one, &provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => Error::tls(
            TlsFile::Key,
            key,
            format!(
                "this key does not belong to the client certificate {}",
                cert.display()
            ),
        ),
        rustls::Error::InvalidCertificate(why) => {
            let problem = if format!("{why:?}").contains("UnsupportedCertVersion") {
                "an X.509 v1 certificate; TLS needs v3 (openssl x509 -req makes v3 when given \
                 extensions, e.g. -extfile with extendedKeyUsage = clientAuth)"
                    .to_owned()
            } else {
                format!("not a usable certificate: {why:?}")
            };
            Error::tls(TlsFile::Cert, cert, problem)
        }
        _ => Error::tls(
            TlsFile::Key,
            key,
            "the key cannot be used (RSA, ECDSA P-256/P-384 and Ed25519 keys can)",
        ),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (scripts/ensure-tools.sh installs it)");
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A CA and a client certificate signed by it, and a second key of no certificate.
    fn pki() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        std::fs::write(d.join("ext.cnf"), "extendedKeyUsage = clientAuth\n").unwrap();
        for args in [
            &["genrsa", "-out", "ca-key.pem", "2048"][..],
            &[
                "req",
                "-x509",
                "-new",
                "-key",
                "ca-key.pem",
                "-days",
                "2",
                "-subj",
                "/CN=t-ca",
                "-out",
                "ca.pem",
            ],
            &["genrsa", "-out", "key.pem", "2048"],
            &["genrsa", "-out", "other-key.pem", "2048"],
            &[
                "req",
                "-new",
                "-key",
                "key.pem",
                "-subj",
                "/CN=client",
                "-out",
                "c.csr",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "c.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
                "-out",
                "cert.pem",
            ],
            &[
                "x509",
                "-req",
                "-in",
                "c.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                "v1.pem",
            ],
        ] {
            openssl(&d, args);
        }
        (dir, d)
    }

    #[test]
    fn good_files_pass_and_each_bad_one_is_named_by_its_role_and_path() {
        let (_keep, d) = pki();
        let (ca, cert, key) = (d.join("ca.pem"), d.join("cert.pem"), d.join("key.pem"));
        check(&ca, &cert, &key).unwrap();

        let missing = d.join("nope.pem");
        let e = check(&missing, &cert, &key).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Tls {
                    file: TlsFile::Ca,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("tls_ca") && msg.contains("nope.pem") && msg.contains("no such file"),
            "{msg}"
        );
        assert_eq!(e.kind(), racer_core::ErrorKind::Invalid);

        let empty = d.join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = check(&ca, &empty, &key).unwrap_err();
        assert!(
            e.to_string().contains("tls_cert") && e.to_string().contains("no certificate"),
            "{e}"
        );
        // A certificate file given as the key: no key in it.
        let e = check(&ca, &cert, &cert).unwrap_err();
        assert!(
            e.to_string().contains("tls_key") && e.to_string().contains("no private key"),
            "{e}"
        );
        let e = check(&ca, &d.join("v1.pem"), &key).unwrap_err();
        assert!(
            e.to_string().contains("tls_cert") && e.to_string().contains("v1"),
            "{e}"
        );
        let e = check(&ca, &cert, &d.join("other-key.pem")).unwrap_err();
        assert!(e.to_string().contains("does not belong"), "{e}");
        let two = d.join("two.pem");
        let both = [
            std::fs::read(&key).unwrap(),
            std::fs::read(d.join("other-key.pem")).unwrap(),
        ]
        .concat();
        std::fs::write(&two, both).unwrap();
        let e = check(&ca, &cert, &two).unwrap_err();
        assert!(e.to_string().contains("2 private keys"), "{e}");
    }

    #[test]
    fn key_contents_never_reach_the_message() {
        let (_keep, d) = pki();
        let junk = d.join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN PRIVATE KEY-----\nSECRET!SECRET\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let e = check(&d.join("ca.pem"), &d.join("cert.pem"), &junk).unwrap_err();
        let msg = racer_core::error_chain(&e);
        assert!(msg.contains("tls_key") && !msg.contains("SECRET"), "{msg}");
    }
}
