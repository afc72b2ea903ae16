//! REC-1: `verify_ledger` accepts a party's hash-chained ledger of real card receipts (from a
//! test card driven through APDUs) and finds the first break of every kind: an entry reordered,
//! dropped or re-linked, a receipt altered or from another card, an entry signed by another
//! party or naming another, counters that do not increase.

use pki::{Certificate, PkiError, UnixTime};
use protocol::{
    verify_ledger, CardId, Challenge, ConsentError, Digest, LedgerBreak, LedgerEntry,
    LedgerSummary, Operation, ProtocolError, Purpose, Receipt, SignedObject,
};
use testkit::test_pki::{TestParty, TestPki};
use testkit::world::{Path, TestClient, World};

const NOW: UnixTime = TestPki::NOW;

/// A registered test card and the receipts of `n` stores on it (items A0 00..), in order.
struct CardRun {
    world: World,
    client: TestClient,
    rc: Certificate,
    receipts: Vec<SignedObject>,
}

fn card_run(seed: u64, n: u8) -> CardRun {
    let world = World::new(seed);
    let (mut client, rc) = world.registered();
    let receipts = (0..n)
        .map(|i| {
            let data = [b'd', i];
            let sdi = world.sdi(Operation::Store, &[0xA0, i], 1, &data);
            let challenge = Challenge(client.get_challenge().unwrap());
            let sa = world.sa(Path::ViaIssuer, &sdi, challenge, &rc);
            client.store(&sa, None, &data).unwrap()
        })
        .collect();
    CardRun {
        world,
        client,
        rc,
        receipts,
    }
}

fn receipt_body(receipt: &SignedObject) -> Receipt {
    receipt.body_unverified().unwrap()
}

/// The issuer's entry for `receipt` at `seq` (prev to be linked by [`link`]).
fn entry(party: &TestParty, card_id: CardId, seq: u64, receipt: &SignedObject) -> LedgerEntry {
    LedgerEntry {
        party: party.id.clone(),
        card_id,
        seq,
        prev: LedgerEntry::GENESIS_PREV,
        receipt: receipt.clone(),
        view_digest: receipt_body(receipt).listing_digest,
        recorded_at: UnixTime(NOW.0 + seq),
    }
}

/// Entries 0, 1, 2… for `receipts`, by `party`, not yet linked.
fn entries(party: &TestParty, card_id: CardId, receipts: &[SignedObject]) -> Vec<LedgerEntry> {
    receipts
        .iter()
        .zip(0..)
        .map(|(r, seq)| entry(party, card_id, seq, r))
        .collect()
}

/// Links `bodies` into a hash chain (each `prev` the digest of the previous signed entry) and
/// signs each with `keys[i]`.
fn link(bodies: Vec<LedgerEntry>, keys: &[&TestParty]) -> Vec<SignedObject> {
    let mut prev = LedgerEntry::GENESIS_PREV;
    bodies
        .into_iter()
        .zip(keys)
        .map(|(mut body, signer)| {
            body.prev = prev;
            let signed = body.sign(&signer.key);
            prev = signed.digest();
            signed
        })
        .collect()
}

/// The issuer's well-formed ledger of `run`'s receipts.
fn issuer_ledger(run: &CardRun) -> Vec<SignedObject> {
    let pki = &run.world.pki;
    link(
        entries(&pki.issuer, run.world.card_id, &run.receipts),
        &vec![&pki.issuer; run.receipts.len()],
    )
}

fn broken_at(result: Result<LedgerSummary, ConsentError>, expected_index: usize) -> LedgerBreak {
    match result {
        Err(ConsentError::LedgerBroken { index, reason }) => {
            assert_eq!(index, expected_index, "{reason}");
            reason
        }
        other => panic!("expected a broken ledger, got {other:?}"),
    }
}

#[test]
fn a_three_entry_ledger_of_real_receipts_verifies() {
    let run = card_run(1, 3);
    let ledger = issuer_ledger(&run);
    // Through the wire and back: the digests the chain uses are those of the canonical DER.
    let ledger: Vec<SignedObject> = ledger
        .iter()
        .map(|e| SignedObject::from_der(&e.to_der()).unwrap())
        .collect();
    let issuer_key = run.world.pki.issuer.public_key();
    let counters: Vec<u64> = run
        .receipts
        .iter()
        .map(|r| receipt_body(r).counter)
        .collect();
    assert!(counters.windows(2).all(|w| w[0] < w[1]), "{counters:?}");
    assert_eq!(
        verify_ledger(&ledger, &issuer_key, &run.rc),
        Ok(LedgerSummary {
            entries: 3,
            last_counter: counters[2],
            head: ledger[2].digest(),
        })
    );
    // Each prefix is a valid ledger too, and its head is what the next entry's prev carries.
    for n in 0..3 {
        let summary = verify_ledger(&ledger[..n], &issuer_key, &run.rc).unwrap();
        let next: LedgerEntry = ledger[n].body_unverified().unwrap();
        assert_eq!((summary.entries, summary.head), (n, next.prev));
    }
    assert_eq!(
        verify_ledger(&[], &issuer_key, &run.rc),
        Ok(LedgerSummary {
            entries: 0,
            last_counter: 0,
            head: LedgerEntry::GENESIS_PREV,
        })
    );
    // The receipt is embedded as the card signed it.
    let first: LedgerEntry = ledger[0].open(&issuer_key).unwrap();
    assert_eq!(first.receipt.to_der(), run.receipts[0].to_der());
    assert_eq!(first.prev, Digest([0; 32]));
    assert_eq!(ledger[0].purpose(), Purpose::LedgerEntry);
}

#[test]
fn counter_gaps_are_not_breaks() {
    // A provider that saw receipts 1 and 3 only.
    let run = card_run(2, 3);
    let pki = &run.world.pki;
    let seen = [run.receipts[0].clone(), run.receipts[2].clone()];
    let ledger = link(
        entries(&pki.provider, run.world.card_id, &seen),
        &[&pki.provider, &pki.provider],
    );
    let summary = verify_ledger(&ledger, &pki.provider.public_key(), &run.rc).unwrap();
    assert_eq!(summary.last_counter, receipt_body(&run.receipts[2]).counter);
}

#[test]
fn a_reordered_entry_is_found() {
    let run = card_run(3, 3);
    let mut ledger = issuer_ledger(&run);
    ledger.swap(1, 2);
    let key = run.world.pki.issuer.public_key();
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 1),
        LedgerBreak::Sequence {
            expected: 1,
            found: 2
        }
    );
    // Re-numbered and re-linked by the party (it holds its key) but with the receipts out of
    // order: the counters give it away.
    let pki = &run.world.pki;
    let shuffled = [
        run.receipts[0].clone(),
        run.receipts[2].clone(),
        run.receipts[1].clone(),
    ];
    let ledger = link(
        entries(&pki.issuer, run.world.card_id, &shuffled),
        &[&pki.issuer; 3],
    );
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 2),
        LedgerBreak::CounterNotIncreasing {
            previous: receipt_body(&run.receipts[2]).counter,
            found: receipt_body(&run.receipts[1]).counter,
        }
    );
}

#[test]
fn a_dropped_entry_is_found() {
    let run = card_run(4, 3);
    let ledger = issuer_ledger(&run);
    let key = run.world.pki.issuer.public_key();
    let gap = [ledger[0].clone(), ledger[2].clone()];
    assert_eq!(
        broken_at(verify_ledger(&gap, &key, &run.rc), 1),
        LedgerBreak::Sequence {
            expected: 1,
            found: 2
        }
    );
    let headless = [ledger[1].clone(), ledger[2].clone()];
    assert_eq!(
        broken_at(verify_ledger(&headless, &key, &run.rc), 0),
        LedgerBreak::Sequence {
            expected: 0,
            found: 1
        }
    );
    // A repeated entry.
    let twice = [ledger[0].clone(), ledger[1].clone(), ledger[1].clone()];
    assert_eq!(
        broken_at(verify_ledger(&twice, &key, &run.rc), 2),
        LedgerBreak::Sequence {
            expected: 2,
            found: 1
        }
    );
}

#[test]
fn a_prev_that_does_not_match_is_found() {
    let run = card_run(5, 3);
    let pki = &run.world.pki;
    let key = pki.issuer.public_key();
    let good = issuer_ledger(&run);
    // Entry 2 re-signed with a prev that is not entry 1's digest.
    let mut body: LedgerEntry = good[2].body_unverified().unwrap();
    body.prev = Digest([7; 32]);
    let ledger = [good[0].clone(), good[1].clone(), body.sign(&pki.issuer.key)];
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 2),
        LedgerBreak::Prev {
            expected: good[1].digest(),
            found: Digest([7; 32]),
        }
    );
    // Entry 1 replaced by another, validly signed entry 1 (a fork): entry 2 no longer follows.
    let mut fork: LedgerEntry = good[1].body_unverified().unwrap();
    fork.recorded_at = UnixTime(NOW.0 + 1000);
    let fork = fork.sign(&pki.issuer.key);
    let ledger = [good[0].clone(), fork.clone(), good[2].clone()];
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 2),
        LedgerBreak::Prev {
            expected: fork.digest(),
            found: good[1].digest(),
        }
    );
    // A first entry that does not start from zero.
    let mut first: LedgerEntry = good[0].body_unverified().unwrap();
    first.prev = good[2].digest();
    assert_eq!(
        broken_at(
            verify_ledger(&[first.sign(&pki.issuer.key)], &key, &run.rc),
            0
        ),
        LedgerBreak::Prev {
            expected: LedgerEntry::GENESIS_PREV,
            found: good[2].digest(),
        }
    );
}

#[test]
fn an_altered_receipt_is_found() {
    let mut run = card_run(6, 3);
    let pki = &run.world.pki;
    let key = pki.issuer.public_key();
    let good = issuer_ledger(&run);

    // A byte of the embedded receipt's signature flipped in transit or at rest: the party's
    // signature over the entry no longer holds.
    let mut der = good[1].to_der();
    let sig = run.receipts[1].signature();
    let at = der
        .windows(sig.len())
        .position(|w| w == sig)
        .expect("the receipt's signature is inside the entry");
    der[at + sig.len() - 1] ^= 0x01;
    let altered = SignedObject::from_der(&der).unwrap();
    let ledger = [good[0].clone(), altered, good[2].clone()];
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 1),
        LedgerBreak::Entry(ProtocolError::BadSignature {
            purpose: Purpose::LedgerEntry
        })
    );

    // A receipt rewritten (another counter) and re-signed by someone without the card's key,
    // in an entry the party signs and links properly: the receipt gives it away.
    let mut forged = receipt_body(&run.receipts[1]);
    forged.counter += 100;
    let forged = forged.sign(&pki.provider.key);
    let receipts = [run.receipts[0].clone(), forged, run.receipts[2].clone()];
    let ledger = link(
        entries(&pki.issuer, run.world.card_id, &receipts),
        &[&pki.issuer; 3],
    );
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 1),
        LedgerBreak::Receipt(ProtocolError::BadSignature {
            purpose: Purpose::Receipt
        })
    );

    // Something the card signed for another purpose (its listing) in place of a receipt.
    let listing = run.client.listing(b"nonce").unwrap();
    let receipts = [run.receipts[0].clone(), listing];
    let bodies = vec![
        entry(&pki.issuer, run.world.card_id, 0, &receipts[0]),
        LedgerEntry {
            receipt: receipts[1].clone(),
            ..entry(&pki.issuer, run.world.card_id, 1, &receipts[0])
        },
    ];
    let ledger = link(bodies, &[&pki.issuer; 2]);
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 1),
        LedgerBreak::Receipt(ProtocolError::WrongPurpose {
            expected: Purpose::Receipt,
            found: Purpose::Listing,
        })
    );
}

#[test]
fn an_entry_of_another_party_is_found() {
    let run = card_run(7, 3);
    let pki = &run.world.pki;
    let key = pki.issuer.public_key();

    // Entry 1 signed by provider-1 (naming the issuer): not under the issuer's key.
    let ledger = link(
        entries(&pki.issuer, run.world.card_id, &run.receipts),
        &[&pki.issuer, &pki.provider, &pki.issuer],
    );
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 1),
        LedgerBreak::Entry(ProtocolError::BadSignature {
            purpose: Purpose::LedgerEntry
        })
    );

    // Entry 1 naming provider-1 (signed with the issuer's key, as if copied in).
    let mut bodies = entries(&pki.issuer, run.world.card_id, &run.receipts);
    bodies[1].party = pki.provider.id.clone();
    let ledger = link(bodies, &[&pki.issuer; 3]);
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 1),
        LedgerBreak::WrongParty {
            expected: pki.issuer.id.clone(),
            found: pki.provider.id.clone(),
        }
    );

    // A whole ledger of provider-1's, checked under the issuer's key.
    let ledger = link(
        entries(&pki.provider, run.world.card_id, &run.receipts),
        &[&pki.provider; 3],
    );
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 0),
        LedgerBreak::Entry(ProtocolError::BadSignature {
            purpose: Purpose::LedgerEntry
        })
    );
    // And something else the issuer signed, presented as an entry.
    let receipt = &run.receipts[0];
    assert_eq!(
        broken_at(
            verify_ledger(std::slice::from_ref(receipt), &key, &run.rc),
            0
        ),
        LedgerBreak::Entry(ProtocolError::WrongPurpose {
            expected: Purpose::LedgerEntry,
            found: Purpose::Receipt,
        })
    );
}

#[test]
fn a_receipt_from_another_card_is_found() {
    let run = card_run(8, 2);
    let other = card_run(9, 1);
    assert_ne!(run.world.card_id, other.world.card_id);
    let pki = &run.world.pki;
    let key = pki.issuer.public_key();

    // The other card's receipt in an entry that names this card.
    let receipts = [run.receipts[0].clone(), other.receipts[0].clone()];
    let ledger = link(
        entries(&pki.issuer, run.world.card_id, &receipts),
        &[&pki.issuer; 2],
    );
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 1),
        LedgerBreak::Receipt(ProtocolError::BadSignature {
            purpose: Purpose::Receipt
        })
    );

    // An entry about the other card, slipped into this card's ledger.
    let bodies = vec![
        entry(&pki.issuer, run.world.card_id, 0, &run.receipts[0]),
        entry(&pki.issuer, other.world.card_id, 1, &other.receipts[0]),
    ];
    let ledger = link(bodies, &[&pki.issuer; 2]);
    assert_eq!(
        broken_at(verify_ledger(&ledger, &key, &run.rc), 1),
        LedgerBreak::WrongCard {
            expected: run.world.card_id,
            found: other.world.card_id,
        }
    );

    // The other card's whole (valid) ledger checked with this card's RC.
    let other_ledger = issuer_ledger(&other);
    assert_eq!(
        broken_at(
            verify_ledger(&other_ledger, &other.world.pki.issuer.public_key(), &run.rc),
            0
        ),
        LedgerBreak::WrongCard {
            expected: run.world.card_id,
            found: other.world.card_id,
        }
    );
    assert!(verify_ledger(
        &other_ledger,
        &other.world.pki.issuer.public_key(),
        &other.rc
    )
    .is_ok());
}

#[test]
fn a_repeated_receipt_is_found() {
    let run = card_run(10, 1);
    let pki = &run.world.pki;
    let counter = receipt_body(&run.receipts[0]).counter;
    let twice = [run.receipts[0].clone(), run.receipts[0].clone()];
    let ledger = link(
        entries(&pki.issuer, run.world.card_id, &twice),
        &[&pki.issuer; 2],
    );
    assert_eq!(
        broken_at(verify_ledger(&ledger, &pki.issuer.public_key(), &run.rc), 1),
        LedgerBreak::CounterNotIncreasing {
            previous: counter,
            found: counter,
        }
    );
}

#[test]
fn the_rc_must_be_a_cards() {
    let run = card_run(11, 1);
    let pki = &run.world.pki;
    let ledger = issuer_ledger(&run);
    assert!(matches!(
        verify_ledger(&ledger, &pki.issuer.public_key(), &pki.issuer.cert),
        Err(ConsentError::Certificate {
            object: "LedgerEntry",
            source: PkiError::UnexpectedRole { .. },
        })
    ));
}
