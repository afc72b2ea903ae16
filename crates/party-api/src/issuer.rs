//! The issuer's API as a caller sees it (docs/parties.md, "Issuer"): the JSON request and
//! response types of every route, which the issuer server serialises too, and
//! [`IssuerClient`], one method per route. Binary values are lowercase hex; signed objects are
//! hex of `SignedObject` DER.

use std::sync::Arc;

use pki::{CardId, Certificate, Crl, PartyId, UnixTime};
use protocol::{Challenge, Nonce, Sdi, SignedObject};
use serde::{Deserialize, Serialize};

pub use crate::answers::FieldError;
use crate::answers::{certificate_field, get, hex_field, object_field, post};
use crate::{Auth, ClientError, HttpClient, Method, PartySigner};

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
    /// The RC's end of validity: from then on the issuer signs nothing for the card.
    pub not_after: u64,
    /// Set once the RC is revoked (REG-3): the issuer signs nothing more for the card and its
    /// CRL (`GET /v1/crl`) lists the serial.
    #[serde(default)]
    pub revocation: Option<RevocationSummary>,
}

/// How and when a card's RC was revoked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevocationSummary {
    /// One of [`RevokeCardRequest::reason`]'s names.
    pub reason: String,
    pub revoked_at: u64,
}

/// `POST /v1/cards/{card_id}/revocation` (REG-3): revoke the card's RC (a lost or stolen card).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RevokeCardRequest {
    /// One of `unspecified`, `key_compromise`, `affiliation_changed`, `superseded`,
    /// `cessation_of_operation` (the registrars' names; a lost or stolen card is
    /// `key_compromise`).
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RevokeCardResponse {
    pub card_id: String,
    /// The RC's serial, which the CRL lists.
    pub serial: u64,
    pub reason: String,
    pub revoked_at: u64,
    /// A CRL number that lists the RC (the current one when repeated).
    pub crl_number: u64,
    /// False when the RC had been revoked before (the original reason and time are reported).
    pub newly_revoked: bool,
}

/// `GET /v1/crl`: the current CRL of the issuer's RCs, signed with the issuer's key (verify it
/// under its IRC, `GET /v1/issuer`). The same shape as a registrar's `GET /v1/crl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrlResponse {
    pub number: u64,
    pub this_update: u64,
    pub next_update: u64,
    /// DER, hex.
    pub crl: String,
    pub pem: String,
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

/// `GET /v1/crls` and `POST /v1/crls/refresh`: the registrars' CRLs in force at the issuer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrlsResponse {
    pub crls: Vec<CrlSummary>,
    /// Whether one of them revokes the issuer's own IRC (it then signs nothing: 503
    /// `issuer_revoked`).
    pub irc_revoked: bool,
}

/// One CRL in force at the issuer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrlSummary {
    /// The party ID of the registrar that signed it.
    pub issuer: String,
    /// Its cRLNumber.
    pub number: u64,
    pub this_update: u64,
    pub next_update: u64,
    /// How many certificates it revokes.
    pub revoked: u64,
    /// Where it came from: the registrar's base URL, `file` (the issuer's configuration) or
    /// `other`.
    pub source: String,
}

impl ChallengeResponse {
    /// The challenge to give the card's REGISTER.
    pub fn challenge_value(&self) -> Result<Challenge, FieldError> {
        const EXPECTED: &str = "16 bytes of hex";
        let bytes = hex_field("challenge", EXPECTED, &self.challenge)?;
        <[u8; 16]>::try_from(bytes.as_slice())
            .map(Challenge)
            .map_err(|_| FieldError {
                field: "challenge",
                expected: EXPECTED,
                detail: format!("{} bytes", bytes.len()),
            })
    }
}

impl IdentityResponse {
    /// The issuer's IRC: its RCs, SARs, SAs, delegations, ledger entries and CRLs verify under
    /// it (whether it chains to the Issuer Registrar root is the caller's check).
    pub fn irc_certificate(&self) -> Result<Certificate, FieldError> {
        certificate_field("irc", &self.irc)
    }
}

impl CrlResponse {
    /// The CRL, parsed (its signature is not checked here: verify it under the issuer's IRC
    /// with `Crl::verify_signed_by`).
    pub fn crl_value(&self) -> Result<Crl, FieldError> {
        const EXPECTED: &str = "a hex DER CRL";
        Crl::from_der(&hex_field("crl", EXPECTED, &self.crl)?).map_err(|e| FieldError {
            field: "crl",
            expected: EXPECTED,
            detail: e.to_string(),
        })
    }
}

impl RegistrationResponse {
    /// The card's RC.
    pub fn rc_certificate(&self) -> Result<Certificate, FieldError> {
        certificate_field("rc", &self.rc)
    }

    /// The issuer's IRC (REGISTER COMPLETE takes it with the RC).
    pub fn irc_certificate(&self) -> Result<Certificate, FieldError> {
        certificate_field("irc", &self.irc)
    }
}

impl GrantResponse {
    /// The issuer's SA (STO-2).
    pub fn sa_object(&self) -> Result<SignedObject, FieldError> {
        object_field("sa", &self.sa)
    }
}

impl RequestResponse {
    /// The issuer's SAR (STO-1).
    pub fn sar_object(&self) -> Result<SignedObject, FieldError> {
        object_field("sar", &self.sar)
    }

    /// The provider's SA over it, for the card.
    pub fn sa_object(&self) -> Result<SignedObject, FieldError> {
        object_field("sa", &self.sa)
    }
}

impl DelegationResponse {
    /// The issuer's delegation (STO-3), for the provider.
    pub fn delegation_object(&self) -> Result<SignedObject, FieldError> {
        object_field("delegation", &self.delegation)
    }
}

impl ReceiptResponse {
    /// The issuer's signed ledger entry for the receipt.
    pub fn entry_object(&self) -> Result<SignedObject, FieldError> {
        object_field("entry", &self.entry)
    }
}

impl LedgerResponse {
    /// The card's RC (what `protocol::verify_ledger` takes besides the issuer's key).
    pub fn rc_certificate(&self) -> Result<Certificate, FieldError> {
        certificate_field("rc", &self.rc)
    }

    /// The entries, in order, for `protocol::verify_ledger`.
    pub fn entry_objects(&self) -> Result<Vec<SignedObject>, FieldError> {
        self.entries
            .iter()
            .map(|entry| object_field("entries", entry))
            .collect()
    }
}

// ---- client -------------------------------------------------------------------------------

/// A client of one issuer: one method per route, arguments as protocol and PKI types, answers
/// as the API types above (their `*_object`/`*_certificate` methods decode the hex fields).
/// Cheap to clone; clones share connections and the issuer's party ID once learnt.
#[derive(Debug, Clone)]
pub struct IssuerClient {
    http: HttpClient,
    /// The issuer's party ID: the audience of party requests (learnt from `GET /v1/issuer`
    /// on first use unless given).
    party_id: Arc<tokio::sync::OnceCell<PartyId>>,
}

impl IssuerClient {
    pub fn new(http: HttpClient) -> IssuerClient {
        IssuerClient {
            http,
            party_id: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// A client that already knows the issuer's party ID (no lookup before party requests).
    pub fn with_party_id(http: HttpClient, party_id: PartyId) -> IssuerClient {
        IssuerClient {
            http,
            party_id: Arc::new(tokio::sync::OnceCell::new_with(Some(party_id))),
        }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The issuer's party ID, asked once (`GET /v1/issuer`) and remembered.
    pub async fn party_id(&self) -> Result<PartyId, ClientError> {
        self.party_id
            .get_or_try_init(|| async {
                let identity = self.identity().await?;
                PartyId::new(&identity.party_id).map_err(|e| ClientError::InvalidResponse {
                    method: Method::Get.as_str().to_string(),
                    url: format!("{}/v1/issuer", self.http.base_url()),
                    status: 200,
                    detail: format!("party_id {:?}: {e}", identity.party_id),
                })
            })
            .await
            .cloned()
    }

    /// `GET /v1/issuer`: party ID, IRC and public key.
    pub async fn identity(&self) -> Result<IdentityResponse, ClientError> {
        get(&self.http, "/v1/issuer").await
    }

    /// `POST /v1/cards` as operator `token`: a personalisation record (it holds Sk and the
    /// PIN: for the issuer's facility only).
    pub async fn personalise(
        &self,
        token: &str,
        order: &PersonaliseRequest,
    ) -> Result<PersonalisationResponse, ClientError> {
        self.http
            .call(
                Method::Post,
                "/v1/cards",
                Some(order),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/cards/{card_id}`.
    pub async fn card(&self, card_id: &CardId) -> Result<CardResponse, ClientError> {
        get(&self.http, &card_path(card_id, "")).await
    }

    /// `POST /v1/cards/{card_id}/challenge`: a fresh REG-2 challenge.
    pub async fn challenge(&self, card_id: &CardId) -> Result<ChallengeResponse, ClientError> {
        post(
            &self.http,
            &card_path(card_id, "/challenge"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /v1/cards/{card_id}/registration`: the card's signed registration information
    /// (REG-2); the answer carries the RC and the IRC for REGISTER COMPLETE.
    pub async fn register(
        &self,
        card_id: &CardId,
        registration: &SignedObject,
    ) -> Result<RegistrationResponse, ClientError> {
        let request = RegistrationRequest {
            registration: hex::encode(registration.to_der()),
        };
        post(&self.http, &card_path(card_id, "/registration"), &request).await
    }

    /// `GET /v1/cards/{card_id}/contents`: the issuer's view of the card.
    pub async fn contents(&self, card_id: &CardId) -> Result<ContentsResponse, ClientError> {
        get(&self.http, &card_path(card_id, "/contents")).await
    }

    /// `GET /v1/cards/{card_id}/ledger`.
    pub async fn ledger(&self, card_id: &CardId) -> Result<LedgerResponse, ClientError> {
        get(&self.http, &card_path(card_id, "/ledger")).await
    }

    /// `POST /v1/cards/{card_id}/reconcile`: compares the view with the card's signed
    /// `listing`, which answers `nonce` (REC-1).
    pub async fn reconcile(
        &self,
        card_id: &CardId,
        listing: &SignedObject,
        nonce: &Nonce,
    ) -> Result<ReconcileResponse, ClientError> {
        let request = ReconcileRequest {
            listing: hex::encode(listing.to_der()),
            nonce: hex::encode(nonce.as_bytes()),
        };
        post(&self.http, &card_path(card_id, "/reconcile"), &request).await
    }

    /// `PUT /v1/providers/{provider}` as operator `token`: replaces the issuer's policy for
    /// `provider` (status, quota, server URL).
    pub async fn put_provider(
        &self,
        token: &str,
        provider: &PartyId,
        policy: &ProviderRequest,
    ) -> Result<ProviderResponse, ClientError> {
        self.http
            .call(
                Method::Put,
                &format!("/v1/providers/{provider}"),
                Some(policy),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/providers/{provider}`: the policy (an unknown provider is blocked, quota 0).
    pub async fn provider(&self, provider: &PartyId) -> Result<ProviderResponse, ClientError> {
        // Party IDs are [A-Za-z0-9._-]: nothing to escape in a path.
        get(&self.http, &format!("/v1/providers/{provider}")).await
    }

    /// `POST /v1/authorizations/grant` (STO-2) as a party request of provider `signer` at
    /// `now`: the issuer's SA over the provider's own `sar`.
    pub async fn grant(
        &self,
        signer: &PartySigner,
        now: UnixTime,
        sar: &SignedObject,
    ) -> Result<GrantResponse, ClientError> {
        let audience = self.party_id().await?;
        let request = GrantRequest {
            sar: hex::encode(sar.to_der()),
        };
        self.http
            .call(
                Method::Post,
                "/v1/authorizations/grant",
                Some(&request),
                Auth::Party {
                    signer,
                    audience: &audience,
                    now,
                },
            )
            .await
    }

    /// `POST /v1/authorizations/request` (STO-1): the issuer's SAR for `sdi` on its card over
    /// the card's `challenge`, and the item's provider's SA over it (obtained and verified by
    /// the issuer): give the SA to the card.
    pub async fn request(
        &self,
        card_id: &CardId,
        sdi: &Sdi,
        challenge: &Challenge,
    ) -> Result<RequestResponse, ClientError> {
        let request = RequestRequest {
            card_id: card_id.to_hex(),
            sdi: hex::encode(sdi.to_der()),
            challenge: hex::encode(challenge.0),
        };
        post(&self.http, "/v1/authorizations/request", &request).await
    }

    /// `POST /v1/delegations` as operator `token` (STO-3).
    pub async fn delegate(
        &self,
        token: &str,
        order: &DelegationRequest,
    ) -> Result<DelegationResponse, ClientError> {
        self.http
            .call(
                Method::Post,
                "/v1/delegations",
                Some(order),
                Auth::Operator(token),
            )
            .await
    }

    /// `POST /v1/receipts` (STO-7): the card's receipt, with its SDI when the issuer signed no
    /// authorization for it (STO-3). The same receipt again answers the first entry
    /// (`newly_recorded: false`).
    pub async fn receipt(
        &self,
        receipt: &SignedObject,
        sdi: Option<&Sdi>,
    ) -> Result<ReceiptResponse, ClientError> {
        let request = ReceiptRequest {
            receipt: hex::encode(receipt.to_der()),
            sdi: sdi.map(|sdi| hex::encode(sdi.to_der())),
        };
        post(&self.http, "/v1/receipts", &request).await
    }

    /// `POST /v1/cards/{card_id}/revocation` as operator `token` (REG-3): revokes the card's
    /// RC for `reason` (one of [`RevokeCardRequest::reason`]'s names) and publishes a CRL
    /// listing it. Repeating it succeeds with the first revocation (`newly_revoked: false`).
    pub async fn revoke_card(
        &self,
        token: &str,
        card_id: &CardId,
        reason: &str,
    ) -> Result<RevokeCardResponse, ClientError> {
        let request = RevokeCardRequest {
            reason: reason.to_string(),
        };
        self.http
            .call(
                Method::Post,
                &card_path(card_id, "/revocation"),
                Some(&request),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/crl`: the current CRL of the issuer's RCs.
    pub async fn crl(&self) -> Result<CrlResponse, ClientError> {
        get(&self.http, "/v1/crl").await
    }

    /// The current CRL of the issuer's RCs, parsed, its number checked against the answer's.
    /// Its signature is not checked here: verify it under the issuer's IRC
    /// (`Crl::verify_signed_by`), having checked the IRC itself.
    pub async fn current_crl(&self) -> Result<Crl, ClientError> {
        let answer = self.crl().await?;
        let invalid = |detail: String| ClientError::InvalidResponse {
            method: Method::Get.as_str().to_string(),
            url: format!("{}/v1/crl", self.http.base_url()),
            status: 200,
            detail,
        };
        let crl = answer.crl_value().map_err(|e| invalid(e.to_string()))?;
        if crl.number() != answer.number {
            return Err(invalid(format!(
                "number {} is not the CRL's own number {}",
                answer.number,
                crl.number()
            )));
        }
        Ok(crl)
    }

    /// `GET /v1/crls`: the registrars' CRLs the issuer holds now.
    pub async fn crls(&self) -> Result<CrlsResponse, ClientError> {
        get(&self.http, "/v1/crls").await
    }

    /// `POST /v1/crls/refresh` as operator `token`: the issuer fetches its registrars' CRLs
    /// now (right after a revocation, instead of waiting for its periodic refresh) and answers
    /// what it then holds. 409 `no_registrars` when it follows none; 502
    /// `registrar_unreachable` / `registrar_refused` naming a registrar that failed.
    pub async fn refresh_crls(&self, token: &str) -> Result<CrlsResponse, ClientError> {
        self.http
            .call::<(), _>(
                Method::Post,
                "/v1/crls/refresh",
                None,
                Auth::Operator(token),
            )
            .await
    }
}

fn card_path(card_id: &CardId, rest: &str) -> String {
    format!("/v1/cards/{}{rest}", card_id.to_hex())
}
