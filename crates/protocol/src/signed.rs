//! The envelope every signed object travels in: [`SignedObject`] carries the DER of a
//! `ToBeSigned` (the purpose and the body), the signature algorithm, the signature over exactly
//! those bytes, and the signer's certificate chain. Because the purpose is inside the signed
//! bytes, a signature made for one purpose can never be presented as another
//! (design/objects.md, "Rules for every signed object").

use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use der::{Decode, Encode, Enumerated, Sequence};

use crate::codec::{der_codec, DerCodec};
use crate::error::ProtocolError;
use crate::field::{invalid, octets};
use crypto::{Signature, SigningKey, VerifyingKey};

/// ecdsa-with-SHA256 (RFC 5758 §3.2): ECDSA P-256 over SHA-256, the only algorithm signed
/// objects use today; named on the wire so another can be added without a format change.
pub const ECDSA_WITH_SHA256: ObjectIdentifier = const_oid::db::rfc5912::ECDSA_WITH_SHA_256;

/// The purpose tag inside every signed object: which ASN.1 type the body is and what the
/// signature means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Enumerated)]
#[repr(u32)]
pub enum Purpose {
    /// REG-2: a card's new key proves possession over its registration information.
    RegistrationInfo = 0,
    /// STO-1/2/6: the first party's consent (SAR).
    StoringAuthorizationRequest = 1,
    /// STO-1/2/3/6: the second party's consent (SA).
    StoringAuthorization = 2,
    /// STO-3: an issuer lets one provider authorize alone within a scope.
    Delegation = 3,
    /// STO-4: the owning provider certifies data (SDCI).
    CertifiedData = 4,
    /// STO-5: the Data Registrar certifies data (SDCI').
    RegistrarCertifiedData = 5,
    /// STO-7, REC-1: the card's receipt for a store or delete.
    Receipt = 6,
    /// REC-1: the card's signed content listing.
    Listing = 7,
    /// CARD-3/4: an issuer's order to its card (unblock PIN, lock, unlock, terminate).
    IssuerCommand = 8,
    /// SEC-1, SEC-3: a party authenticates one HTTP request to another party's server.
    ApiRequest = 9,
    /// REC-1: an issuer's or provider's hash-chained ledger entry for one card receipt.
    LedgerEntry = 10,
    /// APP-3: the card's signed download application (docs/app-download.md §2).
    DownloadApplication = 11,
}

/// The most certificates a signer chain may carry (leaf first): what `pki` will verify. Our
/// chains are one certificate long (IRC or DPR under a root the verifier holds).
pub const MAX_CHAIN_LEN: usize = pki::MAX_CHAIN_LEN;
/// The largest certificate a chain may carry, in bytes.
pub const MAX_CERTIFICATE_LEN: usize = 4096;
/// The largest signature, in bytes (a DER ECDSA P-256 signature is at most 72).
pub const MAX_SIGNATURE_LEN: usize = 256;

/// A signed object: `SignedObject` in docs/protocol.asn.
///
/// Decoding checks the envelope only (canonical DER, bounds, a well-formed `ToBeSigned`);
/// [`SignedObject::verify`] checks the purpose and the signature; the typed body is decoded
/// with [`SignedObject::open`] or [`SignedObject::body_unverified`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedObject {
    tbs: Vec<u8>,
    purpose: Purpose,
    body: Vec<u8>,
    algorithm: ObjectIdentifier,
    signature: Vec<u8>,
    signer_chain: Vec<Vec<u8>>,
}

#[derive(Sequence)]
pub(crate) struct SignedObjectWire<'a> {
    tbs: OctetStringRef<'a>,
    signature_algorithm: ObjectIdentifier,
    signature: OctetStringRef<'a>,
    signer_chain: Vec<OctetStringRef<'a>>,
}

#[derive(Sequence)]
struct ToBeSignedWire<'a> {
    purpose: Purpose,
    body: AnyRef<'a>,
}

/// A body type with a fixed purpose, so it can be signed and opened by type.
pub trait Signed: DerCodec {
    /// The purpose this body is signed under.
    const PURPOSE: Purpose;

    /// Signs this body under [`Signed::PURPOSE`] with `key`; `chain` is the signer's
    /// certificate DERs, leaf first (empty when the verifier already holds the key). Chains
    /// longer than [`MAX_CHAIN_LEN`] or certificates beyond [`MAX_CERTIFICATE_LEN`] are not
    /// accepted by decoders.
    fn sign(&self, key: &SigningKey, chain: Vec<Vec<u8>>) -> SignedObject {
        SignedObject::sign_typed(Self::PURPOSE, self, key, chain)
    }
}

impl SignedObject {
    /// Signs `body_der` (the DER of one ASN.1 value, the body type of `purpose`) under
    /// `purpose`. `chain`: the signer's certificate DERs, leaf first; may be empty.
    pub fn sign(
        purpose: Purpose,
        body_der: &[u8],
        key: &SigningKey,
        chain: Vec<Vec<u8>>,
    ) -> Result<SignedObject, ProtocolError> {
        let body = AnyRef::from_der(body_der).map_err(|e| ProtocolError::Malformed {
            object: "ToBeSigned.body",
            detail: e.to_string(),
        })?;
        let tbs = crate::codec::encode(Ok(ToBeSignedWire { purpose, body }));
        Ok(Self::sign_tbs(tbs, purpose, body_der.to_vec(), key, chain))
    }

    pub(crate) fn sign_typed<T: DerCodec>(
        purpose: Purpose,
        body: &T,
        key: &SigningKey,
        chain: Vec<Vec<u8>>,
    ) -> SignedObject {
        let body_der = body.to_der();
        let tbs = crate::codec::encode(
            AnyRef::from_der(&body_der).map(|body| ToBeSignedWire { purpose, body }),
        );
        Self::sign_tbs(tbs, purpose, body_der, key, chain)
    }

    fn sign_tbs(
        tbs: Vec<u8>,
        purpose: Purpose,
        body: Vec<u8>,
        key: &SigningKey,
        chain: Vec<Vec<u8>>,
    ) -> SignedObject {
        let signature = key.sign(&tbs).0;
        SignedObject {
            tbs,
            purpose,
            body,
            algorithm: ECDSA_WITH_SHA256,
            signature,
            signer_chain: chain,
        }
    }

    /// The purpose claimed inside the signed bytes (not yet verified).
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The signed bytes: the DER of `ToBeSigned`.
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The body's DER, unverified.
    pub fn body_der(&self) -> &[u8] {
        &self.body
    }

    pub fn signature_algorithm(&self) -> ObjectIdentifier {
        self.algorithm
    }

    /// The DER ECDSA signature over [`SignedObject::tbs`].
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// The signer's certificate DERs, leaf first.
    pub fn signer_chain(&self) -> &[Vec<u8>] {
        &self.signer_chain
    }

    /// Checks that this object was signed for `expected` and that the signature verifies
    /// under `key`; returns the body's DER.
    pub fn verify(&self, key: &VerifyingKey, expected: Purpose) -> Result<&[u8], ProtocolError> {
        if self.purpose != expected {
            return Err(ProtocolError::WrongPurpose {
                expected,
                found: self.purpose,
            });
        }
        if self.algorithm != ECDSA_WITH_SHA256 {
            return Err(ProtocolError::UnsupportedAlgorithm {
                oid: self.algorithm.to_string(),
            });
        }
        key.verify_canonical(&self.tbs, &Signature(self.signature.clone()))
            .map_err(|_| ProtocolError::BadSignature {
                purpose: self.purpose,
            })?;
        Ok(&self.body)
    }

    /// [`SignedObject::verify`] under `T`'s purpose, then decodes the body as `T`.
    pub fn open<T: Signed>(&self, key: &VerifyingKey) -> Result<T, ProtocolError> {
        T::from_der(self.verify(key, T::PURPOSE)?)
    }

    /// Decodes the body as `T` WITHOUT checking the purpose or the signature: only for reading
    /// who claims to have signed, before the chain that proves it is checked.
    pub fn body_unverified<T: DerCodec>(&self) -> Result<T, ProtocolError> {
        T::from_der(&self.body)
    }

    pub(crate) fn to_wire(&self) -> der::Result<SignedObjectWire<'_>> {
        Ok(SignedObjectWire {
            tbs: octets(&self.tbs)?,
            signature_algorithm: self.algorithm,
            signature: octets(&self.signature)?,
            signer_chain: self
                .signer_chain
                .iter()
                .map(|c| octets(c))
                .collect::<der::Result<_>>()?,
        })
    }

    pub(crate) fn from_wire(wire: SignedObjectWire<'_>) -> Result<SignedObject, ProtocolError> {
        const OBJECT: &str = "SignedObject";
        let tbs: ToBeSignedWire<'_> = crate::codec::decode("ToBeSigned", wire.tbs.as_bytes())?;
        let body = tbs.body.to_der().map_err(|e| ProtocolError::Malformed {
            object: "ToBeSigned.body",
            detail: e.to_string(),
        })?;
        let signature = wire.signature.as_bytes();
        if signature.is_empty() || signature.len() > MAX_SIGNATURE_LEN {
            return Err(invalid(
                OBJECT,
                "signature",
                format!(
                    "{} bytes, expected 1..={MAX_SIGNATURE_LEN}",
                    signature.len()
                ),
            ));
        }
        if wire.signer_chain.len() > MAX_CHAIN_LEN {
            return Err(invalid(
                OBJECT,
                "signerChain",
                format!(
                    "{} certificates, at most {MAX_CHAIN_LEN}",
                    wire.signer_chain.len()
                ),
            ));
        }
        let mut signer_chain = Vec::with_capacity(wire.signer_chain.len());
        for cert in &wire.signer_chain {
            let len = cert.as_bytes().len();
            if len == 0 || len > MAX_CERTIFICATE_LEN {
                return Err(invalid(
                    OBJECT,
                    "signerChain",
                    format!("a certificate of {len} bytes, expected 1..={MAX_CERTIFICATE_LEN}"),
                ));
            }
            signer_chain.push(cert.as_bytes().to_vec());
        }
        Ok(SignedObject {
            tbs: wire.tbs.as_bytes().to_vec(),
            purpose: tbs.purpose,
            body,
            algorithm: wire.signature_algorithm,
            signature: signature.to_vec(),
            signer_chain,
        })
    }
}

der_codec!(SignedObject, SignedObjectWire, "SignedObject");
