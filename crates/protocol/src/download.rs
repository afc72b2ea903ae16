//! APP-3: adding an application over the Internet (docs/app-download.md §2). The provider
//! answers the user's service choice with a [`DownloadRequest`]; the card signs it, with its
//! receipt counter and free bytes, as a [`DownloadApplication`] (purpose
//! `downloadApplication`, the card's registration key, no chain); the issuer (and the provider,
//! on the download grant) check it with [`verify_download_application`].

use der::asn1::{OctetStringRef, Utf8StringRef};
use der::Sequence;

use crate::codec::der_codec;
use crate::error::ProtocolError;
use crate::field::{self, invalid, octets, utf8, ItemId};
use crate::signed::{Purpose, Signed, SignedObject};
use crypto::{Digest, SigningKey};
use pki::{CardId, Certificate, PartyId, Role, UnixTime};

/// One download's idempotency key (REC-2), 16 random bytes minted by the terminal when the
/// user accepts the terms. Written as 32 lowercase hex characters in URLs and journals.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OperationId(pub [u8; 16]);

impl OperationId {
    pub const LEN: usize = 16;

    /// A fresh operation ID from `rng`.
    pub fn generate(rng: &mut dyn crypto::Rng) -> OperationId {
        let mut bytes = [0u8; Self::LEN];
        rng.fill(&mut bytes);
        OperationId(bytes)
    }

    /// 32 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses exactly 32 hex characters (either case).
    pub fn from_hex(text: &str) -> Result<OperationId, ProtocolError> {
        let refuse = || {
            invalid(
                "OperationId",
                "operationId",
                format!(
                    "{:?} is not {} hex characters",
                    text.chars().take(40).collect::<String>(),
                    2 * Self::LEN
                ),
            )
        };
        // Hex digits only: from_str_radix alone would also take a sign ("+a").
        if text.len() != 2 * Self::LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(refuse());
        }
        let mut bytes = [0u8; Self::LEN];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| refuse())?;
        }
        Ok(OperationId(bytes))
    }
}

impl std::fmt::Display for OperationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for OperationId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperationId({})", self.to_hex())
    }
}

/// A provider's service in its catalog (APP-2): 1..=64 characters of `[A-Za-z0-9._-]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceId(String);

impl ServiceId {
    pub const MAX_CHARS: usize = 64;

    pub fn new(id: &str) -> Result<ServiceId, ProtocolError> {
        let ok = !id.is_empty()
            && id.len() <= Self::MAX_CHARS
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(ServiceId(id.to_string()))
        } else {
            Err(invalid(
                "ServiceId",
                "serviceId",
                format!(
                    "{:?} is not 1..={} characters of [A-Za-z0-9._-]",
                    id.chars().take(80).collect::<String>(),
                    Self::MAX_CHARS
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ServiceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the provider asks the card to sign (seed 003 S6): one application for one service on
/// one card of one issuer. Not signed itself: the provider compares it byte for byte with the
/// request inside the card's [`DownloadApplication`] when the issuer asks for its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadRequest {
    pub operation_id: OperationId,
    pub card_id: CardId,
    /// The card's issuer: the only audience of the signed application.
    pub issuer: PartyId,
    pub provider: PartyId,
    pub service_id: ServiceId,
    /// The application's AID.
    pub item_id: ItemId,
    pub version: u32,
    /// Bytes of the code package.
    pub size: u32,
    /// SHA-256 of the code, pinned by the service.
    pub data_digest: Digest,
    /// SHA-256 of the membership terms text the user accepted.
    pub terms_digest: Digest,
    pub not_after: UnixTime,
}

#[derive(Sequence)]
pub(crate) struct DownloadRequestWire<'a> {
    operation_id: OctetStringRef<'a>,
    card_id: OctetStringRef<'a>,
    issuer: Utf8StringRef<'a>,
    provider: Utf8StringRef<'a>,
    service_id: Utf8StringRef<'a>,
    item_id: OctetStringRef<'a>,
    version: u32,
    size: u32,
    data_digest: OctetStringRef<'a>,
    terms_digest: OctetStringRef<'a>,
    not_after: u64,
}

impl DownloadRequest {
    fn to_wire(&self) -> der::Result<DownloadRequestWire<'_>> {
        Ok(DownloadRequestWire {
            operation_id: octets(&self.operation_id.0)?,
            card_id: octets(&self.card_id.0)?,
            issuer: utf8(self.issuer.as_str())?,
            provider: utf8(self.provider.as_str())?,
            service_id: utf8(self.service_id.as_str())?,
            item_id: octets(self.item_id.as_bytes())?,
            version: self.version,
            size: self.size,
            data_digest: octets(&self.data_digest.0)?,
            terms_digest: octets(&self.terms_digest.0)?,
            not_after: self.not_after.0,
        })
    }

    fn from_wire(wire: DownloadRequestWire<'_>) -> Result<DownloadRequest, ProtocolError> {
        const OBJECT: &str = "DownloadRequest";
        Ok(DownloadRequest {
            operation_id: OperationId(field::fixed::<16>(
                OBJECT,
                "operationId",
                wire.operation_id,
            )?),
            card_id: field::card_id(OBJECT, "cardId", wire.card_id)?,
            issuer: field::party(OBJECT, "issuer", wire.issuer)?,
            provider: field::party(OBJECT, "provider", wire.provider)?,
            service_id: ServiceId::new(wire.service_id.as_str())
                .map_err(|e| field::rename(e, OBJECT, "serviceId"))?,
            item_id: field::item_id(OBJECT, "itemId", wire.item_id)?,
            version: wire.version,
            size: wire.size,
            data_digest: field::digest(OBJECT, "dataDigest", wire.data_digest)?,
            terms_digest: field::digest(OBJECT, "termsDigest", wire.terms_digest)?,
            not_after: UnixTime(wire.not_after),
        })
    }
}

der_codec!(DownloadRequest, DownloadRequestWire, "DownloadRequest");

/// The card's signed download application (seed 003 S7, ダウンロード申込情報): the request,
/// the card's receipt counter and its free bytes when it signed. Signed by the card's
/// registration key (no chain) under purpose `downloadApplication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadApplication {
    pub request: DownloadRequest,
    /// The card's receipt counter when it signed (that of its latest receipt; 0 before any).
    pub counter: u64,
    /// The card's free bytes when it signed (card-attested capacity).
    pub free: u32,
}

#[derive(Sequence)]
pub(crate) struct DownloadApplicationWire<'a> {
    request: DownloadRequestWire<'a>,
    counter: u64,
    free: u32,
}

impl DownloadApplication {
    fn to_wire(&self) -> der::Result<DownloadApplicationWire<'_>> {
        Ok(DownloadApplicationWire {
            request: self.request.to_wire()?,
            counter: self.counter,
            free: self.free,
        })
    }

    fn from_wire(wire: DownloadApplicationWire<'_>) -> Result<DownloadApplication, ProtocolError> {
        Ok(DownloadApplication {
            request: DownloadRequest::from_wire(wire.request)?,
            counter: wire.counter,
            free: wire.free,
        })
    }

    /// Signs this application with the card's registration key (no chain). Deterministic
    /// (RFC 6979): the same application signed twice gives the same bytes.
    pub fn sign(&self, card_key: &SigningKey) -> SignedObject {
        <Self as Signed>::sign(self, card_key, Vec::new())
    }
}

der_codec!(
    DownloadApplication,
    DownloadApplicationWire,
    "DownloadApplication"
);

impl Signed for DownloadApplication {
    const PURPOSE: Purpose = Purpose::DownloadApplication;
}

/// What the verifier of a download application expects: itself as the audience, and its clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedDownload {
    /// The verifying issuer (or, on the download grant, the issuer the provider deals with).
    pub issuer: PartyId,
    pub now: UnixTime,
}

/// Why a download application is refused (docs/app-download.md §2, verifier table).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// Not canonical DER of `DownloadApplication`, a field out of range, or an unsupported
    /// signature algorithm.
    #[error(transparent)]
    Malformed(ProtocolError),
    /// The certificate given as the card's RC is not a card's registration certificate.
    #[error("certificate of {subject} (role {role:?}) is not a card's registration certificate")]
    NotCardCertificate { subject: String, role: Role },
    /// A signed object made for another purpose.
    #[error("signed object has purpose {found:?}, expected downloadApplication")]
    WrongPurpose { found: Purpose },
    /// The signature does not verify under the RC's key.
    #[error("the download application's signature does not verify under the card's RC")]
    BadSignature,
    /// The application names another card than the RC certifies.
    #[error("the download application is for card {found}, the RC is card {expected}'s")]
    WrongCard { expected: CardId, found: CardId },
    /// The application is addressed to another issuer.
    #[error("the download application is addressed to issuer {found}, this is {expected}")]
    WrongIssuer { expected: PartyId, found: PartyId },
    /// `notAfter` lies before the verifier's clock.
    #[error("the download application expired: not_after {not_after} is before {now}")]
    Expired { not_after: UnixTime, now: UnixTime },
}

impl From<ProtocolError> for DownloadError {
    fn from(error: ProtocolError) -> DownloadError {
        match error {
            ProtocolError::WrongPurpose { found, .. } => DownloadError::WrongPurpose { found },
            ProtocolError::BadSignature { .. } => DownloadError::BadSignature,
            other => DownloadError::Malformed(other),
        }
    }
}

/// The issuer's (and the provider's, on the download grant) check of a card's download
/// application: purpose, signature under the key `rc` certifies, the RC's card, addressed to
/// `expected.issuer`, `notAfter >= expected.now`. The caller has already verified `rc` itself
/// (chain, validity, revocation); the service checks (policy, quota, capacity) follow.
pub fn verify_download_application(
    signed: &SignedObject,
    rc: &Certificate,
    expected: &ExpectedDownload,
) -> Result<DownloadApplication, DownloadError> {
    let card_id = match rc.card_id() {
        Some(card_id) if rc.role() == Role::Card => card_id,
        _ => {
            return Err(DownloadError::NotCardCertificate {
                subject: rc.subject_id().to_string(),
                role: rc.role(),
            })
        }
    };
    let application: DownloadApplication = signed.open(&rc.public_key())?;
    let request = &application.request;
    if request.card_id != card_id {
        return Err(DownloadError::WrongCard {
            expected: card_id,
            found: request.card_id,
        });
    }
    if request.issuer != expected.issuer {
        return Err(DownloadError::WrongIssuer {
            expected: expected.issuer.clone(),
            found: request.issuer.clone(),
        });
    }
    if request.not_after < expected.now {
        return Err(DownloadError::Expired {
            not_after: request.not_after,
            now: expected.now,
        });
    }
    Ok(application)
}
