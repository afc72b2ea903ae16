//! verify_chain: every accepted shape, and each way a chain is refused.

mod common;

use common::{id, with_last_byte_flipped, Fixture, DAY, NOT_AFTER, NOT_BEFORE, NOW};
use crypto::SigningKey;
use pki::{
    issue, issue_crl, issue_root, verify_chain, CardId, Certificate, CertificateRequest, PkiError,
    Role, UnixTime, MAX_CHAIN_LEN,
};

#[test]
fn card_chain_verifies_and_reports_the_leaf() {
    let f = Fixture::new(1);
    let v = verify_chain(
        &[f.rc.clone(), f.irc.clone()],
        &f.anchors(),
        &[],
        NOW,
        Role::Card,
    )
    .unwrap();
    assert_eq!(v.leaf_role, Role::Card);
    assert_eq!(v.leaf_subject.as_str(), f.card_id.to_hex());
    assert_eq!(v.leaf_key, f.card_key.verifying_key());
    assert_eq!(v.leaf_serial, 1000);
    assert_eq!(v.leaf_digest, f.rc.digest());
    assert_eq!(v.leaf_issuer, id("issuer-1"));
    assert_eq!(v.leaf_card_id, Some(f.card_id));
    assert_eq!(v.leaf_user_info_digest, Some(f.user_info_digest));
    assert_eq!(v.valid_until, NOT_AFTER);
    assert_eq!(v.anchor_subject, id("issuer-registrar"));
    assert_eq!(v.anchor_digest, f.ir.digest());
}

#[test]
fn issuer_provider_and_root_leaves_verify() {
    let f = Fixture::new(2);
    let anchors = f.anchors();
    let v = verify_chain(
        std::slice::from_ref(&f.irc),
        &anchors,
        &[],
        NOW,
        Role::Issuer,
    )
    .unwrap();
    assert_eq!(v.leaf_subject, id("issuer-1"));
    let v = verify_chain(
        std::slice::from_ref(&f.dpr),
        &anchors,
        &[],
        NOW,
        Role::Provider,
    )
    .unwrap();
    assert_eq!(v.leaf_subject, id("provider-1"));
    assert_eq!(v.anchor_subject, id("data-registrar"));
    // A registrar root as the leaf: it is its own anchor.
    let v = verify_chain(
        std::slice::from_ref(&f.ir),
        &anchors,
        &[],
        NOW,
        Role::IssuerRegistrar,
    )
    .unwrap();
    assert_eq!(v.leaf_subject, id("issuer-registrar"));
    assert_eq!(v.anchor_digest, f.ir.digest());
    let v = verify_chain(
        std::slice::from_ref(&f.dr),
        &anchors,
        &[],
        NOW,
        Role::DataRegistrar,
    )
    .unwrap();
    assert_eq!(v.leaf_issuer, id("data-registrar"));
    // The anchor may be included at the end of the chain.
    verify_chain(
        &[f.rc.clone(), f.irc.clone(), f.ir.clone()],
        &anchors,
        &[],
        NOW,
        Role::Card,
    )
    .unwrap();
}

#[test]
fn expired_certificates_are_refused_at_every_level() {
    let mut f = Fixture::new(3);
    let late = UnixTime(NOT_AFTER.0 + 1);
    let expired_for = |subject: &str, serial| PkiError::CertificateExpired {
        subject: subject.into(),
        serial,
        not_after: NOT_AFTER,
        now: late,
    };
    let chain = [f.rc.clone(), f.irc.clone()];
    assert_eq!(
        verify_chain(&chain, &f.anchors(), &[], late, Role::Card),
        Err(expired_for(&f.card_id.to_hex(), 1000))
    );
    // Only the RC expired.
    let short = f.card_rc(7, NOT_BEFORE, UnixTime(NOW.0 - 1));
    assert_eq!(
        verify_chain(
            &[short.clone(), f.irc.clone()],
            &f.anchors(),
            &[],
            NOW,
            Role::Card
        ),
        Err(PkiError::CertificateExpired {
            subject: short.subject_id().to_string(),
            serial: 7,
            not_after: UnixTime(NOW.0 - 1),
            now: NOW
        })
    );
    // Only the IRC expired.
    let old_irc = issue(
        &CertificateRequest::party(
            Role::Issuer,
            id("issuer-1"),
            f.issuer_key.verifying_key(),
            11,
            NOT_BEFORE,
            UnixTime(NOW.0 - DAY),
        ),
        &f.ir,
        &f.ir_key,
    )
    .unwrap();
    assert_eq!(
        verify_chain(&[f.rc.clone(), old_irc], &f.anchors(), &[], NOW, Role::Card),
        Err(PkiError::CertificateExpired {
            subject: "issuer-1".into(),
            serial: 11,
            not_after: UnixTime(NOW.0 - DAY),
            now: NOW
        })
    );
    // Only the anchor expired.
    let old_root = issue_root(
        Role::IssuerRegistrar,
        &id("issuer-registrar"),
        &f.ir_key,
        2,
        NOT_BEFORE,
        UnixTime(NOW.0 - DAY),
    )
    .unwrap();
    assert_eq!(
        verify_chain(
            std::slice::from_ref(&f.irc),
            &[old_root],
            &[],
            NOW,
            Role::Issuer
        ),
        Err(PkiError::CertificateExpired {
            subject: "issuer-registrar".into(),
            serial: 2,
            not_after: UnixTime(NOW.0 - DAY),
            now: NOW
        })
    );
}

#[test]
fn not_yet_valid_is_refused() {
    let mut f = Fixture::new(4);
    let future = f.card_rc(8, UnixTime(NOW.0 + 1), NOT_AFTER);
    assert_eq!(
        verify_chain(
            &[future.clone(), f.irc.clone()],
            &f.anchors(),
            &[],
            NOW,
            Role::Card
        ),
        Err(PkiError::CertificateNotYetValid {
            subject: future.subject_id().to_string(),
            serial: 8,
            not_before: UnixTime(NOW.0 + 1),
            now: NOW
        })
    );
    let early = UnixTime(NOT_BEFORE.0 - 1);
    assert!(matches!(
        verify_chain(
            std::slice::from_ref(&f.dpr),
            &f.anchors(),
            &[],
            early,
            Role::Provider
        ),
        Err(PkiError::CertificateNotYetValid { serial: 20, .. })
    ));
}

#[test]
fn revocation_by_crl_at_every_level() {
    let f = Fixture::new(5);
    let anchors = f.anchors();
    let week = UnixTime(NOW.0 + 7 * DAY);
    let card_chain = [f.rc.clone(), f.irc.clone()];

    // The issuer revokes the card.
    let issuer_crl = issue_crl(&f.irc, &f.issuer_key, 3, NOW, week, &[999, 1000]).unwrap();
    assert_eq!(
        verify_chain(&card_chain, &anchors, &[issuer_crl], NOW, Role::Card),
        Err(PkiError::CertificateRevoked {
            subject: f.card_id.to_hex(),
            serial: 1000,
            crl_number: 3
        })
    );
    // The Issuer Registrar revokes the issuer: its cards fall with it.
    let ir_crl = issue_crl(&f.ir, &f.ir_key, 9, NOW, week, &[10]).unwrap();
    assert_eq!(
        verify_chain(
            &card_chain,
            &anchors,
            std::slice::from_ref(&ir_crl),
            NOW,
            Role::Card
        ),
        Err(PkiError::CertificateRevoked {
            subject: "issuer-1".into(),
            serial: 10,
            crl_number: 9
        })
    );
    // The Data Registrar revokes the provider.
    let dr_crl = issue_crl(&f.dr, &f.dr_key, 1, NOW, week, &[20]).unwrap();
    assert_eq!(
        verify_chain(
            std::slice::from_ref(&f.dpr),
            &anchors,
            std::slice::from_ref(&dr_crl),
            NOW,
            Role::Provider
        ),
        Err(PkiError::CertificateRevoked {
            subject: "provider-1".into(),
            serial: 20,
            crl_number: 1
        })
    );
    // CRLs that list other serials, or come from other issuers, change nothing.
    let other = issue_crl(&f.irc, &f.issuer_key, 4, NOW, week, &[1]).unwrap();
    let empty_ir = issue_crl(&f.ir, &f.ir_key, 10, NOW, week, &[]).unwrap();
    verify_chain(
        &card_chain,
        &anchors,
        &[other, empty_ir, dr_crl],
        NOW,
        Role::Card,
    )
    .unwrap();
    // A stale CRL still revokes: freshness is the caller's policy.
    let stale = issue_crl(&f.irc, &f.issuer_key, 2, NOT_BEFORE, NOT_BEFORE, &[1000]).unwrap();
    assert!(matches!(
        verify_chain(&card_chain, &anchors, &[stale], NOW, Role::Card),
        Err(PkiError::CertificateRevoked { crl_number: 2, .. })
    ));
}

#[test]
fn a_crl_claiming_to_be_the_issuers_must_verify() {
    let f = Fixture::new(6);
    let crl = issue_crl(&f.irc, &f.issuer_key, 5, NOW, NOT_AFTER, &[]).unwrap();
    let tampered = pki::Crl::from_der(&with_last_byte_flipped(crl.der())).unwrap();
    assert_eq!(
        verify_chain(
            &[f.rc.clone(), f.irc.clone()],
            &f.anchors(),
            &[tampered],
            NOW,
            Role::Card
        ),
        Err(PkiError::BadCrlSignature {
            issuer: "issuer-1".into(),
            crl_number: 5
        })
    );
}

#[test]
fn wrong_role_is_refused() {
    let f = Fixture::new(7);
    let anchors = f.anchors();
    assert_eq!(
        verify_chain(
            std::slice::from_ref(&f.dpr),
            &anchors,
            &[],
            NOW,
            Role::Issuer
        ),
        Err(PkiError::UnexpectedRole {
            subject: "provider-1".into(),
            expected: Role::Issuer,
            found: Role::Provider
        })
    );
    assert!(matches!(
        verify_chain(
            std::slice::from_ref(&f.irc),
            &anchors,
            &[],
            NOW,
            Role::Provider
        ),
        Err(PkiError::UnexpectedRole {
            found: Role::Issuer,
            ..
        })
    ));
    assert!(matches!(
        verify_chain(
            std::slice::from_ref(&f.ir),
            &anchors,
            &[],
            NOW,
            Role::DataRegistrar
        ),
        Err(PkiError::UnexpectedRole {
            found: Role::IssuerRegistrar,
            ..
        })
    ));
    assert!(matches!(
        verify_chain(
            &[f.rc.clone(), f.irc.clone()],
            &anchors,
            &[],
            NOW,
            Role::Issuer
        ),
        Err(PkiError::UnexpectedRole {
            found: Role::Card,
            ..
        })
    ));
}

#[test]
fn unknown_issuer_is_refused() {
    let f = Fixture::new(8);
    assert_eq!(
        verify_chain(
            &[f.rc.clone(), f.irc.clone()],
            std::slice::from_ref(&f.dr),
            &[],
            NOW,
            Role::Card
        ),
        Err(PkiError::UnknownIssuer {
            issuer: "issuer-registrar".into()
        })
    );
    // The RC alone: its issuer is not an anchor.
    assert_eq!(
        verify_chain(
            std::slice::from_ref(&f.rc),
            &f.anchors(),
            &[],
            NOW,
            Role::Card
        ),
        Err(PkiError::UnknownIssuer {
            issuer: "issuer-1".into()
        })
    );
    // A root from an unrelated PKI.
    let rogue = Fixture::new(9);
    let rogue_root = issue_root(
        Role::IssuerRegistrar,
        &id("rogue-registrar"),
        &rogue.ir_key,
        1,
        NOT_BEFORE,
        NOT_AFTER,
    )
    .unwrap();
    assert_eq!(
        verify_chain(&[rogue_root], &f.anchors(), &[], NOW, Role::IssuerRegistrar),
        Err(PkiError::UnknownIssuer {
            issuer: "rogue-registrar".into()
        })
    );
}

#[test]
fn an_impostor_root_with_the_same_name_is_refused() {
    let f = Fixture::new(10);
    // Another PKI whose root calls itself "issuer-registrar" too.
    let impostor = Fixture::new(11);
    assert!(matches!(
        verify_chain(
            &[impostor.rc.clone(), impostor.irc.clone()],
            &f.anchors(),
            &[],
            NOW,
            Role::Card
        ),
        Err(PkiError::IssuerMismatch { .. })
    ));
    // Presenting the impostor root in the chain does not make it an anchor.
    assert!(verify_chain(
        &[impostor.irc.clone(), impostor.ir.clone()],
        &f.anchors(),
        &[],
        NOW,
        Role::Issuer
    )
    .is_err());
}

#[test]
fn tampered_signature_byte_is_refused() {
    let f = Fixture::new(12);
    let rc = Certificate::from_der(&with_last_byte_flipped(f.rc.der())).unwrap();
    assert_eq!(
        verify_chain(&[rc, f.irc.clone()], &f.anchors(), &[], NOW, Role::Card),
        Err(PkiError::BadSignature {
            subject: f.card_id.to_hex(),
            serial: 1000
        })
    );
    let irc = Certificate::from_der(&with_last_byte_flipped(f.irc.der())).unwrap();
    assert_eq!(
        verify_chain(&[f.rc.clone(), irc], &f.anchors(), &[], NOW, Role::Card),
        Err(PkiError::BadSignature {
            subject: "issuer-1".into(),
            serial: 10
        })
    );
}

#[test]
fn a_provider_certificate_presented_as_issuer_is_refused() {
    let f = Fixture::new(13);
    let anchors = f.anchors();
    // As the issuer of a card: the names do not link.
    assert!(matches!(
        verify_chain(
            &[f.rc.clone(), f.dpr.clone()],
            &anchors,
            &[],
            NOW,
            Role::Card
        ),
        Err(PkiError::IssuerMismatch { .. })
    ));
    // As an issuer leaf.
    assert!(matches!(
        verify_chain(
            std::slice::from_ref(&f.dpr),
            &anchors,
            &[],
            NOW,
            Role::Issuer
        ),
        Err(PkiError::UnexpectedRole { .. })
    ));
    // A provider with a provider-named card certificate cannot even get one issued.
    let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(5);
    let req = CertificateRequest::card(
        CardId([5; 16]),
        SigningKey::generate(&mut rng).verifying_key(),
        crypto::sha256(b"u"),
        1,
        NOT_BEFORE,
        NOT_AFTER,
    );
    assert_eq!(
        issue(&req, &f.dpr, &f.provider_key),
        Err(PkiError::IssuanceNotAllowed {
            issuer_role: Role::Provider,
            subject_role: Role::Card
        })
    );
}

#[test]
fn chain_shape_errors() {
    let f = Fixture::new(14);
    assert_eq!(
        verify_chain(&[], &f.anchors(), &[], NOW, Role::Card),
        Err(PkiError::EmptyChain)
    );
    let long = vec![f.rc.clone(); MAX_CHAIN_LEN + 1];
    assert_eq!(
        verify_chain(&long, &f.anchors(), &[], NOW, Role::Card),
        Err(PkiError::PathTooLong {
            len: MAX_CHAIN_LEN + 1,
            max: MAX_CHAIN_LEN
        })
    );
    assert_eq!(
        verify_chain(
            &[f.irc.clone(), f.ir.clone(), f.dr.clone()],
            &f.anchors(),
            &[],
            NOW,
            Role::Issuer
        ),
        Err(PkiError::TrailingCertificates {
            anchor: "issuer-registrar".into(),
            count: 1
        })
    );
    // No anchors at all.
    assert!(matches!(
        verify_chain(
            std::slice::from_ref(&f.ir),
            &[],
            &[],
            NOW,
            Role::IssuerRegistrar
        ),
        Err(PkiError::UnknownIssuer { .. })
    ));
}

#[test]
fn valid_until_is_the_earliest_expiry_on_the_path() {
    let mut f = Fixture::new(15);
    let rc = f.card_rc(33, NOT_BEFORE, UnixTime(NOW.0 + DAY));
    let v = verify_chain(&[rc, f.irc.clone()], &f.anchors(), &[], NOW, Role::Card).unwrap();
    assert_eq!(v.valid_until, UnixTime(NOW.0 + DAY));
}
