//! The card's signed outcomes (STO-7, REC-1): a receipt for every store or delete, with a
//! confirmation counter that never resets, and the content listing a party reads to detect
//! drift. Both are signed by the card's registration key with no chain (verifiers hold the RC).
//! A receipt carries the digest of the listing contents after its operation, computed by the
//! same [`ListingBody`] a listing carries, so the two always agree.

use der::asn1::{OctetStringRef, Utf8StringRef};
use der::{Enumerated, Sequence};

use crate::codec::der_codec;
use crate::error::ProtocolError;
use crate::field::{self, invalid, octets, utf8, ItemId, Nonce, Operation, Policy};
use crate::signed::{Purpose, Signed, SignedObject};
use crypto::{Digest, SigningKey};
use pki::{CardId, PartyId};

/// What a receipted operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enumerated)]
#[repr(u32)]
pub enum ReceiptResult {
    Stored = 0,
    Deleted = 1,
}

/// The card's receipt for one store or delete (STO-7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub card_id: CardId,
    /// The card's confirmation counter: strictly increasing across every receipt the card ever
    /// signs, never reset. A gap tells a party it missed a receipt.
    pub counter: u64,
    pub operation: Operation,
    pub item_id: ItemId,
    pub sdi_digest: Digest,
    /// SHA-256 of the DER of the SA [`SignedObject`] that authorized the operation.
    pub authorization_digest: Digest,
    pub result: ReceiptResult,
    /// [`ListingBody::digest`] of the card's contents after the operation.
    pub listing_digest: Digest,
}

#[derive(Sequence)]
pub(crate) struct ReceiptWire<'a> {
    card_id: OctetStringRef<'a>,
    counter: u64,
    operation: Operation,
    item_id: OctetStringRef<'a>,
    sdi_digest: OctetStringRef<'a>,
    authorization_digest: OctetStringRef<'a>,
    result: ReceiptResult,
    listing_digest: OctetStringRef<'a>,
}

impl Receipt {
    fn to_wire(&self) -> der::Result<ReceiptWire<'_>> {
        Ok(ReceiptWire {
            card_id: octets(&self.card_id.0)?,
            counter: self.counter,
            operation: self.operation,
            item_id: octets(self.item_id.as_bytes())?,
            sdi_digest: octets(&self.sdi_digest.0)?,
            authorization_digest: octets(&self.authorization_digest.0)?,
            result: self.result,
            listing_digest: octets(&self.listing_digest.0)?,
        })
    }

    fn from_wire(wire: ReceiptWire<'_>) -> Result<Receipt, ProtocolError> {
        const OBJECT: &str = "Receipt";
        Ok(Receipt {
            card_id: field::card_id(OBJECT, "cardId", wire.card_id)?,
            counter: wire.counter,
            operation: wire.operation,
            item_id: field::item_id(OBJECT, "itemId", wire.item_id)?,
            sdi_digest: field::digest(OBJECT, "sdiDigest", wire.sdi_digest)?,
            authorization_digest: field::digest(
                OBJECT,
                "authorizationDigest",
                wire.authorization_digest,
            )?,
            result: wire.result,
            listing_digest: field::digest(OBJECT, "listingDigest", wire.listing_digest)?,
        })
    }

    /// Signs this receipt with the card's registration key (no chain).
    pub fn sign(&self, card_key: &SigningKey) -> SignedObject {
        <Self as Signed>::sign(self, card_key, Vec::new())
    }
}

der_codec!(Receipt, ReceiptWire, "Receipt");

impl Signed for Receipt {
    const PURPOSE: Purpose = Purpose::Receipt;
}

/// One stored item as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedItem {
    pub item_id: ItemId,
    pub version: u32,
    pub size: u32,
    pub data_digest: Digest,
    pub owner: PartyId,
    pub policy: Policy,
}

#[derive(Sequence)]
pub(crate) struct ListedItemWire<'a> {
    item_id: OctetStringRef<'a>,
    version: u32,
    size: u32,
    data_digest: OctetStringRef<'a>,
    owner: Utf8StringRef<'a>,
    policy: u32,
}

impl ListedItem {
    fn to_wire(&self) -> der::Result<ListedItemWire<'_>> {
        Ok(ListedItemWire {
            item_id: octets(self.item_id.as_bytes())?,
            version: self.version,
            size: self.size,
            data_digest: octets(&self.data_digest.0)?,
            owner: utf8(self.owner.as_str())?,
            policy: self.policy.bits(),
        })
    }

    fn from_wire(wire: ListedItemWire<'_>) -> Result<ListedItem, ProtocolError> {
        const OBJECT: &str = "ListedItem";
        Ok(ListedItem {
            item_id: field::item_id(OBJECT, "itemId", wire.item_id)?,
            version: wire.version,
            size: wire.size,
            data_digest: field::digest(OBJECT, "dataDigest", wire.data_digest)?,
            owner: field::party(OBJECT, "owner", wire.owner)?,
            policy: field::policy(OBJECT, "policy", wire.policy)?,
        })
    }
}

der_codec!(ListedItem, ListedItemWire, "ListedItem");

/// What a card holds: every item in ascending item-ID order (unique), its NVM capacity and the
/// free part of it, in bytes. One value has one encoding, so a party can compute the digest of
/// the contents it expects and compare it with a receipt's `listing_digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingBody {
    items: Vec<ListedItem>,
    capacity: u32,
    free: u32,
}

#[derive(Sequence)]
pub(crate) struct ListingBodyWire<'a> {
    items: Vec<ListedItemWire<'a>>,
    capacity: u32,
    free: u32,
}

impl ListingBody {
    /// The contents `items` (in any order; sorted here), refusing a repeated item ID or
    /// `free > capacity`.
    pub fn new(
        mut items: Vec<ListedItem>,
        capacity: u32,
        free: u32,
    ) -> Result<ListingBody, ProtocolError> {
        items.sort_by(|a, b| a.item_id.cmp(&b.item_id));
        Self::checked(items, capacity, free)
    }

    fn checked(
        items: Vec<ListedItem>,
        capacity: u32,
        free: u32,
    ) -> Result<ListingBody, ProtocolError> {
        const OBJECT: &str = "ListingBody";
        if let Some(pair) = items.windows(2).find(|w| w[0].item_id >= w[1].item_id) {
            return Err(invalid(
                OBJECT,
                "items",
                format!(
                    "item IDs must be unique and ascending; {:?} then {:?}",
                    pair[0].item_id, pair[1].item_id
                ),
            ));
        }
        if free > capacity {
            return Err(invalid(
                OBJECT,
                "free",
                format!("free {free} exceeds capacity {capacity}"),
            ));
        }
        Ok(ListingBody {
            items,
            capacity,
            free,
        })
    }

    /// The items in ascending item-ID order.
    pub fn items(&self) -> &[ListedItem] {
        &self.items
    }

    pub fn capacity(&self) -> u32 {
        self.capacity
    }

    pub fn free(&self) -> u32 {
        self.free
    }

    fn to_wire(&self) -> der::Result<ListingBodyWire<'_>> {
        Ok(ListingBodyWire {
            items: self
                .items
                .iter()
                .map(ListedItem::to_wire)
                .collect::<der::Result<_>>()?,
            capacity: self.capacity,
            free: self.free,
        })
    }

    fn from_wire(wire: ListingBodyWire<'_>) -> Result<ListingBody, ProtocolError> {
        let items = wire
            .items
            .into_iter()
            .map(ListedItem::from_wire)
            .collect::<Result<Vec<_>, _>>()?;
        Self::checked(items, wire.capacity, wire.free)
    }
}

der_codec!(ListingBody, ListingBodyWire, "ListingBody");

/// The digest a receipt carries and a listing's contents hash to: SHA-256 of the DER
/// [`ListingBody`] of `items` (any order), `capacity` and `free`.
pub fn listing_digest(
    items: &[ListedItem],
    capacity: u32,
    free: u32,
) -> Result<Digest, ProtocolError> {
    Ok(ListingBody::new(items.to_vec(), capacity, free)?.digest())
}

/// The card's signed content listing (REC-1), answering a requester's nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub card_id: CardId,
    /// The requester's nonce, echoed for freshness.
    pub nonce: Nonce,
    /// The card's current confirmation counter (that of its latest receipt; 0 before any).
    pub counter: u64,
    pub contents: ListingBody,
}

#[derive(Sequence)]
pub(crate) struct ListingWire<'a> {
    card_id: OctetStringRef<'a>,
    nonce: OctetStringRef<'a>,
    counter: u64,
    contents: ListingBodyWire<'a>,
}

impl Listing {
    fn to_wire(&self) -> der::Result<ListingWire<'_>> {
        Ok(ListingWire {
            card_id: octets(&self.card_id.0)?,
            nonce: octets(self.nonce.as_bytes())?,
            counter: self.counter,
            contents: self.contents.to_wire()?,
        })
    }

    fn from_wire(wire: ListingWire<'_>) -> Result<Listing, ProtocolError> {
        const OBJECT: &str = "Listing";
        Ok(Listing {
            card_id: field::card_id(OBJECT, "cardId", wire.card_id)?,
            nonce: field::nonce(OBJECT, "nonce", wire.nonce)?,
            counter: wire.counter,
            contents: ListingBody::from_wire(wire.contents)?,
        })
    }

    /// Signs this listing with the card's registration key (no chain).
    pub fn sign(&self, card_key: &SigningKey) -> SignedObject {
        <Self as Signed>::sign(self, card_key, Vec::new())
    }
}

der_codec!(Listing, ListingWire, "Listing");

impl Signed for Listing {
    const PURPOSE: Purpose = Purpose::Listing;
}
