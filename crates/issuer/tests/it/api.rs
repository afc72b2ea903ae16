//! The issuer's API on port 0 with a real card: personalisation from the issuer's record,
//! REG-2 through the issuer, STO-2 (provider SAR → issuer SA), STO-1 (issuer SAR → provider
//! SA), STO-3 (issuer delegation → provider SA), receipts into the view and a ledger that
//! `verify_ledger` accepts, and every refusal with its code. SQLite and PostgreSQL.

use std::collections::BTreeSet;

use pki::{CardId, UnixTime};
use protocol::{Challenge, Operation, PartyRole, Receipt, Sa, SaBasis, SignedObject};
use serde_json::json;
use testkit::world::World;

use crate::support::*;

const DATA: &[u8] = b"hello, card";

fn receipt_body(receipt: &SignedObject) -> serde_json::Value {
    json!({"receipt": hex::encode(receipt.to_der())})
}

async fn post_receipt(server: &Server, receipt: &SignedObject, status: u16) -> serde_json::Value {
    let r = server.post("/v1/receipts", &receipt_body(receipt)).await;
    assert_eq!(r.status, status, "{}", r.text());
    r.json()
}

/// Posts the card's signed listing to the issuer's reconciliation.
async fn reconcile(
    server: &Server,
    c: &mut testkit::world::TestClient,
    card_id: &CardId,
) -> serde_json::Value {
    let listing = c.listing(b"reconcile").unwrap();
    let r = server
        .post(
            &format!("/v1/cards/{}/reconcile", card_id.to_hex()),
            &json!({"listing": hex::encode(listing.to_der()), "nonce": hex::encode(b"reconcile")}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// The provider's SA over an issuer-signed SAR (STO-1) or delegation (STO-3).
fn provider_sa(
    w: &World,
    basis: SaBasis,
    sdi: &protocol::Sdi,
    challenge: Challenge,
) -> SignedObject {
    let p = &w.pki.provider;
    Sa::new(
        basis,
        PartyRole::Provider,
        p.id.clone(),
        sdi.clone(),
        challenge,
        NOW,
        UnixTime(NOW.0 + 600),
    )
    .sign(&p.key, vec![p.cert.der().to_vec()])
}

async fn every_flow(backend: Backend) {
    let Some(place) = Place::new(backend, "issuer_every_flow").await else {
        return;
    };
    let w = World::new(31);
    let server = Server::start(&place, &w.pki).await;
    let provider = w.pki.provider.id.clone();
    let stub = StubProvider::start(&w.pki.provider, &w.pki, &server.clock, place.dir.path()).await;
    server
        .allow_at(provider.as_str(), 1000, Some(&stub.url))
        .await;

    // CARD-3: a blank card personalised from the issuer's record; REG-2 through the issuer.
    let (mut c, card_id) = personalised_card(&server, &w).await;
    let card_path = format!("/v1/cards/{}", card_id.to_hex());
    assert_eq!(
        server.get(&card_path).await.json()["status"],
        "personalised"
    );
    let (rc, registration) = register(&server, &w, &mut c, &card_id).await;
    assert_eq!(rc.card_id(), Some(card_id));
    let card = server.get(&card_path).await.json();
    assert_eq!(card["status"], "registered");
    assert_eq!(card["registration"]["rc"], hex::encode(rc.der()));
    // The same registration again: its challenge is spent.
    let replay = server
        .post(
            &format!("{card_path}/registration"),
            &json!({"registration": hex::encode(registration.to_der())}),
        )
        .await;
    assert_error(&replay, 409, "challenge_spent");

    // STO-2: the provider's SAR over the card's challenge; the issuer's SA; the card stores.
    let stored = sdi(card_id, Operation::Store, b"item-a", DATA, &provider);
    let ch = Challenge(c.get_challenge().unwrap());
    let sar = provider_sar(&w, &stored, ch, &rc);
    let granted = grant_as(&server, &w.pki.provider, &sar).await.unwrap();
    let sa = granted.sa_object().unwrap();
    assert_eq!(granted.not_after, NOW.0 + 600);
    let receipt_1 = c.store(&sa, None, DATA).unwrap();
    // The SAR again: single-use at the issuer as on the card.
    assert_refused(
        grant_as(&server, &w.pki.provider, &sar).await,
        409,
        "authorization_replayed",
    );
    let recorded = post_receipt(&server, &receipt_1, 201).await;
    assert_eq!(
        (recorded["seq"].as_u64(), recorded["counter"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(recorded["in_sync"], true);
    // Idempotent: the same receipt returns the same entry, 200.
    let repeated = post_receipt(&server, &receipt_1, 200).await;
    assert_eq!(repeated["entry"], recorded["entry"]);
    assert_eq!(repeated["newly_recorded"], false);

    // STO-1: the issuer's SAR, forwarded to the provider, whose SA comes back with it.
    let via_issuer = sdi(card_id, Operation::Store, b"item-b", b"bee", &provider);
    let ch = Challenge(c.get_challenge().unwrap());
    let r = server
        .post(
            "/v1/authorizations/request",
            &json!({
                "card_id": card_id.to_hex(),
                "sdi": hex::encode(via_issuer.to_der()),
                "challenge": hex::encode(ch.0),
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let sa = object_of(&r.json(), "sa");
    let receipt_2 = c.store(&sa, None, b"bee").unwrap();

    // STO-3: the issuer's delegation; the provider authorizes alone.
    let r = server
        .operate(
            "POST",
            "/v1/delegations",
            &json!({
                "provider": provider.as_str(),
                "provider_certificate": hex::encode(w.pki.provider.cert.der()),
                "operations": ["store", "delete"],
                "item_prefix": hex::encode(b"item-"),
                "max_item_size": 64,
                "card_id": card_id.to_hex(),
            }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let delegation = object_of(&r.json(), "delegation");
    let alone = sdi(card_id, Operation::Store, b"item-c", b"sea", &provider);
    let ch = Challenge(c.get_challenge().unwrap());
    let sa = provider_sa(&w, SaBasis::Delegation(delegation), &alone, ch);
    let receipt_3 = c.store(&sa, None, b"sea").unwrap();

    // Receipt 3 before 2: a gap, and nothing recorded.
    let gap = server
        .post(
            "/v1/receipts",
            &json!({"receipt": hex::encode(receipt_3.to_der()), "sdi": hex::encode(alone.to_der())}),
        )
        .await;
    assert_error(&gap, 409, "receipt_gap");
    // The card's signed listing shows what the issuer missed.
    let drift = reconcile(&server, &mut c, &card_id).await;
    assert_eq!(drift["in_sync"], false);
    assert_eq!(
        (
            drift["card_counter"].as_u64(),
            drift["issuer_counter"].as_u64()
        ),
        (Some(3), Some(1))
    );
    let missed: Vec<&str> = drift["only_on_card"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap())
        .collect();
    assert_eq!(missed, [hex::encode(b"item-b"), hex::encode(b"item-c")]);
    assert_eq!(drift["only_in_view"].as_array().unwrap().len(), 0);
    post_receipt(&server, &receipt_2, 201).await;
    // STO-3's SDI was never authorized here: it must come with the receipt.
    let unknown = server.post("/v1/receipts", &receipt_body(&receipt_3)).await;
    assert_error(&unknown, 404, "unknown_sdi");
    let r = server
        .post(
            "/v1/receipts",
            &json!({"receipt": hex::encode(receipt_3.to_der()), "sdi": hex::encode(alone.to_der())}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // An older receipt after a newer one is out of order only if it is not the same receipt.
    assert_eq!(post_receipt(&server, &receipt_1, 200).await["seq"], 0);

    // STO-6 on STO-2: delete item-a.
    let delete = sdi(card_id, Operation::Delete, b"item-a", DATA, &provider);
    let ch = Challenge(c.get_challenge().unwrap());
    let sar = provider_sar(&w, &delete, ch, &rc);
    let granted = grant_as(&server, &w.pki.provider, &sar).await.unwrap();
    let sa = granted.sa_object().unwrap();
    let receipt_4 = c.delete(&sa).unwrap();
    let last = post_receipt(&server, &receipt_4, 201).await;
    assert_eq!(last["in_sync"], true);

    // The view equals the card's signed listing.
    let contents = server.get(&format!("{card_path}/contents")).await;
    assert_eq!(contents.status, 200, "{}", contents.text());
    let contents = contents.json();
    let items: BTreeSet<String> = contents["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        items,
        BTreeSet::from([hex::encode(b"item-b"), hex::encode(b"item-c")])
    );
    let listing = protocol::verify_listing(
        &c.listing(b"n").unwrap(),
        &rc,
        &protocol::Nonce::new(b"n").unwrap(),
    )
    .unwrap();
    assert_eq!(
        contents["view_digest"],
        hex::encode(listing.contents.digest().0)
    );
    assert_eq!(contents["last_counter"], listing.counter);

    assert_eq!(reconcile(&server, &mut c, &card_id).await["in_sync"], true);

    // The ledger verifies under the issuer's key and the card's RC.
    let summary = verified_ledger(&server, &card_id, &w, &rc).await;
    assert_eq!((summary.entries, summary.last_counter), (4, 4));

    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("issuer_receipts_ingested_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("issuer_authorizations_signed_total 3"),
        "{metrics}"
    );

    stub.stop().await;
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn every_flow_sqlite() {
    every_flow(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_flow_postgres() {
    every_flow(Backend::Postgres).await;
}

#[tokio::test]
async fn refusals_carry_their_codes() {
    let place = Place::new(Backend::Sqlite, "issuer_refusals")
        .await
        .unwrap();
    let w = World::new(32);
    let server = Server::start(&place, &w.pki).await;
    let provider = w.pki.provider.id.clone();

    // Operators only.
    let r = server.post("/v1/cards", &json!({"pin": "1234"})).await;
    assert_error(&r, 401, "unauthenticated");
    let r = server
        .operate("POST", "/v1/cards", &json!({"pin": "12a4"}))
        .await;
    assert_error(&r, 400, "invalid_pin");
    let r = server
        .operate(
            "PUT",
            "/v1/providers/provider-1",
            &json!({"status": "maybe", "quota_bytes": 1}),
        )
        .await;
    assert_error(&r, 400, "invalid_status");

    // Unknown and malformed cards.
    let stranger = CardId([0x42; 16]).to_hex();
    let r = server
        .post(&format!("/v1/cards/{stranger}/challenge"), &json!({}))
        .await;
    assert_error(&r, 404, "unknown_card");
    assert_error(
        &server.get(&format!("/v1/cards/{stranger}")).await,
        404,
        "unknown_card",
    );
    assert_error(
        &server.get("/v1/cards/xyz/ledger").await,
        400,
        "invalid_card_id",
    );

    let (mut c, card_id) = personalised_card(&server, &w).await;
    let card_path = format!("/v1/cards/{}", card_id.to_hex());
    assert_error(
        &server.get(&format!("{card_path}/contents")).await,
        409,
        "card_not_registered",
    );

    // A registration answering no challenge of ours.
    let registration = c.register(&w.user, &[0x77; 16]).unwrap();
    let r = server
        .post(
            &format!("{card_path}/registration"),
            &json!({"registration": hex::encode(registration.to_der())}),
        )
        .await;
    assert_error(&r, 404, "unknown_challenge");
    let r = server
        .post(
            &format!("{card_path}/registration"),
            &json!({"registration": "zz"}),
        )
        .await;
    assert_error(&r, 400, "invalid_registration");
    // An expired challenge.
    let r = server
        .post(&format!("{card_path}/challenge"), &json!({}))
        .await;
    let challenge: [u8; 16] = bytes_of(&r.json(), "challenge").try_into().unwrap();
    let registration = c.register(&w.user, &challenge).unwrap();
    server.clock.advance(601);
    let r = server
        .post(
            &format!("{card_path}/registration"),
            &json!({"registration": hex::encode(registration.to_der())}),
        )
        .await;
    assert_error(&r, 409, "challenge_expired");
    server.clock.set(NOW);
    // A challenge issued for another card.
    let (_, other_card) = personalised_card(&server, &w).await;
    let r = server
        .post(
            &format!("/v1/cards/{}/challenge", other_card.to_hex()),
            &json!({}),
        )
        .await;
    let challenge: [u8; 16] = bytes_of(&r.json(), "challenge").try_into().unwrap();
    let registration = c.register(&w.user, &challenge).unwrap();
    let r = server
        .post(
            &format!("{card_path}/registration"),
            &json!({"registration": hex::encode(registration.to_der())}),
        )
        .await;
    assert_error(&r, 422, "card_mismatch");

    let (rc, _) = register(&server, &w, &mut c, &card_id).await;
    let r = server
        .post(&format!("{card_path}/challenge"), &json!({}))
        .await;
    assert_error(&r, 409, "already_registered");

    // Grants: provider not allowed, then over quota, wrong RC, expired, issuer-signed SAR.
    let item = sdi(card_id, Operation::Store, b"item", DATA, &provider);
    let ch = Challenge(c.get_challenge().unwrap());
    // Sent by provider-1 unless said otherwise.
    let grant = |sar: SignedObject| {
        let server = &server;
        let w = &w;
        async move { grant_as(server, &w.pki.provider, &sar).await }
    };
    assert_refused(
        grant(provider_sar(&w, &item, ch, &rc)).await,
        403,
        "provider_not_allowed",
    );
    server.allow(provider.as_str(), 4).await;
    assert_refused(
        grant(provider_sar(&w, &item, ch, &rc)).await,
        409,
        "quota_exceeded",
    );
    server.allow(provider.as_str(), 1000).await;
    let other_rc = w
        .pki
        .issue_card_rc(card_id, w.pki.provider.public_key(), crypto::sha256(b"x"));
    assert_refused(
        grant(provider_sar(&w, &item, ch, &other_rc)).await,
        422,
        "rc_mismatch",
    );
    // An hour later the SAR has expired (the party request is signed at that time too).
    server.clock.advance(3600);
    assert_refused(
        grant(provider_sar(&w, &item, ch, &rc)).await,
        422,
        "authorization_expired",
    );
    server.clock.set(NOW);
    let by_rogue = {
        let p = &w.pki.rogue_provider;
        let mut rogue_item = item.clone();
        rogue_item.owner = p.id.clone();
        sar_of(p, &p.key, &rogue_item, ch, &rc)
    };
    assert_refused(grant(by_rogue).await, 422, "untrusted_signer");
    let not_a_sar = w.delegation(&w.pki.provider, b"", 10);
    assert_refused(grant(not_a_sar).await, 422, "wrong_purpose");
    // provider-2 asking to store provider-1's item.
    let by_other = sar_of(&w.pki.provider_2, &w.pki.provider_2.key, &item, ch, &rc);
    assert_refused(
        grant_as(&server, &w.pki.provider_2, &by_other).await,
        422,
        "invalid_sar",
    );
    // Signed with another key than its DPR certifies.
    let forged = sar_of(&w.pki.provider, &w.pki.provider_2.key, &item, ch, &rc);
    assert_refused(grant(forged).await, 422, "untrusted_signer");
    let signer = provider_signer(&w.pki.provider);
    let audience = w.pki.issuer.id.clone();
    let party = party_api::Auth::Party {
        signer: &signer,
        audience: &audience,
        now: NOW,
    };
    let r: Result<serde_json::Value, _> = server
        .client
        .http()
        .call(
            party_api::Method::Post,
            "/v1/authorizations/grant",
            Some(&json!({"sar": "00"})),
            party,
        )
        .await;
    assert_refused(r, 400, "invalid_sar");
    let r: Result<serde_json::Value, _> = server
        .client
        .http()
        .call(
            party_api::Method::Post,
            "/v1/authorizations/grant",
            Some(&json!({"sar": 1})),
            party,
        )
        .await;
    assert_refused(r, 400, "invalid_body");

    // STO-1 requests: SDI for another card, bad challenge.
    let elsewhere = sdi(CardId([1; 16]), Operation::Store, b"item", DATA, &provider);
    let r = server
        .post(
            "/v1/authorizations/request",
            &json!({"card_id": card_id.to_hex(), "sdi": hex::encode(elsewhere.to_der()), "challenge": hex::encode(ch.0)}),
        )
        .await;
    assert_error(&r, 400, "card_mismatch");
    let r = server
        .post(
            "/v1/authorizations/request",
            &json!({"card_id": card_id.to_hex(), "sdi": hex::encode(item.to_der()), "challenge": "00"}),
        )
        .await;
    assert_error(&r, 400, "invalid_challenge");

    // Delegations: a certificate that is not the provider's, a blocked provider.
    let r = server
        .operate(
            "POST",
            "/v1/delegations",
            &json!({"provider": "provider-1", "provider_certificate": hex::encode(w.pki.provider_2.cert.der()),
                    "operations": ["store"], "max_item_size": 10}),
        )
        .await;
    assert_error(&r, 422, "invalid_provider_certificate");
    let r = server
        .operate(
            "POST",
            "/v1/delegations",
            &json!({"provider": "provider-1", "provider_certificate": "3000",
                    "operations": ["store"], "max_item_size": 10}),
        )
        .await;
    assert_error(&r, 400, "invalid_provider_certificate");
    let r = server
        .operate(
            "POST",
            "/v1/delegations",
            &json!({"provider": "provider-2", "provider_certificate": hex::encode(w.pki.provider_2.cert.der()),
                    "operations": ["store"], "max_item_size": 10}),
        )
        .await;
    assert_error(&r, 403, "provider_not_allowed");

    // A listing answering another nonce.
    let listing = c.listing(b"old").unwrap();
    let r = server
        .post(
            &format!("{card_path}/reconcile"),
            &json!({"listing": hex::encode(listing.to_der()), "nonce": hex::encode(b"new")}),
        )
        .await;
    assert_error(&r, 422, "invalid_listing");

    // Receipts: not the card's signature.
    let forged = Receipt {
        card_id,
        counter: 1,
        operation: Operation::Store,
        item_id: protocol::ItemId::new(b"item").unwrap(),
        sdi_digest: item.digest(),
        authorization_digest: crypto::sha256(b"sa"),
        result: protocol::ReceiptResult::Stored,
        listing_digest: crypto::sha256(b"listing"),
    }
    .sign(&w.pki.provider.key);
    let r = server.post("/v1/receipts", &receipt_body(&forged)).await;
    assert_error(&r, 422, "invalid_receipt");
    let r = server
        .post(
            "/v1/receipts",
            &json!({"receipt": hex::encode(listing.to_der())}),
        )
        .await;
    assert_error(&r, 400, "invalid_receipt");

    server.stop().await;
    place.finish().await;
}

/// SEC-3 on STO-2: only the provider that signed the SAR, authenticated by its party request,
/// gets the SA.
#[tokio::test]
async fn grant_answers_only_the_sars_requester() {
    let place = Place::new(Backend::Sqlite, "issuer_grant_auth")
        .await
        .unwrap();
    let w = World::new(38);
    let server = Server::start(&place, &w.pki).await;
    let provider = w.pki.provider.id.clone();
    server.allow(provider.as_str(), 1000).await;
    let (mut c, card_id) = personalised_card(&server, &w).await;
    let (rc, _) = register(&server, &w, &mut c, &card_id).await;
    let item = sdi(card_id, Operation::Store, b"item", DATA, &provider);
    let sar = provider_sar(&w, &item, Challenge(c.get_challenge().unwrap()), &rc);
    let body = json!({"sar": hex::encode(sar.to_der())}).to_string();

    // No Cardwright-Request header.
    let r = server
        .send_json_raw("/v1/authorizations/grant", body.as_bytes(), &[])
        .await;
    assert_error(&r, 401, "unauthenticated");
    // Another provider, and the issuer itself, passing provider-1's SAR on.
    assert_refused(
        grant_as(&server, &w.pki.provider_2, &sar).await,
        403,
        "caller_not_requester",
    );
    let issuer_signer = party_api::PartySigner::new(
        w.pki.issuer.id.clone(),
        PartyRole::Issuer,
        w.pki.issuer.key.clone(),
        w.pki.issuer.cert.clone(),
    );
    let audience = w.pki.issuer.id.clone();
    let r: Result<serde_json::Value, _> = server
        .client
        .http()
        .call(
            party_api::Method::Post,
            "/v1/authorizations/grant",
            Some(&json!({"sar": hex::encode(sar.to_der())})),
            party_api::Auth::Party {
                signer: &issuer_signer,
                audience: &audience,
                now: NOW,
            },
        )
        .await;
    assert_refused(r, 403, "caller_not_requester");
    // Signed for another audience.
    let elsewhere = w.pki.provider_2.id.clone();
    let r: Result<serde_json::Value, _> = server
        .client
        .http()
        .call(
            party_api::Method::Post,
            "/v1/authorizations/grant",
            Some(&json!({"sar": hex::encode(sar.to_der())})),
            party_api::Auth::Party {
                signer: &provider_signer(&w.pki.provider),
                audience: &elsewhere,
                now: NOW,
            },
        )
        .await;
    assert_refused(r, 401, "unauthenticated");

    // provider-1's own request: 201; the very same request again: replayed.
    let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(38);
    let header = provider_signer(&w.pki.provider)
        .sign_request(
            "POST",
            "/v1/authorizations/grant",
            body.as_bytes(),
            &audience,
            NOW,
            &mut rng,
        )
        .unwrap();
    let headers = [(party_api::PARTY_REQUEST_HEADER, header.as_str())];
    let r = server
        .send_json_raw("/v1/authorizations/grant", body.as_bytes(), &headers)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let sa = object_of(&r.json(), "sa");
    c.store(&sa, None, DATA).unwrap();
    let r = server
        .send_json_raw("/v1/authorizations/grant", body.as_bytes(), &headers)
        .await;
    assert_error(&r, 401, "request_replayed");
    // Six minutes later the same header is stale.
    server.clock.advance(360);
    let r = server
        .send_json_raw("/v1/authorizations/grant", body.as_bytes(), &headers)
        .await;
    assert_error(&r, 401, "request_stale");

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn openapi_lists_every_route_and_nothing_else() {
    let place = Place::new(Backend::Sqlite, "issuer_openapi").await.unwrap();
    let w = World::new(33);
    let server = Server::start(&place, &w.pki).await;
    let doc = server.get("/openapi.json").await.json();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served: BTreeSet<(String, String)> = issuer::routes()
        .into_iter()
        .map(|(m, p)| (m, p.to_string()))
        .collect();
    assert_eq!(documented, served);
    // Every 4xx lists its codes.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') || status == "502" {
                    assert!(
                        response["x-error-codes"]
                            .as_array()
                            .is_some_and(|c| !c.is_empty()),
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert_eq!(server.get("/health").await.json()["status"], "ok");
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn sk_is_stored_wrapped_under_the_issuer_key() {
    let place = Place::new(Backend::Sqlite, "issuer_sk").await.unwrap();
    let w = World::new(35);
    let server = Server::start(&place, &w.pki).await;
    let r = server
        .operate("POST", "/v1/cards", &json!({"pin": "2468"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let record = r.json();
    let sk = bytes_of(&record, "sk");
    let card_id = CardId::from_slice(&bytes_of(&record, "card_id")).unwrap();
    let store = issuer::SqlStore::open(server.app.db.clone()).await.unwrap();
    let stored = issuer::Store::card(&store, &card_id)
        .await
        .unwrap()
        .unwrap();
    assert!(!stored
        .sk_wrapped
        .windows(sk.len())
        .any(|w| w == sk.as_slice()));
    let unwrapped = server
        .app
        .issuer
        .sk_wrapping()
        .unwrap(&card_id, stored.sk_version, &stored.sk_wrapped)
        .unwrap();
    assert_eq!(unwrapped.expose_bytes().as_slice(), sk.as_slice());
    // Bound to its card: another card ID does not open it.
    assert!(server
        .app
        .issuer
        .sk_wrapping()
        .unwrap(&CardId([0; 16]), stored.sk_version, &stored.sk_wrapped)
        .is_err());
    // The PIN is not stored; the defaults were applied.
    assert_eq!((stored.pin_try_limit, stored.capacity), (3, 32 * 1024));
    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn a_key_the_irc_does_not_certify_is_refused_at_start() {
    let place = Place::new(Backend::Sqlite, "issuer_wrong_key")
        .await
        .unwrap();
    let w = World::new(36);
    let clock = server_kit::ManualClock::new(NOW);
    let mut config = place.config(&w.pki, &clock);
    std::fs::write(
        &config.key_file,
        w.pki.provider.key.to_pkcs8_pem().as_bytes(),
    )
    .unwrap();
    let err = issuer::open(&config).await.unwrap_err();
    assert!(format!("{err:#}").contains("another key"), "{err:#}");
    config.key_file = place.dir.path().join("absent.pem");
    let err = issuer::open(&config).await.unwrap_err();
    assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
    assert!(!config.key_file.exists(), "no key is generated");
    place.finish().await;
}

#[tokio::test]
async fn revoked_certificates_are_refused() {
    let place = Place::new(Backend::Sqlite, "issuer_crls").await.unwrap();
    let w = World::new(37);
    let crl_file = |name: &str, crl: pki::Crl| {
        let path = place.dir.path().join(name);
        std::fs::write(&path, crl.to_pem()).unwrap();
        path
    };
    // The issuer's own IRC revoked: it does not start.
    let clock = server_kit::ManualClock::new(NOW);
    let mut config = place.config(&w.pki, &clock);
    config.crl_files = vec![crl_file("ir.pem", w.pki.issuer_registrar_crl(&[10]))];
    let err = issuer::open(&config).await.unwrap_err();
    assert!(format!("{err:#}").contains("revoked"), "{err:#}");

    // provider-1's DPR revoked: no grant, no delegation.
    let revoking = crl_file("dr.pem", w.pki.crl_revoking_provider(20));
    let server = Server::start_with(&place, &w.pki, "olga", |config| {
        config.crl_files = vec![revoking];
    })
    .await;
    let provider = w.pki.provider.id.clone();
    server.allow(provider.as_str(), 1000).await;
    let (mut c, card_id) = personalised_card(&server, &w).await;
    let (rc, _) = register(&server, &w, &mut c, &card_id).await;
    let item = sdi(card_id, Operation::Store, b"item", DATA, &provider);
    let sar = provider_sar(&w, &item, Challenge(c.get_challenge().unwrap()), &rc);
    // Its party requests are refused before anything else...
    let refused = grant_as(&server, &w.pki.provider, &sar).await.unwrap_err();
    assert_eq!(refused.code(), Some("unauthenticated"), "{refused}");
    assert!(refused.to_string().contains("revoked"), "{refused}");
    // ...and its SAR, whoever passes it on.
    let caller = issuer::Caller {
        role: PartyRole::Provider,
        party: provider.clone(),
    };
    let err = server.app.issuer.grant(&sar, &caller).await.unwrap_err();
    let api = server_kit::ApiError::from(err);
    assert_eq!((api.status.as_u16(), api.code), (422, "untrusted_signer"));
    assert!(api.message.contains("revoked"), "{}", api.message);
    let r = server
        .operate(
            "POST",
            "/v1/delegations",
            &json!({"provider": "provider-1", "provider_certificate": hex::encode(w.pki.provider.cert.der()),
                    "operations": ["store"], "max_item_size": 10}),
        )
        .await;
    assert_error(&r, 422, "untrusted_signer");
    server.stop().await;
    place.finish().await;
}
