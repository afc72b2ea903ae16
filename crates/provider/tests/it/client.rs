//! Every route through `party_api::provider::ProviderClient`, the client the terminal, the
//! issuer and the e2e tests use: typed arguments in, API types out, and their decoders giving
//! back objects a real card accepts and a ledger that verifies.

use party_api::provider::{Certifier, ProviderClient};
use party_api::HttpClient;
use pki::UnixTime;
use protocol::{verify_ledger, Challenge, ItemId, Operation, PartyRole, Policy, Sar};
use testkit::test_pki::TestPki;
use testkit::world::World;

use crate::support::{assert_refused, issuer_signer, Backend, Place, Server};

const NOW: UnixTime = TestPki::NOW;

async fn every_route(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_client").await else {
        return;
    };
    let w = World::new(71);
    let (server, issuer) = Server::start_with_stub_issuer(&place, &w).await;
    // A client that learns the provider's party ID from GET /v1/provider.
    let client =
        ProviderClient::new(HttpClient::new(&format!("http://{}", server.running.addr)).unwrap());
    let token = server.token.expose();
    let (mut c, rc) = w.registered();
    let card = w.card_id;

    // Identity.
    let identity = client.identity().await.unwrap();
    assert_eq!(identity.dpr_certificate().unwrap(), w.pki.provider.cert);
    assert_eq!(client.party_id().await.unwrap(), w.pki.provider.id);

    // Catalog.
    let (a, b, c_item) = (
        ItemId::new(&[0xA0, 1]).unwrap(),
        ItemId::new(&[0xA0, 2]).unwrap(),
        ItemId::new(&[0xA0, 3]).unwrap(),
    );
    let published = client
        .publish(token, &a, 1, b"item a", Policy::NONE)
        .await
        .unwrap();
    assert_eq!(published.item_id_value().unwrap(), a);
    assert_eq!(
        published.data_digest_value().unwrap(),
        crypto::sha256(b"item a")
    );
    client
        .publish(token, &b, 1, b"item b", Policy::CERTIFIED_DATA_REQUIRED)
        .await
        .unwrap();
    client
        .publish(token, &c_item, 1, b"item c", Policy::NONE)
        .await
        .unwrap();
    assert_refused(
        client.publish("cwo_wrong", &a, 1, b"x", Policy::NONE).await,
        401,
        "unauthenticated",
    );
    assert_eq!(client.items().await.unwrap().items.len(), 3);
    let item_b = client.item(&b, Some(1)).await.unwrap();
    assert_eq!(
        item_b.policy_value().unwrap(),
        Policy::CERTIFIED_DATA_REQUIRED
    );
    assert_refused(client.item(&a, Some(2)).await, 404, "unknown_item");

    // STO-1: the issuer's grant (a party request), then the data.
    let sdi_a = w.sdi(Operation::Store, a.as_bytes(), 1, b"item a");
    let ch = Challenge(c.get_challenge().unwrap());
    let sar = Sar {
        requester_role: PartyRole::Issuer,
        requester: w.pki.issuer.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi_a.clone(),
        challenge: ch,
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(&w.pki.issuer.key, vec![w.pki.issuer.cert.der().to_vec()]);
    let granted = client
        .grant(&issuer_signer(&w.pki.issuer), NOW, &sar)
        .await
        .unwrap();
    let data = client.data(&a, &card, None).await.unwrap();
    assert_eq!(data.data_bytes().unwrap(), b"item a");
    assert!(data.sdci_object().is_err());
    let mut receipts = vec![c
        .store(
            &granted.sa_object().unwrap(),
            None,
            &data.data_bytes().unwrap(),
        )
        .unwrap()];

    // STO-4 on STO-1: certified data.
    let sdi_b = w.sdi_with(
        Operation::Store,
        b.as_bytes(),
        1,
        b"item b",
        &w.pki.provider.id,
        Policy::CERTIFIED_DATA_REQUIRED,
    );
    let ch = Challenge(c.get_challenge().unwrap());
    let sar_b = Sar {
        sdi: sdi_b.clone(),
        challenge: ch,
        ..sar.body_unverified().unwrap()
    }
    .sign(&w.pki.issuer.key, vec![w.pki.issuer.cert.der().to_vec()]);
    let granted = client
        .grant(&issuer_signer(&w.pki.issuer), NOW, &sar_b)
        .await
        .unwrap();
    let certified = client
        .certified(&b, &card, &sdi_b, Certifier::Provider)
        .await
        .unwrap();
    receipts.push(
        c.store(
            &granted.sa_object().unwrap(),
            Some(&certified.sdci_object().unwrap()),
            &certified.data_bytes().unwrap(),
        )
        .unwrap(),
    );

    // STO-2: through the (stub) issuer.
    let sdi_c = w.sdi(Operation::Store, c_item.as_bytes(), 1, b"item c");
    let ch = Challenge(c.get_challenge().unwrap());
    let both = client
        .request(&card, &rc.digest(), &sdi_c, &ch, &w.pki.issuer.id)
        .await
        .unwrap();
    receipts.push(
        c.store(&both.sa_object().unwrap(), None, b"item c")
            .unwrap(),
    );

    // STO-3: a delete of A under a given delegation, of B under a kept one.
    let delegation = w.delegation(&w.pki.provider, &[0xA0], 4096);
    let ch = Challenge(c.get_challenge().unwrap());
    let sdi = w.sdi(Operation::Delete, a.as_bytes(), 1, b"item a");
    let lone = client.alone(&sdi, &ch, Some(&delegation)).await.unwrap();
    receipts.push(c.delete(&lone.sa_object().unwrap()).unwrap());
    let kept = client.add_delegation(token, &delegation).await.unwrap();
    assert_eq!(kept.digest, hex::encode(delegation.digest().0));
    assert_eq!(client.delegations().await.unwrap().delegations, vec![kept]);
    let ch = Challenge(c.get_challenge().unwrap());
    let sdi = w.sdi_with(
        Operation::Delete,
        b.as_bytes(),
        1,
        b"item b",
        &w.pki.provider.id,
        Policy::CERTIFIED_DATA_REQUIRED,
    );
    let lone = client.alone(&sdi, &ch, None).await.unwrap();
    receipts.push(c.delete(&lone.sa_object().unwrap()).unwrap());

    // Receipts, then the records: contents, members, a ledger that verifies.
    for receipt in &receipts {
        let recorded = client
            .receipt(receipt, &rc, &w.pki.issuer.cert)
            .await
            .unwrap();
        assert!(recorded.newly_recorded);
        recorded.entry_object().unwrap();
    }
    let contents = client.contents(&card).await.unwrap();
    let held: Vec<&str> = contents.items.iter().map(|i| i.item_id.as_str()).collect();
    assert_eq!(held, [hex::encode(c_item.as_bytes())]);
    assert_eq!(client.members(&c_item).await.unwrap().cards.len(), 1);
    assert!(client.members(&a).await.unwrap().cards.is_empty());
    let ledger = client.ledger(&card).await.unwrap();
    let key = identity.dpr_certificate().unwrap().public_key();
    let summary = verify_ledger(
        &ledger.entry_objects().unwrap(),
        &key,
        &ledger.rc_certificate().unwrap(),
    )
    .unwrap();
    assert_eq!(summary.entries, receipts.len());

    server.stop().await;
    issuer.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn every_route_sqlite() {
    every_route(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_route_postgres() {
    every_route(Backend::Postgres).await;
}
