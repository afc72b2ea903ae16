//! Certified data (STO-4/5), issuer commands, registration information (REG-2), receipts and
//! listings (STO-7, REC-1): accepted and refused.

mod common;

use common::*;
use pki::{PkiError, Role};
use protocol::{
    listing_digest, verify_certified_data, verify_issuer_command, verify_listing, verify_receipt,
    verify_registration_info, CertifiedBy, CertifiedData, Challenge, ConsentError, IssuerAction,
    IssuerCommand, ItemId, ListedItem, Listing, ListingBody, Nonce, Operation, Policy,
    ProtocolError, Purpose, Receipt, ReceiptResult, RegistrationInfo, SignedObject,
};

// ---- certified data ----

#[test]
fn sdci_by_the_owner() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sdci = CertifiedData::for_sdi(&sdi).sign(&pki.provider.key, pki.provider.chain());
    assert_eq!(
        verify_certified_data(&sdci, &sdi, &sdi.data_digest, &pki.ctx(&[])),
        Ok(CertifiedBy::Provider(pki.provider.id.clone()))
    );
}

#[test]
fn sdci_prime_by_the_data_registrar_with_or_without_its_certificate() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let body = CertifiedData::for_sdi(&sdi);
    let bare = body.sign_as_registrar(&pki.data_registrar.key);
    assert_eq!(bare.purpose(), Purpose::RegistrarCertifiedData);
    assert_eq!(
        verify_certified_data(&bare, &sdi, &sdi.data_digest, &pki.ctx(&[])),
        Ok(CertifiedBy::DataRegistrar)
    );
    let with_root = SignedObject::sign(
        Purpose::RegistrarCertifiedData,
        &body.to_der(),
        &pki.data_registrar.key,
        pki.data_registrar.chain(),
    )
    .unwrap();
    assert_eq!(
        verify_certified_data(&with_root, &sdi, &sdi.data_digest, &pki.ctx(&[])),
        Ok(CertifiedBy::DataRegistrar)
    );
}

#[test]
fn sdci_prime_with_another_chain_or_key() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let body = CertifiedData::for_sdi(&sdi);
    let foreign = SignedObject::sign(
        Purpose::RegistrarCertifiedData,
        &body.to_der(),
        &pki.rogue_data_root.key,
        pki.rogue_data_root.chain(),
    )
    .unwrap();
    assert_eq!(
        verify_certified_data(&foreign, &sdi, &sdi.data_digest, &pki.ctx(&[])),
        Err(ConsentError::NotTheRegistrar {
            object: "CertifiedData"
        })
    );
    let rogue = body.sign_as_registrar(&pki.rogue_data_root.key);
    assert_eq!(
        verify_certified_data(&rogue, &sdi, &sdi.data_digest, &pki.ctx(&[])),
        Err(ConsentError::Object(ProtocolError::BadSignature {
            purpose: Purpose::RegistrarCertifiedData
        }))
    );
}

#[test]
fn sdci_by_another_provider() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sdci = CertifiedData::for_sdi(&sdi).sign(&pki.provider_2.key, pki.provider_2.chain());
    assert_eq!(
        verify_certified_data(&sdci, &sdi, &sdi.data_digest, &pki.ctx(&[])),
        Err(ConsentError::NotItemOwner {
            object: "CertifiedData",
            owner: pki.provider.id.clone(),
            found: pki.provider_2.id.clone()
        })
    );
}

#[test]
fn sdci_by_a_revoked_provider() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sdci = CertifiedData::for_sdi(&sdi).sign(&pki.provider.key, pki.provider.chain());
    let crls = [pki.data_registrar_crl(&[pki.provider.cert.serial()])];
    assert!(matches!(
        verify_certified_data(&sdci, &sdi, &sdi.data_digest, &pki.ctx(&crls)),
        Err(ConsentError::Certificate {
            source: PkiError::CertificateRevoked { .. },
            ..
        })
    ));
}

#[test]
fn data_that_does_not_match() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sdci = CertifiedData::for_sdi(&sdi).sign(&pki.provider.key, pki.provider.chain());
    let other = crypto::sha256(b"other data");
    assert_eq!(
        verify_certified_data(&sdci, &sdi, &other, &pki.ctx(&[])),
        Err(ConsentError::DataDigestMismatch {
            object: "CertifiedData",
            expected: other,
            found: sdi.data_digest
        })
    );
    // Certified data that is not what the SDI describes.
    let certified_other = CertifiedData {
        sdi_digest: sdi.digest(),
        data_digest: other,
    }
    .sign(&pki.provider.key, pki.provider.chain());
    assert_eq!(
        verify_certified_data(&certified_other, &sdi, &other, &pki.ctx(&[])),
        Err(ConsentError::DataDigestMismatch {
            object: "Sdi",
            expected: sdi.data_digest,
            found: other
        })
    );
}

#[test]
fn sdci_for_another_sdi() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let mut newer = sdi.clone();
    newer.version = 2;
    let sdci = CertifiedData::for_sdi(&newer).sign(&pki.provider.key, pki.provider.chain());
    assert_eq!(
        verify_certified_data(&sdci, &sdi, &sdi.data_digest, &pki.ctx(&[])),
        Err(ConsentError::SdiDigestMismatch {
            object: "CertifiedData",
            declared: newer.digest(),
            computed: sdi.digest()
        })
    );
}

#[test]
fn sdci_with_a_wrong_purpose() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let body = CertifiedData::for_sdi(&sdi).to_der();
    let as_receipt = SignedObject::sign(
        Purpose::Receipt,
        &body,
        &pki.provider.key,
        pki.provider.chain(),
    )
    .unwrap();
    assert_eq!(
        verify_certified_data(&as_receipt, &sdi, &sdi.data_digest, &pki.ctx(&[])),
        Err(ConsentError::Object(ProtocolError::WrongPurpose {
            expected: Purpose::CertifiedData,
            found: Purpose::Receipt
        }))
    );
}

// ---- issuer commands ----

fn command() -> IssuerCommand {
    IssuerCommand {
        card_id: CARD,
        challenge: CHALLENGE,
        action: IssuerAction::UnblockPin,
        issued_at: at(-5),
        not_after: at(300),
    }
}

#[test]
fn issuer_command_accepted() {
    let pki = Fixture::new();
    let signed = command().sign(&pki.issuer.key, pki.issuer.chain());
    assert_eq!(verify_issuer_command(&signed, &pki.ctx(&[])), Ok(command()));
}

#[test]
fn issuer_command_refusals() {
    let pki = Fixture::new();
    let ctx = pki.ctx(&[]);
    let sign = |c: IssuerCommand| c.sign(&pki.issuer.key, pki.issuer.chain());

    let mut other_card = command();
    other_card.card_id = OTHER_CARD;
    assert!(matches!(
        verify_issuer_command(&sign(other_card), &ctx),
        Err(ConsentError::WrongCard { .. })
    ));

    let mut other_challenge = command();
    other_challenge.challenge = Challenge([9; 16]);
    assert!(matches!(
        verify_issuer_command(&sign(other_challenge), &ctx),
        Err(ConsentError::ChallengeMismatch { .. })
    ));

    let mut expired = command();
    expired.issued_at = at(-100);
    expired.not_after = at(-1);
    assert!(matches!(
        verify_issuer_command(&sign(expired), &ctx),
        Err(ConsentError::Expired { .. })
    ));

    let by_other_issuer = command().sign(&pki.issuer2.key, pki.issuer2.chain());
    assert_eq!(
        verify_issuer_command(&by_other_issuer, &ctx),
        Err(ConsentError::WrongSigner {
            object: "IssuerCommand",
            expected: pki.issuer.id.clone(),
            found: pki.issuer2.id.clone()
        })
    );

    let by_provider = command().sign(&pki.provider.key, pki.provider.chain());
    assert!(matches!(
        verify_issuer_command(&by_provider, &ctx),
        Err(ConsentError::Certificate {
            source: PkiError::UnexpectedRole { .. },
            ..
        })
    ));

    let mut no_challenge = ctx;
    no_challenge.challenge = None;
    assert_eq!(
        verify_issuer_command(&sign(command()), &no_challenge),
        Err(ConsentError::NoChallengeOutstanding)
    );

    let expired_irc = pki.reissued(
        &pki.issuer_registrar,
        &pki.issuer,
        Role::Issuer,
        at(-10 * DAY),
        at(-DAY),
    );
    assert!(matches!(
        verify_issuer_command(&command().sign(&pki.issuer.key, expired_irc), &ctx),
        Err(ConsentError::Certificate {
            source: PkiError::CertificateExpired { .. },
            ..
        })
    ));
}

// ---- registration information ----

fn registration(pki: &Fixture) -> RegistrationInfo {
    RegistrationInfo {
        card_id: CARD,
        public_key: pki.card_key.verifying_key(),
        user_info: pki.user_info.clone(),
        challenge: CHALLENGE,
    }
}

#[test]
fn registration_proves_possession() {
    let pki = Fixture::new();
    let signed = registration(&pki).sign(&pki.card_key);
    assert_eq!(
        verify_registration_info(&signed, &CHALLENGE),
        Ok(registration(&pki))
    );
    // The RC certifies the user information by digest.
    assert_eq!(pki.rc.user_info_digest(), Some(pki.user_info.digest()));
}

#[test]
fn registration_refusals() {
    let pki = Fixture::new();
    // A terminal substitutes its own key: the signature is not by the key in the body.
    let mut substituted = registration(&pki);
    substituted.public_key = key(77).verifying_key();
    let signed = substituted.sign(&pki.card_key);
    assert_eq!(
        verify_registration_info(&signed, &CHALLENGE),
        Err(ConsentError::Object(ProtocolError::BadSignature {
            purpose: Purpose::RegistrationInfo
        }))
    );
    // An old registration replayed against a new challenge.
    let signed = registration(&pki).sign(&pki.card_key);
    assert!(matches!(
        verify_registration_info(&signed, &Challenge([1; 16])),
        Err(ConsentError::ChallengeMismatch { .. })
    ));
}

// ---- receipts and listings ----

fn items(pki: &Fixture) -> Vec<ListedItem> {
    vec![
        ListedItem {
            item_id: ItemId::new(&[0xA0, 0x02]).unwrap(),
            version: 3,
            size: 10,
            data_digest: crypto::sha256(b"b"),
            owner: pki.provider_2.id.clone(),
            policy: Policy::NOT_DELETABLE,
        },
        ListedItem {
            item_id: ItemId::new(&[0xA0, 0x01]).unwrap(),
            version: 1,
            size: 100,
            data_digest: crypto::sha256(b"a"),
            owner: pki.provider.id.clone(),
            policy: Policy::NONE,
        },
    ]
}

fn receipt(pki: &Fixture) -> Receipt {
    Receipt {
        card_id: CARD,
        counter: 7,
        operation: Operation::Store,
        item_id: ItemId::new(&[0xA0, 0x01]).unwrap(),
        sdi_digest: pki.sdi().digest(),
        authorization_digest: pki.sto1(&pki.sdi()).digest(),
        result: ReceiptResult::Stored,
        listing_digest: listing_digest(&items(pki), 4096, 3986).unwrap(),
    }
}

#[test]
fn receipt_verified_with_the_rc() {
    let pki = Fixture::new();
    let signed = receipt(&pki).sign(&pki.card_key);
    assert_eq!(verify_receipt(&signed, &pki.rc), Ok(receipt(&pki)));
}

#[test]
fn receipt_refusals() {
    let pki = Fixture::new();
    let by_other_key = receipt(&pki).sign(&key(78));
    assert_eq!(
        verify_receipt(&by_other_key, &pki.rc),
        Err(ConsentError::Object(ProtocolError::BadSignature {
            purpose: Purpose::Receipt
        }))
    );
    let mut other_card = receipt(&pki);
    other_card.card_id = OTHER_CARD;
    assert!(matches!(
        verify_receipt(&other_card.sign(&pki.card_key), &pki.rc),
        Err(ConsentError::WrongCard { .. })
    ));
    // Checked against a certificate that is not an RC.
    assert!(matches!(
        verify_receipt(&receipt(&pki).sign(&pki.card_key), &pki.provider.cert),
        Err(ConsentError::Certificate {
            source: PkiError::UnexpectedRole { .. },
            ..
        })
    ));
    // A listing is not a receipt.
    let listing = Listing {
        card_id: CARD,
        nonce: Nonce::default(),
        counter: 7,
        contents: ListingBody::new(items(&pki), 4096, 3986).unwrap(),
    }
    .sign(&pki.card_key);
    assert!(matches!(
        verify_receipt(&listing, &pki.rc),
        Err(ConsentError::Object(ProtocolError::WrongPurpose { .. }))
    ));
}

#[test]
fn listing_agrees_with_the_receipt_digest() {
    let pki = Fixture::new();
    let nonce = Nonce::new(b"party nonce").unwrap();
    let listing = Listing {
        card_id: CARD,
        nonce: nonce.clone(),
        counter: 7,
        contents: ListingBody::new(items(&pki), 4096, 3986).unwrap(),
    };
    let verified = verify_listing(&listing.sign(&pki.card_key), &pki.rc, &nonce).unwrap();
    assert_eq!(verified, listing);
    assert_eq!(verified.contents.digest(), receipt(&pki).listing_digest);
    // Items come out in ascending item-ID order whatever order they went in.
    let ids: Vec<_> = verified
        .contents
        .items()
        .iter()
        .map(|i| i.item_id.clone())
        .collect();
    assert_eq!(
        ids,
        vec![
            ItemId::new(&[0xA0, 0x01]).unwrap(),
            ItemId::new(&[0xA0, 0x02]).unwrap()
        ]
    );
    assert!(matches!(
        verify_listing(&listing.sign(&pki.card_key), &pki.rc, &Nonce::default()),
        Err(ConsentError::NonceMismatch { .. })
    ));
}

#[test]
fn listing_contents_are_canonical() {
    let pki = Fixture::new();
    let mut twice = items(&pki);
    twice.push(items(&pki)[0].clone());
    assert!(matches!(
        ListingBody::new(twice, 4096, 0),
        Err(ProtocolError::InvalidField { field: "items", .. })
    ));
    assert!(matches!(
        ListingBody::new(items(&pki), 10, 11),
        Err(ProtocolError::InvalidField { field: "free", .. })
    ));
}
