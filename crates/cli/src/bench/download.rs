//! `cardwright bench download`: applications added to cards per second end to end (APP-3) —
//! the card's standing with its issuer, the provider's request, the card's signed download
//! application, the issuer opening and authorizing it with the provider's consent, the package,
//! INSTALL and LOAD on the card, the receipt recorded, the provider told of its new member —
//! each card its own download, `concurrency` at once, over HTTP on SQLite (and PostgreSQL when
//! given a cluster). Next to the figure: the bound set by the signature operations one download
//! needs (every party's and the card's, counted in this run with `crypto::op_counts`), priced
//! at the raw rates measured on this machine in the same run.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use deployment::sample::TRANSIT;
use deployment::{Deployment, DeploymentConfig};
use protocol::UserInfo;
use terminal::download::{self, Control};
use terminal::flows::Parties;
use terminal::journal::Journal;
use terminal::{CardClient, InProcessCard};

use super::authorize::{against_bound, backends, fresh_dir, raw_rates};

#[derive(Args)]
pub struct DownloadBenchArgs {
    /// Downloads to measure on each backend (one new registered card each).
    #[arg(long, default_value_t = 48)]
    downloads: usize,
    /// Downloads in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// An administrative PostgreSQL URL (its user may create databases): also measure on
    /// PostgreSQL. Default: the TEST_POSTGRES_URL environment variable if set.
    #[arg(long)]
    postgres: Option<String>,
    /// Data directory (default: a fresh one under the system temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const PIN: &str = "2468";

type Card = CardClient<InProcessCard<card::nvm::MemNvm>>;

pub fn run(args: DownloadBenchArgs) -> anyhow::Result<()> {
    let runtime = crate::server_args::runtime()?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: DownloadBenchArgs) -> anyhow::Result<()> {
    let downloads = args.downloads.clamp(1, 10_000);
    let concurrency = args.concurrency.clamp(1, 256);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "applications added to cards end to end over HTTP (APP-3: check, request, card signs, \
         open, authorize, install, receipt, member), {downloads} cards, {concurrency} at once, \
         {cores} cores"
    );
    let (sign_rate, verify_rate) = raw_rates(Duration::from_millis(500));
    println!(
        "  raw P-256 on this machine, one core: {sign_rate:.0} signs/s, {verify_rate:.0} verifies/s"
    );
    let backends = backends(args.postgres.clone(), "cwbenchdl").await?;
    for (label, databases) in backends {
        let mut config = DeploymentConfig::new(fresh_dir(&args.dir, label));
        config.databases = databases;
        let deployment = Deployment::start(config)
            .await
            .with_context(|| format!("starting the parties on {label}"))?;
        let result = measure(&deployment, downloads, concurrency).await;
        let dir = deployment.dir.clone();
        deployment.stop().await?;
        let m = result?;
        let line = against_bound(
            m.rate,
            "downloads/s",
            (m.signs, m.verifies),
            (sign_rate, verify_rate),
            cores,
        );
        println!("  {label:<11} {line}; p50 {:.0} ms", m.median_ms);
        if args.dir.is_none() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    Ok(())
}

struct Measured {
    rate: f64,
    signs: f64,
    verifies: f64,
    median_ms: f64,
}

/// A new registered in-process card (not part of what is measured).
async fn new_card(dep: &Deployment, parties: &Parties, n: usize) -> anyhow::Result<Card> {
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
    let user = UserInfo::new(&format!("bench{n}"), "Bench Mark", "")?;
    terminal::flows::register(&mut card, &parties.issuer, PIN, &user, &mut quiet).await?;
    Ok(card)
}

/// One whole download for `card`; its duration.
async fn one(card: &mut Card, parties: &Parties, journal: &Journal) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let standing = download::check(card, parties).await?;
    let terms = download::terms(parties).await?;
    let mut d = download::begin(
        journal,
        standing.card_id,
        crypto::sha256(terms.text.as_bytes()).0,
        TRANSIT.service_id,
    )?;
    download::request(parties, journal, &standing.issuer, &mut d).await?;
    download::sign(card, journal, PIN, &mut d)?;
    download::finish(card, parties, journal, PIN, &mut d, &mut |_| {
        Control::Continue
    })
    .await?;
    Ok(started.elapsed())
}

async fn measure(
    dep: &Deployment,
    downloads: usize,
    concurrency: usize,
) -> anyhow::Result<Measured> {
    dep.publish_sample_catalog().await?;
    let parties = e2e::parties(dep)?;
    let journal = Journal::new(dep.dir.join("terminal").join("downloads"));
    let mut cards = Vec::with_capacity(downloads + 1);
    for n in 0..=downloads {
        cards.push(new_card(dep, &parties, n).await?);
    }
    // Warm-up: one download before the clock starts (connections, caches).
    let mut warm = cards.pop().context("no card")?;
    one(&mut warm, &parties, &journal).await?;

    // The card's work is synchronous, so the downloads share this thread (the servers run on
    // the runtime's workers): `concurrency` lanes, each taking the next card.
    let queue = std::sync::Mutex::new(cards);
    let (s0, v0) = crypto::op_counts::snapshot();
    let start = Instant::now();
    let lane = || async {
        let mut latencies = Vec::new();
        loop {
            let next = queue.lock().ok().and_then(|mut q| q.pop());
            let Some(mut card) = next else { break };
            latencies.push(one(&mut card, &parties, &journal).await?);
        }
        anyhow::Ok(latencies)
    };
    let lanes: Vec<_> = (0..concurrency).map(|_| lane()).collect();
    let mut latencies = Vec::new();
    for result in join_all(lanes).await {
        latencies.extend(result?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (s1, v1) = crypto::op_counts::snapshot();
    let n = latencies.len();
    if n == 0 {
        bail!("no download completed");
    }
    latencies.sort();
    Ok(Measured {
        rate: n as f64 / elapsed,
        signs: (s1 - s0) as f64 / n as f64,
        verifies: (v1 - v0) as f64 / n as f64,
        median_ms: latencies[n / 2].as_secs_f64() * 1000.0,
    })
}

/// Polls every future on this task until all are done (no extra crate for one loop).
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *output = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
