//! Test harness: a provider for a `testkit` world on port 0 over SQLite (a temp file) or
//! PostgreSQL (a fresh database on `TEST_POSTGRES_URL`), a manual clock at the world's `NOW`,
//! and JSON requests.

use std::sync::Arc;

use provider::{App, ProviderConfig};
pub use server_kit::testing::{assert_error, hex_field as hex_of, Backend};
use server_kit::testing::{PlaceForTests, ResponseForTests, ServerForTests};
use server_kit::{ManualClock, OperatorToken};
use testkit::test_pki::TestPki;
use testkit::world::World;

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
}

impl Server {
    /// Opens and serves `w`'s provider on `place` with operator `alice`.
    pub async fn start(place: &Place, w: &World) -> Server {
        Server::start_with_operator(place, w, "alice").await
    }

    /// Opens and serves `w`'s provider on `place` with a new operator `operator` (instances
    /// sharing a database need distinct names).
    pub async fn start_with_operator(place: &Place, w: &World, operator: &str) -> Server {
        let clock = ManualClock::new(TestPki::NOW);
        let app = provider::open(&place.config(w, &clock)).await.unwrap();
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(operator.len() as u64);
        let token = app
            .db
            .add_operator(operator, TestPki::NOW, &mut rng)
            .await
            .unwrap();
        let running = ServerForTests::serve(provider::router(&app)).await;
        Server {
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
