//! Test harness: an issuer on port 0 over SQLite (a temp file) or PostgreSQL (a fresh database
//! on `TEST_POSTGRES_URL`), configured from testkit's PKI (`issuer-1`'s key and IRC, both
//! registrar roots) with a manual clock at `TestPki::NOW`, and a real card from
//! `testkit::world::World` personalised from the issuer's record and registered through it.

use std::sync::Arc;

pub use crate::stub_provider::{Answer, MemberAnswer, StubProvider};
use crypto::SymmetricKey;
use issuer::{App, IssuerConfig};
use party_api::issuer::{GrantResponse, IssuerClient};
use party_api::{ClientError, HttpClient, PartySigner};
use pki::{CardId, Certificate, UnixTime};
use protocol::{Challenge, Operation, PartyRole, Policy, Sar, Sdi, SignedObject};
pub use server_kit::testing::{assert_error, hex_field as bytes_of, Backend};
use server_kit::testing::{PlaceForTests, ResponseForTests, ServerForTests};
use server_kit::{ManualClock, OperatorToken};
use terminal::Personalisation;
use testkit::test_pki::{TestParty, TestPki};
use testkit::world::{TestClient, World, PIN};

pub const NOW: UnixTime = TestPki::NOW;

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
    pub async fn new(backend: Backend, label: &str) -> Option<Place> {
        PlaceForTests::new(backend, label, "issuer.db")
            .await
            .map(Place)
    }

    /// A configuration from `pki`: the key as PKCS#8 PEM, the IRC as PEM, the roots as DER
    /// (both file forms are read).
    pub fn config(&self, pki: &TestPki, clock: &ManualClock) -> IssuerConfig {
        let dir = self.dir.path();
        let write = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let key = write("issuer-key.pem", pki.issuer.key.to_pkcs8_pem().as_bytes());
        let irc = write("irc.pem", pki.issuer.cert.to_pem().as_bytes());
        let ir = write("issuer-registrar.der", pki.issuer_registrar.cert.der());
        let dr = write("data-registrar.der", pki.data_registrar.cert.der());
        let mut config = IssuerConfig::new(
            pki.issuer.id.clone(),
            key,
            irc,
            ir,
            dr,
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

/// A running issuer with one operator.
pub struct Server {
    pub app: App,
    pub token: OperatorToken,
    pub clock: ManualClock,
    /// party_api's client of this server (kept-alive connections).
    pub client: IssuerClient,
    running: ServerForTests,
}

impl Server {
    pub async fn start(place: &Place, pki: &TestPki) -> Server {
        Server::start_as(place, pki, "olga").await
    }

    /// An instance whose operator is `operator` (instances sharing a database need distinct
    /// operator names).
    pub async fn start_as(place: &Place, pki: &TestPki, operator: &str) -> Server {
        Server::start_with(place, pki, operator, |_| {}).await
    }

    /// An instance whose configuration `adjust` changed first.
    pub async fn start_with(
        place: &Place,
        pki: &TestPki,
        operator: &str,
        adjust: impl FnOnce(&mut IssuerConfig),
    ) -> Server {
        let clock = ManualClock::new(NOW);
        let mut config = place.config(pki, &clock);
        adjust(&mut config);
        let app = issuer::open(&config).await.unwrap();
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(operator.len() as u64);
        let token = app.db.add_operator(operator, NOW, &mut rng).await.unwrap();
        let running = ServerForTests::serve(issuer::router(&app)).await;
        let client = IssuerClient::with_party_id(
            HttpClient::new(&format!("http://{}", running.addr)).unwrap(),
            pki.issuer.id.clone(),
        );
        Server {
            app,
            token,
            clock,
            client,
            running,
        }
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose())
    }

    pub async fn get(&self, path: &str) -> ResponseForTests {
        self.running.get(path).await
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
        authorization: Option<&str>,
    ) -> ResponseForTests {
        let body = body.to_string();
        self.running
            .send_json(method, path, body.as_bytes(), authorization)
            .await
    }

    /// POSTs `body` as JSON with extra `headers`, byte for byte (for party request headers).
    pub async fn send_json_raw(
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

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> ResponseForTests {
        self.send("POST", path, body, None).await
    }

    /// POST as the operator.
    pub async fn operate(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> ResponseForTests {
        let bearer = self.bearer();
        self.send(method, path, body, Some(&bearer)).await
    }

    pub async fn allow(&self, provider: &str, quota_bytes: u32) {
        self.allow_at(provider, quota_bytes, None).await;
    }

    /// Allows `provider` with its server at `url` (STO-1 forwarding goes there).
    pub async fn allow_at(&self, provider: &str, quota_bytes: u32, url: Option<&str>) {
        let r = self
            .operate(
                "PUT",
                &format!("/v1/providers/{provider}"),
                &serde_json::json!({"status": "allowed", "quota_bytes": quota_bytes, "url": url}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["url"].as_str(), url);
    }

    pub async fn stop(self) {
        self.running.stop().await;
        self.app.db.close().await;
    }
}

pub fn object_of(value: &serde_json::Value, field: &str) -> SignedObject {
    SignedObject::from_der(&bytes_of(value, field)).unwrap()
}

/// `terminal::Personalisation` from the issuer's JSON record.
pub fn personalisation_from(record: &serde_json::Value) -> Personalisation {
    let cert = |f: &str| Certificate::from_der(&bytes_of(record, f)).unwrap();
    Personalisation {
        card_id: CardId::from_slice(&bytes_of(record, "card_id")).unwrap(),
        sk: SymmetricKey::from_bytes(&bytes_of(record, "sk")).unwrap(),
        sk_version: record["sk_version"].as_u64().unwrap() as u8,
        issuer_anchor: cert("issuer_anchor"),
        data_anchor: cert("data_anchor"),
        issuer: pki::PartyId::new(record["issuer"].as_str().unwrap()).unwrap(),
        pin: record["pin"].as_str().unwrap().to_string(),
        pin_salt: bytes_of(record, "pin_salt").try_into().unwrap(),
        pin_try_limit: record["pin_try_limit"].as_u64().unwrap() as u8,
        issuer_authenticator: bytes_of(record, "issuer_authenticator"),
        capacity: record["capacity"].as_u64().unwrap() as u32,
        time_floor: UnixTime(record["time_floor"].as_u64().unwrap()),
    }
}

/// A card the issuer personalised (record from `POST /v1/cards`), PIN verified.
pub async fn personalised_card(server: &Server, w: &World) -> (TestClient, CardId) {
    let r = server
        .operate(
            "POST",
            "/v1/cards",
            &serde_json::json!({"pin": PIN, "capacity": 4096}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let p = personalisation_from(&r.json());
    let mut c = w.client(w.blank_card());
    c.select_card_manager().unwrap();
    c.personalise(&p).unwrap();
    c.verify_pin(PIN).unwrap();
    (c, p.card_id)
}

/// Drives REG-2 through the issuer: challenge, the card's REGISTER, the RC, REGISTER
/// COMPLETE. Returns the RC and the registration object sent (for replay tests).
pub async fn register(
    server: &Server,
    w: &World,
    c: &mut TestClient,
    card_id: &CardId,
) -> (Certificate, SignedObject) {
    let r = server
        .post(
            &format!("/v1/cards/{}/challenge", card_id.to_hex()),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let challenge: [u8; 16] = bytes_of(&r.json(), "challenge").try_into().unwrap();
    let registration = c.register(&w.user, &challenge).unwrap();
    let r = server
        .post(
            &format!("/v1/cards/{}/registration", card_id.to_hex()),
            &serde_json::json!({"registration": hex::encode(registration.to_der())}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    let rc = Certificate::from_der(&bytes_of(&body, "rc")).unwrap();
    let irc = Certificate::from_der(&bytes_of(&body, "irc")).unwrap();
    c.register_complete(&rc, &irc).unwrap();
    (rc, registration)
}

/// An SDI for `card_id`, owned by `owner`.
pub fn sdi(
    card_id: CardId,
    operation: Operation,
    item: &[u8],
    data: &[u8],
    owner: &pki::PartyId,
) -> Sdi {
    Sdi {
        card_id,
        operation,
        item_id: protocol::ItemId::new(item).unwrap(),
        version: 1,
        size: data.len() as u32,
        data_digest: crypto::sha256(data),
        owner: owner.clone(),
        policy: Policy::NONE,
    }
}

/// `provider-1`'s SAR for `sdi` over the card's `challenge`, bound to `rc`.
pub fn provider_sar(w: &World, sdi: &Sdi, challenge: Challenge, rc: &Certificate) -> SignedObject {
    sar_of(&w.pki.provider, &w.pki.provider.key, sdi, challenge, rc)
}

/// Provider `p`'s SAR (requester `p`, chain `[p's DPR]`) for `sdi` over `challenge`, bound to
/// `rc`, valid 600 s from `NOW`, signed with `key` (`p.key` unless forging).
pub fn sar_of(
    p: &TestParty,
    key: &crypto::SigningKey,
    sdi: &Sdi,
    challenge: Challenge,
    rc: &Certificate,
) -> SignedObject {
    Sar {
        requester_role: PartyRole::Provider,
        requester: p.id.clone(),
        rc_digest: rc.digest(),
        sdi: sdi.clone(),
        challenge,
        issued_at: NOW,
        not_after: UnixTime(NOW.0 + 600),
    }
    .sign(key, vec![p.cert.der().to_vec()])
}

/// The card's ledger from `GET /v1/cards/{id}/ledger`, checked with `verify_ledger` under the
/// issuer's key and `rc` (which must be the RC the ledger names).
pub async fn verified_ledger(
    server: &Server,
    card_id: &CardId,
    w: &World,
    rc: &Certificate,
) -> protocol::LedgerSummary {
    let ledger = server
        .get(&format!("/v1/cards/{}/ledger", card_id.to_hex()))
        .await
        .json();
    assert_eq!(ledger["rc"], hex::encode(rc.der()));
    let entries: Vec<SignedObject> = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| SignedObject::from_der(&hex::decode(e.as_str().unwrap()).unwrap()).unwrap())
        .collect();
    protocol::verify_ledger(&entries, &w.pki.issuer.public_key(), rc).unwrap()
}

/// `party`'s request signer (a provider of the test PKI, with its DPR).
pub fn provider_signer(party: &TestParty) -> PartySigner {
    PartySigner::new(
        party.id.clone(),
        PartyRole::Provider,
        party.key.clone(),
        party.cert.clone(),
    )
}

/// `POST /v1/authorizations/grant {sar}` as a party request signed by provider `party` at the
/// server's clock, through party_api's client.
pub async fn grant_as(
    server: &Server,
    party: &TestParty,
    sar: &SignedObject,
) -> Result<GrantResponse, ClientError> {
    let now = server_kit::Clock::now(&server.clock);
    server.client.grant(&provider_signer(party), now, sar).await
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
