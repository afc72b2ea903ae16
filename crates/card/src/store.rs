//! The card's transactional persistent store: one logical byte image (the card OS serialises its
//! whole persistent state into it) kept in an [`Nvm`], replaced atomically by a redo journal.
//! After a power loss at any write, byte or weak cell — including during recovery — the image
//! read back is exactly the old one or exactly the new one (design `transfer-protocol.md` §3.11,
//! invariants 7–8; tested exhaustively by `tests/store_tear.rs`). Layout, algorithms and tear
//! model: `docs/card-store.md`.
//!
//! This module owns the NVM layout (header, commit record, journal, data area) and its layout
//! version. It does not own what the image means: the card's state format is versioned by the
//! card.

mod crc32;

use std::ops::Range;

use crate::nvm::{Nvm, NvmError};
use crc32::crc32;

/// Version of the NVM layout this module writes and reads (not of the card's state format).
pub const LAYOUT_VERSION: u16 = 1;

/// The largest image capacity a store may be formatted with. Far above any card's NVM; it keeps
/// every offset in a `u32` and every size computation free of overflow.
pub const MAX_IMAGE_CAPACITY: usize = 1 << 24;

// Header: magic, layout version, reserved (zero), image capacity, CRC-32 of the 12 bytes before.
const HEADER_MAGIC: [u8; 4] = *b"CWST";
const HEADER_LEN: usize = 16;
const HEADER_CRC_AT: usize = 12;

// Commit record: magic, epoch, body length, SHA-256 of the body, CRC-32 of the 48 bytes before.
// Cleared by overwriting the magic with zeros (neither erased 0xFF nor the commit magic).
const RECORD_OFFSET: usize = HEADER_LEN;
const RECORD_LEN: usize = 52;
const RECORD_CRC_AT: usize = 48;
const COMMIT_MAGIC: [u8; 4] = *b"CWCR";
const CLEAR_MAGIC: [u8; 4] = [0; 4];

// Journal: body header (epoch, new image length, record count), then redo records
// (offset into the data area, length, new bytes).
const JOURNAL_OFFSET: usize = RECORD_OFFSET + RECORD_LEN;
const BODY_HEADER_LEN: usize = 16;
const REDO_HEADER_LEN: usize = 8;

// Data area: epoch of the last commit, image length, then the image.
const DATA_HEADER_LEN: usize = 12;

/// Changed runs separated by fewer unchanged bytes than this are merged into one redo record.
/// Equal to the redo-record header size, so splitting never costs more journal bytes than
/// merging would; that keeps every body within `journal_len` (see [`changed_runs`]).
const MERGE_GAP: usize = REDO_HEADER_LEN;

/// Why a store could not be formatted, opened or committed to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The NVM failed. During a commit this means power loss: the store is then unusable
    /// ([`StoreError::Poisoned`]) and the host must reopen it from NVM.
    #[error("NVM failed: {0}")]
    Nvm(#[from] NvmError),
    /// The new image does not fit; nothing was written.
    #[error("image of {len} bytes exceeds the store's capacity of {capacity} bytes")]
    ImageTooLarge { len: usize, capacity: usize },
    /// The redo records do not fit the journal; nothing was written. The layout sizes the
    /// journal so that even a full rewrite fits, so this is a guard, not an expected outcome.
    #[error("journal body of {needed} bytes exceeds the journal area of {available} bytes")]
    JournalFull { needed: usize, available: usize },
    #[error("image capacity {capacity} exceeds the layout's maximum of {max}")]
    CapacityTooLarge { capacity: usize, max: usize },
    #[error("NVM of {size} bytes is too small: the layout needs {needed}")]
    NvmTooSmall { needed: usize, size: usize },
    /// No store header: a blank, foreign or torn-while-formatting NVM.
    #[error("NVM holds no store (header magic {found:02x?})")]
    NotFormatted { found: [u8; 4] },
    #[error("store header is corrupt (stored CRC {stored:#010x}, computed {computed:#010x})")]
    HeaderCorrupt { stored: u32, computed: u32 },
    #[error("store layout version {found} is not supported (this build reads {supported})")]
    UnsupportedLayout { found: u16, supported: u16 },
    /// The committed image's length field is out of range: the data area is corrupt.
    #[error("committed image length {len} exceeds the capacity of {capacity} bytes")]
    DataCorrupt { len: usize, capacity: usize },
    #[error("commit epoch exhausted at {epoch}")]
    EpochExhausted { epoch: u64 },
    /// An earlier commit failed in the NVM; the in-memory view may no longer match NVM.
    #[error("an earlier NVM failure left this store unusable: reopen it from NVM")]
    Poisoned,
}

/// What a commit wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommitStats {
    /// The epoch of the image now committed (unchanged if nothing was written).
    pub epoch: u64,
    /// Redo records in the journal body (0 if the image was unchanged).
    pub redo_records: usize,
    /// Bytes of journal body written.
    pub body_len: usize,
    /// `Nvm::write` calls made.
    pub nvm_writes: usize,
    /// `Nvm::sync` calls made.
    pub nvm_syncs: usize,
}

/// Whether recovery stabilises the commit record before applying it. Only the ablation test
/// that proves the tear harness can see the missing step uses anything but `Stabilise`.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryMode {
    Stabilise,
    /// Deliberately broken (design §3.11): applies a valid-looking record without re-writing
    /// it first, so a weak commit byte can flip the decision between two recoveries.
    NoStabiliseForAblation,
}

/// The NVM size needed for a store with `image_capacity` bytes of image (saturating, so it
/// never overflows; `format` refuses capacities above [`MAX_IMAGE_CAPACITY`] anyway).
pub fn nvm_size_for(image_capacity: usize) -> usize {
    FIXED_OVERHEAD.saturating_add(image_capacity.saturating_mul(2))
}

/// NVM bytes a store needs besides two copies of the image (one in the journal, one in the data
/// area): header, commit record, body header, one redo-record header, two data headers.
const FIXED_OVERHEAD: usize =
    JOURNAL_OFFSET + BODY_HEADER_LEN + REDO_HEADER_LEN + 2 * DATA_HEADER_LEN;

/// Offsets of the areas for one image capacity. Capacity ≤ MAX_IMAGE_CAPACITY, so nothing here
/// overflows.
#[derive(Debug, Clone, Copy)]
struct Layout {
    capacity: usize,
}

impl Layout {
    /// Room for the largest possible body: header, plus the whole data region as records
    /// (see `changed_runs` for the bound).
    fn journal_len(self) -> usize {
        BODY_HEADER_LEN + REDO_HEADER_LEN + DATA_HEADER_LEN + self.capacity
    }
    fn data_offset(self) -> usize {
        JOURNAL_OFFSET + self.journal_len()
    }
    /// Size of the data region the redo records address: data header plus image.
    fn data_region_len(self) -> usize {
        DATA_HEADER_LEN + self.capacity
    }
    fn nvm_size(self) -> usize {
        self.data_offset() + self.data_region_len()
    }
}

/// A transactional store of one byte image over an [`Nvm`].
///
/// Error contract: if a commit returns [`StoreError::Nvm`], the NVM is in an undefined-but-
/// recoverable state (exactly what a power loss leaves); this `Store` then refuses further
/// commits with [`StoreError::Poisoned`] and the card must be rebooted from NVM
/// ([`Store::open`]), which yields the old or the new image.
pub struct Store<N: Nvm> {
    nvm: N,
    layout: Layout,
    epoch: u64,
    image: Vec<u8>,
    health: Health,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    Usable,
    Poisoned,
}

impl<N: Nvm> std::fmt::Debug for Store<N> {
    // The image holds keys and PINs: show sizes only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("capacity", &self.layout.capacity)
            .field("epoch", &self.epoch)
            .field("image_len", &self.image.len())
            .field("health", &self.health)
            .finish()
    }
}

impl<N: Nvm> Store<N> {
    /// The NVM size needed for `image_capacity` bytes of image; see [`nvm_size_for`].
    pub fn nvm_size_for(image_capacity: usize) -> usize {
        nvm_size_for(image_capacity)
    }

    /// Lays out a new store with an empty image (length 0, epoch 0) over `nvm`, destroying what
    /// it held. For manufacturing: a torn format leaves an NVM that [`Store::open`] rejects as
    /// [`StoreError::NotFormatted`] (or, if the very first write tore, the old store untouched);
    /// formatting again fixes it.
    pub fn format(mut nvm: N, image_capacity: usize) -> Result<Self, StoreError> {
        if image_capacity > MAX_IMAGE_CAPACITY {
            return Err(StoreError::CapacityTooLarge {
                capacity: image_capacity,
                max: MAX_IMAGE_CAPACITY,
            });
        }
        let layout = Layout {
            capacity: image_capacity,
        };
        let needed = layout.nvm_size();
        if nvm.len() < needed {
            return Err(StoreError::NvmTooSmall {
                needed,
                size: nvm.len(),
            });
        }
        // Invalidate any old header first, so that nothing below can be read through it.
        nvm.write(0, &[0; 4])?;
        nvm.sync()?;
        nvm.write(RECORD_OFFSET, &[0; RECORD_LEN])?;
        nvm.write(layout.data_offset(), &data_header(0, 0))?;
        nvm.sync()?;
        nvm.write(0, &encode_header(image_capacity))?;
        nvm.sync()?;
        Ok(Store {
            nvm,
            layout,
            epoch: 0,
            image: Vec::new(),
            health: Health::Usable,
        })
    }

    /// Opens the store on `nvm`: runs recovery (finishing or discarding an interrupted commit),
    /// then loads the committed image.
    pub fn open(nvm: N) -> Result<Self, StoreError> {
        Self::open_with_recovery_mode(nvm, RecoveryMode::Stabilise)
    }

    /// [`Store::open`] with a chosen recovery mode; only the ablation test passes anything but
    /// [`RecoveryMode::Stabilise`].
    #[doc(hidden)]
    pub fn open_with_recovery_mode(mut nvm: N, mode: RecoveryMode) -> Result<Self, StoreError> {
        let layout = read_header(&mut nvm)?;
        recover(&mut nvm, layout, mode)?;
        let mut head = [0u8; DATA_HEADER_LEN];
        nvm.read(layout.data_offset(), &mut head)?;
        let (epoch, len) = decode_data_header(&head);
        if len > layout.capacity {
            return Err(StoreError::DataCorrupt {
                len,
                capacity: layout.capacity,
            });
        }
        let mut image = vec![0u8; len];
        nvm.read(layout.data_offset() + DATA_HEADER_LEN, &mut image)?;
        Ok(Store {
            nvm,
            layout,
            epoch,
            image,
            health: Health::Usable,
        })
    }

    /// The committed image.
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// The largest image this store can hold.
    pub fn image_capacity(&self) -> usize {
        self.layout.capacity
    }

    /// Number of commits that changed the image since format.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn into_nvm(self) -> N {
        self.nvm
    }

    /// Direct access to the NVM, for tests that corrupt or inspect it.
    pub fn nvm_mut(&mut self) -> &mut N {
        &mut self.nvm
    }

    /// Atomically replaces the image with `new_image`: after a power loss at any point, the
    /// next [`Store::open`] yields either the old or the new image, and once this returns `Ok`
    /// the new one. An unchanged image writes nothing.
    ///
    /// Errors: `ImageTooLarge`, `JournalFull` and `EpochExhausted` write nothing and leave the
    /// store usable; `Nvm` poisons it (see [`Store`]); `Poisoned` if an earlier commit failed.
    pub fn commit(&mut self, new_image: &[u8]) -> Result<CommitStats, StoreError> {
        if self.health == Health::Poisoned {
            return Err(StoreError::Poisoned);
        }
        let capacity = self.layout.capacity;
        if new_image.len() > capacity {
            return Err(StoreError::ImageTooLarge {
                len: new_image.len(),
                capacity,
            });
        }
        if new_image == self.image.as_slice() {
            return Ok(CommitStats {
                epoch: self.epoch,
                ..CommitStats::default()
            });
        }
        let epoch = self
            .epoch
            .checked_add(1)
            .ok_or(StoreError::EpochExhausted { epoch: self.epoch })?;

        // The data region as it is in NVM and as it must become: header, then image.
        let old_region = [&data_header(self.epoch, self.image.len())[..], &self.image].concat();
        let new_region = [&data_header(epoch, new_image.len())[..], new_image].concat();
        let runs = changed_runs(&old_region, &new_region);
        let body = encode_body(epoch, new_image.len(), &runs, &new_region);
        let available = self.layout.journal_len();
        if body.len() > available {
            return Err(StoreError::JournalFull {
                needed: body.len(),
                available,
            });
        }
        let record = CommitRecord {
            epoch,
            body_len: body.len(),
            body_hash: crypto::sha256(&body).0,
        }
        .encode();

        match self.write_commit(&body, &record, &runs, &new_region) {
            Ok(()) => {
                self.epoch = epoch;
                self.image = new_image.to_vec();
                Ok(CommitStats {
                    epoch,
                    redo_records: runs.len(),
                    body_len: body.len(),
                    nvm_writes: runs.len() + 3,
                    nvm_syncs: 4,
                })
            }
            Err(e) => {
                self.health = Health::Poisoned;
                Err(StoreError::Nvm(e))
            }
        }
    }

    /// Steps (1)–(8) of the commit protocol (`docs/card-store.md` §Commit).
    fn write_commit(
        &mut self,
        body: &[u8],
        record: &[u8; RECORD_LEN],
        runs: &[Range<usize>],
        new_region: &[u8],
    ) -> Result<(), NvmError> {
        let nvm = &mut self.nvm;
        nvm.write(JOURNAL_OFFSET, body)?;
        nvm.sync()?;
        nvm.write(RECORD_OFFSET, record)?;
        nvm.sync()?;
        let data = self.layout.data_offset();
        for run in runs {
            nvm.write(data + run.start, &new_region[run.clone()])?;
        }
        nvm.sync()?;
        nvm.write(RECORD_OFFSET, &CLEAR_MAGIC)?;
        nvm.sync()
    }
}

/// Finishes or discards an interrupted commit. Idempotent, and safe to tear at any write: it
/// decides once from one read of the commit record, makes that decision durable (stabilise)
/// before acting on it, and every action re-writes bytes to values fixed by the decision.
fn recover<N: Nvm>(nvm: &mut N, layout: Layout, mode: RecoveryMode) -> Result<(), NvmError> {
    let mut record = [0u8; RECORD_LEN];
    nvm.read(RECORD_OFFSET, &mut record)?;
    match valid_body(nvm, layout, &record)? {
        Some(body) => {
            if mode == RecoveryMode::Stabilise {
                // A weak byte may have read "valid" just now and read "invalid" at the next
                // boot; re-writing the record as read makes the decision solid before any
                // data byte changes (§3.11).
                nvm.write(RECORD_OFFSET, &record)?;
                nvm.sync()?;
            }
            let data = layout.data_offset();
            for (offset, bytes) in redo_records(&body) {
                nvm.write(data + offset, bytes)?;
            }
            nvm.sync()?;
            nvm.write(RECORD_OFFSET, &CLEAR_MAGIC)?;
            nvm.sync()?;
        }
        None => {
            if record[..4] != CLEAR_MAGIC {
                nvm.write(RECORD_OFFSET, &CLEAR_MAGIC)?;
                nvm.sync()?;
            }
        }
    }
    Ok(())
}

/// The journal body named by `record`, if the record is intact, the body matches its hash and
/// the body is well formed for this layout; `None` means "no commit to finish".
fn valid_body<N: Nvm>(
    nvm: &mut N,
    layout: Layout,
    record: &[u8; RECORD_LEN],
) -> Result<Option<Vec<u8>>, NvmError> {
    let Some(record) = CommitRecord::decode(record) else {
        return Ok(None);
    };
    if record.body_len < BODY_HEADER_LEN || record.body_len > layout.journal_len() {
        return Ok(None);
    }
    let mut body = vec![0u8; record.body_len];
    nvm.read(JOURNAL_OFFSET, &mut body)?;
    if crypto::sha256(&body).0 != record.body_hash {
        return Ok(None);
    }
    if !body_is_well_formed(&body, layout, record.epoch) {
        return Ok(None);
    }
    Ok(Some(body))
}

/// The commit record: the single place where a commit becomes decided.
struct CommitRecord {
    epoch: u64,
    body_len: usize,
    body_hash: [u8; 32],
}

impl CommitRecord {
    fn encode(&self) -> [u8; RECORD_LEN] {
        let mut r = [0u8; RECORD_LEN];
        r[0..4].copy_from_slice(&COMMIT_MAGIC);
        r[4..12].copy_from_slice(&self.epoch.to_le_bytes());
        // Invariant: body_len ≤ journal_len ≤ MAX_IMAGE_CAPACITY + 36 < u32::MAX.
        r[12..16].copy_from_slice(&(self.body_len as u32).to_le_bytes());
        r[16..48].copy_from_slice(&self.body_hash);
        let crc = crc32(&r[..RECORD_CRC_AT]);
        r[RECORD_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
        r
    }

    fn decode(r: &[u8; RECORD_LEN]) -> Option<Self> {
        if r[0..4] != COMMIT_MAGIC || crc32(&r[..RECORD_CRC_AT]) != le_u32(&r[RECORD_CRC_AT..]) {
            return None;
        }
        let mut body_hash = [0u8; 32];
        body_hash.copy_from_slice(&r[16..48]);
        Some(CommitRecord {
            epoch: le_u64(&r[4..12]),
            body_len: le_u32(&r[12..16]) as usize,
            body_hash,
        })
    }
}

fn encode_header(capacity: usize) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&HEADER_MAGIC);
    h[4..6].copy_from_slice(&LAYOUT_VERSION.to_le_bytes());
    // Invariant: capacity ≤ MAX_IMAGE_CAPACITY < u32::MAX (checked by format).
    h[8..12].copy_from_slice(&(capacity as u32).to_le_bytes());
    let crc = crc32(&h[..HEADER_CRC_AT]);
    h[HEADER_CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    h
}

fn read_header<N: Nvm>(nvm: &mut N) -> Result<Layout, StoreError> {
    if nvm.len() < HEADER_LEN {
        return Err(StoreError::NvmTooSmall {
            needed: HEADER_LEN,
            size: nvm.len(),
        });
    }
    let mut h = [0u8; HEADER_LEN];
    nvm.read(0, &mut h)?;
    if h[0..4] != HEADER_MAGIC {
        return Err(StoreError::NotFormatted {
            found: [h[0], h[1], h[2], h[3]],
        });
    }
    let stored = le_u32(&h[HEADER_CRC_AT..]);
    let computed = crc32(&h[..HEADER_CRC_AT]);
    if stored != computed {
        return Err(StoreError::HeaderCorrupt { stored, computed });
    }
    let version = u16::from_le_bytes([h[4], h[5]]);
    if version != LAYOUT_VERSION || h[6..8] != [0, 0] {
        return Err(StoreError::UnsupportedLayout {
            found: version,
            supported: LAYOUT_VERSION,
        });
    }
    let capacity = le_u32(&h[8..12]) as usize;
    if capacity > MAX_IMAGE_CAPACITY {
        return Err(StoreError::CapacityTooLarge {
            capacity,
            max: MAX_IMAGE_CAPACITY,
        });
    }
    let layout = Layout { capacity };
    if nvm.len() < layout.nvm_size() {
        return Err(StoreError::NvmTooSmall {
            needed: layout.nvm_size(),
            size: nvm.len(),
        });
    }
    Ok(layout)
}

fn data_header(epoch: u64, len: usize) -> [u8; DATA_HEADER_LEN] {
    let mut h = [0u8; DATA_HEADER_LEN];
    h[0..8].copy_from_slice(&epoch.to_le_bytes());
    // Invariant: callers pass len ≤ capacity ≤ MAX_IMAGE_CAPACITY < u32::MAX.
    h[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

fn decode_data_header(h: &[u8; DATA_HEADER_LEN]) -> (u64, usize) {
    (le_u64(&h[0..8]), le_u32(&h[8..12]) as usize)
}

/// The byte ranges of `new` that differ from `old` (bytes beyond `old`'s end always count as
/// changed: NVM there holds stale data), with runs separated by fewer than [`MERGE_GAP`]
/// unchanged bytes merged.
///
/// Bound: runs r₁…rₙ are separated by ≥ MERGE_GAP bytes, so Σ|rᵢ| + MERGE_GAP·(n−1) ≤ |new|,
/// and a body of n records takes BODY_HEADER_LEN + Σ(REDO_HEADER_LEN + |rᵢ|) ≤
/// BODY_HEADER_LEN + REDO_HEADER_LEN + |new| ≤ journal_len.
fn changed_runs(old: &[u8], new: &[u8]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (i, &byte) in new.iter().enumerate() {
        if old.get(i) == Some(&byte) {
            continue;
        }
        match runs.last_mut() {
            Some(run) if i - run.end < MERGE_GAP => run.end = i + 1,
            _ => runs.push(i..i + 1),
        }
    }
    runs
}

fn encode_body(epoch: u64, new_len: usize, runs: &[Range<usize>], region: &[u8]) -> Vec<u8> {
    let size = BODY_HEADER_LEN
        + runs
            .iter()
            .map(|r| REDO_HEADER_LEN + r.len())
            .sum::<usize>();
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(&epoch.to_le_bytes());
    // Invariant (all three casts): lengths and offsets are ≤ the data region, < u32::MAX.
    body.extend_from_slice(&(new_len as u32).to_le_bytes());
    body.extend_from_slice(&(runs.len() as u32).to_le_bytes());
    for run in runs {
        body.extend_from_slice(&(run.start as u32).to_le_bytes());
        body.extend_from_slice(&(run.len() as u32).to_le_bytes());
        body.extend_from_slice(&region[run.clone()]);
    }
    body
}

/// Whether `body` parses exactly (no trailing bytes), names `epoch`, and every record lies in the
/// data region. Checked before applying, so a body that matches its hash by construction but not
/// by this layout (garbage NVM) is discarded instead of written out of bounds.
fn body_is_well_formed(body: &[u8], layout: Layout, epoch: u64) -> bool {
    if body.len() < BODY_HEADER_LEN
        || le_u64(&body[0..8]) != epoch
        || le_u32(&body[8..12]) as usize > layout.capacity
    {
        return false;
    }
    let count = le_u32(&body[12..16]) as usize;
    let mut at = BODY_HEADER_LEN;
    for _ in 0..count {
        let Some(head) = body.get(at..at + REDO_HEADER_LEN) else {
            return false;
        };
        let offset = le_u32(&head[0..4]) as usize;
        let len = le_u32(&head[4..8]) as usize;
        let in_region = offset
            .checked_add(len)
            .is_some_and(|end| end <= layout.data_region_len());
        // `head` exists, so at + REDO_HEADER_LEN ≤ body.len().
        if !in_region || body.len() - at - REDO_HEADER_LEN < len {
            return false;
        }
        at += REDO_HEADER_LEN + len;
    }
    at == body.len()
}

/// The (data-region offset, new bytes) records of a body.
///
/// Invariant: `body` passed [`body_is_well_formed`], so every slice below is in bounds.
fn redo_records(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let count = le_u32(&body[12..16]) as usize;
    let mut at = BODY_HEADER_LEN;
    (0..count).map(move |_| {
        let offset = le_u32(&body[at..at + 4]) as usize;
        let len = le_u32(&body[at + 4..at + 8]) as usize;
        let bytes = &body[at + REDO_HEADER_LEN..at + REDO_HEADER_LEN + len];
        at += REDO_HEADER_LEN + len;
        (offset, bytes)
    })
}

fn le_u32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests;
