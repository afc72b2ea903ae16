//! Test support for server crates (not for production): a fresh PostgreSQL database per test
//! from `TEST_POSTGRES_URL`, a test's database and scratch directory on either backend
//! ([`PlaceForTests`]), a router served on port 0 ([`ServerForTests`]), and a minimal HTTP/1.1
//! client for API tests (one request per connection, no pooling, no redirects: just enough to
//! see status, headers and body exactly as a client would).

use std::io::Write as _;
use std::net::SocketAddr;

use axum::Router;

use sqlx::{Connection, Executor, PgConnection};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The environment variable naming an administrative PostgreSQL URL for tests
/// (`scripts/test.sh` starts a private cluster and sets it).
pub const TEST_POSTGRES_URL: &str = "TEST_POSTGRES_URL";

/// A database created for one test on the cluster of `TEST_POSTGRES_URL`.
#[derive(Debug)]
pub struct PostgresForTests {
    /// URL of the new database.
    pub url: String,
    admin_url: String,
    name: String,
}

/// Creates an empty database with a random name for test `label`, or — when
/// `TEST_POSTGRES_URL` is not set — says on the real stderr (past the test harness's capture)
/// that the test is skipped and returns `None`. Under `CI` a missing URL is a failure: CI must
/// run the PostgreSQL tests.
pub async fn fresh_postgres_for_tests(label: &str) -> Option<PostgresForTests> {
    let Ok(admin_url) = std::env::var(TEST_POSTGRES_URL) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{TEST_POSTGRES_URL} is not set under CI: the PostgreSQL tests must run (scripts/test.sh sets it)"
        );
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED on PostgreSQL: {label} ({TEST_POSTGRES_URL} is not set; scripts/test.sh sets it)"
        );
        return None;
    };
    let mut suffix = [0u8; 6];
    crypto::Rng::fill(&mut crypto::OsRng, &mut suffix);
    let name = format!("cwtest_{}_{}", sanitize(label), hex::encode(suffix));
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {TEST_POSTGRES_URL}: {e}"));
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = admin.close().await;
    Some(PostgresForTests {
        url: crate::db::with_database(&admin_url, &name),
        admin_url,
        name,
    })
}

impl PostgresForTests {
    /// Drops the database (after the test closed its pools); failures only warn, the cluster
    /// is private and thrown away after the run.
    pub async fn drop_database(self) {
        if let Ok(mut admin) = PgConnection::connect(&self.admin_url).await {
            let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
            if let Err(e) = admin.execute(sql.as_str()).await {
                let _ = writeln!(std::io::stderr(), "could not drop {}: {e}", self.name);
            }
            let _ = admin.close().await;
        }
    }
}

fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

/// The database backend a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's database and files live: a temporary directory, and a SQLite file in it or
/// a fresh PostgreSQL database. [`PlaceForTests::finish`] drops the PostgreSQL database; the
/// directory goes when the value is dropped.
#[derive(Debug)]
pub struct PlaceForTests {
    /// `sqlite:…` or `postgres://…`.
    pub db_url: String,
    pub dir: tempfile::TempDir,
    pg: Option<PostgresForTests>,
}

impl PlaceForTests {
    /// A fresh place for test `label`, its SQLite database (if `backend` says SQLite) named
    /// `sqlite_file` in the directory; `None` when PostgreSQL is asked for and not configured
    /// (the skip is announced by [`fresh_postgres_for_tests`]).
    pub async fn new(backend: Backend, label: &str, sqlite_file: &str) -> Option<PlaceForTests> {
        let dir = tempfile::tempdir()
            .unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
        match backend {
            Backend::Sqlite => Some(PlaceForTests {
                db_url: format!("sqlite:{}", dir.path().join(sqlite_file).display()),
                dir,
                pg: None,
            }),
            Backend::Postgres => {
                let pg = fresh_postgres_for_tests(label).await?;
                Some(PlaceForTests {
                    db_url: pg.url.clone(),
                    dir,
                    pg: Some(pg),
                })
            }
        }
    }

    /// Drops the PostgreSQL database, if any (after the test closed its pools).
    pub async fn finish(self) {
        if let Some(pg) = self.pg {
            pg.drop_database().await;
        }
    }
}

/// A router served over plain HTTP on `127.0.0.1`, port 0, until [`ServerForTests::stop`].
#[derive(Debug)]
pub struct ServerForTests {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl ServerForTests {
    /// Binds a free loopback port and serves `router` on it in a task.
    pub async fn serve(router: Router) -> ServerForTests {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let listener = crate::bind(loopback, None)
            .await
            .unwrap_or_else(|e| panic!("cannot listen on {loopback}: {e}"));
        let addr = listener.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(listener.serve(router, async {
            let _ = stopped.await;
        }));
        ServerForTests {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn get(&self, path: &str) -> ResponseForTests {
        request_for_tests(self.addr, "GET", path, &[], None)
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Sends `body` as JSON with `authorization` (a full header value) if given.
    pub async fn send_json(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        authorization: Option<&str>,
    ) -> ResponseForTests {
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(value) = authorization {
            headers.push(("Authorization", value));
        }
        request_for_tests(self.addr, method, path, &headers, Some(body))
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Stops serving (graceful) and waits until the server task ended; panics if it failed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .unwrap_or_else(|e| panic!("server task: {e}"))
                .unwrap_or_else(|e| panic!("serving: {e}"));
        }
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

/// Decodes the hex string `field` of `value`; panics (naming it) when it is absent or not hex.
pub fn hex_field(value: &serde_json::Value, field: &str) -> Vec<u8> {
    hex::decode(
        value[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {value}")),
    )
    .unwrap_or_else(|e| panic!("{field} in {value} is not hex: {e}"))
}

/// Asserts that the OpenAPI document `doc` and the route table `routes` (method, path
/// template) agree: every route is documented and really served by `server` (a request on
/// `concrete_path(template)`, GET or an empty JSON POST, is not 404/405, unless its error code
/// is `missing_code`: the route answered that the thing named is absent), the document has no
/// operation the table lacks, and every `$ref` resolves.
pub async fn assert_openapi_documents_routes(
    server: &ServerForTests,
    doc: &serde_json::Value,
    routes: &[(String, &'static str)],
    concrete_path: impl Fn(&str) -> String,
    missing_code: &str,
) {
    for (method, path) in routes {
        let operation = &doc["paths"][*path][method.to_lowercase()];
        assert!(
            operation.is_object(),
            "{method} {path} is not in the OpenAPI document"
        );
        // The route really is served: a request with a concrete path is not 404/405.
        let concrete = concrete_path(path);
        let served = if method == "GET" {
            server.get(&concrete).await
        } else {
            server.send_json(method, &concrete, b"{}", None).await
        };
        assert!(
            ![404, 405].contains(&served.status) || served.json()["code"] == missing_code,
            "{method} {path}: {}",
            served.text()
        );
    }
    let documented: usize = doc["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths in {doc}"))
        .values()
        .map(|ops| {
            ops.as_object()
                .unwrap_or_else(|| panic!("not an object of operations: {ops}"))
                .len()
        })
        .sum();
    assert_eq!(
        documented,
        routes.len(),
        "the document has operations the router does not serve"
    );
    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap_or_default();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {name}"
        );
    }
}

/// A response as the test client received it.
#[derive(Debug, Clone)]
pub struct ResponseForTests {
    pub status: u16,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ResponseForTests {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (with the body) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("response body is not JSON ({e}): {}", self.text()))
    }
}

/// Sends one HTTP/1.1 request to `addr` over plain TCP and reads the whole response.
/// `headers` are added as given; a `body` is sent with `Content-Length` (and no content type
/// unless `headers` has one).
pub async fn request_for_tests(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<ResponseForTests> {
    let mut stream = TcpStream::connect(addr).await?;
    let raw = send_raw(&mut stream, addr, method, path, headers, body).await?;
    parse_response(&raw)
}

/// Writes the request to any stream (plain or TLS) and reads until the server closes.
pub async fn send_raw<S>(
    stream: &mut S,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Vec<u8>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    if let Some(body) = body {
        stream.write_all(body).await?;
    }
    stream.flush().await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    Ok(raw)
}

/// Parses a complete HTTP/1.1 response (Content-Length, chunked, or read-to-close bodies).
pub fn parse_response(raw: &[u8]) -> std::io::Result<ResponseForTests> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        decode_chunked(rest).ok_or_else(|| bad("bad chunked body"))?
    } else {
        rest.to_vec()
    };
    Ok(ResponseForTests {
        status,
        headers,
        body,
    })
}

fn decode_chunked(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

/// A self-signed P-256 TLS certificate for `localhost` (and its key) made by `openssl` in
/// `dir` as `<name>.pem` / `<name>-key.pem`, for tests of TLS listeners and clients
/// (`scripts/test.sh` installs openssl).
pub fn self_signed_tls_for_tests(dir: &std::path::Path, name: &str) -> crate::TlsFiles {
    let certificate_chain = dir.join(format!("{name}.pem"));
    let private_key = dir.join(format!("{name}-key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&private_key)
        .arg("-out")
        .arg(&certificate_chain)
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl must be installed (scripts/test.sh installs it)");
    assert!(
        status.success(),
        "openssl could not make a test certificate"
    );
    crate::TlsFiles {
        certificate_chain,
        private_key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::with_database;

    #[test]
    fn replaces_the_database_of_a_url() {
        assert_eq!(
            with_database("postgres://cw@127.0.0.1:5432/postgres", "x"),
            "postgres://cw@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://cw@h?sslmode=disable", "x"),
            "postgres://cw@h/x?sslmode=disable"
        );
    }

    #[test]
    fn parses_chunked_and_plain_responses() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.text().as_str()), (404, "{}"));
        assert_eq!(r.header("Content-Length"), Some("2"));
    }
}
