//! The web UI's HTTPS certificate: the operator's own (`[webui] cert_file`/`key_file`), or
//! a self-signed one generated on first boot into the state directory and kept, so the
//! fingerprint an installer checked once stays the same. The fingerprint is printed on the
//! console with the setup code: a self-signed certificate is only as good as that check.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::settings_edit::write_atomic;
use crate::webui::WebUiConfig;

/// The generated certificate (PEM) in `state_dir`.
pub const CERT_FILE: &str = "webui-cert.pem";
/// Its private key (PEM, mode 600) in `state_dir`.
pub const KEY_FILE: &str = "webui-key.pem";

/// Why HTTPS could not be set up (the UI is then a `webui` fault; alarms run on).
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What happened.
        source: std::io::Error,
    },
    /// A file holds no usable certificate or key.
    #[error("{path}: {message}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The certificate could not be made.
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key.
    #[error("the certificate and key do not work together: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A ready TLS configuration and what to tell the installer about it.
#[derive(Debug)]
pub struct Loaded {
    /// For `WebUi::serve_tls`.
    pub config: Arc<rustls::ServerConfig>,
    /// SHA-256 of the certificate, `AB:CD:…`, as browsers show it.
    pub fingerprint: String,
    /// The certificate file in use.
    pub cert_file: PathBuf,
    /// It was generated just now.
    pub generated: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The names the generated certificate is valid for: loopback, the host name (and its
/// `.local` mDNS form) and the listening address when it is a specific one.
fn names(cfg: &WebUiConfig) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname")
        && let host = host.trim()
        && !host.is_empty()
    {
        names.push(host.to_owned());
        if !host.contains('.') {
            names.push(format!("{host}.local"));
        }
    }
    let ip = cfg.listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    names.dedup();
    names
}

fn generate(cfg: &WebUiConfig, cert: &Path, key: &Path) -> Result<(), TlsError> {
    let made = rcgen::generate_simple_self_signed(names(cfg))?;
    // The key first: a certificate without its key would be useless at the next start.
    write_atomic(key, made.signing_key.serialize_pem().as_bytes(), 0o600).map_err(io(key))?;
    write_atomic(cert, made.cert.pem().as_bytes(), 0o644).map_err(io(cert))?;
    Ok(())
}

/// Loads the operator's certificate, or the generated one, generating it first when
/// there is none yet.
pub fn load_or_generate(cfg: &WebUiConfig) -> Result<Loaded, TlsError> {
    let (cert_file, key_file, generated) = match (&cfg.cert_file, &cfg.key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), false),
        _ => {
            let cert = cfg.state_dir.join(CERT_FILE);
            let key = cfg.state_dir.join(KEY_FILE);
            let fresh = !(cert.is_file() && key.is_file());
            if fresh {
                generate(cfg, &cert, &key)?;
            }
            (cert, key, fresh)
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_file)
        .map_err(|e| TlsError::Pem {
            path: cert_file.clone(),
            message: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_file.clone(),
            message: e.to_string(),
        })?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::Pem {
            path: cert_file,
            message: "no certificate in the file".to_owned(),
        });
    };
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| TlsError::Pem {
        path: key_file.clone(),
        message: e.to_string(),
    })?;
    Ok(Loaded {
        config: server_config(chain, key)?,
        fingerprint,
        cert_file,
        generated,
    })
}

/// SHA-256 of a certificate, `AB:CD:…`, as browsers show it.
fn fingerprint(cert: &CertificateDer<'_>) -> String {
    Sha256::digest(cert.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // The key must be the certificate's own: rustls takes a mismatch at build time.
    let certified =
        rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)?;
    certified.keys_match()?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The uploaded certificate chain in `state_dir` (replaced by the next upload).
pub const UPLOADED_CERT_FILE: &str = "webui-uploaded-cert.pem";
/// Its private key (mode 600).
pub const UPLOADED_KEY_FILE: &str = "webui-uploaded-key.pem";

/// Checks an uploaded certificate chain and key (PEM) — parseable, the key the
/// certificate's own, usable by rustls — and stores them privately in `state_dir`.
/// Returns the two files and the certificate's fingerprint.
pub fn store_uploaded(
    state_dir: &Path,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(PathBuf, PathBuf, String), TlsError> {
    let pem_error = |what: &str, message: String| TlsError::Pem {
        path: PathBuf::from(what),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| pem_error("certificate", e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(pem_error("certificate", "no certificate in it".to_owned()));
    };
    let fp = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| pem_error("key", e.to_string()))?;
    server_config(chain, key)?;
    let cert_file = state_dir.join(UPLOADED_CERT_FILE);
    let key_file = state_dir.join(UPLOADED_KEY_FILE);
    write_atomic(&key_file, key_pem.as_bytes(), 0o600).map_err(io(&key_file))?;
    {
        // An older file's mode is kept by the atomic write; a key is always private.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
            .map_err(io(&key_file))?;
    }
    write_atomic(&cert_file, cert_pem.as_bytes(), 0o644).map_err(io(&cert_file))?;
    Ok((cert_file, key_file, fp))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

    #[test]
    fn an_uploaded_pair_is_checked_and_stored_privately() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("eewgate-webui-upload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["eewgate.example".to_owned()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["other.example".to_owned()]).unwrap();
        let (cert, key) = (a.cert.pem(), a.signing_key.serialize_pem());
        // A key that is not the certificate's own, garbage, an empty chain: refused, and
        // nothing written.
        assert!(store_uploaded(&dir, &cert, &b.signing_key.serialize_pem()).is_err());
        assert!(store_uploaded(&dir, "garbage", &key).is_err());
        assert!(store_uploaded(&dir, &cert, "garbage").is_err());
        assert!(store_uploaded(&dir, "", &key).is_err());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        let (c, k, fp) = store_uploaded(&dir, &cert, &key).unwrap();
        assert_eq!(std::fs::read_to_string(&c).unwrap(), cert);
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fp.len(), 95);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_certificate_is_generated_once_and_kept() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("eewgate-webui-tls-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = WebUiConfig {
            state_dir: dir.clone(),
            https: true,
            ..WebUiConfig::default()
        };
        let first = load_or_generate(&cfg).unwrap();
        assert!(first.generated);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        let mode = std::fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_generate(&cfg).unwrap();
        assert!(!again.generated);
        assert_eq!(again.fingerprint, first.fingerprint);
        // A broken key file is an error, not a panic, and not silently replaced.
        std::fs::write(dir.join(KEY_FILE), "not a key").unwrap();
        let err = load_or_generate(&cfg).unwrap_err();
        assert!(err.to_string().contains(KEY_FILE), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
