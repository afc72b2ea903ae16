//! CRLs: issue, parse, verify, and what issuance and parsing refuse.

mod common;

use common::{with_last_byte_flipped, Fixture, DAY, NOW};
use pki::{issue_crl, Crl, PkiError, Role, UnixTime};

const NEXT: UnixTime = UnixTime(NOW.0 + 7 * DAY);

#[test]
fn crl_round_trips_through_der_and_pem() {
    let f = Fixture::new(1);
    let crl = issue_crl(&f.irc, &f.issuer_key, 42, NOW, NEXT, &[1000, 3, 3, 77]).unwrap();
    let parsed = Crl::from_der(crl.der()).unwrap();
    assert_eq!(parsed, crl);
    assert_eq!(parsed.number(), 42);
    assert_eq!(parsed.this_update(), NOW);
    assert_eq!(parsed.next_update(), NEXT);
    assert_eq!(parsed.issuer_id().as_str(), "issuer-1");
    assert_eq!(parsed.revoked(), &[3, 77, 1000], "sorted, deduplicated");
    assert!(parsed.is_revoked(1000));
    assert!(parsed.is_revoked(3));
    assert!(!parsed.is_revoked(4));
    assert_eq!(parsed.authority_key_id(), f.irc.subject_key_id());
    assert_eq!(parsed.digest(), crypto::sha256(crl.der()));
    assert_eq!(Crl::from_pem(&crl.to_pem()).unwrap(), crl);
    assert!(crl.to_pem().starts_with("-----BEGIN X509 CRL-----\n"));
    parsed.verify_signed_by(&f.irc).unwrap();
}

#[test]
fn empty_and_large_crls() {
    let f = Fixture::new(2);
    let empty = issue_crl(&f.ir, &f.ir_key, 0, NOW, NOW, &[]).unwrap();
    let parsed = Crl::from_der(empty.der()).unwrap();
    assert_eq!(parsed.revoked(), &[] as &[u64]);
    assert_eq!(parsed.number(), 0);
    parsed.verify_signed_by(&f.ir).unwrap();
    let many: Vec<u64> = (1..=2000).map(|n| n * 7919).chain([u64::MAX]).collect();
    let big = issue_crl(&f.dr, &f.dr_key, u64::MAX, NOW, NEXT, &many).unwrap();
    let parsed = Crl::from_der(big.der()).unwrap();
    assert_eq!(parsed.revoked(), many.as_slice());
    assert_eq!(parsed.number(), u64::MAX);
    assert!(parsed.is_revoked(u64::MAX));
}

#[test]
fn crl_issuance_refusals() {
    let f = Fixture::new(3);
    assert_eq!(
        issue_crl(&f.dpr, &f.provider_key, 1, NOW, NEXT, &[]),
        Err(PkiError::CrlNotAllowed {
            issuer_role: Role::Provider
        })
    );
    assert_eq!(
        issue_crl(&f.rc, &f.card_key, 1, NOW, NEXT, &[]),
        Err(PkiError::CrlNotAllowed {
            issuer_role: Role::Card
        })
    );
    assert_eq!(
        issue_crl(&f.irc, &f.ir_key, 1, NOW, NEXT, &[]),
        Err(PkiError::KeyMismatch {
            issuer: "issuer-1".into()
        })
    );
    assert_eq!(
        issue_crl(&f.irc, &f.issuer_key, 1, NEXT, NOW, &[]),
        Err(PkiError::InvalidValidity {
            not_before: NEXT,
            not_after: NOW
        })
    );
    assert_eq!(
        issue_crl(&f.irc, &f.issuer_key, 1, NOW, NEXT, &[5, 0]),
        Err(PkiError::InvalidSerial { serial: 0 })
    );
}

#[test]
fn crl_verifies_only_under_its_issuer() {
    let f = Fixture::new(4);
    let crl = issue_crl(&f.irc, &f.issuer_key, 5, NOW, NEXT, &[1]).unwrap();
    assert!(matches!(
        crl.verify_signed_by(&f.ir),
        Err(PkiError::IssuerMismatch { .. })
    ));
    let other = Fixture::new(5);
    assert!(matches!(
        crl.verify_signed_by(&other.irc),
        Err(PkiError::IssuerMismatch { .. })
    ));
    let tampered = Crl::from_der(&with_last_byte_flipped(crl.der())).unwrap();
    assert_eq!(
        tampered.verify_signed_by(&f.irc),
        Err(PkiError::BadCrlSignature {
            issuer: "issuer-1".into(),
            crl_number: 5
        })
    );
}

#[test]
fn crl_parsing_is_strict() {
    let f = Fixture::new(6);
    let crl = issue_crl(&f.irc, &f.issuer_key, 5, NOW, NEXT, &[1]).unwrap();
    let mut trailing = crl.der().to_vec();
    trailing.push(0);
    assert!(matches!(
        Crl::from_der(&trailing),
        Err(PkiError::Malformed { .. })
    ));
    assert!(Crl::from_der(&crl.der()[..crl.der().len() - 1]).is_err());
    assert!(Crl::from_der(f.rc.der()).is_err());
    assert!(pki::Certificate::from_der(crl.der()).is_err());
    assert!(Crl::from_pem(&f.rc.to_pem()).is_err());
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn fixture() -> &'static Fixture {
        static F: OnceLock<Fixture> = OnceLock::new();
        F.get_or_init(|| Fixture::new(7))
    }

    proptest! {
        #[test]
        fn crls_round_trip_and_survive_mutation(
            number in any::<u64>(),
            this_update in 0u64..2_000_000_000,
            span in 0u64..1_000_000_000,
            revoked in proptest::collection::vec(1u64..=u64::MAX, 0..20),
            at in any::<prop::sample::Index>(),
            xor in 1u8..=255,
        ) {
            let f = fixture();
            let crl = issue_crl(&f.irc, &f.issuer_key, number, UnixTime(this_update), UnixTime(this_update + span), &revoked).unwrap();
            let parsed = Crl::from_der(crl.der()).unwrap();
            prop_assert_eq!(parsed.number(), number);
            prop_assert_eq!(parsed.this_update(), UnixTime(this_update));
            prop_assert_eq!(parsed.next_update(), UnixTime(this_update + span));
            for serial in &revoked {
                prop_assert!(parsed.is_revoked(*serial));
            }
            let mut der = crl.der().to_vec();
            let i = at.index(der.len());
            der[i] ^= xor;
            if let Ok(mutated) = Crl::from_der(&der) {
                // Whatever still parses must not verify: every byte is covered by the signature
                // or is the signature.
                prop_assert!(mutated.verify_signed_by(&f.irc).is_err());
            }
        }
    }
}
