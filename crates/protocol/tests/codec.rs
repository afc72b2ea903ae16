//! Every codec: `decode(encode(x)) == x`; trailing bytes refused; arbitrary and mutated bytes
//! never panic, and whatever decodes re-encodes to exactly the same bytes (so a non-canonical
//! form can never be accepted); and known-answer encodings pinned against docs/protocol.asn.

mod common;

use common::envelope;
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;

use crypto::{Digest, InsecureSeededRng, SigningKey};
use pki::{CardId, PartyId, UnixTime};
use protocol::{
    ApiRequest, CertifiedData, Challenge, Delegation, DerCodec, HttpMethod, IssuerAction,
    IssuerCommand, ItemId, ItemPrefix, LedgerEntry, ListedItem, Listing, ListingBody, Nonce,
    Operation, OperationSet, PartyRole, Policy, Purpose, Receipt, ReceiptResult, RegistrationInfo,
    RequestPath, Sa, SaBasis, Sar, Sdi, SignedObject, UserInfo,
};

// ---- strategies ----

fn card_id() -> impl Strategy<Value = CardId> {
    any::<[u8; 16]>().prop_map(CardId)
}

fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}

fn challenge() -> impl Strategy<Value = Challenge> {
    any::<[u8; 16]>().prop_map(Challenge)
}

fn time() -> impl Strategy<Value = UnixTime> {
    any::<u64>().prop_map(UnixTime)
}

fn party() -> impl Strategy<Value = PartyId> {
    "[A-Za-z0-9._-]{1,64}".prop_map(|s| PartyId::new(&s).unwrap())
}

fn item_id() -> impl Strategy<Value = ItemId> {
    vec(any::<u8>(), 1..=16).prop_map(|b| ItemId::new(&b).unwrap())
}

fn item_prefix() -> impl Strategy<Value = ItemPrefix> {
    vec(any::<u8>(), 0..=16).prop_map(|b| ItemPrefix::new(&b).unwrap())
}

fn nonce() -> impl Strategy<Value = Nonce> {
    vec(any::<u8>(), 0..=32).prop_map(|b| Nonce::new(&b).unwrap())
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![Just(Operation::Store), Just(Operation::Delete)]
}

fn operations() -> impl Strategy<Value = OperationSet> {
    prop_oneof![
        Just(OperationSet::STORE),
        Just(OperationSet::DELETE),
        Just(OperationSet::STORE_AND_DELETE)
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    (0u32..8).prop_map(|b| Policy::from_bits(b).unwrap())
}

fn role() -> impl Strategy<Value = PartyRole> {
    prop_oneof![Just(PartyRole::Issuer), Just(PartyRole::Provider)]
}

fn purpose() -> impl Strategy<Value = Purpose> {
    prop_oneof![
        Just(Purpose::RegistrationInfo),
        Just(Purpose::StoringAuthorizationRequest),
        Just(Purpose::StoringAuthorization),
        Just(Purpose::Delegation),
        Just(Purpose::CertifiedData),
        Just(Purpose::RegistrarCertifiedData),
        Just(Purpose::Receipt),
        Just(Purpose::Listing),
        Just(Purpose::IssuerCommand),
        Just(Purpose::ApiRequest),
        Just(Purpose::LedgerEntry),
        Just(Purpose::DownloadApplication),
    ]
}

fn signing_key() -> impl Strategy<Value = SigningKey> {
    any::<u64>().prop_map(|seed| {
        SigningKey::generate(&mut InsecureSeededRng::insecure_seeded_for_tests(seed))
    })
}

fn user_info() -> impl Strategy<Value = UserInfo> {
    ("\\PC{1,64}", "\\PC{0,128}", "\\PC{0,128}")
        .prop_map(|(u, n, e)| UserInfo::new(&u, &n, &e).unwrap())
}

fn registration_info() -> impl Strategy<Value = RegistrationInfo> {
    (card_id(), signing_key(), user_info(), challenge()).prop_map(
        |(card_id, key, user_info, challenge)| RegistrationInfo {
            card_id,
            public_key: key.verifying_key(),
            user_info,
            challenge,
        },
    )
}

fn sdi() -> impl Strategy<Value = Sdi> {
    (
        card_id(),
        operation(),
        item_id(),
        any::<u32>(),
        any::<u32>(),
        digest(),
        party(),
        policy(),
    )
        .prop_map(
            |(card_id, operation, item_id, version, size, data_digest, owner, policy)| Sdi {
                card_id,
                operation,
                item_id,
                version,
                size,
                data_digest,
                owner,
                policy,
            },
        )
}

fn sar() -> impl Strategy<Value = Sar> {
    (
        role(),
        party(),
        digest(),
        sdi(),
        challenge(),
        time(),
        time(),
    )
        .prop_map(
            |(requester_role, requester, rc_digest, sdi, challenge, issued_at, not_after)| Sar {
                requester_role,
                requester,
                rc_digest,
                sdi,
                challenge,
                issued_at,
                not_after,
            },
        )
}

fn certified_data() -> impl Strategy<Value = CertifiedData> {
    (digest(), digest()).prop_map(|(sdi_digest, data_digest)| CertifiedData {
        sdi_digest,
        data_digest,
    })
}

/// A signed object over some body, with a chain of opaque "certificates".
fn signed_object() -> impl Strategy<Value = SignedObject> {
    (
        purpose(),
        certified_data(),
        signing_key(),
        vec(vec(any::<u8>(), 1..64), 0..=3),
    )
        .prop_map(|(purpose, body, key, chain)| {
            SignedObject::sign(purpose, &body.to_der(), &key, chain).unwrap()
        })
}

fn sa() -> impl Strategy<Value = Sa> {
    (
        prop_oneof![
            signed_object().prop_map(SaBasis::Request),
            signed_object().prop_map(SaBasis::Delegation)
        ],
        role(),
        party(),
        sdi(),
        digest(),
        card_id(),
        challenge(),
        time(),
        time(),
    )
        .prop_map(
            |(
                basis,
                grantor_role,
                grantor,
                sdi,
                sdi_digest,
                card_id,
                challenge,
                issued_at,
                not_after,
            )| {
                Sa {
                    basis,
                    grantor_role,
                    grantor,
                    sdi,
                    sdi_digest,
                    card_id,
                    challenge,
                    issued_at,
                    not_after,
                }
            },
        )
}

fn delegation() -> impl Strategy<Value = Delegation> {
    (
        party(),
        party(),
        digest(),
        operations(),
        item_prefix(),
        any::<u32>(),
        proptest::option::of(card_id()),
        time(),
        time(),
    )
        .prop_map(
            |(
                issuer,
                provider,
                provider_key_digest,
                operations,
                item_prefix,
                max_item_size,
                card_id,
                issued_at,
                not_after,
            )| {
                Delegation {
                    issuer,
                    provider,
                    provider_key_digest,
                    operations,
                    item_prefix,
                    max_item_size,
                    card_id,
                    issued_at,
                    not_after,
                }
            },
        )
}

fn receipt() -> impl Strategy<Value = Receipt> {
    (
        card_id(),
        any::<u64>(),
        operation(),
        item_id(),
        digest(),
        digest(),
        prop_oneof![Just(ReceiptResult::Stored), Just(ReceiptResult::Deleted)],
        digest(),
    )
        .prop_map(
            |(
                card_id,
                counter,
                operation,
                item_id,
                sdi_digest,
                authorization_digest,
                result,
                listing_digest,
            )| {
                Receipt {
                    card_id,
                    counter,
                    operation,
                    item_id,
                    sdi_digest,
                    authorization_digest,
                    result,
                    listing_digest,
                }
            },
        )
}

fn listed_item_with(item_id: ItemId) -> impl Strategy<Value = ListedItem> {
    (any::<u32>(), any::<u32>(), digest(), party(), policy()).prop_map(
        move |(version, size, data_digest, owner, policy)| ListedItem {
            item_id: item_id.clone(),
            version,
            size,
            data_digest,
            owner,
            policy,
        },
    )
}

fn listed_item() -> impl Strategy<Value = ListedItem> {
    item_id().prop_flat_map(listed_item_with)
}

fn listing_body() -> impl Strategy<Value = ListingBody> {
    (
        btree_map(vec(any::<u8>(), 1..=16), listed_item(), 0..6),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(|(items, a, b)| {
            let items = items
                .into_iter()
                .map(|(id, mut item)| {
                    item.item_id = ItemId::new(&id).unwrap();
                    item
                })
                .collect();
            ListingBody::new(items, a.max(b), a.min(b)).unwrap()
        })
}

fn listing() -> impl Strategy<Value = Listing> {
    (card_id(), nonce(), any::<u64>(), listing_body()).prop_map(
        |(card_id, nonce, counter, contents)| Listing {
            card_id,
            nonce,
            counter,
            contents,
        },
    )
}

fn issuer_command() -> impl Strategy<Value = IssuerCommand> {
    (
        card_id(),
        challenge(),
        prop_oneof![
            Just(IssuerAction::UnblockPin),
            Just(IssuerAction::Lock),
            Just(IssuerAction::Unlock),
            Just(IssuerAction::Terminate)
        ],
        time(),
        time(),
    )
        .prop_map(
            |(card_id, challenge, action, issued_at, not_after)| IssuerCommand {
                card_id,
                challenge,
                action,
                issued_at,
                not_after,
            },
        )
}

fn http_method() -> impl Strategy<Value = HttpMethod> {
    "[A-Z]{1,10}".prop_map(|m| HttpMethod::new(&m).unwrap())
}

fn request_path() -> impl Strategy<Value = RequestPath> {
    "/[!-~]{0,511}".prop_map(|p| RequestPath::new(&p).unwrap())
}

fn api_request() -> impl Strategy<Value = ApiRequest> {
    (
        http_method(),
        request_path(),
        digest(),
        party(),
        role(),
        party(),
        time(),
        challenge(),
    )
        .prop_map(
            |(method, path, body_digest, audience, caller_role, caller, issued_at, nonce)| {
                ApiRequest {
                    method,
                    path,
                    body_digest,
                    audience,
                    caller_role,
                    caller,
                    issued_at,
                    nonce,
                }
            },
        )
}

fn ledger_entry() -> impl Strategy<Value = LedgerEntry> {
    (
        party(),
        card_id(),
        any::<u64>(),
        digest(),
        signed_object(),
        digest(),
        time(),
    )
        .prop_map(
            |(party, card_id, seq, prev, receipt, view_digest, recorded_at)| LedgerEntry {
                party,
                card_id,
                seq,
                prev,
                receipt,
                view_digest,
                recorded_at,
            },
        )
}

// ---- the properties, for every type ----

/// Whatever decodes re-encodes to the same bytes: decoding is injective on canonical DER and
/// refuses every other form.
fn canonical<T: DerCodec + PartialEq + std::fmt::Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = T::from_der(bytes) {
        prop_assert_eq!(value.to_der(), bytes.to_vec());
    }
    Ok(())
}

macro_rules! codec_properties {
    ($module:ident, $ty:ty, $strategy:expr, $cases:expr) => {
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases($cases))]

                #[test]
                fn round_trips(value in $strategy) {
                    let der = value.to_der();
                    prop_assert_eq!(<$ty>::from_der(&der), Ok(value.clone()));
                    prop_assert_eq!(<$ty as DerCodec>::digest(&value), crypto::sha256(&der));
                }

                #[test]
                fn refuses_trailing_bytes(value in $strategy, extra in vec(any::<u8>(), 1..4)) {
                    let mut der = value.to_der();
                    der.extend_from_slice(&extra);
                    prop_assert!(<$ty>::from_der(&der).is_err());
                }

                #[test]
                fn refuses_truncation(value in $strategy, cut in any::<prop::sample::Index>()) {
                    let der = value.to_der();
                    let len = cut.index(der.len());
                    prop_assert!(<$ty>::from_der(&der[..len]).is_err());
                }

                #[test]
                fn mutated_encodings_never_panic_and_stay_canonical(
                    value in $strategy,
                    at in any::<prop::sample::Index>(),
                    xor in 1u8..,
                ) {
                    let mut der = value.to_der();
                    let i = at.index(der.len());
                    der[i] ^= xor;
                    canonical::<$ty>(&der)?;
                }

                #[test]
                fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
                    canonical::<$ty>(&bytes)?;
                }

                #[test]
                fn arbitrary_sequences_never_panic(body in vec(any::<u8>(), 0..200)) {
                    // A SEQUENCE header in front gets past the first check more often.
                    let mut bytes = vec![0x30, 0x81, body.len() as u8];
                    bytes.extend_from_slice(&body);
                    canonical::<$ty>(&bytes)?;
                }
            }
        }
    };
}

codec_properties!(user_info_codec, UserInfo, user_info(), 128);
codec_properties!(
    registration_info_codec,
    RegistrationInfo,
    registration_info(),
    48
);
codec_properties!(sdi_codec, Sdi, sdi(), 128);
codec_properties!(sar_codec, Sar, sar(), 128);
codec_properties!(sa_codec, Sa, sa(), 32);
codec_properties!(delegation_codec, Delegation, delegation(), 128);
codec_properties!(certified_data_codec, CertifiedData, certified_data(), 128);
codec_properties!(receipt_codec, Receipt, receipt(), 128);
codec_properties!(listed_item_codec, ListedItem, listed_item(), 128);
codec_properties!(listing_body_codec, ListingBody, listing_body(), 64);
codec_properties!(listing_codec, Listing, listing(), 64);
codec_properties!(issuer_command_codec, IssuerCommand, issuer_command(), 128);
codec_properties!(signed_object_codec, SignedObject, signed_object(), 32);
codec_properties!(api_request_codec, ApiRequest, api_request(), 128);
codec_properties!(ledger_entry_codec, LedgerEntry, ledger_entry(), 32);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// A signed object keeps its purpose and body and verifies under its key only for that
    /// purpose.
    #[test]
    fn signed_object_binds_its_purpose(p in purpose(), q in purpose(), body in certified_data(), key in signing_key()) {
        let signed = SignedObject::sign(p, &body.to_der(), &key, Vec::new()).unwrap();
        prop_assert_eq!(signed.purpose(), p);
        prop_assert_eq!(signed.body_der(), &body.to_der()[..]);
        let verified = signed.verify(&key.verifying_key(), q);
        if p == q {
            prop_assert_eq!(verified, Ok(&body.to_der()[..]));
        } else {
            prop_assert!(verified.is_err());
        }
    }
}

// ---- known answers and explicit non-canonical forms ----

fn fixed_sdi() -> Sdi {
    Sdi {
        card_id: CardId([0x11; 16]),
        operation: Operation::Store,
        item_id: ItemId::new(&[0xA0, 0x00, 0x01]).unwrap(),
        version: 1,
        size: 100,
        data_digest: Digest([0xDD; 32]),
        owner: PartyId::new("provider-1").unwrap(),
        policy: Policy::NONE,
    }
}

/// docs/protocol.asn, `Sdi`, written out by hand.
fn fixed_sdi_der() -> Vec<u8> {
    let mut der = hex::decode("3051").unwrap();
    der.extend(hex::decode("0410").unwrap());
    der.extend([0x11; 16]); // cardId
    der.extend(hex::decode("0a0100").unwrap()); // operation store
    der.extend(hex::decode("0403a00001").unwrap()); // itemId
    der.extend(hex::decode("020101").unwrap()); // version 1
    der.extend(hex::decode("020164").unwrap()); // size 100
    der.extend(hex::decode("0420").unwrap());
    der.extend([0xDD; 32]); // dataDigest
    der.extend(hex::decode("0c0a").unwrap());
    der.extend(b"provider-1"); // owner
    der.extend(hex::decode("020100").unwrap()); // policy
    der
}

#[test]
fn sdi_known_answer() {
    assert_eq!(fixed_sdi().to_der(), fixed_sdi_der());
    assert_eq!(Sdi::from_der(&fixed_sdi_der()), Ok(fixed_sdi()));
}

fn fixed_api_request() -> ApiRequest {
    ApiRequest {
        method: HttpMethod::new("GET").unwrap(),
        path: RequestPath::new("/v1").unwrap(),
        body_digest: Digest([0xBB; 32]),
        audience: PartyId::new("issuer-1").unwrap(),
        caller_role: PartyRole::Provider,
        caller: PartyId::new("provider-1").unwrap(),
        issued_at: UnixTime(1_800_000_000),
        nonce: Challenge([0x4E; 16]),
    }
}

/// docs/protocol.asn, `ApiRequest`, written out by hand.
fn fixed_api_request_der() -> Vec<u8> {
    let mut der = hex::decode("305d").unwrap();
    der.extend(hex::decode("0c03").unwrap());
    der.extend(b"GET"); // method
    der.extend(hex::decode("0c03").unwrap());
    der.extend(b"/v1"); // path
    der.extend(hex::decode("0420").unwrap());
    der.extend([0xBB; 32]); // bodyDigest
    der.extend(hex::decode("0c08").unwrap());
    der.extend(b"issuer-1"); // audience
    der.extend(hex::decode("0a0101").unwrap()); // callerRole provider
    der.extend(hex::decode("0c0a").unwrap());
    der.extend(b"provider-1"); // caller
    der.extend(hex::decode("02046b49d200").unwrap()); // issuedAt 1_800_000_000
    der.extend(hex::decode("0410").unwrap());
    der.extend([0x4E; 16]); // nonce
    der
}

#[test]
fn api_request_known_answer_and_field_constraints() {
    let good = fixed_api_request_der();
    assert_eq!(fixed_api_request().to_der(), good);
    assert_eq!(ApiRequest::from_der(&good), Ok(fixed_api_request()));
    let replaced = |from: &[u8], to: &[u8]| {
        let at = good.windows(from.len()).position(|w| w == from).unwrap();
        let mut der = good.clone();
        der[at..at + from.len()].copy_from_slice(to);
        ApiRequest::from_der(&der)
    };
    // Well-formed DER whose strings break HttpMethod / RequestPath.
    for (from, to, field) in [
        (&b"GET"[..], &b"get"[..], "method"),
        (b"GET", b"G T", "method"),
        (b"/v1", b"v1/", "path"),
        (b"/v1", b"/ 1", "path"),
    ] {
        assert!(
            matches!(
                replaced(from, to),
                Err(protocol::ProtocolError::InvalidField { object: "ApiRequest", field: f, .. }) if f == field
            ),
            "{:?}",
            String::from_utf8_lossy(to)
        );
    }
    // callerRole 2 is not in the ENUMERATED.
    assert!(matches!(
        replaced(&[0x0a, 0x01, 0x01], &[0x0a, 0x01, 0x02]),
        Err(protocol::ProtocolError::Malformed { .. })
    ));
}

#[test]
fn non_canonical_forms_are_refused() {
    let good = fixed_sdi_der();
    // Long-form length where the short form fits.
    let mut long_length = vec![0x30, 0x81, 0x51];
    long_length.extend_from_slice(&good[2..]);
    assert!(Sdi::from_der(&long_length).is_err());
    // Indefinite length (BER only).
    let mut indefinite = vec![0x30, 0x80];
    indefinite.extend_from_slice(&good[2..]);
    indefinite.extend_from_slice(&[0, 0]);
    assert!(Sdi::from_der(&indefinite).is_err());
    // INTEGER with a superfluous leading zero: version 1 as 02 02 00 01.
    let version_at = good
        .windows(3)
        .position(|w| w == [0x02, 0x01, 0x01])
        .unwrap();
    let mut padded = vec![0x30, 0x52];
    padded.extend_from_slice(&good[2..version_at]);
    padded.extend_from_slice(&[0x02, 0x02, 0x00, 0x01]);
    padded.extend_from_slice(&good[version_at + 3..]);
    assert!(Sdi::from_der(&padded).is_err());
    // Constructed OCTET STRING (BER only) for the card ID.
    let mut constructed = good.clone();
    constructed[2] = 0x24;
    assert!(Sdi::from_der(&constructed).is_err());
}

#[test]
fn out_of_range_values_are_refused() {
    let good = fixed_sdi_der();
    // Operation 2 is not in the ENUMERATED.
    let mut bad_op = good.clone();
    let op_at = good
        .windows(3)
        .position(|w| w == [0x0a, 0x01, 0x00])
        .unwrap();
    bad_op[op_at + 2] = 0x02;
    assert!(Sdi::from_der(&bad_op).is_err());
    // An unknown policy bit.
    let mut bad_policy = good.clone();
    let last = bad_policy.len() - 1;
    bad_policy[last] = 0x08;
    assert!(matches!(
        Sdi::from_der(&bad_policy),
        Err(protocol::ProtocolError::InvalidField {
            field: "policy",
            ..
        })
    ));
    // A party ID outside [A-Za-z0-9._-].
    let mut bad_owner = good.clone();
    let owner_at = good.windows(10).position(|w| w == b"provider-1").unwrap();
    bad_owner[owner_at + 8] = b'/';
    assert!(matches!(
        Sdi::from_der(&bad_owner),
        Err(protocol::ProtocolError::InvalidField { field: "owner", .. })
    ));
}

#[test]
fn sa_basis_is_tagged_and_exactly_one() {
    let key = SigningKey::generate(&mut InsecureSeededRng::insecure_seeded_for_tests(1));
    let inner = CertifiedData {
        sdi_digest: Digest([1; 32]),
        data_digest: Digest([2; 32]),
    }
    .sign(&key, Vec::new());
    let sa = |basis| {
        Sa::new(
            basis,
            PartyRole::Provider,
            PartyId::new("p").unwrap(),
            fixed_sdi(),
            Challenge([3; 16]),
            UnixTime(1),
            UnixTime(2),
        )
    };
    let request = sa(SaBasis::Request(inner.clone())).to_der();
    let delegation = sa(SaBasis::Delegation(inner.clone())).to_der();
    // SEQUENCE (long form: 2 length bytes), then [0] or [1] EXPLICIT SignedObject.
    assert_eq!((request[0], request[4]), (0x30, 0xA0));
    assert_eq!((delegation[0], delegation[4]), (0x30, 0xA1));
    // Both, and neither, are refused.
    let inner_der = inner.to_der();
    let tagged = |tag: u8| {
        let mut v = vec![tag, 0x81, inner_der.len() as u8];
        v.extend_from_slice(&inner_der);
        v
    };
    let rest = &request[4 + tagged(0xA0).len()..];
    for basis in [[tagged(0xA0), tagged(0xA1)].concat(), Vec::new()] {
        let mut content = basis;
        content.extend_from_slice(rest);
        let mut der = match content.len() {
            len @ 0..=0x7F => vec![0x30, len as u8],
            len @ 0x80..=0xFF => vec![0x30, 0x81, len as u8],
            len => vec![0x30, 0x82, (len >> 8) as u8, len as u8],
        };
        der.extend_from_slice(&content);
        let result = Sa::from_der(&der);
        assert!(
            matches!(
                result,
                Err(protocol::ProtocolError::InvalidField {
                    field: "sar/delegation",
                    ..
                })
            ),
            "{result:?}"
        );
    }
}

#[test]
fn bounds_of_the_value_types() {
    assert!(ItemId::new(&[]).is_err());
    assert!(ItemId::new(&[0; 17]).is_err());
    assert!(ItemPrefix::new(&[0; 17]).is_err());
    assert!(Nonce::new(&[0; 33]).is_err());
    assert!(UserInfo::new("", "n", "e").is_err());
    assert!(UserInfo::new(&"u".repeat(65), "", "").is_err());
    assert!(UserInfo::new("u", &"é".repeat(128), "").is_ok());
    assert!(UserInfo::new("u", &"é".repeat(129), "").is_err());
    assert!(UserInfo::new("u\n", "", "").is_err());
    assert!(Policy::from_bits(8).is_err());
    assert!(OperationSet::from_slice(&[]).is_err());
    assert!(OperationSet::from_slice(&[Operation::Delete, Operation::Store]).is_err());
    assert!(OperationSet::from_slice(&[Operation::Store, Operation::Store]).is_err());
    assert!(HttpMethod::new("POST").is_ok());
    assert!(HttpMethod::new("ABCDEFGHIJ").is_ok());
    for bad in ["", "post", "ABCDEFGHIJK", "GE T", "GET\n", "MÉTHOD"] {
        assert!(HttpMethod::new(bad).is_err(), "{bad:?}");
    }
    assert!(RequestPath::new("/").is_ok());
    assert!(RequestPath::new("/v1/cards/ab?x=1&y=%20").is_ok());
    assert!(RequestPath::new(&format!("/{}", "a".repeat(511))).is_ok());
    for bad in [
        String::new(),
        "v1/cards".to_string(),
        "/v1 /cards".to_string(),
        "/v1/\tcards".to_string(),
        "/é".to_string(),
        "/\u{7f}".to_string(),
        format!("/{}", "a".repeat(512)),
    ] {
        assert!(RequestPath::new(&bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        protocol::MAX_CHAIN_LEN,
        3,
        "docs/protocol.asn says SIZE (0..3)"
    );
}

#[test]
fn every_type_is_in_the_asn1_module() {
    let module = include_str!("../../../docs/protocol.asn");
    for name in [
        <UserInfo as DerCodec>::NAME,
        <RegistrationInfo as DerCodec>::NAME,
        <Sdi as DerCodec>::NAME,
        <Sar as DerCodec>::NAME,
        <Sa as DerCodec>::NAME,
        <Delegation as DerCodec>::NAME,
        <CertifiedData as DerCodec>::NAME,
        <Receipt as DerCodec>::NAME,
        <ListedItem as DerCodec>::NAME,
        <ListingBody as DerCodec>::NAME,
        <Listing as DerCodec>::NAME,
        <IssuerCommand as DerCodec>::NAME,
        <ApiRequest as DerCodec>::NAME,
        <LedgerEntry as DerCodec>::NAME,
        <SignedObject as DerCodec>::NAME,
        "HttpMethod",
        "RequestPath",
        "ToBeSigned",
        "Purpose",
    ] {
        assert!(
            module.contains(&format!("\n{name} ::=")),
            "docs/protocol.asn lacks {name}"
        );
    }
}

#[test]
fn envelope_bounds_and_algorithm() {
    let key = SigningKey::generate(&mut InsecureSeededRng::insecure_seeded_for_tests(5));
    let good = CertifiedData {
        sdi_digest: Digest([1; 32]),
        data_digest: Digest([2; 32]),
    }
    .sign(&key, vec![vec![1]; 3]);
    let tbs = good.tbs();
    let sig = good.signature();
    let ecdsa = "1.2.840.10045.4.3.2";
    assert_eq!(
        SignedObject::from_der(&envelope(tbs, ecdsa, sig, &vec![vec![1]; 3])),
        Ok(good.clone())
    );
    // Too many certificates, an empty one, an oversized one, an empty signature.
    for (signature, chain) in [
        (sig.to_vec(), vec![vec![1]; 4]),
        (sig.to_vec(), vec![Vec::new()]),
        (
            sig.to_vec(),
            vec![vec![0; protocol::MAX_CERTIFICATE_LEN + 1]],
        ),
        (Vec::new(), Vec::new()),
    ] {
        assert!(matches!(
            SignedObject::from_der(&envelope(tbs, ecdsa, &signature, &chain)),
            Err(protocol::ProtocolError::InvalidField {
                object: "SignedObject",
                ..
            })
        ));
    }
    // A tbs that is not a ToBeSigned.
    assert!(matches!(
        SignedObject::from_der(&envelope(&[0x30, 0x00], ecdsa, sig, &[])),
        Err(protocol::ProtocolError::Malformed {
            object: "ToBeSigned",
            ..
        })
    ));
    // Another algorithm decodes (the format can grow) but never verifies.
    let other = SignedObject::from_der(&envelope(tbs, "1.2.840.10045.4.3.3", sig, &[])).unwrap();
    assert_eq!(
        other.verify(&key.verifying_key(), Purpose::CertifiedData),
        Err(protocol::ProtocolError::UnsupportedAlgorithm {
            oid: "1.2.840.10045.4.3.3".into()
        })
    );
    // The raw builder refuses a body that is not one DER value.
    assert!(SignedObject::sign(Purpose::Receipt, &[0x30, 0x00, 0x00], &key, Vec::new()).is_err());
}
