//! The terminal's download journal (REC-2): one file per card, `DIR/<card_id>.json`, written
//! before every call that changes something elsewhere, so a terminal killed at any point finds
//! the operation it was in and resumes it. It holds only what the parties and the card already
//! sent or will check again (no PIN, no key, nothing secret): losing it costs a restart of the
//! flow, never a second installation (the issuer's open operation and the card's own refusal of
//! a version it holds guard that).
//!
//! Writes are atomic: a temporary file, `fsync`, `rename`, `fsync` of the directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use pki::CardId;
use serde::{Deserialize, Serialize};

/// The journal format version written by this build.
const FORMAT: u32 = 1;

/// Where the journal files of one terminal live.
#[derive(Debug, Clone)]
pub struct Journal {
    dir: PathBuf,
}

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("the download journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the download journal {path} is not readable ({detail}); delete it to start afresh")]
    Unreadable { path: PathBuf, detail: String },
}

/// One download as the terminal last wrote it. Binary fields are hex; the file is meant to be
/// readable by a person looking into a stuck download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub format: u32,
    /// The operation ID the terminal minted when the user accepted the terms (hex, 16 bytes).
    pub operation_id: String,
    pub card_id: String,
    pub service_id: String,
    /// SHA-256 of the terms text the user accepted (hex).
    pub terms_digest: String,
    /// The provider's DownloadRequest (DER, hex), once asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The card-signed DownloadApplication (DER, hex), once signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_application: Option<String>,
}

impl JournalEntry {
    /// A new entry for an operation the user has just started.
    pub fn new(operation_id: [u8; 16], card_id: CardId, service_id: &str, terms: [u8; 32]) -> Self {
        JournalEntry {
            format: FORMAT,
            operation_id: hex::encode(operation_id),
            card_id: card_id.to_hex(),
            service_id: service_id.to_owned(),
            terms_digest: hex::encode(terms),
            request: None,
            download_application: None,
        }
    }
}

impl Journal {
    /// The journal kept in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Journal { dir: dir.into() }
    }

    fn path(&self, card_id: &CardId) -> PathBuf {
        self.dir.join(format!("{}.json", card_id.to_hex()))
    }

    /// The download this terminal was in for `card_id`, if any.
    pub fn read(&self, card_id: &CardId) -> Result<Option<JournalEntry>, JournalError> {
        let path = self.path(card_id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(JournalError::Io { path, source }),
        };
        let entry: JournalEntry =
            serde_json::from_slice(&bytes).map_err(|e| JournalError::Unreadable {
                path: path.clone(),
                detail: e.to_string(),
            })?;
        if entry.format != FORMAT {
            return Err(JournalError::Unreadable {
                path,
                detail: format!("format {} (this build reads {FORMAT})", entry.format),
            });
        }
        if entry.card_id != card_id.to_hex() {
            return Err(JournalError::Unreadable {
                path,
                detail: format!("it names card {}", entry.card_id),
            });
        }
        Ok(Some(entry))
    }

    /// Replaces the card's entry atomically.
    pub fn write(&self, entry: &JournalEntry) -> Result<(), JournalError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| JournalError::Io { path, source }
        };
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let path = self.dir.join(format!("{}.json", entry.card_id));
        let tmp = self.dir.join(format!("{}.json.tmp", entry.card_id));
        // Invariant: the entry has only strings and numbers; serialising cannot fail.
        let bytes = serde_json::to_vec_pretty(entry).expect("journal entry serialises");
        {
            let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(&bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            d.sync_all().map_err(io(&self.dir))?;
        }
        Ok(())
    }

    /// Forgets the card's entry (the download finished, or the user abandons it).
    pub fn remove(&self, card_id: &CardId) -> Result<(), JournalError> {
        let path = self.path(card_id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(JournalError::Io { path, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(n: u8) -> CardId {
        CardId([n; 16])
    }

    #[test]
    fn an_entry_survives_a_write_and_a_read() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path().join("downloads"));
        assert_eq!(journal.read(&card(1)).unwrap(), None);
        let mut entry = JournalEntry::new([7; 16], card(1), "tickets", [9; 32]);
        journal.write(&entry).unwrap();
        entry.request = Some("3000".into());
        journal.write(&entry).unwrap();
        assert_eq!(journal.read(&card(1)).unwrap(), Some(entry));
        assert_eq!(journal.read(&card(2)).unwrap(), None);
        journal.remove(&card(1)).unwrap();
        assert_eq!(journal.read(&card(1)).unwrap(), None);
    }

    #[test]
    fn a_damaged_or_foreign_entry_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::new(dir.path());
        let path = dir.path().join(format!("{}.json", hex::encode([1u8; 16])));
        std::fs::write(&path, b"{not json").unwrap();
        let e = journal.read(&card(1)).unwrap_err().to_string();
        assert!(e.contains("not readable") && e.contains(".json"), "{e}");
        let other = JournalEntry::new([7; 16], card(2), "tickets", [9; 32]);
        std::fs::write(&path, serde_json::to_vec(&other).unwrap()).unwrap();
        let e = journal.read(&card(1)).unwrap_err().to_string();
        assert!(e.contains("names card"), "{e}");
    }
}
