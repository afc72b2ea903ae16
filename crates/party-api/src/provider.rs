//! The provider's API as a caller sees it (docs/parties.md, "Provider"): the JSON types of its
//! routes, which the provider server serialises too, and [`ProviderClient`], one method per
//! route. Binary values (DER objects, digests, IDs, data) are lowercase hex strings; signed
//! objects are hex of `SignedObject` DER.

use std::sync::Arc;

use crypto::Digest;
use pki::{CardId, Certificate, PartyId, UnixTime};
use protocol::{Challenge, ItemId, Policy, Sdi, SignedObject};
use serde::{Deserialize, Serialize};

pub use crate::answers::FieldError;
use crate::answers::{certificate_field, digest_field, get, hex_field, object_field, post};
use crate::{Auth, ClientError, HttpClient, Method, PartySigner};

/// `GET /v1/provider`: who this provider is (its DPR carries the key its SAs, SDCIs and
/// ledger entries are signed with).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdentityResponse {
    pub party_id: String,
    /// DER, hex.
    pub dpr: String,
    /// SEC1, hex.
    pub public_key: String,
}

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
    /// Who certifies the data: `provider` (default; the provider's SDCI) or `data-registrar`
    /// (the Data Registrar's SDCI', STO-5, which the provider obtains and serves as is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Who signs the certificate of the data on `GET /v1/items/{id}/certified` (the `by` query
/// parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certifier {
    /// The provider's own SDCI (STO-4): `by=provider`, the default.
    Provider,
    /// The Data Registrar's SDCI' (STO-5), obtained by the provider: `by=data-registrar`.
    DataRegistrar,
}

impl Certifier {
    /// The `by` query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Certifier::Provider => "provider",
            Certifier::DataRegistrar => "data-registrar",
        }
    }

    /// The certifier a `by` query value names (`None`: the default, the provider).
    pub fn from_query(by: Option<&str>) -> Option<Certifier> {
        match by {
            None | Some("provider") => Some(Certifier::Provider),
            Some("data-registrar") => Some(Certifier::DataRegistrar),
            Some(_) => None,
        }
    }
}

/// `GET /v1/items/{id}/data` and `…/certified`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct DataResponse {
    #[serde(flatten)]
    pub item: ItemResponse,
    /// Hex.
    pub data: String,
    /// The SDCI (hex DER SignedObject) on `…/certified`, absent on `…/data`: the provider's,
    /// or the Data Registrar's SDCI' when asked `by=data-registrar`.
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

/// `GET /v1/crls` and `POST /v1/crls/refresh`: the CRLs in force at the provider (the
/// registrars' and, for their RCs, the issuers').
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrlsResponse {
    pub crls: Vec<CrlSummary>,
}

/// One CRL in force at the provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CrlSummary {
    /// The party ID of the registrar or issuer that signed it.
    pub issuer: String,
    /// Its cRLNumber.
    pub number: u64,
    pub this_update: u64,
    pub next_update: u64,
    /// How many certificates it revokes.
    pub revoked: u64,
    /// Where it came from: the base URL of the registrar or issuer it was fetched from, `file`
    /// (the provider's configuration) or `other`.
    pub source: String,
}

impl IdentityResponse {
    /// The provider's DPR.
    pub fn dpr_certificate(&self) -> Result<Certificate, FieldError> {
        certificate_field("dpr", &self.dpr)
    }
}

impl ItemResponse {
    pub fn item_id_value(&self) -> Result<ItemId, FieldError> {
        const EXPECTED: &str = "1..=16 bytes of hex";
        ItemId::new(&hex_field("item_id", EXPECTED, &self.item_id)?).map_err(|e| FieldError {
            field: "item_id",
            expected: EXPECTED,
            detail: e.to_string(),
        })
    }

    /// SHA-256 of the item's data, as an SDI names it.
    pub fn data_digest_value(&self) -> Result<Digest, FieldError> {
        digest_field("data_digest", &self.data_digest)
    }

    pub fn policy_value(&self) -> Result<Policy, FieldError> {
        Policy::from_bits(self.policy).map_err(|e| FieldError {
            field: "policy",
            expected: "known policy bits",
            detail: e.to_string(),
        })
    }
}

impl DataResponse {
    /// The item's bytes.
    pub fn data_bytes(&self) -> Result<Vec<u8>, FieldError> {
        hex_field("data", "hex", &self.data)
    }

    /// The SDCI over the SDI asked for (`…/certified` answers only): the provider's, or the
    /// Data Registrar's SDCI' when asked `by=data-registrar`.
    pub fn sdci_object(&self) -> Result<SignedObject, FieldError> {
        let text = self.sdci.as_deref().ok_or(FieldError {
            field: "sdci",
            expected: "present (the certified route's answer)",
            detail: "absent".to_string(),
        })?;
        object_field("sdci", text)
    }
}

impl SaResponse {
    /// The provider's SA, for the card (STO-1, STO-3).
    pub fn sa_object(&self) -> Result<SignedObject, FieldError> {
        object_field("sa", &self.sa)
    }
}

impl RequestResponse {
    /// The provider's SAR (STO-2).
    pub fn sar_object(&self) -> Result<SignedObject, FieldError> {
        object_field("sar", &self.sar)
    }

    /// The issuer's SA over it, for the card.
    pub fn sa_object(&self) -> Result<SignedObject, FieldError> {
        object_field("sa", &self.sa)
    }
}

impl ReceiptResponse {
    /// The provider's signed ledger entry for the receipt.
    pub fn entry_object(&self) -> Result<SignedObject, FieldError> {
        object_field("entry", &self.entry)
    }
}

impl LedgerResponse {
    /// The card's RC (what `protocol::verify_ledger` takes besides the provider's key).
    pub fn rc_certificate(&self) -> Result<Certificate, FieldError> {
        certificate_field("rc", &self.rc)
    }

    /// The entries, in order, for `protocol::verify_ledger`.
    pub fn entry_objects(&self) -> Result<Vec<SignedObject>, FieldError> {
        self.entries
            .iter()
            .map(|entry| object_field("entries", &entry.entry))
            .collect()
    }
}

// ---- client -------------------------------------------------------------------------------

/// A client of one provider: one method per route, arguments as protocol and PKI types, answers
/// as the API types above (their `*_object`/`*_certificate`/`*_value` methods decode the hex
/// fields). Cheap to clone; clones share connections and the provider's party ID once learnt.
#[derive(Debug, Clone)]
pub struct ProviderClient {
    http: HttpClient,
    /// The provider's party ID: the audience of party requests (learnt from `GET /v1/provider`
    /// on first use unless given).
    party_id: Arc<tokio::sync::OnceCell<PartyId>>,
}

impl ProviderClient {
    pub fn new(http: HttpClient) -> ProviderClient {
        ProviderClient {
            http,
            party_id: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// A client that already knows the provider's party ID (no lookup before party requests).
    pub fn with_party_id(http: HttpClient, party_id: PartyId) -> ProviderClient {
        ProviderClient {
            http,
            party_id: Arc::new(tokio::sync::OnceCell::new_with(Some(party_id))),
        }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The provider's party ID, asked once (`GET /v1/provider`) and remembered.
    pub async fn party_id(&self) -> Result<PartyId, ClientError> {
        self.party_id
            .get_or_try_init(|| async {
                let identity = self.identity().await?;
                PartyId::new(&identity.party_id).map_err(|e| ClientError::InvalidResponse {
                    method: Method::Get.as_str().to_string(),
                    url: format!("{}/v1/provider", self.http.base_url()),
                    status: 200,
                    detail: format!("party_id {:?}: {e}", identity.party_id),
                })
            })
            .await
            .cloned()
    }

    /// `GET /v1/provider`: party ID, DPR and public key.
    pub async fn identity(&self) -> Result<IdentityResponse, ClientError> {
        get(&self.http, "/v1/provider").await
    }

    /// `POST /v1/items` as operator `token`: publishes `data` as `item_id` version `version`
    /// (size and digest are computed by the provider). Publishing the same again answers the
    /// item as it is; other content under the same version is refused (409).
    pub async fn publish(
        &self,
        token: &str,
        item_id: &ItemId,
        version: u32,
        data: &[u8],
        policy: Policy,
    ) -> Result<ItemResponse, ClientError> {
        let request = PublishRequest {
            item_id: hex::encode(item_id.as_bytes()),
            version,
            data: hex::encode(data),
            policy: policy.bits(),
        };
        self.http
            .call(
                Method::Post,
                "/v1/items",
                Some(&request),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/items`: the catalog.
    pub async fn items(&self) -> Result<ItemList, ClientError> {
        get(&self.http, "/v1/items").await
    }

    /// `GET /v1/items/{item_id}`: one version, the highest if `version` is `None`.
    pub async fn item(
        &self,
        item_id: &ItemId,
        version: Option<u32>,
    ) -> Result<ItemResponse, ClientError> {
        get(
            &self.http,
            &format!("{}{}", item_path(item_id, ""), version_query('?', version)),
        )
        .await
    }

    /// `GET /v1/items/{item_id}/data`: the data for `card`, which the provider must have
    /// consented to store it on.
    pub async fn data(
        &self,
        item_id: &ItemId,
        card: &CardId,
        version: Option<u32>,
    ) -> Result<DataResponse, ClientError> {
        let path = format!(
            "{}?card={}{}",
            item_path(item_id, "/data"),
            card.to_hex(),
            version_query('&', version)
        );
        get(&self.http, &path).await
    }

    /// `GET /v1/items/{item_id}/certified`: the data with an SDCI over `sdi` (see
    /// [`DataResponse::sdci_object`]) signed `by` the provider (STO-4) or by the Data
    /// Registrar (STO-5, the SDCI' the provider obtains and serves as is).
    pub async fn certified(
        &self,
        item_id: &ItemId,
        card: &CardId,
        sdi: &Sdi,
        by: Certifier,
    ) -> Result<DataResponse, ClientError> {
        let by = match by {
            Certifier::Provider => String::new(),
            Certifier::DataRegistrar => format!("&by={}", by.as_str()),
        };
        let path = format!(
            "{}?card={}&sdi={}{by}",
            item_path(item_id, "/certified"),
            card.to_hex(),
            hex::encode(sdi.to_der())
        );
        get(&self.http, &path).await
    }

    /// `POST /v1/authorizations/grant` (STO-1) as a party request of issuer `signer` at
    /// `now`: the provider's SA over the issuer's own `sar`.
    pub async fn grant(
        &self,
        signer: &PartySigner,
        now: UnixTime,
        sar: &SignedObject,
    ) -> Result<SaResponse, ClientError> {
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

    /// `POST /v1/authorizations/request` (STO-2): the provider's SAR for `sdi` on `card_id`
    /// (whose RC has digest `rc_digest`) over the card's `challenge`, and the SA of the card's
    /// `issuer` over it (obtained and verified by the provider): give the SA to the card.
    pub async fn request(
        &self,
        card_id: &CardId,
        rc_digest: &Digest,
        sdi: &Sdi,
        challenge: &Challenge,
        issuer: &PartyId,
    ) -> Result<RequestResponse, ClientError> {
        let request = RequestRequest {
            card_id: card_id.to_hex(),
            rc_digest: hex::encode(rc_digest.0),
            sdi: hex::encode(sdi.to_der()),
            challenge: hex::encode(challenge.0),
            issuer: issuer.to_string(),
        };
        post(&self.http, "/v1/authorizations/request", &request).await
    }

    /// `POST /v1/authorizations/alone` (STO-3): the provider's lone SA for `sdi` over the
    /// card's `challenge`, under `delegation`, or under one it keeps when `None`.
    pub async fn alone(
        &self,
        sdi: &Sdi,
        challenge: &Challenge,
        delegation: Option<&SignedObject>,
    ) -> Result<SaResponse, ClientError> {
        let request = AloneRequest {
            delegation: delegation.map(|d| hex::encode(d.to_der())),
            sdi: hex::encode(sdi.to_der()),
            challenge: hex::encode(challenge.0),
        };
        post(&self.http, "/v1/authorizations/alone", &request).await
    }

    /// `POST /v1/delegations` as operator `token`: the provider keeps the issuer's
    /// `delegation` for STO-3 (after checking it); the same again answers it unchanged.
    pub async fn add_delegation(
        &self,
        token: &str,
        delegation: &SignedObject,
    ) -> Result<DelegationResponse, ClientError> {
        let request = AddDelegationRequest {
            delegation: hex::encode(delegation.to_der()),
        };
        self.http
            .call(
                Method::Post,
                "/v1/delegations",
                Some(&request),
                Auth::Operator(token),
            )
            .await
    }

    /// `GET /v1/delegations`: the delegations the provider keeps.
    pub async fn delegations(&self) -> Result<DelegationList, ClientError> {
        get(&self.http, "/v1/delegations").await
    }

    /// `POST /v1/receipts` (STO-7): the card's receipt with its RC and the IRC of the issuer
    /// that signed the RC. The same receipt again answers the first entry
    /// (`newly_recorded: false`).
    pub async fn receipt(
        &self,
        receipt: &SignedObject,
        rc: &Certificate,
        irc: &Certificate,
    ) -> Result<ReceiptResponse, ClientError> {
        let request = ReceiptRequest {
            receipt: hex::encode(receipt.to_der()),
            rc: hex::encode(rc.der()),
            irc: hex::encode(irc.der()),
        };
        post(&self.http, "/v1/receipts", &request).await
    }

    /// `GET /v1/cards/{card_id}/contents`: the provider's view of its items on the card.
    pub async fn contents(&self, card_id: &CardId) -> Result<ContentsResponse, ClientError> {
        get(
            &self.http,
            &format!("/v1/cards/{}/contents", card_id.to_hex()),
        )
        .await
    }

    /// `GET /v1/cards/{card_id}/ledger`.
    pub async fn ledger(&self, card_id: &CardId) -> Result<LedgerResponse, ClientError> {
        get(
            &self.http,
            &format!("/v1/cards/{}/ledger", card_id.to_hex()),
        )
        .await
    }

    /// `GET /v1/members?item=`: the cards holding `item_id` in the provider's view.
    pub async fn members(&self, item_id: &ItemId) -> Result<MembersResponse, ClientError> {
        get(
            &self.http,
            &format!("/v1/members?item={}", hex::encode(item_id.as_bytes())),
        )
        .await
    }

    /// `GET /v1/crls`: the CRLs the provider holds now (the registrars', the issuers').
    pub async fn crls(&self) -> Result<CrlsResponse, ClientError> {
        get(&self.http, "/v1/crls").await
    }

    /// `POST /v1/crls/refresh` as operator `token`: the provider fetches its registrars' and
    /// issuers' CRLs now (right after a revocation, instead of waiting for its periodic
    /// refresh) and answers what it then holds. 409 `no_registrars` when it follows none; 502
    /// `registrar_unreachable` / `registrar_refused` naming a registrar that failed, or
    /// `issuer_unreachable` / `issuer_refused` when only issuers failed.
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

fn item_path(item_id: &ItemId, rest: &str) -> String {
    format!("/v1/items/{}{rest}", hex::encode(item_id.as_bytes()))
}

/// `?version=N` / `&version=N`, or nothing.
fn version_query(separator: char, version: Option<u32>) -> String {
    version
        .map(|v| format!("{separator}version={v}"))
        .unwrap_or_default()
}
