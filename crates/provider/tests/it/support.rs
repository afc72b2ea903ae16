//! Test harness: a provider for a `testkit` world on port 0 over SQLite (a temp file) or
//! PostgreSQL (a fresh database on `TEST_POSTGRES_URL`), a manual clock at the world's `NOW`,
//! and JSON requests.

use std::net::SocketAddr;
use std::sync::Arc;

use provider::{App, ProviderConfig};
use server_kit::testing::{
    fresh_postgres_for_tests, request_for_tests, PostgresForTests, ResponseForTests,
};
use server_kit::{ManualClock, OperatorToken};
use testkit::test_pki::TestPki;
use testkit::world::World;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's database and files live; dropped (PostgreSQL: database dropped) by
/// [`Place::finish`].
pub struct Place {
    pub db_url: String,
    pub dir: tempfile::TempDir,
    pg: Option<PostgresForTests>,
}

impl Place {
    /// A fresh database for `label`, or `None` when PostgreSQL is asked for and not configured.
    pub async fn new(backend: Backend, label: &str) -> Option<Place> {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Some(Place {
                db_url: format!("sqlite:{}", dir.path().join("provider.db").display()),
                dir,
                pg: None,
            }),
            Backend::Postgres => {
                let pg = fresh_postgres_for_tests(label).await?;
                Some(Place {
                    db_url: pg.url.clone(),
                    dir,
                    pg: Some(pg),
                })
            }
        }
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
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }
}

/// A running provider with one operator.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    pub token: OperatorToken,
    pub clock: ManualClock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
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
        let listener = server_kit::bind("127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(listener.serve(provider::router(&app), async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            app,
            token,
            clock,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token.expose())
    }

    pub async fn get(&self, path: &str) -> ResponseForTests {
        request_for_tests(self.addr, "GET", path, &[], None)
            .await
            .unwrap()
    }

    /// POSTs JSON with `authorization` (a full header value) if given.
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        authorization: Option<&str>,
    ) -> ResponseForTests {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(value) = authorization {
            headers.push(("Authorization", value));
        }
        let body = body.to_string();
        request_for_tests(self.addr, "POST", path, &headers, Some(body.as_bytes()))
            .await
            .unwrap()
    }

    /// Stops serving (graceful) and closes the database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        self.app.db.close().await;
    }
}

/// Asserts a 4xx with `code` and a non-empty message.
pub fn assert_error(response: &ResponseForTests, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Decodes the hex string `field` of `value`.
pub fn hex_of(value: &serde_json::Value, field: &str) -> Vec<u8> {
    hex::decode(
        value[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {value}")),
    )
    .unwrap()
}
