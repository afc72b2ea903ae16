//! Test harness: registrar instances on port 0 over SQLite (a temp file) or PostgreSQL (a fresh
//! database on `TEST_POSTGRES_URL`), a manual clock at [`NOW`], seeded keys, and JSON requests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pki::{PartyId, UnixTime};
use registrar::{App, RegistrarConfig, RegistrarRole};
use server_kit::testing::{
    fresh_postgres_for_tests, request_for_tests, PostgresForTests, ResponseForTests,
};
use server_kit::{ManualClock, OperatorToken};

/// 2027-01-15T08:00:00Z, as in testkit.
pub const NOW: UnixTime = UnixTime(1_800_000_000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's database lives; dropped (PostgreSQL: database dropped) by [`Place::finish`].
pub struct Place {
    pub db_url: String,
    pub dir: tempfile::TempDir,
    pg: Option<PostgresForTests>,
}

impl Place {
    /// A fresh database for `label`, or `None` when PostgreSQL is asked for and not configured
    /// (the skip is announced by `fresh_postgres_for_tests`).
    pub async fn new(backend: Backend, label: &str) -> Option<Place> {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Some(Place {
                db_url: format!("sqlite:{}", dir.path().join("registrar.db").display()),
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
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }
}

/// A running registrar with one operator.
pub struct Server {
    pub addr: SocketAddr,
    pub app: App,
    pub token: OperatorToken,
    pub clock: ManualClock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Opens and serves a registrar on `place` with operator `alice`.
    pub async fn start(place: &Place, role: RegistrarRole, party: &str) -> Server {
        let clock = ManualClock::new(NOW);
        let app = registrar::open(&place.config(role, party, &clock))
            .await
            .unwrap();
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(party.len() as u64);
        let operator = format!("alice-{}", hex::encode(party));
        let token = app.db.add_operator(&operator, NOW, &mut rng).await.unwrap();
        Server::serve(app, token, clock).await
    }

    pub async fn serve(app: App, token: OperatorToken, clock: ManualClock) -> Server {
        let listener = server_kit::bind("127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(listener.serve(registrar::router(&app), async {
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
        self.post_raw(path, body.to_string().as_bytes(), authorization)
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: &[u8],
        authorization: Option<&str>,
    ) -> ResponseForTests {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(value) = authorization {
            headers.push(("Authorization", value));
        }
        request_for_tests(self.addr, "POST", path, &headers, Some(body))
            .await
            .unwrap()
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

pub fn signing_key(seed: u64) -> crypto::SigningKey {
    crypto::SigningKey::generate(&mut crypto::InsecureSeededRng::insecure_seeded_for_tests(
        seed,
    ))
}

pub fn public_key_hex(seed: u64) -> String {
    hex::encode(signing_key(seed).verifying_key().to_sec1())
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

pub fn der_of(value: &serde_json::Value, field: &str) -> Vec<u8> {
    hex::decode(
        value[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {value}")),
    )
    .unwrap()
}
