//! Identities and certificates of every party: registrar roots, issuers (IRC), providers (DPR)
//! and cards (RC); revocation lists; chain verification against trust anchors at a given time.
//! No IO: time enters as a [`UnixTime`] value.

mod ids;

pub use ids::{CardId, PartyId, Role, UnixTime};

/// What went wrong with an identity, a certificate or a chain. Variants carry the offending values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    #[error("party ID {id:?} is not 1..=64 characters of [A-Za-z0-9._-]")]
    InvalidPartyId { id: String },
}
