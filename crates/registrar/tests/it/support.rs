//! Test harness: registrar instances on port 0 over SQLite (a temp file) or PostgreSQL (a fresh
//! database on `TEST_POSTGRES_URL`), a manual clock at [`NOW`], seeded keys, and JSON requests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pki::{PartyId, UnixTime};
use registrar::{App, RegistrarConfig, RegistrarRole};
pub use server_kit::testing::{assert_error, hex_field as der_of, Backend};
use server_kit::testing::{PlaceForTests, ResponseForTests, ServerForTests};
use server_kit::{ManualClock, OperatorToken};

/// 2027-01-15T08:00:00Z, as in testkit.
pub const NOW: UnixTime = UnixTime(1_800_000_000);

/// Where a test's database lives; dropped (PostgreSQL: database dropped) by [`Place::finish`].
pub struct Place(PlaceForTests);

impl std::ops::Deref for Place {
    type Target = PlaceForTests;

    fn deref(&self) -> &PlaceForTests {
        &self.0
    }
}

impl Place {
    /// A fresh database for `label`, or `None` when PostgreSQL is asked for and not configured
    /// (the skip is announced by `fresh_postgres_for_tests`).
    pub async fn new(backend: Backend, label: &str) -> Option<Place> {
        PlaceForTests::new(backend, label, "registrar.db")
            .await
            .map(Place)
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("root-key.pem")
    }

    pub fn config(&self, role: RegistrarRole, party: &str, clock: &ManualClock) -> RegistrarConfig {
        let mut config = RegistrarConfig::new(
            role,
            PartyId::new(party).unwrap(),
            self.dir.path().to_path_buf(),
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

/// A running registrar with one operator.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    pub token: OperatorToken,
    pub clock: ManualClock,
    pub running: ServerForTests,
}

impl Server {
    /// Opens and serves a registrar on `place` with operator `alice`.
    pub async fn start(place: &Place, role: RegistrarRole, party: &str) -> Server {
        Server::start_at(place, role, party, NOW).await
    }

    /// [`Server::start`] with the clock at `now` (its root is valid from then).
    pub async fn start_at(
        place: &Place,
        role: RegistrarRole,
        party: &str,
        now: UnixTime,
    ) -> Server {
        let clock = ManualClock::new(now);
        let app = registrar::open(&place.config(role, party, &clock))
            .await
            .unwrap();
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(party.len() as u64);
        let operator = format!("alice-{}", hex::encode(party));
        let token = app.db.add_operator(&operator, now, &mut rng).await.unwrap();
        Server::serve(app, token, clock).await
    }

    pub async fn serve(app: App, token: OperatorToken, clock: ManualClock) -> Server {
        let running = ServerForTests::serve(registrar::router(&app)).await;
        Server {
            addr: running.addr,
            app,
            token,
            clock,
            running,
        }
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
        self.post_raw(path, body.to_string().as_bytes(), authorization)
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: &[u8],
        authorization: Option<&str>,
    ) -> ResponseForTests {
        self.running
            .send_json("POST", path, body, authorization)
            .await
    }

    /// Issues a certificate for `subject` with a seeded key; returns the response body.
    pub async fn issue(&self, subject: &str, seed: u64) -> serde_json::Value {
        let response = self
            .post(
                "/v1/certificates",
                &serde_json::json!({"subject": subject, "public_key": public_key_hex(seed)}),
                Some(&self.bearer()),
            )
            .await;
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()
    }

    /// Stops serving (graceful) and closes the database.
    pub async fn stop(self) {
        self.running.stop().await;
        self.app.db.close().await;
    }
}

pub fn signing_key(seed: u64) -> crypto::SigningKey {
    crypto::SigningKey::generate(&mut crypto::InsecureSeededRng::insecure_seeded_for_tests(
        seed,
    ))
}

pub fn public_key_hex(seed: u64) -> String {
    hex::encode(signing_key(seed).verifying_key().to_sec1())
}
