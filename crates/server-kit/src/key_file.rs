//! A server's long-term signing key on disk: PKCS#8 PEM, created on first start with mode 0600
//! and read on every later one. The key never appears in logs or errors.

use std::io::Write as _;
use std::path::Path;

use crypto::SigningKey;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivatePkcs8KeyDer;

use crate::KitError;

/// Whether [`load_or_generate_key`] found the key or made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    Loaded,
    Generated,
}

/// Reads the PKCS#8 PEM P-256 key at `path`, or, if there is no file, generates one with `rng`
/// and writes it there (mode 0600, never overwriting a file that appears meanwhile). Warns
/// when an existing key file is readable by group or others.
pub fn load_or_generate_key(
    path: &Path,
    rng: &mut dyn crypto::Rng,
) -> Result<(SigningKey, KeyOrigin), KitError> {
    match std::fs::read(path) {
        Ok(pem) => {
            warn_if_exposed(path);
            let der = PrivatePkcs8KeyDer::from_pem_slice(&pem).map_err(|e| KitError::KeyFile {
                path: path.to_path_buf(),
                reason: format!("not a PKCS#8 PEM private key ({e})"),
            })?;
            let key = SigningKey::from_pkcs8_der(der.secret_pkcs8_der()).map_err(|e| {
                KitError::KeyFile {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                }
            })?;
            Ok((key, KeyOrigin::Loaded))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SigningKey::generate(rng);
            write_new_key_file(path, key.to_pkcs8_pem().as_bytes())?;
            Ok((key, KeyOrigin::Generated))
        }
        Err(e) => Err(KitError::KeyFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

fn write_new_key_file(path: &Path, pem: &[u8]) -> Result<(), KitError> {
    let io_error = |e: std::io::Error| KitError::KeyFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io_error)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io_error)?;
    file.write_all(pem).map_err(io_error)?;
    file.sync_all().map_err(io_error)
}

fn warn_if_exposed(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let mode = meta.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "key file is readable by group or others");
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_once_then_loads_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/root-key.pem");
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(7);
        let (made, origin) = load_or_generate_key(&path, &mut rng).unwrap();
        assert_eq!(origin, KeyOrigin::Generated);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (loaded, origin) = load_or_generate_key(&path, &mut rng).unwrap();
        assert_eq!(origin, KeyOrigin::Loaded);
        assert_eq!(loaded.verifying_key(), made.verifying_key());
    }

    #[test]
    fn refuses_a_file_that_is_not_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "hello").unwrap();
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(7);
        let err = load_or_generate_key(&path, &mut rng).unwrap_err();
        assert!(matches!(err, KitError::KeyFile { .. }), "{err}");
    }
}
