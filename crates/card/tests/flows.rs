//! The card's flows through every SPEC path, and every refusal issue 2 names, driven through
//! APDUs by the terminal's `CardClient` against an in-process card.

use apdu::Status;
use card::LifeCycle;
use crypto::sha256;
use pki::UnixTime;
use protocol::{
    verify_listing, verify_receipt, Challenge, IssuerAction, Nonce, Operation, Policy,
    ReceiptResult,
};
use terminal::IssuerCommandKind;
use testkit::test_pki::TestPki;
use testkit::world::{Path, SaParams, TestClient, World, CAPACITY, PIN, PIN_TRY_LIMIT};

const DATA: &[u8] = b"ticket #42: row 7 seat 12";

fn status_of<T: std::fmt::Debug>(r: Result<T, terminal::ClientError>) -> Status {
    match r {
        Ok(v) => panic!("expected a refusal, got {v:?}"),
        Err(e) => e
            .status()
            .unwrap_or_else(|| panic!("expected a status word, got {e}")),
    }
}

fn detail(c: &mut TestClient) -> String {
    c.channel()
        .card
        .last_refusal_detail()
        .unwrap_or("")
        .to_string()
}

fn challenge(c: &mut TestClient) -> Challenge {
    Challenge(c.get_challenge().expect("challenge"))
}

/// Stores `data` as `item` v`version` on `path`; returns the verified receipt.
fn store(
    w: &World,
    c: &mut TestClient,
    rc: &pki::Certificate,
    path: Path,
    item: &[u8],
    version: u32,
    data: &[u8],
) -> protocol::Receipt {
    let sdi = w.sdi(Operation::Store, item, version, data);
    let ch = challenge(c);
    let sa = w.sa(path, &sdi, ch, rc);
    let receipt = c.store(&sa, None, data).expect("store");
    let r = verify_receipt(&receipt, rc).expect("receipt verifies under the RC");
    assert_eq!(r.result, ReceiptResult::Stored);
    assert_eq!(r.sdi_digest, sdi.digest());
    assert_eq!(r.authorization_digest, sha256(&sa.to_der()));
    r
}

fn listing(c: &mut TestClient, rc: &pki::Certificate) -> protocol::Listing {
    let nonce = Nonce::new(b"party nonce 1").unwrap();
    let l = c.listing(nonce.as_bytes()).expect("listing");
    verify_listing(&l, rc, &nonce).expect("listing verifies")
}

#[test]
fn personalisation_moves_the_card_to_personalised() {
    let w = World::new(1);
    let mut c = w.client(w.blank_card());
    c.select_card_manager().unwrap();
    assert_eq!(
        c.status().unwrap().life_cycle,
        LifeCycle::Manufactured.gp_code()
    );
    // Before personalisation nothing but personalisation and status works.
    assert_eq!(
        status_of(c.get_challenge()),
        Status::CONDITIONS_OF_USE_NOT_SATISFIED
    );
    c.personalise(&w.personalisation()).unwrap();
    let s = c.status().unwrap();
    assert_eq!(s.life_cycle, LifeCycle::Personalised.gp_code());
    assert_eq!(s.capacity, CAPACITY);
    assert_eq!(s.free, CAPACITY);
    assert_eq!(s.pin_tries_left, PIN_TRY_LIMIT);
    assert_eq!(c.card_id().unwrap(), w.card_id);
    assert_eq!(
        c.get_data(0xDF34).unwrap(),
        w.personalisation().issuer_authenticator
    );
    // Personalisation data cannot be written again.
    assert_eq!(
        status_of(c.personalise(&w.personalisation())),
        Status::SECURITY_STATUS_NOT_SATISFIED
    );
}

#[test]
fn incomplete_personalisation_is_refused_and_leaves_the_card_blank() {
    let w = World::new(2);
    let mut c = w.client(w.blank_card());
    c.select_card_manager().unwrap();
    // Only the first block (no anchors), flagged as the last one.
    let first = w.personalisation().blocks().remove(0);
    let r = c.send(
        "STORE DATA",
        apdu::Command::new(0x80, 0xE2, 0x80, 0x00, first),
    );
    assert_eq!(status_of(r), Status::CONDITIONS_OF_USE_NOT_SATISFIED);
    assert_eq!(
        c.status().unwrap().life_cycle,
        LifeCycle::Manufactured.gp_code()
    );
    // An unknown DGI.
    let r = c.send(
        "STORE DATA",
        apdu::Command::new(0x80, 0xE2, 0x00, 0x00, vec![0x7F, 0x7F, 0x01, 0x00]),
    );
    assert_eq!(status_of(r), Status::REFERENCED_DATA_NOT_FOUND);
}

#[test]
fn registration_stores_rc_and_moves_the_card_in_use() {
    let w = World::new(3);
    let (mut c, rc) = w.registered();
    let s = c.status().unwrap();
    assert_eq!(s.life_cycle, LifeCycle::InUse.gp_code());
    assert!(s.registered);
    assert_eq!(c.get_data(0xDF31).unwrap(), rc.der());
    assert_eq!(c.get_data(0xDF32).unwrap(), rc.public_key().to_sec1());
}

#[test]
fn registration_requires_the_pin() {
    let w = World::new(4);
    let mut c = w.personalised();
    let r = c.register(&w.user, &[1; 16]);
    assert_eq!(status_of(r), Status::SECURITY_STATUS_NOT_SATISFIED);
}

#[test]
fn registration_refuses_an_rc_not_from_the_cards_issuer() {
    let w = World::new(5);
    let mut c = w.personalised();
    c.verify_pin(PIN).unwrap();
    let ch = Challenge([7; 16]);
    let reg = c.register(&w.user, &ch.0).unwrap();
    let info = protocol::verify_registration_info(&reg, &ch).unwrap();
    // The rogue issuer, under a root the card does not trust.
    let rogue_rc = pki::issue(
        &pki::CertificateRequest::card(
            w.card_id,
            info.public_key,
            sha256(&info.user_info.to_der()),
            77,
            TestPki::NOT_BEFORE,
            TestPki::NOT_AFTER,
        ),
        &w.pki.rogue_issuer.cert,
        &w.pki.rogue_issuer.key,
    )
    .unwrap();
    let r = c.register_complete(&rogue_rc, &w.pki.rogue_issuer.cert);
    assert_eq!(status_of(r), Status::REFERENCE_DATA_NOT_USABLE);
    // An RC from the right issuer but for another key (a terminal substituting its own).
    let other =
        crypto::SigningKey::generate(&mut crypto::InsecureSeededRng::insecure_seeded_for_tests(9));
    let wrong_key_rc = w.pki.issue_card_rc(
        w.card_id,
        other.verifying_key(),
        sha256(&info.user_info.to_der()),
    );
    let r = c.register_complete(&wrong_key_rc, &w.pki.issuer.cert);
    assert_eq!(status_of(r), Status::REFERENCE_DATA_NOT_USABLE);
    assert_eq!(
        c.status().unwrap().life_cycle,
        LifeCycle::Personalised.gp_code()
    );
    // The right one is accepted.
    let rc = w.issue_rc(&reg, &ch);
    c.register_complete(&rc, &w.pki.issuer.cert).unwrap();
}

#[test]
fn registration_refuses_a_revoked_irc() {
    let w = World::new(6);
    let mut c = w.personalised();
    c.load_crl(&w.pki.issuer_registrar_crl(&[w.pki.issuer.cert.serial()]))
        .unwrap();
    c.verify_pin(PIN).unwrap();
    let ch = Challenge([8; 16]);
    let reg = c.register(&w.user, &ch.0).unwrap();
    let rc = w.issue_rc(&reg, &ch);
    let r = c.register_complete(&rc, &w.pki.issuer.cert);
    assert_eq!(status_of(r), Status::REFERENCE_DATA_NOT_USABLE);
    assert!(detail(&mut c).contains("revoked"), "{}", detail(&mut c));
}

#[test]
fn store_and_delete_on_every_consent_path() {
    let w = World::new(10);
    let (mut c, rc) = w.registered();
    let mut counter = 0;
    for (i, path) in [Path::ViaIssuer, Path::ViaProvider, Path::ProviderOnly]
        .into_iter()
        .enumerate()
    {
        let item = format!("item-{i}");
        let r = store(&w, &mut c, &rc, path, item.as_bytes(), 1, DATA);
        counter += 1;
        assert_eq!(r.counter, counter, "confirmation counter increments by one");
        let l = listing(&mut c, &rc);
        assert_eq!(l.counter, counter);
        assert_eq!(
            r.listing_digest,
            l.contents.digest(),
            "receipt binds the listing"
        );
        assert!(l
            .contents
            .items()
            .iter()
            .any(|it| it.item_id.as_bytes() == item.as_bytes() && it.data_digest == sha256(DATA)));

        // STO-6: delete on the same path.
        let sdi = w.sdi(Operation::Delete, item.as_bytes(), 1, DATA);
        let ch = challenge(&mut c);
        let sa = w.sa(path, &sdi, ch, &rc);
        let receipt = c.delete(&sa).unwrap();
        let r = verify_receipt(&receipt, &rc).unwrap();
        counter += 1;
        assert_eq!(r.counter, counter);
        assert_eq!(r.result, ReceiptResult::Deleted);
        let l = listing(&mut c, &rc);
        assert!(l.contents.items().is_empty());
        assert_eq!(l.contents.free(), CAPACITY);
    }
}

#[test]
fn certified_data_by_provider_and_by_registrar() {
    let w = World::new(11);
    let (mut c, rc) = w.registered();
    for (item, registrar) in [(&b"sdci"[..], false), (&b"sdci-prime"[..], true)] {
        let sdi = w.sdi_with(
            Operation::Store,
            item,
            1,
            DATA,
            &w.pki.provider.id,
            Policy::CERTIFIED_DATA_REQUIRED,
        );
        let certified = if registrar {
            w.sdci_prime(&sdi)
        } else {
            w.sdci(&sdi)
        };
        // Without the certificate of the data, a policy that requires one refuses.
        let ch = challenge(&mut c);
        let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
        assert_eq!(
            status_of(c.store(&sa, None, DATA)),
            Status::SECURITY_STATUS_NOT_SATISFIED
        );
        let ch = challenge(&mut c);
        let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
        c.store(&sa, Some(&certified), DATA).unwrap();
    }
    assert_eq!(listing(&mut c, &rc).contents.items().len(), 2);
}

#[test]
fn certified_data_over_another_sdi_is_refused() {
    let w = World::new(12);
    let (mut c, rc) = w.registered();
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    let other = w.sdi(Operation::Store, b"item", 1, b"other data");
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    let r = c.install_for_load(&sa, Some(&w.sdci(&other)));
    assert_eq!(status_of(r), Status::REFERENCE_DATA_NOT_USABLE);
}

#[test]
fn replayed_sa_is_refused() {
    let w = World::new(13);
    let (mut c, rc) = w.registered();
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    c.store(&sa, None, DATA).unwrap();
    // Same SA again, with and without a fresh challenge outstanding.
    assert_eq!(
        status_of(c.store(&sa, None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    challenge(&mut c);
    assert_eq!(
        status_of(c.store(&sa, None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    // And after a power cycle.
    let mut c = w.reboot(c);
    c.verify_pin(PIN).unwrap();
    challenge(&mut c);
    assert_eq!(
        status_of(c.store(&sa, None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    assert_eq!(c.status().unwrap().receipt_counter, 1);
}

#[test]
fn sa_for_another_card_is_refused() {
    let w = World::new(14);
    let other = World::new(15);
    let (mut c, rc) = w.registered();
    let ch = challenge(&mut c);
    let sdi = other.sdi(Operation::Store, b"item", 1, DATA);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    assert_eq!(
        status_of(c.store(&sa, None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    assert!(
        detail(&mut c).to_lowercase().contains("card"),
        "{}",
        detail(&mut c)
    );
}

#[test]
fn expired_sa_is_refused() {
    let w = World::new(16);
    let (mut c, rc) = w.registered();
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ViaIssuer, sdi, ch, &rc);
    // Expired before the card's time floor (an hour before NOW).
    p.issued_at = UnixTime(TestPki::NOW.0 - 3 * 3600);
    p.not_after = UnixTime(TestPki::NOW.0 - 2 * 3600);
    assert_eq!(
        status_of(c.store(&p.sign(), None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    assert!(detail(&mut c).contains("xpire"), "{}", detail(&mut c));
}

#[test]
fn sa_with_a_wrong_signature_or_signer_is_refused() {
    let w = World::new(17);
    let (mut c, rc) = w.registered();
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    // A flipped bit in the SA's signature.
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    let mut der = sa.to_der();
    let sig_at = der.len() - 1 - sa.signer_chain().iter().map(|c| c.len() + 4).sum::<usize>() - 4;
    der[sig_at] ^= 0x01;
    let r = c.send(
        "INSTALL",
        apdu::Command::new(0x80, 0xE6, 0x02, 0x00, apdu::tlv::encode(0xDF50, &der)),
    );
    assert_eq!(status_of(r), Status::REFERENCE_DATA_NOT_USABLE);
    assert!(detail(&mut c).contains("signature"), "{}", detail(&mut c));
    // A provider under a root the card does not trust.
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ViaIssuer, sdi.clone(), ch, &rc);
    p.provider = &w.pki.rogue_provider;
    assert_eq!(
        status_of(c.store(&p.sign(), None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    // A provider the card trusts, but not the item's owner.
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ViaIssuer, sdi.clone(), ch, &rc);
    p.provider = &w.pki.provider_2;
    assert_eq!(
        status_of(c.store(&p.sign(), None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    // Both consents by the issuer: no provider consent at all.
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ViaIssuer, sdi, ch, &rc);
    p.provider = &w.pki.issuer;
    assert_eq!(
        status_of(c.store(&p.sign(), None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    assert_eq!(c.status().unwrap().receipt_counter, 0);
}

#[test]
fn data_not_matching_the_sdi_is_refused() {
    let w = World::new(18);
    let (mut c, rc) = w.registered();
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaProvider, &sdi, ch, &rc);
    let mut forged = DATA.to_vec();
    forged[0] ^= 0x20;
    assert_eq!(
        status_of(c.store(&sa, None, &forged)),
        Status::INCORRECT_DATA
    );
    // More data than the SDI's size.
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaProvider, &sdi, ch, &rc);
    let mut longer = DATA.to_vec();
    longer.push(0);
    assert_eq!(
        status_of(c.store(&sa, None, &longer)),
        Status::INCORRECT_DATA
    );
    assert_eq!(c.status().unwrap().items, 0);
}

#[test]
fn revoked_or_expired_dpr_is_refused() {
    let w = World::new(19);
    let (mut c, rc) = w.registered();
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    // Expired DPR.
    let expired = w.pki.expired_provider();
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ViaIssuer, sdi.clone(), ch, &rc);
    p.provider = &expired;
    assert_eq!(
        status_of(c.store(&p.sign(), None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    assert!(detail(&mut c).contains("xpired"), "{}", detail(&mut c));
    // Revoked DPR: the card learns of it from the Data Registrar's CRL.
    c.load_crl(&w.pki.data_registrar_crl(&[w.pki.provider.cert.serial()]))
        .unwrap();
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    assert_eq!(
        status_of(c.store(&sa, None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    assert!(detail(&mut c).contains("revoked"), "{}", detail(&mut c));
    // An older CRL cannot replace the newer one.
    assert_eq!(
        status_of(c.load_crl(&w.pki.data_registrar_crl(&[]))),
        Status::CONDITIONS_OF_USE_NOT_SATISFIED
    );
}

#[test]
fn provider_only_storing_needs_a_delegation_for_that_provider() {
    let w = World::new(20);
    let (mut c, rc) = w.registered();
    let sdi = w.sdi(Operation::Store, b"tix-1", 1, DATA);
    // A delegation for another provider.
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ProviderOnly, sdi.clone(), ch, &rc);
    p.delegation = Some(w.delegation(&w.pki.provider_2, b"", 1024));
    assert_eq!(
        status_of(c.store(&p.sign(), None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    // A delegation that does not cover the item's prefix.
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ProviderOnly, sdi.clone(), ch, &rc);
    p.delegation = Some(w.delegation(&w.pki.provider, b"coupon-", 1024));
    assert_eq!(
        status_of(c.store(&p.sign(), None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    // Too small a size limit.
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ProviderOnly, sdi.clone(), ch, &rc);
    p.delegation = Some(w.delegation(&w.pki.provider, b"tix-", 4));
    assert_eq!(
        status_of(c.store(&p.sign(), None, DATA)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    // The right one.
    let ch = challenge(&mut c);
    let mut p = SaParams::new(&w, Path::ProviderOnly, sdi, ch, &rc);
    p.delegation = Some(w.delegation(&w.pki.provider, b"tix-", 1024));
    c.store(&p.sign(), None, DATA).unwrap();
}

#[test]
fn store_beyond_capacity_is_refused_cleanly() {
    let w = World::new(21);
    let (mut c, rc) = w.registered();
    let big = vec![0xAB; CAPACITY as usize - 100];
    store(&w, &mut c, &rc, Path::ViaIssuer, b"big", 1, &big);
    let too_much = vec![0xCD; 101];
    let sdi = w.sdi(Operation::Store, b"more", 1, &too_much);
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    assert_eq!(
        status_of(c.store(&sa, None, &too_much)),
        Status::NOT_ENOUGH_MEMORY
    );
    let s = c.status().unwrap();
    assert_eq!(s.free, 100);
    assert_eq!(s.items, 1);
    // Exactly what is free fits.
    store(
        &w,
        &mut c,
        &rc,
        Path::ViaIssuer,
        b"more",
        1,
        &too_much[..100],
    );
    assert_eq!(c.status().unwrap().free, 0);
}

#[test]
fn newer_version_replaces_older_but_never_the_reverse() {
    let w = World::new(22);
    let (mut c, rc) = w.registered();
    store(&w, &mut c, &rc, Path::ViaIssuer, b"app", 2, b"v2");
    let sdi = w.sdi(Operation::Store, b"app", 1, b"v1");
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    assert_eq!(
        status_of(c.store(&sa, None, b"v1")),
        Status::CONDITIONS_OF_USE_NOT_SATISFIED
    );
    store(
        &w,
        &mut c,
        &rc,
        Path::ViaIssuer,
        b"app",
        3,
        b"version three",
    );
    let l = listing(&mut c, &rc);
    assert_eq!(l.contents.items().len(), 1);
    assert_eq!(l.contents.items()[0].version, 3);
}

#[test]
fn delete_must_name_the_stored_item_exactly_and_respect_policy() {
    let w = World::new(23);
    let (mut c, rc) = w.registered();
    store(&w, &mut c, &rc, Path::ViaIssuer, b"item", 1, DATA);
    // Wrong version.
    let sdi = w.sdi(Operation::Delete, b"item", 2, DATA);
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    assert_eq!(status_of(c.delete(&sa)), Status::REFERENCE_DATA_NOT_USABLE);
    // Not there at all.
    let sdi = w.sdi(Operation::Delete, b"absent", 1, DATA);
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    assert_eq!(status_of(c.delete(&sa)), Status::REFERENCED_DATA_NOT_FOUND);
    // A store authorization used for a delete.
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    assert_eq!(status_of(c.delete(&sa)), Status::INCORRECT_DATA);
    // Not deletable by policy.
    let sdi = w.sdi_with(
        Operation::Store,
        b"keep",
        1,
        DATA,
        &w.pki.provider.id,
        Policy::NOT_DELETABLE,
    );
    let ch = challenge(&mut c);
    c.store(&w.sa(Path::ViaIssuer, &sdi, ch, &rc), None, DATA)
        .unwrap();
    let sdi = w.sdi_with(
        Operation::Delete,
        b"keep",
        1,
        DATA,
        &w.pki.provider.id,
        Policy::NOT_DELETABLE,
    );
    let ch = challenge(&mut c);
    assert_eq!(
        status_of(c.delete(&w.sa(Path::ViaIssuer, &sdi, ch, &rc))),
        Status::CONDITIONS_OF_USE_NOT_SATISFIED
    );
    assert_eq!(c.status().unwrap().items, 2);
}

#[test]
fn wrong_pin_counts_down_blocks_survives_power_loss_and_issuer_unblocks() {
    let w = World::new(24);
    let (c, _rc) = w.registered();
    let mut c = w.reboot(c);
    assert_eq!(status_of(c.verify_pin("0000")), Status::verify_failed(2));
    assert_eq!(status_of(c.verify_pin("0000")), Status::verify_failed(1));
    // A power cycle does not give a try back.
    let mut c = w.reboot(c);
    assert_eq!(c.status().unwrap().pin_tries_left, 1);
    assert_eq!(
        status_of(c.verify_pin("0000")),
        Status::AUTHENTICATION_METHOD_BLOCKED
    );
    // Blocked: even the right PIN is refused, across power cycles.
    assert_eq!(
        status_of(c.verify_pin(PIN)),
        Status::AUTHENTICATION_METHOD_BLOCKED
    );
    let mut c = w.reboot(c);
    assert_eq!(
        status_of(c.verify_pin(PIN)),
        Status::AUTHENTICATION_METHOD_BLOCKED
    );
    // Only an issuer-signed command unblocks; a replayed one does nothing.
    let ch = challenge(&mut c);
    let unblock = w.issuer_command(IssuerAction::UnblockPin, ch);
    c.reset_retry_counter(&unblock).unwrap();
    assert_eq!(c.status().unwrap().pin_tries_left, PIN_TRY_LIMIT);
    c.verify_pin(PIN).unwrap();
    assert_eq!(
        status_of(c.reset_retry_counter(&unblock)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    // A correct PIN restores the full count.
    assert_eq!(status_of(c.verify_pin("9999")), Status::verify_failed(2));
    c.verify_pin(PIN).unwrap();
    assert_eq!(c.status().unwrap().pin_tries_left, PIN_TRY_LIMIT);
}

#[test]
fn storing_needs_the_holders_pin() {
    let w = World::new(25);
    let (c, rc) = w.registered();
    let mut c = w.reboot(c);
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    assert_eq!(
        status_of(c.store(&sa, None, DATA)),
        Status::SECURITY_STATUS_NOT_SATISFIED
    );
}

#[test]
fn lock_unlock_and_terminate_by_the_issuer() {
    let w = World::new(26);
    let (mut c, rc) = w.registered();
    let ch = challenge(&mut c);
    c.set_status(
        IssuerCommandKind::Lock,
        &w.issuer_command(IssuerAction::Lock, ch),
    )
    .unwrap();
    assert_eq!(c.status().unwrap().life_cycle, LifeCycle::Locked.gp_code());
    // Locked: no storing, no PIN.
    assert_eq!(
        status_of(c.verify_pin(PIN)),
        Status::CONDITIONS_OF_USE_NOT_SATISFIED
    );
    // An issuer command whose action differs from P2 is refused.
    let ch = challenge(&mut c);
    assert_eq!(
        status_of(c.set_status(
            IssuerCommandKind::Unlock,
            &w.issuer_command(IssuerAction::Terminate, ch)
        )),
        Status::INCORRECT_DATA
    );
    let ch = challenge(&mut c);
    c.set_status(
        IssuerCommandKind::Unlock,
        &w.issuer_command(IssuerAction::Unlock, ch),
    )
    .unwrap();
    c.verify_pin(PIN).unwrap();
    store(&w, &mut c, &rc, Path::ViaIssuer, b"item", 1, DATA);
    let ch = challenge(&mut c);
    c.set_status(
        IssuerCommandKind::Terminate,
        &w.issuer_command(IssuerAction::Terminate, ch),
    )
    .unwrap();
    assert_terminated(&w, c);
}

#[test]
fn issuer_commands_work_before_registration() {
    let w = World::new(30);
    let mut c = w.personalised();
    for _ in 0..PIN_TRY_LIMIT {
        let _ = c.verify_pin("0000");
    }
    assert_eq!(
        status_of(c.verify_pin(PIN)),
        Status::AUTHENTICATION_METHOD_BLOCKED
    );
    let ch = challenge(&mut c);
    c.reset_retry_counter(&w.issuer_command(IssuerAction::UnblockPin, ch))
        .unwrap();
    c.verify_pin(PIN).unwrap();
    // A command for another card (another world's issuer command) is refused.
    let other = World::new(31);
    let ch = challenge(&mut c);
    assert_eq!(
        status_of(c.set_status(
            IssuerCommandKind::Terminate,
            &other.issuer_command(IssuerAction::Terminate, ch)
        )),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    let ch = challenge(&mut c);
    c.set_status(
        IssuerCommandKind::Terminate,
        &w.issuer_command(IssuerAction::Terminate, ch),
    )
    .unwrap();
    assert_terminated(&w, c);
}

#[test]
fn tamper_erases_keys_and_terminates() {
    let w = World::new(27);
    let (mut c, _rc) = w.registered();
    // Key information shows Sk and the card key before…
    let keys = c.get_data(0x00E0).unwrap();
    assert!(!keys.is_empty());
    c.tamper().unwrap();
    assert_terminated(&w, c);
}

/// After termination the card answers nothing but status, even after a power cycle.
fn assert_terminated(w: &World, c: TestClient) {
    let mut c = w.reboot(c);
    let s = c.status().unwrap();
    assert_eq!(s.life_cycle, LifeCycle::Terminated.gp_code());
    assert_eq!(c.card_id().unwrap(), w.card_id);
    for r in [
        c.verify_pin(PIN).map(drop),
        c.get_challenge().map(drop),
        c.listing(b"n").map(drop),
        c.get_data(0x00E0).map(drop),
        c.tamper(),
    ] {
        assert_eq!(status_of(r), Status::FUNCTION_NOT_SUPPORTED);
    }
}

#[test]
fn state_survives_power_cycles() {
    let w = World::new(28);
    let (mut c, rc) = w.registered();
    store(&w, &mut c, &rc, Path::ViaIssuer, b"a", 1, b"alpha");
    store(&w, &mut c, &rc, Path::ViaProvider, b"b", 1, b"beta");
    let before = listing(&mut c, &rc);
    let mut c = w.reboot(c);
    let after = listing(&mut c, &rc);
    assert_eq!(before.contents, after.contents);
    assert_eq!(after.counter, 2);
}

#[test]
fn an_interrupted_load_leaves_nothing_behind() {
    let w = World::new(29);
    let (mut c, rc) = w.registered();
    let data = vec![0x42; 600];
    let sdi = w.sdi(Operation::Store, b"blocks", 1, &data);
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    c.install_for_load(&sa, None).unwrap();
    // First block only, then power loss.
    c.send(
        "LOAD",
        apdu::Command::new(0x80, 0xE8, 0x00, 0x00, data[..240].to_vec()),
    )
    .unwrap();
    let mut c = w.reboot(c);
    assert_eq!(c.status().unwrap().items, 0);
    // The same SA cannot be replayed to finish it: the challenge died with the power.
    c.verify_pin(PIN).unwrap();
    challenge(&mut c);
    assert_eq!(
        status_of(c.install_for_load(&sa, None)),
        Status::REFERENCE_DATA_NOT_USABLE
    );
    // Blocks out of order are refused.
    let ch = challenge(&mut c);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    c.install_for_load(&sa, None).unwrap();
    let r = c.send(
        "LOAD",
        apdu::Command::new(0x80, 0xE8, 0x00, 0x01, data[..240].to_vec()),
    );
    assert_eq!(status_of(r), Status::INCORRECT_P1_P2);
    // A whole multi-block store, this time with extended APDUs (no chaining).
    let mut c = terminal::CardClient::extended(c.into_channel());
    let ch = Challenge(c.get_challenge().unwrap());
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    c.store(&sa, None, &data).unwrap();
    assert_eq!(c.status().unwrap().items, 1);
}
