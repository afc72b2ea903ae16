//! Unit tests of the store on a plain in-memory NVM: round trips, the layout arithmetic, error
//! paths, and robustness of recovery against arbitrary NVM contents. The exhaustive tear tests
//! live in `tests/store_tear.rs` (they need `testkit`, which links the card crate itself).

use super::*;
use crate::nvm::MemNvm;
use proptest::prelude::*;

fn fresh(capacity: usize) -> Store<MemNvm> {
    Store::format(MemNvm::new(nvm_size_for(capacity)), capacity).unwrap()
}

fn reopen(store: Store<MemNvm>) -> Store<MemNvm> {
    Store::open(store.into_nvm()).unwrap()
}

/// Counts writes and syncs, and loses power after `fail_at_write` writes (if set).
struct CountingNvm {
    inner: MemNvm,
    writes: usize,
    syncs: usize,
    fail_at_write: Option<usize>,
}

impl CountingNvm {
    fn new(inner: MemNvm) -> Self {
        CountingNvm {
            inner,
            writes: 0,
            syncs: 0,
            fail_at_write: None,
        }
    }
}

impl Nvm for CountingNvm {
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn read(&mut self, addr: usize, buf: &mut [u8]) -> Result<(), NvmError> {
        self.inner.read(addr, buf)
    }
    fn write(&mut self, addr: usize, data: &[u8]) -> Result<(), NvmError> {
        if self.fail_at_write == Some(self.writes) {
            return Err(NvmError::PowerLost);
        }
        self.writes += 1;
        self.inner.write(addr, data)
    }
    fn sync(&mut self) -> Result<(), NvmError> {
        self.syncs += 1;
        self.inner.sync()
    }
}

#[test]
fn format_gives_an_empty_image_that_reopens() {
    let store = fresh(64);
    assert_eq!(store.image(), b"");
    assert_eq!(store.image_capacity(), 64);
    assert_eq!(store.epoch(), 0);
    let store = reopen(store);
    assert_eq!(store.image(), b"");
    assert_eq!(store.epoch(), 0);
}

#[test]
fn commits_round_trip_through_reopen() {
    let mut store = fresh(100);
    let images: [&[u8]; 6] = [
        b"hello",
        b"hello, world",
        b"jello, world",
        b"",
        &[0xFF; 100],
        b"short again",
    ];
    for (i, image) in images.iter().enumerate() {
        let stats = store.commit(image).unwrap();
        assert_eq!(stats.epoch, i as u64 + 1);
        assert_eq!(store.image(), *image);
        store = reopen(store);
        assert_eq!(store.image(), *image, "after commit {i}");
        assert_eq!(store.epoch(), i as u64 + 1);
    }
}

#[test]
fn layout_arithmetic_agrees() {
    for capacity in [0, 1, 7, 100, 4096, MAX_IMAGE_CAPACITY] {
        let layout = Layout { capacity };
        assert_eq!(nvm_size_for(capacity), layout.nvm_size(), "{capacity}");
        assert_eq!(Store::<MemNvm>::nvm_size_for(capacity), layout.nvm_size());
    }
    // The documented layout (docs/card-store.md) for capacity C: journal at 68, data at C + 104,
    // total 2C + 116.
    let layout = Layout { capacity: 200 };
    assert_eq!(JOURNAL_OFFSET, 68);
    assert_eq!(layout.data_offset(), 304);
    assert_eq!(layout.nvm_size(), 516);
    assert_eq!(nvm_size_for(usize::MAX), usize::MAX);
}

#[test]
fn an_unchanged_image_writes_nothing() {
    let mut store = Store::format(CountingNvm::new(MemNvm::new(nvm_size_for(32))), 32).unwrap();
    store.commit(b"same").unwrap();
    let (writes, syncs) = (store.nvm_mut().writes, store.nvm_mut().syncs);
    let stats = store.commit(b"same").unwrap();
    assert_eq!(
        stats,
        CommitStats {
            epoch: 1,
            ..CommitStats::default()
        }
    );
    assert_eq!(
        (store.nvm_mut().writes, store.nvm_mut().syncs),
        (writes, syncs)
    );
}

#[test]
fn commit_writes_body_record_records_and_clear_with_four_syncs() {
    let mut store = Store::format(CountingNvm::new(MemNvm::new(nvm_size_for(64))), 64).unwrap();
    store.commit(&[7u8; 64]).unwrap();
    let before = (store.nvm_mut().writes, store.nvm_mut().syncs);
    // Data region: epoch 0..8 (only byte 0 changes, 1 → 2), length 8..12, image from 12.
    // Change image bytes 2 and 40: region bytes 0, 14 and 52, all ≥ 8 apart → 3 records.
    // (Image byte 0 instead of 2 would be 11 bytes from the epoch: still separate.)
    let mut new = [7u8; 64];
    new[2] = 1;
    new[40] = 2;
    let stats = store.commit(&new).unwrap();
    assert_eq!(stats.redo_records, 3);
    assert_eq!(stats.body_len, BODY_HEADER_LEN + 3 * (REDO_HEADER_LEN + 1));
    assert_eq!(stats.nvm_writes, 6);
    assert_eq!(stats.nvm_syncs, 4);
    let nvm = store.nvm_mut();
    assert_eq!((nvm.writes - before.0, nvm.syncs - before.1), (6, 4));
    // Open after a clean commit writes nothing: the commit record is clear.
    let mut nvm = store.into_nvm();
    let writes = nvm.writes;
    let mut store = Store::open(&mut nvm).unwrap();
    assert_eq!(store.image(), new);
    assert_eq!(store.nvm_mut().writes, writes);
    // A change 7 unchanged bytes after another merges: image bytes 2 and 10 → one record.
    let mut merged = new;
    merged[2] = 3;
    merged[10] = 3;
    assert_eq!(store.commit(&merged).unwrap().redo_records, 2);
    assert_eq!(nvm.writes, writes + 5);
}

#[test]
fn changed_runs_merge_gaps_below_eight() {
    let old = [0u8; 40];
    let mut new = old;
    new[2] = 1;
    new[9] = 1; // gap 6 → merged
    new[18] = 1; // gap 8 → separate
    assert_eq!(changed_runs(&old, &new), vec![2..10, 18..19]);
    // Growth: bytes beyond the old end always count as changed, even if they look equal.
    assert_eq!(changed_runs(&[5, 5], &[5, 5, 0, 0]), vec![2..4]);
    // Shrink: nothing beyond the new end is written.
    assert_eq!(
        changed_runs(&[5, 5, 6], &[5, 5]),
        Vec::<Range<usize>>::new()
    );
}

#[test]
fn the_worst_case_body_fits_the_journal() {
    // Alternate one changed byte and MERGE_GAP unchanged ones: the most records per byte.
    for capacity in [0, 1, 9, 10, 63, 200] {
        let layout = Layout { capacity };
        let region = layout.data_region_len();
        let old = vec![0u8; region];
        let new: Vec<u8> = (0..region)
            .map(|i| u8::from(i % (MERGE_GAP + 1) == 0))
            .collect();
        let runs = changed_runs(&old, &new);
        let body = encode_body(1, capacity, &runs, &new);
        assert!(
            body.len() <= layout.journal_len(),
            "capacity {capacity}: body {} > journal {}",
            body.len(),
            layout.journal_len()
        );
        // And a full rewrite from nothing (growth from an empty region).
        let body = encode_body(1, capacity, &changed_runs(&[], &new), &new);
        assert!(body.len() <= layout.journal_len());
    }
}

#[test]
fn too_large_images_are_refused_without_writing() {
    let mut store = Store::format(CountingNvm::new(MemNvm::new(nvm_size_for(8))), 8).unwrap();
    let writes = store.nvm_mut().writes;
    assert_eq!(
        store.commit(&[0; 9]),
        Err(StoreError::ImageTooLarge {
            len: 9,
            capacity: 8
        })
    );
    assert_eq!(store.nvm_mut().writes, writes);
    // Still usable.
    store.commit(&[1; 8]).unwrap();
}

#[test]
fn an_nvm_failure_poisons_the_store_and_reopen_recovers() {
    let mut store = Store::format(CountingNvm::new(MemNvm::new(nvm_size_for(16))), 16).unwrap();
    store.commit(b"old").unwrap();
    // Fail the third write of the next commit: the first redo record (after body and record).
    let writes = store.nvm_mut().writes;
    store.nvm_mut().fail_at_write = Some(writes + 2);
    assert_eq!(
        store.commit(b"new image"),
        Err(StoreError::Nvm(NvmError::PowerLost))
    );
    assert_eq!(store.commit(b"other"), Err(StoreError::Poisoned));
    let mut nvm = store.into_nvm();
    nvm.fail_at_write = None;
    // The commit record was written, so recovery rolls forward.
    let store = Store::open(nvm).unwrap();
    assert_eq!(store.image(), b"new image");
}

#[test]
fn an_exhausted_epoch_refuses_to_commit() {
    let mut bytes = fresh(8).into_nvm().into_bytes();
    let at = Layout { capacity: 8 }.data_offset();
    bytes[at..at + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut store = Store::open(MemNvm::from_bytes(bytes)).unwrap();
    assert_eq!(store.epoch(), u64::MAX);
    assert_eq!(
        store.commit(b"x"),
        Err(StoreError::EpochExhausted { epoch: u64::MAX })
    );
    // Nothing was written, and an unchanged image is still fine.
    assert_eq!(
        store.commit(b""),
        Ok(CommitStats {
            epoch: u64::MAX,
            ..CommitStats::default()
        })
    );
}

#[test]
fn format_refuses_small_nvms_and_huge_capacities() {
    assert_eq!(
        Store::format(MemNvm::new(10), 0).unwrap_err(),
        StoreError::NvmTooSmall {
            needed: nvm_size_for(0),
            size: 10
        }
    );
    assert_eq!(
        Store::format(MemNvm::new(10), MAX_IMAGE_CAPACITY + 1).unwrap_err(),
        StoreError::CapacityTooLarge {
            capacity: MAX_IMAGE_CAPACITY + 1,
            max: MAX_IMAGE_CAPACITY
        }
    );
}

#[test]
fn open_reports_what_is_wrong_with_the_header() {
    assert_eq!(
        Store::open(MemNvm::new(4)).unwrap_err(),
        StoreError::NvmTooSmall {
            needed: HEADER_LEN,
            size: 4
        }
    );
    assert_eq!(
        Store::open(MemNvm::new(600)).unwrap_err(),
        StoreError::NotFormatted { found: [0xFF; 4] }
    );

    let bytes = fresh(16).into_nvm().into_bytes();
    let mut corrupt = bytes.clone();
    corrupt[9] ^= 1;
    assert!(matches!(
        Store::open(MemNvm::from_bytes(corrupt)).unwrap_err(),
        StoreError::HeaderCorrupt { .. }
    ));

    let mut future = bytes.clone();
    future[4] = 2;
    let crc = crc32(&future[..HEADER_CRC_AT]);
    future[HEADER_CRC_AT..HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        Store::open(MemNvm::from_bytes(future)).unwrap_err(),
        StoreError::UnsupportedLayout {
            found: 2,
            supported: LAYOUT_VERSION
        }
    );

    let truncated = bytes[..bytes.len() - 1].to_vec();
    assert_eq!(
        Store::open(MemNvm::from_bytes(truncated)).unwrap_err(),
        StoreError::NvmTooSmall {
            needed: nvm_size_for(16),
            size: nvm_size_for(16) - 1
        }
    );

    let mut long = bytes;
    let at = Layout { capacity: 16 }.data_offset() + 8;
    long[at..at + 4].copy_from_slice(&17u32.to_le_bytes());
    assert_eq!(
        Store::open(MemNvm::from_bytes(long)).unwrap_err(),
        StoreError::DataCorrupt {
            len: 17,
            capacity: 16
        }
    );
}

#[test]
fn a_torn_format_is_not_a_store() {
    // Power lost after each write of format in turn.
    for fail_at in 0..4 {
        let mut nvm = CountingNvm::new(fresh(8).into_nvm());
        nvm.fail_at_write = Some(fail_at);
        assert!(Store::format(&mut nvm, 8).is_err());
        nvm.fail_at_write = None;
        let result = Store::open(&mut nvm).map(|s| s.image().to_vec());
        if fail_at == 0 {
            // Nothing was written: the old (empty) store is intact.
            assert_eq!(result, Ok(Vec::new()));
        } else {
            assert!(matches!(result, Err(StoreError::NotFormatted { .. })));
        }
    }
}

#[test]
fn a_valid_record_with_an_out_of_layout_body_is_discarded() {
    // Hash and CRC are right, but the record addresses past the data region: recovery must
    // not write it (garbage NVM that is internally consistent).
    let mut store = fresh(16);
    store.commit(b"keep me").unwrap();
    let mut bytes = store.into_nvm().into_bytes();
    let layout = Layout { capacity: 16 };
    let mut body = Vec::new();
    body.extend_from_slice(&2u64.to_le_bytes());
    body.extend_from_slice(&3u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&(layout.data_region_len() as u32).to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.push(0xAA);
    bytes[JOURNAL_OFFSET..JOURNAL_OFFSET + body.len()].copy_from_slice(&body);
    let record = CommitRecord {
        epoch: 2,
        body_len: body.len(),
        body_hash: crypto::sha256(&body).0,
    }
    .encode();
    bytes[RECORD_OFFSET..RECORD_OFFSET + RECORD_LEN].copy_from_slice(&record);
    let store = Store::open(MemNvm::from_bytes(bytes)).unwrap();
    assert_eq!(store.image(), b"keep me");
    let bytes = store.into_nvm().into_bytes();
    assert_eq!(bytes[RECORD_OFFSET..RECORD_OFFSET + 4], CLEAR_MAGIC);
}

#[test]
fn a_decided_commit_is_rolled_forward_and_an_undecided_one_back() {
    let mut store = Store::format(CountingNvm::new(MemNvm::new(nvm_size_for(32))), 32).unwrap();
    store.commit(b"before").unwrap();
    let snapshot = store.nvm_mut().inner.clone();
    // Crash after body + record (2 writes): decided → forward.
    store.nvm_mut().fail_at_write = Some(store.nvm_mut().writes + 2);
    assert!(store.commit(b"after!!").is_err());
    assert_eq!(reopen_inner(store).image(), b"after!!");
    // Crash after the body only: undecided → back.
    let mut store = Store::open(CountingNvm::new(snapshot)).unwrap();
    store.nvm_mut().fail_at_write = Some(1);
    assert!(store.commit(b"after!!").is_err());
    assert_eq!(reopen_inner(store).image(), b"before");
}

fn reopen_inner(store: Store<CountingNvm>) -> Store<MemNvm> {
    Store::open(store.into_nvm().inner).unwrap()
}

/// A store image of `capacity` whose journal body and commit record are internally consistent
/// (right hash, right CRC) but otherwise arbitrary: reaches the body parser and the apply path.
fn consistent_garbage(capacity: usize, body: Vec<u8>, epoch: u64) -> Vec<u8> {
    let mut bytes = {
        let mut store = fresh(capacity);
        store.commit(&vec![0x5A; capacity / 2]).unwrap();
        store.into_nvm().into_bytes()
    };
    let layout = Layout { capacity };
    let body = &body[..body.len().min(layout.journal_len())];
    bytes[JOURNAL_OFFSET..JOURNAL_OFFSET + body.len()].copy_from_slice(body);
    let record = CommitRecord {
        epoch,
        body_len: body.len(),
        body_hash: crypto::sha256(body).0,
    }
    .encode();
    bytes[RECORD_OFFSET..RECORD_OFFSET + RECORD_LEN].copy_from_slice(&record);
    bytes
}

/// Opening must not panic; if it succeeds, the image fits and a second open agrees.
fn open_is_sane(bytes: Vec<u8>) {
    if let Ok(store) = Store::open(MemNvm::from_bytes(bytes)) {
        assert!(store.image().len() <= store.image_capacity());
        let image = store.image().to_vec();
        let again = Store::open(store.into_nvm()).unwrap();
        assert_eq!(again.image(), image.as_slice());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn open_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        open_is_sane(bytes);
    }

    #[test]
    fn open_never_panics_on_a_valid_header_over_garbage(
        capacity in 0usize..64,
        garbage in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = fresh(capacity).into_nvm().into_bytes();
        let n = garbage.len().min(bytes.len() - HEADER_LEN);
        bytes[HEADER_LEN..HEADER_LEN + n].copy_from_slice(&garbage[..n]);
        open_is_sane(bytes);
    }

    #[test]
    fn open_never_panics_on_corrupted_stores(
        capacity in 0usize..64,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut store = fresh(capacity);
        store.commit(&vec![3; capacity]).unwrap();
        let mut bytes = store.into_nvm().into_bytes();
        let len = bytes.len();
        for (at, x) in flips {
            bytes[at % len] ^= x;
        }
        open_is_sane(bytes);
    }

    #[test]
    fn open_never_panics_on_consistent_garbage_bodies(
        capacity in 0usize..64,
        epoch in any::<u64>(),
        count in 0u32..4,
        records in proptest::collection::vec((0u32..100, 0u32..100, proptest::collection::vec(any::<u8>(), 0..40)), 0..4),
        tail in proptest::collection::vec(any::<u8>(), 0..8),
        new_len in 0u32..80,
    ) {
        let mut body = Vec::new();
        body.extend_from_slice(&epoch.to_le_bytes());
        body.extend_from_slice(&new_len.to_le_bytes());
        body.extend_from_slice(&count.to_le_bytes());
        for (offset, len, bytes) in records {
            body.extend_from_slice(&offset.to_le_bytes());
            body.extend_from_slice(&len.to_le_bytes());
            body.extend_from_slice(&bytes);
        }
        body.extend_from_slice(&tail);
        open_is_sane(consistent_garbage(capacity, body, epoch));
    }

    #[test]
    fn commit_then_open_returns_the_image(
        images in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..48), 1..6),
    ) {
        let mut store = fresh(48);
        for image in &images {
            store.commit(image).unwrap();
            store = reopen(store);
            prop_assert_eq!(store.image(), image.as_slice());
        }
    }
}
