//! The card's persisted state format (STYLE rule 4: "a versioned format with golden files").
//!
//! Golden images in `tests/golden/state-v2-<name>.bin` pin format version 2 byte for byte: the
//! same deterministic states must encode to exactly those bytes, and the golden bytes must
//! decode and re-encode unchanged (cards in the field hold such images). The version 1 images
//! (`state-v1-<name>.bin`, written by issues 1–3) must still decode, to the same state with no
//! kept receipts, and boot. The decoder must refuse everything that is not exactly one
//! well-formed image, and never panic.
//!
//! A missing or different golden file fails the test. Rewrite the current version's files only
//! for an intended format change — which also bumps `STATE_FORMAT_VERSION` and decides what
//! happens to older images — with:
//!
//! ```text
//! CARDWRIGHT_BLESS=1 cargo test -p card --test state_format
//! ```

use std::path::PathBuf;

use card::nvm::MemNvm;
use card::state::{
    CardKeyEntry, Item, KeyVersion, PinRecord, Registration, SkEntry, StateError, KEPT_RECEIPTS,
    OLDEST_READABLE_FORMAT_VERSION, STATE_FORMAT_VERSION,
};
use card::store::Store;
use card::{Card, LifeCycle, PersistentState};
use crypto::{sha256, Digest, SigningKey, SymmetricKey};
use pki::{CardId, PartyId, UnixTime};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngSeed, TestRunner};
use protocol::{Challenge, ItemId, Operation, Policy, Receipt, ReceiptResult};
use testkit::world::{Path, TestClient, World};

/// Seed of the world the golden states are built in. Changing it changes every golden file.
const GOLDEN_SEED: u64 = 0x57A7_E001;
const BLESS_VAR: &str = "CARDWRIGHT_BLESS";

/// The names of the golden states (the same in every format version).
const GOLDEN_NAMES: [&str; 4] = [
    "manufactured",
    "personalised",
    "registered-two-items",
    "tampered-by-hand",
];

/// The golden states, by name: `(name, state image)`.
fn golden_states() -> Vec<(&'static str, Vec<u8>)> {
    let w = World::new(GOLDEN_SEED);
    vec![
        ("manufactured", w.blank_card().image().to_vec()),
        ("personalised", image_of(w.personalised())),
        ("registered-two-items", registered_two_items(&w)),
        ("tampered-by-hand", tampered_by_hand().encode()),
    ]
}

fn image_of(c: TestClient) -> Vec<u8> {
    c.into_channel().into_card().image().to_vec()
}

/// A registered card holding a revocation list and two items stored on two consent paths, one
/// of them with a policy.
fn registered_two_items(w: &World) -> Vec<u8> {
    let (mut c, rc) = w.registered();
    c.load_crl(&w.pki.issuer_registrar_crl(&[]))
        .expect("the Issuer Registrar's CRL loads");
    let mut store = |item: &[u8], version: u32, data: &[u8], policy: Policy, path: Path| {
        let sdi = w.sdi_with(
            Operation::Store,
            item,
            version,
            data,
            &w.pki.provider.id,
            policy,
        );
        let challenge = Challenge(c.get_challenge().expect("challenge"));
        let sa = w.sa(path, &sdi, challenge, &rc);
        c.store(&sa, None, data).expect("store");
    };
    store(
        b"ticket-1",
        1,
        b"row 7 seat 12",
        Policy::NONE,
        Path::ViaIssuer,
    );
    store(
        b"badge-2",
        3,
        b"staff badge, level 2",
        Policy::NOT_DELETABLE,
        Path::ViaProvider,
    );
    image_of(c)
}

/// A receipt built by hand (a state image holds receipt bodies, not signatures).
fn hand_receipt(counter: u64, result: ReceiptResult) -> Receipt {
    Receipt {
        card_id: CardId(*b"HANDMADE-CARD-01"),
        counter,
        operation: match result {
            ReceiptResult::Stored => Operation::Store,
            ReceiptResult::Deleted => Operation::Delete,
        },
        item_id: ItemId::new(b"a").expect("item id"),
        sdi_digest: Digest([0x51; 32]),
        authorization_digest: Digest([counter as u8; 32]),
        result,
        listing_digest: Digest([0x1D; 32]),
    }
}

/// A state built field by field, independent of the test world: what a tampered card keeps
/// (terminated, keys erased, PIN blocked) with every list non-empty.
fn tampered_by_hand() -> PersistentState {
    let id = |s: &str| PartyId::new(s).expect("party id");
    PersistentState {
        life_cycle: LifeCycle::Terminated,
        receipt_counter: 0x0102_0304_0506_0708,
        time_floor: UnixTime(1_800_000_000),
        pin: Some(PinRecord {
            salt: [0xA5; 16],
            mac: [0x3C; 32],
            try_limit: 5,
            tries_left: 0,
        }),
        card_id: Some(CardId(*b"HANDMADE-CARD-01")),
        issuer_id: Some(id("issuer-9")),
        capacity: 70_000,
        sk: None,
        card_key: None,
        issuer_authenticator: b"authenticator".to_vec(),
        issuer_anchor: Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]),
        data_anchor: Some(Vec::new()),
        registration: Some(Registration {
            rc_der: vec![0x30, 0x00],
            irc_der: vec![0xFF; 300],
        }),
        crls: vec![vec![0x30, 0x01, 0x00], Vec::new()],
        items: vec![
            Item {
                item_id: ItemId::new(b"a").expect("item id"),
                version: 0,
                owner: id("provider-9"),
                policy: Policy::NONE,
                digest: sha256(b""),
                data: Vec::new(),
            },
            Item {
                item_id: ItemId::new(&[0xFF; 16]).expect("item id"),
                version: u32::MAX,
                owner: id("p"),
                policy: Policy::KNOWN,
                digest: Digest([0x77; 32]),
                data: vec![0xEE; 300],
            },
        ],
        receipts: vec![
            hand_receipt(0x0102_0304_0506_0707, ReceiptResult::Stored),
            hand_receipt(0x0102_0304_0506_0708, ReceiptResult::Deleted),
        ],
    }
}

fn golden_path(name: &str) -> PathBuf {
    golden_path_of_version(STATE_FORMAT_VERSION, name)
}

fn golden_path_of_version(version: u8, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("state-v{version}-{name}.bin"))
}

fn blessing() -> bool {
    std::env::var(BLESS_VAR).is_ok_and(|v| v == "1")
}

/// Every field of a state as text (keys as hex: these are test keys), to say which fields
/// differ when bytes do.
fn fields(s: &PersistentState) -> Vec<(&'static str, String)> {
    vec![
        ("life_cycle", format!("{:?}", s.life_cycle)),
        ("receipt_counter", s.receipt_counter.to_string()),
        ("time_floor", s.time_floor.0.to_string()),
        ("pin", format!("{:?}", s.pin)),
        ("card_id", format!("{:?}", s.card_id.map(|c| c.0))),
        ("issuer_id", format!("{:?}", s.issuer_id)),
        ("capacity", s.capacity.to_string()),
        (
            "sk",
            format!(
                "{:?}",
                s.sk.as_ref()
                    .map(|k| (k.version, hex::encode(k.key.expose_bytes())))
            ),
        ),
        (
            "card_key",
            format!(
                "{:?}",
                s.card_key
                    .as_ref()
                    .map(|k| (k.version, hex::encode(*k.key.to_scalar_bytes())))
            ),
        ),
        ("issuer_authenticator", hex::encode(&s.issuer_authenticator)),
        (
            "issuer_anchor",
            format!("{:?}", s.issuer_anchor.as_ref().map(hex::encode)),
        ),
        (
            "data_anchor",
            format!("{:?}", s.data_anchor.as_ref().map(hex::encode)),
        ),
        ("registration", format!("{:?}", s.registration)),
        ("crls", format!("{:?}", s.crls)),
        ("items", format!("{:?}", s.items)),
        ("receipts", format!("{:?}", s.receipts)),
    ]
}

fn differing_fields(a: &PersistentState, b: &PersistentState) -> Vec<&'static str> {
    fields(a)
        .into_iter()
        .zip(fields(b))
        .filter(|((_, x), (_, y))| x != y)
        .map(|((name, _), _)| name)
        .collect()
}

fn decode(bytes: &[u8]) -> PersistentState {
    PersistentState::decode(bytes).unwrap_or_else(|e| panic!("image does not decode: {e}"))
}

#[test]
fn the_format_version_is_pinned() {
    // A new version needs new golden files, and a decision about the older images that cards
    // already hold (today: version 1 is read, with no kept receipts, and rewritten as 2).
    assert_eq!(
        (OLDEST_READABLE_FORMAT_VERSION, STATE_FORMAT_VERSION),
        (1, 2),
        "state format version changed: add state-v{STATE_FORMAT_VERSION}-*.bin goldens \
         ({BLESS_VAR}=1) and decide how older images are read"
    );
    assert_eq!(KEPT_RECEIPTS, 8);
}

/// Cards in the field hold version 1 images: each still decodes, to the state the version 2
/// golden holds less its kept receipts (version 1 kept none), re-encodes as version 2, and
/// boots.
#[test]
fn version_1_images_are_still_read() {
    for name in GOLDEN_NAMES {
        let v1 = std::fs::read(golden_path_of_version(1, name))
            .unwrap_or_else(|e| panic!("state-v1-{name}.bin: {e}"));
        assert_eq!(v1[0], 1);
        let migrated = PersistentState::decode(&v1)
            .unwrap_or_else(|e| panic!("state-v1-{name}.bin no longer decodes: {e}"));
        assert!(migrated.receipts.is_empty(), "{name}");
        let mut expected =
            decode(&std::fs::read(golden_path(name)).unwrap_or_else(|e| panic!("v2 {name}: {e}")));
        expected.receipts.clear();
        assert_eq!(
            differing_fields(&migrated, &expected),
            Vec::<&str>::new(),
            "{name}: the version 1 image reads as the version 2 state without its receipts"
        );
        assert_eq!(migrated.encode(), expected.encode(), "{name}");
        assert_eq!(migrated.encode()[0], STATE_FORMAT_VERSION);
        // A version 1 image that carries the version 2 tail is refused, not misread.
        let mut with_tail = v1.clone();
        with_tail.push(0);
        assert!(PersistentState::decode(&with_tail).is_err(), "{name}");
    }
    // The registered version 1 image boots, and its next commit writes version 2.
    let v1 = std::fs::read(golden_path_of_version(1, "registered-two-items")).expect("v1");
    let capacity = 16 * 1024;
    let nvm = MemNvm::new(Store::<MemNvm>::nvm_size_for(capacity));
    let mut store = Store::format(nvm, capacity).expect("format a store");
    store.commit(&v1).expect("commit the v1 image");
    let card = Card::boot(store.into_nvm()).expect("boots from the v1 image");
    assert_eq!(card.image(), v1.as_slice());
    assert_eq!(card.info().items, 2);
}

#[test]
fn current_encoding_matches_the_golden_files() {
    let bless = blessing();
    let mut problems = Vec::new();
    for (name, current) in golden_states() {
        let path = golden_path(name);
        if bless {
            std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create dir");
            std::fs::write(&path, &current).expect("write golden file");
            eprintln!("blessed {} ({} bytes)", path.display(), current.len());
            continue;
        }
        let golden = match std::fs::read(&path) {
            Ok(g) => g,
            Err(e) => {
                problems.push(format!(
                    "{}: missing ({e}). Golden files are committed, never created by a normal \
                     run; if this is a new state, create it with `{BLESS_VAR}=1 cargo test -p \
                     card --test state_format` and commit it.",
                    path.display()
                ));
                continue;
            }
        };
        // The golden image is readable by this build and re-encodes to itself.
        let decoded = match PersistentState::decode(&golden) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!(
                    "{}: this build cannot read the golden image: {e}",
                    path.display()
                ));
                continue;
            }
        };
        if decoded.encode() != golden {
            problems.push(format!(
                "{}: the golden image decodes but re-encodes differently",
                path.display()
            ));
        }
        if current != golden {
            let at = current
                .iter()
                .zip(&golden)
                .position(|(a, b)| a != b)
                .unwrap_or(current.len().min(golden.len()));
            let fields = differing_fields(&decode(&current), &decoded);
            let cause = if fields.is_empty() {
                "same field values, different bytes: the ENCODING changed (a format change \
                 needs a new STATE_FORMAT_VERSION)"
                    .to_string()
            } else {
                format!(
                    "field values differ ({}): the state the test builds changed (test world, \
                     card behaviour) or the decoder reads the fields differently",
                    fields.join(", ")
                )
            };
            problems.push(format!(
                "{}: current encoding ({} bytes) differs from the golden image ({} bytes) \
                 first at byte {at}; {cause}",
                path.display(),
                current.len(),
                golden.len()
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "persisted state format check failed:\n- {}\n(if and only if the change is intended: \
         {BLESS_VAR}=1 cargo test -p card --test state_format, then commit tests/golden/)",
        problems.join("\n- ")
    );
}

#[test]
fn manufactured_golden_is_the_factory_state() {
    let w = World::new(GOLDEN_SEED);
    assert_eq!(
        w.blank_card().image(),
        PersistentState::manufactured().encode(),
        "a blank card holds exactly PersistentState::manufactured()"
    );
}

#[test]
fn golden_states_are_deterministic() {
    // The golden comparison is only meaningful if building the states twice gives the same
    // bytes (seeded RNG, RFC 6979 signatures, fixed times).
    assert_eq!(golden_states(), golden_states());
}

#[test]
fn golden_states_have_the_expected_shape() {
    let states = golden_states();
    assert_eq!(
        states.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        GOLDEN_NAMES.to_vec()
    );
    let by_name = |n: &str| decode(&states.iter().find(|(name, _)| *name == n).expect(n).1);
    assert_eq!(by_name("manufactured").life_cycle, LifeCycle::Manufactured);
    let p = by_name("personalised");
    assert_eq!(p.life_cycle, LifeCycle::Personalised);
    assert!(p.pin.is_some() && p.sk.is_some() && p.card_key.is_none());
    let r = by_name("registered-two-items");
    assert_eq!(r.life_cycle, LifeCycle::InUse);
    assert!(r.registration.is_some() && r.card_key.is_some());
    assert_eq!(r.items.len(), 2);
    assert_eq!(r.crls.len(), 1);
    assert_eq!(r.receipt_counter, 2);
    // The ring holds both receipts, oldest first, matching the counter.
    assert_eq!(
        r.receipts.iter().map(|x| x.counter).collect::<Vec<_>>(),
        vec![1, 2]
    );
    let t = by_name("tampered-by-hand");
    assert_eq!(t.life_cycle, LifeCycle::Terminated);
}

// ---------------------------------------------------------------------------------------------
// Round trip and refusals

#[test]
fn decode_of_encode_re_encodes_identically() {
    for (name, image) in golden_states() {
        let s = decode(&image);
        assert_eq!(s.encode(), image, "{name}: encode(decode(image)) == image");
        let again = decode(&s.encode());
        assert!(
            differing_fields(&s, &again).is_empty(),
            "{name}: decode(encode(s)) == s"
        );
    }
    // A state with keys present (the World states above hold `Sk` and the card key; this one
    // pins that keys survive exactly).
    let mut s = tampered_by_hand();
    s.sk = Some(SkEntry {
        version: KeyVersion(0x7F),
        key: SymmetricKey::from_bytes(&[0x42; 32]).expect("key"),
    });
    s.card_key = Some(CardKeyEntry {
        version: KeyVersion(1),
        key: SigningKey::from_scalar_bytes(&[0x24; 32]).expect("scalar"),
    });
    let again = decode(&s.encode());
    assert!(differing_fields(&s, &again).is_empty());
    assert_eq!(again.encode(), s.encode());
}

#[test]
fn decode_rejects_trailing_bytes() {
    for (name, image) in golden_states() {
        for extra in [&[0x00][..], &[0xFF], &[0u8; 16]] {
            let mut long = image.clone();
            long.extend_from_slice(extra);
            assert_eq!(
                PersistentState::decode(&long).err(),
                Some(StateError::TrailingBytes {
                    at: image.len(),
                    len: long.len()
                }),
                "{name} + {} trailing bytes",
                extra.len()
            );
        }
    }
}

#[test]
fn decode_rejects_every_truncation() {
    for (name, image) in golden_states() {
        for n in 0..image.len() {
            match PersistentState::decode(&image[..n]) {
                Err(StateError::Truncated { at }) => {
                    assert!(at <= n, "{name}[..{n}]: truncation reported at {at}")
                }
                other => panic!(
                    "{name}[..{n}] of {}: expected Truncated, got {:?}",
                    image.len(),
                    other.map(|_| "a decoded state")
                ),
            }
        }
    }
}

#[test]
fn decode_rejects_an_unknown_version() {
    for (name, image) in golden_states() {
        let readable = OLDEST_READABLE_FORMAT_VERSION..=STATE_FORMAT_VERSION;
        for v in (0..=u8::MAX).filter(|v| !readable.contains(v)) {
            let mut bad = image.clone();
            bad[0] = v;
            assert_eq!(
                PersistentState::decode(&bad).err(),
                Some(StateError::UnknownVersion { found: v }),
                "{name} with version byte {v:#04x}"
            );
        }
    }
}

#[test]
fn decode_rejects_a_bad_life_cycle_byte() {
    let valid = [
        LifeCycle::Manufactured,
        LifeCycle::Personalised,
        LifeCycle::InUse,
        LifeCycle::Locked,
        LifeCycle::Terminated,
    ];
    for (name, image) in golden_states() {
        for b in 0..=u8::MAX {
            let mut bad = image.clone();
            bad[1] = b;
            let r = PersistentState::decode(&bad);
            match valid.iter().find(|lc| lc.gp_code() == b) {
                Some(lc) => assert_eq!(
                    r.map(|s| s.life_cycle).ok(),
                    Some(*lc),
                    "{name} with life cycle {b:#04x}"
                ),
                None => assert_eq!(
                    r.err(),
                    Some(StateError::Corrupt {
                        field: "life cycle",
                        offset: 1
                    }),
                    "{name} with life cycle {b:#04x}"
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Never panics

fn runner(seed: u64) -> TestRunner {
    TestRunner::new(Config {
        cases: 512,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    })
}

/// If `bytes` decode, the state re-encodes to an image that decodes to the same state (the
/// decoder may accept non-canonical flag bytes, but what it reads is stable).
fn check_decode(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(s) = PersistentState::decode(bytes) {
        let image = s.encode();
        let again = PersistentState::decode(&image)
            .map_err(|e| TestCaseError::fail(format!("re-encoded image does not decode: {e}")))?;
        prop_assert!(differing_fields(&s, &again).is_empty());
        prop_assert_eq!(again.encode(), image);
    }
    Ok(())
}

#[test]
fn decode_never_panics_on_arbitrary_bytes() {
    // Plain random bytes stop at the version byte; with a valid header they go further.
    let strategy = prop_oneof![
        vec(any::<u8>(), 0..4096),
        (
            select(vec![0x01u8, 0x07, 0x0F, 0x7F, 0xFF]),
            vec(any::<u8>(), 0..4096)
        )
            .prop_map(|(lc, rest)| {
                let mut v = vec![STATE_FORMAT_VERSION, lc];
                v.extend(rest);
                v
            }),
    ];
    if let Err(e) = runner(0x57A7_0001).run(&strategy, |bytes| check_decode(&bytes)) {
        panic!("{e}");
    }
}

#[test]
fn decode_never_panics_on_mutated_golden_images() {
    let images: Vec<Vec<u8>> = golden_states().into_iter().map(|(_, i)| i).collect();
    let strategy = (
        any::<Index>(),
        vec((any::<Index>(), any::<u8>()), 1..=3),
        any::<Index>(),
    );
    let result = runner(0x57A7_0002).run(&strategy, |(which, edits, cut)| {
        let mut image = images[which.index(images.len())].clone();
        for (at, b) in &edits {
            let i = at.index(image.len());
            image[i] = *b;
        }
        check_decode(&image)?;
        // And the mutated image cut short somewhere.
        let n = cut.index(image.len());
        prop_assert!(PersistentState::decode(&image[..n]).is_err());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn a_golden_image_boots_as_a_card() {
    // The image is what the store hands to `Card::boot`: a store holding the registered golden
    // image boots as a card in that state.
    let (_, image) = golden_states()
        .into_iter()
        .find(|(n, _)| *n == "registered-two-items")
        .expect("registered state");
    let capacity = 16 * 1024;
    let nvm = MemNvm::new(Store::<MemNvm>::nvm_size_for(capacity));
    let mut store = Store::format(nvm, capacity).expect("format a store");
    store.commit(&image).expect("commit the golden image");
    let card = Card::boot(store.into_nvm()).expect("boots from the golden image");
    assert_eq!(card.image(), image.as_slice());
    assert_eq!(card.info().items, 2);
    assert_eq!(card.info().life_cycle, LifeCycle::InUse);
}

/// One state, one encoding: a presence byte other than 0/1, or non-zero padding behind an
/// absent fixed-size field, is damage and is refused (a corrupted flag must never silently drop
/// the PIN or a key).
#[test]
fn decode_rejects_non_canonical_presence_and_padding() {
    let manufactured = PersistentState::manufactured().encode();
    // Layout of the fixed header (state.rs): version, life cycle, PIN presence at 2, tries 3,
    // limit 4, salt 5..21, MAC 21..53, receipt counter, time floor, capacity, card ID presence
    // at 73, card ID 74..90, Sk version 90, Sk 91..123, card key version 123, key 124..156.
    for (offset, what) in [(2, "PIN presence 2"), (73, "card ID presence 2")] {
        let mut bad = manufactured.clone();
        bad[offset] = 2;
        assert!(PersistentState::decode(&bad).is_err(), "{what} accepted");
    }
    for (offset, what) in [
        (3, "tries behind an absent PIN"),
        (30, "MAC byte behind an absent PIN"),
        (80, "card ID byte behind an absent ID"),
        (100, "Sk byte behind an absent Sk"),
        (140, "key byte behind an absent card key"),
    ] {
        let mut bad = manufactured.clone();
        bad[offset] = 0x5A;
        assert!(PersistentState::decode(&bad).is_err(), "{what} accepted");
    }
    assert!(PersistentState::decode(&manufactured).is_ok());
}

/// The ring of kept receipts (version 2): at most [`KEPT_RECEIPTS`], each a valid `Receipt`
/// DER; anything else is damage.
#[test]
fn decode_rejects_a_bad_receipt_ring() {
    let mut s = tampered_by_hand();
    s.receipts = (1..=KEPT_RECEIPTS as u64)
        .map(|n| hand_receipt(n, ReceiptResult::Stored))
        .collect();
    let full = s.encode();
    assert_eq!(decode(&full).receipts, s.receipts);
    let mut none = s.clone();
    none.receipts.clear();
    // The ring is the tail: its count byte is the last byte of the image without receipts.
    let count_at = none.encode().len() - 1;
    assert_eq!(full[count_at], KEPT_RECEIPTS as u8);

    let mut nine = full.clone();
    nine[count_at] = KEPT_RECEIPTS as u8 + 1;
    assert_eq!(
        PersistentState::decode(&nine).err(),
        Some(StateError::Corrupt {
            field: "kept receipt count",
            offset: count_at
        })
    );
    // The first receipt's DER (after its 4-byte length) no longer a SEQUENCE.
    let mut bad = full.clone();
    bad[count_at + 1 + 4] = 0x31;
    assert!(matches!(
        PersistentState::decode(&bad),
        Err(StateError::Corrupt {
            field: "kept receipt",
            ..
        })
    ));
    // keep_receipt keeps the last KEPT_RECEIPTS, oldest first.
    let mut ring = PersistentState::manufactured();
    for n in 1..=KEPT_RECEIPTS as u64 + 3 {
        ring.keep_receipt(hand_receipt(n, ReceiptResult::Stored));
    }
    assert_eq!(
        ring.receipts.iter().map(|r| r.counter).collect::<Vec<_>>(),
        (4..=KEPT_RECEIPTS as u64 + 3).collect::<Vec<_>>()
    );
    assert_eq!(
        ring.kept_receipt(&Digest([4; 32])).map(|r| r.counter),
        Some(4)
    );
    assert_eq!(ring.kept_receipt(&Digest([3; 32])), None);
}
