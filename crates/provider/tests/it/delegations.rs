//! STO-3 with delegations the provider keeps: an operator stores the issuer's delegations
//! (checked first: chain, names this provider, pins its DPR, unexpired), lists them, and a
//! lone SA asked for without a delegation uses a kept one that covers the SDI — the card's
//! own before any card's — or is refused with 403 `no_delegation`.

use pki::UnixTime;
use protocol::{Challenge, Delegation, ItemPrefix, Operation, OperationSet, Policy, SignedObject};
use serde_json::json;
use server_kit::testing::ResponseForTests;
use testkit::test_pki::{TestParty, TestPki};
use testkit::world::World;

use crate::support::{assert_error, hex_of, second_issuer, Backend, Place, Server};

const NOW: UnixTime = TestPki::NOW;
const ITEM_A: [u8; 2] = [0xA0, 0x01];
const ITEM_B: [u8; 2] = [0xB0, 0x01];
const DATA: &[u8] = b"kept delegation data";

/// An issuer's delegation for `w`'s provider; `edit` changes one thing.
fn delegation(w: &World, signer: &TestParty, edit: impl Fn(&mut Delegation)) -> SignedObject {
    let mut d = Delegation {
        issuer: signer.id.clone(),
        provider: w.pki.provider.id.clone(),
        provider_key_digest: w.pki.provider.cert.digest(),
        operations: OperationSet::STORE_AND_DELETE,
        item_prefix: ItemPrefix::new(&[0xA0]).unwrap(),
        max_item_size: 4096,
        card_id: Some(w.card_id),
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 3600),
    };
    edit(&mut d);
    d.sign(&signer.key, vec![signer.cert.der().to_vec()])
}

async fn keep(server: &Server, delegation: &SignedObject, token: Option<&str>) -> ResponseForTests {
    server
        .post(
            "/v1/delegations",
            &json!({"delegation": hex::encode(delegation.to_der())}),
            token,
        )
        .await
}

async fn alone(server: &Server, item: &[u8], w: &World, challenge: Challenge) -> ResponseForTests {
    let sdi = w.sdi(Operation::Store, item, 1, DATA);
    server
        .post(
            "/v1/authorizations/alone",
            &json!({"sdi": hex::encode(sdi.to_der()), "challenge": hex::encode(challenge.0)}),
            None,
        )
        .await
}

async fn kept_delegations(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_delegations").await else {
        return;
    };
    let w = World::new(61);
    let server = Server::start(&place, &w).await;
    let bearer = server.bearer();
    for item in [ITEM_A, ITEM_B] {
        let published = server
            .post(
                "/v1/items",
                &json!({"item_id": hex::encode(item), "version": 1, "data": hex::encode(DATA), "policy": Policy::NONE.bits()}),
                Some(&bearer),
            )
            .await;
        assert_eq!(published.status, 201, "{}", published.text());
    }
    let (mut c, rc) = w.registered();

    // Nothing kept: refused.
    assert_error(
        &alone(&server, &ITEM_A, &w, Challenge([1; 16])).await,
        403,
        "no_delegation",
    );

    // Keeping one: operator only, checked, idempotent.
    let for_card = delegation(&w, &w.pki.issuer, |_| {});
    assert_error(
        &keep(&server, &for_card, None).await,
        401,
        "unauthenticated",
    );
    let kept = keep(&server, &for_card, Some(&bearer)).await;
    assert_eq!(kept.status, 201, "{}", kept.text());
    let kept = kept.json();
    assert_eq!(
        kept,
        json!({
            "digest": hex::encode(for_card.digest().0),
            "issuer": w.pki.issuer.id.as_str(),
            "issued_at": NOW.0,
            "not_after": NOW.0 + 3600,
            "operations": ["store", "delete"],
            "item_prefix": "a0",
            "max_item_size": 4096,
            "card_id": w.card_id.to_hex(),
            "stored_at": NOW.0,
        })
    );
    let again = keep(&server, &for_card, Some(&bearer)).await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), kept);
    let refusals = [
        (
            delegation(&w, &w.pki.issuer, |d| {
                d.provider = w.pki.provider_2.id.clone()
            }),
            "delegation_refused",
        ),
        (
            delegation(&w, &w.pki.issuer, |d| {
                d.provider_key_digest = crypto::sha256(b"another DPR")
            }),
            "delegation_refused",
        ),
        (
            delegation(&w, &w.pki.issuer, |d| d.not_after = UnixTime(NOW.0 - 1)),
            "authorization_expired",
        ),
        (
            delegation(&w, &w.pki.rogue_issuer, |_| {}),
            "untrusted_signer",
        ),
    ];
    for (refused, code) in &refusals {
        assert_error(&keep(&server, refused, Some(&bearer)).await, 422, code);
    }
    assert_error(
        &server
            .post(
                "/v1/delegations",
                &json!({"delegation": "zz"}),
                Some(&bearer),
            )
            .await,
        400,
        "invalid_delegation",
    );

    // A lone SA under the kept delegation, accepted by the card; item B is outside its prefix.
    let ch = Challenge(c.get_challenge().unwrap());
    let response = alone(&server, &ITEM_A, &w, ch).await;
    assert_eq!(response.status, 201, "{}", response.text());
    let sa = SignedObject::from_der(&hex_of(&response.json(), "sa")).unwrap();
    let sa_body: protocol::Sa = sa.body_unverified().unwrap();
    assert_eq!(
        sa_body.basis,
        protocol::SaBasis::Delegation(for_card.clone())
    );
    let receipt = c
        .store(&sa, None, DATA)
        .expect("the card accepts the lone SA");
    let refused = alone(&server, &ITEM_B, &w, Challenge([2; 16])).await;
    assert_error(&refused, 403, "no_delegation");
    assert!(refused.text().contains("prefix"), "{}", refused.text());

    // One for any card under B0, shorter-lived: item B uses it, item A still the card's own.
    let any_card = delegation(&w, &w.pki.issuer, |d| {
        d.card_id = None;
        d.item_prefix = ItemPrefix::new(&[]).unwrap();
        d.not_after = UnixTime(NOW.0 + 1800);
    });
    server.clock.set(UnixTime(NOW.0 + 1));
    assert_eq!(keep(&server, &any_card, Some(&bearer)).await.status, 201);
    server.clock.set(NOW);
    let listed = server.get("/v1/delegations").await.json();
    let digests: Vec<&str> = listed["delegations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        [
            hex::encode(for_card.digest().0),
            hex::encode(any_card.digest().0)
        ]
    );
    assert!(
        listed["delegations"][1].get("card_id").is_none(),
        "{listed}"
    );
    let basis_of = |response: &ResponseForTests| {
        assert_eq!(response.status, 201, "{}", response.text());
        let sa = SignedObject::from_der(&hex_of(&response.json(), "sa")).unwrap();
        match sa.body_unverified::<protocol::Sa>().unwrap().basis {
            protocol::SaBasis::Delegation(d) => d,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        basis_of(&alone(&server, &ITEM_B, &w, Challenge([3; 16])).await),
        any_card
    );
    assert_eq!(
        basis_of(&alone(&server, &ITEM_A, &w, Challenge([4; 16])).await),
        for_card
    );

    // Past the any-card one's end only the card's own is left; past both, none.
    server.clock.set(UnixTime(NOW.0 + 1801));
    assert_error(
        &alone(&server, &ITEM_B, &w, Challenge([5; 16])).await,
        403,
        "no_delegation",
    );
    // Another issuer's delegation for any card counts while the card's issuer is unknown here,
    // not once a receipt showed the card's RC (the card would refuse another issuer's).
    let issuer_2 = second_issuer(&w.pki);
    let foreign = delegation(&w, &issuer_2, |d| {
        d.card_id = None;
        d.item_prefix = ItemPrefix::new(&[]).unwrap();
        d.not_after = UnixTime(NOW.0 + 7200);
    });
    assert_eq!(keep(&server, &foreign, Some(&bearer)).await.status, 201);
    assert_eq!(
        basis_of(&alone(&server, &ITEM_B, &w, Challenge([8; 16])).await),
        foreign
    );
    let recorded = server
        .post(
            "/v1/receipts",
            &json!({
                "receipt": hex::encode(receipt.to_der()),
                "rc": hex::encode(rc.der()),
                "irc": hex::encode(w.pki.issuer.cert.der()),
            }),
            None,
        )
        .await;
    assert_eq!(recorded.status, 201, "{}", recorded.text());
    assert_error(
        &alone(&server, &ITEM_B, &w, Challenge([9; 16])).await,
        403,
        "no_delegation",
    );
    server.clock.set(UnixTime(NOW.0 + 3601));
    assert_error(
        &alone(&server, &ITEM_A, &w, Challenge([6; 16])).await,
        403,
        "no_delegation",
    );
    server.clock.set(NOW);

    // The issuer's IRC revoked since: its kept delegations no longer count.
    server
        .app
        .provider
        .set_crls(vec![w.pki.issuer_registrar_crl(&[w
            .pki
            .issuer
            .cert
            .serial()])]);
    let refused = alone(&server, &ITEM_A, &w, Challenge([7; 16])).await;
    assert_error(&refused, 403, "no_delegation");
    assert!(refused.text().contains("revoked"), "{}", refused.text());
    server.app.provider.set_crls(Vec::new());

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn kept_delegations_sqlite() {
    kept_delegations(Backend::Sqlite).await;
}

#[tokio::test]
async fn kept_delegations_postgres() {
    kept_delegations(Backend::Postgres).await;
}
