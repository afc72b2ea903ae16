//! SDCI' (SPEC STO-5) on port 0: a provider holding a DPR from the data registrar has its data
//! certified, and an in-process card whose data anchor is that registrar's root stores the item
//! under a policy that requires certified data; every refusal with its code.

use std::sync::atomic::{AtomicU64, Ordering};

use crypto::InsecureSeededRng;
use party_api::registrar::RegistrarClient;
use party_api::{ClientError, PartySigner, PARTY_REQUEST_HEADER};
use pki::{Certificate, PartyId, UnixTime};
use protocol::{Challenge, Operation, PartyRole, Policy, Purpose, Sdi};
use registrar::store::Certification;
use registrar::{RegistrarRole, SqlStore, Store};
use serde_json::json;
use server_kit::testing::{request_for_tests, ResponseForTests};
use server_kit::Clock;
use testkit::test_pki::TestParty;
use testkit::world::{Path, SaParams, TestClient, World, PIN};

use crate::client::client_of;
use crate::support::{assert_error, Backend, Place, Server, NOW};

const DAY: u64 = 86_400;
const PATH: &str = "/v1/certified-data";
/// The registrar's party ID: the same name as testkit's own Data Registrar, whose DPRs must
/// nevertheless be refused here (same name, another key).
const REGISTRAR: &str = "data-registrar";
const DATA: &[u8] = b"boarding pass: gate 12, seat 3A";

/// A data registrar that certified testkit's two providers' keys a day before [`NOW`] (so its
/// root and the DPRs are valid at a test card's time floor), its clock now at [`NOW`].
struct Fixture {
    world: World,
    server: Server,
    client: RegistrarClient,
    registrar: PartyId,
    /// `provider-1` with its DPR from this registrar.
    provider: TestParty,
    /// `provider-2` with its DPR from this registrar.
    provider_2: TestParty,
}

impl Fixture {
    async fn start(place: &Place, seed: u64) -> Fixture {
        let world = World::new(seed);
        let then = UnixTime(NOW.0 - DAY);
        let server = Server::start_at(place, RegistrarRole::DataRegistrar, REGISTRAR, then).await;
        let client = client_of(&server);
        let provider = certify(&client, &server, &world.pki.provider).await;
        let provider_2 = certify(&client, &server, &world.pki.provider_2).await;
        server.clock.advance(DAY);
        Fixture {
            world,
            server,
            client,
            registrar: PartyId::new(REGISTRAR).unwrap(),
            provider,
            provider_2,
        }
    }

    fn root(&self) -> &Certificate {
        self.server.app.registrar.root()
    }

    fn sdi(&self, operation: Operation, owner: &TestParty, data: &[u8]) -> Sdi {
        self.world.sdi_with(
            operation,
            b"pass-12",
            1,
            data,
            &owner.id,
            Policy::CERTIFIED_DATA_REQUIRED,
        )
    }

    async fn certify(
        &self,
        party: &TestParty,
        role: PartyRole,
        sdi: &Sdi,
        data: &[u8],
    ) -> Result<protocol::SignedObject, ClientError> {
        self.client
            .certify_data(&signer(party, role), &self.registrar, NOW, sdi, data)
            .await
    }

    async fn certifications(&self) -> Vec<Certification> {
        let store = SqlStore::open(self.server.app.db.clone()).await.unwrap();
        store.certifications(None).await.unwrap()
    }

    async fn assert_counted(&self, certified: u64) {
        let metrics = self.server.get("/metrics").await.text();
        let line = format!("registrar_data_certified_total {certified}\n");
        assert!(metrics.contains(&line), "{metrics}");
    }

    /// POSTs `body` with `header` as the party request header, if any.
    async fn post(&self, header: Option<&str>, body: &[u8]) -> ResponseForTests {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(header) = header {
            headers.push((PARTY_REQUEST_HEADER, header));
        }
        request_for_tests(self.server.addr, "POST", PATH, &headers, Some(body))
            .await
            .unwrap()
    }

    /// POSTs `body` signed by `party` (as a provider) for this registrar, now.
    async fn post_signed(&self, party: &TestParty, body: &[u8]) -> ResponseForTests {
        let header = self.header(party, body);
        self.post(Some(&header), body).await
    }

    fn header(&self, party: &TestParty, body: &[u8]) -> String {
        static NONCES: AtomicU64 = AtomicU64::new(1);
        let mut rng =
            InsecureSeededRng::insecure_seeded_for_tests(NONCES.fetch_add(1, Ordering::Relaxed));
        signer(party, PartyRole::Provider)
            .sign_request(
                "POST",
                PATH,
                body,
                &self.registrar,
                self.server.clock.now(),
                &mut rng,
            )
            .unwrap()
    }
}

/// The registrar certifies `party`'s key under its own name.
async fn certify(client: &RegistrarClient, server: &Server, party: &TestParty) -> TestParty {
    let issued = client
        .issue(server.token.expose(), &party.id, &party.public_key(), None)
        .await
        .unwrap();
    TestParty {
        id: party.id.clone(),
        key: party.key.clone(),
        cert: Certificate::from_pem(&issued.pem).unwrap(),
    }
}

fn signer(party: &TestParty, role: PartyRole) -> PartySigner {
    PartySigner::new(
        party.id.clone(),
        role,
        party.key.clone(),
        party.cert.clone(),
    )
}

fn body(sdi: &Sdi, data: &[u8]) -> Vec<u8> {
    json!({"sdi": hex::encode(sdi.to_der()), "data": hex::encode(data)})
        .to_string()
        .into_bytes()
}

/// The world's card, personalised with `data_anchor` as its Data Registrar root, registered.
fn card_trusting(w: &World, data_anchor: &Certificate) -> (TestClient, Certificate) {
    let mut personalisation = w.personalisation();
    personalisation.data_anchor = data_anchor.clone();
    let mut c = w.client(w.blank_card());
    c.select_card_manager().unwrap();
    c.personalise(&personalisation).unwrap();
    c.verify_pin(PIN).unwrap();
    let challenge = Challenge([0x11; 16]);
    let registration = c.register(&w.user, &challenge.0).unwrap();
    let rc = w.issue_rc(&registration, &challenge);
    c.register_complete(&rc, &w.pki.issuer.cert).unwrap();
    (c, rc)
}

async fn certified_data_is_accepted_by_a_card(backend: Backend) {
    let Some(place) = Place::new(backend, "sdci_prime").await else {
        return;
    };
    let fx = Fixture::start(&place, 31).await;
    let sdi = fx.sdi(Operation::Store, &fx.provider, DATA);
    let sdci = fx
        .certify(&fx.provider, PartyRole::Provider, &sdi, DATA)
        .await
        .unwrap();
    assert_eq!(sdci.purpose(), Purpose::RegistrarCertifiedData);
    assert!(sdci.signer_chain().is_empty());

    // A card that holds this registrar's root stores the item (its policy requires certified
    // data) on the issuer's SAR and the provider's SA, the provider certified here too.
    let w = &fx.world;
    let (mut card, rc) = card_trusting(w, fx.root());
    let sa = |card: &mut TestClient| {
        let challenge = Challenge(card.get_challenge().unwrap());
        let mut params = SaParams::new(w, Path::ViaIssuer, sdi.clone(), challenge, &rc);
        params.provider = &fx.provider;
        params.sign()
    };
    // Certified by testkit's Data Registrar (same name, another key): refused.
    let authorization = sa(&mut card);
    assert!(card
        .store(&authorization, Some(&w.sdci_prime(&sdi)), DATA)
        .is_err());
    let authorization = sa(&mut card);
    card.store(&authorization, Some(&sdci), DATA).unwrap();

    // Certifying again is allowed and recorded again.
    fx.certify(&fx.provider, PartyRole::Provider, &sdi, DATA)
        .await
        .unwrap();
    let recorded = Certification {
        sdi_digest: sdi.digest(),
        provider: fx.provider.id.clone(),
        data_digest: crypto::sha256(DATA),
        certified_at: NOW,
    };
    assert_eq!(fx.certifications().await, [recorded.clone(), recorded]);
    fx.assert_counted(2).await;

    fx.server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn certified_data_is_accepted_by_a_card_on_sqlite() {
    certified_data_is_accepted_by_a_card(Backend::Sqlite).await;
}

#[tokio::test]
async fn certified_data_is_accepted_by_a_card_on_postgres() {
    certified_data_is_accepted_by_a_card(Backend::Postgres).await;
}

fn refused(result: Result<protocol::SignedObject, ClientError>) -> (u16, String, String) {
    match result {
        Err(ClientError::Refused {
            status,
            code,
            message,
            ..
        }) => (status, code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn refusals(backend: Backend) {
    let Some(place) = Place::new(backend, "sdci_prime_refusals").await else {
        return;
    };
    let fx = Fixture::start(&place, 32).await;
    let w = &fx.world;
    let mine = fx.sdi(Operation::Store, &fx.provider, DATA);
    let good = body(&mine, DATA);

    // Authentication: no header; an issuer (its IRC chains to a root this registrar does not
    // hold); testkit's provider-1 with its DPR from another registrar of the same name; a
    // request for another audience; a replay.
    assert_error(&fx.post(None, &good).await, 401, "unauthenticated");
    let (status, code, message) = refused(
        fx.certify(&w.pki.issuer, PartyRole::Issuer, &mine, DATA)
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (401, "unauthenticated"),
        "{message}"
    );
    let (status, code, message) = refused(
        fx.certify(&w.pki.provider, PartyRole::Provider, &mine, DATA)
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (401, "unauthenticated"),
        "{message}"
    );
    let elsewhere = fx
        .client
        .certify_data(
            &signer(&fx.provider, PartyRole::Provider),
            &PartyId::new("other-registrar").unwrap(),
            NOW,
            &mine,
            DATA,
        )
        .await;
    assert_eq!(refused(elsewhere).1, "unauthenticated");
    let header = fx.header(&fx.provider, &good);
    assert_eq!(fx.post(Some(&header), &good).await.status, 201);
    assert_error(
        &fx.post(Some(&header), &good).await,
        401,
        "request_replayed",
    );

    // Policy: provider-2 (certified here) asking for provider-1's item.
    let (status, code, message) = refused(
        fx.certify(&fx.provider_2, PartyRole::Provider, &mine, DATA)
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (403, "caller_not_owner"),
        "{message}"
    );
    assert!(message.contains("provider-1"), "{message}");

    // The data is not what the SDI describes; the SDI is a delete.
    for (sdi, data) in [
        (mine.clone(), &b"boarding pass: gate 13, seat 3A"[..]),
        (mine.clone(), &DATA[..DATA.len() - 1]),
        (fx.sdi(Operation::Delete, &fx.provider, DATA), DATA),
    ] {
        let (status, code, message) = refused(
            fx.certify(&fx.provider, PartyRole::Provider, &sdi, data)
                .await,
        );
        assert_eq!((status, code.as_str()), (422, "sdi_mismatch"), "{message}");
    }

    // Bodies that do not parse (signed as sent).
    let sdi_hex = hex::encode(mine.to_der());
    let data_hex = hex::encode(DATA);
    for (raw, code) in [
        (
            json!({"sdi": "zz", "data": data_hex}).to_string(),
            "invalid_sdi",
        ),
        (
            json!({"sdi": "3000", "data": data_hex}).to_string(),
            "invalid_sdi",
        ),
        (
            json!({"sdi": sdi_hex, "data": "0g"}).to_string(),
            "invalid_data",
        ),
        (json!({"sdi": sdi_hex}).to_string(), "invalid_body"),
        (
            json!({"sdi": sdi_hex, "data": data_hex, "more": 1}).to_string(),
            "invalid_body",
        ),
        ("{\"sdi\":".to_string(), "malformed_json"),
    ] {
        assert_error(
            &fx.post_signed(&fx.provider, raw.as_bytes()).await,
            400,
            code,
        );
    }

    // A revoked DPR authenticates no more (provider-2 first succeeds with its own item).
    let theirs = fx.sdi(Operation::Store, &fx.provider_2, DATA);
    fx.certify(&fx.provider_2, PartyRole::Provider, &theirs, DATA)
        .await
        .unwrap();
    fx.client
        .revoke(
            fx.server.token.expose(),
            fx.provider_2.cert.serial(),
            "key_compromise",
        )
        .await
        .unwrap();
    let (status, code, message) = refused(
        fx.certify(&fx.provider_2, PartyRole::Provider, &theirs, DATA)
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (401, "unauthenticated"),
        "{message}"
    );
    assert!(message.contains("revoked"), "{message}");

    // Only the two successes were recorded and counted.
    let providers: Vec<String> = fx
        .certifications()
        .await
        .iter()
        .map(|c| c.provider.to_string())
        .collect();
    assert_eq!(providers, ["provider-1", "provider-2"]);
    fx.assert_counted(2).await;

    fx.server.stop().await;
    place.finish().await;
}

#[tokio::test]
async fn every_refusal_gets_its_code_on_sqlite() {
    refusals(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_refusal_gets_its_code_on_postgres() {
    refusals(Backend::Postgres).await;
}

/// An issuer registrar has no such resource, whoever asks and however.
#[tokio::test]
async fn issuer_registrars_certify_no_data() {
    let place = Place::new(Backend::Sqlite, "sdci_prime_issuer_registrar")
        .await
        .unwrap();
    let server = Server::start(&place, RegistrarRole::IssuerRegistrar, "issuer-registrar").await;
    let w = World::new(33);
    let sdi = w.sdi(Operation::Store, b"item", 1, DATA);
    let response = server.post(PATH, &json!({}), None).await;
    assert_error(&response, 404, "not_a_data_registrar");
    let err = client_of(&server)
        .certify_data(
            &signer(&w.pki.issuer, PartyRole::Issuer),
            &PartyId::new("issuer-registrar").unwrap(),
            NOW,
            &sdi,
            DATA,
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.code()),
        (Some(404), Some("not_a_data_registrar"))
    );
    server.stop().await;
}
