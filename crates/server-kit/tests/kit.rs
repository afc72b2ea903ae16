//! server-kit's behaviour through its public API: databases (SQLite always, PostgreSQL when
//! `TEST_POSTGRES_URL` is set), migrations, operator tokens, the kit's routes and layers over
//! a real socket on port 0, and the TLS listener.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use server_kit::testing::{fresh_postgres_for_tests, request_for_tests, ResponseForTests};
use server_kit::{
    ApiError, ApiJson, Db, DbError, Kit, Metrics, Migration, MigrationSet, Operator, OperatorToken,
};

const NOW: pki::UnixTime = pki::UnixTime(1_800_000_000);

const TEST_SET: MigrationSet = MigrationSet {
    component: "kit-test",
    sqlite: &[Migration {
        version: 1,
        description: "things",
        sql: "CREATE TABLE things (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES things(id));",
    }],
    postgres: &[Migration {
        version: 1,
        description: "things",
        sql: "CREATE TABLE things (id BIGINT PRIMARY KEY, parent BIGINT REFERENCES things(id));",
    }],
};

const CHANGED_SET: MigrationSet = MigrationSet {
    component: "kit-test",
    sqlite: &[Migration {
        version: 1,
        description: "things",
        sql: "CREATE TABLE things (id INTEGER PRIMARY KEY);",
    }],
    postgres: &[Migration {
        version: 1,
        description: "things",
        sql: "CREATE TABLE things (id BIGINT PRIMARY KEY);",
    }],
};

fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("kit.db").display())
}

#[tokio::test]
async fn unsupported_urls_say_what_is_accepted() {
    for url in [
        "mysql://x/y",
        "sqlite::memory:",
        "sqlite:",
        "postgres:/nope",
        "/tmp/x.db",
    ] {
        let err = Db::open(url).await.unwrap_err();
        assert!(
            matches!(err, DbError::UnsupportedUrl { .. }),
            "{url}: {err}"
        );
        let message = err.to_string();
        assert!(
            message.contains("sqlite:PATH") && message.contains("postgres://"),
            "{message}"
        );
    }
    let err = Db::open("postgres://cw:hunter2@127.0.0.1:1/db")
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::Open { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_with_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&sqlite_url(&dir)).await.unwrap();
    assert!(dir.path().join("kit.db").exists());
    let Db::Sqlite(pool) = &db else {
        panic!("not sqlite")
    };
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    db.migrate(&TEST_SET).await.unwrap();
    let err = sqlx::query("INSERT INTO things (id, parent) VALUES (1, 99)")
        .execute(pool)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
}

async fn migrations_and_operators(db: &Db) {
    db.migrate(&TEST_SET).await.unwrap();
    db.migrate(&TEST_SET).await.unwrap(); // idempotent
    let err = db.migrate(&CHANGED_SET).await.unwrap_err();
    assert!(
        matches!(
            err,
            DbError::MigrationChanged {
                component: "kit-test",
                version: 1,
                ..
            }
        ),
        "{err}"
    );
    db.ping().await.unwrap();

    let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(3);
    let alice = db.add_operator("alice", NOW, &mut rng).await.unwrap();
    let err = db.add_operator("alice", NOW, &mut rng).await.unwrap_err();
    assert!(
        matches!(&err, DbError::OperatorExists { name } if name == "alice"),
        "{err}"
    );
    let found = db.operator_by_token(&alice).await.unwrap().unwrap();
    assert_eq!(
        (found.name.as_str(), found.created_at, found.disabled_at),
        ("alice", NOW, None)
    );
    let stranger = OperatorToken::generate(&mut rng);
    assert_eq!(db.operator_by_token(&stranger).await.unwrap(), None);
    assert!(db
        .disable_operator("alice", pki::UnixTime(NOW.0 + 5))
        .await
        .unwrap());
    assert!(!db.disable_operator("bob", NOW).await.unwrap());
    let found = db.operator_by_token(&alice).await.unwrap().unwrap();
    assert_eq!(found.disabled_at, Some(pki::UnixTime(NOW.0 + 5)));
}

#[tokio::test]
async fn migrations_and_operators_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&sqlite_url(&dir)).await.unwrap();
    assert_eq!(db.backend(), "sqlite");
    migrations_and_operators(&db).await;
}

#[tokio::test]
async fn migrations_and_operators_on_postgres() {
    let Some(pg) = fresh_postgres_for_tests("kit_migrations").await else {
        return;
    };
    let db = Db::open(&pg.url).await.unwrap();
    assert_eq!(db.backend(), "postgres");
    migrations_and_operators(&db).await;
    db.close().await;
    pg.drop_database().await;
}

#[tokio::test]
async fn concurrent_migrations_on_postgres_apply_once() {
    let Some(pg) = fresh_postgres_for_tests("kit_concurrent_migrate").await else {
        return;
    };
    let a = Db::open(&pg.url).await.unwrap();
    let b = Db::open(&pg.url).await.unwrap();
    let (ra, rb) = tokio::join!(a.migrate(&TEST_SET), b.migrate(&TEST_SET));
    ra.unwrap();
    rb.unwrap();
    a.close().await;
    b.close().await;
    pg.drop_database().await;
}

#[derive(serde::Deserialize)]
#[allow(dead_code)] // only deserialised
struct Body {
    name: String,
}

/// A server with the kit's layers around a few routes that exercise them.
async fn spawn_test_server(db: Db) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let kit = Kit {
        db: db.clone(),
        metrics: Metrics::new(),
    };
    let api = Router::new()
        .route("/ok", get(|| async { "fine" }))
        .route(
            "/fail",
            get(|| async { Err::<(), _>(ApiError::internal("the secret cause")) }),
        )
        .route("/guarded", get(|op: Operator| async move { op.name }))
        .route(
            "/json",
            post(|ApiJson(b): ApiJson<Body>| async move { b.name }),
        )
        .with_state(db);
    let router = server_kit::finish(api, &kit);
    let listener = server_kit::bind("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let addr = listener.local_addr();
    assert_ne!(addr.port(), 0);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(listener.serve(router, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

async fn get_(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> ResponseForTests {
    request_for_tests(addr, "GET", path, headers, None)
        .await
        .unwrap()
}

fn assert_error(response: &ResponseForTests, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn kit_routes_and_layers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&sqlite_url(&dir)).await.unwrap();
    db.migrate(&TEST_SET).await.unwrap();
    let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(4);
    let token = db.add_operator("alice", NOW, &mut rng).await.unwrap();
    let gone = db.add_operator("gone", NOW, &mut rng).await.unwrap();
    db.disable_operator("gone", NOW).await.unwrap();
    let (addr, _stop) = spawn_test_server(db).await;

    let ok = get_(addr, "/ok", &[]).await;
    assert_eq!((ok.status, ok.text().as_str()), (200, "fine"));
    assert_eq!(ok.header("x-request-id").map(str::len), Some(16));
    let echoed = get_(addr, "/ok", &[("x-request-id", "abc123")]).await;
    assert_eq!(echoed.header("x-request-id"), Some("abc123"));

    let health = get_(addr, "/health", &[]).await;
    assert_eq!(health.status, 200);
    assert_eq!(
        health.json(),
        serde_json::json!({"status": "ok", "db": "ok"})
    );

    assert_error(&get_(addr, "/nowhere", &[]).await, 404, "not_found");
    assert_error(
        &request_for_tests(addr, "DELETE", "/ok", &[], None)
            .await
            .unwrap(),
        405,
        "method_not_allowed",
    );

    let fail = get_(addr, "/fail", &[]).await;
    assert_eq!(fail.status, 500);
    let id = fail.header("x-request-id").unwrap().to_string();
    assert_eq!(
        fail.json(),
        serde_json::json!({"code": "internal", "request_id": id})
    );
    assert!(!fail.text().contains("secret"));

    // Operators.
    assert_error(&get_(addr, "/guarded", &[]).await, 401, "unauthenticated");
    let missing = get_(addr, "/guarded", &[]).await;
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    assert_error(
        &get_(addr, "/guarded", &[("Authorization", "Bearer nope")]).await,
        401,
        "unauthenticated",
    );
    assert_error(
        &get_(addr, "/guarded", &[("Authorization", "Basic YWxpY2U6eA==")]).await,
        401,
        "unauthenticated",
    );
    let stranger = format!("Bearer {}", OperatorToken::generate(&mut rng).expose());
    assert_error(
        &get_(addr, "/guarded", &[("Authorization", &stranger)]).await,
        401,
        "unauthenticated",
    );
    let disabled = format!("Bearer {}", gone.expose());
    assert_error(
        &get_(addr, "/guarded", &[("Authorization", &disabled)]).await,
        403,
        "forbidden",
    );
    let bearer = format!("Bearer {}", token.expose());
    let me = get_(addr, "/guarded", &[("Authorization", &bearer)]).await;
    assert_eq!((me.status, me.text().as_str()), (200, "alice"));

    // JSON bodies.
    let json = |body: &'static str, content_type: Option<&'static str>| async move {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("Content-Type", ct))
            .into_iter()
            .collect();
        request_for_tests(addr, "POST", "/json", &headers, Some(body.as_bytes()))
            .await
            .unwrap()
    };
    let ok = json(r#"{"name":"x"}"#, Some("application/json")).await;
    assert_eq!((ok.status, ok.text().as_str()), (200, "x"));
    assert_error(
        &json(r#"{"name":"x"}"#, None).await,
        415,
        "unsupported_media_type",
    );
    assert_error(
        &json(r#"{"name":"#, Some("application/json")).await,
        400,
        "malformed_json",
    );
    let missing = json(r#"{"nom":"x"}"#, Some("application/json")).await;
    assert_error(&missing, 400, "invalid_body");
    assert!(
        missing.json()["message"].as_str().unwrap().contains("name"),
        "{}",
        missing.text()
    );

    // Metrics saw the above, by route template and status.
    let metrics = get_(addr, "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let text = metrics.text();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/ok",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/guarded",status="401"} 5"#),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"http_request_duration_seconds_count{route="/fail"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn health_reports_an_unavailable_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&sqlite_url(&dir)).await.unwrap();
    let (addr, _stop) = spawn_test_server(db.clone()).await;
    db.close().await;
    let health = get_(addr, "/health", &[]).await;
    assert_eq!(health.status, 503);
    assert_eq!(
        health.json(),
        serde_json::json!({"status": "unavailable", "db": "error"})
    );
}

#[tokio::test]
async fn graceful_shutdown_stops_the_listener() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&sqlite_url(&dir)).await.unwrap();
    let kit = Kit {
        db,
        metrics: Metrics::new(),
    };
    let listener = server_kit::bind("127.0.0.1:0".parse().unwrap(), None)
        .await
        .unwrap();
    let addr = listener.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        listener.serve(server_kit::finish(Router::new(), &kit), async {
            let _ = stopped.await;
        }),
    );
    assert_eq!(get_(addr, "/health", &[]).await.status, 200);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

/// TLS: a certificate made by openssl (tests elsewhere already need /usr/bin/openssl), served by
/// our listener, fetched by a rustls client that trusts only that certificate.
#[tokio::test]
async fn serves_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let made = server_kit::testing::self_signed_tls_for_tests(dir.path(), "cert");
    let (cert, key) = (made.certificate_chain, made.private_key);

    let bad = server_kit::TlsFiles {
        certificate_chain: key.clone(),
        private_key: key.clone(),
    };
    let err = server_kit::bind("127.0.0.1:0".parse().unwrap(), Some(&bad))
        .await
        .unwrap_err();
    assert!(matches!(err, server_kit::KitError::Tls { .. }), "{err}");

    let files = server_kit::TlsFiles {
        certificate_chain: cert.clone(),
        private_key: key,
    };
    let db = Db::open(&sqlite_url(&dir)).await.unwrap();
    let kit = Kit {
        db,
        metrics: Metrics::new(),
    };
    let listener = server_kit::bind("127.0.0.1:0".parse().unwrap(), Some(&files))
        .await
        .unwrap();
    assert_eq!(listener.scheme(), "https");
    let addr = listener.local_addr();
    tokio::spawn(listener.serve(
        server_kit::finish(Router::new(), &kit),
        std::future::pending(),
    ));

    // A client that stalls its handshake does not block others.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();

    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    let raw = server_kit::testing::send_raw(&mut tls, addr, "GET", "/health", &[], None)
        .await
        .unwrap();
    let response = server_kit::testing::parse_response(&raw).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json()["status"], "ok");
}
