//! The provider's API as a caller sees it (docs/parties.md, "Provider"): the JSON types of its
//! routes, which the provider server serialises too. Binary values (DER objects, digests, IDs,
//! data) are lowercase hex strings.

use serde::{Deserialize, Serialize};

/// `POST /v1/items`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// 1..=16 bytes, hex.
    pub item_id: String,
    pub version: u32,
    /// The item's bytes, hex (as every binary value in the API).
    pub data: String,
    /// Policy bits (protocol::Policy): 1 certified data required, 2 not deletable, 4 delete
    /// when disabled. Default 0.
    #[serde(default)]
    pub policy: u32,
}

/// One catalog item version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemResponse {
    pub item_id: String,
    pub version: u32,
    pub size: u32,
    /// SHA-256 of the data, hex.
    pub data_digest: String,
    pub policy: u32,
    pub published_at: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemList {
    pub items: Vec<ItemResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VersionQuery {
    #[serde(default)]
    pub version: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DataQuery {
    /// The card the data is for, 32 hex digits.
    pub card: String,
    #[serde(default)]
    pub version: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CertifiedQuery {
    pub card: String,
    /// The SDI's DER, hex.
    pub sdi: String,
}

/// `GET /v1/items/{id}/data` and `…/certified`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataResponse {
    #[serde(flatten)]
    pub item: ItemResponse,
    /// Hex.
    pub data: String,
    /// The SDCI (hex DER SignedObject) on `…/certified`, absent on `…/data`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sdci: Option<String>,
}

/// `POST /v1/authorizations/grant`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The issuer's SAR, hex DER SignedObject.
    pub sar: String,
}

/// `POST /v1/authorizations/request` (STO-2): the provider signs the SAR and asks the card's
/// issuer for its SA.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RequestRequest {
    pub card_id: String,
    /// SHA-256 of the card's RC DER, hex.
    pub rc_digest: String,
    /// DER, hex.
    pub sdi: String,
    /// The card's 16-byte challenge, hex.
    pub challenge: String,
    /// The card's issuer (party ID, the subject of the IRC the card holds): one the provider
    /// works with.
    pub issuer: String,
}

/// `POST /v1/authorizations/alone` (STO-3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AloneRequest {
    /// The issuer's delegation, hex DER SignedObject. Absent: the provider uses one it keeps
    /// (`POST /v1/delegations`) that covers the SDI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegation: Option<String>,
    /// DER, hex.
    pub sdi: String,
    /// The card's 16-byte challenge, hex.
    pub challenge: String,
}

/// `POST /v1/delegations`: an issuer's delegation for the provider to keep (STO-3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddDelegationRequest {
    /// The issuer's delegation, hex DER SignedObject.
    pub delegation: String,
}

/// A delegation the provider keeps: what it lets the provider authorize alone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DelegationResponse {
    /// SHA-256 of the signed delegation's DER, hex: its identity.
    pub digest: String,
    /// The issuer that signed it (party ID).
    pub issuer: String,
    pub issued_at: u64,
    /// Its last valid second (Unix time).
    pub not_after: u64,
    /// `store`, `delete`.
    pub operations: Vec<String>,
    /// Item IDs it covers start with these bytes, hex (empty: every item).
    pub item_prefix: String,
    pub max_item_size: u32,
    /// The card it is limited to (32 hex digits); absent: any card of the issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_id: Option<String>,
    /// When the provider stored it (Unix time).
    pub stored_at: u64,
}

/// `GET /v1/delegations`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DelegationList {
    /// By the time they were stored.
    pub delegations: Vec<DelegationResponse>,
}

/// `POST /v1/authorizations/grant` and `…/alone`: the provider's SA.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SaResponse {
    /// The SA, hex DER SignedObject.
    pub sa: String,
    /// The SA's last valid second (Unix time).
    pub not_after: u64,
}

/// `POST /v1/authorizations/request` (STO-2): the provider's SAR and the issuer's SA over it,
/// verified by the provider as the card will verify it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestResponse {
    /// The provider's SAR, hex DER SignedObject.
    pub sar: String,
    /// The issuer's SA over that SAR, hex DER SignedObject: give it to the card.
    pub sa: String,
    /// The SA's last valid second (Unix time).
    pub not_after: u64,
}

/// `POST /v1/receipts`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// The card's receipt, hex DER SignedObject.
    pub receipt: String,
    /// The card's RC, hex DER.
    pub rc: String,
    /// The IRC of the issuer that signed the RC, hex DER.
    pub irc: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiptResponse {
    pub card_id: String,
    pub seq: u64,
    pub counter: u64,
    /// The ledger entry, hex DER SignedObject.
    pub entry: String,
    /// False when this receipt had been recorded before (the original entry is returned).
    pub newly_recorded: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ViewItemResponse {
    pub item_id: String,
    pub version: u32,
    pub size: u32,
    pub data_digest: String,
    pub policy: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentsResponse {
    pub card_id: String,
    pub items: Vec<ViewItemResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LedgerEntryResponse {
    pub seq: u64,
    pub counter: u64,
    pub entry: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LedgerResponse {
    pub card_id: String,
    /// The RC the receipts verify under, hex DER.
    pub rc: String,
    pub entries: Vec<LedgerEntryResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    pub item: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub card_id: String,
    pub version: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MembersResponse {
    pub item_id: String,
    pub cards: Vec<Member>,
}
