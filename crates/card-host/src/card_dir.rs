//! Where a card lives on disk: a directory holding its sealed image, `card.nvm`. No other
//! configuration: everything about the card is in its image, and the sealing key is
//! deliberately kept elsewhere (see [`crate::SealingKey`]).

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::{HostError, SealedFileNvm, SealingKey};

/// The layout of a card directory.
pub struct CardDir;

impl CardDir {
    /// The sealed image inside a card directory.
    pub const NVM_FILE: &'static str = "card.nvm";

    /// `<dir>/card.nvm`.
    pub fn nvm_path(dir: &Path) -> PathBuf {
        dir.join(Self::NVM_FILE)
    }

    /// Where `cardwright card new <dir>` suggests creating the key file when none is given:
    /// `<dir>.key`, beside the directory rather than in it, so that copying the card directory
    /// does not copy its key along.
    pub fn suggested_key_file(dir: &Path) -> PathBuf {
        let mut name = dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "card".into());
        name.push(".key");
        dir.with_file_name(name)
    }

    /// Creates `dir` (mode 0700, if missing) and a blank sealed image of `nvm_size` bytes in it.
    /// Refuses ([`HostError::CardExists`]) if the directory already holds a card.
    pub fn create(
        dir: &Path,
        key: &SealingKey,
        nvm_size: usize,
    ) -> Result<SealedFileNvm, HostError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(HostError::io("create card directory", dir))?;
        SealedFileNvm::create(&Self::nvm_path(dir), key, nvm_size)
    }

    /// Opens the card in `dir`: [`HostError::NoCard`] if there is none,
    /// [`HostError::WrongSealingKey`] if `key` is not its key.
    pub fn open(dir: &Path, key: &SealingKey) -> Result<SealedFileNvm, HostError> {
        SealedFileNvm::open(&Self::nvm_path(dir), key)
    }
}
