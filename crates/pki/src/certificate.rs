//! X.509 v3 certificates of our profile (RFC 5280 §4, `docs/pki.md`): the parsed
//! [`Certificate`], its strict decoder, and issuance ([`issue_root`], [`issue`]).
//!
//! The ASN.1 structures are x509-cert's pieces (names, validity, SPKI, serial, extension
//! values) assembled in our own `TbsCertificate`, because our private extension IDs
//! (`2.25.<uuid>.n`) have arcs too large for `const_oid` (see `oid.rs`).

use crypto::{Digest, Signature, SigningKey, VerifyingKey};
use der::asn1::{Any, BitString, OctetString};
use der::{Decode, Encode, Sequence};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;
use x509_cert::Version;

use crate::name::{decode_name, encode_name};
use crate::oid::{
    RawOid, CARD_ID_EXTENSION, ECDSA_WITH_SHA256, EC_PUBLIC_KEY, ROLE_EXTENSION, SECP256R1,
    USER_INFO_DIGEST_EXTENSION,
};
use crate::profile::{key_identifier, profile, RoleCode, KEY_IDENTIFIER_LEN};
use crate::time::{decode_time, encode_time};
use crate::{CardId, PartyId, PkiError, Role, UnixTime};

/// Our certificates are around 600 bytes; anything much larger is not one of ours and is refused
/// before decoding (bounds the work an attacker can cause).
const MAX_CERTIFICATE_LEN: usize = 4096;

const PEM_LABEL: &str = "CERTIFICATE";

/// `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`
/// (RFC 5280 §4.1) with an extension ID of any arc size.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub(crate) struct Extension {
    pub(crate) extn_id: RawOid,
    #[asn1(default = "Default::default")]
    pub(crate) critical: bool,
    pub(crate) extn_value: OctetString,
}

/// `TBSCertificate` (RFC 5280 §4.1), x509-cert's layout with our [`Extension`].
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", default = "Default::default")]
    version: Version,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    issuer_unique_id: Option<BitString>,
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT", optional = "true")]
    subject_unique_id: Option<BitString>,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    extensions: Option<Vec<Extension>>,
}

/// `Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }`.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
struct X509Certificate {
    tbs_certificate: TbsCertificate,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// Decodes `bytes` as a `T` and insists that `T` re-encodes to exactly `bytes`: DER has one
/// encoding per value, so anything else (explicit defaults, reordered sets, long lengths that
/// slipped through) is refused.
pub(crate) fn decode_canonical<'a, T: Decode<'a> + Encode>(
    bytes: &'a [u8],
    what: &'static str,
) -> Result<T, PkiError> {
    let value = T::from_der(bytes).map_err(|_| PkiError::malformed(what))?;
    match value.to_der() {
        Ok(again) if again == bytes => Ok(value),
        _ => Err(PkiError::malformed(what)),
    }
}

/// `ecdsa-with-SHA256` with absent parameters (RFC 5758 §3.2).
pub(crate) fn signature_algorithm() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: ECDSA_WITH_SHA256,
        parameters: None,
    }
}

pub(crate) fn check_signature_algorithm(alg: &AlgorithmIdentifierOwned) -> Result<(), PkiError> {
    if *alg == signature_algorithm() {
        Ok(())
    } else {
        Err(PkiError::malformed(
            "signature algorithm is not ecdsa-with-SHA256",
        ))
    }
}

/// The DER `Ecdsa-Sig-Value` inside a signature BIT STRING.
pub(crate) fn signature_from_bits(bits: &BitString) -> Result<Signature, PkiError> {
    match bits.as_bytes() {
        Some(bytes) if !bytes.is_empty() => Ok(Signature(bytes.to_vec())),
        _ => Err(PkiError::malformed("signature bit string")),
    }
}

pub(crate) fn signature_to_bits(signature: &Signature) -> Result<BitString, PkiError> {
    BitString::from_bytes(signature.as_bytes()).map_err(|_| PkiError::Encoding {
        what: "a signature",
    })
}

/// A positive `u64` serial as RFC 5280 §4.1.2.2 INTEGER.
pub(crate) fn encode_serial(serial: u64) -> Result<SerialNumber, PkiError> {
    if serial == 0 {
        return Err(PkiError::InvalidSerial { serial });
    }
    Ok(SerialNumber::from(serial))
}

/// The serial as a positive `u64`; larger or non-positive serials are not of our profile.
pub(crate) fn decode_serial(serial: &SerialNumber) -> Result<u64, PkiError> {
    let malformed = PkiError::malformed("serial number is not a positive 64-bit integer");
    let bytes = serial.as_bytes();
    let magnitude = match bytes {
        [] => return Err(malformed),
        [first, ..] if first & 0x80 != 0 => return Err(malformed),
        [0, rest @ ..] => rest,
        all => all,
    };
    if magnitude.len() > 8 {
        return Err(malformed);
    }
    let value = magnitude
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    if value == 0 {
        return Err(malformed);
    }
    Ok(value)
}

fn spki_for(key: &VerifyingKey) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    Ok(SubjectPublicKeyInfoOwned {
        algorithm: spki_algorithm()?,
        subject_public_key: BitString::from_bytes(&key.to_sec1()).map_err(|_| {
            PkiError::Encoding {
                what: "a public key",
            }
        })?,
    })
}

fn key_from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<VerifyingKey, PkiError> {
    let malformed = PkiError::malformed("public key is not an uncompressed P-256 point");
    let expected_algorithm = spki_algorithm()?;
    if spki.algorithm != expected_algorithm {
        return Err(malformed);
    }
    // Uncompressed only: one encoding per key, like everything else we sign.
    match spki.subject_public_key.as_bytes() {
        Some(point) if point.len() == 65 && point[0] == 0x04 => {
            VerifyingKey::from_sec1(point).map_err(|_| malformed)
        }
        _ => Err(malformed),
    }
}

fn spki_algorithm() -> Result<AlgorithmIdentifierOwned, PkiError> {
    Ok(AlgorithmIdentifierOwned {
        oid: EC_PUBLIC_KEY,
        parameters: Some(
            Any::encode_from(&SECP256R1).map_err(|_| PkiError::Encoding {
                what: "the P-256 curve OID",
            })?,
        ),
    })
}

fn extension(
    id: RawOid,
    critical: bool,
    value: &impl Encode,
    what: &'static str,
) -> Result<Extension, PkiError> {
    let bytes = value.to_der().map_err(|_| PkiError::Encoding { what })?;
    Ok(Extension {
        extn_id: id,
        critical,
        extn_value: OctetString::new(bytes).map_err(|_| PkiError::Encoding { what })?,
    })
}

fn octets(bytes: &[u8], what: &'static str) -> Result<OctetString, PkiError> {
    OctetString::new(bytes).map_err(|_| PkiError::Encoding { what })
}

/// A parsed certificate of our profile. Everything the accessors return was checked by
/// [`Certificate::from_der`]: the profile of its role (CA flag, pathLen, key usage, required
/// extensions), the names, the key. The signature is checked only against an issuer
/// ([`Certificate::verify_signed_by`], [`crate::verify_chain`]).
///
/// Equality is equality of the DER.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    tbs_der: Vec<u8>,
    signature: Signature,
    digest: Digest,
    role: Role,
    subject: PartyId,
    issuer: PartyId,
    serial: u64,
    not_before: UnixTime,
    not_after: UnixTime,
    public_key: VerifyingKey,
    path_len: Option<u8>,
    subject_key_id: [u8; KEY_IDENTIFIER_LEN],
    authority_key_id: [u8; KEY_IDENTIFIER_LEN],
    card_id: Option<CardId>,
    user_info_digest: Option<Digest>,
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Certificate) -> bool {
        self.der == other.der
    }
}

impl Eq for Certificate {}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("role", &self.role)
            .field("subject", &self.subject)
            .field("issuer", &self.issuer)
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

/// The extensions of a certificate, each at most once.
#[derive(Default)]
struct Extensions {
    basic_constraints: Option<BasicConstraints>,
    key_usage: Option<KeyUsage>,
    subject_key_id: Option<SubjectKeyIdentifier>,
    authority_key_id: Option<AuthorityKeyIdentifier>,
    role: Option<RoleCode>,
    card_id: Option<OctetString>,
    user_info_digest: Option<OctetString>,
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), PkiError> {
    if slot.is_some() {
        return Err(PkiError::malformed("extension appears twice"));
    }
    *slot = Some(value);
    Ok(())
}

fn require_criticality(ext: &Extension, critical: bool) -> Result<(), PkiError> {
    if ext.critical == critical {
        Ok(())
    } else if critical {
        Err(PkiError::malformed(
            "basicConstraints and keyUsage must be critical",
        ))
    } else {
        Err(PkiError::malformed(
            "only basicConstraints and keyUsage are critical",
        ))
    }
}

fn decode_extensions(list: &[Extension]) -> Result<Extensions, PkiError> {
    use const_oid::db::rfc5280::{
        ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_BASIC_CONSTRAINTS, ID_CE_KEY_USAGE,
        ID_CE_SUBJECT_KEY_IDENTIFIER,
    };
    let mut out = Extensions::default();
    for ext in list {
        let value = ext.extn_value.as_bytes();
        let id = &ext.extn_id;
        if id.is(&ID_CE_BASIC_CONSTRAINTS) {
            require_criticality(ext, true)?;
            let v = decode_canonical(value, "basicConstraints")?;
            set_once(&mut out.basic_constraints, v)?;
        } else if id.is(&ID_CE_KEY_USAGE) {
            require_criticality(ext, true)?;
            let v = decode_canonical(value, "keyUsage")?;
            set_once(&mut out.key_usage, v)?;
        } else if id.is(&ID_CE_SUBJECT_KEY_IDENTIFIER) {
            require_criticality(ext, false)?;
            let v = decode_canonical(value, "subjectKeyIdentifier")?;
            set_once(&mut out.subject_key_id, v)?;
        } else if id.is(&ID_CE_AUTHORITY_KEY_IDENTIFIER) {
            require_criticality(ext, false)?;
            let v = decode_canonical(value, "authorityKeyIdentifier")?;
            set_once(&mut out.authority_key_id, v)?;
        } else if id.0 == ROLE_EXTENSION {
            require_criticality(ext, false)?;
            let v = decode_canonical(value, "cardwright role extension")?;
            set_once(&mut out.role, v)?;
        } else if id.0 == CARD_ID_EXTENSION {
            require_criticality(ext, false)?;
            let v = decode_canonical(value, "cardwright card ID extension")?;
            set_once(&mut out.card_id, v)?;
        } else if id.0 == USER_INFO_DIGEST_EXTENSION {
            require_criticality(ext, false)?;
            let v = decode_canonical(value, "cardwright user information digest extension")?;
            set_once(&mut out.user_info_digest, v)?;
        } else {
            return Err(PkiError::malformed("extension outside our profile"));
        }
    }
    Ok(out)
}

fn key_id_of(bytes: &[u8]) -> Result<[u8; KEY_IDENTIFIER_LEN], PkiError> {
    bytes
        .try_into()
        .map_err(|_| PkiError::malformed("key identifier is not 20 bytes"))
}

impl Certificate {
    /// Parses a DER certificate of our profile. Strict: refuses trailing bytes, non-canonical
    /// DER, versions other than v3, algorithms other than ECDSA P-256/SHA-256, keys other than
    /// uncompressed P-256 points, names other than `O=cardwright, CN=<party ID>`, serials that
    /// are not positive u64, extensions outside the profile or of the wrong criticality, a
    /// missing role extension, and any mismatch between the role and its profile (CA flag,
    /// pathLen, key usage, card extensions, self-issued iff registrar, SKI computed from the
    /// key). Never panics.
    pub fn from_der(der: &[u8]) -> Result<Certificate, PkiError> {
        if der.len() > MAX_CERTIFICATE_LEN {
            return Err(PkiError::malformed("certificate larger than 4096 bytes"));
        }
        let cert: X509Certificate = decode_canonical(der, "certificate DER")?;
        let tbs = &cert.tbs_certificate;
        if tbs.version != Version::V3 {
            return Err(PkiError::malformed("certificate version is not v3"));
        }
        if tbs.issuer_unique_id.is_some() || tbs.subject_unique_id.is_some() {
            return Err(PkiError::malformed(
                "unique identifiers are not in our profile",
            ));
        }
        check_signature_algorithm(&cert.signature_algorithm)?;
        check_signature_algorithm(&tbs.signature)?;
        let signature = signature_from_bits(&cert.signature)?;
        let serial = decode_serial(&tbs.serial_number)?;
        let issuer = decode_name(&tbs.issuer)?;
        let subject = decode_name(&tbs.subject)?;
        let not_before = decode_time(&tbs.validity.not_before)?;
        let not_after = decode_time(&tbs.validity.not_after)?;
        if not_before > not_after {
            return Err(PkiError::malformed("validity ends before it starts"));
        }
        let public_key = key_from_spki(&tbs.subject_public_key_info)?;

        let ext = decode_extensions(tbs.extensions.as_deref().unwrap_or(&[]))?;
        let role: Role = ext
            .role
            .ok_or(PkiError::malformed("missing cardwright role extension"))?
            .into();
        let expected = profile(role);
        let basic = ext
            .basic_constraints
            .ok_or(PkiError::malformed("missing basicConstraints"))?;
        if basic.ca != expected.ca || basic.path_len_constraint != expected.path_len {
            return Err(PkiError::malformed(
                "basicConstraints do not match the role's profile",
            ));
        }
        let key_usage = ext
            .key_usage
            .ok_or(PkiError::malformed("missing keyUsage"))?;
        if key_usage.0 != expected.key_usage {
            return Err(PkiError::malformed(
                "keyUsage does not match the role's profile",
            ));
        }
        let subject_key_id = key_id_of(
            ext.subject_key_id
                .ok_or(PkiError::malformed("missing subjectKeyIdentifier"))?
                .0
                .as_bytes(),
        )?;
        if subject_key_id != key_identifier(&public_key) {
            return Err(PkiError::malformed(
                "subjectKeyIdentifier is not derived from the key",
            ));
        }
        let authority_key_id = match ext.authority_key_id {
            Some(AuthorityKeyIdentifier {
                key_identifier: Some(id),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            }) => key_id_of(id.as_bytes())?,
            _ => {
                return Err(PkiError::malformed(
                    "authorityKeyIdentifier missing or not a bare key identifier",
                ))
            }
        };
        let self_issued = issuer == subject;
        if role.is_registrar() != self_issued {
            return Err(PkiError::malformed(
                "registrar certificates and only they are self-issued",
            ));
        }
        if self_issued && authority_key_id != subject_key_id {
            return Err(PkiError::malformed(
                "a root's authorityKeyIdentifier is not its own key",
            ));
        }
        let (card_id, user_info_digest) = match (role, ext.card_id, ext.user_info_digest) {
            (Role::Card, Some(card_id), Some(digest)) => {
                let card_id = CardId::from_slice(card_id.as_bytes())
                    .ok_or(PkiError::malformed("card ID extension is not 16 bytes"))?;
                let digest: [u8; 32] = digest
                    .as_bytes()
                    .try_into()
                    .map_err(|_| PkiError::malformed("user information digest is not 32 bytes"))?;
                if subject != PartyId::for_card(&card_id) {
                    return Err(PkiError::malformed(
                        "card certificate's common name is not its card ID",
                    ));
                }
                (Some(card_id), Some(Digest(digest)))
            }
            (Role::Card, _, _) => {
                return Err(PkiError::malformed(
                    "card certificate without card ID or user information digest",
                ))
            }
            (_, None, None) => (None, None),
            _ => {
                return Err(PkiError::malformed(
                    "card extensions on a certificate that is not a card's",
                ))
            }
        };
        let tbs_der = tbs
            .to_der()
            .map_err(|_| PkiError::malformed("TBSCertificate"))?;
        Ok(Certificate {
            der: der.to_vec(),
            tbs_der,
            signature,
            digest: crypto::sha256(der),
            role,
            subject,
            issuer,
            serial,
            not_before,
            not_after,
            public_key,
            path_len: expected.path_len,
            subject_key_id,
            authority_key_id,
            card_id,
            user_info_digest,
        })
    }

    /// Parses a PEM `CERTIFICATE` (RFC 7468) with [`Certificate::from_der`]'s rules.
    pub fn from_pem(pem: &str) -> Result<Certificate, PkiError> {
        let (label, der) = der::pem::decode_vec(pem.as_bytes())
            .map_err(|_| PkiError::malformed("PEM encoding"))?;
        if label != PEM_LABEL {
            return Err(PkiError::malformed("PEM label is not CERTIFICATE"));
        }
        Certificate::from_der(&der)
    }

    /// The certificate's DER, exactly as issued.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM `CERTIFICATE` (RFC 7468), LF line endings, for files and `openssl`.
    pub fn to_pem(&self) -> String {
        pem_string(PEM_LABEL, &self.der)
    }

    /// SHA-256 of the DER: how protocol objects refer to a certificate.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The subject's party ID; for a card, its card ID in hex ([`PartyId::for_card`]).
    pub fn subject_id(&self) -> &PartyId {
        &self.subject
    }

    /// The issuer's party ID (the subject itself for registrar roots).
    pub fn issuer_id(&self) -> &PartyId {
        &self.issuer
    }

    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// First second of validity (inclusive).
    pub fn not_before(&self) -> UnixTime {
        self.not_before
    }

    /// Last second of validity (inclusive, RFC 5280 §4.1.2.5).
    pub fn not_after(&self) -> UnixTime {
        self.not_after
    }

    pub fn public_key(&self) -> VerifyingKey {
        self.public_key
    }

    /// The card ID, for card certificates (RC) only.
    pub fn card_id(&self) -> Option<CardId> {
        self.card_id
    }

    /// SHA-256 of the DER user information the RC certifies, for card certificates only.
    pub fn user_info_digest(&self) -> Option<Digest> {
        self.user_info_digest
    }

    /// Whether this is a CA certificate (registrars and issuers).
    pub fn is_ca(&self) -> bool {
        profile(self.role).ca
    }

    /// The pathLenConstraint, for CA certificates.
    pub fn path_len(&self) -> Option<u8> {
        self.path_len
    }

    /// The subjectKeyIdentifier ([`KEY_IDENTIFIER_LEN`] bytes of SHA-256 of the key).
    pub fn subject_key_id(&self) -> &[u8; KEY_IDENTIFIER_LEN] {
        &self.subject_key_id
    }

    /// The authorityKeyIdentifier: the issuer's subject key identifier.
    pub fn authority_key_id(&self) -> &[u8; KEY_IDENTIFIER_LEN] {
        &self.authority_key_id
    }

    /// Whether issuer and subject are the same party (registrar roots, and only them).
    pub fn is_self_issued(&self) -> bool {
        self.issuer == self.subject
    }

    /// `Ok` when `not_before <= now <= not_after`, else the expiry or not-yet-valid error.
    pub fn check_valid_at(&self, now: UnixTime) -> Result<(), PkiError> {
        if now < self.not_before {
            Err(PkiError::CertificateNotYetValid {
                subject: self.subject.to_string(),
                serial: self.serial,
                not_before: self.not_before,
                now,
            })
        } else if now > self.not_after {
            Err(PkiError::CertificateExpired {
                subject: self.subject.to_string(),
                serial: self.serial,
                not_after: self.not_after,
                now,
            })
        } else {
            Ok(())
        }
    }

    /// Checks that `issuer` issued this certificate: names and key identifiers link, the
    /// issuer's role may certify this role (or this is a root and `issuer` carries its own key),
    /// and the signature verifies under the issuer's key. Says nothing about validity periods
    /// or revocation: that is [`crate::verify_chain`]'s work.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), PkiError> {
        if self.issuer != issuer.subject || self.authority_key_id != issuer.subject_key_id {
            return Err(PkiError::IssuerMismatch {
                subject: self.subject.to_string(),
                issuer: self.issuer.to_string(),
                issuer_key_id: hex_string(&self.authority_key_id),
                candidate: issuer.subject.to_string(),
            });
        }
        if self.is_self_issued() {
            if self.public_key != issuer.public_key {
                return Err(PkiError::BadSignature {
                    subject: self.subject.to_string(),
                    serial: self.serial,
                });
            }
        } else {
            if !issuer.is_ca() {
                return Err(PkiError::NotACa {
                    subject: issuer.subject.to_string(),
                    serial: issuer.serial,
                });
            }
            if !issuer.role.may_issue(self.role) {
                return Err(PkiError::IssuanceNotAllowed {
                    issuer_role: issuer.role,
                    subject_role: self.role,
                });
            }
        }
        issuer
            .public_key
            .verify(&self.tbs_der, &self.signature)
            .map_err(|_| PkiError::BadSignature {
                subject: self.subject.to_string(),
                serial: self.serial,
            })
    }
}

pub(crate) fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn pem_string(label: &str, der: &[u8]) -> String {
    // Invariant: PEM encoding only fails when the output length overflows usize, and our DER
    // is bounded far below that.
    der::pem::encode_string(label, der::pem::LineEnding::LF, der).expect("PEM encoding")
}

/// What an issuer asks to be certified. Build it with [`CertificateRequest::party`] or
/// [`CertificateRequest::card`], or literally: for a card, `subject` must be
/// [`PartyId::for_card`] of `card_id`, and `card_id` and `user_info_digest` are set exactly for
/// cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateRequest {
    pub role: Role,
    pub subject: PartyId,
    pub public_key: VerifyingKey,
    /// Positive; unique per issuer (the CRL names certificates by serial).
    pub serial: u64,
    pub not_before: UnixTime,
    pub not_after: UnixTime,
    pub card_id: Option<CardId>,
    pub user_info_digest: Option<Digest>,
}

impl CertificateRequest {
    /// A request for an issuer (IRC) or provider (DPR) certificate.
    pub fn party(
        role: Role,
        subject: PartyId,
        public_key: VerifyingKey,
        serial: u64,
        not_before: UnixTime,
        not_after: UnixTime,
    ) -> CertificateRequest {
        CertificateRequest {
            role,
            subject,
            public_key,
            serial,
            not_before,
            not_after,
            card_id: None,
            user_info_digest: None,
        }
    }

    /// A request for a card's registration certificate (RC, REG-2): the card's key, its card
    /// ID and the SHA-256 of the DER user information.
    pub fn card(
        card_id: CardId,
        public_key: VerifyingKey,
        user_info_digest: Digest,
        serial: u64,
        not_before: UnixTime,
        not_after: UnixTime,
    ) -> CertificateRequest {
        CertificateRequest {
            role: Role::Card,
            subject: PartyId::for_card(&card_id),
            public_key,
            serial,
            not_before,
            not_after,
            card_id: Some(card_id),
            user_info_digest: Some(user_info_digest),
        }
    }
}

/// Everything that goes into a TBSCertificate; [`sign_certificate`] applies the role's profile.
pub(crate) struct TbsFields<'a> {
    pub(crate) role: Role,
    pub(crate) subject: &'a PartyId,
    pub(crate) issuer: &'a PartyId,
    pub(crate) public_key: &'a VerifyingKey,
    pub(crate) serial: u64,
    pub(crate) not_before: UnixTime,
    pub(crate) not_after: UnixTime,
    pub(crate) authority_key_id: [u8; KEY_IDENTIFIER_LEN],
    pub(crate) card: Option<(CardId, Digest)>,
}

/// Encodes and signs a certificate without any policy check beyond what DER needs; the callers
/// ([`issue_root`], [`issue`]) hold the policy. Tests use it to forge what policy forbids.
pub(crate) fn sign_certificate(
    fields: &TbsFields<'_>,
    signer: &SigningKey,
) -> Result<Certificate, PkiError> {
    if fields.not_before > fields.not_after {
        return Err(PkiError::InvalidValidity {
            not_before: fields.not_before,
            not_after: fields.not_after,
        });
    }
    let profile = profile(fields.role);
    let mut extensions = vec![
        extension(
            RawOid::from_standard(&const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS),
            true,
            &BasicConstraints {
                ca: profile.ca,
                path_len_constraint: profile.path_len,
            },
            "basicConstraints",
        )?,
        extension(
            RawOid::from_standard(&const_oid::db::rfc5280::ID_CE_KEY_USAGE),
            true,
            &KeyUsage(profile.key_usage),
            "keyUsage",
        )?,
        extension(
            RawOid::from_standard(&const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER),
            false,
            &SubjectKeyIdentifier(octets(
                &key_identifier(fields.public_key),
                "subjectKeyIdentifier",
            )?),
            "subjectKeyIdentifier",
        )?,
        extension(
            RawOid::from_standard(&const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER),
            false,
            &AuthorityKeyIdentifier {
                key_identifier: Some(octets(&fields.authority_key_id, "authorityKeyIdentifier")?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            "authorityKeyIdentifier",
        )?,
        // Non-critical so that generic verifiers (openssl) accept the certificate; our own
        // verifiers require it.
        extension(
            RawOid(ROLE_EXTENSION.to_vec()),
            false,
            &RoleCode::from(fields.role),
            "role extension",
        )?,
    ];
    if let Some((card_id, digest)) = fields.card {
        extensions.push(extension(
            RawOid(CARD_ID_EXTENSION.to_vec()),
            false,
            &octets(&card_id.0, "card ID")?,
            "card ID extension",
        )?);
        extensions.push(extension(
            RawOid(USER_INFO_DIGEST_EXTENSION.to_vec()),
            false,
            &octets(&digest.0, "user information digest")?,
            "user information digest extension",
        )?);
    }
    let tbs = TbsCertificate {
        version: Version::V3,
        serial_number: encode_serial(fields.serial)?,
        signature: signature_algorithm(),
        issuer: encode_name(fields.issuer)?,
        validity: Validity {
            not_before: encode_time(fields.not_before)?,
            not_after: encode_time(fields.not_after)?,
        },
        subject: encode_name(fields.subject)?,
        subject_public_key_info: spki_for(fields.public_key)?,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    };
    let tbs_der = tbs.to_der().map_err(|_| PkiError::Encoding {
        what: "a TBSCertificate",
    })?;
    let signature = signer.sign(&tbs_der);
    let cert = X509Certificate {
        tbs_certificate: tbs,
        signature_algorithm: signature_algorithm(),
        signature: signature_to_bits(&signature)?,
    };
    let der = cert.to_der().map_err(|_| PkiError::Encoding {
        what: "a certificate",
    })?;
    // Parsing what we made keeps one source of truth for the accessors and proves the output
    // is of our profile.
    Certificate::from_der(&der)
}

/// Issues the self-signed certificate of a registrar root (`role` is
/// [`Role::IssuerRegistrar`] or [`Role::DataRegistrar`]; anything else is
/// [`PkiError::IssuanceNotAllowed`]).
pub fn issue_root(
    role: Role,
    id: &PartyId,
    key: &SigningKey,
    serial: u64,
    not_before: UnixTime,
    not_after: UnixTime,
) -> Result<Certificate, PkiError> {
    if !role.is_registrar() {
        return Err(PkiError::IssuanceNotAllowed {
            issuer_role: role,
            subject_role: role,
        });
    }
    let public_key = key.verifying_key();
    sign_certificate(
        &TbsFields {
            role,
            subject: id,
            issuer: id,
            public_key: &public_key,
            serial,
            not_before,
            not_after,
            authority_key_id: key_identifier(&public_key),
            card: None,
        },
        key,
    )
}

/// Issues a certificate for `request`, signed by `issuer_key` as `issuer_cert`'s subject.
/// Refuses what the profiles forbid ([`Role::may_issue`]): the Issuer Registrar certifies only
/// issuers, the Data Registrar only providers, an issuer only cards; providers and cards certify
/// nobody. Also refuses a key that is not the one `issuer_cert` certifies, a zero serial, an
/// empty validity, and card fields that do not fit the role. The validity need not lie inside
/// the issuer's: verifiers check every certificate of a chain at the time of use.
pub fn issue(
    request: &CertificateRequest,
    issuer_cert: &Certificate,
    issuer_key: &SigningKey,
) -> Result<Certificate, PkiError> {
    if issuer_key.verifying_key() != issuer_cert.public_key {
        return Err(PkiError::KeyMismatch {
            issuer: issuer_cert.subject.to_string(),
        });
    }
    if !issuer_cert.is_ca() || !issuer_cert.role.may_issue(request.role) {
        return Err(PkiError::IssuanceNotAllowed {
            issuer_role: issuer_cert.role,
            subject_role: request.role,
        });
    }
    let card = match (request.role, request.card_id, request.user_info_digest) {
        (Role::Card, Some(card_id), Some(digest)) => {
            if request.subject != PartyId::for_card(&card_id) {
                return Err(PkiError::InvalidRequest {
                    what: "a card's subject must be its card ID in hex",
                });
            }
            Some((card_id, digest))
        }
        (Role::Card, _, _) => {
            return Err(PkiError::InvalidRequest {
                what: "a card certificate needs the card ID and the user information digest",
            })
        }
        (_, None, None) => None,
        _ => {
            return Err(PkiError::InvalidRequest {
                what: "card ID and user information digest are for card certificates only",
            })
        }
    };
    if request.subject == issuer_cert.subject {
        return Err(PkiError::InvalidRequest {
            what: "subject and issuer are the same party",
        });
    }
    sign_certificate(
        &TbsFields {
            role: request.role,
            subject: &request.subject,
            issuer: &issuer_cert.subject,
            public_key: &request.public_key,
            serial: request.serial,
            not_before: request.not_before,
            not_after: request.not_after,
            authority_key_id: issuer_cert.subject_key_id,
            card,
        },
        issuer_key,
    )
}

#[cfg(test)]
mod tests {
    //! Strict parsing: certificates re-signed after one edit each, so only the edited rule can
    //! refuse them.
    use super::*;
    use crypto::InsecureSeededRng;
    use x509_cert::ext::pkix::KeyUsages;

    struct Setup {
        root_key: SigningKey,
        root: Certificate,
        issuer_key: SigningKey,
        irc: Certificate,
        rc: Certificate,
    }

    fn setup() -> Setup {
        let mut rng = InsecureSeededRng::insecure_seeded_for_tests(77);
        let root_key = SigningKey::generate(&mut rng);
        let id = |s| PartyId::new(s).unwrap();
        let root = issue_root(
            Role::IssuerRegistrar,
            &id("root"),
            &root_key,
            1,
            UnixTime(1_700_000_000),
            UnixTime(1_900_000_000),
        )
        .unwrap();
        let issuer_key = SigningKey::generate(&mut rng);
        let irc = issue(
            &CertificateRequest::party(
                Role::Issuer,
                id("issuer-1"),
                issuer_key.verifying_key(),
                2,
                UnixTime(1_700_000_000),
                UnixTime(1_900_000_000),
            ),
            &root,
            &root_key,
        )
        .unwrap();
        let card_key = SigningKey::generate(&mut rng);
        let rc = issue(
            &CertificateRequest::card(
                CardId([7; 16]),
                card_key.verifying_key(),
                crypto::sha256(b"user"),
                3,
                UnixTime(1_700_000_000),
                UnixTime(1_900_000_000),
            ),
            &irc,
            &issuer_key,
        )
        .unwrap();
        Setup {
            root_key,
            root,
            issuer_key,
            irc,
            rc,
        }
    }

    fn resign(
        cert: &Certificate,
        key: &SigningKey,
        edit: impl FnOnce(&mut TbsCertificate),
    ) -> Vec<u8> {
        let mut x = X509Certificate::from_der(cert.der()).unwrap();
        edit(&mut x.tbs_certificate);
        let tbs_der = x.tbs_certificate.to_der().unwrap();
        x.signature = signature_to_bits(&key.sign(&tbs_der)).unwrap();
        x.to_der().unwrap()
    }

    fn exts(tbs: &mut TbsCertificate) -> &mut Vec<Extension> {
        tbs.extensions.as_mut().unwrap()
    }

    fn malformed(what: &'static str) -> Result<Certificate, PkiError> {
        Err(PkiError::Malformed { what })
    }

    #[test]
    fn resigning_without_edit_still_parses_and_verifies() {
        let s = setup();
        let der = resign(&s.irc, &s.root_key, |_| {});
        assert_eq!(der, s.irc.der(), "deterministic signatures");
        Certificate::from_der(&der)
            .unwrap()
            .verify_signed_by(&s.root)
            .unwrap();
    }

    #[test]
    fn missing_role_extension() {
        let s = setup();
        let der = resign(&s.irc, &s.root_key, |t| {
            exts(t).retain(|e| e.extn_id.0 != ROLE_EXTENSION)
        });
        assert_eq!(
            Certificate::from_der(&der),
            malformed("missing cardwright role extension")
        );
    }

    #[test]
    fn extension_rules() {
        let s = setup();
        let unknown = resign(&s.irc, &s.root_key, |t| {
            exts(t).push(Extension {
                extn_id: RawOid(vec![0x2a, 0x03]),
                critical: true,
                extn_value: OctetString::new(vec![0x05, 0x00]).unwrap(),
            })
        });
        assert_eq!(
            Certificate::from_der(&unknown),
            malformed("extension outside our profile")
        );
        let critical_role = resign(&s.irc, &s.root_key, |t| {
            for e in exts(t).iter_mut() {
                if e.extn_id.0 == ROLE_EXTENSION {
                    e.critical = true;
                }
            }
        });
        assert_eq!(
            Certificate::from_der(&critical_role),
            malformed("only basicConstraints and keyUsage are critical")
        );
        let twice = resign(&s.irc, &s.root_key, |t| {
            let first = exts(t)[0].clone();
            exts(t).push(first)
        });
        assert_eq!(
            Certificate::from_der(&twice),
            malformed("extension appears twice")
        );
        let no_extensions = resign(&s.irc, &s.root_key, |t| t.extensions = None);
        assert!(Certificate::from_der(&no_extensions).is_err());
    }

    #[test]
    fn role_must_match_its_profile() {
        let s = setup();
        let as_provider = resign(&s.irc, &s.root_key, |t| {
            for e in exts(t).iter_mut() {
                if e.extn_id.0 == ROLE_EXTENSION {
                    e.extn_value = OctetString::new(RoleCode::Provider.to_der().unwrap()).unwrap();
                }
            }
        });
        assert_eq!(
            Certificate::from_der(&as_provider),
            malformed("basicConstraints do not match the role's profile")
        );
        let key_usage = resign(&s.irc, &s.root_key, |t| {
            let ku = ext_value(&KeyUsage(KeyUsages::DigitalSignature.into()));
            for e in exts(t).iter_mut() {
                if e.extn_id.is(&const_oid::db::rfc5280::ID_CE_KEY_USAGE) {
                    e.extn_value = ku.clone();
                }
            }
        });
        assert_eq!(
            Certificate::from_der(&key_usage),
            malformed("keyUsage does not match the role's profile")
        );
        let card_fields_on_issuer = resign(&s.irc, &s.root_key, |t| {
            exts(t).push(Extension {
                extn_id: RawOid(CARD_ID_EXTENSION.to_vec()),
                critical: false,
                extn_value: ext_value(&OctetString::new([1u8; 16]).unwrap()),
            })
        });
        assert_eq!(
            Certificate::from_der(&card_fields_on_issuer),
            malformed("card extensions on a certificate that is not a card's")
        );
        let self_issued_issuer = resign(&s.irc, &s.root_key, |t| t.issuer = t.subject.clone());
        assert_eq!(
            Certificate::from_der(&self_issued_issuer),
            malformed("registrar certificates and only they are self-issued")
        );
    }

    fn ext_value(v: &impl Encode) -> OctetString {
        OctetString::new(v.to_der().unwrap()).unwrap()
    }

    #[test]
    fn card_name_must_be_its_card_id() {
        let s = setup();
        let der = resign(&s.rc, &s.issuer_key, |t| {
            t.subject = encode_name(&PartyId::new("someone-else").unwrap()).unwrap()
        });
        assert_eq!(
            Certificate::from_der(&der),
            malformed("card certificate's common name is not its card ID")
        );
        let no_digest = resign(&s.rc, &s.issuer_key, |t| {
            exts(t).retain(|e| e.extn_id.0 != USER_INFO_DIGEST_EXTENSION)
        });
        assert_eq!(
            Certificate::from_der(&no_digest),
            malformed("card certificate without card ID or user information digest")
        );
    }

    #[test]
    fn tbs_fields_outside_the_profile() {
        let s = setup();
        let v1 = resign(&s.irc, &s.root_key, |t| t.version = Version::V1);
        assert_eq!(
            Certificate::from_der(&v1),
            malformed("certificate version is not v3")
        );
        let unique_id = resign(&s.irc, &s.root_key, |t| {
            t.issuer_unique_id = Some(BitString::from_bytes(&[1]).unwrap())
        });
        assert_eq!(
            Certificate::from_der(&unique_id),
            malformed("unique identifiers are not in our profile")
        );
        let big_serial = resign(&s.irc, &s.root_key, |t| {
            t.serial_number = SerialNumber::new(&[0x01; 9]).unwrap()
        });
        assert_eq!(
            Certificate::from_der(&big_serial),
            malformed("serial number is not a positive 64-bit integer")
        );
        let generalized = resign(&s.irc, &s.root_key, |t| {
            t.validity.not_before = x509_cert::time::Time::GeneralTime(
                der::asn1::GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(
                    1_700_000_000,
                ))
                .unwrap(),
            )
        });
        assert!(Certificate::from_der(&generalized).is_err());
        let backwards = resign(&s.irc, &s.root_key, |t| {
            std::mem::swap(&mut t.validity.not_before, &mut t.validity.not_after)
        });
        assert_eq!(
            Certificate::from_der(&backwards),
            malformed("validity ends before it starts")
        );
        let compressed = resign(&s.irc, &s.root_key, |t| {
            let point = t
                .subject_public_key_info
                .subject_public_key
                .as_bytes()
                .unwrap();
            let mut c = vec![0x02 | (point[64] & 1)];
            c.extend_from_slice(&point[1..33]);
            t.subject_public_key_info.subject_public_key = BitString::from_bytes(&c).unwrap();
        });
        assert_eq!(
            Certificate::from_der(&compressed),
            malformed("public key is not an uncompressed P-256 point")
        );
        let outer_alg = {
            let mut x = X509Certificate::from_der(s.irc.der()).unwrap();
            x.signature_algorithm.parameters = Some(Any::null());
            x.to_der().unwrap()
        };
        assert_eq!(
            Certificate::from_der(&outer_alg),
            malformed("signature algorithm is not ecdsa-with-SHA256")
        );
    }

    #[test]
    fn key_identifiers_must_fit_the_keys() {
        let s = setup();
        let wrong_ski = resign(&s.irc, &s.root_key, |t| {
            for e in exts(t).iter_mut() {
                if e.extn_id
                    .is(&const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER)
                {
                    e.extn_value =
                        ext_value(&SubjectKeyIdentifier(OctetString::new([0u8; 20]).unwrap()));
                }
            }
        });
        assert_eq!(
            Certificate::from_der(&wrong_ski),
            malformed("subjectKeyIdentifier is not derived from the key")
        );
        let aki_with_serial = resign(&s.irc, &s.root_key, |t| {
            for e in exts(t).iter_mut() {
                if e.extn_id
                    .is(&const_oid::db::rfc5280::ID_CE_AUTHORITY_KEY_IDENTIFIER)
                {
                    e.extn_value = ext_value(&AuthorityKeyIdentifier {
                        key_identifier: Some(OctetString::new([0u8; 20]).unwrap()),
                        authority_cert_issuer: None,
                        authority_cert_serial_number: Some(SerialNumber::from(1u64)),
                    });
                }
            }
        });
        assert_eq!(
            Certificate::from_der(&aki_with_serial),
            malformed("authorityKeyIdentifier missing or not a bare key identifier")
        );
    }

    #[test]
    fn non_canonical_der_is_refused() {
        // basicConstraints with cA FALSE written out (DER omits DEFAULT values).
        let explicit_default = [0x30, 0x03, 0x01, 0x01, 0x00];
        assert!(decode_canonical::<BasicConstraints>(&explicit_default, "bc").is_err());
        assert!(decode_canonical::<BasicConstraints>(&[0x30, 0x00], "bc").is_ok());
        // The outer length in three octets where two suffice.
        let s = setup();
        let der = s.rc.der();
        assert_eq!(der[1], 0x82, "certificates are 256..65535 bytes");
        let mut long_form = vec![0x30, 0x83, 0x00];
        long_form.extend_from_slice(&der[2..]);
        assert!(Certificate::from_der(&long_form).is_err());
    }

    #[test]
    fn serial_decoding() {
        assert_eq!(decode_serial(&SerialNumber::from(1u64)), Ok(1));
        assert_eq!(decode_serial(&SerialNumber::from(u64::MAX)), Ok(u64::MAX));
        assert!(decode_serial(&SerialNumber::new(&[0]).unwrap()).is_err());
        assert_eq!(encode_serial(0), Err(PkiError::InvalidSerial { serial: 0 }));
    }
}
