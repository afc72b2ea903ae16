//! The HTTP API on port 0 with a real card: every STO path the provider takes part in (STO-1
//! grant, STO-2 request, STO-3 alone, STO-4 certified data), receipts into contents and a
//! ledger that `protocol::verify_ledger` accepts, and the refusals with their codes.

use party_api::provider::{GrantRequest, SaResponse};
use party_api::{Auth, Method, PartySigner};
use pki::{Certificate, UnixTime};
use protocol::{verify_ledger, Challenge, Operation, PartyRole, Policy, Sar, Sdi, SignedObject};
use serde_json::json;
use testkit::test_pki::{TestParty, TestPki};
use testkit::world::{TestClient, World};

use crate::support::{
    assert_error, assert_refused, hex_of, issuer_signer, provider_signer, second_issuer, Backend,
    Place, Server,
};

const NOW: UnixTime = TestPki::NOW;

/// One change to an otherwise valid delegation.
type DelegationEdit<'a> = dyn Fn(&mut protocol::Delegation) + 'a;
const ITEM_A: [u8; 4] = [0xA0, 0x00, 0x00, 0x01];
const ITEM_B: [u8; 4] = [0xA0, 0x00, 0x00, 0x02];
const ITEM_C: [u8; 4] = [0xB0, 0x00, 0x00, 0x03];
const DATA_A: &[u8] = b"provider item A, version 1";
const DATA_B: &[u8] = b"provider item B: certified";
const DATA_C: &[u8] = b"provider item C, requested by the provider";

async fn publish(server: &Server, item: &[u8], data: &[u8], policy: Policy) -> serde_json::Value {
    let response = server
        .post(
            "/v1/items",
            &json!({"item_id": hex::encode(item), "version": 1, "data": hex::encode(data), "policy": policy.bits()}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    response.json()
}

fn challenge(c: &mut TestClient) -> Challenge {
    Challenge(c.get_challenge().expect("challenge"))
}

/// The issuer's SAR (STO-1) for `sdi`, signed by `issuer` with its IRC.
fn issuer_sar(issuer: &TestParty, sdi: &Sdi, ch: Challenge, rc: &Certificate) -> SignedObject {
    Sar {
        requester_role: PartyRole::Issuer,
        requester: issuer.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi.clone(),
        challenge: ch,
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(&issuer.key, vec![issuer.cert.der().to_vec()])
}

/// `POST /v1/authorizations/grant {sar}` as a party request of the world's issuer.
async fn post_grant(server: &Server, sar: &SignedObject) -> server_kit::testing::ResponseForTests {
    server
        .post_party(
            "/v1/authorizations/grant",
            &json!({"sar": hex::encode(sar.to_der())}),
            &server.issuer,
        )
        .await
}

/// The signed object in field `field` (`sa` or `sar`) of a 201 answer, whose `not_after` is
/// the object's.
fn object_of(response: &server_kit::testing::ResponseForTests, field: &str) -> SignedObject {
    assert_eq!(response.status, 201, "{}", response.text());
    let body = response.json();
    assert_eq!(body["not_after"], NOW.0 + 600, "{body}");
    SignedObject::from_der(&hex_of(&body, field)).unwrap()
}

async fn post_receipt(
    server: &Server,
    w: &World,
    receipt: &SignedObject,
    rc: &Certificate,
) -> server_kit::testing::ResponseForTests {
    server
        .post(
            "/v1/receipts",
            &json!({
                "receipt": hex::encode(receipt.to_der()),
                "rc": hex::encode(rc.der()),
                "irc": hex::encode(w.pki.issuer.cert.der()),
            }),
            None,
        )
        .await
}

/// STO-1, STO-4, STO-3 and STO-2 on one real card, each receipt recorded; contents, members
/// and the ledger agree with the card.
async fn every_path(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_paths").await else {
        return;
    };
    let w = World::new(31);
    let (server, issuer) = Server::start_with_stub_issuer(&place, &w).await;
    let (mut c, rc) = w.registered();
    let card = w.card_id.to_hex();

    // Catalog.
    let a = publish(&server, &ITEM_A, DATA_A, Policy::NONE).await;
    assert_eq!(a["size"], DATA_A.len());
    assert_eq!(a["data_digest"], hex::encode(crypto::sha256(DATA_A).0));
    assert_eq!(a["published_at"], NOW.0);
    publish(&server, &ITEM_B, DATA_B, Policy::CERTIFIED_DATA_REQUIRED).await;
    publish(&server, &ITEM_C, DATA_C, Policy::NONE).await;
    let again = server
        .post(
            "/v1/items",
            &json!({"item_id": hex::encode(ITEM_A), "version": 1, "data": hex::encode(DATA_A)}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), a);
    let changed = server
        .post(
            "/v1/items",
            &json!({"item_id": hex::encode(ITEM_A), "version": 1, "data": "00"}),
            Some(&server.bearer()),
        )
        .await;
    assert_error(&changed, 409, "item_version_exists");
    let listed = server.get("/v1/items").await.json();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        server
            .get(&format!("/v1/items/{}", hex::encode(ITEM_A)))
            .await
            .json(),
        a
    );
    assert_error(&server.get("/v1/items/ff").await, 404, "unknown_item");

    // The data is only for cards this provider consented to.
    let data_path = format!("/v1/items/{}/data?card={card}", hex::encode(ITEM_A));
    assert_error(&server.get(&data_path).await, 403, "card_not_authorized");

    // STO-1: the issuer's SAR, the provider's SA; single-use.
    let sdi_a = w.sdi(Operation::Store, &ITEM_A, 1, DATA_A);
    let sar = issuer_sar(&w.pki.issuer, &sdi_a, challenge(&mut c), &rc);
    let sa = object_of(&post_grant(&server, &sar).await, "sa");
    assert_error(
        &post_grant(&server, &sar).await,
        409,
        "authorization_replayed",
    );
    let served = server.get(&data_path).await;
    assert_eq!(served.status, 200, "{}", served.text());
    assert_eq!(hex_of(&served.json(), "data"), DATA_A);
    let receipt_a = c
        .store(&sa, None, DATA_A)
        .expect("the card accepts the provider's SA");

    // STO-4: certified data, required by item B's policy, accepted by the card.
    let sdi_b = w.sdi_with(
        Operation::Store,
        &ITEM_B,
        1,
        DATA_B,
        &w.pki.provider.id,
        Policy::CERTIFIED_DATA_REQUIRED,
    );
    let sar = issuer_sar(&w.pki.issuer, &sdi_b, challenge(&mut c), &rc);
    let sa = object_of(&post_grant(&server, &sar).await, "sa");
    let certified = server
        .get(&format!(
            "/v1/items/{}/certified?card={card}&sdi={}",
            hex::encode(ITEM_B),
            hex::encode(sdi_b.to_der())
        ))
        .await;
    assert_eq!(certified.status, 200, "{}", certified.text());
    let certified = certified.json();
    assert_eq!(hex_of(&certified, "data"), DATA_B);
    let sdci = SignedObject::from_der(&hex_of(&certified, "sdci")).unwrap();
    let receipt_b = c
        .store(&sa, Some(&sdci), DATA_B)
        .expect("the card accepts the SDCI");
    let certified_by = |by: &str| {
        format!(
            "/v1/items/{}/certified?card={card}&sdi={}&by={by}",
            hex::encode(ITEM_B),
            hex::encode(sdi_b.to_der())
        )
    };
    let by_provider = server.get(&certified_by("provider")).await;
    assert_eq!(by_provider.status, 200, "{}", by_provider.text());
    assert_eq!(hex_of(&by_provider.json(), "sdci"), sdci.to_der());
    assert_error(
        &server.get(&certified_by("the-moon")).await,
        400,
        "invalid_query",
    );
    assert_error(
        &server.get(&certified_by("data-registrar")).await,
        409,
        "no_data_registrar",
    );

    // Receipts: out of order is refused, repeats are idempotent.
    let first = post_receipt(&server, &w, &receipt_b, &rc).await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.json()["seq"], 0);
    assert_error(
        &post_receipt(&server, &w, &receipt_a, &rc).await,
        409,
        "counter_not_increasing",
    );
    let repeat = post_receipt(&server, &w, &receipt_b, &rc).await;
    assert_eq!(repeat.status, 200, "{}", repeat.text());
    assert_eq!(repeat.json()["newly_recorded"], false);
    assert_eq!(repeat.json()["entry"], first.json()["entry"]);

    // STO-3: the provider alone under the issuer's delegation for prefix A0.
    let sdi_a2 = w.sdi(Operation::Delete, &ITEM_A, 1, DATA_A);
    let ch = challenge(&mut c);
    let delegation = w.delegation(&w.pki.provider, &[0xA0], 4096);
    let alone = |sdi: &Sdi, delegation: &SignedObject, ch: Challenge| {
        json!({
            "delegation": hex::encode(delegation.to_der()),
            "sdi": hex::encode(sdi.to_der()),
            "challenge": hex::encode(ch.0),
        })
    };
    let outside = w.delegation(&w.pki.provider, &[0xB0], 4096);
    assert_error(
        &server
            .post(
                "/v1/authorizations/alone",
                &alone(&sdi_a2, &outside, ch),
                None,
            )
            .await,
        422,
        "delegation_refused",
    );
    let sa = object_of(
        &server
            .post(
                "/v1/authorizations/alone",
                &alone(&sdi_a2, &delegation, ch),
                None,
            )
            .await,
        "sa",
    );
    let receipt_delete = c.delete(&sa).expect("the card accepts the lone SA");

    // STO-2: the provider's SAR, the issuer's SA (from the stub issuer, see forwarding.rs).
    let sdi_c = w.sdi(Operation::Store, &ITEM_C, 1, DATA_C);
    let ch = challenge(&mut c);
    let sa = object_of(
        &server
            .post(
                "/v1/authorizations/request",
                &json!({
                    "card_id": card,
                    "rc_digest": hex::encode(rc.digest().0),
                    "sdi": hex::encode(sdi_c.to_der()),
                    "challenge": hex::encode(ch.0),
                    "issuer": w.pki.issuer.id.as_str(),
                }),
                None,
            )
            .await,
        "sa",
    );
    let receipt_c = c.store(&sa, None, DATA_C).expect("the card accepts STO-2");

    for receipt in [&receipt_delete, &receipt_c] {
        let response = post_receipt(&server, &w, receipt, &rc).await;
        assert_eq!(response.status, 201, "{}", response.text());
    }

    // The provider's view equals the card's listing of this provider's items.
    let contents = server.get(&format!("/v1/cards/{card}/contents")).await;
    assert_eq!(contents.status, 200, "{}", contents.text());
    let ids: Vec<String> = contents.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [hex::encode(ITEM_B), hex::encode(ITEM_C)]);
    let nonce = protocol::Nonce::new(b"provider check").unwrap();
    let listing =
        protocol::verify_listing(&c.listing(nonce.as_bytes()).unwrap(), &rc, &nonce).unwrap();
    let on_card: Vec<String> = listing
        .contents
        .items()
        .iter()
        .filter(|i| i.owner == w.pki.provider.id)
        .map(|i| hex::encode(i.item_id.as_bytes()))
        .collect();
    assert_eq!(ids, on_card);

    // The ledger verifies under the provider's key and the card's RC.
    let ledger = server.get(&format!("/v1/cards/{card}/ledger")).await;
    assert_eq!(ledger.status, 200, "{}", ledger.text());
    let ledger = ledger.json();
    assert_eq!(hex_of(&ledger, "rc"), rc.der());
    let entries: Vec<SignedObject> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| SignedObject::from_der(&hex_of(e, "entry")).unwrap())
        .collect();
    let summary = verify_ledger(&entries, &w.pki.provider.public_key(), &rc).unwrap();
    assert_eq!(summary.entries, 3);
    assert_eq!(summary.last_counter, listing.counter);

    let members = server
        .get(&format!("/v1/members?item={}", hex::encode(ITEM_C)))
        .await
        .json();
    assert_eq!(members["cards"], json!([{"card_id": card, "version": 1}]));
    let members = server
        .get(&format!("/v1/members?item={}", hex::encode(ITEM_A)))
        .await
        .json();
    assert_eq!(members["cards"], json!([]));

    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("provider_authorizations_signed_total 4"),
        "{metrics}"
    );
    assert!(
        metrics.contains("provider_receipts_recorded_total 3"),
        "{metrics}"
    );

    server.stop().await;
    issuer.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn every_path_sqlite() {
    every_path(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_path_postgres() {
    every_path(Backend::Postgres).await;
}

/// Refusals with their codes: an SDI that does not match the catalog, a rogue issuer's SAR, a
/// provider's SAR offered for granting, operator tokens missing or wrong, malformed input,
/// receipts for nothing this provider consented to.
async fn refusals(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_refusals").await else {
        return;
    };
    let w = World::new(32);
    let server = Server::start(&place, &w).await;
    let (mut c, rc) = w.registered();

    let body = json!({"item_id": hex::encode(ITEM_A), "version": 1, "data": hex::encode(DATA_A)});
    assert_error(
        &server.post("/v1/items", &body, None).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &server
            .post(
                "/v1/items",
                &body,
                Some(&format!("Bearer cwo_{}", "0".repeat(32))),
            )
            .await,
        401,
        "unauthenticated",
    );
    assert_error(
        &server.post("/v1/items", &body, Some("Basic x")).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &server
            .post(
                "/v1/items",
                &json!({"item_id": "", "version": 1, "data": "00"}),
                Some(&server.bearer()),
            )
            .await,
        400,
        "invalid_item_id",
    );
    assert_error(
        &server
            .post(
                "/v1/items",
                &json!({"item_id": "a0", "version": 1, "data": "zz"}),
                Some(&server.bearer()),
            )
            .await,
        400,
        "invalid_data",
    );
    publish(&server, &ITEM_A, DATA_A, Policy::NONE).await;

    // SDIs that do not match the catalog: other data, other version, another owner.
    let wrong_data = w.sdi(Operation::Store, &ITEM_A, 1, b"other data");
    let wrong_version = w.sdi(Operation::Store, &ITEM_A, 2, DATA_A);
    let wrong_owner = w.sdi_with(
        Operation::Store,
        &ITEM_A,
        1,
        DATA_A,
        &w.pki.rogue_provider.id,
        Policy::NONE,
    );
    let wrong_policy = w.sdi_with(
        Operation::Store,
        &ITEM_A,
        1,
        DATA_A,
        &w.pki.provider.id,
        Policy::NOT_DELETABLE,
    );
    for sdi in [&wrong_data, &wrong_version, &wrong_owner, &wrong_policy] {
        let sar = issuer_sar(&w.pki.issuer, sdi, Challenge([1; 16]), &rc);
        assert_error(&post_grant(&server, &sar).await, 422, "sdi_mismatch");
    }

    // A rogue issuer (certified by another root) is not trusted.
    let sdi = w.sdi(Operation::Store, &ITEM_A, 1, DATA_A);
    let rogue = issuer_sar(&w.pki.rogue_issuer, &sdi, Challenge([2; 16]), &rc);
    assert_error(&post_grant(&server, &rogue).await, 422, "untrusted_signer");
    // The issuer's name with the rogue's key and chain: the leaf names another party.
    let mut impostor = TestParty {
        id: w.pki.issuer.id.clone(),
        key: w.pki.rogue_issuer.key.clone(),
        cert: w.pki.rogue_issuer.cert.clone(),
    };
    let forged = issuer_sar(&impostor, &sdi, Challenge([3; 16]), &rc);
    assert_error(&post_grant(&server, &forged).await, 422, "untrusted_signer");
    // The issuer's chain, another key: the signature fails.
    impostor.cert = w.pki.issuer.cert.clone();
    let forged = issuer_sar(&impostor, &sdi, Challenge([4; 16]), &rc);
    assert_error(&post_grant(&server, &forged).await, 422, "untrusted_signer");

    // A provider's SAR is not granted by a provider.
    let provider_sar = Sar {
        requester_role: PartyRole::Provider,
        requester: w.pki.provider.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi.clone(),
        challenge: Challenge([6; 16]),
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(
        &w.pki.provider.key,
        vec![w.pki.provider.cert.der().to_vec()],
    );
    assert_error(
        &post_grant(&server, &provider_sar).await,
        422,
        "invalid_sar",
    );

    // Delegations that do not cover the lone SA: to another provider or DPR, another
    // operation, another card, too small, expired; a rogue issuer's.
    let alone = |delegation: &SignedObject| {
        json!({
            "delegation": hex::encode(delegation.to_der()),
            "sdi": hex::encode(sdi.to_der()),
            "challenge": hex::encode([7u8; 16]),
        })
    };
    let issuer = &w.pki.issuer;
    let delegation_with = |edit: &DelegationEdit<'_>, signer: &TestParty| {
        let mut d = protocol::Delegation {
            issuer: signer.id.clone(),
            provider: w.pki.provider.id.clone(),
            provider_key_digest: w.pki.provider.cert.digest(),
            operations: protocol::OperationSet::STORE,
            item_prefix: protocol::ItemPrefix::new(&[]).unwrap(),
            max_item_size: 4096,
            card_id: Some(w.card_id),
            issued_at: NOW,
            not_after: UnixTime(NOW.0 + 3600),
        };
        edit(&mut d);
        d.sign(&signer.key, vec![signer.cert.der().to_vec()])
    };
    let good = delegation_with(&|_| {}, issuer);
    let response = server
        .post("/v1/authorizations/alone", &alone(&good), None)
        .await;
    assert_eq!(response.status, 201, "{}", response.text());
    let rogue_provider = w.pki.rogue_provider.id.clone();
    let refused: [(&DelegationEdit<'_>, &str); 6] = [
        (
            &|d| d.provider = rogue_provider.clone(),
            "delegation_refused",
        ),
        (
            &|d| d.provider_key_digest = crypto::sha256(b"another DPR"),
            "delegation_refused",
        ),
        (
            &|d| d.operations = protocol::OperationSet::DELETE,
            "delegation_refused",
        ),
        (
            &|d| d.card_id = Some(pki::CardId([9; 16])),
            "delegation_refused",
        ),
        (&|d| d.max_item_size = 1, "delegation_refused"),
        (
            &|d| d.not_after = UnixTime(NOW.0 - 1),
            "authorization_expired",
        ),
    ];
    for (edit, code) in refused {
        let delegation = delegation_with(edit, issuer);
        assert_error(
            &server
                .post("/v1/authorizations/alone", &alone(&delegation), None)
                .await,
            422,
            code,
        );
    }
    let rogue = delegation_with(&|_| {}, &w.pki.rogue_issuer);
    assert_error(
        &server
            .post("/v1/authorizations/alone", &alone(&rogue), None)
            .await,
        422,
        "untrusted_signer",
    );

    // A revoked IRC: the issuer's SARs and its cards' RCs are no longer trusted.
    let crl_file = place.dir.path().join("issuer-registrar.crl");
    std::fs::write(
        &crl_file,
        w.pki
            .issuer_registrar_crl(&[w.pki.issuer.cert.serial()])
            .to_pem(),
    )
    .unwrap();
    let clock = server_kit::ManualClock::new(NOW);
    let mut config = place.config(&w, &clock);
    config.crl_files = vec![crl_file];
    let revoking = provider::open(&config).await.unwrap();
    assert_eq!(revoking.provider.crls().len(), 1);
    server.app.provider.set_crls(revoking.provider.crls());
    revoking.db.close().await;
    // The revoked issuer cannot even authenticate its request (the party trust shares the
    // provider's CRLs).
    let sar = issuer_sar(&w.pki.issuer, &sdi, Challenge([8; 16]), &rc);
    let refused = post_grant(&server, &sar).await;
    assert_error(&refused, 401, "unauthenticated");
    assert!(refused.text().contains("revoked"), "{}", refused.text());
    // Its SAR, sent by an issuer still trusted, is refused on its own chain.
    let refused = server
        .post_party(
            "/v1/authorizations/grant",
            &json!({"sar": hex::encode(sar.to_der())}),
            &issuer_signer(&second_issuer(&w.pki)),
        )
        .await;
    assert_error(&refused, 422, "untrusted_signer");
    assert!(refused.text().contains("revoked"), "{}", refused.text());
    server.app.provider.set_crls(Vec::new());

    // An expired SAR.
    server.clock.set(UnixTime(NOW.0 + 601));
    let sar = issuer_sar(&w.pki.issuer, &sdi, Challenge([5; 16]), &rc);
    assert_error(
        &post_grant(&server, &sar).await,
        422,
        "authorization_expired",
    );
    server.clock.set(NOW);

    // Not a SAR at all; not hex.
    let delegation = w.delegation(&w.pki.provider, &[], 4096);
    assert_error(
        &post_grant(&server, &delegation).await,
        422,
        "wrong_purpose",
    );
    assert_error(
        &server
            .post_party(
                "/v1/authorizations/grant",
                &json!({"sar": "00"}),
                &server.issuer,
            )
            .await,
        400,
        "invalid_sar",
    );
    // A signed SAR whose body is not a SAR cannot be read: 400, not a verification refusal.
    let unreadable = SignedObject::sign(
        protocol::Purpose::StoringAuthorizationRequest,
        &[0x30, 0x00],
        &w.pki.issuer.key,
        vec![w.pki.issuer.cert.der().to_vec()],
    )
    .unwrap();
    assert_error(&post_grant(&server, &unreadable).await, 400, "invalid_sar");
    assert_error(
        &server
            .post_party("/v1/authorizations/grant", &json!({}), &server.issuer)
            .await,
        400,
        "invalid_body",
    );

    // A receipt for an authorization this provider never signed (the world signs it).
    let foreign = w.sdi(Operation::Store, &[0xEE], 1, b"foreign");
    let sa = w.sa(
        testkit::world::Path::ViaIssuer,
        &foreign,
        challenge(&mut c),
        &rc,
    );
    let receipt = c.store(&sa, None, b"foreign").unwrap();
    assert_error(
        &post_receipt(&server, &w, &receipt, &rc).await,
        404,
        "unknown_authorization",
    );
    // Not a receipt: another kind of signed object.
    assert_error(
        &post_receipt(&server, &w, &sa, &rc).await,
        422,
        "wrong_purpose",
    );
    // An RC presented with another issuer's IRC does not chain.
    let response = server
        .post(
            "/v1/receipts",
            &json!({
                "receipt": hex::encode(receipt.to_der()),
                "rc": hex::encode(rc.der()),
                "irc": hex::encode(w.pki.rogue_issuer.cert.der()),
            }),
            None,
        )
        .await;
    assert_error(&response, 422, "untrusted_signer");
    let card = w.card_id.to_hex();
    assert_error(
        &server.get(&format!("/v1/cards/{card}/contents")).await,
        404,
        "unknown_card",
    );
    assert_error(
        &server.get("/v1/cards/00/ledger").await,
        400,
        "invalid_card_id",
    );

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn refusals_sqlite() {
    refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn refusals_postgres() {
    refusals(Backend::Postgres).await;
}

/// `POST /v1/authorizations/grant` through party_api's client, signed by `signer` at the
/// server's clock.
async fn grant_by(
    server: &Server,
    body: &GrantRequest,
    signer: &PartySigner,
) -> Result<SaResponse, party_api::ClientError> {
    server
        .client
        .call(
            Method::Post,
            "/v1/authorizations/grant",
            Some(body),
            Auth::Party {
                signer,
                audience: &server.party_id(),
                now: server_kit::Clock::now(&server.clock),
            },
        )
        .await
}

/// STO-1's grant is a party request (SEC-3): without the header, for another issuer's SAR, by
/// a provider, replayed or stale it is refused; the issuer that signed the SAR gets its SA.
async fn grant_is_a_party_request(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_grant_auth").await else {
        return;
    };
    let w = World::new(35);
    let server = Server::start(&place, &w).await;
    let (_c, rc) = w.registered();
    publish(&server, &ITEM_A, DATA_A, Policy::NONE).await;
    let sdi = w.sdi(Operation::Store, &ITEM_A, 1, DATA_A);
    let sar = issuer_sar(&w.pki.issuer, &sdi, Challenge([1; 16]), &rc);
    let body = GrantRequest {
        sar: hex::encode(sar.to_der()),
    };
    let path = "/v1/authorizations/grant";
    // No header.
    let json = serde_json::to_value(&body).unwrap();
    assert_error(
        &server.post(path, &json, None).await,
        401,
        "unauthenticated",
    );
    // Another issuer, trusted but not the SAR's signer; a provider.
    let issuer_2 = second_issuer(&w.pki);
    assert_refused(
        grant_by(&server, &body, &issuer_signer(&issuer_2)).await,
        403,
        "caller_not_requester",
    );
    assert_refused(
        grant_by(&server, &body, &provider_signer(&w.pki.provider)).await,
        403,
        "caller_not_requester",
    );
    // The SAR's issuer.
    let granted = grant_by(&server, &body, &server.issuer).await.unwrap();
    assert_eq!(granted.not_after, NOW.0 + 600);
    let sa = SignedObject::from_der(&hex::decode(&granted.sa).unwrap()).unwrap();
    assert_eq!(sa.purpose(), protocol::Purpose::StoringAuthorization);

    // A header replayed (the same signed request sent twice): the second is refused before
    // the SAR is even looked at.
    let sar = issuer_sar(&w.pki.issuer, &sdi, Challenge([2; 16]), &rc);
    let bytes = json!({"sar": hex::encode(sar.to_der())}).to_string();
    let header = server.party_header(&server.issuer, path, bytes.as_bytes());
    let headers = [("Cardwright-Request", header.as_str())];
    let first = server.post_raw(path, bytes.as_bytes(), &headers).await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert_error(
        &server.post_raw(path, bytes.as_bytes(), &headers).await,
        401,
        "request_replayed",
    );
    // A header signed for another body.
    let sar = issuer_sar(&w.pki.issuer, &sdi, Challenge([3; 16]), &rc);
    let other = json!({"sar": hex::encode(sar.to_der())}).to_string();
    assert_error(
        &server.post_raw(path, other.as_bytes(), &headers).await,
        401,
        "unauthenticated",
    );
    // A header signed 301 s before the server's clock.
    let header = server.party_header(&server.issuer, path, other.as_bytes());
    server.clock.set(UnixTime(NOW.0 + 301));
    assert_error(
        &server
            .post_raw(path, other.as_bytes(), &[("Cardwright-Request", &header)])
            .await,
        401,
        "request_stale",
    );
    server.clock.set(NOW);

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn grant_is_a_party_request_sqlite() {
    grant_is_a_party_request(Backend::Sqlite).await;
}

#[tokio::test]
async fn grant_is_a_party_request_postgres() {
    grant_is_a_party_request(Backend::Postgres).await;
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let place = Place::new(Backend::Sqlite, "openapi").await.unwrap();
    let w = World::new(33);
    let server = Server::start(&place, &w).await;
    let response = server.get("/openapi.json").await;
    assert_eq!(response.status, 200);
    let doc = response.json();
    assert_eq!(doc, provider::openapi_document());
    assert_eq!(doc["openapi"], "3.1.0");
    // GET /v1/terms answers 404 until terms are published: publish some first.
    server
        .provider_client()
        .publish_terms(server.token.expose(), "Be nice.")
        .await
        .unwrap();
    server_kit::testing::assert_openapi_documents_routes(
        &server.running,
        &doc,
        &provider::routes(),
        // A service ID that cannot be one: its routes answer 400, not 404.
        |path| {
            path.replace("/v1/services/{id}", "/v1/services/a!")
                .replace("{id}", "a0")
        },
        "unknown_item",
    )
    .await;
    server.stop().await;
    place.finish().await;
}

/// A wrong key file is refused at start: the DPR certifies another key.
#[tokio::test]
async fn open_refuses_a_key_the_dpr_does_not_certify() {
    let place = Place::new(Backend::Sqlite, "wrong_key").await.unwrap();
    let w = World::new(34);
    let clock = server_kit::ManualClock::new(NOW);
    let config = place.config(&w, &clock);
    std::fs::write(&config.key_file, w.pki.issuer.key.to_pkcs8_pem().as_bytes()).unwrap();
    let error = provider::open(&config).await.unwrap_err();
    assert!(format!("{error:#}").contains("DPR"), "{error:#}");
    let mut missing = place.config(&w, &clock);
    missing.key_file = place.dir.path().join("absent.pem");
    assert!(provider::open(&missing).await.is_err());
    place.finish().await;
}
