//! Exhaustive tear tests of the store (design `transfer-protocol.md` §5.2 T2, invariants 7–8):
//! every write, byte boundary and weak-byte mode of a commit, each followed by every fault of
//! the recovery, must leave exactly the old or the new image — and the same one on two boots in
//! a row. Plus the ablation that proves the harness sees a recovery without the stabilise step.
//!
//! Run with `--nocapture` to see the case counts (recorded in `docs/card-store.md`).

use card::nvm::{MemNvm, Nvm};
use card::store::{RecoveryMode, Store};
use crypto::{InsecureSeededRng, Rng};
use testkit::fault::FaultNvm;
use testkit::tear::{
    exhaust, FaultKind, OnFailure, TearCase, TearOptions, TearProblem, TearReport,
};

const CAPACITY: usize = 200;

type Observation = Result<Vec<u8>, String>;

struct Seeded(InsecureSeededRng);

impl Seeded {
    fn new(seed: u64) -> Self {
        Seeded(InsecureSeededRng::insecure_seeded_for_tests(seed))
    }
    fn below(&mut self, n: usize) -> usize {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        (u64::from_le_bytes(b) % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.0.fill(&mut v);
        v
    }
    /// Random bytes of a random length in `0..=max`.
    fn bytes_upto(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        self.bytes(len)
    }
}

/// NVM bytes of a store holding `old`, with a stale, cleared commit of `history` before it in
/// the journal and commit-record slot (as on a card that has been used).
fn nvm_holding(history: &[u8], old: &[u8]) -> Vec<u8> {
    let mut store = Store::format(
        MemNvm::new(Store::<MemNvm>::nvm_size_for(CAPACITY)),
        CAPACITY,
    )
    .expect("format");
    store.commit(history).expect("history commit");
    store.commit(old).expect("old commit");
    store.into_nvm().into_bytes()
}

fn observe_with(mode: RecoveryMode) -> impl Fn(FaultNvm) -> Observation {
    move |nvm| {
        Store::open_with_recovery_mode(nvm, mode)
            .map(|s| s.image().to_vec())
            .map_err(|e| e.to_string())
    }
}

fn commit_command(new: Vec<u8>, mode: RecoveryMode) -> impl Fn(FaultNvm) {
    move |nvm| {
        if let Ok(mut store) = Store::open_with_recovery_mode(nvm, mode) {
            let _ = store.commit(&new);
        }
    }
}

/// Exhausts one commit `old` → `new` with the real (stabilising) recovery.
fn exhaust_commit(history: &[u8], old: &[u8], new: &[u8]) -> TearReport {
    let initial = nvm_holding(history, old);
    let mode = RecoveryMode::Stabilise;
    exhaust(
        &initial,
        commit_command(new.to_vec(), mode),
        observe_with(mode),
        &Ok(old.to_vec()),
        &Ok(new.to_vec()),
        TearOptions::default(),
    )
    .unwrap_or_else(|failure| panic!("{} → {} bytes: {failure}", old.len(), new.len()))
}

#[derive(Default)]
struct Totals {
    commits: u64,
    writes: u64,
    single: u64,
    double: u64,
    pre: u64,
    post: u64,
}

impl Totals {
    fn add(&mut self, name: &str, report: &TearReport) {
        println!("store tear: {name}: {report}");
        self.commits += 1;
        self.writes += report.command_writes as u64;
        self.single += report.single_fault_cases;
        self.double += report.double_fault_cases;
        self.pre += report.pre_outcomes;
        self.post += report.post_outcomes;
    }

    fn print(&self, what: &str) {
        println!(
            "store tear: {what}: {} commits, {} writes, {} cases ({} single-fault, {} double-fault), \
             {} pre, {} post",
            self.commits,
            self.writes,
            self.single + self.double,
            self.single,
            self.double,
            self.pre,
            self.post
        );
    }
}

#[test]
fn every_tear_of_shaped_commits_leaves_old_or_new() {
    let mut rng = Seeded::new(1);
    let history = rng.bytes(137);
    let full = rng.bytes(CAPACITY);
    let other_full = rng.bytes(CAPACITY);
    let mid = rng.bytes(100);
    let mut scattered = full.clone();
    for _ in 0..6 {
        let at = rng.below(CAPACITY);
        scattered[at] ^= 0x5A;
    }
    let mut last_byte = full.clone();
    last_byte[CAPACITY - 1] ^= 1;
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("empty → 1 byte", vec![], vec![0x42]),
        ("empty → full (200)", vec![], full.clone()),
        ("full → empty", full.clone(), vec![]),
        ("growth 100 → 200 (same prefix)", mid.clone(), {
            let mut v = mid.clone();
            v.extend_from_slice(&full[100..]);
            v
        }),
        (
            "shrink 200 → 100 (same prefix)",
            full.clone(),
            full[..100].to_vec(),
        ),
        ("full rewrite 200 → 200", full.clone(), other_full.clone()),
        ("6 scattered bytes of 200", full.clone(), scattered),
        ("last byte of 200", full.clone(), last_byte),
        (
            "same length, all 0xFF (= erased) → 0x00",
            vec![0xFF; 64],
            vec![0x00; 64],
        ),
    ];
    let mut totals = Totals::default();
    for (name, old, new) in &cases {
        let report = exhaust_commit(&history, old, new);
        assert!(report.single_fault_cases > 0, "{name}: nothing was torn");
        assert!(
            report.post_outcomes > 0 && report.pre_outcomes > 0,
            "{name}"
        );
        totals.add(name, &report);
    }
    totals.print("shaped commits");
}

#[test]
fn every_tear_of_seeded_random_commits_leaves_old_or_new() {
    let mut rng = Seeded::new(2);
    let mut totals = Totals::default();
    for i in 0..24 {
        let history = rng.bytes_upto(CAPACITY);
        let old = rng.bytes_upto(CAPACITY);
        // Mix unrelated images with edits of the old one, so both many-record and one-record
        // bodies occur.
        let new = match i % 3 {
            0 => rng.bytes_upto(CAPACITY),
            1 => {
                let mut new = old.clone();
                new.resize(rng.below(CAPACITY + 1), 0xA5);
                for _ in 0..rng.below(12) {
                    if !new.is_empty() {
                        let at = rng.below(new.len());
                        new[at] = new[at].wrapping_add(1 + rng.below(255) as u8);
                    }
                }
                new
            }
            _ => {
                let mut new = old.clone();
                let keep = rng.below(old.len() + 1);
                new.truncate(keep);
                new.extend(rng.bytes_upto(CAPACITY - keep));
                new
            }
        };
        if new == old {
            continue;
        }
        let report = exhaust_commit(&history, &old, &new);
        totals.add(
            &format!("seed 2 #{i}: {} → {}", old.len(), new.len()),
            &report,
        );
    }
    assert!(totals.commits >= 20);
    totals.print("seeded random commits");
}

#[test]
fn an_unchanged_image_is_a_command_without_writes() {
    let image = Seeded::new(3).bytes(50);
    let report = exhaust_commit(b"history", &image, &image);
    assert_eq!(report.command_writes, 0);
    assert_eq!(report.cases, 0);
}

#[test]
fn recovery_without_stabilise_is_caught_by_the_harness() {
    // The ablation gate (§3.11): the same commit, with recovery that applies a valid-looking
    // record without re-writing it first. A weak commit-record byte reads "valid" in the first
    // recovery, which tears mid-apply; the next recovery reads "invalid" and leaves the image
    // half-written. The harness must see it.
    let mut rng = Seeded::new(4);
    let history = rng.bytes(90);
    let old = rng.bytes(64);
    let new = rng.bytes(64);
    let initial = nvm_holding(&history, &old);
    let mode = RecoveryMode::NoStabiliseForAblation;
    let failure = exhaust(
        &initial,
        commit_command(new.clone(), mode),
        observe_with(mode),
        &Ok(old.clone()),
        &Ok(new.clone()),
        TearOptions {
            on_failure: OnFailure::CountAll,
            ..TearOptions::default()
        },
    )
    .expect_err("the harness must find the missing stabilise step");
    println!(
        "store tear: ablation (no stabilise): {} of {} cases fail; first: {failure}",
        failure.failed_cases, failure.report.cases
    );
    assert!(matches!(
        failure.problem,
        TearProblem::NeitherPreNorPost | TearProblem::Unstable
    ));
    // It takes a weak byte in the commit record (write #1) and a second fault in recovery.
    let TearCase::Faulted { first, second } = &failure.case else {
        panic!("unexpected case {:?}", failure.case)
    };
    assert_eq!(first.write, 1);
    assert!(matches!(first.kind, FaultKind::Tear { .. }));
    assert!(second.is_some());

    // The same commit with the stabilise step passes, over the same command faults (its
    // recoveries write more: the record re-write adds double faults).
    let report = exhaust_commit(&history, &old, &new);
    println!("store tear: same commit, stabilising: {report}");
    assert_eq!(report.single_fault_cases, failure.report.single_fault_cases);
    assert!(report.double_fault_cases > failure.report.double_fault_cases);
}

#[test]
fn a_commit_on_the_fault_nvm_matches_the_store_stats() {
    // The harness counts writes through the trace; the store reports them in its stats.
    let old = vec![1u8; 40];
    let mut new = old.clone();
    new[3] = 9;
    new[30] = 9;
    let nvm = FaultNvm::from_bytes(&nvm_holding(b"h", &old));
    let probe = nvm.clone();
    let mut store = Store::open(nvm).unwrap();
    assert_eq!(probe.write_count(), 0);
    let stats = store.commit(&new).unwrap();
    let nvm = store.into_nvm();
    assert_eq!(nvm.write_count(), stats.nvm_writes);
    assert_eq!(nvm.sync_count(), stats.nvm_syncs);
    // Epoch (region byte 0), image byte 3 (region 15) and image byte 30 (region 42).
    assert_eq!(stats.redo_records, 3);
    assert_eq!(nvm.len(), Store::<FaultNvm>::nvm_size_for(CAPACITY));
}

#[test]
fn a_card_sized_store_tears_cleanly_too() {
    // The card's default layout (96 KiB of image capacity, ~192 KiB of NVM) with a 2 KiB state:
    // offsets beyond 64 KiB, and a device large enough that copying it per case would show.
    const CARD_CAPACITY: usize = 96 * 1024;
    let mut rng = Seeded::new(5);
    let old = rng.bytes(2048);
    let mut new = old.clone();
    for at in [5, 700, 2047] {
        new[at] ^= 0xC3;
    }
    new.extend_from_slice(b"sixteen more byt");
    let mut store = Store::format(
        MemNvm::new(Store::<MemNvm>::nvm_size_for(CARD_CAPACITY)),
        CARD_CAPACITY,
    )
    .expect("format");
    store.commit(&rng.bytes(3000)).expect("history commit");
    store.commit(&old).expect("old commit");
    let initial = store.into_nvm().into_bytes();
    let mode = RecoveryMode::Stabilise;
    let report = exhaust(
        &initial,
        commit_command(new.clone(), mode),
        observe_with(mode),
        &Ok(old),
        &Ok(new),
        TearOptions::default(),
    )
    .unwrap_or_else(|failure| panic!("{failure}"));
    println!("store tear: card-sized store (96 KiB capacity, 2 KiB image): {report}");
    assert_eq!(report.command_writes, 3 + 4);
}
