//! The object identifiers our certificates and CRLs name: the standard ones (RFC 5280, RFC 5480,
//! RFC 5758, RFC 4519) and cardwright's private arc, plus [`RawOid`], the encoding of an
//! extension ID that `const-oid` cannot hold.
//!
//! Our private arc is `2.25.<UUID as a decimal integer>` (ITU-T X.667 §6.3 / Rec. X.667), which
//! needs no registration. Its 128-bit arc does not fit `const_oid::ObjectIdentifier` (arcs are
//! `u32` there), which is why certificates are decoded with our own `Extension` type whose
//! `extnID` is a [`RawOid`]; `x509_cert::Certificate` cannot decode our certificates.

use const_oid::ObjectIdentifier;
use der::{DecodeValue, EncodeValue, FixedTag, Header, Length, Reader, Tag, Writer};

/// id-ecPublicKey (RFC 5480 §2.1.1).
pub(crate) const EC_PUBLIC_KEY: ObjectIdentifier = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
/// secp256r1 a.k.a. prime256v1 (RFC 5480 §2.1.1.1).
pub(crate) const SECP256R1: ObjectIdentifier = const_oid::db::rfc5912::SECP_256_R_1;
/// ecdsa-with-SHA256, 1.2.840.10045.4.3.2 (RFC 5758 §3.2); parameters absent.
pub(crate) const ECDSA_WITH_SHA256: ObjectIdentifier = const_oid::db::rfc5912::ECDSA_WITH_SHA_256;
/// id-at-commonName (RFC 4519 §2.3).
pub(crate) const COMMON_NAME: ObjectIdentifier = const_oid::db::rfc4519::CN;
/// id-at-organizationName (RFC 4519 §2.19).
pub(crate) const ORGANIZATION: ObjectIdentifier = const_oid::db::rfc4519::O;

/// The decimal form of cardwright's private OID arc: `2.25.` followed by UUID
/// `a1e24527-ceee-4b0b-934a-1076f366e0a2` (generated once, randomly, for this project) as an
/// integer (ITU-T X.667). Extensions: `.1` role, `.2` card ID, `.3` user information digest.
pub const CARDWRIGHT_ARC: &str = "2.25.215180569051603307362408326894100865186";

/// Content octets of the OID `CARDWRIGHT_ARC.1`: the cardwright role (ENUMERATED).
pub(crate) const ROLE_EXTENSION: [u8; 21] = arc_child(1);
/// `CARDWRIGHT_ARC.2`: the card ID (OCTET STRING, 16 bytes), cards only.
pub(crate) const CARD_ID_EXTENSION: [u8; 21] = arc_child(2);
/// `CARDWRIGHT_ARC.3`: SHA-256 of the DER user information (OCTET STRING, 32 bytes), cards only.
pub(crate) const USER_INFO_DIGEST_EXTENSION: [u8; 21] = arc_child(3);

/// BER content octets of [`CARDWRIGHT_ARC`] (X.690 §8.19): `2*40+25 = 0x69`, then the UUID
/// integer in base 128. A unit test recomputes them from the decimal form.
const ARC_CONTENT: [u8; 20] = [
    0x69, 0x82, 0xc3, 0xe2, 0xa2, 0xc9, 0xf9, 0xee, 0xf2, 0xac, 0x97, 0x93, 0xa5, 0x84, 0x8e, 0xef,
    0x9b, 0x9b, 0xc1, 0x22,
];

const fn arc_child(last: u8) -> [u8; 21] {
    let mut out = [0u8; 21];
    let mut i = 0;
    while i < ARC_CONTENT.len() {
        out[i] = ARC_CONTENT[i];
        i += 1;
    }
    out[20] = last;
    out
}

/// An OBJECT IDENTIFIER kept as its content octets, for extension IDs of any arc size.
/// Decoding checks the X.690 §8.19 rules that make the encoding canonical: non-empty, each
/// subidentifier minimal (no leading 0x80) and terminated (last octet below 0x80).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawOid(pub(crate) Vec<u8>);

impl RawOid {
    pub(crate) fn from_standard(oid: &ObjectIdentifier) -> RawOid {
        RawOid(oid.as_bytes().to_vec())
    }

    pub(crate) fn is(&self, oid: &ObjectIdentifier) -> bool {
        self.0 == oid.as_bytes()
    }
}

fn canonical_oid_content(bytes: &[u8]) -> bool {
    let Some(last) = bytes.last() else {
        return false;
    };
    if last & 0x80 != 0 {
        return false;
    }
    let mut at_start = true;
    for &b in bytes {
        if at_start && b == 0x80 {
            return false;
        }
        at_start = b & 0x80 == 0;
    }
    true
}

impl FixedTag for RawOid {
    const TAG: Tag = Tag::ObjectIdentifier;
}

impl<'a> DecodeValue<'a> for RawOid {
    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        let bytes = reader.read_vec(header.length)?;
        if canonical_oid_content(&bytes) {
            Ok(RawOid(bytes))
        } else {
            Err(Tag::ObjectIdentifier.value_error())
        }
    }
}

impl EncodeValue for RawOid {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BER content octets of a dotted OID whose arcs fit in u128.
    fn encode_dotted(dotted: &str) -> Vec<u8> {
        let arcs: Vec<u128> = dotted.split('.').map(|a| a.parse().unwrap()).collect();
        let mut out = Vec::new();
        let mut push = |mut n: u128| {
            let mut groups = vec![(n & 0x7f) as u8];
            n >>= 7;
            while n > 0 {
                groups.push(0x80 | (n & 0x7f) as u8);
                n >>= 7;
            }
            groups.reverse();
            out.extend_from_slice(&groups);
        };
        push(arcs[0] * 40 + arcs[1]);
        for &a in &arcs[2..] {
            push(a);
        }
        out
    }

    #[test]
    fn arc_constant_is_the_uuid_arc() {
        let uuid = u128::from_str_radix("a1e24527ceee4b0b934a1076f366e0a2", 16).unwrap();
        assert_eq!(CARDWRIGHT_ARC, format!("2.25.{uuid}"));
        assert_eq!(encode_dotted(CARDWRIGHT_ARC), ARC_CONTENT);
        assert_eq!(
            encode_dotted(&format!("{CARDWRIGHT_ARC}.1")),
            ROLE_EXTENSION.to_vec()
        );
        assert_eq!(
            encode_dotted(&format!("{CARDWRIGHT_ARC}.3")),
            USER_INFO_DIGEST_EXTENSION.to_vec()
        );
    }

    #[test]
    fn const_oid_cannot_hold_the_arc() {
        // Why RawOid exists: if this ever starts passing, RawOid can go.
        assert!(ObjectIdentifier::from_bytes(&ROLE_EXTENSION).is_err());
    }

    #[test]
    fn raw_oid_rejects_non_canonical_content() {
        assert!(canonical_oid_content(&[0x55, 0x1d, 0x13]));
        assert!(!canonical_oid_content(&[]));
        assert!(!canonical_oid_content(&[0x55, 0x1d, 0x93]));
        assert!(!canonical_oid_content(&[0x55, 0x80, 0x13]));
        assert!(!canonical_oid_content(&[0x80, 0x55]));
        assert!(canonical_oid_content(&ROLE_EXTENSION));
    }
}
