//! The one error type of the card host. Messages are written for the person at the terminal:
//! each says what is wrong with which file and, where there is one, what to do about it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "no sealing key for the card image: pass --key-file <file> (a file holding 64 hex \
         characters, mode 0600) or set {env_var}=<64 hex characters>"
    )]
    SealingKeyMissing { env_var: &'static str },

    #[error("the sealing key from {origin} is not 64 hex characters ({reason})")]
    SealingKeyMalformed { origin: String, reason: String },

    #[error(
        "the sealing key file {path} is readable by others (mode {mode:04o}); \
         run `chmod 600 {path}`"
    )]
    SealingKeyFileMode { path: PathBuf, mode: u32 },

    #[error("refusing to overwrite the existing key file {path}")]
    KeyFileExists { path: PathBuf },

    #[error(
        "the sealing key does not open the card image {path} (wrong key, or the image header \
         was altered)"
    )]
    WrongSealingKey { path: PathBuf },

    #[error("a card already exists at {path}; refusing to overwrite it")]
    CardExists { path: PathBuf },

    #[error(
        "the card image {path} is in use by another process (is `cardwright card serve` running?)"
    )]
    CardInUse { path: PathBuf },

    #[error("no card image at {path} (create one with `cardwright card new`)")]
    NoCard { path: PathBuf },

    #[error("{path} is not a cardwright card image")]
    NotACardImage { path: PathBuf },

    #[error(
        "{path} is a card image of format version {version}; this build reads version {supported}"
    )]
    UnsupportedImageVersion {
        path: PathBuf,
        version: u16,
        supported: u16,
    },

    #[error("{path} has a page size of {page_size} bytes; this build uses {supported}")]
    UnsupportedPageSize {
        path: PathBuf,
        page_size: u16,
        supported: usize,
    },

    #[error("the card image {path} is {actual} bytes long; its header says {expected}")]
    ImageSize {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    #[error(
        "page {page} of the card image {path} fails authentication in both of its copies \
         (altered, swapped with another page, or from another image)"
    )]
    PageCorrupt { path: PathBuf, page: u32 },

    #[error("an NVM of {requested} bytes is not possible: it must be 1 to {max} bytes")]
    InvalidNvmSize { requested: usize, max: usize },

    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("the vpcd address {addr:?} is not usable: {detail}")]
    VpcdAddress { addr: String, detail: String },

    #[error("the card refused: {0}")]
    Card(#[from] card::CardError),
}

impl HostError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| HostError::Io { op, path, source }
    }
}
