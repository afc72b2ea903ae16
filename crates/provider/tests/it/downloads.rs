//! Adding an application over the Internet, the provider's part (docs/app-download.md §3
//! "Provider", §4): terms, services pinned from a stub issuer's application DB, download
//! operations, the download grant and the member notification as party requests of the card's
//! issuer, the members list; every code; two instances on one database.
//!
//! The card here is a "paper card": a key of the test's own with an RC the world's issuer
//! signed for it, signing download applications and receipts as a card does (the provider
//! checks only those signatures and the RC's chain). The real card's side (SIGN DOWNLOAD
//! APPLICATION, INSTALL with the SA granted here) is the card's and e2e's tests.

use party_api::provider::ProviderClient;
use party_api::provider_download::{AddServiceRequest, MemberNotification, MemberUser};
use party_api::ClientError;
use pki::{CardId, Certificate, CertificateRequest, PartyId, UnixTime};
use protocol::{
    verify_ledger, Challenge, DownloadApplication, DownloadRequest, ItemId, Operation, OperationId,
    PartyRole, Policy, Receipt, ReceiptResult, Sa, SaBasis, Sar, Sdi, ServiceId, SignedObject,
};
use serde_json::json;
use server_kit::Clock as _;
use testkit::test_pki::{TestParty, TestPki};
use testkit::world::World;

use crate::stub_issuer::{Catalog, StubIssuer};
use crate::support::{
    assert_error, assert_refused, hex_of, provider_signer, second_issuer, Backend, Place, Server,
};

const NOW: UnixTime = TestPki::NOW;
const AID: [u8; 6] = [0xA0, 0x00, 0x00, 0x06, 0x62, 0x01];
const CODE: &[u8] = b"the transit application's code package, version 1";
const OTHER_AID: [u8; 6] = [0xA0, 0x00, 0x00, 0x06, 0x62, 0x02];
const TERMS_1: &str = "Membership terms, first edition.";
const TERMS_2: &str = "Membership terms, second edition: members are nice.";
const SERVICE: &str = "transit.pass";

/// A card played by the test: its own key, an RC the world's issuer signed for it.
struct PaperCard {
    card_id: CardId,
    key: crypto::SigningKey,
    rc: Certificate,
}

impl PaperCard {
    fn new(w: &World, n: u8) -> PaperCard {
        let card_id = CardId([n; 16]);
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(0xCA4D ^ u64::from(n));
        let key = crypto::SigningKey::generate(&mut rng);
        let rc = w
            .pki
            .issue_card_rc(card_id, key.verifying_key(), crypto::sha256(b"user"));
        PaperCard { card_id, key, rc }
    }

    /// The RC for this card's key signed by `issuer` instead.
    fn rc_by(&self, issuer: &TestParty) -> Certificate {
        let request = CertificateRequest::card(
            self.card_id,
            self.key.verifying_key(),
            crypto::sha256(b"user"),
            4242,
            TestPki::NOT_BEFORE,
            TestPki::NOT_AFTER,
        );
        pki::issue(&request, &issuer.cert, &issuer.key).unwrap()
    }

    fn sign_application(&self, request_der: &[u8]) -> SignedObject {
        DownloadApplication {
            request: DownloadRequest::from_der(request_der).unwrap(),
            counter: 0,
            free: 32768,
        }
        .sign(&self.key)
    }

    /// The card's receipt of storing `sdi` under `sa`.
    fn receipt(&self, counter: u64, sa: &SignedObject, sdi: &Sdi) -> SignedObject {
        Receipt {
            card_id: self.card_id,
            counter,
            operation: Operation::Store,
            item_id: sdi.item_id.clone(),
            sdi_digest: sdi.digest(),
            authorization_digest: crypto::sha256(&sa.to_der()),
            result: ReceiptResult::Stored,
            listing_digest: crypto::Digest([0x5A; 32]),
        }
        .sign(&self.key)
    }

    /// The SDI of the service's application for this card, owned by `provider`.
    fn sdi(&self, provider: &PartyId) -> Sdi {
        Sdi {
            card_id: self.card_id,
            operation: Operation::Store,
            item_id: ItemId::new(&AID).unwrap(),
            version: 1,
            size: CODE.len() as u32,
            data_digest: crypto::sha256(CODE),
            owner: provider.clone(),
            policy: Policy::NONE,
        }
    }
}

/// `issuer`'s SAR over `sdi` bound to `rc`, valid 600 s from `issued_at`.
fn sar_at(
    issuer: &TestParty,
    sdi: &Sdi,
    rc: &Certificate,
    challenge: u8,
    issued_at: UnixTime,
) -> SignedObject {
    Sar {
        requester_role: PartyRole::Issuer,
        requester: issuer.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi.clone(),
        challenge: Challenge([challenge; 16]),
        issued_at,
        not_after: UnixTime(issued_at.0 + 600),
    }
    .sign(&issuer.key, vec![issuer.cert.der().to_vec()])
}

fn sar(issuer: &TestParty, sdi: &Sdi, rc: &Certificate, challenge: u8) -> SignedObject {
    sar_at(issuer, sdi, rc, challenge, NOW)
}

fn op(n: u8) -> OperationId {
    OperationId([n; 16])
}

fn service_id() -> ServiceId {
    ServiceId::new(SERVICE).unwrap()
}

fn add_service_request(service_id: &str, aid: &[u8], issuer: &PartyId) -> AddServiceRequest {
    AddServiceRequest {
        service_id: service_id.to_string(),
        name: "Transit pass".to_string(),
        description: "Ride the trams with your card.".to_string(),
        aid: hex::encode(aid),
        version: 1,
        issuer: issuer.to_string(),
    }
}

/// The server's typed client, knowing its party ID.
fn client(server: &Server) -> ProviderClient {
    ProviderClient::with_party_id(server.client.clone(), server.party_id())
}

/// A provider working with the world's issuer (a stub serving the application `AID`, owned
/// by the provider, and `OTHER_AID`, owned by another), with terms `TERMS_1` and the service
/// `SERVICE` published.
async fn ready(place: &Place, w: &World) -> (Server, StubIssuer) {
    let (server, stub) = Server::start_with_stub_issuer(place, w).await;
    stub.add_application(&AID, 1, CODE, w.pki.provider.id.as_str(), 0);
    stub.add_application(&OTHER_AID, 1, CODE, "provider-9", 0);
    let token = server.token.expose();
    client(&server).publish_terms(token, TERMS_1).await.unwrap();
    client(&server)
        .add_service(token, &add_service_request(SERVICE, &AID, &w.pki.issuer.id))
        .await
        .unwrap();
    (server, stub)
}

async fn terms_digest(server: &Server) -> crypto::Digest {
    client(server)
        .terms()
        .await
        .unwrap()
        .digest_value()
        .unwrap()
}

/// Opens operation `n` for `card` on the service under the current terms: the request DER.
async fn open(server: &Server, w: &World, n: u8, card: &PaperCard) -> Vec<u8> {
    let digest = terms_digest(server).await;
    client(server)
        .open_download(
            &op(n),
            &card.card_id,
            &w.pki.issuer.id,
            &service_id(),
            &digest,
        )
        .await
        .unwrap()
        .request_der()
        .unwrap()
}

async fn grant(
    server: &Server,
    n: u8,
    sar: &SignedObject,
    application: &SignedObject,
    rc: &Certificate,
) -> Result<party_api::provider::SaResponse, ClientError> {
    client(server)
        .download_grant(
            &server.issuer,
            server.clock.now(),
            &op(n),
            sar,
            application,
            rc,
        )
        .await
}

fn notification(
    w: &World,
    n: u8,
    card: &PaperCard,
    application: &SignedObject,
    receipt: &SignedObject,
) -> MemberNotification {
    MemberNotification {
        operation_id: op(n).to_hex(),
        card_id: card.card_id.to_hex(),
        service_id: SERVICE.to_string(),
        user: MemberUser {
            user_id: format!("user-{}", card.card_id.0[0]),
            name: "Hanako Yamada".to_string(),
            email: "hanako@example.org".to_string(),
        },
        download_application: hex::encode(application.to_der()),
        receipt: hex::encode(receipt.to_der()),
        rc: hex::encode(card.rc.der()),
        irc: hex::encode(w.pki.issuer.cert.der()),
    }
}

async fn notify(
    server: &Server,
    notice: &MemberNotification,
) -> Result<party_api::provider_download::MemberAcknowledgement, ClientError> {
    client(server)
        .notify_member(&server.issuer, server.clock.now(), notice)
        .await
}

// ---- terms and services -------------------------------------------------------------------

async fn terms_and_services(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_services").await else {
        return;
    };
    let w = World::new(61);
    let (server, stub) = Server::start_with_stub_issuer(&place, &w).await;
    let c = client(&server);
    let token = server.token.expose();

    // Terms: none yet; operators only; versions kept.
    assert_refused(c.terms().await, 404, "unknown_terms");
    assert_refused(
        c.publish_terms("cwo_0000", TERMS_1).await,
        401,
        "unauthenticated",
    );
    assert_refused(c.publish_terms(token, " \n").await, 400, "invalid_terms");
    let first = c.publish_terms(token, TERMS_1).await.unwrap();
    assert_eq!(first.version, 1);
    assert_eq!(first.text, TERMS_1);
    assert_eq!(first.published_at, NOW.0);
    assert_eq!(
        first.digest_value().unwrap(),
        crypto::sha256(TERMS_1.as_bytes())
    );
    let again = server
        .running
        .send_json(
            "PUT",
            "/v1/terms",
            json!({"text": TERMS_1}).to_string().as_bytes(),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json()["version"], 1);
    let second = c.publish_terms(token, TERMS_2).await.unwrap();
    assert_eq!(second.version, 2);
    assert_eq!(c.terms().await.unwrap(), second);
    let old = server.get("/v1/terms?version=1").await;
    assert_eq!(old.status, 200, "{}", old.text());
    assert_eq!(old.json()["text"], TERMS_1);
    assert_eq!(c.terms_version(1).await.unwrap(), first);
    assert_refused(c.terms_version(9).await, 404, "unknown_terms");
    assert_error(
        &server.get("/v1/terms?version=x").await,
        400,
        "invalid_query",
    );

    // Services: pinned from the issuer's application DB.
    stub.add_application(&AID, 1, CODE, w.pki.provider.id.as_str(), 0);
    stub.add_application(&OTHER_AID, 1, CODE, "provider-9", 0);
    let issuer = &w.pki.issuer.id;
    let request = add_service_request(SERVICE, &AID, issuer);
    assert_refused(
        c.add_service("cwo_0000", &request).await,
        401,
        "unauthenticated",
    );
    let added = server
        .post(
            "/v1/services",
            &serde_json::to_value(&request).unwrap(),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text());
    let service = c.service(&service_id()).await.unwrap();
    assert_eq!(serde_json::to_value(&service).unwrap(), added.json());
    assert_eq!(service.name, "Transit pass");
    assert_eq!(service.issuer, issuer.as_str());
    assert_eq!(service.created_at, NOW.0);
    assert_eq!(service.application.aid, hex::encode(AID));
    assert_eq!(service.application.version, 1);
    assert_eq!(service.application.size as usize, CODE.len());
    assert_eq!(
        service.application.digest_value().unwrap(),
        crypto::sha256(CODE)
    );
    assert_eq!(
        service.application.name,
        format!("Application {}", hex::encode(AID))
    );
    // The same again: 200, the issuer not asked (it refuses everything now).
    stub.applications_answer(Catalog::Refuse);
    assert_eq!(c.add_service(token, &request).await.unwrap(), service);
    let again = server
        .post(
            "/v1/services",
            &serde_json::to_value(&request).unwrap(),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    stub.applications_answer(Catalog::Serve);
    let mut changed = request.clone();
    changed.name = "Another name".into();
    assert_refused(c.add_service(token, &changed).await, 409, "service_exists");
    let bad = |edit: &dyn Fn(&mut AddServiceRequest)| {
        let mut r = add_service_request("second", &AID, issuer);
        edit(&mut r);
        r
    };
    for (request, status, code) in [
        (
            bad(&|r| r.service_id = "no spaces".into()),
            400,
            "invalid_service_id",
        ),
        (
            bad(&|r| r.service_id = "x".repeat(65)),
            400,
            "invalid_service_id",
        ),
        (bad(&|r| r.aid = "a00000".into()), 400, "invalid_aid"),
        (bad(&|r| r.aid = "zz".into()), 400, "invalid_aid"),
        (bad(&|r| r.issuer = String::new()), 400, "invalid_issuer"),
        (
            bad(&|r| r.issuer = "issuer-2".into()),
            422,
            "unknown_issuer",
        ),
        (bad(&|r| r.version = 2), 422, "unknown_application"),
        (
            bad(&|r| r.aid = hex::encode(OTHER_AID)),
            422,
            "unknown_application",
        ),
    ] {
        assert_refused(c.add_service(token, &request).await, status, code);
    }
    assert_error(
        &server
            .post(
                "/v1/services",
                &json!({"service_id": "x"}),
                Some(&server.bearer()),
            )
            .await,
        400,
        "invalid_body",
    );
    stub.applications_answer(Catalog::Refuse);
    assert_refused(
        c.add_service(token, &bad(&|_| {})).await,
        502,
        "issuer_refused",
    );
    stub.applications_answer(Catalog::Garbage);
    assert_refused(
        c.add_service(token, &bad(&|_| {})).await,
        502,
        "issuer_refused",
    );
    stub.applications_answer(Catalog::Serve);
    let listed = c.services().await.unwrap();
    assert_eq!(listed.services, vec![service.clone()]);
    assert_error(
        &server.get("/v1/services/nope").await,
        404,
        "unknown_service",
    );
    assert_error(
        &server.get("/v1/services/a!").await,
        400,
        "invalid_service_id",
    );
    let second_service = c.add_service(token, &bad(&|_| {})).await.unwrap();
    assert_eq!(c.services().await.unwrap().services.len(), 2);
    assert_eq!(second_service.service_id, "second");

    // An issuer nobody answers for.
    stub.stop().await;
    assert_refused(
        c.add_service(token, &add_service_request("third", &AID, issuer))
            .await,
        502,
        "issuer_unreachable",
    );

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn terms_and_services_sqlite() {
    terms_and_services(Backend::Sqlite).await;
}

#[tokio::test]
async fn terms_and_services_postgres() {
    terms_and_services(Backend::Postgres).await;
}

// ---- download operations --------------------------------------------------------------------

async fn download_operations(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_download_ops").await else {
        return;
    };
    let w = World::new(62);
    let (server, _stub) = ready(&place, &w).await;
    let c = client(&server);
    let card = PaperCard::new(&w, 0x31);
    let issuer = &w.pki.issuer.id;
    let digest = terms_digest(&server).await;

    let opened = c
        .open_download(&op(1), &card.card_id, issuer, &service_id(), &digest)
        .await
        .unwrap();
    assert_eq!(opened.operation_id, op(1).to_hex());
    assert_eq!(opened.state, "requested");
    assert_eq!(opened.not_after, NOW.0 + 1800);
    let request = DownloadRequest::from_der(&opened.request_der().unwrap()).unwrap();
    assert_eq!(
        request,
        DownloadRequest {
            operation_id: op(1),
            card_id: card.card_id,
            issuer: issuer.clone(),
            provider: w.pki.provider.id.clone(),
            service_id: service_id(),
            item_id: ItemId::new(&AID).unwrap(),
            version: 1,
            size: CODE.len() as u32,
            data_digest: crypto::sha256(CODE),
            terms_digest: digest,
            not_after: UnixTime(NOW.0 + 1800),
        }
    );
    // The same body again (later): 200, the same request.
    server.clock.advance(5);
    let path = format!("/v1/downloads/{}", op(1).to_hex());
    let body = json!({
        "card_id": card.card_id.to_hex(), "issuer": issuer.as_str(),
        "service_id": SERVICE, "terms_digest": hex::encode(digest.0),
    });
    let again = server
        .running
        .send_json("PUT", &path, body.to_string().as_bytes(), None)
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    assert_eq!(again.json(), serde_json::to_value(&opened).unwrap());
    let state = c.download(&op(1)).await.unwrap();
    assert_eq!(
        (state.state.as_str(), state.member_since),
        ("requested", None)
    );

    // Refusals.
    let other_card = PaperCard::new(&w, 0x32);
    assert_refused(
        c.open_download(&op(1), &other_card.card_id, issuer, &service_id(), &digest)
            .await,
        409,
        "operation_conflict",
    );
    assert_refused(
        c.open_download(
            &op(2),
            &card.card_id,
            issuer,
            &ServiceId::new("nope").unwrap(),
            &digest,
        )
        .await,
        404,
        "unknown_service",
    );
    assert_refused(
        c.open_download(
            &op(2),
            &card.card_id,
            &PartyId::new("issuer-2").unwrap(),
            &service_id(),
            &digest,
        )
        .await,
        422,
        "unknown_issuer",
    );
    assert_refused(
        c.open_download(
            &op(2),
            &card.card_id,
            issuer,
            &service_id(),
            &crypto::Digest([1; 32]),
        )
        .await,
        422,
        "terms_outdated",
    );
    c.publish_terms(server.token.expose(), TERMS_2)
        .await
        .unwrap();
    assert_refused(
        c.open_download(&op(2), &card.card_id, issuer, &service_id(), &digest)
            .await,
        422,
        "terms_outdated",
    );
    // The operation opened under the old terms still answers its request.
    let again = server
        .running
        .send_json("PUT", &path, body.to_string().as_bytes(), None)
        .await;
    assert_eq!(again.status, 200, "{}", again.text());
    let put = |path: String, body: serde_json::Value| {
        let running = &server.running;
        async move {
            running
                .send_json("PUT", &path, body.to_string().as_bytes(), None)
                .await
        }
    };
    let with = |field: &str, value: &str| {
        let mut body = body.clone();
        body[field] = json!(value);
        body
    };
    let op2 = format!("/v1/downloads/{}", op(2).to_hex());
    for (path, body, code) in [
        (
            "/v1/downloads/xyz".to_string(),
            body.clone(),
            "invalid_operation_id",
        ),
        (op2.clone(), with("card_id", "00"), "invalid_card_id"),
        (op2.clone(), with("issuer", ""), "invalid_issuer"),
        (
            op2.clone(),
            with("service_id", "no spaces"),
            "invalid_service_id",
        ),
        (
            op2.clone(),
            with("terms_digest", "abcd"),
            "invalid_terms_digest",
        ),
        (op2.clone(), json!({"card_id": "00"}), "invalid_body"),
    ] {
        assert_error(&put(path, body).await, 400, code);
    }
    assert_refused(c.download(&op(9)).await, 404, "unknown_operation");
    assert_error(
        &server.get("/v1/downloads/xyz").await,
        400,
        "invalid_operation_id",
    );

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn download_operations_sqlite() {
    download_operations(Backend::Sqlite).await;
}

#[tokio::test]
async fn download_operations_postgres() {
    download_operations(Backend::Postgres).await;
}

// ---- the download grant ---------------------------------------------------------------------

async fn download_grant(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_download_grant").await else {
        return;
    };
    let w = World::new(63);
    let (server, _stub) = ready(&place, &w).await;
    let me = &w.pki.provider.id;
    let issuer = &w.pki.issuer;
    let card = PaperCard::new(&w, 0x41);
    let request = open(&server, &w, 1, &card).await;
    let application = card.sign_application(&request);
    let sdi = card.sdi(me);
    let good_sar = sar(issuer, &sdi, &card.rc, 1);

    // Who may ask.
    let issuer_2 = second_issuer(&w.pki);
    let as_caller = |signer: party_api::PartySigner| {
        let server = &server;
        let (sar, application, rc) = (good_sar.clone(), application.clone(), card.rc.clone());
        async move {
            client(server)
                .download_grant(&signer, server.clock.now(), &op(1), &sar, &application, &rc)
                .await
        }
    };
    assert_refused(
        as_caller(crate::support::issuer_signer(&issuer_2)).await,
        403,
        "caller_not_card_issuer",
    );
    assert_refused(
        as_caller(provider_signer(&w.pki.provider)).await,
        403,
        "caller_not_card_issuer",
    );
    let path = format!("/v1/downloads/{}/grant", op(1).to_hex());
    let body = json!({
        "sar": hex::encode(good_sar.to_der()),
        "download_application": hex::encode(application.to_der()),
        "rc": hex::encode(card.rc.der()),
    });
    assert_error(
        &server
            .post_raw(&path, body.to_string().as_bytes(), &[])
            .await,
        401,
        "unauthenticated",
    );
    assert_refused(
        grant(&server, 9, &good_sar, &application, &card.rc).await,
        404,
        "unknown_operation",
    );
    let with = |field: &str, value: &str| {
        let mut body = body.clone();
        body[field] = json!(value);
        body
    };
    for (body, code) in [
        (with("sar", "zz"), "invalid_sar"),
        (
            with("download_application", "3000"),
            "invalid_download_application",
        ),
        (with("rc", "00"), "invalid_rc"),
        (json!({"sar": "00"}), "invalid_body"),
    ] {
        assert_error(
            &server.post_party(&path, &body, &server.issuer).await,
            400,
            code,
        );
    }
    assert_error(
        &server
            .post_party("/v1/downloads/xyz/grant", &body, &server.issuer)
            .await,
        400,
        "invalid_operation_id",
    );

    // The SAR.
    let sar_of_issuer_2 = sar(&issuer_2, &sdi, &card.rc, 1);
    assert_refused(
        grant(&server, 1, &sar_of_issuer_2, &application, &card.rc).await,
        403,
        "caller_not_requester",
    );
    let provider_sar = Sar {
        requester_role: PartyRole::Provider,
        requester: me.clone(),
        rc_digest: card.rc.digest(),
        sdi: sdi.clone(),
        challenge: Challenge([1; 16]),
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(
        &w.pki.provider.key,
        vec![w.pki.provider.cert.der().to_vec()],
    );
    assert_refused(
        grant(&server, 1, &provider_sar, &application, &card.rc).await,
        422,
        "invalid_sar",
    );
    let forged = Sar {
        requester_role: PartyRole::Issuer,
        requester: issuer.id.clone(),
        rc_digest: card.rc.digest(),
        sdi: sdi.clone(),
        challenge: Challenge([1; 16]),
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(&issuer_2.key, vec![issuer.cert.der().to_vec()]);
    assert_refused(
        grant(&server, 1, &forged, &application, &card.rc).await,
        422,
        "untrusted_signer",
    );
    assert_refused(
        grant(&server, 1, &application, &application, &card.rc).await,
        422,
        "wrong_purpose",
    );
    let stale = sar_at(issuer, &sdi, &card.rc, 1, UnixTime(NOW.0 - 601));
    assert_refused(
        grant(&server, 1, &stale, &application, &card.rc).await,
        422,
        "authorization_expired",
    );

    // The RC and the application.
    let rc_by_issuer_2 = card.rc_by(&issuer_2);
    assert_refused(
        grant(
            &server,
            1,
            &sar(issuer, &sdi, &rc_by_issuer_2, 1),
            &application,
            &rc_by_issuer_2,
        )
        .await,
        422,
        "untrusted_signer",
    );
    let other = PaperCard::new(&w, 0x42);
    assert_refused(
        grant(&server, 1, &good_sar, &application, &other.rc).await,
        422,
        "rc_mismatch",
    );
    // Signed by another key than the RC's (the other paper card's, over this request).
    let forged_application = other.sign_application(&request);
    assert_refused(
        grant(&server, 1, &good_sar, &forged_application, &card.rc).await,
        422,
        "invalid_download_application",
    );
    assert_refused(
        grant(&server, 1, &good_sar, &good_sar, &card.rc).await,
        422,
        "wrong_purpose",
    );
    // A request this provider did not give out (another terms digest).
    let mut changed = DownloadRequest::from_der(&request).unwrap();
    changed.terms_digest = crypto::Digest([7; 32]);
    let changed_application = card.sign_application(&changed.to_der());
    assert_refused(
        grant(&server, 1, &good_sar, &changed_application, &card.rc).await,
        422,
        "operation_mismatch",
    );

    // The SDI must be the service's pinned application for the card, owned here.
    let sdi_edits: [fn(&mut Sdi); 8] = [
        |s| s.version = 2,
        |s| s.size += 1,
        |s| s.data_digest = crypto::Digest([9; 32]),
        |s| s.policy = Policy::NOT_DELETABLE,
        |s| s.item_id = ItemId::new(&OTHER_AID).unwrap(),
        |s| s.owner = PartyId::new("provider-9").unwrap(),
        |s| s.operation = Operation::Delete,
        |s| s.card_id = CardId([0x42; 16]),
    ];
    for edit in sdi_edits {
        let mut wrong = sdi.clone();
        edit(&mut wrong);
        assert_refused(
            grant(
                &server,
                1,
                &sar(issuer, &wrong, &card.rc, 1),
                &application,
                &card.rc,
            )
            .await,
            422,
            "sdi_mismatch",
        );
    }
    assert_eq!(
        client(&server).download(&op(1)).await.unwrap().state,
        "requested"
    );

    // Granted: an SA the card will take (over this SAR, this SDI and challenge, signed here).
    let answer = grant(&server, 1, &good_sar, &application, &card.rc)
        .await
        .unwrap();
    assert_eq!(answer.not_after, NOW.0 + 600);
    let sa_object = answer.sa_object().unwrap();
    let sa: Sa = sa_object
        .open(&w.pki.provider.public_key())
        .expect("signed with the provider's key");
    assert!(matches!(&sa.basis, SaBasis::Request(basis) if basis == &good_sar));
    assert_eq!(
        (sa.grantor_role, &sa.grantor, &sa.sdi, sa.challenge),
        (PartyRole::Provider, me, &sdi, Challenge([1; 16]))
    );
    assert_eq!(
        client(&server).download(&op(1)).await.unwrap().state,
        "granted"
    );
    // The same SAR again, later: the same SA (200).
    server.clock.advance(30);
    let repeat = server.post_party(&path, &body, &server.issuer).await;
    assert_eq!(repeat.status, 200, "{}", repeat.text());
    assert_eq!(hex_of(&repeat.json(), "sa"), sa_object.to_der());
    // A second attempt (another challenge) is granted too.
    let second = sar_at(issuer, &sdi, &card.rc, 2, server.clock.now());
    let second_sa = grant(&server, 1, &second, &application, &card.rc)
        .await
        .unwrap();
    assert_ne!(second_sa.sa, answer.sa);
    // The same SAR on another operation of the card.
    let request_2 = open(&server, &w, 2, &card).await;
    let application_2 = card.sign_application(&request_2);
    assert_refused(
        grant(&server, 2, &good_sar, &application_2, &card.rc).await,
        422,
        "operation_mismatch",
    );
    // A SAR granted on STO-1 is spent here too.
    let item = server
        .post(
            "/v1/items",
            &json!({"item_id": hex::encode(AID), "version": 1, "data": hex::encode(CODE)}),
            Some(&server.bearer()),
        )
        .await;
    assert_eq!(item.status, 201, "{}", item.text());
    let spent = sar_at(issuer, &sdi, &card.rc, 3, server.clock.now());
    let sto1 = server
        .post_party(
            "/v1/authorizations/grant",
            &json!({"sar": hex::encode(spent.to_der())}),
            &server.issuer,
        )
        .await;
    assert_eq!(sto1.status, 201, "{}", sto1.text());
    assert_refused(
        grant(&server, 1, &spent, &application, &card.rc).await,
        409,
        "authorization_replayed",
    );
    // Past the operation's end: closed.
    // (operation 2 was opened 30 s after NOW, so it ends at NOW + 1830)
    server.clock.set(UnixTime(NOW.0 + 1831));
    let late = sar_at(issuer, &sdi, &card.rc, 4, server.clock.now());
    assert_refused(
        grant(&server, 2, &late, &application_2, &card.rc).await,
        409,
        "operation_closed",
    );
    // The SA recorded for a SAR is still answered.
    let repeat = server.post_party(&path, &body, &server.issuer).await;
    assert_eq!(repeat.status, 200, "{}", repeat.text());
    assert!(server
        .get("/metrics")
        .await
        .text()
        .contains("provider_authorizations_signed_total 3"));

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn download_grant_sqlite() {
    download_grant(Backend::Sqlite).await;
}

#[tokio::test]
async fn download_grant_postgres() {
    download_grant(Backend::Postgres).await;
}

// ---- members --------------------------------------------------------------------------------

/// Opens operation `n` for `card` and has it granted (challenge `n`): the application, the SA
/// and the SDI.
async fn granted(
    server: &Server,
    w: &World,
    n: u8,
    card: &PaperCard,
) -> (SignedObject, SignedObject, Sdi) {
    let request = open(server, w, n, card).await;
    let application = card.sign_application(&request);
    let sdi = card.sdi(&w.pki.provider.id);
    let sar = sar_at(&w.pki.issuer, &sdi, &card.rc, n, server.clock.now());
    let sa = grant(server, n, &sar, &application, &card.rc)
        .await
        .unwrap()
        .sa_object()
        .unwrap();
    (application, sa, sdi)
}

async fn members(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_members").await else {
        return;
    };
    let w = World::new(64);
    let (server, _stub) = ready(&place, &w).await;
    let c = client(&server);
    let token = server.token.expose();
    let card = PaperCard::new(&w, 0x51);
    let (application, sa, sdi) = granted(&server, &w, 1, &card).await;
    let receipt = card.receipt(1, &sa, &sdi);
    let notice = notification(&w, 1, &card, &application, &receipt);

    // Who may notify, and what.
    let issuer_2 = second_issuer(&w.pki);
    assert_refused(
        c.notify_member(
            &crate::support::issuer_signer(&issuer_2),
            server.clock.now(),
            &notice,
        )
        .await,
        403,
        "caller_not_card_issuer",
    );
    let edited = |edit: &dyn Fn(&mut MemberNotification)| {
        let mut n = notice.clone();
        edit(&mut n);
        n
    };
    assert_refused(
        notify(&server, &edited(&|n| n.operation_id = op(9).to_hex())).await,
        404,
        "unknown_operation",
    );
    let body = serde_json::to_value(&notice).unwrap();
    assert_error(
        &server
            .post_raw("/v1/members", body.to_string().as_bytes(), &[])
            .await,
        401,
        "unauthenticated",
    );
    for (field, value, code) in [
        ("operation_id", "xyz", "invalid_operation_id"),
        ("card_id", "00", "invalid_card_id"),
        ("service_id", "no spaces", "invalid_service_id"),
        ("download_application", "00", "invalid_download_application"),
        ("receipt", "00", "invalid_receipt"),
        ("rc", "00", "invalid_rc"),
        ("irc", "00", "invalid_irc"),
    ] {
        let mut bad = body.clone();
        bad[field] = json!(value);
        assert_error(
            &server.post_party("/v1/members", &bad, &server.issuer).await,
            400,
            code,
        );
    }
    let other = PaperCard::new(&w, 0x52);
    for (notice, status, code) in [
        (
            edited(&|n| n.card_id = other.card_id.to_hex()),
            422,
            "operation_mismatch",
        ),
        (
            edited(&|n| n.service_id = "second".into()),
            422,
            "operation_mismatch",
        ),
        (
            edited(&|n| n.rc = hex::encode(other.rc.der())),
            422,
            "operation_mismatch",
        ),
        (
            edited(&|n| n.irc = hex::encode(issuer_2.cert.der())),
            422,
            "untrusted_signer",
        ),
        (
            edited(&|n| n.receipt = hex::encode(other.receipt(1, &sa, &sdi).to_der())),
            422,
            "invalid_receipt",
        ),
        (
            edited(&|n| n.receipt = hex::encode(card.receipt(1, &application, &sdi).to_der())),
            422,
            "receipt_not_for_operation",
        ),
        (
            edited(&|n| n.receipt = hex::encode(application.to_der())),
            422,
            "wrong_purpose",
        ),
        (
            edited(&|n| {
                n.download_application = hex::encode(
                    other
                        .sign_application(&request_der_of(&application))
                        .to_der(),
                )
            }),
            422,
            "invalid_download_application",
        ),
    ] {
        assert_refused(notify(&server, &notice).await, status, code);
    }
    // The card's RC issued by another issuer (its own IRC sent): not the operation's issuer.
    let rc_2 = card.rc_by(&issuer_2);
    assert_refused(
        notify(
            &server,
            &edited(&|n| {
                n.rc = hex::encode(rc_2.der());
                n.irc = hex::encode(issuer_2.cert.der());
            }),
        )
        .await,
        422,
        "untrusted_signer",
    );
    assert_eq!(c.download(&op(1)).await.unwrap().state, "granted");

    // Recorded, later, once: the member and the receipt in the card's ledger.
    server.clock.advance(3600);
    let member_since = server.clock.now().0;
    let first = server
        .post_party("/v1/members", &body, &server.issuer)
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(
        first.json(),
        json!({"operation_id": op(1).to_hex(), "member_since": member_since, "newly_recorded": true})
    );
    server.clock.advance(60);
    let repeat = notify(&server, &notice).await.unwrap();
    assert_eq!(
        (repeat.member_since, repeat.newly_recorded),
        (member_since, false)
    );
    let state = c.download(&op(1)).await.unwrap();
    assert_eq!(
        (state.state.as_str(), state.member_since),
        ("member", Some(member_since))
    );
    let listed = c.service_members(token, &service_id()).await.unwrap();
    assert_eq!(listed.service_id, SERVICE);
    assert_eq!(listed.members.len(), 1);
    let member = &listed.members[0];
    assert_eq!(member.card_id_value().unwrap(), card.card_id);
    assert_eq!(member.user, notice.user);
    assert_eq!(
        (member.member_since, member.operation_id.as_str()),
        (member_since, op(1).to_hex().as_str())
    );
    let ledger = server
        .get(&format!("/v1/cards/{}/ledger", card.card_id.to_hex()))
        .await
        .json();
    let entries: Vec<SignedObject> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| SignedObject::from_der(&hex_of(e, "entry")).unwrap())
        .collect();
    let summary = verify_ledger(&entries, &w.pki.provider.public_key(), &card.rc).unwrap();
    assert_eq!((summary.entries, summary.last_counter), (1, 1));
    let contents = server
        .get(&format!("/v1/cards/{}/contents", card.card_id.to_hex()))
        .await
        .json();
    assert_eq!(contents["items"][0]["item_id"], hex::encode(AID));
    let metrics = server.get("/metrics").await.text();
    assert!(
        metrics.contains("provider_member_notifications_total{outcome=\"new\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("provider_member_notifications_total{outcome=\"repeat\"} 1"),
        "{metrics}"
    );

    // A member does not apply again; its operation is closed.
    let digest = terms_digest(&server).await;
    assert_refused(
        c.open_download(
            &op(2),
            &card.card_id,
            &w.pki.issuer.id,
            &service_id(),
            &digest,
        )
        .await,
        409,
        "already_member",
    );
    let late_sar = sar_at(&w.pki.issuer, &sdi, &card.rc, 9, server.clock.now());
    assert_refused(
        grant(&server, 1, &late_sar, &application, &card.rc).await,
        409,
        "operation_closed",
    );

    // A receipt the terminal posted first (POST /v1/receipts) is the member's ledger entry.
    let (application_b, sa_b, sdi_b) = granted(&server, &w, 3, &other).await;
    let receipt_b = other.receipt(7, &sa_b, &sdi_b);
    let posted = server
        .post(
            "/v1/receipts",
            &json!({
                "receipt": hex::encode(receipt_b.to_der()),
                "rc": hex::encode(other.rc.der()),
                "irc": hex::encode(w.pki.issuer.cert.der()),
            }),
            None,
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text());
    let recorded = notify(
        &server,
        &notification(&w, 3, &other, &application_b, &receipt_b),
    )
    .await
    .unwrap();
    assert!(recorded.newly_recorded);
    let ledger = server
        .get(&format!("/v1/cards/{}/ledger", other.card_id.to_hex()))
        .await
        .json();
    assert_eq!(ledger["entries"].as_array().unwrap().len(), 1);

    // Two operations of one card: the later receipt recorded first, the earlier is refused.
    let third = PaperCard::new(&w, 0x53);
    let (application_4, sa_4, sdi_4) = granted(&server, &w, 4, &third).await;
    let (application_5, sa_5, sdi_5) = granted(&server, &w, 5, &third).await;
    notify(
        &server,
        &notification(
            &w,
            5,
            &third,
            &application_5,
            &third.receipt(2, &sa_5, &sdi_5),
        ),
    )
    .await
    .unwrap();
    assert_refused(
        notify(
            &server,
            &notification(
                &w,
                4,
                &third,
                &application_4,
                &third.receipt(1, &sa_4, &sdi_4),
            ),
        )
        .await,
        409,
        "counter_not_increasing",
    );
    assert_eq!(
        c.service_members(token, &service_id())
            .await
            .unwrap()
            .members
            .len(),
        3
    );

    // The members list is for operators.
    let path = format!("/v1/services/{SERVICE}/members");
    assert_error(&server.get(&path).await, 401, "unauthenticated");
    assert_refused(
        c.service_members(token, &ServiceId::new("nope").unwrap())
            .await,
        404,
        "unknown_service",
    );

    server.stop().await;
    place.finish().await;
}

/// The request DER inside a download application.
fn request_der_of(application: &SignedObject) -> Vec<u8> {
    application
        .body_unverified::<DownloadApplication>()
        .unwrap()
        .request
        .to_der()
}

#[tokio::test]
async fn members_sqlite() {
    members(Backend::Sqlite).await;
}

#[tokio::test]
async fn members_postgres() {
    members(Backend::Postgres).await;
}

// ---- a real card ---------------------------------------------------------------------------

/// The whole provider part with a real (in-process) card: it signs the download application
/// for the request given out here and installs the application with the SA granted here; the
/// member notification carrying its receipt makes it a member, and the provider's view of the
/// card and its ledger agree with what the card signed.
async fn real_card(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_download_card").await else {
        return;
    };
    let w = World::new(66);
    let (server, _stub) = ready(&place, &w).await;
    let (mut card, rc) = w.registered();
    let digest = terms_digest(&server).await;
    let opened = client(&server)
        .open_download(&op(1), &w.card_id, &w.pki.issuer.id, &service_id(), &digest)
        .await
        .unwrap();
    let request = DownloadRequest::from_der(&opened.request_der().unwrap()).unwrap();
    let application = card
        .sign_download_application(&request)
        .expect("the card signs the provider's request");
    let sdi = Sdi {
        card_id: w.card_id,
        operation: Operation::Store,
        item_id: request.item_id.clone(),
        version: request.version,
        size: request.size,
        data_digest: request.data_digest,
        owner: w.pki.provider.id.clone(),
        policy: Policy::NONE,
    };
    let challenge = Challenge(card.get_challenge().unwrap());
    let sar = Sar {
        requester_role: PartyRole::Issuer,
        requester: w.pki.issuer.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi.clone(),
        challenge,
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(&w.pki.issuer.key, vec![w.pki.issuer.cert.der().to_vec()]);
    let sa = grant(&server, 1, &sar, &application, &rc)
        .await
        .unwrap()
        .sa_object()
        .unwrap();
    let receipt = card
        .store(&sa, None, CODE)
        .expect("the card installs the application with the provider's SA");
    let notice = MemberNotification {
        operation_id: op(1).to_hex(),
        card_id: w.card_id.to_hex(),
        service_id: SERVICE.to_string(),
        user: MemberUser {
            user_id: w.user.user_id().to_string(),
            name: "Hanako Yamada".to_string(),
            email: "hanako@example.org".to_string(),
        },
        download_application: hex::encode(application.to_der()),
        receipt: hex::encode(receipt.to_der()),
        rc: hex::encode(rc.der()),
        irc: hex::encode(w.pki.issuer.cert.der()),
    };
    let ack = notify(&server, &notice).await.unwrap();
    assert!(ack.newly_recorded);
    assert_eq!(
        client(&server).download(&op(1)).await.unwrap().state,
        "member"
    );
    // The provider's view is the card's own listing of this provider's items.
    let nonce = protocol::Nonce::new(b"provider check").unwrap();
    let listing =
        protocol::verify_listing(&card.listing(nonce.as_bytes()).unwrap(), &rc, &nonce).unwrap();
    let contents = client(&server).contents(&w.card_id).await.unwrap();
    let listed: Vec<(String, u32, u32)> = listing
        .contents
        .items()
        .iter()
        .filter(|i| i.owner == w.pki.provider.id)
        .map(|i| (hex::encode(i.item_id.as_bytes()), i.version, i.size))
        .collect();
    let viewed: Vec<(String, u32, u32)> = contents
        .items
        .iter()
        .map(|i| (i.item_id.clone(), i.version, i.size))
        .collect();
    assert_eq!(viewed, listed);
    let ledger = client(&server).ledger(&w.card_id).await.unwrap();
    let summary = verify_ledger(
        &ledger.entry_objects().unwrap(),
        &w.pki.provider.public_key(),
        &rc,
    )
    .unwrap();
    assert_eq!(summary.last_counter, listing.counter);
    // The card's receipt read again (GET RECEIPT) is the same bytes: a repeat changes nothing.
    let again = card.get_receipt(&crypto::sha256(&sa.to_der())).unwrap();
    assert_eq!(again, receipt);
    assert!(!notify(&server, &notice).await.unwrap().newly_recorded);

    server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn real_card_sqlite() {
    real_card(Backend::Sqlite).await;
}

#[tokio::test]
async fn real_card_postgres() {
    real_card(Backend::Postgres).await;
}

// ---- the service's issuer -------------------------------------------------------------------

/// A service installs an application of one issuer's application DB: a card of another issuer
/// (both known to this provider) is refused on `PUT /v1/downloads/{op}`, and an operation that
/// names another issuer than its service's (one opened before the check) is refused its grant.
async fn issuer_mismatch(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_download_issuer").await else {
        return;
    };
    let w = World::new(66);
    let issuer_2 = second_issuer(&w.pki);
    let clock = server_kit::ManualClock::new(NOW);
    let stub_1 = StubIssuer::start(&w.pki.issuer, &w.pki, &clock, place.dir.path()).await;
    let stub_2 = StubIssuer::start(&issuer_2, &w.pki, &clock, place.dir.path()).await;
    let me = w.pki.provider.id.clone();
    stub_1.add_application(&AID, 1, CODE, me.as_str(), 0);
    stub_2.add_application(&AID, 1, CODE, me.as_str(), 0);
    let server = Server::start_with_issuers(
        &place,
        &w,
        "alice",
        vec![
            (w.pki.issuer.id.clone(), stub_1.url.clone()),
            (issuer_2.id.clone(), stub_2.url.clone()),
        ],
    )
    .await;
    let c = client(&server);
    let token = server.token.expose();
    c.publish_terms(token, TERMS_1).await.unwrap();
    c.add_service(token, &add_service_request(SERVICE, &AID, &w.pki.issuer.id))
        .await
        .unwrap();
    c.add_service(
        token,
        &add_service_request("transit.two", &AID, &issuer_2.id),
    )
    .await
    .unwrap();
    let digest = terms_digest(&server).await;
    let card = PaperCard::new(&w, 0x71);

    // issuer-2's card on issuer-1's service: refused, naming both, nothing opened.
    match c
        .open_download(&op(1), &card.card_id, &issuer_2.id, &service_id(), &digest)
        .await
    {
        Err(ClientError::Refused {
            status,
            code,
            message,
            ..
        }) => {
            assert_eq!(
                (status, code.as_str()),
                (422, "issuer_mismatch"),
                "{message}"
            );
            assert!(
                message.contains(&format!(
                    "service {SERVICE} installs an application of {}",
                    w.pki.issuer.id
                )) && message.contains(&format!("this card's issuer is {}", issuer_2.id)),
                "{message}"
            );
        }
        other => panic!("expected 422 issuer_mismatch, got {other:?}"),
    }
    assert_refused(c.download(&op(1)).await, 404, "unknown_operation");
    // Each issuer's card on its own issuer's service: requested.
    let two = ServiceId::new("transit.two").unwrap();
    let opened = c
        .open_download(&op(2), &card.card_id, &issuer_2.id, &two, &digest)
        .await
        .unwrap();
    assert_eq!(opened.state, "requested");
    c.open_download(
        &op(3),
        &card.card_id,
        &w.pki.issuer.id,
        &service_id(),
        &digest,
    )
    .await
    .unwrap();

    // An operation naming issuer-2 on issuer-1's service (recorded before the check existed):
    // issuer-2, its own SAR, its own RC of the card and the card's signature over the request
    // given out all verify, and still the grant is refused.
    let request = DownloadRequest {
        operation_id: op(4),
        card_id: card.card_id,
        issuer: issuer_2.id.clone(),
        provider: me.clone(),
        service_id: service_id(),
        item_id: ItemId::new(&AID).unwrap(),
        version: 1,
        size: CODE.len() as u32,
        data_digest: crypto::sha256(CODE),
        terms_digest: digest,
        not_after: UnixTime(NOW.0 + 1800),
    };
    let outcome = server
        .app
        .provider
        .store()
        .open_download(&provider::store::DownloadRecord {
            operation_id: op(4),
            card_id: card.card_id,
            issuer: issuer_2.id.clone(),
            service_id: service_id(),
            terms_digest: digest,
            request_der: request.to_der(),
            not_after: request.not_after,
            stage: provider::store::DownloadStage::Requested,
            created_at: NOW,
        })
        .await
        .unwrap();
    assert_eq!(outcome, provider::store::OpenOutcome::Opened);
    let rc_2 = card.rc_by(&issuer_2);
    let application = card.sign_application(&request.to_der());
    let sdi = card.sdi(&me);
    let sar_2 = sar(&issuer_2, &sdi, &rc_2, 4);
    assert_refused(
        c.download_grant(
            &crate::support::issuer_signer(&issuer_2),
            server.clock.now(),
            &op(4),
            &sar_2,
            &application,
            &rc_2,
        )
        .await,
        422,
        "issuer_mismatch",
    );
    assert_eq!(c.download(&op(4)).await.unwrap().state, "requested");
    // The same issuer-2 material on its own service's operation is granted.
    let request_2 = opened.request_der().unwrap();
    let sar_2 = sar(&issuer_2, &sdi, &rc_2, 2);
    c.download_grant(
        &crate::support::issuer_signer(&issuer_2),
        server.clock.now(),
        &op(2),
        &sar_2,
        &card.sign_application(&request_2),
        &rc_2,
    )
    .await
    .unwrap();
    assert_eq!(c.download(&op(2)).await.unwrap().state, "granted");
    // Both routes list the code.
    let doc = provider::openapi_document();
    for (path, method) in [
        ("/v1/downloads/{op}", "put"),
        ("/v1/downloads/{op}/grant", "post"),
    ] {
        let codes = &doc["paths"][path][method]["responses"]["422"]["x-error-codes"];
        assert!(
            codes
                .as_array()
                .is_some_and(|codes| codes.contains(&json!("issuer_mismatch"))),
            "{method} {path}: {codes}"
        );
    }

    server.stop().await;
    stub_1.stop().await;
    stub_2.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn issuer_mismatch_sqlite() {
    issuer_mismatch(Backend::Sqlite).await;
}

#[tokio::test]
async fn issuer_mismatch_postgres() {
    issuer_mismatch(Backend::Postgres).await;
}

// ---- two instances on one database -----------------------------------------------------------

async fn two_instances(backend: Backend) {
    let Some(place) = Place::new(backend, "provider_download_instances").await else {
        return;
    };
    let w = World::new(65);
    let (a, stub) = ready(&place, &w).await;
    let b = Server::start_with_issuers(
        &place,
        &w,
        "bob",
        vec![(w.pki.issuer.id.clone(), stub.url.clone())],
    )
    .await;
    // What one instance published, the other serves.
    assert_eq!(
        client(&b).terms().await.unwrap(),
        client(&a).terms().await.unwrap()
    );
    assert_eq!(client(&b).services().await.unwrap().services.len(), 1);

    // One operation opened by both at once: one 201, one 200, the same request.
    let card = PaperCard::new(&w, 0x61);
    let digest = terms_digest(&a).await;
    let path = format!("/v1/downloads/{}", op(1).to_hex());
    let body = json!({
        "card_id": card.card_id.to_hex(), "issuer": w.pki.issuer.id.as_str(),
        "service_id": SERVICE, "terms_digest": hex::encode(digest.0),
    })
    .to_string();
    let (on_a, on_b) = tokio::join!(
        a.running.send_json("PUT", &path, body.as_bytes(), None),
        b.running.send_json("PUT", &path, body.as_bytes(), None)
    );
    let mut statuses = [on_a.status, on_b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "{} / {}", on_a.text(), on_b.text());
    assert_eq!(on_a.json(), on_b.json());
    let request = hex_of(&on_a.json(), "request");

    // One SAR granted by both at once: the same SA.
    let application = card.sign_application(&request);
    let sdi = card.sdi(&w.pki.provider.id);
    let sar = sar(&w.pki.issuer, &sdi, &card.rc, 1);
    let (sa_a, sa_b) = tokio::join!(
        grant(&a, 1, &sar, &application, &card.rc),
        grant(&b, 1, &sar, &application, &card.rc)
    );
    let (sa_a, sa_b) = (sa_a.unwrap(), sa_b.unwrap());
    assert_eq!(sa_a.sa, sa_b.sa);
    let sa = sa_a.sa_object().unwrap();

    // The notification delivered to both at once: one member, one ledger entry; both ack.
    let notice = notification(&w, 1, &card, &application, &card.receipt(1, &sa, &sdi));
    let (ack_a, ack_b) = tokio::join!(notify(&a, &notice), notify(&b, &notice));
    let (ack_a, ack_b) = (ack_a.unwrap(), ack_b.unwrap());
    assert_eq!(
        [ack_a.newly_recorded, ack_b.newly_recorded]
            .iter()
            .filter(|new| **new)
            .count(),
        1
    );
    assert_eq!(ack_a.member_since, ack_b.member_since);
    // And again to each: acknowledged, nothing changes.
    for server in [&a, &b] {
        assert!(!notify(server, &notice).await.unwrap().newly_recorded);
        let members = client(server)
            .service_members(server.token.expose(), &service_id())
            .await
            .unwrap();
        assert_eq!(members.members.len(), 1);
        let ledger = server
            .get(&format!("/v1/cards/{}/ledger", card.card_id.to_hex()))
            .await
            .json();
        assert_eq!(ledger["entries"].as_array().unwrap().len(), 1);
        assert_eq!(
            client(server).download(&op(1)).await.unwrap().state,
            "member"
        );
    }

    b.stop().await;
    a.stop().await;
    stub.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn two_instances_sqlite() {
    two_instances(Backend::Sqlite).await;
}

#[tokio::test]
async fn two_instances_postgres() {
    two_instances(Backend::Postgres).await;
}
