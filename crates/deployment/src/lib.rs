//! A complete cardwright deployment in one process (OPS-1, OPS-2): the Issuer Registrar, the
//! Data Registrar, an issuer and a provider, each a real HTTP server on loopback with its own
//! database (SQLite files in a data directory by default, or PostgreSQL URLs), keys in files,
//! the issuer's and provider's keys certified by the registrars at start, the issuer's policy
//! allowing the provider, and operator tokens written next to each party's files.
//!
//! `cardwright up` keeps one running; `cardwright demo` and the e2e tests drive one. Starting
//! again on the same directory reuses the keys, databases, certificates and tokens.
//!
//! Layout of the data directory:
//!
//! ```text
//! DIR/issuer-registrar/{root-key.pem, registrar.db, operator-token}
//! DIR/data-registrar/{root-key.pem, registrar.db, operator-token}
//! DIR/issuer/{key.pem, irc.pem, issuer.db, operator-token}
//! DIR/provider/{key.pem, dpr.pem, provider.db, operator-token}
//! DIR/roots/{issuer-registrar.pem, data-registrar.pem}
//! DIR/deployment.json   where each party listens (for `cardwright terminal …`)
//! ```

pub mod sample;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context as _};
use party_api::issuer::{IssuerClient, ProviderRequest};
use party_api::registrar::RegistrarClient;
use party_api::HttpClient;
use pki::{Certificate, PartyId, UnixTime};
use server_kit::{Clock, SystemClock};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Where each party keeps its database.
#[derive(Debug, Clone)]
pub enum Databases {
    /// SQLite files inside each party's directory (the embedded default).
    Sqlite,
    /// One URL per party (PostgreSQL or SQLite).
    Urls {
        issuer_registrar: String,
        data_registrar: String,
        issuer: String,
        provider: String,
    },
}

/// How to bring a deployment up.
#[derive(Debug, Clone)]
pub struct DeploymentConfig {
    pub dir: PathBuf,
    pub databases: Databases,
    /// The address every party listens on (loopback by default).
    pub host: IpAddr,
    /// First port; the parties take four consecutive ones. 0: any free ports.
    pub base_port: u16,
    /// One clock for every server (tests pass a manual one).
    pub clock: Arc<dyn Clock>,
    pub ids: PartyIds,
    /// Start this many issuer instances on the issuer's database (≥ 1; more only make sense on
    /// PostgreSQL or one SQLite file, which they share).
    pub issuer_instances: usize,
    /// The issuer's durations (challenge, authorization, RC, delegation validity).
    pub issuer_settings: issuer::Settings,
}

/// The parties' IDs.
#[derive(Debug, Clone)]
pub struct PartyIds {
    pub issuer_registrar: PartyId,
    pub data_registrar: PartyId,
    pub issuer: PartyId,
    pub provider: PartyId,
}

impl Default for PartyIds {
    fn default() -> PartyIds {
        let id = |s: &str| PartyId::new(s).expect("Invariant: a valid literal party ID");
        PartyIds {
            issuer_registrar: id("issuer-registrar"),
            data_registrar: id("data-registrar"),
            issuer: id("issuer-1"),
            provider: id("provider-1"),
        }
    }
}

impl DeploymentConfig {
    /// SQLite in `dir`, loopback, any free ports, the system clock, the default party IDs.
    pub fn new(dir: PathBuf) -> DeploymentConfig {
        DeploymentConfig {
            dir,
            databases: Databases::Sqlite,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            base_port: 0,
            clock: Arc::new(SystemClock),
            ids: PartyIds::default(),
            issuer_instances: 1,
            issuer_settings: issuer::Settings::default(),
        }
    }
}

/// One running party: who, where, and the operator token for its console and CLI.
#[derive(Debug, Clone)]
pub struct Party {
    pub id: PartyId,
    /// Base URL of its first instance, `http://127.0.0.1:PORT`.
    pub url: String,
    /// Base URLs of every instance (issuer only may have several).
    pub urls: Vec<String>,
    pub dir: PathBuf,
    pub db_url: String,
    /// `cwo_…`: sent as a bearer token by operators of this party.
    pub operator_token: String,
}

/// A running deployment. Dropping it leaves the servers running until the runtime ends; call
/// [`Deployment::stop`] to shut them down gracefully.
pub struct Deployment {
    pub dir: PathBuf,
    pub issuer_registrar: Party,
    pub data_registrar: Party,
    pub issuer: Party,
    pub provider: Party,
    /// The Issuer Registrar's root (anchor of IRCs and RCs).
    pub issuer_anchor: Certificate,
    /// The Data Registrar's root (anchor of DPRs, SDCI').
    pub data_anchor: Certificate,
    pub irc: Certificate,
    pub dpr: Certificate,
    servers: Vec<RunningServer>,
}

struct RunningServer {
    name: String,
    /// What it was started from, so [`Deployment::restart`] can start it again.
    launch: Launch,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// How one server is opened (its address is in its config).
#[derive(Clone)]
enum Launch {
    Registrar(registrar::RegistrarConfig),
    Issuer(issuer::IssuerConfig),
    Provider(provider::ProviderConfig),
}

/// A party whose servers [`Deployment::restart`] stops and starts again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    IssuerRegistrar,
    DataRegistrar,
    Issuer,
    Provider,
}

impl Launch {
    fn role(&self) -> Role {
        match self {
            Launch::Registrar(c) if c.role == registrar::RegistrarRole::IssuerRegistrar => {
                Role::IssuerRegistrar
            }
            Launch::Registrar(_) => Role::DataRegistrar,
            Launch::Issuer(_) => Role::Issuer,
            Launch::Provider(_) => Role::Provider,
        }
    }

    fn listen(&self) -> SocketAddr {
        match self {
            Launch::Registrar(c) => c.listen,
            Launch::Issuer(c) => c.listen,
            Launch::Provider(c) => c.listen,
        }
    }

    /// Opens the party's application and serves it on `listener` until stopped; a registrar
    /// also returns its root certificate.
    async fn start(
        self,
        name: String,
        listener: server_kit::BoundListener,
    ) -> anyhow::Result<(RunningServer, Option<Certificate>)> {
        let (stop, stopped) = stop_signal();
        let mut root = None;
        let serving: std::pin::Pin<
            Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>,
        > = match &self {
            Launch::Registrar(c) => {
                let app = registrar::open(c)
                    .await
                    .with_context(|| format!("starting the {}", c.role.as_str()))?;
                root = Some(app.registrar.root().clone());
                Box::pin(listener.serve(registrar::router(&app), stopped))
            }
            Launch::Issuer(c) => {
                let app = issuer::open(c).await.context("starting the issuer")?;
                Box::pin(listener.serve(issuer::router(&app), stopped))
            }
            Launch::Provider(c) => {
                let app = provider::open(c).await.context("starting the provider")?;
                Box::pin(listener.serve(provider::router(&app), stopped))
            }
        };
        let server = RunningServer {
            name,
            launch: self,
            stop,
            task: tokio::spawn(serving),
        };
        Ok((server, root))
    }
}

const OPERATOR_NAME: &str = "deployment";

fn party_dir(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

/// Writes `contents` to `path` readable by the owner only (tokens, never keys: keys are
/// written by server-kit).
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The operator token stored in `dir`, or a new operator added to the database (its token
/// stored there).
async fn operator_token(
    dir: &Path,
    db_url: &str,
    add: impl std::future::Future<Output = anyhow::Result<server_kit::OperatorToken>>,
) -> anyhow::Result<String> {
    let path = dir.join("operator-token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if let Some(token) = server_kit::OperatorToken::parse(text.trim()) {
            return Ok(token.expose().to_string());
        }
        bail!("{} does not hold an operator token", path.display());
    }
    let token = add
        .await
        .with_context(|| format!("adding an operator to {}", server_kit::redact_url(db_url)))?;
    write_private(&path, &format!("{}\n", token.expose()))?;
    Ok(token.expose().to_string())
}

async fn listen(
    host: IpAddr,
    base_port: u16,
    offset: u16,
) -> anyhow::Result<server_kit::BoundListener> {
    let port = if base_port == 0 {
        0
    } else {
        base_port
            .checked_add(offset)
            .context("the base port leaves no room for every party")?
    };
    Ok(server_kit::bind(SocketAddr::new(host, port), None).await?)
}

fn url_of(listener: &server_kit::BoundListener) -> String {
    format!("{}://{}", listener.scheme(), listener.local_addr())
}

/// A stop signal and the future that waits for it (the server's graceful-shutdown trigger).
fn stop_signal() -> (
    oneshot::Sender<()>,
    impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    (stop, async move {
        let _ = stopped.await;
    })
}

/// Reads a PEM certificate file if there is one.
fn read_pem_certificate(path: &Path) -> anyhow::Result<Option<Certificate>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(
            Certificate::from_pem(&text).with_context(|| format!("parsing {}", path.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// How long a reused IRC/DPR must still be valid; a shorter one is replaced at start.
const MIN_REMAINING_VALIDITY_S: u64 = 7 * 24 * 60 * 60;

/// The certificate at `path` if it certifies `key` for `subject` under `anchor` for a while
/// yet; otherwise a new one from the registrar at `registrar_url`, written to `path`.
async fn certify(
    registrar_url: &str,
    token: &str,
    subject: &PartyId,
    key: &crypto::SigningKey,
    path: &Path,
    anchor: &Certificate,
    now: UnixTime,
) -> anyhow::Result<Certificate> {
    let public_key = key.verifying_key().to_sec1();
    if let Some(existing) = read_pem_certificate(path)? {
        let usable = existing.subject_id() == subject
            && existing.public_key().to_sec1() == public_key
            && existing.verify_signed_by(anchor).is_ok()
            && existing.check_valid_at(now).is_ok()
            && existing.not_after().0 > now.0.saturating_add(MIN_REMAINING_VALIDITY_S);
        if usable {
            return Ok(existing);
        }
    }
    let answer = RegistrarClient::new(HttpClient::new(registrar_url)?)
        .issue(token, subject, &key.verifying_key(), None)
        .await
        .with_context(|| format!("certifying {subject} at {registrar_url}"))?;
    let der = hex::decode(&answer.certificate).context("the registrar's certificate is not hex")?;
    let certificate = Certificate::from_der(&der).context("the registrar's certificate")?;
    std::fs::write(path, certificate.to_pem())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(certificate)
}

impl Deployment {
    /// Brings every party up (see the module documentation); returns once all listen.
    pub async fn start(config: DeploymentConfig) -> anyhow::Result<Deployment> {
        if config.issuer_instances == 0 {
            bail!("a deployment needs at least one issuer instance");
        }
        let dir = config.dir.clone();
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ids = config.ids.clone();
        let ir_dir = party_dir(&dir, "issuer-registrar")?;
        let dr_dir = party_dir(&dir, "data-registrar")?;
        let issuer_dir = party_dir(&dir, "issuer")?;
        let provider_dir = party_dir(&dir, "provider")?;
        let roots_dir = party_dir(&dir, "roots")?;
        let (ir_db, dr_db, issuer_db, provider_db) = match &config.databases {
            Databases::Sqlite => (
                sqlite_url(&ir_dir.join("registrar.db")),
                sqlite_url(&dr_dir.join("registrar.db")),
                sqlite_url(&issuer_dir.join("issuer.db")),
                sqlite_url(&provider_dir.join("provider.db")),
            ),
            Databases::Urls {
                issuer_registrar,
                data_registrar,
                issuer,
                provider,
            } => (
                issuer_registrar.clone(),
                data_registrar.clone(),
                issuer.clone(),
                provider.clone(),
            ),
        };

        // Every listener first, so each party can be told where the others are.
        let host = config.host;
        let ir_listener = listen(host, config.base_port, 0).await?;
        let dr_listener = listen(host, config.base_port, 1).await?;
        let provider_listener = listen(host, config.base_port, 2).await?;
        let mut issuer_listeners = Vec::new();
        for i in 0..config.issuer_instances {
            let offset = u16::try_from(3 + i).context("too many issuer instances")?;
            issuer_listeners.push(listen(host, config.base_port, offset).await?);
        }
        let ir_url = url_of(&ir_listener);
        let dr_url = url_of(&dr_listener);
        let provider_url = url_of(&provider_listener);
        let issuer_urls: Vec<String> = issuer_listeners.iter().map(url_of).collect();

        let mut servers = Vec::new();
        let now = config.clock.now();

        // The registrars.
        let mut roots = Vec::new();
        for (role, id, rdir, db, listener) in [
            (
                registrar::RegistrarRole::IssuerRegistrar,
                &ids.issuer_registrar,
                &ir_dir,
                &ir_db,
                ir_listener,
            ),
            (
                registrar::RegistrarRole::DataRegistrar,
                &ids.data_registrar,
                &dr_dir,
                &dr_db,
                dr_listener,
            ),
        ] {
            let mut rc = registrar::RegistrarConfig::new(
                role,
                id.clone(),
                rdir.clone(),
                db.clone(),
                listener.local_addr(),
            );
            rc.clock = config.clock.clone();
            let (server, root) = Launch::Registrar(rc)
                .start(role.as_str().to_string(), listener)
                .await?;
            servers.push(server);
            roots.push(root.context("a registrar without a root")?);
        }
        let issuer_anchor = roots[0].clone();
        let data_anchor = roots[1].clone();
        let ir_root_file = roots_dir.join("issuer-registrar.pem");
        let dr_root_file = roots_dir.join("data-registrar.pem");
        std::fs::write(&ir_root_file, issuer_anchor.to_pem())?;
        std::fs::write(&dr_root_file, data_anchor.to_pem())?;
        let ir_token = operator_token(
            &ir_dir,
            &ir_db,
            registrar::add_operator(&ir_db, OPERATOR_NAME),
        )
        .await?;
        let dr_token = operator_token(
            &dr_dir,
            &dr_db,
            registrar::add_operator(&dr_db, OPERATOR_NAME),
        )
        .await?;

        // The issuer's and provider's keys, certified by the registrars (REG-1).
        let issuer_key_file = issuer_dir.join("key.pem");
        let (issuer_key, _) =
            server_kit::load_or_generate_key(&issuer_key_file, &mut crypto::OsRng)?;
        let irc_file = issuer_dir.join("irc.pem");
        let irc = certify(
            &ir_url,
            &ir_token,
            &ids.issuer,
            &issuer_key,
            &irc_file,
            &issuer_anchor,
            now,
        )
        .await?;
        let provider_key_file = provider_dir.join("key.pem");
        let (provider_key, _) =
            server_kit::load_or_generate_key(&provider_key_file, &mut crypto::OsRng)?;
        let dpr_file = provider_dir.join("dpr.pem");
        let dpr = certify(
            &dr_url,
            &dr_token,
            &ids.provider,
            &provider_key,
            &dpr_file,
            &data_anchor,
            now,
        )
        .await?;

        // The issuer instances, all on one database (before the provider, which fetches the
        // issuer's CRL of RCs at start).
        for (i, listener) in issuer_listeners.into_iter().enumerate() {
            let mut ic = issuer::IssuerConfig::new(
                ids.issuer.clone(),
                issuer_key_file.clone(),
                irc_file.clone(),
                ir_root_file.clone(),
                dr_root_file.clone(),
                issuer_db.clone(),
                listener.local_addr(),
            );
            ic.clock = config.clock.clone();
            ic.settings = config.issuer_settings;
            ic.issuer_registrar_url = Some(ir_url.clone());
            ic.data_registrar_url = Some(dr_url.clone());
            let (server, _) = Launch::Issuer(ic)
                .start(format!("issuer #{}", i + 1), listener)
                .await?;
            servers.push(server);
        }
        let issuer_token = operator_token(
            &issuer_dir,
            &issuer_db,
            issuer::add_operator(&issuer_db, OPERATOR_NAME),
        )
        .await?;

        // The provider.
        let mut pc = provider::ProviderConfig::new(
            ids.provider.clone(),
            provider_key_file,
            dpr_file,
            ir_root_file.clone(),
            dr_root_file.clone(),
            provider_db.clone(),
            provider_listener.local_addr(),
        );
        pc.clock = config.clock.clone();
        pc.issuers = vec![(ids.issuer.clone(), issuer_urls[0].clone())];
        pc.data_registrar = Some((ids.data_registrar.clone(), dr_url.clone()));
        pc.issuer_registrar_url = Some(ir_url.clone());
        let (server, _) = Launch::Provider(pc)
            .start("provider".to_string(), provider_listener)
            .await?;
        servers.push(server);
        let provider_token = operator_token(
            &provider_dir,
            &provider_db,
            provider::add_operator(&provider_db, OPERATOR_NAME),
        )
        .await?;

        let deployment = Deployment {
            dir: dir.clone(),
            issuer_registrar: Party {
                id: ids.issuer_registrar.clone(),
                url: ir_url.clone(),
                urls: vec![ir_url],
                dir: ir_dir,
                db_url: ir_db,
                operator_token: ir_token,
            },
            data_registrar: Party {
                id: ids.data_registrar.clone(),
                url: dr_url.clone(),
                urls: vec![dr_url],
                dir: dr_dir,
                db_url: dr_db,
                operator_token: dr_token,
            },
            issuer: Party {
                id: ids.issuer.clone(),
                url: issuer_urls[0].clone(),
                urls: issuer_urls,
                dir: issuer_dir,
                db_url: issuer_db,
                operator_token: issuer_token,
            },
            provider: Party {
                id: ids.provider.clone(),
                url: provider_url.clone(),
                urls: vec![provider_url],
                dir: provider_dir,
                db_url: provider_db,
                operator_token: provider_token,
            },
            issuer_anchor,
            data_anchor,
            irc,
            dpr,
            servers,
        };
        deployment.connect_parties().await?;
        deployment.write_directory()?;
        Ok(deployment)
    }

    /// The issuer's policy allows the provider, and knows where it listens.
    async fn connect_parties(&self) -> anyhow::Result<()> {
        IssuerClient::new(HttpClient::new(&self.issuer.url)?)
            .put_provider(
                &self.issuer.operator_token,
                &self.provider.id,
                &ProviderRequest {
                    status: "allowed".to_string(),
                    quota_bytes: DEFAULT_QUOTA_BYTES,
                    url: Some(self.provider.url.clone()),
                },
            )
            .await
            .context("setting the issuer's policy for the provider")?;
        Ok(())
    }

    /// `DIR/deployment.json`: where each party listens, for `cardwright terminal …`.
    fn write_directory(&self) -> anyhow::Result<()> {
        let party = |p: &Party| {
            serde_json::json!({
                "id": p.id.as_str(),
                "url": p.url,
                "urls": p.urls,
                "db": server_kit::redact_url(&p.db_url),
            })
        };
        let doc = serde_json::json!({
            "issuer_registrar": party(&self.issuer_registrar),
            "data_registrar": party(&self.data_registrar),
            "issuer": party(&self.issuer),
            "provider": party(&self.provider),
        });
        let path = self.dir.join(DIRECTORY_FILE);
        let text = serde_json::to_string_pretty(&doc)?;
        std::fs::write(&path, text + "\n").with_context(|| format!("writing {}", path.display()))
    }

    /// Every party with its URL, for printing.
    pub fn parties(&self) -> [&Party; 4] {
        [
            &self.issuer_registrar,
            &self.data_registrar,
            &self.issuer,
            &self.provider,
        ]
    }

    /// Stops the party's servers (requests in flight finish), then opens and serves them again
    /// on the same addresses, databases and keys: what a real restart of that party does. Its
    /// in-memory state (caches, background tasks) starts afresh.
    pub async fn restart(&mut self, role: Role) -> anyhow::Result<()> {
        let (going, staying): (Vec<_>, Vec<_>) = std::mem::take(&mut self.servers)
            .into_iter()
            .partition(|s| s.launch.role() == role);
        self.servers = staying;
        let mut again = Vec::new();
        for server in going {
            let _ = server.stop.send(());
            server
                .task
                .await
                .with_context(|| format!("{} ended abnormally", server.name))?
                .with_context(|| format!("{} stopped with an error", server.name))?;
            again.push((server.name, server.launch));
        }
        for (name, launch) in again {
            let addr = launch.listen();
            let listener = server_kit::bind(addr, None)
                .await
                .with_context(|| format!("{name}: listening again on {addr}"))?;
            let (server, _) = launch.start(name, listener).await?;
            self.servers.push(server);
        }
        Ok(())
    }

    /// Stops every server gracefully (requests in flight finish) and waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        let mut tasks = Vec::new();
        for server in self.servers {
            tracing::debug!(server = %server.name, "stopping");
            let _ = server.stop.send(());
            tasks.push((server.name, server.task));
        }
        for (name, task) in tasks {
            task.await
                .with_context(|| format!("{name} ended abnormally"))?
                .with_context(|| format!("{name} stopped with an error"))?;
        }
        Ok(())
    }
}

/// The per-card quota the issuer's policy gives the deployment's provider.
pub const DEFAULT_QUOTA_BYTES: u32 = 16 * 1024;

/// The file naming where each party listens.
pub const DIRECTORY_FILE: &str = "deployment.json";

/// Reads `DIR/deployment.json` (written by [`Deployment::start`]): the party ID and base URL
/// listed under `role` (`issuer_registrar`, `data_registrar`, `issuer`, `provider`).
pub fn listed_party(dir: &Path, role: &str) -> anyhow::Result<(PartyId, String)> {
    let path = dir.join(DIRECTORY_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    match (doc[role]["id"].as_str(), doc[role]["url"].as_str()) {
        (Some(id), Some(url)) => Ok((
            PartyId::new(id).with_context(|| format!("{}: {role} id", path.display()))?,
            url.to_string(),
        )),
        _ => bail!("{} names no {role} id and url", path.display()),
    }
}
