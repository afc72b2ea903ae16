//! `party_api::issuer::IssuerClient` against the real issuer: every method once, on one card's
//! life (personalise, register, STO-2, STO-1 through the stub provider, STO-3, receipts,
//! contents, ledger, reconcile, revocation and the CRL), so the client's paths, bodies and answer types are the
//! server's.

use party_api::issuer::{DelegationRequest, IssuerClient, PersonaliseRequest, ProviderRequest};
use pki::CardId;
use protocol::{Challenge, Nonce, Operation, PartyRole, Sa, SaBasis, UnixTime};
use testkit::world::{World, PIN};

use crate::support::*;

#[tokio::test]
async fn every_method_of_the_issuer_client() {
    let place = Place::new(Backend::Sqlite, "issuer_client").await.unwrap();
    let w = World::new(43);
    let server = Server::start(&place, &w.pki).await;
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    let token = server.token.expose();
    let provider = &w.pki.provider.id;
    // A client that learns the issuer's party ID from the issuer.
    let client = IssuerClient::new(server.client.http().clone());
    let identity = client.identity().await.unwrap();
    assert_eq!(identity.irc, hex::encode(w.pki.issuer.cert.der()));
    assert_eq!(client.party_id().await.unwrap(), w.pki.issuer.id);

    // Policy.
    let policy = ProviderRequest {
        status: "allowed".into(),
        quota_bytes: 1000,
        url: Some(stub.url.clone()),
    };
    let set = client.put_provider(token, provider, &policy).await.unwrap();
    assert_eq!(client.provider(provider).await.unwrap(), set);
    assert_refused(
        client.put_provider("cwo_nope", provider, &policy).await,
        401,
        "unauthenticated",
    );

    // Personalisation and registration (REG-2).
    let order = PersonaliseRequest {
        pin: PIN.into(),
        pin_try_limit: None,
        capacity: Some(4096),
    };
    let record = client.personalise(token, &order).await.unwrap();
    let personalisation = personalisation_from(&serde_json::to_value(&record).unwrap());
    let card_id = personalisation.card_id;
    let mut c = w.client(w.blank_card());
    c.select_card_manager().unwrap();
    c.personalise(&personalisation).unwrap();
    c.verify_pin(PIN).unwrap();
    assert_eq!(client.card(&card_id).await.unwrap().status, "personalised");
    let challenge = client.challenge(&card_id).await.unwrap();
    let registration = c
        .register(&w.user, &challenge.challenge_value().unwrap().0)
        .unwrap();
    let registered = client.register(&card_id, &registration).await.unwrap();
    let rc = registered.rc_certificate().unwrap();
    c.register_complete(&rc, &registered.irc_certificate().unwrap())
        .unwrap();
    assert_eq!(client.card(&card_id).await.unwrap().status, "registered");

    // STO-2: provider-1 asks for the issuer's SA over its SAR.
    let first = sdi(card_id, Operation::Store, b"item-a", b"aa", provider);
    let sar = provider_sar(&w, &first, Challenge(c.get_challenge().unwrap()), &rc);
    let granted = client
        .grant(&provider_signer(&w.pki.provider), NOW, &sar)
        .await
        .unwrap();
    let receipt = c.store(&granted.sa_object().unwrap(), None, b"aa").unwrap();
    let recorded = client.receipt(&receipt, None).await.unwrap();
    recorded.entry_object().unwrap();
    assert_eq!((recorded.counter, recorded.newly_recorded), (1, true));

    // STO-1: the issuer's SAR and the provider's SA in one call.
    let second = sdi(card_id, Operation::Store, b"item-b", b"bb", provider);
    let challenge = Challenge(c.get_challenge().unwrap());
    let requested = client.request(&card_id, &second, &challenge).await.unwrap();
    let receipt = c
        .store(&requested.sa_object().unwrap(), None, b"bb")
        .unwrap();
    assert!(client.receipt(&receipt, None).await.unwrap().in_sync);

    // STO-3: a delegation; the provider's lone SA; the receipt with its SDI.
    let delegation = client
        .delegate(
            token,
            &DelegationRequest {
                provider: provider.to_string(),
                provider_certificate: hex::encode(w.pki.provider.cert.der()),
                operations: vec!["store".into()],
                item_prefix: String::new(),
                max_item_size: 64,
                card_id: Some(card_id.to_hex()),
                not_after: None,
            },
        )
        .await
        .unwrap();
    let third = sdi(card_id, Operation::Store, b"item-c", b"cc", provider);
    let challenge = Challenge(c.get_challenge().unwrap());
    let p = &w.pki.provider;
    let alone = Sa::new(
        SaBasis::Delegation(delegation.delegation_object().unwrap()),
        PartyRole::Provider,
        p.id.clone(),
        third.clone(),
        challenge,
        NOW,
        UnixTime(NOW.0 + 600),
    )
    .sign(&p.key, vec![p.cert.der().to_vec()]);
    let receipt = c.store(&alone, None, b"cc").unwrap();
    assert_refused(client.receipt(&receipt, None).await, 404, "unknown_sdi");
    assert!(
        client
            .receipt(&receipt, Some(&third))
            .await
            .unwrap()
            .in_sync
    );

    // The records: contents, a ledger that verifies, a listing in sync.
    let contents = client.contents(&card_id).await.unwrap();
    assert_eq!((contents.items.len(), contents.last_counter), (3, 3));
    let ledger = client.ledger(&card_id).await.unwrap();
    let summary = protocol::verify_ledger(
        &ledger.entry_objects().unwrap(),
        &w.pki.issuer.public_key(),
        &ledger.rc_certificate().unwrap(),
    )
    .unwrap();
    assert_eq!(summary.entries, 3);
    let nonce = Nonce::new(b"client").unwrap();
    let listing = c.listing(nonce.as_bytes()).unwrap();
    let reconciled = client.reconcile(&card_id, &listing, &nonce).await.unwrap();
    assert!(reconciled.in_sync, "{reconciled:?}");

    assert_refused(client.card(&CardId([9; 16])).await, 404, "unknown_card");

    // REG-3: the card is lost; its RC is revoked and listed by the issuer's CRL.
    let before = client.crl().await.unwrap();
    let revoked = client
        .revoke_card(token, &card_id, "key_compromise")
        .await
        .unwrap();
    assert_eq!((revoked.serial, revoked.newly_revoked), (rc.serial(), true));
    assert!(revoked.crl_number > before.number);
    let crl = client.current_crl().await.unwrap();
    crl.verify_signed_by(&identity.irc_certificate().unwrap())
        .unwrap();
    assert_eq!(
        (crl.number(), crl.revoked()),
        (revoked.crl_number, &[rc.serial()][..])
    );
    assert_eq!(client.crl().await.unwrap().crl_value().unwrap(), crl);
    let revocation = client.card(&card_id).await.unwrap().registration.unwrap();
    assert_eq!(revocation.revocation.unwrap().reason, "key_compromise");
    let challenge = Challenge(c.get_challenge().unwrap());
    let fourth = sdi(card_id, Operation::Store, b"item-d", b"dd", provider);
    assert_refused(
        client.request(&card_id, &fourth, &challenge).await,
        409,
        "registration_revoked",
    );
    assert_refused(
        client
            .revoke_card("cwo_nope", &card_id, "key_compromise")
            .await,
        401,
        "unauthenticated",
    );

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}
