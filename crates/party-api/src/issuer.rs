//! The issuer's API as a caller sees it (docs/parties.md, "Issuer"): the JSON request and
//! response types of every route, which the issuer server serialises too. Binary values are
//! lowercase hex; signed objects are hex of `SignedObject` DER.

use serde::{Deserialize, Serialize};

/// `GET /v1/issuer`: who this issuer is (its IRC carries the key its ledgers are signed with).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityResponse {
    pub party_id: String,
    /// DER, hex.
    pub irc: String,
    /// SEC1, hex.
    pub public_key: String,
}

/// `POST /v1/cards`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PersonaliseRequest {
    /// The holder's initial PIN, 4..=12 digits. Returned in the record, never stored.
    pub pin: String,
    /// Default 3.
    #[serde(default)]
    pub pin_try_limit: Option<u8>,
    /// Content capacity in bytes; default 32768.
    #[serde(default)]
    pub capacity: Option<u32>,
}

/// The personalisation record: `terminal::Personalisation`'s fields, binary values hex. It
/// holds `Sk` and the PIN: for the issuer's facility only.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PersonalisationResponse {
    pub card_id: String,
    pub sk: String,
    pub sk_version: u8,
    /// DER, hex.
    pub issuer_anchor: String,
    /// DER, hex.
    pub data_anchor: String,
    pub issuer: String,
    pub pin: String,
    pub pin_salt: String,
    pub pin_try_limit: u8,
    pub issuer_authenticator: String,
    pub capacity: u32,
    pub time_floor: u64,
}

impl std::fmt::Debug for PersonalisationResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalisationResponse")
            .field("card_id", &self.card_id)
            .finish_non_exhaustive()
    }
}

/// `GET /v1/cards/{card_id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CardResponse {
    pub card_id: String,
    /// `personalised` or `registered`.
    pub status: String,
    pub capacity: u32,
    pub personalised_at: u64,
    pub registration: Option<RegistrationSummary>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationSummary {
    pub serial: u64,
    pub user_id: String,
    pub registered_at: u64,
    /// DER, hex.
    pub rc: String,
}

/// `POST /v1/cards/{card_id}/challenge`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChallengeResponse {
    pub card_id: String,
    /// 16 bytes, hex: give it to the card's REGISTER.
    pub challenge: String,
    pub expires_at: u64,
}

/// `POST /v1/cards/{card_id}/registration`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// The card's signed RegistrationInfo (SignedObject DER), hex.
    pub registration: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RegistrationResponse {
    /// The RC, DER hex: give it with the IRC to the card's REGISTER COMPLETE.
    pub rc: String,
    /// The issuer's IRC, DER hex.
    pub irc: String,
    pub serial: u64,
    pub not_before: u64,
    pub not_after: u64,
}

/// `PUT /v1/providers/{provider}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProviderRequest {
    /// `allowed` or `blocked`.
    pub status: String,
    /// The most bytes this provider's items may occupy on one card.
    pub quota_bytes: u32,
    /// The provider server's base URL (`http://…` or `https://…`): STO-1 requests are
    /// forwarded there. Absent: none (a PUT replaces the whole policy).
    #[serde(default)]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ProviderResponse {
    pub provider: String,
    pub status: String,
    pub quota_bytes: u32,
    pub updated_at: u64,
    #[serde(default)]
    pub url: Option<String>,
}

/// `POST /v1/authorizations/grant` (STO-2).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    /// The provider's signed SAR (SignedObject DER), hex.
    pub sar: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GrantResponse {
    /// The issuer's SA (SignedObject DER), hex.
    pub sa: String,
    pub not_after: u64,
}

/// `POST /v1/authorizations/request` (STO-1): the issuer signs the SAR, obtains the provider's
/// SA over it and answers both.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RequestRequest {
    pub card_id: String,
    /// The SDI (DER), hex.
    pub sdi: String,
    /// The card's current challenge (16 bytes), hex.
    pub challenge: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RequestResponse {
    /// The issuer's SAR (SignedObject DER), hex.
    pub sar: String,
    /// The item's provider's SA over that SAR (SignedObject DER), hex, verified by the issuer:
    /// give it to the card.
    pub sa: String,
    /// The SA's `not_after`.
    pub not_after: u64,
}

/// `POST /v1/delegations` (STO-3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DelegationRequest {
    pub provider: String,
    /// The provider's DPR, DER hex: the delegation is pinned to it.
    pub provider_certificate: String,
    /// Non-empty subset of `store`, `delete`.
    pub operations: Vec<String>,
    /// Item ID prefix, hex (0..=16 bytes; empty = every item).
    #[serde(default)]
    pub item_prefix: String,
    pub max_item_size: u32,
    /// One card (hex) or, absent, every card of this issuer.
    #[serde(default)]
    pub card_id: Option<String>,
    #[serde(default)]
    pub not_after: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DelegationResponse {
    /// The issuer's Delegation (SignedObject DER), hex.
    pub delegation: String,
    pub not_after: u64,
}

/// `POST /v1/receipts` (STO-7).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    /// The card's signed receipt (SignedObject DER), hex.
    pub receipt: String,
    /// The SDI (DER hex) the receipt is for; needed only when this issuer did not sign an
    /// authorization for it (STO-3).
    #[serde(default)]
    pub sdi: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceiptResponse {
    pub card_id: String,
    pub seq: u64,
    pub counter: u64,
    /// The signed ledger entry (SignedObject DER), hex.
    pub entry: String,
    /// False when this receipt had been recorded before.
    pub newly_recorded: bool,
    /// Whether the issuer's view hashes to the receipt's listing digest; if not, reconcile
    /// with the card's signed listing.
    pub in_sync: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ItemBody {
    /// Hex.
    pub item_id: String,
    pub version: u32,
    pub size: u32,
    /// SHA-256, hex.
    pub data_digest: String,
    pub owner: String,
    pub policy: u32,
}

/// `GET /v1/cards/{card_id}/contents`: what the issuer believes is on the card.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ContentsResponse {
    pub card_id: String,
    pub last_counter: u64,
    pub capacity: u32,
    pub free: u32,
    pub items: Vec<ItemBody>,
    /// ListingBody digest of this view, hex: equal to the latest receipt's when in sync.
    pub view_digest: String,
}

/// `GET /v1/cards/{card_id}/ledger`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LedgerResponse {
    pub card_id: String,
    /// The card's RC, DER hex (what `verify_ledger` needs besides the issuer's key).
    pub rc: String,
    /// Signed LedgerEntry objects (DER hex) in order.
    pub entries: Vec<String>,
}

/// `POST /v1/cards/{card_id}/reconcile` (REC-1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReconcileRequest {
    /// The card's signed listing (SignedObject DER), hex.
    pub listing: String,
    /// The nonce the listing answers (0..=32 bytes), hex.
    pub nonce: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReconcileResponse {
    pub card_id: String,
    pub in_sync: bool,
    pub card_counter: u64,
    pub issuer_counter: u64,
    pub only_on_card: Vec<ItemBody>,
    pub only_in_view: Vec<ItemBody>,
    /// The card's version of items both hold with different details.
    pub differing: Vec<ItemBody>,
}
