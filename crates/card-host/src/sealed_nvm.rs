//! The card's NVM as a file that holds no key in clear (CARD-7): every page is sealed with
//! AES-256-GCM under a key derived from the [`SealingKey`], and the plaintext lives only in
//! this process's memory (wiped on drop).
//!
//! # Format (version 1)
//!
//! ```text
//! header (64 bytes):
//!   magic "CWCARDNV" | version u16 | page size u16 | NVM length u32 | image ID (16 random bytes)
//!   | HMAC-SHA-256(header key, the 32 bytes before it)
//! then, for page 0, 1, …: three slots of 548 bytes, each
//!   sequence u64 | nonce (12) | AES-256-GCM(page plaintext (512)) | tag (16)
//!   with associated data = image ID | page index u32 | sequence u64
//! ```
//! All integers are big-endian. The header key and the page key are HKDF subkeys of the sealing
//! key; the page key also takes the image ID, so each image has its own key and the random-nonce
//! bound of AES-GCM (2^32 seals) applies per image.
//!
//! The header MAC makes a wrong key a clear error on open ([`HostError::WrongSealingKey`])
//! instead of a wall of failed pages. The associated data ties a slot to its image and its page:
//! a page copied from another image or moved to another index fails, and when no slot of a page
//! opens the error names the page ([`HostError::PageCorrupt`]).
//!
//! # Why three slots per page
//!
//! The card's store survives torn writes only if the NVM honours the [`Nvm`] contract: a torn
//! write lands as a prefix, and `sync` orders writes. Re-sealing a page in place would turn a
//! torn `pwrite` into a page that no longer authenticates — the whole page lost, bytes the write
//! never touched included, and the card unbootable. So a page is never overwritten in place:
//! - the slot holding the page as of the last `sync` (durable) is never written before the next
//!   `sync`, so a power loss can at worst take a page back to that version;
//! - the slot holding the newest version is not overwritten either: a second write to the same
//!   page between two syncs goes to the third slot. A process killed in the middle of a `pwrite`
//!   therefore leaves the previous write intact.
//!
//! On open, each page is the valid slot with the highest sequence number. Pages of one `write`
//! are written in ascending order, so a process killed part-way leaves a prefix of the write on
//! page boundaries; after an operating-system crash, every page is at its last synced version or
//! newer, which is what `sync` as an ordering barrier promises.
//!
//! # What sealing does not give
//!
//! Freshness. Whoever can write the file can put back an older copy of it — or of one page,
//! since an older slot of a page still authenticates — and so roll back, for example, a PIN
//! retry counter. Defending against that needs a monotonic counter outside the file (a TPM, a
//! server); a software card on a computer the attacker controls cannot have one.
//!
//! # Page size
//!
//! 512 bytes. A write's cost is dominated by `fdatasync` (milliseconds), not by sealing 512
//! bytes (about a microsecond), and the card's store writes records of tens to hundreds of
//! bytes; at 512 the per-slot overhead (36 bytes) is 7 % against 14 % at 256, and a record
//! more often fits one page, so one `write` seals fewer pages.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use card::nvm::{check_range, Nvm, NvmError};
use crypto::{OsRng, SymmetricKey};
use zeroize::Zeroizing;

use crate::sealing_key::sync_parent_dir;
use crate::{HostError, SealingKey};

/// Bytes of plaintext per sealed page.
pub const PAGE_SIZE: usize = 512;
/// The largest NVM this host seals: the plaintext is held in memory, and card images are tens
/// of kilobytes.
pub const MAX_NVM_SIZE: usize = 64 << 20;

const MAGIC: [u8; 8] = *b"CWCARDNV";
const FORMAT_VERSION: u16 = 1;
const HEADER_LEN: usize = 64;
/// The header bytes the MAC covers (everything before the MAC).
const HEADER_MACED: usize = 32;
const IMAGE_ID_LEN: usize = 16;
const SLOTS: usize = 3;
const SEQ_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const SLOT_LEN: usize = SEQ_LEN + NONCE_LEN + PAGE_SIZE + TAG_LEN;
/// Erased EEPROM and flash read as 0xFF; a fresh image does too, like `card::nvm::MemNvm`.
const ERASED: u8 = 0xFF;

const HEADER_KEY_INFO: &[u8] = b"cardwright sealed-nvm v1 header";
const PAGE_KEY_INFO: &[u8] = b"cardwright sealed-nvm v1 pages";

/// Where a page's versions are (indices into its three slots).
#[derive(Debug, Clone, Copy)]
struct PageSlots {
    /// Sequence number of the newest version.
    seq: u64,
    /// Slot holding the newest version.
    newest: u8,
    /// Slot holding the version as of the last sync.
    durable: u8,
}

/// A card NVM in a sealed file. See the module documentation for the format and guarantees.
pub struct SealedFileNvm {
    path: PathBuf,
    file: File,
    page_key: SymmetricKey,
    image_id: [u8; IMAGE_ID_LEN],
    len: usize,
    plain: Zeroizing<Vec<u8>>,
    pages: Vec<PageSlots>,
    /// Pages written since the last sync.
    dirty: Vec<u32>,
    /// Set after a failed file write: memory and file may disagree, so every later access
    /// fails until the image is opened again (as a card without power stays dead until reset).
    broken: Option<String>,
}

impl std::fmt::Debug for SealedFileNvm {
    // The plaintext holds the card's keys: show where and how big only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SealedFileNvm({}, {} bytes)",
            self.path.display(),
            self.len
        )
    }
}

impl SealedFileNvm {
    /// Creates a new image of `nvm_len` bytes (all 0xFF) at `path`, durably, and opens it.
    /// Never overwrites: an existing file is [`HostError::CardExists`], and a crash during
    /// creation leaves no half-written image at `path`.
    pub fn create(path: &Path, key: &SealingKey, nvm_len: usize) -> Result<Self, HostError> {
        if nvm_len == 0 || nvm_len > MAX_NVM_SIZE {
            return Err(HostError::InvalidNvmSize {
                requested: nvm_len,
                max: MAX_NVM_SIZE,
            });
        }
        if path.exists() {
            return Err(HostError::CardExists {
                path: path.to_owned(),
            });
        }
        let mut rng = OsRng;
        let mut image_id = [0u8; IMAGE_ID_LEN];
        crypto::Rng::fill(&mut rng, &mut image_id);
        let page_count = nvm_len.div_ceil(PAGE_SIZE);

        let mut image = Vec::with_capacity(HEADER_LEN + page_count * SLOTS * SLOT_LEN);
        image.extend_from_slice(&header(key, nvm_len, &image_id));
        let page_key = page_key(key, &image_id);
        let blank = [ERASED; PAGE_SIZE];
        for page in 0..page_count {
            // Invariant: page_count ≤ MAX_NVM_SIZE / PAGE_SIZE, far below u32::MAX.
            let slot = seal(&page_key, &image_id, page as u32, 1, &blank);
            image.extend_from_slice(&slot);
            // The two spare slots start as zeros, which never authenticate.
            image.resize(image.len() + (SLOTS - 1) * SLOT_LEN, 0);
        }

        // Write beside the target, then link it into place: link(2) never replaces an
        // existing file, and the target appears only complete and synced.
        let tmp = tmp_path(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(HostError::io("create card image", &tmp))?;
        file.write_all_at(&image, 0)
            .and_then(|()| file.sync_all())
            .map_err(HostError::io("write card image", &tmp))?;
        std::fs::hard_link(&tmp, path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => HostError::CardExists {
                path: path.to_owned(),
            },
            _ => HostError::Io {
                op: "link card image",
                path: path.to_owned(),
                source: e,
            },
        })?;
        std::fs::remove_file(&tmp).map_err(HostError::io("remove", &tmp))?;
        sync_parent_dir(path)?;
        drop(file);
        Self::open(path, key)
    }

    /// Opens the image at `path` and unseals it into memory. Takes an exclusive lock on the
    /// file: two processes serving one card would each keep their own copy of its state.
    pub fn open(path: &Path, key: &SealingKey) -> Result<Self, HostError> {
        let mut file = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(HostError::NoCard {
                    path: path.to_owned(),
                })
            }
            Err(e) => return Err(HostError::io("open card image", path)(e)),
        };
        lock_exclusive(&file, path)?;
        let mut image = Vec::new();
        file.read_to_end(&mut image)
            .map_err(HostError::io("read card image", path))?;
        let not_an_image = || HostError::NotACardImage {
            path: path.to_owned(),
        };
        if image.len() < HEADER_LEN || image[..8] != MAGIC {
            return Err(not_an_image());
        }
        let version = u16::from_be_bytes([image[8], image[9]]);
        if version != FORMAT_VERSION {
            return Err(HostError::UnsupportedImageVersion {
                path: path.to_owned(),
                version,
                supported: FORMAT_VERSION,
            });
        }
        let mac = crypto::hmac_sha256(
            key.symmetric().derive(HEADER_KEY_INFO).expose_bytes(),
            &image[..HEADER_MACED],
        );
        if !crypto::ct_eq(&mac, &image[HEADER_MACED..HEADER_LEN]) {
            return Err(HostError::WrongSealingKey {
                path: path.to_owned(),
            });
        }
        let page_size = u16::from_be_bytes([image[10], image[11]]);
        if usize::from(page_size) != PAGE_SIZE {
            return Err(HostError::UnsupportedPageSize {
                path: path.to_owned(),
                page_size,
                supported: PAGE_SIZE,
            });
        }
        let len = u32::from_be_bytes([image[12], image[13], image[14], image[15]]) as usize;
        if len == 0 || len > MAX_NVM_SIZE {
            return Err(HostError::InvalidNvmSize {
                requested: len,
                max: MAX_NVM_SIZE,
            });
        }
        let mut image_id = [0u8; IMAGE_ID_LEN];
        image_id.copy_from_slice(&image[16..32]);
        let page_count = len.div_ceil(PAGE_SIZE);
        let expected = HEADER_LEN + page_count * SLOTS * SLOT_LEN;
        if image.len() != expected {
            return Err(HostError::ImageSize {
                path: path.to_owned(),
                expected: expected as u64,
                actual: image.len() as u64,
            });
        }

        let page_key = page_key(key, &image_id);
        let mut plain = Zeroizing::new(vec![0u8; page_count * PAGE_SIZE]);
        let mut pages = Vec::with_capacity(page_count);
        for (page, slots) in image[HEADER_LEN..]
            .chunks_exact(SLOTS * SLOT_LEN)
            .enumerate()
        {
            // Invariant: page_count ≤ MAX_NVM_SIZE / PAGE_SIZE, far below u32::MAX.
            let page = page as u32;
            let mut best: Option<(u64, u8, Zeroizing<Vec<u8>>)> = None;
            for (index, slot) in slots.chunks_exact(SLOT_LEN).enumerate() {
                let Some((seq, text)) = unseal(&page_key, &image_id, page, slot) else {
                    continue;
                };
                if best.as_ref().is_none_or(|(s, _, _)| seq > *s) {
                    // Invariant: index < SLOTS = 3.
                    best = Some((seq, index as u8, text));
                }
            }
            let Some((seq, slot, text)) = best else {
                return Err(HostError::PageCorrupt {
                    path: path.to_owned(),
                    page,
                });
            };
            let at = page as usize * PAGE_SIZE;
            plain[at..at + PAGE_SIZE].copy_from_slice(&text);
            pages.push(PageSlots {
                seq,
                newest: slot,
                durable: slot,
            });
        }
        // `image` holds ciphertext only: nothing secret to wipe there.
        Ok(SealedFileNvm {
            path: path.to_owned(),
            file,
            page_key,
            image_id,
            len,
            plain,
            pages,
            dirty: Vec::new(),
            broken: None,
        })
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn check_usable(&self) -> Result<(), NvmError> {
        match &self.broken {
            Some(detail) => Err(NvmError::Io {
                detail: detail.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Seals the current plaintext of `page` into a slot that holds neither its newest nor its
    /// durable version, and writes it there.
    fn write_page(&mut self, page: u32) -> std::io::Result<()> {
        let state = self.pages[page as usize];
        let target = (0..SLOTS as u8)
            .find(|s| *s != state.newest && *s != state.durable)
            .unwrap_or(0); // Invariant: 3 slots, at most 2 excluded: always found.
        let seq = state.seq + 1;
        let at = page as usize * PAGE_SIZE;
        let slot = seal(
            &self.page_key,
            &self.image_id,
            page,
            seq,
            &self.plain[at..at + PAGE_SIZE],
        );
        self.file.write_all_at(&slot, slot_offset(page, target))?;
        if state.newest == state.durable {
            self.dirty.push(page);
        }
        self.pages[page as usize] = PageSlots {
            seq,
            newest: target,
            durable: state.durable,
        };
        Ok(())
    }
}

impl Nvm for SealedFileNvm {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&mut self, addr: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        self.check_usable()?;
        check_range(addr, buf.len(), self.len)?;
        buf.copy_from_slice(&self.plain[addr..addr + buf.len()]);
        Ok(())
    }

    fn write(&mut self, addr: usize, data: &[u8]) -> Result<(), NvmError> {
        self.check_usable()?;
        check_range(addr, data.len(), self.len)?;
        if data.is_empty() {
            return Ok(());
        }
        self.plain[addr..addr + data.len()].copy_from_slice(data);
        let first = addr / PAGE_SIZE;
        let last = (addr + data.len() - 1) / PAGE_SIZE;
        for page in first..=last {
            // Invariant: pages < MAX_NVM_SIZE / PAGE_SIZE, far below u32::MAX.
            if let Err(e) = self.write_page(page as u32) {
                let detail = format!("writing page {page} of {}: {e}", self.path.display());
                self.broken = Some(detail.clone());
                return Err(NvmError::Io { detail });
            }
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), NvmError> {
        self.check_usable()?;
        if self.dirty.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the dirty pages: nothing about
            // the file can be trusted any more (the "fsyncgate" lesson).
            let detail = format!("fdatasync of {}: {e}", self.path.display());
            self.broken = Some(detail.clone());
            return Err(NvmError::Io { detail });
        }
        for page in self.dirty.drain(..) {
            let state = &mut self.pages[page as usize];
            state.durable = state.newest;
        }
        Ok(())
    }
}

fn header(key: &SealingKey, nvm_len: usize, image_id: &[u8; IMAGE_ID_LEN]) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_be_bytes());
    // Invariant: PAGE_SIZE fits u16; nvm_len ≤ MAX_NVM_SIZE (checked by the caller) fits u32.
    h[10..12].copy_from_slice(&(PAGE_SIZE as u16).to_be_bytes());
    h[12..16].copy_from_slice(&(nvm_len as u32).to_be_bytes());
    h[16..32].copy_from_slice(image_id);
    let mac = crypto::hmac_sha256(
        key.symmetric().derive(HEADER_KEY_INFO).expose_bytes(),
        &h[..HEADER_MACED],
    );
    h[HEADER_MACED..].copy_from_slice(&mac);
    h
}

fn page_key(key: &SealingKey, image_id: &[u8; IMAGE_ID_LEN]) -> SymmetricKey {
    let mut info = PAGE_KEY_INFO.to_vec();
    info.extend_from_slice(image_id);
    key.symmetric().derive(&info)
}

fn binding(image_id: &[u8; IMAGE_ID_LEN], page: u32, seq: u64) -> [u8; IMAGE_ID_LEN + 12] {
    let mut b = [0u8; IMAGE_ID_LEN + 12];
    b[..IMAGE_ID_LEN].copy_from_slice(image_id);
    b[IMAGE_ID_LEN..IMAGE_ID_LEN + 4].copy_from_slice(&page.to_be_bytes());
    b[IMAGE_ID_LEN + 4..].copy_from_slice(&seq.to_be_bytes());
    b
}

/// One slot: `seq || nonce || ciphertext || tag`.
fn seal(
    page_key: &SymmetricKey,
    image_id: &[u8; IMAGE_ID_LEN],
    page: u32,
    seq: u64,
    plaintext: &[u8],
) -> Vec<u8> {
    let mut slot = Vec::with_capacity(SLOT_LEN);
    slot.extend_from_slice(&seq.to_be_bytes());
    slot.extend_from_slice(&page_key.wrap(&binding(image_id, page, seq), plaintext, &mut OsRng));
    slot
}

/// The sequence number and plaintext of a slot, if it authenticates as this page of this image.
fn unseal(
    page_key: &SymmetricKey,
    image_id: &[u8; IMAGE_ID_LEN],
    page: u32,
    slot: &[u8],
) -> Option<(u64, Zeroizing<Vec<u8>>)> {
    let (seq, sealed) = slot.split_at_checked(SEQ_LEN)?;
    let seq = u64::from_be_bytes(seq.try_into().ok()?);
    let text = page_key
        .unwrap(&binding(image_id, page, seq), sealed)
        .ok()?;
    (text.len() == PAGE_SIZE).then_some((seq, text))
}

fn slot_offset(page: u32, slot: u8) -> u64 {
    (HEADER_LEN + (page as usize * SLOTS + usize::from(slot)) * SLOT_LEN) as u64
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".new");
    path.with_file_name(name)
}

fn lock_exclusive(file: &File, path: &Path) -> Result<(), HostError> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor owned by `file`, open for this call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.kind() == std::io::ErrorKind::WouldBlock {
        return Err(HostError::CardInUse {
            path: path.to_owned(),
        });
    }
    Err(HostError::io("lock card image", path)(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SealingKey {
        SealingKey::from_hex(&format!("{byte:02x}").repeat(32), "test").unwrap()
    }

    fn contents(nvm: &mut SealedFileNvm) -> Vec<u8> {
        let mut buf = vec![0u8; nvm.len()];
        nvm.read(0, &mut buf).unwrap();
        buf
    }

    /// A 3-page image (the last page partly used) in a fresh directory.
    fn fresh() -> (tempfile::TempDir, PathBuf, SealedFileNvm) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("card.nvm");
        let nvm = SealedFileNvm::create(&path, &key(1), 1300).unwrap();
        (dir, path, nvm)
    }

    #[test]
    fn writes_survive_reopening_and_a_fresh_image_reads_erased() {
        let (_dir, path, mut nvm) = fresh();
        assert_eq!(nvm.len(), 1300);
        assert_eq!(contents(&mut nvm), vec![0xFF; 1300]);
        nvm.write(500, &[7; 30]).unwrap(); // spans pages 0 and 1
        nvm.write(1299, &[9]).unwrap();
        nvm.sync().unwrap();
        drop(nvm);
        let mut nvm = SealedFileNvm::open(&path, &key(1)).unwrap();
        let c = contents(&mut nvm);
        assert_eq!(&c[500..530], &[7; 30]);
        assert_eq!(c[1299], 9);
        assert_eq!(c[499], 0xFF);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len() as usize,
            HEADER_LEN + 3 * SLOTS * SLOT_LEN
        );
    }

    #[test]
    fn no_plaintext_reaches_the_file() {
        let (_dir, path, mut nvm) = fresh();
        let secret = *b"0123456789abcdef-the-card-key-!!";
        nvm.write(100, &secret).unwrap();
        nvm.sync().unwrap();
        let image = std::fs::read(&path).unwrap();
        assert!(!image.windows(8).any(|w| secret.windows(8).any(|s| s == w)));
        // Erased pages are sealed too: no run of 0xFF betrays them.
        assert!(!image[HEADER_LEN..].windows(16).any(|w| w == [0xFF; 16]));
    }

    #[test]
    fn out_of_range_access_is_refused_with_the_values() {
        let (_dir, _path, mut nvm) = fresh();
        assert_eq!(
            nvm.write(1299, &[1, 2]),
            Err(NvmError::OutOfRange {
                addr: 1299,
                len: 2,
                size: 1300
            })
        );
        let mut buf = [0u8; 1];
        assert!(matches!(
            nvm.read(usize::MAX, &mut buf),
            Err(NvmError::OutOfRange { .. })
        ));
        assert_eq!(nvm.write(1300, &[]), Ok(()));
    }

    #[test]
    fn a_wrong_key_is_named_as_such() {
        let (_dir, path, nvm) = fresh();
        drop(nvm);
        let err = SealedFileNvm::open(&path, &key(2)).unwrap_err();
        assert!(matches!(err, HostError::WrongSealingKey { path: ref p } if *p == path));
        assert!(err.to_string().contains("does not open"), "{err}");
    }

    #[test]
    fn an_existing_image_is_never_overwritten() {
        let (_dir, path, nvm) = fresh();
        drop(nvm);
        let before = std::fs::read(&path).unwrap();
        let err = SealedFileNvm::create(&path, &key(1), 1300).unwrap_err();
        assert!(matches!(err, HostError::CardExists { .. }));
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_second_opener_is_told_the_card_is_in_use() {
        let (_dir, path, nvm) = fresh();
        let err = SealedFileNvm::open(&path, &key(1)).unwrap_err();
        assert!(matches!(err, HostError::CardInUse { .. }), "{err}");
        drop(nvm);
        SealedFileNvm::open(&path, &key(1)).unwrap();
    }

    #[test]
    fn sizes_outside_the_limits_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, MAX_NVM_SIZE + 1] {
            let err = SealedFileNvm::create(&dir.path().join("x"), &key(1), size).unwrap_err();
            assert!(
                matches!(err, HostError::InvalidNvmSize { requested, .. } if requested == size)
            );
        }
    }

    fn reopen_after(
        path: &Path,
        edit: impl FnOnce(&mut Vec<u8>),
    ) -> Result<SealedFileNvm, HostError> {
        let mut image = std::fs::read(path).unwrap();
        edit(&mut image);
        std::fs::write(path, &image).unwrap();
        SealedFileNvm::open(path, &key(1))
    }

    fn page_range(page: usize) -> std::ops::Range<usize> {
        let start = HEADER_LEN + page * SLOTS * SLOT_LEN;
        start..start + SLOTS * SLOT_LEN
    }

    #[test]
    fn a_page_altered_in_every_slot_is_named() {
        let (_dir, path, mut nvm) = fresh();
        // Fill all three slots of page 2 with valid versions first.
        nvm.write(1100, b"a").unwrap();
        nvm.sync().unwrap();
        nvm.write(1100, b"b").unwrap();
        drop(nvm);
        let err = reopen_after(&path, |image| {
            for slot in 0..SLOTS {
                image[page_range(2).start + slot * SLOT_LEN + 100] ^= 0x01;
            }
        })
        .unwrap_err();
        assert!(
            matches!(err, HostError::PageCorrupt { page: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("page 2 of"), "{err}");
    }

    #[test]
    fn swapped_pages_are_detected() {
        let (_dir, path, nvm) = fresh();
        drop(nvm);
        let err = reopen_after(&path, |image| {
            let p0 = image[page_range(0)].to_vec();
            let p1 = image[page_range(1)].to_vec();
            image[page_range(0)].copy_from_slice(&p1);
            image[page_range(1)].copy_from_slice(&p0);
        })
        .unwrap_err();
        assert!(
            matches!(err, HostError::PageCorrupt { page: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_page_from_another_image_under_the_same_key_is_detected() {
        let (dir, path, nvm) = fresh();
        drop(nvm);
        let other_path = dir.path().join("other.nvm");
        drop(SealedFileNvm::create(&other_path, &key(1), 1300).unwrap());
        let other = std::fs::read(&other_path).unwrap();
        let err = reopen_after(&path, |image| {
            image[page_range(1)].copy_from_slice(&other[page_range(1)]);
        })
        .unwrap_err();
        assert!(
            matches!(err, HostError::PageCorrupt { page: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn header_damage_is_reported_by_kind() {
        let (_dir, path, nvm) = fresh();
        drop(nvm);
        let pristine = std::fs::read(&path).unwrap();
        let restore = |image: &mut Vec<u8>| image.clone_from(&pristine);

        let err = reopen_after(&path, |i| {
            restore(i);
            i[0] = b'X';
        })
        .unwrap_err();
        assert!(matches!(err, HostError::NotACardImage { .. }), "{err}");

        let err = reopen_after(&path, |i| {
            restore(i);
            i[9] = 2;
        })
        .unwrap_err();
        assert!(
            matches!(err, HostError::UnsupportedImageVersion { version: 2, .. }),
            "{err}"
        );

        // A changed length is caught by the header MAC.
        let err = reopen_after(&path, |i| {
            restore(i);
            i[15] ^= 1;
        })
        .unwrap_err();
        assert!(matches!(err, HostError::WrongSealingKey { .. }), "{err}");

        let err = reopen_after(&path, |i| {
            restore(i);
            i.truncate(i.len() - 1);
        })
        .unwrap_err();
        assert!(matches!(err, HostError::ImageSize { .. }), "{err}");

        let err = reopen_after(&path, |i| i.truncate(10)).unwrap_err();
        assert!(matches!(err, HostError::NotACardImage { .. }), "{err}");

        std::fs::remove_file(&path).unwrap();
        let err = SealedFileNvm::open(&path, &key(1)).unwrap_err();
        assert!(matches!(err, HostError::NoCard { .. }), "{err}");
    }

    /// One slot-sized region of the file that one `write` changed.
    struct SlotWrite {
        offset: usize,
        bytes: Vec<u8>,
    }

    /// The slots (in file order, which is the order they were written) that differ between two
    /// images of the same file.
    fn slot_writes(before: &[u8], after: &[u8]) -> Vec<SlotWrite> {
        (HEADER_LEN..after.len())
            .step_by(SLOT_LEN)
            .filter(|&o| before[o..o + SLOT_LEN] != after[o..o + SLOT_LEN])
            .map(|offset| SlotWrite {
                offset,
                bytes: after[offset..offset + SLOT_LEN].to_vec(),
            })
            .collect()
    }

    fn open_image(dir: &Path, image: &[u8]) -> Vec<u8> {
        let path = dir.join("torn.nvm");
        std::fs::write(&path, image).unwrap();
        let mut nvm = SealedFileNvm::open(&path, &key(1)).unwrap();
        contents(&mut nvm)
    }

    enum Op {
        Write(usize, Vec<u8>),
        Sync,
    }

    fn script() -> Vec<Op> {
        vec![
            Op::Write(10, b"first".to_vec()),
            Op::Sync,
            Op::Write(480, vec![0xA1; 600]), // pages 0, 1 and 2
            Op::Write(20, b"again page 0".to_vec()),
            Op::Write(30, b"and a third time".to_vec()),
            Op::Sync,
            Op::Write(700, b"page 1".to_vec()),
            Op::Sync,
            Op::Write(700, b"PAGE 1".to_vec()),
            Op::Write(1200, b"page 2".to_vec()),
            Op::Write(705, b"!".to_vec()),
        ]
    }

    const TEAR_POINTS: [usize; 14] = [
        0,
        1,
        SEQ_LEN - 1,
        SEQ_LEN,
        SEQ_LEN + 1,
        SEQ_LEN + NONCE_LEN - 1,
        SEQ_LEN + NONCE_LEN,
        SEQ_LEN + NONCE_LEN + 1,
        SEQ_LEN + NONCE_LEN + PAGE_SIZE / 2,
        SEQ_LEN + NONCE_LEN + PAGE_SIZE - 1,
        SEQ_LEN + NONCE_LEN + PAGE_SIZE,
        SEQ_LEN + NONCE_LEN + PAGE_SIZE + 1,
        SLOT_LEN - 1,
        SLOT_LEN,
    ];

    /// A process killed inside any `pwrite` of any write, at every field boundary of the slot:
    /// the image opens, every page fully written before the cut holds its new contents and every
    /// other page its old ones — the write landed as a prefix on page boundaries, as the `Nvm`
    /// contract asks.
    #[test]
    fn a_write_torn_at_any_byte_leaves_a_page_aligned_prefix() {
        let (dir, path, mut nvm) = fresh();
        let mut cases = 0;
        for op in script() {
            let Op::Write(addr, data) = op else {
                nvm.sync().unwrap();
                continue;
            };
            let before_image = std::fs::read(&path).unwrap();
            let before = contents(&mut nvm);
            nvm.write(addr, &data).unwrap();
            let after = contents(&mut nvm);
            let writes = slot_writes(&before_image, &std::fs::read(&path).unwrap());
            let first_page = addr / PAGE_SIZE;
            assert_eq!(
                writes.len(),
                (addr + data.len() - 1) / PAGE_SIZE - first_page + 1
            );
            for (done, torn) in writes.iter().enumerate() {
                // Every field boundary of a slot (seq | nonce | ciphertext | tag), either side.
                for cut in TEAR_POINTS {
                    if cut == SLOT_LEN && done + 1 < writes.len() {
                        continue; // the same image as the next slot's cut 0
                    }
                    let mut image = before_image.clone();
                    for w in &writes[..done] {
                        image[w.offset..w.offset + SLOT_LEN].copy_from_slice(&w.bytes);
                    }
                    image[torn.offset..torn.offset + cut].copy_from_slice(&torn.bytes[..cut]);
                    // A cut whose unwritten tail already holds the new bytes (the last tag
                    // byte equals the old one: 1 in 256) is a complete write, not a tear.
                    let landed_whole =
                        image[torn.offset + cut..torn.offset + SLOT_LEN] == torn.bytes[cut..];
                    let got = open_image(dir.path(), &image);
                    let pages_done = done + usize::from(landed_whole);
                    let boundary = ((first_page + pages_done) * PAGE_SIZE).min(after.len());
                    assert_eq!(
                        got[..boundary],
                        after[..boundary],
                        "write at {addr}, slot {done}, cut {cut}"
                    );
                    assert_eq!(
                        got[boundary..],
                        before[boundary..],
                        "write at {addr}, slot {done}, cut {cut}"
                    );
                    cases += 1;
                }
            }
        }
        eprintln!("torn-pwrite cases: {cases}");
        assert!(cases >= 10 * (TEAR_POINTS.len() - 1), "{cases} cases");
    }

    /// An operating-system crash loses any subset of the slot writes since the last sync (and
    /// may tear one): the image still opens, and every page holds its synced version or one it
    /// had later — never garbage, never an unreadable page.
    #[test]
    fn a_crash_between_syncs_loses_at_most_the_unsynced_versions() {
        let (dir, path, mut nvm) = fresh();
        let mut synced_image = std::fs::read(&path).unwrap();
        let mut epoch: Vec<SlotWrite> = Vec::new();
        let page_versions =
            |c: &[u8]| -> Vec<Vec<u8>> { c.chunks(PAGE_SIZE).map(<[u8]>::to_vec).collect() };
        let reset_versions = |c: &[u8]| -> Vec<Vec<Vec<u8>>> {
            page_versions(c).into_iter().map(|p| vec![p]).collect()
        };
        // Each page's versions since the last sync, the synced one first.
        let mut versions = reset_versions(&contents(&mut nvm));
        let mut cases = 0;
        for op in script() {
            match op {
                Op::Sync => {
                    nvm.sync().unwrap();
                    synced_image = std::fs::read(&path).unwrap();
                    epoch.clear();
                    versions = reset_versions(&contents(&mut nvm));
                }
                Op::Write(addr, data) => {
                    let before_image = std::fs::read(&path).unwrap();
                    nvm.write(addr, &data).unwrap();
                    epoch.extend(slot_writes(&before_image, &std::fs::read(&path).unwrap()));
                    for (page, p) in page_versions(&contents(&mut nvm)).into_iter().enumerate() {
                        if !versions[page].contains(&p) {
                            versions[page].push(p);
                        }
                    }
                }
            }
            assert!(epoch.len() <= 8, "keep the subsets enumerable");
            for subset in 0u32..(1 << epoch.len()) {
                for tear_last in [false, true] {
                    let mut image = synced_image.clone();
                    let landed: Vec<&SlotWrite> = epoch
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| subset & (1 << i) != 0)
                        .map(|(_, w)| w)
                        .collect();
                    for (i, w) in landed.iter().enumerate() {
                        let n = if tear_last && i + 1 == landed.len() {
                            SLOT_LEN / 2
                        } else {
                            SLOT_LEN
                        };
                        image[w.offset..w.offset + n].copy_from_slice(&w.bytes[..n]);
                    }
                    let got = open_image(dir.path(), &image);
                    for (page, p) in page_versions(&got).into_iter().enumerate() {
                        assert!(
                            versions[page].contains(&p),
                            "page {page}, subset {subset:b}"
                        );
                    }
                    cases += 1;
                }
            }
        }
        eprintln!("crash-subset cases: {cases}");
    }
}
