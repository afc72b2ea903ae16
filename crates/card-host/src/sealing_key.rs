//! The key that seals a card image at rest (CARD-7), and where it comes from.
//!
//! A sealing key is 32 random bytes written as 64 hex characters. It is found, in this order:
//! 1. an explicit key file (`--key-file <file>`), which must not be readable by group or
//!    others — like ssh with a private key, we refuse rather than warn, because a warning
//!    scrolls by while the key stays exposed;
//! 2. the environment variable [`SEALING_KEY_ENV`] (`CARDWRIGHT_CARD_KEY`);
//! 3. otherwise [`HostError::SealingKeyMissing`], whose message says how to give one.
//!
//! There is deliberately no third place such as a key file inside the card directory: a key
//! stored with the image it seals would make the sealing decorative, and a key found by magic
//! would hide which key is in use. `cardwright card new <dir>` without a key creates one with
//! [`SealingKey::generate_file`] (mode 0600, never overwriting) at
//! [`crate::CardDir::suggested_key_file`] — `<dir>.key`, beside the directory — and says so;
//! every later command names it with `--key-file` or the environment variable.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crypto::{Rng, SymmetricKey};
use zeroize::Zeroizing;

use crate::HostError;

/// The environment variable holding a sealing key as 64 hex characters.
pub const SEALING_KEY_ENV: &str = "CARDWRIGHT_CARD_KEY";

/// A 256-bit key that seals one card image. Never printed.
#[derive(Clone)]
pub struct SealingKey(SymmetricKey);

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealingKey(<secret>)")
    }
}

impl SealingKey {
    /// A fresh key from `rng` (the host passes `crypto::OsRng`; tests a seeded one).
    pub fn generate(rng: &mut dyn Rng) -> Self {
        Self(SymmetricKey::generate(rng))
    }

    /// Reads 64 hex characters (surrounding whitespace ignored). `origin` names where they came
    /// from, for the error message.
    pub fn from_hex(text: &str, origin: &str) -> Result<Self, HostError> {
        let text = text.trim();
        let malformed = |reason: String| HostError::SealingKeyMalformed {
            origin: origin.to_owned(),
            reason,
        };
        if text.len() != 64 {
            return Err(malformed(format!("{} characters", text.len())));
        }
        if let Some(pos) = text.bytes().position(|b| !b.is_ascii_hexdigit()) {
            return Err(malformed(format!("non-hex character at position {pos}")));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        for (byte, pair) in bytes.iter_mut().zip(text.as_bytes().chunks_exact(2)) {
            *byte = (hex_value(pair[0]) << 4) | hex_value(pair[1]);
        }
        // Invariant: exactly 32 bytes were filled above, which from_bytes accepts.
        let key = SymmetricKey::from_bytes(&bytes[..]).expect("32-byte key");
        Ok(Self(key))
    }

    /// Reads a key file: 64 hex characters, not readable by group or others.
    pub fn from_key_file(path: &Path) -> Result<Self, HostError> {
        let meta = std::fs::metadata(path).map_err(HostError::io("read key file", path))?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(HostError::SealingKeyFileMode {
                path: path.to_owned(),
                mode,
            });
        }
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(HostError::io("read key file", path))?,
        );
        Self::from_hex(&text, &format!("key file {}", path.display()))
    }

    /// Reads the key from the environment variable `var`; `Ok(None)` if it is unset or empty.
    pub fn from_env(var: &str) -> Result<Option<Self>, HostError> {
        Self::from_env_value(var, std::env::var(var))
    }

    fn from_env_value(
        var: &str,
        value: Result<String, std::env::VarError>,
    ) -> Result<Option<Self>, HostError> {
        match value {
            Ok(text) if text.trim().is_empty() => Ok(None),
            Ok(text) => {
                let text = Zeroizing::new(text);
                Self::from_hex(&text, &format!("environment variable {var}")).map(Some)
            }
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(HostError::SealingKeyMalformed {
                origin: format!("environment variable {var}"),
                reason: "not valid UTF-8".to_owned(),
            }),
        }
    }

    /// The key to use: `key_file` if given, else [`SEALING_KEY_ENV`], else
    /// [`HostError::SealingKeyMissing`].
    pub fn resolve(key_file: Option<&Path>) -> Result<Self, HostError> {
        Self::resolve_with(key_file, SEALING_KEY_ENV, || std::env::var(SEALING_KEY_ENV))
    }

    /// [`SealingKey::resolve`] with the environment passed in (tests must not change the
    /// process environment while other threads read it).
    fn resolve_with(
        key_file: Option<&Path>,
        env_var: &'static str,
        env_value: impl FnOnce() -> Result<String, std::env::VarError>,
    ) -> Result<Self, HostError> {
        if let Some(path) = key_file {
            return Self::from_key_file(path);
        }
        Self::from_env_value(env_var, env_value())?.ok_or(HostError::SealingKeyMissing { env_var })
    }

    /// Creates a new key file at `path` with a fresh key from the operating system, mode 0600.
    /// Never overwrites: an existing file is [`HostError::KeyFileExists`].
    pub fn generate_file(path: &Path) -> Result<Self, HostError> {
        let key = Self::generate(&mut crypto::OsRng);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => HostError::KeyFileExists {
                    path: path.to_owned(),
                },
                _ => HostError::Io {
                    op: "create key file",
                    path: path.to_owned(),
                    source: e,
                },
            })?;
        let mut text = Zeroizing::new(String::with_capacity(65));
        for b in key.0.expose_bytes() {
            text.push_str(&format!("{b:02x}"));
        }
        text.push('\n');
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(HostError::io("write key file", path))?;
        sync_parent_dir(path)?;
        Ok(key)
    }

    /// A 3-byte key check value, safe to show, to tell keys apart.
    pub fn check_value(&self) -> [u8; 3] {
        self.0.check_value()
    }

    pub(crate) fn symmetric(&self) -> &SymmetricKey {
        &self.0
    }
}

/// The value of one ASCII hex digit (already checked to be one).
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        // Invariant: callers check is_ascii_hexdigit first; nothing else reaches here.
        _ => 0,
    }
}

/// Makes a newly created directory entry durable (POSIX: fsync of the directory).
pub(crate) fn sync_parent_dir(path: &Path) -> Result<(), HostError> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(HostError::io("sync directory", parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn write_mode(path: &Path, text: &str, mode: u32) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_key_file_is_read_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_mode(&path, &format!("  {HEX}\n"), 0o600);
        let k = SealingKey::from_key_file(&path).unwrap();
        assert_eq!(
            k.check_value(),
            SealingKey::from_hex(HEX, "test").unwrap().check_value()
        );
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused_with_the_chmod_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_mode(&path, HEX, 0o644);
        let err = SealingKey::from_key_file(&path).unwrap_err();
        assert!(matches!(
            err,
            HostError::SealingKeyFileMode { mode: 0o644, .. }
        ));
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn malformed_keys_say_where_they_came_from_and_what_is_wrong() {
        let err = SealingKey::from_hex(&HEX[..62], "environment variable X").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the sealing key from environment variable X is not 64 hex characters (62 characters)"
        );
        let bad = format!("{}zz", &HEX[..62]);
        let err = SealingKey::from_hex(&bad, "key file k").unwrap_err();
        assert!(err.to_string().contains("position 62"), "{err}");
        assert!(SealingKey::from_hex(&format!("+f{}", &HEX[..62]), "x").is_err());
        // Multi-byte characters must not panic the slicing.
        let odd = format!("é{}", &HEX[..62]);
        assert!(SealingKey::from_hex(&odd, "x").is_err());
    }

    #[test]
    fn resolve_prefers_the_file_then_the_environment_then_explains() {
        use std::env::VarError;
        const VAR: &str = "CARDWRIGHT_TEST_KEY";
        let err = SealingKey::resolve_with(None, VAR, || Err(VarError::NotPresent)).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("--key-file") && msg.contains(VAR), "{msg}");
        let err = SealingKey::resolve_with(None, VAR, || Ok(" \n".into())).unwrap_err();
        assert!(matches!(err, HostError::SealingKeyMissing { .. }), "{err}");

        let other = "ff".repeat(32);
        let from_env = SealingKey::resolve_with(None, VAR, || Ok(other.clone())).unwrap();
        assert_eq!(
            from_env.check_value(),
            SealingKey::from_hex(&other, "t").unwrap().check_value()
        );
        let err = SealingKey::resolve_with(None, VAR, || Ok("abc".into())).unwrap_err();
        assert!(
            err.to_string()
                .contains("environment variable CARDWRIGHT_TEST_KEY"),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        write_mode(&path, HEX, 0o400);
        let from_file = SealingKey::resolve_with(Some(&path), VAR, || Ok(other.clone())).unwrap();
        assert_eq!(
            from_file.check_value(),
            SealingKey::from_hex(HEX, "t").unwrap().check_value()
        );
    }

    #[test]
    fn the_default_message_names_the_real_variable() {
        let msg = HostError::SealingKeyMissing {
            env_var: SEALING_KEY_ENV,
        }
        .to_string();
        assert!(
            msg.contains("CARDWRIGHT_CARD_KEY=<64 hex characters>"),
            "{msg}"
        );
    }

    #[test]
    fn generate_file_writes_a_private_key_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.key");
        let k = SealingKey::generate_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            SealingKey::from_key_file(&path).unwrap().check_value(),
            k.check_value()
        );
        assert!(matches!(
            SealingKey::generate_file(&path),
            Err(HostError::KeyFileExists { .. })
        ));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = SealingKey::from_hex(HEX, "t").unwrap();
        assert_eq!(format!("{k:?}"), "SealingKey(<secret>)");
    }
}
