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
    let fingerprint = Sha256::digest(leaf.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    let key = PrivateKeyDer::from_pem_file(&key_file).map_err(|e| TlsError::Pem {
        path: key_file.clone(),
        message: e.to_string(),
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Loaded {
        config: Arc::new(config),
        fingerprint,
        cert_file,
        generated,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
mod tests {
    use super::*;

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
