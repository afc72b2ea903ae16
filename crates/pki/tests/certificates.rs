//! Issuing and parsing certificates of every profile, and what issuance and parsing refuse.

mod common;

use common::{id, with_last_byte_flipped, Fixture, DAY, NOT_AFTER, NOT_BEFORE, NOW};
use crypto::SigningKey;
use pki::{
    issue, issue_root, CardId, Certificate, CertificateRequest, PartyId, PkiError, Role, UnixTime,
};

#[test]
fn every_profile_round_trips_through_der_and_pem() {
    let f = Fixture::new(1);
    // (certificate, role, subject, issuer, serial, CA, pathLen)
    type Case<'a> = (
        &'a Certificate,
        Role,
        &'a str,
        &'a str,
        u64,
        bool,
        Option<u8>,
    );
    let cases: [Case; 5] = [
        (
            &f.ir,
            Role::IssuerRegistrar,
            "issuer-registrar",
            "issuer-registrar",
            1,
            true,
            Some(1),
        ),
        (
            &f.dr,
            Role::DataRegistrar,
            "data-registrar",
            "data-registrar",
            1,
            true,
            Some(0),
        ),
        (
            &f.irc,
            Role::Issuer,
            "issuer-1",
            "issuer-registrar",
            10,
            true,
            Some(0),
        ),
        (
            &f.dpr,
            Role::Provider,
            "provider-1",
            "data-registrar",
            20,
            false,
            None,
        ),
        (
            &f.rc,
            Role::Card,
            "c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4",
            "issuer-1",
            1000,
            false,
            None,
        ),
    ];
    for (cert, role, subject, issuer, serial, ca, path_len) in cases {
        let parsed = Certificate::from_der(cert.der()).unwrap();
        assert_eq!(&parsed, cert);
        assert_eq!(parsed.role(), role);
        assert_eq!(parsed.subject_id().as_str(), subject);
        assert_eq!(parsed.issuer_id().as_str(), issuer);
        assert_eq!(parsed.serial(), serial);
        assert_eq!(parsed.not_before(), NOT_BEFORE);
        assert_eq!(parsed.not_after(), NOT_AFTER);
        assert_eq!(parsed.is_ca(), ca);
        assert_eq!(parsed.path_len(), path_len);
        assert_eq!(parsed.is_self_issued(), role.is_registrar());
        assert_eq!(parsed.digest(), crypto::sha256(cert.der()));
        assert_eq!(Certificate::from_pem(&cert.to_pem()).unwrap(), *cert);
        assert!(cert.to_pem().starts_with("-----BEGIN CERTIFICATE-----\n"));
    }
    assert_eq!(f.ir.public_key(), f.ir_key.verifying_key());
    assert_eq!(f.dr.public_key(), f.dr_key.verifying_key());
    assert_eq!(f.irc.public_key(), f.issuer_key.verifying_key());
    assert_eq!(f.dpr.public_key(), f.provider_key.verifying_key());
    assert_eq!(f.rc.public_key(), f.card_key.verifying_key());
    assert_eq!(f.rc.card_id(), Some(f.card_id));
    assert_eq!(f.rc.user_info_digest(), Some(f.user_info_digest));
    for cert in [&f.ir, &f.dr, &f.irc, &f.dpr] {
        assert_eq!(cert.card_id(), None);
        assert_eq!(cert.user_info_digest(), None);
    }
    assert_eq!(f.irc.authority_key_id(), f.ir.subject_key_id());
    assert_eq!(f.rc.authority_key_id(), f.irc.subject_key_id());
    assert_eq!(f.ir.authority_key_id(), f.ir.subject_key_id());
}

#[test]
fn issuance_is_deterministic() {
    assert_eq!(Fixture::new(7).rc.der(), Fixture::new(7).rc.der());
    assert_ne!(Fixture::new(7).rc.der(), Fixture::new(8).rc.der());
}

#[test]
fn each_certificate_verifies_under_its_issuer_only() {
    let f = Fixture::new(2);
    f.ir.verify_signed_by(&f.ir).unwrap();
    f.dr.verify_signed_by(&f.dr).unwrap();
    f.irc.verify_signed_by(&f.ir).unwrap();
    f.dpr.verify_signed_by(&f.dr).unwrap();
    f.rc.verify_signed_by(&f.irc).unwrap();

    assert!(matches!(
        f.rc.verify_signed_by(&f.ir),
        Err(PkiError::IssuerMismatch { .. })
    ));
    assert!(matches!(
        f.irc.verify_signed_by(&f.dr),
        Err(PkiError::IssuerMismatch { .. })
    ));
    let tampered = Certificate::from_der(&with_last_byte_flipped(f.rc.der())).unwrap();
    assert_eq!(
        tampered.verify_signed_by(&f.irc),
        Err(PkiError::BadSignature {
            subject: f.card_id.to_hex(),
            serial: 1000
        })
    );
}

#[test]
fn issuance_follows_the_role_matrix() {
    let mut f = Fixture::new(3);
    let key = SigningKey::generate(&mut f.rng).verifying_key();
    let party =
        |role, name: &str| CertificateRequest::party(role, id(name), key, 5, NOT_BEFORE, NOT_AFTER);
    let card = CertificateRequest::card(
        CardId([1; 16]),
        key,
        crypto::sha256(b"u"),
        5,
        NOT_BEFORE,
        NOT_AFTER,
    );
    let refused = |req: &CertificateRequest, cert: &Certificate, k: &SigningKey| {
        assert_eq!(
            issue(req, cert, k),
            Err(PkiError::IssuanceNotAllowed {
                issuer_role: cert.role(),
                subject_role: req.role
            }),
            "{:?} issuing {:?}",
            cert.role(),
            req.role
        );
    };
    refused(&party(Role::Provider, "p"), &f.ir, &f.ir_key);
    refused(&card, &f.ir, &f.ir_key);
    refused(&party(Role::Issuer, "i"), &f.dr, &f.dr_key);
    refused(&card, &f.dr, &f.dr_key);
    refused(&party(Role::Issuer, "i"), &f.irc, &f.issuer_key);
    refused(&party(Role::Provider, "p"), &f.irc, &f.issuer_key);
    refused(&party(Role::IssuerRegistrar, "r"), &f.ir, &f.ir_key);
    refused(&card, &f.dpr, &f.provider_key);
    refused(&party(Role::Provider, "p"), &f.dpr, &f.provider_key);
    refused(&card, &f.rc, &f.card_key);

    issue(&party(Role::Issuer, "i"), &f.ir, &f.ir_key).unwrap();
    issue(&party(Role::Provider, "p"), &f.dr, &f.dr_key).unwrap();
    issue(&card, &f.irc, &f.issuer_key).unwrap();

    assert_eq!(
        issue_root(
            Role::Issuer,
            &id("x"),
            &f.issuer_key,
            1,
            NOT_BEFORE,
            NOT_AFTER
        ),
        Err(PkiError::IssuanceNotAllowed {
            issuer_role: Role::Issuer,
            subject_role: Role::Issuer
        })
    );
}

#[test]
fn issuance_refuses_bad_requests() {
    let mut f = Fixture::new(4);
    let key = SigningKey::generate(&mut f.rng).verifying_key();
    let good = CertificateRequest::party(Role::Issuer, id("i"), key, 5, NOT_BEFORE, NOT_AFTER);

    assert_eq!(
        issue(&good, &f.ir, &f.dr_key),
        Err(PkiError::KeyMismatch {
            issuer: "issuer-registrar".into()
        })
    );
    let zero = CertificateRequest {
        serial: 0,
        ..good.clone()
    };
    assert_eq!(
        issue(&zero, &f.ir, &f.ir_key),
        Err(PkiError::InvalidSerial { serial: 0 })
    );
    let empty = CertificateRequest {
        not_before: NOT_AFTER,
        not_after: NOT_BEFORE,
        ..good.clone()
    };
    assert_eq!(
        issue(&empty, &f.ir, &f.ir_key),
        Err(PkiError::InvalidValidity {
            not_before: NOT_AFTER,
            not_after: NOT_BEFORE
        })
    );
    let with_card_fields = CertificateRequest {
        card_id: Some(CardId([2; 16])),
        ..good.clone()
    };
    assert!(matches!(
        issue(&with_card_fields, &f.ir, &f.ir_key),
        Err(PkiError::InvalidRequest { .. })
    ));
    let card = CertificateRequest::card(
        CardId([3; 16]),
        key,
        crypto::sha256(b"u"),
        5,
        NOT_BEFORE,
        NOT_AFTER,
    );
    let wrong_subject = CertificateRequest {
        subject: id("not-the-card"),
        ..card.clone()
    };
    assert!(matches!(
        issue(&wrong_subject, &f.irc, &f.issuer_key),
        Err(PkiError::InvalidRequest { .. })
    ));
    let no_digest = CertificateRequest {
        user_info_digest: None,
        ..card.clone()
    };
    assert!(matches!(
        issue(&no_digest, &f.irc, &f.issuer_key),
        Err(PkiError::InvalidRequest { .. })
    ));
    let far_future = CertificateRequest {
        not_after: UnixTime(u64::MAX),
        ..good
    };
    assert!(matches!(
        issue(&far_future, &f.ir, &f.ir_key),
        Err(PkiError::Encoding { .. })
    ));
}

#[test]
fn validity_is_inclusive_at_both_ends() {
    let f = Fixture::new(5);
    f.rc.check_valid_at(NOT_BEFORE).unwrap();
    f.rc.check_valid_at(NOT_AFTER).unwrap();
    assert_eq!(
        f.rc.check_valid_at(UnixTime(NOT_AFTER.0 + 1)),
        Err(PkiError::CertificateExpired {
            subject: f.card_id.to_hex(),
            serial: 1000,
            not_after: NOT_AFTER,
            now: UnixTime(NOT_AFTER.0 + 1)
        })
    );
    assert_eq!(
        f.rc.check_valid_at(UnixTime(NOT_BEFORE.0 - 1)),
        Err(PkiError::CertificateNotYetValid {
            subject: f.card_id.to_hex(),
            serial: 1000,
            not_before: NOT_BEFORE,
            now: UnixTime(NOT_BEFORE.0 - 1)
        })
    );
}

#[test]
fn times_after_2049_use_generalized_time() {
    let f = Fixture::new(6);
    let late = UnixTime(2_600_000_000); // 2052
    let root = issue_root(
        Role::IssuerRegistrar,
        &id("late-root"),
        &f.ir_key,
        3,
        NOW,
        late,
    )
    .unwrap();
    let parsed = Certificate::from_der(root.der()).unwrap();
    assert_eq!(parsed.not_after(), late);
    // GeneralizedTime "20520524..." vs UTCTime "52...": the 4-digit year is in the DER.
    assert!(root.der().windows(4).any(|w| w == b"2052"));
}

#[test]
fn parsing_refuses_what_is_not_ours() {
    let f = Fixture::new(7);
    let der = f.rc.der();
    let mut trailing = der.to_vec();
    trailing.push(0);
    assert!(matches!(
        Certificate::from_der(&trailing),
        Err(PkiError::Malformed { .. })
    ));
    assert!(Certificate::from_der(&der[..der.len() - 1]).is_err());
    assert!(Certificate::from_der(&[]).is_err());
    assert!(Certificate::from_der(&vec![0x30; 5000]).is_err());

    let replace = |from: &[u8], to: &[u8]| -> Vec<u8> {
        let at = der
            .windows(from.len())
            .position(|w| w == from)
            .expect("pattern present");
        let mut out = der.to_vec();
        out[at..at + from.len()].copy_from_slice(to);
        out
    };
    // prime256v1 → a different curve OID of the same length.
    let p256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    assert_eq!(
        Certificate::from_der(&replace(
            &p256,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x06]
        )),
        Err(PkiError::Malformed {
            what: "public key is not an uncompressed P-256 point"
        })
    );
    // ecdsa-with-SHA256 → ecdsa-with-SHA384 (first occurrence: inside the TBS).
    let sha256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    assert_eq!(
        Certificate::from_der(&replace(
            &sha256,
            &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]
        )),
        Err(PkiError::Malformed {
            what: "signature algorithm is not ecdsa-with-SHA256"
        })
    );
    // O=cardwright → O=cardwrighX.
    assert!(matches!(
        Certificate::from_der(&replace(b"cardwright", b"cardwrighX")),
        Err(PkiError::Malformed { .. })
    ));
    // The role extension's OID arc .1 → .9: an extension outside the profile, role missing.
    let mut role_oid = vec![0x06, 0x15];
    role_oid.extend_from_slice(&hex::decode("6982c3e2a2c9f9eef2ac9793a5848eef9b9bc12201").unwrap());
    let mut other_oid = role_oid.clone();
    *other_oid.last_mut().unwrap() = 0x09;
    assert_eq!(
        Certificate::from_der(&replace(&role_oid, &other_oid)),
        Err(PkiError::Malformed {
            what: "extension outside our profile"
        })
    );
}

#[test]
fn card_subject_is_the_hex_card_id() {
    let f = Fixture::new(8);
    assert_eq!(f.rc.subject_id(), &PartyId::for_card(&f.card_id));
    assert_eq!(f.rc.subject_id().as_str().len(), 32);
}

#[test]
fn validity_outside_the_issuers_is_still_issued() {
    // Documented: issuance does not clip to the issuer's validity; verifiers check each.
    let f = Fixture::new(9);
    let key = f.card_key.verifying_key();
    let req = CertificateRequest::card(
        CardId([9; 16]),
        key,
        crypto::sha256(b"u"),
        77,
        NOW,
        UnixTime(NOT_AFTER.0 + 10 * DAY),
    );
    let rc = issue(&req, &f.irc, &f.issuer_key).unwrap();
    assert_eq!(rc.not_after(), UnixTime(NOT_AFTER.0 + 10 * DAY));
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| Fixture::new(42))
    }

    proptest! {
        #[test]
        fn from_der_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1200)) {
            let _ = Certificate::from_der(&bytes);
            let _ = pki::Crl::from_der(&bytes);
            let _ = Certificate::from_pem(&String::from_utf8_lossy(&bytes));
        }

        #[test]
        fn from_der_never_panics_on_mutated_certificates(
            which in 0usize..5,
            at in any::<prop::sample::Index>(),
            xor in 1u8..=255,
            cut in any::<prop::sample::Index>(),
            insert in any::<u8>(),
        ) {
            let f = fixture();
            let (cert, issuer) = [(&f.ir, &f.ir), (&f.dr, &f.dr), (&f.irc, &f.ir), (&f.dpr, &f.dr), (&f.rc, &f.irc)][which];
            let der = cert.der().to_vec();
            let i = at.index(der.len());
            let mut flipped = der.clone();
            flipped[i] ^= xor;
            if let Ok(c) = Certificate::from_der(&flipped) {
                // Every byte is under the signature or is the signature (the outer algorithm
                // must equal the inner one), so whatever still parses must not verify.
                prop_assert!(c.verify_signed_by(issuer).is_err());
            }
            let _ = Certificate::from_der(&der[..cut.index(der.len())]);
            let mut inserted = der.clone();
            inserted.insert(i, insert);
            prop_assert!(Certificate::from_der(&inserted).is_err());
        }

        #[test]
        fn issued_certificates_round_trip(
            serial in 1u64..=u64::MAX,
            not_before in 0u64..=253_402_300_799,
            span in 0u64..=4_000_000_000,
            name in "[A-Za-z0-9._-]{1,64}",
            role_pick in 0usize..3,
            card in any::<[u8; 16]>(),
            digest in any::<[u8; 32]>(),
        ) {
            let f = fixture();
            let not_after = UnixTime((not_before + span).min(253_402_300_799));
            let not_before = UnixTime(not_before);
            let key = f.card_key.verifying_key();
            let (req, issuer, issuer_key) = match role_pick {
                0 => (CertificateRequest::party(Role::Issuer, id(&name), key, serial, not_before, not_after), &f.ir, &f.ir_key),
                1 => (CertificateRequest::party(Role::Provider, id(&name), key, serial, not_before, not_after), &f.dr, &f.dr_key),
                _ => (CertificateRequest::card(CardId(card), key, crypto::Digest(digest), serial, not_before, not_after), &f.irc, &f.issuer_key),
            };
            prop_assume!(req.subject != *issuer.subject_id());
            let cert = issue(&req, issuer, issuer_key).unwrap();
            let parsed = Certificate::from_der(cert.der()).unwrap();
            prop_assert_eq!(parsed.role(), req.role);
            prop_assert_eq!(parsed.subject_id(), &req.subject);
            prop_assert_eq!(parsed.issuer_id(), issuer.subject_id());
            prop_assert_eq!(parsed.serial(), serial);
            prop_assert_eq!(parsed.not_before(), not_before);
            prop_assert_eq!(parsed.not_after(), not_after);
            prop_assert_eq!(parsed.public_key(), key);
            prop_assert_eq!(parsed.card_id(), req.card_id);
            prop_assert_eq!(parsed.user_info_digest(), req.user_info_digest);
            prop_assert!(parsed.verify_signed_by(issuer).is_ok());
        }
    }
}
