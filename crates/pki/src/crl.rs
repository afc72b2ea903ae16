//! X.509 v2 certificate revocation lists (RFC 5280 §5) of our profile: signed by a registrar
//! root for the certificates it issued, or by an issuer for its cards' RCs.
//!
//! Profile: version v2, `ecdsa-with-SHA256`, issuer name of our form, `nextUpdate` present,
//! revoked entries ordered by ascending serial with no entry extensions (revocation date =
//! `thisUpdate`), and exactly two CRL extensions, both non-critical: authorityKeyIdentifier (the
//! signer's key identifier) and cRLNumber (RFC 5280 §5.2.3; we keep it within u64).

use crypto::{Digest, Signature, SigningKey};
use der::asn1::{OctetString, Uint};
use der::Encode;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlNumber};
use x509_cert::ext::Extension as StandardExtension;
use x509_cert::Version;

use crate::certificate::{
    check_signature_algorithm, decode_canonical, decode_serial, encode_serial, hex_string,
    pem_string, signature_algorithm, signature_from_bits, signature_to_bits,
};
use crate::name::{decode_name, encode_name};
use crate::profile::KEY_IDENTIFIER_LEN;
use crate::time::{decode_time, encode_time};
use crate::{Certificate, PartyId, PkiError, Role, UnixTime};

/// Bounds the work of parsing one CRL (about 40 bytes per revoked certificate).
const MAX_CRL_LEN: usize = 1 << 20;

const PEM_LABEL: &str = "X509 CRL";

/// A parsed CRL of our profile. Like [`Certificate`], its signature is only checked against an
/// issuer ([`Crl::verify_signed_by`], [`crate::verify_chain`]). Equality is equality of the DER.
#[derive(Clone)]
pub struct Crl {
    der: Vec<u8>,
    tbs_der: Vec<u8>,
    signature: Signature,
    digest: Digest,
    issuer: PartyId,
    authority_key_id: [u8; KEY_IDENTIFIER_LEN],
    number: u64,
    this_update: UnixTime,
    next_update: UnixTime,
    /// Ascending, no duplicates.
    revoked: Vec<u64>,
}

impl PartialEq for Crl {
    fn eq(&self, other: &Crl) -> bool {
        self.der == other.der
    }
}

impl Eq for Crl {}

impl std::fmt::Debug for Crl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crl")
            .field("issuer", &self.issuer)
            .field("number", &self.number)
            .field("this_update", &self.this_update)
            .field("next_update", &self.next_update)
            .field("revoked", &self.revoked)
            .finish_non_exhaustive()
    }
}

fn crl_extension(
    oid: const_oid::ObjectIdentifier,
    value: &impl Encode,
    what: &'static str,
) -> Result<StandardExtension, PkiError> {
    let bytes = value.to_der().map_err(|_| PkiError::Encoding { what })?;
    Ok(StandardExtension {
        extn_id: oid,
        critical: false,
        extn_value: OctetString::new(bytes).map_err(|_| PkiError::Encoding { what })?,
    })
}

fn decode_crl_number(number: &CrlNumber) -> Result<u64, PkiError> {
    let bytes = number.0.as_bytes();
    if bytes.len() > 8 {
        return Err(PkiError::malformed("cRLNumber larger than 64 bits"));
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

impl Crl {
    /// Parses a DER CRL of our profile (module docs); strict like [`Certificate::from_der`].
    /// Never panics.
    pub fn from_der(der: &[u8]) -> Result<Crl, PkiError> {
        use const_oid::db::rfc5280::{ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER};
        if der.len() > MAX_CRL_LEN {
            return Err(PkiError::malformed("CRL larger than 1 MiB"));
        }
        let list: CertificateList = decode_canonical(der, "CRL DER")?;
        let tbs = &list.tbs_cert_list;
        if tbs.version != Version::V2 {
            return Err(PkiError::malformed("CRL version is not v2"));
        }
        check_signature_algorithm(&list.signature_algorithm)?;
        check_signature_algorithm(&tbs.signature)?;
        let signature = signature_from_bits(&list.signature)?;
        let issuer = decode_name(&tbs.issuer)?;
        let this_update = decode_time(&tbs.this_update)?;
        let next_update = decode_time(
            tbs.next_update
                .as_ref()
                .ok_or(PkiError::malformed("CRL without nextUpdate"))?,
        )?;
        if this_update > next_update {
            return Err(PkiError::malformed("CRL nextUpdate before thisUpdate"));
        }
        let mut revoked = Vec::new();
        if let Some(entries) = &tbs.revoked_certificates {
            if entries.is_empty() {
                // RFC 5280 §5.1.2.6: absent, not empty, when nothing is revoked.
                return Err(PkiError::malformed("empty revokedCertificates"));
            }
            for entry in entries {
                if entry.crl_entry_extensions.is_some() {
                    return Err(PkiError::malformed(
                        "CRL entry extensions are not in our profile",
                    ));
                }
                decode_time(&entry.revocation_date)?;
                let serial = decode_serial(&entry.serial_number)?;
                if revoked.last().is_some_and(|&last| last >= serial) {
                    return Err(PkiError::malformed(
                        "revoked serials are not strictly ascending",
                    ));
                }
                revoked.push(serial);
            }
        }
        let mut authority_key_id = None;
        let mut number = None;
        for ext in tbs.crl_extensions.as_deref().unwrap_or(&[]) {
            if ext.critical {
                return Err(PkiError::malformed("critical CRL extension"));
            }
            let value = ext.extn_value.as_bytes();
            if ext.extn_id == ID_CE_AUTHORITY_KEY_IDENTIFIER && authority_key_id.is_none() {
                let aki: AuthorityKeyIdentifier =
                    decode_canonical(value, "CRL authorityKeyIdentifier")?;
                match aki {
                    AuthorityKeyIdentifier {
                        key_identifier: Some(id),
                        authority_cert_issuer: None,
                        authority_cert_serial_number: None,
                    } => {
                        let id: [u8; KEY_IDENTIFIER_LEN] = id
                            .as_bytes()
                            .try_into()
                            .map_err(|_| PkiError::malformed("key identifier is not 20 bytes"))?;
                        authority_key_id = Some(id);
                    }
                    _ => {
                        return Err(PkiError::malformed(
                            "CRL authorityKeyIdentifier is not a key ID",
                        ))
                    }
                }
            } else if ext.extn_id == ID_CE_CRL_NUMBER && number.is_none() {
                let n: CrlNumber = decode_canonical(value, "cRLNumber")?;
                number = Some(decode_crl_number(&n)?);
            } else {
                return Err(PkiError::malformed(
                    "CRL extension outside our profile or repeated",
                ));
            }
        }
        let tbs_der = tbs
            .to_der()
            .map_err(|_| PkiError::malformed("TBSCertList"))?;
        Ok(Crl {
            der: der.to_vec(),
            tbs_der,
            signature,
            digest: crypto::sha256(der),
            issuer,
            authority_key_id: authority_key_id
                .ok_or(PkiError::malformed("CRL without authorityKeyIdentifier"))?,
            number: number.ok_or(PkiError::malformed("CRL without cRLNumber"))?,
            this_update,
            next_update,
            revoked,
        })
    }

    /// Parses a PEM `X509 CRL` (RFC 7468 §6).
    pub fn from_pem(pem: &str) -> Result<Crl, PkiError> {
        let (label, der) = der::pem::decode_vec(pem.as_bytes())
            .map_err(|_| PkiError::malformed("PEM encoding"))?;
        if label != PEM_LABEL {
            return Err(PkiError::malformed("PEM label is not X509 CRL"));
        }
        Crl::from_der(&der)
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM `X509 CRL`, LF line endings, for files and `openssl -CRLfile`.
    pub fn to_pem(&self) -> String {
        pem_string(PEM_LABEL, &self.der)
    }

    /// SHA-256 of the DER.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The party that signed the CRL.
    pub fn issuer_id(&self) -> &PartyId {
        &self.issuer
    }

    /// The signer's key identifier (its certificate's subjectKeyIdentifier).
    pub fn authority_key_id(&self) -> &[u8; KEY_IDENTIFIER_LEN] {
        &self.authority_key_id
    }

    /// The cRLNumber: increases with every CRL an issuer signs (RFC 5280 §5.2.3).
    pub fn number(&self) -> u64 {
        self.number
    }

    pub fn this_update(&self) -> UnixTime {
        self.this_update
    }

    pub fn next_update(&self) -> UnixTime {
        self.next_update
    }

    /// Whether the certificate with this serial (from this CRL's issuer) is revoked.
    pub fn is_revoked(&self, serial: u64) -> bool {
        self.revoked.binary_search(&serial).is_ok()
    }

    /// The revoked serials, ascending.
    pub fn revoked(&self) -> &[u64] {
        &self.revoked
    }

    /// Checks that `issuer` signed this CRL: names and key identifiers link, the issuer's role
    /// signs CRLs ([`Role::may_sign_crl`]), the signature verifies. Validity of the issuer and
    /// freshness of the CRL are the caller's.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<(), PkiError> {
        if self.issuer != *issuer.subject_id() || self.authority_key_id != *issuer.subject_key_id()
        {
            return Err(PkiError::IssuerMismatch {
                subject: format!("CRL number {}", self.number),
                issuer: self.issuer.to_string(),
                issuer_key_id: hex_string(&self.authority_key_id),
                candidate: issuer.subject_id().to_string(),
            });
        }
        if !issuer.role().may_sign_crl() {
            return Err(PkiError::CrlNotAllowed {
                issuer_role: issuer.role(),
            });
        }
        issuer
            .public_key()
            .verify(&self.tbs_der, &self.signature)
            .map_err(|_| PkiError::BadCrlSignature {
                issuer: self.issuer.to_string(),
                crl_number: self.number,
            })
    }
}

/// Issues CRL `number` of `issuer_cert`'s subject, revoking `revoked` (serials of certificates
/// it issued; order and duplicates do not matter). Every entry's revocation date is
/// `this_update`. Refuses a key that is not `issuer_cert`'s, a role that does not sign CRLs
/// (providers, cards), `next_update < this_update` and serial 0.
pub fn issue_crl(
    issuer_cert: &Certificate,
    issuer_key: &SigningKey,
    number: u64,
    this_update: UnixTime,
    next_update: UnixTime,
    revoked: &[u64],
) -> Result<Crl, PkiError> {
    use const_oid::db::rfc5280::{ID_CE_AUTHORITY_KEY_IDENTIFIER, ID_CE_CRL_NUMBER};
    if issuer_key.verifying_key() != issuer_cert.public_key() {
        return Err(PkiError::KeyMismatch {
            issuer: issuer_cert.subject_id().to_string(),
        });
    }
    let role: Role = issuer_cert.role();
    if !role.may_sign_crl() {
        return Err(PkiError::CrlNotAllowed { issuer_role: role });
    }
    if this_update > next_update {
        return Err(PkiError::InvalidValidity {
            not_before: this_update,
            not_after: next_update,
        });
    }
    let mut serials = revoked.to_vec();
    serials.sort_unstable();
    serials.dedup();
    let revocation_date = encode_time(this_update)?;
    let entries = serials
        .iter()
        .map(|&serial| {
            Ok(RevokedCert {
                serial_number: encode_serial(serial)?,
                revocation_date,
                crl_entry_extensions: None,
            })
        })
        .collect::<Result<Vec<_>, PkiError>>()?;
    let number_uint = Uint::new(&number.to_be_bytes()).map_err(|_| PkiError::Encoding {
        what: "a cRLNumber",
    })?;
    let key_id = OctetString::new(issuer_cert.subject_key_id().as_slice()).map_err(|_| {
        PkiError::Encoding {
            what: "a key identifier",
        }
    })?;
    let tbs = TbsCertList {
        version: Version::V2,
        signature: signature_algorithm(),
        issuer: encode_name(issuer_cert.subject_id())?,
        this_update: encode_time(this_update)?,
        next_update: Some(encode_time(next_update)?),
        revoked_certificates: if entries.is_empty() {
            None
        } else {
            Some(entries)
        },
        crl_extensions: Some(vec![
            crl_extension(
                ID_CE_AUTHORITY_KEY_IDENTIFIER,
                &AuthorityKeyIdentifier {
                    key_identifier: Some(key_id),
                    authority_cert_issuer: None,
                    authority_cert_serial_number: None,
                },
                "CRL authorityKeyIdentifier",
            )?,
            crl_extension(ID_CE_CRL_NUMBER, &CrlNumber(number_uint), "cRLNumber")?,
        ]),
    };
    let tbs_der = tbs.to_der().map_err(|_| PkiError::Encoding {
        what: "a TBSCertList",
    })?;
    let signature = issuer_key.sign(&tbs_der);
    let list = CertificateList {
        tbs_cert_list: tbs,
        signature_algorithm: signature_algorithm(),
        signature: signature_to_bits(&signature)?,
    };
    let der = list
        .to_der()
        .map_err(|_| PkiError::Encoding { what: "a CRL" })?;
    Crl::from_der(&der)
}

/// Why a certificate was revoked: RFC 5280 §5.3.1's reasons that apply to our certificates (a
/// lost or stolen card is `key_compromise`). Registrars and issuers record and report them;
/// our CRL profile carries no entry extensions, so a CRL itself lists only serials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RevocationReason {
    Unspecified,
    KeyCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

impl RevocationReason {
    pub const ALL: [RevocationReason; 5] = [
        RevocationReason::Unspecified,
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::Superseded,
        RevocationReason::CessationOfOperation,
    ];

    /// The snake_case name the APIs use.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "unspecified",
            RevocationReason::KeyCompromise => "key_compromise",
            RevocationReason::AffiliationChanged => "affiliation_changed",
            RevocationReason::Superseded => "superseded",
            RevocationReason::CessationOfOperation => "cessation_of_operation",
        }
    }

    pub fn parse(text: &str) -> Option<RevocationReason> {
        RevocationReason::ALL
            .into_iter()
            .find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for RevocationReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod reason_tests {
    use super::RevocationReason;

    #[test]
    fn reasons_round_trip_by_name_and_unknown_names_are_refused() {
        for r in RevocationReason::ALL {
            assert_eq!(RevocationReason::parse(r.as_str()), Some(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert_eq!(RevocationReason::parse("lost"), None);
        assert_eq!(RevocationReason::parse("KEY_COMPROMISE"), None);
    }
}
