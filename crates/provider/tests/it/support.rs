//! Test harness: a provider for a `testkit` world on port 0 over SQLite (a temp file) or
//! PostgreSQL (a fresh database on `TEST_POSTGRES_URL`), a manual clock at the world's `NOW`,
//! JSON requests, and party requests signed with `party_api::PartySigner` (seeded nonces).

use std::sync::{Arc, Mutex};

use party_api::provider::ProviderClient;
use party_api::{ClientError, HttpClient, PartySigner};
use pki::{CertificateRequest, PartyId, Role};
use protocol::PartyRole;
use provider::{App, ProviderConfig};
pub use server_kit::testing::{assert_error, hex_field as hex_of, Backend};
use server_kit::testing::{PlaceForTests, ResponseForTests, ServerForTests};
use server_kit::{Clock, ManualClock, OperatorToken};
use testkit::test_pki::{TestParty, TestPki};
use testkit::world::World;

use crate::stub_issuer::StubIssuer;

/// `party`'s request signer as an issuer (with its IRC).
pub fn issuer_signer(party: &TestParty) -> PartySigner {
    PartySigner::new(
        party.id.clone(),
        PartyRole::Issuer,
        party.key.clone(),
        party.cert.clone(),
    )
}

/// `party`'s request signer as a provider (with its DPR).
pub fn provider_signer(party: &TestParty) -> PartySigner {
    PartySigner::new(
        party.id.clone(),
        PartyRole::Provider,
        party.key.clone(),
        party.cert.clone(),
    )
}

/// `issuer-2`: a second issuer certified by the world's Issuer Registrar (IRC serial 11), so
/// trusted like `issuer-1` but another party.
pub fn second_issuer(pki: &TestPki) -> TestParty {
    let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(0x1552);
    let key = crypto::SigningKey::generate(&mut rng);
    let id = PartyId::new("issuer-2").unwrap();
    let request = CertificateRequest::party(
        Role::Issuer,
        id.clone(),
        key.verifying_key(),
        11,
        TestPki::NOT_BEFORE,
        TestPki::NOT_AFTER,
    );
    let cert = pki::issue(
        &request,
        &pki.issuer_registrar.cert,
        &pki.issuer_registrar.key,
    )
    .unwrap();
    TestParty { id, key, cert }
}

/// Asserts the call was refused with `status` and `code` and a message.
pub fn assert_refused<T: std::fmt::Debug>(result: Result<T, ClientError>, status: u16, code: &str) {
    match result {
        Err(ClientError::Refused {
            status: s,
            code: c,
            message,
            ..
        }) => {
            assert_eq!((s, c.as_str()), (status, code), "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected {status} {code}, got {other:?}"),
    }
}

/// Where a test's database and files live; dropped (PostgreSQL: database dropped) by
/// [`Place::finish`].
pub struct Place(PlaceForTests);

impl std::ops::Deref for Place {
    type Target = PlaceForTests;

    fn deref(&self) -> &PlaceForTests {
        &self.0
    }
}

impl Place {
    /// A fresh database for `label`, or `None` when PostgreSQL is asked for and not configured.
    pub async fn new(backend: Backend, label: &str) -> Option<Place> {
        PlaceForTests::new(backend, label, "provider.db")
            .await
            .map(Place)
    }

    /// The configuration of `w`'s provider: its key, DPR and the two roots written as files.
    pub fn config(&self, w: &World, clock: &ManualClock) -> ProviderConfig {
        let file = |name: &str, contents: &str| {
            let path = self.dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        let mut config = ProviderConfig::new(
            w.pki.provider.id.clone(),
            file("provider-key.pem", &w.pki.provider.key.to_pkcs8_pem()),
            file("dpr.pem", &w.pki.provider.cert.to_pem()),
            file("issuer-root.pem", &w.pki.issuer_anchor().to_pem()),
            file("data-root.pem", &w.pki.data_anchor().to_pem()),
            self.db_url.clone(),
            "127.0.0.1:0".parse().unwrap(),
        );
        config.clock = Arc::new(clock.clone());
        config
    }

    pub async fn finish(self) {
        self.0.finish().await;
    }
}

/// A running provider with one operator.
pub struct Server {
    pub app: App,
    pub token: OperatorToken,
    pub clock: ManualClock,
    pub running: ServerForTests,
    /// party_api's client of this server (kept-alive connections).
    pub client: HttpClient,
    /// The world's issuer (`issuer-1`) signing party requests.
    pub issuer: PartySigner,
    /// Nonces of the party request headers the harness signs itself.
    nonces: Mutex<crypto::InsecureSeededRng>,
}

impl Server {
    /// Opens and serves `w`'s provider on `place` with operator `alice`.
    pub async fn start(place: &Place, w: &World) -> Server {
        Server::start_with_operator(place, w, "alice").await
    }

    /// Opens and serves `w`'s provider on `place` with a new operator `operator` (instances
    /// sharing a database need distinct names).
    pub async fn start_with_operator(place: &Place, w: &World, operator: &str) -> Server {
        Server::start_with_issuers(place, w, operator, Vec::new()).await
    }

    /// Like [`Server::start_with_operator`], working with `issuers` (party ID, base URL).
    pub async fn start_with_issuers(
        place: &Place,
        w: &World,
        operator: &str,
        issuers: Vec<(PartyId, String)>,
    ) -> Server {
        Server::start_configured(place, w, operator, |config| config.issuers = issuers).await
    }

    /// Like [`Server::start_with_operator`], its configuration changed by `configure` first.
    pub async fn start_configured(
        place: &Place,
        w: &World,
        operator: &str,
        configure: impl FnOnce(&mut ProviderConfig),
    ) -> Server {
        let clock = ManualClock::new(TestPki::NOW);
        let mut config = place.config(w, &clock);
        configure(&mut config);
        let app = provider::open(&config).await.unwrap();
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(operator.len() as u64);
        let token = app
            .db
            .add_operator(operator, TestPki::NOW, &mut rng)
            .await
            .unwrap();
        let running = ServerForTests::serve(provider::router(&app)).await;
        let client = HttpClient::new(&format!("http://{}", running.addr)).unwrap();
        Server {
            app,
            token,
            clock,
            running,
            client,
            issuer: issuer_signer(&w.pki.issuer),
            nonces: Mutex::new(crypto::InsecureSeededRng::insecure_seeded_for_tests(
                0x90 + operator.len() as u64,
            )),
        }
    }

    /// `w`'s provider working with `w`'s issuer, played by a [`StubIssuer`] (granting) that
    /// runs until stopped.
    pub async fn start_with_stub_issuer(place: &Place, w: &World) -> (Server, StubIssuer) {
        let clock = ManualClock::new(TestPki::NOW);
        let issuer = StubIssuer::start(&w.pki.issuer, &w.pki, &clock, place.dir.path()).await;
        let issuers = vec![(w.pki.issuer.id.clone(), issuer.url.clone())];
        let server = Server::start_with_issuers(place, w, "alice", issuers).await;
        (server, issuer)
    }

    /// party_api's typed client of this server.
    pub fn provider_client(&self) -> ProviderClient {
        ProviderClient::new(self.client.clone())
    }

    /// This provider's party ID (the audience of party requests to it).
    pub fn party_id(&self) -> PartyId {
        self.app.provider.party_id().clone()
    }

    /// A `Cardwright-Request` header value for `POST path` with `body`, signed by `signer`
    /// for this provider at the server's clock.
    pub fn party_header(&self, signer: &PartySigner, path: &str, body: &[u8]) -> String {
        let mut rng = self.nonces.lock().unwrap();
        signer
            .sign_request(
                "POST",
                path,
                body,
                &self.party_id(),
                self.clock.now(),
                &mut *rng,
            )
            .unwrap()
    }

    /// POSTs `body` byte for byte with extra `headers` (e.g. a party request header).
    pub async fn post_raw(
        &self,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> ResponseForTests {
        let mut all = vec![("Content-Type", "application/json")];
        all.extend_from_slice(headers);
        server_kit::testing::request_for_tests(self.running.addr, "POST", path, &all, Some(body))
            .await
            .unwrap()
    }

    /// POSTs JSON as a party request signed by `signer`.
    pub async fn post_party(
        &self,
        path: &str,
        body: &serde_json::Value,
        signer: &PartySigner,
    ) -> ResponseForTests {
        let body = body.to_string();
        let header = self.party_header(signer, path, body.as_bytes());
        self.post_raw(path, body.as_bytes(), &[("Cardwright-Request", &header)])
            .await
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose())
    }

    pub async fn get(&self, path: &str) -> ResponseForTests {
        self.running.get(path).await
    }

    /// POSTs JSON with `authorization` (a full header value) if given.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        authorization: Option<&str>,
    ) -> ResponseForTests {
        let body = body.to_string();
        self.running
            .send_json("POST", path, body.as_bytes(), authorization)
            .await
    }

    /// Stops serving (graceful) and closes the database.
    pub async fn stop(self) {
        self.running.stop().await;
        self.app.db.close().await;
    }
}
