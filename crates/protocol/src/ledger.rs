//! A party's ledger of a card's outcomes (SPEC REC-1; docs/parties.md, "Records and ledgers"):
//! the issuer and every provider keep, per card, a hash chain of [`LedgerEntry`]s, each signed
//! by the party and embedding one card receipt with the party's view of the card after it.
//! [`verify_ledger`] is an auditor's (or the party's own) check that a ledger is whole: nothing
//! dropped, reordered, altered or forged, and every receipt the card's.

use der::asn1::{OctetStringRef, Utf8StringRef};
use der::Sequence;

use crate::codec::der_codec;
use crate::consent::rc_card_id;
use crate::error::{ConsentError, LedgerBreak, ProtocolError};
use crate::field::{self, octets, utf8};
use crate::record::Receipt;
use crate::signed::{Purpose, Signed, SignedObject, SignedObjectWire};
use crypto::{Digest, SigningKey, VerifyingKey};
use pki::{CardId, Certificate, PartyId, UnixTime};

/// One entry of a party's ledger for one card. Signed by the party (issuer or provider) with
/// its own key and no chain: the ledger is the party's record, checked under the key the
/// verifier holds for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// The party keeping the ledger.
    pub party: PartyId,
    pub card_id: CardId,
    /// 0-based position in this card's ledger.
    pub seq: u64,
    /// SHA-256 of the DER of the previous entry's [`SignedObject`];
    /// [`LedgerEntry::GENESIS_PREV`] for seq 0.
    pub prev: Digest,
    /// The card's signed receipt, embedded as the card signed it.
    pub receipt: SignedObject,
    /// The party's view of the card's contents after this receipt: a
    /// [`crate::ListingBody`] digest, comparable with receipts' and listings' digests.
    pub view_digest: Digest,
    /// The party's clock when it recorded the receipt.
    pub recorded_at: UnixTime,
}

#[derive(Sequence)]
pub(crate) struct LedgerEntryWire<'a> {
    party: Utf8StringRef<'a>,
    card_id: OctetStringRef<'a>,
    seq: u64,
    prev: OctetStringRef<'a>,
    receipt: SignedObjectWire<'a>,
    view_digest: OctetStringRef<'a>,
    recorded_at: u64,
}

impl LedgerEntry {
    /// The `prev` of the first entry (seq 0): 32 zero bytes.
    pub const GENESIS_PREV: Digest = Digest([0; 32]);

    fn to_wire(&self) -> der::Result<LedgerEntryWire<'_>> {
        Ok(LedgerEntryWire {
            party: utf8(self.party.as_str())?,
            card_id: octets(&self.card_id.0)?,
            seq: self.seq,
            prev: octets(&self.prev.0)?,
            receipt: self.receipt.to_wire()?,
            view_digest: octets(&self.view_digest.0)?,
            recorded_at: self.recorded_at.0,
        })
    }

    fn from_wire(wire: LedgerEntryWire<'_>) -> Result<LedgerEntry, ProtocolError> {
        const OBJECT: &str = "LedgerEntry";
        Ok(LedgerEntry {
            party: field::party(OBJECT, "party", wire.party)?,
            card_id: field::card_id(OBJECT, "cardId", wire.card_id)?,
            seq: wire.seq,
            prev: field::digest(OBJECT, "prev", wire.prev)?,
            receipt: SignedObject::from_wire(wire.receipt)?,
            view_digest: field::digest(OBJECT, "viewDigest", wire.view_digest)?,
            recorded_at: UnixTime(wire.recorded_at),
        })
    }

    /// Signs this entry with the party's key (no chain).
    pub fn sign(&self, party_key: &SigningKey) -> SignedObject {
        <Self as Signed>::sign(self, party_key, Vec::new())
    }
}

der_codec!(LedgerEntry, LedgerEntryWire, "LedgerEntry");

impl Signed for LedgerEntry {
    const PURPOSE: Purpose = Purpose::LedgerEntry;
}

/// What a whole ledger establishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerSummary {
    /// How many entries were checked.
    pub entries: usize,
    /// The last receipt's confirmation counter (0 for an empty ledger, as a card's listing
    /// shows before its first receipt).
    pub last_counter: u64,
    /// SHA-256 of the last entry's DER: the `prev` the next entry must carry
    /// ([`LedgerEntry::GENESIS_PREV`] for an empty ledger).
    pub head: Digest,
}

/// Checks a party's ledger for one card, entry by entry, under `party_key` and the card's
/// `rc` (whose own chain the caller has verified with pki). Refuses an `rc` that is not a card
/// certificate (`Certificate`), and otherwise reports the first entry that breaks the chain as
/// `LedgerBroken { index, reason }`:
///
/// - the entry's purpose and signature under `party_key` ([`LedgerBreak::Entry`]);
/// - the same party as entry 0 ([`LedgerBreak::WrongParty`]) and the RC's card
///   ([`LedgerBreak::WrongCard`]);
/// - `seq` is the entry's index ([`LedgerBreak::Sequence`]), `prev` the digest of the previous
///   entry's DER, zero for the first ([`LedgerBreak::Prev`]);
/// - the embedded receipt passes [`crate::verify_receipt`]'s checks: purpose and signature
///   under the RC's key ([`LedgerBreak::Receipt`]), the RC's card
///   ([`LedgerBreak::ReceiptWrongCard`]);
/// - receipt counters strictly increase ([`LedgerBreak::CounterNotIncreasing`]). Gaps are not
///   breaks: a provider sees only its own items' receipts, and a lost receipt is found by
///   reading the card's listing, not by the ledger.
///
/// `view_digest` is the party's own claim and is not checked against anything.
pub fn verify_ledger(
    entries: &[SignedObject],
    party_key: &VerifyingKey,
    rc: &Certificate,
) -> Result<LedgerSummary, ConsentError> {
    let card_id = rc_card_id(rc, "LedgerEntry")?;
    let rc_key = rc.public_key();
    let mut party: Option<PartyId> = None;
    let mut head = LedgerEntry::GENESIS_PREV;
    let mut last_counter: Option<u64> = None;
    for (index, object) in entries.iter().enumerate() {
        let broken = |reason| ConsentError::LedgerBroken { index, reason };
        let entry: LedgerEntry = object
            .open(party_key)
            .map_err(|e| broken(LedgerBreak::Entry(e)))?;
        match &party {
            None => party = Some(entry.party.clone()),
            Some(expected) if *expected != entry.party => {
                return Err(broken(LedgerBreak::WrongParty {
                    expected: expected.clone(),
                    found: entry.party,
                }))
            }
            Some(_) => {}
        }
        if entry.card_id != card_id {
            return Err(broken(LedgerBreak::WrongCard {
                expected: card_id,
                found: entry.card_id,
            }));
        }
        // usize is at most 64 bits on every target we build for: the cast is lossless.
        let expected_seq = index as u64;
        if entry.seq != expected_seq {
            return Err(broken(LedgerBreak::Sequence {
                expected: expected_seq,
                found: entry.seq,
            }));
        }
        if entry.prev != head {
            return Err(broken(LedgerBreak::Prev {
                expected: head,
                found: entry.prev,
            }));
        }
        let receipt: Receipt = entry
            .receipt
            .open(&rc_key)
            .map_err(|e| broken(LedgerBreak::Receipt(e)))?;
        if receipt.card_id != card_id {
            return Err(broken(LedgerBreak::ReceiptWrongCard {
                expected: card_id,
                found: receipt.card_id,
            }));
        }
        if let Some(previous) = last_counter {
            if receipt.counter <= previous {
                return Err(broken(LedgerBreak::CounterNotIncreasing {
                    previous,
                    found: receipt.counter,
                }));
            }
        }
        last_counter = Some(receipt.counter);
        head = object.digest();
    }
    Ok(LedgerSummary {
        entries: entries.len(),
        last_counter: last_counter.unwrap_or(0),
        head,
    })
}
