//! Storing authorization as the card verifies it: every SPEC path accepted, every refusal
//! with its own error.

mod common;

use common::*;
use pki::{PkiError, Role};
use protocol::{
    verify_storing_authorization, ConsentError, ConsentPath, DerCodec, ItemId, ItemPrefix,
    Operation, OperationSet, PartyRole, ProtocolError, Purpose, SaBasis, Sdi, SignedObject,
};

fn refused(sa: &SignedObject, pki: &Fixture) -> ConsentError {
    verify_storing_authorization(sa, &pki.ctx(&[])).unwrap_err()
}

/// Rebuilds a signed object's DER with another tbs or signature, keeping the rest.
fn reassemble(obj: &SignedObject, tbs: &[u8], signature: &[u8]) -> SignedObject {
    let algorithm = obj.signature_algorithm().to_string();
    SignedObject::from_der(&envelope(tbs, &algorithm, signature, obj.signer_chain())).unwrap()
}

// ---- accepted paths ----

#[test]
fn sto1_issuer_requests_provider_grants() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sa = pki.sto1(&sdi);
    let ok = verify_storing_authorization(&sa, &pki.ctx(&[])).unwrap();
    assert_eq!(ok.path, ConsentPath::IssuerRequested);
    assert_eq!(ok.sdi, sdi);
    assert_eq!(ok.sdi_digest, crypto::sha256(&sdi.to_der()));
    assert_eq!(ok.authorization_digest, crypto::sha256(&sa.to_der()));
    assert_eq!(ok.grantor, pki.provider.id);
    assert_eq!(ok.grantor_role, PartyRole::Provider);
    assert_eq!(ok.requester, Some(pki.issuer.id.clone()));
    // The issuer signed the SAR: its time is the one the floor may move to.
    assert_eq!(ok.newest_issued_at, at(-60));
}

#[test]
fn sto2_provider_requests_issuer_grants() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let ok = verify_storing_authorization(&pki.sto2(&sdi), &pki.ctx(&[])).unwrap();
    assert_eq!(ok.path, ConsentPath::ProviderRequested);
    assert_eq!(ok.grantor, pki.issuer.id);
    assert_eq!(ok.requester, Some(pki.provider.id.clone()));
    assert_eq!(ok.newest_issued_at, at(-30));
}

#[test]
fn sto3_provider_alone_under_delegation() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let ok =
        verify_storing_authorization(&pki.sto3(&pki.delegation(), &sdi), &pki.ctx(&[])).unwrap();
    assert_eq!(ok.path, ConsentPath::ProviderOnly);
    assert_eq!(ok.requester, None);
    assert_eq!(ok.grantor, pki.provider.id);
    assert_eq!(ok.newest_issued_at, at(-(DAY)));
}

#[test]
fn sto3_delegation_for_any_card_of_the_issuer() {
    let pki = Fixture::new();
    let mut delegation = pki.delegation();
    delegation.card_id = None;
    verify_storing_authorization(&pki.sto3(&delegation, &pki.sdi()), &pki.ctx(&[])).unwrap();
}

#[test]
fn sto6_delete_follows_the_same_paths() {
    let pki = Fixture::new();
    let mut sdi = pki.sdi();
    sdi.operation = Operation::Delete;
    for sa in [
        pki.sto1(&sdi),
        pki.sto2(&sdi),
        pki.sto3(&pki.delegation(), &sdi),
    ] {
        let ok = verify_storing_authorization(&sa, &pki.ctx(&[])).unwrap();
        assert_eq!(ok.sdi.operation, Operation::Delete);
    }
}

#[test]
fn a_certificate_newer_than_the_floor_is_checked_at_the_objects_issue_time() {
    // The card's floor lags real time; provider-1 renewed its DPR after it. The SA, issued
    // after the renewal, is accepted; one that claims an issue time before the DPR existed is not.
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let fresh_dpr = pki.reissued(
        &pki.data_registrar,
        &pki.provider,
        Role::Provider,
        at(100),
        at(365 * DAY),
    );
    let mut delegation = pki.delegation();
    delegation.provider_key_digest = crypto::sha256(&fresh_dpr[0]);
    let delegation = delegation.sign(&pki.issuer.key, pki.issuer.chain());
    let sign = |issued_at| {
        let mut sa = pki.sa(
            SaBasis::Delegation(delegation.clone()),
            PartyRole::Provider,
            &pki.provider,
            &sdi,
        );
        sa.issued_at = issued_at;
        sa.sign(&pki.provider.key, fresh_dpr.clone())
    };
    verify_storing_authorization(&sign(at(200)), &pki.ctx(&[])).unwrap();
    assert!(matches!(
        refused(&sign(at(50)), &pki),
        ConsentError::Certificate {
            object: "Sa",
            source: PkiError::CertificateNotYetValid { .. }
        }
    ));
}

// ---- refusals: freshness and expiry ----

#[test]
fn no_outstanding_challenge() {
    let pki = Fixture::new();
    let mut ctx = pki.ctx(&[]);
    ctx.challenge = None;
    assert_eq!(
        verify_storing_authorization(&pki.sto1(&pki.sdi()), &ctx),
        Err(ConsentError::NoChallengeOutstanding)
    );
}

#[test]
fn replayed_sa_answers_a_spent_challenge() {
    let pki = Fixture::new();
    let sa = pki.sto1(&pki.sdi());
    let mut ctx = pki.ctx(&[]);
    verify_storing_authorization(&sa, &ctx).unwrap();
    // The card spent CHALLENGE and issued a new one.
    ctx.challenge = Some(protocol::Challenge([0x01; 16]));
    assert!(matches!(
        verify_storing_authorization(&sa, &ctx),
        Err(ConsentError::ChallengeMismatch { object: "Sa", .. })
    ));
}

#[test]
fn sar_answering_another_challenge() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sar.challenge = protocol::Challenge([0x02; 16])
    });
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::ChallengeMismatch { object: "Sar", .. }
    ));
}

#[test]
fn expired_sa() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sa.issued_at = at(-100);
        c.sa.not_after = at(-1);
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::Expired {
            object: "Sa",
            not_after: at(-1),
            time_floor: NOW
        }
    );
}

#[test]
fn expired_sar() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sar.issued_at = at(-100);
        c.sar.not_after = at(-1);
    });
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Expired { object: "Sar", .. }
    ));
}

#[test]
fn issued_after_its_own_expiry() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sa.issued_at = at(700);
        c.sa.not_after = at(600);
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::InvalidValidity {
            object: "Sa",
            issued_at: at(700),
            not_after: at(600)
        }
    );
}

// ---- refusals: audience ----

#[test]
fn sa_for_another_card() {
    let pki = Fixture::new();
    let mut sdi = pki.sdi();
    sdi.card_id = OTHER_CARD;
    assert_eq!(
        refused(&pki.sto1(&sdi), &pki),
        ConsentError::WrongCard {
            object: "Sa",
            expected: CARD,
            found: OTHER_CARD
        }
    );
}

#[test]
fn sa_naming_this_card_over_an_sdi_for_another() {
    let pki = Fixture::new();
    let mut sdi = pki.sdi();
    sdi.card_id = OTHER_CARD;
    let sa = pki.sto1_with(&sdi, |c| c.sa.card_id = CARD);
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::WrongCard { object: "Sdi", .. }
    ));
}

#[test]
fn sar_bound_to_another_rc() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sar.rc_digest = crypto::sha256(b"another card's RC")
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::RcMismatch {
            expected: pki.rc.digest(),
            found: crypto::sha256(b"another card's RC")
        }
    );
}

// ---- refusals: the two consents disagree ----

#[test]
fn altered_sdi_between_sar_and_sa() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let mut bigger = sdi.clone();
    bigger.size = 10_000;
    let sa = pki.sto1_with(&sdi, |c| {
        c.sa.sdi = bigger.clone();
        c.sa.sdi_digest = bigger.digest();
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::SdiMismatch {
            sar: sdi.digest(),
            sa: bigger.digest()
        }
    );
}

#[test]
fn sa_declaring_a_wrong_sdi_digest() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sa.sdi_digest = crypto::sha256(b"something else")
    });
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::SdiDigestMismatch { object: "Sa", .. }
    ));
}

#[test]
fn the_issuer_on_both_sides() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sa.grantor_role = PartyRole::Issuer;
        c.sa.grantor = pki.issuer.id.clone();
        c.sa_key = &pki.issuer.key;
        c.sa_chain = pki.issuer.chain();
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::SameRoleTwice {
            role: PartyRole::Issuer
        }
    );
}

#[test]
fn the_provider_on_both_sides() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sar.requester_role = PartyRole::Provider;
        c.sar.requester = pki.provider.id.clone();
        c.sar_key = &pki.provider.key;
        c.sar_chain = pki.provider.chain();
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::SameRoleTwice {
            role: PartyRole::Provider
        }
    );
}

// ---- refusals: signers ----

#[test]
fn tampered_sa_bytes() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sa = pki.sto1(&sdi);
    let mut tbs = sa.tbs().to_vec();
    // Flip a bit in the SA's own copy of the data digest (its last occurrence in the tbs).
    let digest = sdi.data_digest.0;
    let pos = tbs.windows(32).rposition(|w| w == digest).unwrap();
    tbs[pos] ^= 0x01;
    let tampered = reassemble(&sa, &tbs, sa.signature());
    assert_eq!(
        refused(&tampered, &pki),
        ConsentError::Object(ProtocolError::BadSignature {
            purpose: Purpose::StoringAuthorization
        })
    );
}

#[test]
fn tampered_signature() {
    let pki = Fixture::new();
    let sa = pki.sto1(&pki.sdi());
    let mut signature = sa.signature().to_vec();
    let last = signature.len() - 1;
    signature[last] ^= 0x01;
    let tampered = reassemble(&sa, sa.tbs(), &signature);
    assert_eq!(
        refused(&tampered, &pki),
        ConsentError::Object(ProtocolError::BadSignature {
            purpose: Purpose::StoringAuthorization
        })
    );
}

#[test]
fn tampered_sar_inside_a_validly_signed_sa() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sar = pki
        .sar(PartyRole::Issuer, &pki.issuer, &sdi)
        .sign(&pki.issuer.key, pki.issuer.chain());
    let mut tbs = sar.tbs().to_vec();
    let pos = tbs
        .windows(32)
        .position(|w| w == sdi.data_digest.0)
        .unwrap();
    tbs[pos] ^= 0x01;
    let bad_sar = reassemble(&sar, &tbs, sar.signature());
    // The provider signs over the tampered SAR: its own signature is fine, the SAR's is not.
    let mut altered = sdi.clone();
    altered.data_digest.0[0] ^= 0x01;
    let sa = pki
        .sa(
            SaBasis::Request(bad_sar),
            PartyRole::Provider,
            &pki.provider,
            &altered,
        )
        .sign(&pki.provider.key, pki.provider.chain());
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::Object(ProtocolError::BadSignature {
            purpose: Purpose::StoringAuthorizationRequest
        })
    );
}

#[test]
fn signed_with_another_key_than_the_chain_certifies() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| c.sa_key = &pki.provider_2.key);
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Object(ProtocolError::BadSignature { .. })
    ));
}

#[test]
fn sa_claiming_one_provider_signed_by_another() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sa_key = &pki.provider_2.key;
        c.sa_chain = pki.provider_2.chain();
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::WrongSigner {
            object: "Sa",
            expected: pki.provider.id.clone(),
            found: pki.provider_2.id.clone()
        }
    );
}

#[test]
fn sa_by_a_provider_that_does_not_own_the_item() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sa.grantor = pki.provider_2.id.clone();
        c.sa_key = &pki.provider_2.key;
        c.sa_chain = pki.provider_2.chain();
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::NotItemOwner {
            object: "Sa",
            owner: pki.provider.id.clone(),
            found: pki.provider_2.id.clone()
        }
    );
}

#[test]
fn sar_by_another_issuer() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sar.requester = pki.issuer2.id.clone();
        c.sar_key = &pki.issuer2.key;
        c.sar_chain = pki.issuer2.chain();
    });
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::NotCardIssuer {
            object: "Sar",
            expected: pki.issuer.id.clone(),
            found: pki.issuer2.id.clone()
        }
    );
}

#[test]
fn provider_chain_from_a_rogue_root() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sa_key = &pki.rogue_provider.key;
        c.sa_chain = pki.rogue_provider.chain();
    });
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Certificate { object: "Sa", .. }
    ));
}

#[test]
fn provider_certificate_presented_for_the_issuer_role() {
    // A provider claims to sign as an issuer: its DPR does not chain to the Issuer Registrar.
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sar = pki
        .sar(PartyRole::Provider, &pki.provider, &sdi)
        .sign(&pki.provider.key, pki.provider.chain());
    let sa = pki
        .sa(
            SaBasis::Request(sar),
            PartyRole::Issuer,
            &pki.provider,
            &sdi,
        )
        .sign(&pki.provider.key, pki.provider.chain());
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Certificate {
            object: "Sa",
            source: PkiError::UnexpectedRole { .. }
        }
    ));
}

#[test]
fn revoked_dpr() {
    let pki = Fixture::new();
    let crl = pki.data_registrar_crl(&[pki.provider.cert.serial()]);
    let sa = pki.sto1(&pki.sdi());
    let crls = [crl];
    assert!(matches!(
        verify_storing_authorization(&sa, &pki.ctx(&crls)),
        Err(ConsentError::Certificate {
            object: "Sa",
            source: PkiError::CertificateRevoked { serial: 20, .. }
        })
    ));
}

#[test]
fn expired_irc() {
    let pki = Fixture::new();
    let expired = pki.reissued(
        &pki.issuer_registrar,
        &pki.issuer,
        Role::Issuer,
        at(-100 * DAY),
        at(-DAY),
    );
    let sa = pki.sto1_with(&pki.sdi(), |c| c.sar_chain = expired);
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Certificate {
            object: "Sar",
            source: PkiError::CertificateExpired { .. }
        }
    ));
}

#[test]
fn missing_chain() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| c.sa_chain = Vec::new());
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::MissingChain { object: "Sa" }
    );
}

#[test]
fn garbage_in_the_chain() {
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| c.sa_chain = vec![vec![0x30, 0x00]]);
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Certificate {
            object: "Sa",
            source: PkiError::Malformed { .. }
        }
    ));
}

// ---- refusals: purposes ----

#[test]
fn a_sar_presented_as_an_sa() {
    let pki = Fixture::new();
    let sar = pki
        .sar(PartyRole::Issuer, &pki.issuer, &pki.sdi())
        .sign(&pki.issuer.key, pki.issuer.chain());
    assert_eq!(
        refused(&sar, &pki),
        ConsentError::Object(ProtocolError::WrongPurpose {
            expected: Purpose::StoringAuthorization,
            found: Purpose::StoringAuthorizationRequest
        })
    );
}

#[test]
fn an_sa_embedded_where_the_sar_belongs() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let inner = pki.sto2(&sdi);
    let sa = pki
        .sa(
            SaBasis::Request(inner),
            PartyRole::Provider,
            &pki.provider,
            &sdi,
        )
        .sign(&pki.provider.key, pki.provider.chain());
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::Object(ProtocolError::WrongPurpose {
            expected: Purpose::StoringAuthorizationRequest,
            found: Purpose::StoringAuthorization
        })
    );
}

#[test]
fn a_sar_embedded_where_the_delegation_belongs() {
    let pki = Fixture::new();
    let sdi = pki.sdi();
    let sar = pki
        .sar(PartyRole::Issuer, &pki.issuer, &sdi)
        .sign(&pki.issuer.key, pki.issuer.chain());
    let sa = pki
        .sa(
            SaBasis::Delegation(sar),
            PartyRole::Provider,
            &pki.provider,
            &sdi,
        )
        .sign(&pki.provider.key, pki.provider.chain());
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Object(ProtocolError::WrongPurpose {
            expected: Purpose::Delegation,
            ..
        })
    ));
}

// ---- refusals: STO-3 delegation scope ----

fn sto3_refusal(
    pki: &Fixture,
    edit: impl FnOnce(&mut protocol::Delegation, &mut Sdi),
) -> ConsentError {
    let mut delegation = pki.delegation();
    let mut sdi = pki.sdi();
    edit(&mut delegation, &mut sdi);
    refused(&pki.sto3(&delegation, &sdi), pki)
}

#[test]
fn delegation_for_another_provider() {
    let pki = Fixture::new();
    let err = sto3_refusal(&pki, |d, _| {
        d.provider = pki.provider_2.id.clone();
        d.provider_key_digest = pki.provider_2.cert.digest();
    });
    assert_eq!(
        err,
        ConsentError::DelegationWrongProvider {
            delegated: pki.provider_2.id.clone(),
            grantor: pki.provider.id.clone()
        }
    );
}

#[test]
fn delegation_pinning_another_dpr() {
    let pki = Fixture::new();
    let err = sto3_refusal(&pki, |d, _| {
        d.provider_key_digest = pki.provider_2.cert.digest()
    });
    assert_eq!(
        err,
        ConsentError::DelegationKeyMismatch {
            delegated: pki.provider_2.cert.digest(),
            presented: pki.provider.cert.digest()
        }
    );
}

#[test]
fn delegation_without_the_operation() {
    let pki = Fixture::new();
    let err = sto3_refusal(&pki, |d, sdi| {
        d.operations = OperationSet::STORE;
        sdi.operation = Operation::Delete;
    });
    assert_eq!(
        err,
        ConsentError::OperationNotDelegated {
            operation: Operation::Delete
        }
    );
}

#[test]
fn delegation_too_small_for_the_item() {
    let pki = Fixture::new();
    let err = sto3_refusal(&pki, |_, sdi| sdi.size = 1001);
    assert_eq!(
        err,
        ConsentError::ItemTooLarge {
            size: 1001,
            max: 1000
        }
    );
}

#[test]
fn item_outside_the_delegated_prefix() {
    let pki = Fixture::new();
    let err = sto3_refusal(&pki, |_, sdi| {
        sdi.item_id = ItemId::new(&[0xB0, 0x01]).unwrap()
    });
    assert_eq!(
        err,
        ConsentError::ItemOutsidePrefix {
            item_id: ItemId::new(&[0xB0, 0x01]).unwrap(),
            prefix: ItemPrefix::new(&[0xA0]).unwrap()
        }
    );
}

#[test]
fn delegation_for_another_card() {
    let pki = Fixture::new();
    let err = sto3_refusal(&pki, |d, _| d.card_id = Some(OTHER_CARD));
    assert_eq!(
        err,
        ConsentError::WrongCard {
            object: "Delegation",
            expected: CARD,
            found: OTHER_CARD
        }
    );
}

#[test]
fn expired_delegation() {
    let pki = Fixture::new();
    let err = sto3_refusal(&pki, |d, _| d.not_after = at(-1));
    assert!(matches!(
        err,
        ConsentError::Expired {
            object: "Delegation",
            ..
        }
    ));
}

#[test]
fn delegation_by_another_issuer() {
    let pki = Fixture::new();
    let mut delegation = pki.delegation();
    delegation.issuer = pki.issuer2.id.clone();
    let signed = delegation.sign(&pki.issuer2.key, pki.issuer2.chain());
    let sdi = pki.sdi();
    let sa = pki
        .sa(
            SaBasis::Delegation(signed),
            PartyRole::Provider,
            &pki.provider,
            &sdi,
        )
        .sign(&pki.provider.key, pki.provider.chain());
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::NotCardIssuer {
            object: "Delegation",
            expected: pki.issuer.id.clone(),
            found: pki.issuer2.id.clone()
        }
    );
}

#[test]
fn delegation_signed_by_a_provider() {
    let pki = Fixture::new();
    let mut delegation = pki.delegation();
    delegation.issuer = pki.provider_2.id.clone();
    let signed = delegation.sign(&pki.provider_2.key, pki.provider_2.chain());
    let sdi = pki.sdi();
    let sa = pki
        .sa(
            SaBasis::Delegation(signed),
            PartyRole::Provider,
            &pki.provider,
            &sdi,
        )
        .sign(&pki.provider.key, pki.provider.chain());
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Certificate {
            object: "Delegation",
            source: PkiError::UnexpectedRole { .. }
        }
    ));
}

#[test]
fn delegation_used_by_the_issuer_as_grantor() {
    let pki = Fixture::new();
    let signed = pki.delegation().sign(&pki.issuer.key, pki.issuer.chain());
    let sdi = pki.sdi();
    let sa = pki
        .sa(
            SaBasis::Delegation(signed),
            PartyRole::Issuer,
            &pki.issuer,
            &sdi,
        )
        .sign(&pki.issuer.key, pki.issuer.chain());
    assert_eq!(
        refused(&sa, &pki),
        ConsentError::WrongRole {
            object: "Sa",
            expected: PartyRole::Provider,
            found: PartyRole::Issuer
        }
    );
}

#[test]
fn sa_body_round_trips_through_der() {
    let pki = Fixture::new();
    let sa = pki.sto3(&pki.delegation(), &pki.sdi());
    let again = SignedObject::from_der(&sa.to_der()).unwrap();
    assert_eq!(again, sa);
    let body: protocol::Sa = sa.body_unverified().unwrap();
    assert_eq!(protocol::Sa::from_der(&body.to_der()).unwrap(), body);
    assert_eq!(<protocol::Sa as DerCodec>::NAME, "Sa");
}

#[test]
fn provider_chain_from_a_lookalike_root() {
    // A root with the Data Registrar's name but another key certifies a "provider-1".
    let pki = Fixture::new();
    let sa = pki.sto1_with(&pki.sdi(), |c| {
        c.sa_key = &pki.impostor.key;
        c.sa_chain = pki.impostor.chain();
    });
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Certificate { object: "Sa", .. }
    ));
}

#[test]
fn expired_dpr() {
    let pki = Fixture::new();
    let expired = pki.expired_provider();
    let sa = pki.sto1_with(&pki.sdi(), |c| c.sa_chain = expired.chain());
    assert!(matches!(
        refused(&sa, &pki),
        ConsentError::Certificate {
            object: "Sa",
            source: PkiError::CertificateExpired { .. }
        }
    ));
}

#[test]
fn revoked_irc() {
    let pki = Fixture::new();
    let crls = [pki.issuer_registrar_crl(&[pki.issuer.cert.serial()])];
    assert!(matches!(
        verify_storing_authorization(&pki.sto2(&pki.sdi()), &pki.ctx(&crls)),
        Err(ConsentError::Certificate {
            object: "Sa",
            source: PkiError::CertificateRevoked { serial: 10, .. }
        })
    ));
}
