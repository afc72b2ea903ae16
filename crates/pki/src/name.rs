//! Distinguished names of our profile: exactly `O=cardwright, CN=<party ID>` (two RDNs of one
//! UTF8String attribute each, organization first as X.501 orders from the top). Because the
//! form is fixed, two names are equal exactly when their party IDs are.

use der::asn1::{Any, SetOfVec};
use der::{Tag, Tagged};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::oid::{COMMON_NAME, ORGANIZATION};
use crate::{PartyId, PkiError};

/// The organization every cardwright name carries.
pub(crate) const ORGANIZATION_NAME: &str = "cardwright";

pub(crate) fn encode_name(id: &PartyId) -> Result<Name, PkiError> {
    Ok(RdnSequence(vec![
        rdn(ORGANIZATION, ORGANIZATION_NAME)?,
        rdn(COMMON_NAME, id.as_str())?,
    ]))
}

fn rdn(
    oid: const_oid::ObjectIdentifier,
    value: &str,
) -> Result<RelativeDistinguishedName, PkiError> {
    let encoding = PkiError::Encoding {
        what: "a distinguished name",
    };
    let value = Any::new(Tag::Utf8String, value.as_bytes()).map_err(|_| encoding.clone())?;
    let set = SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }])
        .map_err(|_| encoding.clone())?;
    Ok(RelativeDistinguishedName(set))
}

/// The party ID a name of our form carries; anything else is [`PkiError::Malformed`].
pub(crate) fn decode_name(name: &Name) -> Result<PartyId, PkiError> {
    let malformed = PkiError::malformed("name is not O=cardwright, CN=<party ID>");
    let [organization, common_name] = name.0.as_slice() else {
        return Err(malformed);
    };
    let organization = single_utf8(organization, ORGANIZATION).ok_or(malformed.clone())?;
    let common_name = single_utf8(common_name, COMMON_NAME).ok_or(malformed.clone())?;
    if organization != ORGANIZATION_NAME {
        return Err(malformed);
    }
    PartyId::new(common_name).map_err(|_| malformed)
}

fn single_utf8(rdn: &RelativeDistinguishedName, oid: const_oid::ObjectIdentifier) -> Option<&str> {
    let [atv] = rdn.0.as_slice() else {
        return None;
    };
    if atv.oid != oid || atv.value.tag() != Tag::Utf8String {
        return None;
    }
    std::str::from_utf8(atv.value.value()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::{Decode, Encode};

    #[test]
    fn round_trip_and_openssl_order() {
        let id = PartyId::new("issuer-1").unwrap();
        let name = encode_name(&id).unwrap();
        assert_eq!(name.to_string(), "CN=issuer-1,O=cardwright");
        let der = name.to_der().unwrap();
        assert_eq!(decode_name(&Name::from_der(&der).unwrap()).unwrap(), id);
    }

    #[test]
    fn refuses_other_shapes() {
        let reversed = RdnSequence(vec![
            rdn(COMMON_NAME, "issuer-1").unwrap(),
            rdn(ORGANIZATION, ORGANIZATION_NAME).unwrap(),
        ]);
        assert!(decode_name(&reversed).is_err());
        let other_org = RdnSequence(vec![
            rdn(ORGANIZATION, "acme").unwrap(),
            rdn(COMMON_NAME, "issuer-1").unwrap(),
        ]);
        assert!(decode_name(&other_org).is_err());
        let bad_id = RdnSequence(vec![
            rdn(ORGANIZATION, ORGANIZATION_NAME).unwrap(),
            rdn(COMMON_NAME, "issuer 1").unwrap(),
        ]);
        assert!(decode_name(&bad_id).is_err());
        assert!(decode_name(&RdnSequence(vec![])).is_err());
    }
}
