//! `cardwright bench authorize`: storing authorizations per second end to end over HTTP — a
//! terminal asks the issuer (STO-1), the issuer signs a SAR and asks the provider as a signed
//! party request, the provider verifies and signs the SA, the issuer verifies it as the card
//! will — on SQLite and, given a PostgreSQL cluster, on PostgreSQL. Next to each figure: the
//! bound set by the signature operations one authorization needs, counted in this run
//! (`crypto::op_counts`) and priced at the raw sign/verify rates measured on the same keys and
//! machine.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use deployment::{Databases, Deployment, DeploymentConfig};
use protocol::{Challenge, Sdi, UserInfo};
use terminal::{CardClient, InProcessCard};

#[derive(Args)]
pub struct AuthorizeBenchArgs {
    /// Seconds to measure each backend.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Authorizations in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// An administrative PostgreSQL URL (its user may create databases): also measure on
    /// PostgreSQL, one new database per party. Default: the TEST_POSTGRES_URL environment
    /// variable if set.
    #[arg(long)]
    postgres: Option<String>,
    /// Data directory (default: a fresh one under the system temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const PIN: &str = "2468";

pub fn run(args: AuthorizeBenchArgs) -> anyhow::Result<()> {
    let runtime = crate::server_args::runtime()?;
    runtime.block_on(run_async(args))
}

pub(super) fn fresh_dir(arg: &Option<PathBuf>, label: &str) -> PathBuf {
    let base = arg.clone().unwrap_or_else(std::env::temp_dir);
    let mut tag = [0u8; 4];
    crypto::Rng::fill(&mut crypto::OsRng, &mut tag);
    base.join(format!("cardwright-bench-{label}-{}", hex::encode(tag)))
}

async fn run_async(args: AuthorizeBenchArgs) -> anyhow::Result<()> {
    let budget = Duration::from_secs_f64(args.seconds.max(0.2));
    let concurrency = args.concurrency.clamp(1, 256);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "storing authorizations end to end over HTTP (STO-1: terminal → issuer → provider), \
         {concurrency} in flight, {} s each, {cores} cores",
        budget.as_secs_f64()
    );
    let (sign_rate, verify_rate) = raw_rates(budget.min(Duration::from_secs(1)));
    println!(
        "  raw P-256 on this machine, one core: {sign_rate:.0} signs/s, {verify_rate:.0} verifies/s"
    );

    let backends = backends(args.postgres.clone(), "cwbench").await?;
    for (label, databases) in backends {
        let mut config = DeploymentConfig::new(fresh_dir(&args.dir, label));
        config.databases = databases;
        let deployment = Deployment::start(config)
            .await
            .with_context(|| format!("starting the parties on {label}"))?;
        let result = measure(&deployment, budget, concurrency).await;
        let dir = deployment.dir.clone();
        deployment.stop().await?;
        let m = result?;
        let line = against_bound(
            m.rate,
            "authorizations/s",
            (m.signs, m.verifies),
            (sign_rate, verify_rate),
            cores,
        );
        println!("  {label:<11} {line}; p50 {:.1} ms", m.median_ms);
        if args.dir.is_none() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    Ok(())
}

/// The backends to measure on: SQLite, and PostgreSQL (one new database per party, named
/// `{prefix}_{tag}_{party}`) given an administrative URL or TEST_POSTGRES_URL.
pub(super) async fn backends(
    postgres: Option<String>,
    prefix: &str,
) -> anyhow::Result<Vec<(&'static str, Databases)>> {
    let mut backends: Vec<(&str, Databases)> = vec![("SQLite", Databases::Sqlite)];
    let postgres = postgres.or_else(|| std::env::var(server_kit::testing::TEST_POSTGRES_URL).ok());
    if let Some(admin) = &postgres {
        let mut tag = [0u8; 4];
        crypto::Rng::fill(&mut crypto::OsRng, &mut tag);
        let tag = hex::encode(tag);
        let url = |party: &str| {
            let name = format!("{prefix}_{tag}_{party}");
            let admin = admin.clone();
            async move { server_kit::create_postgres_database(&admin, &name).await }
        };
        backends.push((
            "PostgreSQL",
            Databases::Urls {
                issuer_registrar: url("ir").await.context("creating the bench databases")?,
                data_registrar: url("dr").await?,
                issuer: url("issuer").await?,
                provider: url("provider").await?,
            },
        ));
    } else {
        println!("  (PostgreSQL not measured: pass --postgres URL or set TEST_POSTGRES_URL)");
    }
    Ok(backends)
}

/// `rate unit   bound …/s (cores × …/s: signs + verifies each, counted) = …% of the bound`: the
/// bound one operation's counted signature work sets, priced at the raw rates of this run.
pub(super) fn against_bound(
    rate: f64,
    unit: &str,
    (signs, verifies): (f64, f64),
    (sign_rate, verify_rate): (f64, f64),
    cores: usize,
) -> String {
    let bound_one_core = 1.0 / (signs / sign_rate + verifies / verify_rate);
    let bound = bound_one_core * cores as f64;
    format!(
        "{rate:>8.1} {unit}   bound {bound:>6.1}/s ({cores} cores × {bound_one_core:.1}/s: \
         {signs:.1} signs + {verifies:.1} verifies each, counted) = {:>3.0}% of the bound",
        100.0 * rate / bound
    )
}

/// One core's raw P-256 sign and verify rates, on a key of the kind every party uses.
pub(super) fn raw_rates(budget: Duration) -> (f64, f64) {
    let key = crypto::SigningKey::generate(&mut crypto::OsRng);
    let public = key.verifying_key();
    let message = [0x5Au8; 200];
    let sig = key.sign(&message);
    let time = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < budget || n < 10 {
            f();
            n += 1;
        }
        n as f64 / start.elapsed().as_secs_f64()
    };
    let signs = time(&mut || {
        let _ = key.sign(&message);
    });
    let verifies = time(&mut || {
        let _ = public.verify_canonical(&message, &sig);
    });
    (signs, verifies)
}

struct Measured {
    rate: f64,
    /// Signature operations per authorization, across every party in this process.
    signs: f64,
    verifies: f64,
    median_ms: f64,
}

async fn measure(
    dep: &Deployment,
    budget: Duration,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    let parties = e2e::parties(dep)?;
    let catalog = e2e::publish_catalog(dep).await?;
    // A registered card, in process (its own work is not part of what is measured).
    let card = card::Card::manufacture(
        card::nvm::MemNvm::new(card::Card::<card::nvm::MemNvm>::nvm_size_for(
            card::DEFAULT_IMAGE_CAPACITY,
        )),
        card::DEFAULT_IMAGE_CAPACITY,
    )
    .map_err(|e| anyhow::anyhow!("manufacturing a card: {e:?}"))?;
    let mut card = CardClient::new(InProcessCard::new(card, Box::new(crypto::OsRng)));
    let mut quiet = |_: &str| {};
    terminal::flows::personalise(
        &mut card,
        &parties.issuer,
        &dep.issuer.operator_token,
        &party_api::issuer::PersonaliseRequest {
            pin: PIN.to_string(),
            pin_try_limit: None,
            capacity: Some(4096),
        },
        &mut quiet,
    )
    .await?;
    let user = UserInfo::new("bench", "Bench Mark", "")?;
    let registered =
        terminal::flows::register(&mut card, &parties.issuer, PIN, &user, &mut quiet).await?;
    let sdi =
        terminal::flows::store_sdi(&parties, registered.card_id, &catalog.ticket, None).await?;

    let one = |issuer: party_api::issuer::IssuerClient, sdi: Sdi| async move {
        let mut challenge = [0u8; 16];
        crypto::Rng::fill(&mut crypto::OsRng, &mut challenge);
        let started = Instant::now();
        issuer
            .request(&sdi.card_id, &sdi, &Challenge(challenge))
            .await
            .context("an authorization")?;
        anyhow::Ok(started.elapsed())
    };
    // Warm-up: connections open, caches warm.
    for _ in 0..concurrency {
        one(parties.issuer.clone(), sdi.clone()).await?;
    }
    let done = Arc::new(AtomicU64::new(0));
    let (s0, v0) = crypto::op_counts::snapshot();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let issuer = parties.issuer.clone();
        let sdi = sdi.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while start.elapsed() < budget {
                latencies.push(one(issuer.clone(), sdi.clone()).await?);
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.context("a benchmark task")??);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (s1, v1) = crypto::op_counts::snapshot();
    let n = done.load(Ordering::Relaxed);
    if n == 0 {
        bail!("no authorization completed");
    }
    latencies.sort();
    Ok(Measured {
        rate: n as f64 / elapsed,
        signs: (s1 - s0) as f64 / n as f64,
        verifies: (v1 - v0) as f64 / n as f64,
        median_ms: latencies[latencies.len() / 2].as_secs_f64() * 1000.0,
    })
}
