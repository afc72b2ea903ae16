//! An issuer's signed order to one of its cards (CARD-3 life cycle, CARD-4 PIN unblock),
//! answering the card's challenge so it is single-use.

use der::asn1::OctetStringRef;
use der::{Enumerated, Sequence};

use crate::codec::der_codec;
use crate::error::ProtocolError;
use crate::field::{self, octets, Challenge};
use crate::signed::{Purpose, Signed, SignedObject};
use crypto::SigningKey;
use pki::{CardId, UnixTime};

/// What the issuer orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enumerated)]
#[repr(u32)]
pub enum IssuerAction {
    /// Reset the PIN retry counter of a blocked PIN (CARD-4: unblock by the issuer only).
    UnblockPin = 0,
    Lock = 1,
    Unlock = 2,
    /// Irreversible: the card answers nothing but status afterwards (CARD-3).
    Terminate = 3,
}

/// An issuer command, signed by the card's issuer with chain `[IRC]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerCommand {
    pub card_id: CardId,
    /// The card's outstanding single-use challenge.
    pub challenge: Challenge,
    pub action: IssuerAction,
    pub issued_at: UnixTime,
    pub not_after: UnixTime,
}

#[derive(Sequence)]
pub(crate) struct IssuerCommandWire<'a> {
    card_id: OctetStringRef<'a>,
    challenge: OctetStringRef<'a>,
    action: IssuerAction,
    issued_at: u64,
    not_after: u64,
}

impl IssuerCommand {
    fn to_wire(&self) -> der::Result<IssuerCommandWire<'_>> {
        Ok(IssuerCommandWire {
            card_id: octets(&self.card_id.0)?,
            challenge: octets(&self.challenge.0)?,
            action: self.action,
            issued_at: self.issued_at.0,
            not_after: self.not_after.0,
        })
    }

    fn from_wire(wire: IssuerCommandWire<'_>) -> Result<IssuerCommand, ProtocolError> {
        const OBJECT: &str = "IssuerCommand";
        Ok(IssuerCommand {
            card_id: field::card_id(OBJECT, "cardId", wire.card_id)?,
            challenge: field::challenge(OBJECT, "challenge", wire.challenge)?,
            action: wire.action,
            issued_at: UnixTime(wire.issued_at),
            not_after: UnixTime(wire.not_after),
        })
    }

    /// Signs this command (chain: the issuer's `[IRC]`).
    pub fn sign(&self, key: &SigningKey, chain: Vec<Vec<u8>>) -> SignedObject {
        <Self as Signed>::sign(self, key, chain)
    }
}

der_codec!(IssuerCommand, IssuerCommandWire, "IssuerCommand");

impl Signed for IssuerCommand {
    const PURPOSE: Purpose = Purpose::IssuerCommand;
}
