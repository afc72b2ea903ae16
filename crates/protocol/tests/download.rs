//! APP-3 objects (docs/app-download.md §2): `DownloadRequest` and `DownloadApplication` codecs
//! (round trip, trailing bytes, truncation, arbitrary bytes never panic, known answer), the
//! identifiers' bounds, and every refusal of `verify_download_application`.

mod common;

use common::{at, id, key, Fixture, CARD, NOW, OTHER_CARD};
use proptest::collection::vec;
use proptest::prelude::*;

use crypto::Digest;
use pki::{CardId, PartyId, Role, UnixTime};
use protocol::{
    verify_download_application, DerCodec, DownloadApplication, DownloadError, DownloadRequest,
    ExpectedDownload, ItemId, Listing, ListingBody, Nonce, OperationId, ProtocolError, Purpose,
    ServiceId, SignedObject,
};

// ---- strategies ----

fn party() -> impl Strategy<Value = PartyId> {
    "[A-Za-z0-9._-]{1,64}".prop_map(|s| PartyId::new(&s).unwrap())
}

fn service_id() -> impl Strategy<Value = ServiceId> {
    "[A-Za-z0-9._-]{1,64}".prop_map(|s| ServiceId::new(&s).unwrap())
}

fn download_request() -> impl Strategy<Value = DownloadRequest> {
    (
        (
            any::<[u8; 16]>(),
            any::<[u8; 16]>(),
            party(),
            party(),
            service_id(),
            vec(any::<u8>(), 1..=16),
        ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<u64>(),
        ),
    )
        .prop_map(
            |(
                (operation_id, card_id, issuer, provider, service_id, item_id),
                (version, size, data_digest, terms_digest, not_after),
            )| DownloadRequest {
                operation_id: OperationId(operation_id),
                card_id: CardId(card_id),
                issuer,
                provider,
                service_id,
                item_id: ItemId::new(&item_id).unwrap(),
                version,
                size,
                data_digest: Digest(data_digest),
                terms_digest: Digest(terms_digest),
                not_after: UnixTime(not_after),
            },
        )
}

fn download_application() -> impl Strategy<Value = DownloadApplication> {
    (download_request(), any::<u64>(), any::<u32>()).prop_map(|(request, counter, free)| {
        DownloadApplication {
            request,
            counter,
            free,
        }
    })
}

fn canonical<T: DerCodec + std::fmt::Debug>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(value) = T::from_der(bytes) {
        prop_assert_eq!(value.to_der(), bytes.to_vec());
    }
    Ok(())
}

macro_rules! codec_properties {
    ($module:ident, $ty:ty, $strategy:expr) => {
        mod $module {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig::with_cases(128))]

                #[test]
                fn round_trips(value in $strategy) {
                    let der = value.to_der();
                    prop_assert_eq!(<$ty>::from_der(&der), Ok(value.clone()));
                    prop_assert_eq!(value.digest(), crypto::sha256(&der));
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
                fn arbitrary_sequences_never_panic(body in vec(any::<u8>(), 0..250)) {
                    let mut bytes = vec![0x30, 0x81, body.len() as u8];
                    bytes.extend_from_slice(&body);
                    canonical::<$ty>(&bytes)?;
                }
            }
        }
    };
}

codec_properties!(download_request_codec, DownloadRequest, download_request());
codec_properties!(
    download_application_codec,
    DownloadApplication,
    download_application()
);

// ---- known answer and field constraints ----

fn fixed_request() -> DownloadRequest {
    DownloadRequest {
        operation_id: OperationId([0x0F; 16]),
        card_id: CARD,
        issuer: id("issuer-1"),
        provider: id("provider-1"),
        service_id: ServiceId::new("gym").unwrap(),
        item_id: ItemId::new(&[0xA0, 0x00, 0x00, 0x00, 0x01]).unwrap(),
        version: 1,
        size: 100,
        data_digest: Digest([0xDD; 32]),
        terms_digest: Digest([0x7E; 32]),
        not_after: UnixTime(1_800_000_000),
    }
}

/// docs/protocol.asn, `DownloadRequest`, written out by hand.
fn fixed_request_der() -> Vec<u8> {
    let mut der = hex::decode("308196").unwrap();
    der.extend(hex::decode("0410").unwrap());
    der.extend([0x0F; 16]); // operationId
    der.extend(hex::decode("0410").unwrap());
    der.extend([0x11; 16]); // cardId
    der.extend(hex::decode("0c08").unwrap());
    der.extend(b"issuer-1"); // issuer
    der.extend(hex::decode("0c0a").unwrap());
    der.extend(b"provider-1"); // provider
    der.extend(hex::decode("0c03").unwrap());
    der.extend(b"gym"); // serviceId
    der.extend(hex::decode("0405a000000001").unwrap()); // itemId
    der.extend(hex::decode("020101").unwrap()); // version 1
    der.extend(hex::decode("020164").unwrap()); // size 100
    der.extend(hex::decode("0420").unwrap());
    der.extend([0xDD; 32]); // dataDigest
    der.extend(hex::decode("0420").unwrap());
    der.extend([0x7E; 32]); // termsDigest
    der.extend(hex::decode("02046b49d200").unwrap()); // notAfter 1_800_000_000
    der
}

#[test]
fn download_request_known_answer() {
    assert_eq!(fixed_request().to_der(), fixed_request_der());
    assert_eq!(
        DownloadRequest::from_der(&fixed_request_der()),
        Ok(fixed_request())
    );
}

#[test]
fn download_application_known_answer() {
    let application = DownloadApplication {
        request: fixed_request(),
        counter: 7,
        free: 3986,
    };
    let request = fixed_request_der();
    let mut der = hex::decode("3081a0").unwrap();
    der.extend(&request);
    der.extend(hex::decode("020107").unwrap()); // counter 7
    der.extend(hex::decode("02020f92").unwrap()); // free 3986
    assert_eq!(der.len(), 3 + 0xa0);
    assert_eq!(application.to_der(), der);
    assert_eq!(DownloadApplication::from_der(&der), Ok(application));
}

#[test]
fn download_request_field_constraints() {
    let good = fixed_request_der();
    let replaced = |from: &[u8], to: &[u8]| {
        let at = good.windows(from.len()).position(|w| w == from).unwrap();
        let mut der = good.clone();
        der[at..at + from.len()].copy_from_slice(to);
        DownloadRequest::from_der(&der)
    };
    for (from, to, field) in [
        (&b"gym"[..], &b"g/m"[..], "serviceId"),
        (b"gym", b"g m", "serviceId"),
        (b"issuer-1", b"issuer/1", "issuer"),
        (b"provider-1", b"provider 1", "provider"),
    ] {
        assert!(
            matches!(
                replaced(from, to),
                Err(ProtocolError::InvalidField { object: "DownloadRequest", field: f, .. }) if f == field
            ),
            "{:?}",
            String::from_utf8_lossy(to)
        );
    }
    // An operation ID of 15 bytes (the length and the SEQUENCE length shrink by one).
    let mut short = vec![0x30, 0x81, 0x95, 0x04, 0x0f];
    short.extend([0x0F; 15]);
    short.extend(&good[3 + 2 + 16..]);
    assert!(matches!(
        DownloadRequest::from_der(&short),
        Err(ProtocolError::InvalidField {
            field: "operationId",
            ..
        })
    ));
}

#[test]
fn service_id_bounds() {
    assert!(ServiceId::new("a").is_ok());
    assert!(ServiceId::new(&"s".repeat(64)).is_ok());
    assert!(ServiceId::new("gym.monthly_2-b").is_ok());
    for bad in ["", &"s".repeat(65), "a b", "a/b", "é", "a\n"] {
        assert!(
            matches!(
                ServiceId::new(bad),
                Err(ProtocolError::InvalidField {
                    field: "serviceId",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn operation_id_hex() {
    let op = OperationId([0xAB; 16]);
    assert_eq!(op.to_hex(), "ab".repeat(16));
    assert_eq!(op.to_string(), "ab".repeat(16));
    assert_eq!(OperationId::from_hex(&"ab".repeat(16)), Ok(op));
    assert_eq!(OperationId::from_hex(&"AB".repeat(16)), Ok(op));
    for bad in [
        "".to_string(),
        "ab".repeat(15),
        "ab".repeat(17),
        format!("{}zz", "ab".repeat(15)),
        format!("+a{}", "ab".repeat(15)),
        format!("é{}", "a".repeat(30)),
    ] {
        assert!(OperationId::from_hex(&bad).is_err(), "{bad:?}");
    }
    let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(3);
    assert_ne!(
        OperationId::generate(&mut rng),
        OperationId::generate(&mut rng)
    );
}

// ---- verification ----

fn application() -> DownloadApplication {
    DownloadApplication {
        request: DownloadRequest {
            issuer: Fixture::new().issuer.id.clone(),
            not_after: at(1800),
            ..fixed_request()
        },
        counter: 7,
        free: 3986,
    }
}

fn expected(pki: &Fixture) -> ExpectedDownload {
    ExpectedDownload {
        issuer: pki.issuer.id.clone(),
        now: NOW,
    }
}

#[test]
fn download_application_verified_with_the_rc() {
    let pki = Fixture::new();
    let signed = application().sign(&pki.card_key);
    assert_eq!(signed.purpose(), Purpose::DownloadApplication);
    assert!(signed.signer_chain().is_empty());
    assert_eq!(
        verify_download_application(&signed, &pki.rc, &expected(&pki)),
        Ok(application())
    );
    // Deterministic: signing again gives the same bytes (REC-2: a lost answer is re-signed).
    assert_eq!(application().sign(&pki.card_key).to_der(), signed.to_der());
    // It survives the wire.
    let decoded = SignedObject::from_der(&signed.to_der()).unwrap();
    assert_eq!(
        verify_download_application(&decoded, &pki.rc, &expected(&pki)),
        Ok(application())
    );
    // notAfter == now is still in force.
    let at_the_limit = ExpectedDownload {
        now: at(1800),
        ..expected(&pki)
    };
    assert!(verify_download_application(&signed, &pki.rc, &at_the_limit).is_ok());
}

#[test]
fn download_application_refusals() {
    let pki = Fixture::new();
    let ok = application().sign(&pki.card_key);

    // Another purpose: a listing signed by the same key.
    let listing = Listing {
        card_id: CARD,
        nonce: Nonce::default(),
        counter: 7,
        contents: ListingBody::new(Vec::new(), 4096, 4096).unwrap(),
    }
    .sign(&pki.card_key);
    assert_eq!(
        verify_download_application(&listing, &pki.rc, &expected(&pki)),
        Err(DownloadError::WrongPurpose {
            found: Purpose::Listing
        })
    );

    // Signed by another key than the RC's.
    assert_eq!(
        verify_download_application(&application().sign(&key(78)), &pki.rc, &expected(&pki)),
        Err(DownloadError::BadSignature)
    );

    // The signed bytes changed, the signature kept: free 3986 -> 3987 inside the tbs.
    let mut tampered = ok.to_der();
    let free_at = tampered
        .windows(4)
        .position(|w| w == [0x02, 0x02, 0x0f, 0x92])
        .unwrap();
    tampered[free_at + 3] = 0x93;
    let tampered = SignedObject::from_der(&tampered).unwrap();
    assert_eq!(
        tampered
            .body_unverified::<DownloadApplication>()
            .unwrap()
            .free,
        3987
    );
    assert_eq!(
        verify_download_application(&tampered, &pki.rc, &expected(&pki)),
        Err(DownloadError::BadSignature)
    );

    // For another card (signed by this card's key: a card fault or a replay across cards).
    let mut other_card = application();
    other_card.request.card_id = OTHER_CARD;
    assert_eq!(
        verify_download_application(&other_card.sign(&pki.card_key), &pki.rc, &expected(&pki)),
        Err(DownloadError::WrongCard {
            expected: CARD,
            found: OTHER_CARD
        })
    );

    // Addressed to another issuer.
    let other_issuer = ExpectedDownload {
        issuer: pki.issuer2.id.clone(),
        ..expected(&pki)
    };
    assert_eq!(
        verify_download_application(&ok, &pki.rc, &other_issuer),
        Err(DownloadError::WrongIssuer {
            expected: pki.issuer2.id.clone(),
            found: pki.issuer.id.clone()
        })
    );

    // Expired.
    let later = ExpectedDownload {
        now: at(1801),
        ..expected(&pki)
    };
    assert_eq!(
        verify_download_application(&ok, &pki.rc, &later),
        Err(DownloadError::Expired {
            not_after: at(1800),
            now: at(1801)
        })
    );

    // Checked against a certificate that is not an RC.
    assert_eq!(
        verify_download_application(&ok, &pki.provider.cert, &expected(&pki)),
        Err(DownloadError::NotCardCertificate {
            subject: pki.provider.id.to_string(),
            role: Role::Provider
        })
    );

    // Right purpose, body that is not a DownloadApplication.
    let garbage = SignedObject::sign(
        Purpose::DownloadApplication,
        &fixed_request_der(),
        &pki.card_key,
        Vec::new(),
    )
    .unwrap();
    assert!(matches!(
        verify_download_application(&garbage, &pki.rc, &expected(&pki)),
        Err(DownloadError::Malformed(ProtocolError::Malformed { .. }))
    ));
}
