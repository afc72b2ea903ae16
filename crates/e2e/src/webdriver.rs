//! A minimal W3C WebDriver client (https://www.w3.org/TR/webdriver2/) for the browser tests:
//! it starts Debian's `chromedriver` on a free loopback port, opens one headless Chromium
//! session with a private profile, and drives it through the handful of JSON routes the tests
//! need (navigate, find by CSS, click, type, read text and attributes, screenshot). No WebDriver
//! crate: the protocol is a few JSON routes, spoken over one plain HTTP/1.1 connection per
//! command (`party_api::HttpClient` has no DELETE and maps error bodies to our servers'
//! `{code, message}` shape, losing WebDriver's `{value: {error, message}}`).
//!
//! ```text
//! let browser = Browser::start().await?;
//! browser.goto("http://127.0.0.1:7610/").await?;
//! browser.find("input[name=token]").await?.send_keys("cwo_…").await?;
//! browser.find("button[type=submit]").await?.click().await?;
//! assert!(browser.page_text().await?.contains("Cards"));
//! browser.quit().await?;
//! ```
//!
//! Dropping a [`Browser`] kills chromedriver and everything it started (its process group), so
//! a failing test leaves no browser behind; [`Browser::quit`] closes the session cleanly first.

use std::io::{BufRead as _, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use server_kit::testing::{parse_response, ResponseForTests};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Where Debian's `chromium-driver` package installs chromedriver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where Debian's `chromium` package installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// What to run when either is missing.
pub const INSTALL_HINT: &str =
    "install chromium and chromium-driver (apt-get install -y chromium chromium-driver)";

/// The window every session gets: screenshots of one page are the same size on every machine.
pub const WINDOW_SIZE: (u32, u32) = (1280, 900);

/// How long chromedriver may take to listen, and one WebDriver call to answer (a navigation
/// waits for the page to load).
const START_TIMEOUT: Duration = Duration::from_secs(30);
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// The key of an element reference in WebDriver JSON (W3C WebDriver §12.1 "Elements").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// What chromedriver prints once it listens.
const READY_LINE: &str = "started successfully";
/// The most of chromedriver's stderr kept for an error message.
const MAX_KEPT_OUTPUT: usize = 8 * 1024;

/// What can go wrong driving the browser. `Refused` is WebDriver's own error answer: `error` is
/// its error code (`"no such element"`, `"element not interactable"`, …), `message` its words.
#[derive(Debug, thiserror::Error)]
pub enum WebDriverError {
    #[error("{program} is missing: {INSTALL_HINT}", program = program.display())]
    NotInstalled { program: PathBuf },

    #[error("cannot start {program}: {source}", program = program.display())]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("chromedriver did not start: {detail}")]
    NotStarted { detail: String },

    #[error("cannot reach chromedriver for {route}: {detail}")]
    Transport { route: String, detail: String },

    #[error("WebDriver refused {route} ({status} {error}): {message}")]
    Refused {
        route: String,
        status: u16,
        error: String,
        message: String,
    },

    #[error("WebDriver answered {route} with something unexpected: {detail}")]
    InvalidAnswer { route: String, detail: String },

    #[error("waited {waited_ms} ms for {what}; last seen: {last_seen}")]
    Timeout {
        what: String,
        waited_ms: u128,
        last_seen: String,
    },

    #[error("{path}: {source}", path = path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl WebDriverError {
    /// WebDriver's error code, when it refused a command.
    pub fn code(&self) -> Option<&str> {
        match self {
            WebDriverError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// chromedriver as a child process: its own process group, killed with everything in it when
/// dropped.
struct Driver {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group is chromedriver's own (process_group(0) at spawn): it holds Chromium and its
        // helpers, which a kill of chromedriver alone could leave running.
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group of that id; it
            // reads no memory of ours.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    /// Starts `chromedriver --port=N` on a free loopback port and waits until it listens.
    async fn start(program: &Path) -> Result<Driver, WebDriverError> {
        if !program.is_file() {
            return Err(WebDriverError::NotInstalled {
                program: program.to_path_buf(),
            });
        }
        let port = free_loopback_port().map_err(|e| WebDriverError::NotStarted {
            detail: format!("no free loopback port: {e}"),
        })?;
        let mut child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|source| WebDriverError::Spawn {
                program: program.to_path_buf(),
                source,
            })?;
        let stderr_kept = Arc::new(Mutex::new(String::new()));
        if let Some(stderr) = child.stderr.take() {
            let kept = stderr_kept.clone();
            std::thread::spawn(move || drain(stderr, &kept));
        }
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Result<(), String>>();
        if let Some(stdout) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut ready_tx = Some(ready_tx);
                let mut seen = String::new();
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if let Some(tx) = ready_tx.take() {
                        if line.contains(READY_LINE) {
                            let _ = tx.send(Ok(()));
                        } else {
                            seen.push_str(&line);
                            seen.push('\n');
                            ready_tx = Some(tx);
                        }
                    }
                }
                if let Some(tx) = ready_tx {
                    let _ = tx.send(Err(format!("it exited; it printed: {}", seen.trim())));
                }
            });
        }
        let driver = Driver {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        };
        let stderr_text = || {
            let kept = stderr_kept.lock().unwrap_or_else(|p| p.into_inner());
            kept.trim().to_string()
        };
        match tokio::time::timeout(START_TIMEOUT, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(driver),
            Ok(Ok(Err(detail))) => Err(WebDriverError::NotStarted {
                detail: format!("{detail} {}", stderr_text()),
            }),
            Ok(Err(_)) => Err(WebDriverError::NotStarted {
                detail: format!("its output closed early {}", stderr_text()),
            }),
            Err(_) => Err(WebDriverError::NotStarted {
                detail: format!(
                    "not listening after {} s {}",
                    START_TIMEOUT.as_secs(),
                    stderr_text()
                ),
            }),
        }
    }

    /// One WebDriver command: `method route` with a JSON body; returns the answer's `value`.
    async fn command(
        &self,
        method: &str,
        route: &str,
        body: Option<&Value>,
    ) -> Result<Value, WebDriverError> {
        let transport = |detail: String| WebDriverError::Transport {
            route: format!("{method} {route}"),
            detail,
        };
        let body_text = body.map(Value::to_string);
        let response = tokio::time::timeout(
            CALL_TIMEOUT,
            exchange(self.addr, method, route, body_text.as_deref()),
        )
        .await
        .map_err(|_| transport(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))?
        .map_err(|e| transport(e.to_string()))?;
        let invalid = |detail: String| WebDriverError::InvalidAnswer {
            route: format!("{method} {route}"),
            detail,
        };
        let answer: Value = serde_json::from_slice(&response.body).map_err(|e| {
            invalid(format!(
                "{} {e}: {}",
                response.status,
                response.text().chars().take(200).collect::<String>()
            ))
        })?;
        let value = answer
            .get("value")
            .cloned()
            .ok_or_else(|| invalid(format!("no \"value\" in {answer}")))?;
        if (200..300).contains(&response.status) {
            return Ok(value);
        }
        // W3C WebDriver §6.6: an error is {"value": {"error", "message", "stacktrace"}}.
        Err(WebDriverError::Refused {
            route: format!("{method} {route}"),
            status: response.status,
            error: value["error"]
                .as_str()
                .unwrap_or("unknown error")
                .to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        })
    }
}

/// One HTTP/1.1 request on a new connection, and its whole answer. chromedriver keeps a
/// connection open whatever the request says, so the answer ends where its `Content-Length`
/// (or its last chunk) says, not at the end of the stream.
async fn exchange(
    addr: SocketAddr,
    method: &str,
    route: &str,
    body: Option<&str>,
) -> std::io::Result<ResponseForTests> {
    let mut stream = TcpStream::connect(addr).await?;
    let body = body.unwrap_or_default();
    let mut request = format!(
        "{method} {route} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Accept: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        request.push_str("Content-Type: application/json; charset=utf-8\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buffer[..n]);
        if answer_complete(&raw) {
            break;
        }
    }
    parse_response(&raw)
}

/// Whether `raw` holds a whole HTTP/1.1 answer: headers and the body they announce.
fn answer_complete(raw: &[u8]) -> bool {
    let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
    let body = &raw[head_end + 4..];
    let header = |name: &str| {
        head.split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, v)| v.trim().to_string())
    };
    if let Some(length) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        return body.len() >= length;
    }
    if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

fn free_loopback_port() -> std::io::Result<u16> {
    // The port is free when asked; chromedriver binds it a moment later. Another process taking
    // it in between makes chromedriver fail to start, which the caller reports.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Reads `from` to its end, keeping its first [`MAX_KEPT_OUTPUT`] bytes (lossy UTF-8).
fn drain(mut from: impl std::io::Read, kept: &Mutex<String>) {
    let mut buffer = [0u8; 4096];
    loop {
        match from.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                let mut kept = kept.lock().unwrap_or_else(|p| p.into_inner());
                if kept.len() < MAX_KEPT_OUTPUT {
                    kept.push_str(&String::from_utf8_lossy(&buffer[..n]));
                }
            }
        }
    }
}

/// Where to find the programs; [`BrowserOptions::default`] is Debian's paths.
#[derive(Debug, Clone)]
pub struct BrowserOptions {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
}

impl Default for BrowserOptions {
    fn default() -> BrowserOptions {
        BrowserOptions {
            chromedriver: PathBuf::from(CHROMEDRIVER),
            chromium: PathBuf::from(CHROMIUM),
        }
    }
}

/// One headless Chromium session behind its own chromedriver, with a private profile directory
/// (removed when dropped).
pub struct Browser {
    driver: Driver,
    session: String,
    _profile: tempfile::TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("chromedriver", &self.driver.addr)
            .field("session", &self.session)
            .finish()
    }
}

impl Browser {
    /// Starts chromedriver and a session of Debian's Chromium: `--headless=new --no-sandbox
    /// --window-size=1280,900` and a fresh `--user-data-dir`.
    pub async fn start() -> Result<Browser, WebDriverError> {
        Browser::start_with(&BrowserOptions::default()).await
    }

    /// [`Browser::start`] with other program paths.
    pub async fn start_with(options: &BrowserOptions) -> Result<Browser, WebDriverError> {
        if !options.chromium.is_file() {
            return Err(WebDriverError::NotInstalled {
                program: options.chromium.clone(),
            });
        }
        let profile = tempfile::Builder::new()
            .prefix("cardwright-chromium-")
            .tempdir()
            .map_err(|source| WebDriverError::File {
                path: std::env::temp_dir(),
                source,
            })?;
        let driver = Driver::start(&options.chromedriver).await?;
        let (width, height) = WINDOW_SIZE;
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": options.chromium.display().to_string(),
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            format!("--window-size={width},{height}"),
                            format!("--user-data-dir={}", profile.path().display()),
                            "--disable-gpu",
                            "--no-first-run",
                            "--no-default-browser-check",
                        ],
                    },
                },
            },
        });
        let value = driver
            .command("POST", "/session", Some(&capabilities))
            .await?;
        let session = value["sessionId"]
            .as_str()
            .ok_or_else(|| WebDriverError::InvalidAnswer {
                route: "POST /session".to_string(),
                detail: format!("no sessionId in {value}"),
            })?
            .to_string();
        Ok(Browser {
            driver,
            session,
            _profile: profile,
        })
    }

    async fn call(
        &self,
        method: &str,
        route: &str,
        body: Option<&Value>,
    ) -> Result<Value, WebDriverError> {
        let route = format!("/session/{}{route}", self.session);
        self.driver.command(method, &route, body).await
    }

    async fn call_text(&self, route: &str) -> Result<String, WebDriverError> {
        let value = self.call("GET", route, None).await?;
        value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| WebDriverError::InvalidAnswer {
                route: format!("GET {route}"),
                detail: format!("not a string: {value}"),
            })
    }

    /// Loads `url` and waits until it has loaded (WebDriver "Navigate To").
    pub async fn goto(&self, url: &str) -> Result<(), WebDriverError> {
        self.call("POST", "/url", Some(&json!({ "url": url })))
            .await
            .map(drop)
    }

    /// The URL of the page shown now (after any redirects).
    pub async fn current_url(&self) -> Result<String, WebDriverError> {
        self.call_text("/url").await
    }

    /// The page's `<title>`.
    pub async fn title(&self) -> Result<String, WebDriverError> {
        self.call_text("/title").await
    }

    /// The page's HTML as the browser holds it now.
    pub async fn page_source(&self) -> Result<String, WebDriverError> {
        self.call_text("/source").await
    }

    /// The rendered text of the whole page (`<body>`), as a user reads it.
    pub async fn page_text(&self) -> Result<String, WebDriverError> {
        self.find("body").await?.text().await
    }

    /// The first element matching the CSS selector; WebDriver's `no such element` when none.
    pub async fn find(&self, css: &str) -> Result<Element<'_>, WebDriverError> {
        let value = self
            .call(
                "POST",
                "/element",
                Some(&json!({ "using": "css selector", "value": css })),
            )
            .await?;
        self.element(&value, "/element")
    }

    /// Every element matching the CSS selector, in document order (possibly none).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, WebDriverError> {
        let value = self
            .call(
                "POST",
                "/elements",
                Some(&json!({ "using": "css selector", "value": css })),
            )
            .await?;
        let list = value
            .as_array()
            .ok_or_else(|| WebDriverError::InvalidAnswer {
                route: "POST /elements".to_string(),
                detail: format!("not a list: {value}"),
            })?;
        list.iter()
            .map(|item| self.element(item, "/elements"))
            .collect()
    }

    fn element(&self, value: &Value, route: &str) -> Result<Element<'_>, WebDriverError> {
        let id = value[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| WebDriverError::InvalidAnswer {
                route: format!("POST {route}"),
                detail: format!("no element reference in {value}"),
            })?;
        Ok(Element {
            browser: self,
            id: id.to_string(),
        })
    }

    /// Reads the page text until it contains `needle` (for pages that refresh themselves while
    /// work goes on), for at most `timeout`; returns that text.
    pub async fn wait_for_text(
        &self,
        needle: &str,
        timeout: Duration,
    ) -> Result<String, WebDriverError> {
        let start = Instant::now();
        loop {
            // A page being replaced by its refresh can lose the body between two calls.
            let text = match self.page_text().await {
                Ok(text) => text,
                Err(WebDriverError::Refused { error, .. })
                    if error == "stale element reference" || error == "no such element" =>
                {
                    String::new()
                }
                Err(e) => return Err(e),
            };
            if text.contains(needle) {
                return Ok(text);
            }
            if start.elapsed() >= timeout {
                return Err(WebDriverError::Timeout {
                    what: format!("the page to show {needle:?}"),
                    waited_ms: start.elapsed().as_millis(),
                    last_seen: text,
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The page as a PNG image (W3C WebDriver "Take Screenshot").
    pub async fn screenshot_png(&self) -> Result<Vec<u8>, WebDriverError> {
        let encoded = self.call_text("/screenshot").await?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| WebDriverError::InvalidAnswer {
                route: "GET /screenshot".to_string(),
                detail: format!("not base64: {e}"),
            })
    }

    /// Saves the page as a PNG image at `path` (its directory is created if needed).
    pub async fn screenshot(&self, path: &Path) -> Result<(), WebDriverError> {
        let png = self.screenshot_png().await?;
        let file_error = |source| WebDriverError::File {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(file_error)?;
        }
        std::fs::write(path, png).map_err(file_error)
    }

    /// Ends the session (Chromium closes) and then chromedriver.
    pub async fn quit(self) -> Result<(), WebDriverError> {
        self.call("DELETE", "", None).await.map(drop)
    }
}

/// An element of the page shown when it was found; WebDriver's `stale element reference` once
/// that page is gone.
#[derive(Debug)]
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

impl Element<'_> {
    async fn call(
        &self,
        method: &str,
        route: &str,
        body: Option<&Value>,
    ) -> Result<Value, WebDriverError> {
        self.browser
            .call(method, &format!("/element/{}{route}", self.id), body)
            .await
    }

    /// Clicks it as a user would (a submit button submits its form; the next command waits for
    /// the page that follows).
    pub async fn click(&self) -> Result<(), WebDriverError> {
        self.call("POST", "/click", Some(&json!({})))
            .await
            .map(drop)
    }

    /// Types `text` into it (after what it holds).
    pub async fn send_keys(&self, text: &str) -> Result<(), WebDriverError> {
        self.call("POST", "/value", Some(&json!({ "text": text })))
            .await
            .map(drop)
    }

    /// Empties an input or textarea.
    pub async fn clear(&self) -> Result<(), WebDriverError> {
        self.call("POST", "/clear", Some(&json!({})))
            .await
            .map(drop)
    }

    /// Replaces what an input holds with `text`.
    pub async fn fill(&self, text: &str) -> Result<(), WebDriverError> {
        self.clear().await?;
        self.send_keys(text).await
    }

    /// Its rendered text.
    pub async fn text(&self) -> Result<String, WebDriverError> {
        let route = format!("/element/{}/text", self.id);
        self.browser.call_text(&route).await
    }

    /// The value of its attribute `name`, `None` when it has none.
    pub async fn attribute(&self, name: &str) -> Result<Option<String>, WebDriverError> {
        let value = self
            .call("GET", &format!("/attribute/{name}"), None)
            .await?;
        Ok(value.as_str().map(str::to_string))
    }

    /// Whether a checkbox, radio button or option is selected.
    pub async fn is_selected(&self) -> Result<bool, WebDriverError> {
        self.flag("/selected").await
    }

    /// Whether it is enabled (not `disabled`).
    pub async fn is_enabled(&self) -> Result<bool, WebDriverError> {
        self.flag("/enabled").await
    }

    async fn flag(&self, route: &str) -> Result<bool, WebDriverError> {
        let value = self.call("GET", route, None).await?;
        value
            .as_bool()
            .ok_or_else(|| WebDriverError::InvalidAnswer {
                route: format!("GET {route}"),
                detail: format!("not a boolean: {value}"),
            })
    }
}
