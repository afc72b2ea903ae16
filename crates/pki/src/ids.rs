//! The identifiers every layer shares: time, card IDs, party IDs and party roles.

use crate::PkiError;

/// Seconds since the Unix epoch. Cores never read a clock; they are given one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub u64);

impl std::fmt::Display for UnixTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// A card's 16-byte identifier (SPEC §1), written by its issuer at personalisation.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardId(pub [u8; 16]);

impl CardId {
    pub fn from_slice(bytes: &[u8]) -> Option<CardId> {
        bytes.try_into().ok().map(CardId)
    }
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Display for CardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for CardId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardId({})", self.to_hex())
    }
}

/// The identifier of an issuer, provider or registrar: 1..=64 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartyId(String);

impl PartyId {
    pub fn new(id: &str) -> Result<PartyId, PkiError> {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(PartyId(id.to_string()))
        } else {
            Err(PkiError::InvalidPartyId {
                id: id.chars().take(80).collect(),
            })
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The party ID a card goes by in certificates: its card ID as 32 lowercase hex characters
    /// (the RC's subject common name).
    pub fn for_card(card_id: &CardId) -> PartyId {
        PartyId(card_id.to_hex())
    }
}

impl std::fmt::Display for PartyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The role a certificate gives its subject (SPEC §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Root authority that certifies issuers (IRC).
    IssuerRegistrar,
    /// Root authority that certifies providers (DPR) and may certify data (SDCI').
    DataRegistrar,
    /// A card issuer, certified by the Issuer Registrar; it certifies its cards (RC).
    Issuer,
    /// A service provider, certified by the Data Registrar.
    Provider,
    /// A card, certified by its issuer (the registration certificate, RC).
    Card,
}
