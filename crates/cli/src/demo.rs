//! `cardwright demo`: brings up a complete deployment (both registrars, an issuer, a provider:
//! real HTTP servers on loopback, SQLite in a fresh data directory), then walks a real card
//! image through personalisation, registration (REG-2), every storing path (STO-1…5), deletion
//! (STO-6) and the refusals, checking after every flow that the issuer's and the provider's
//! records equal the card's signed listing and that both ledgers verify. Exits non-zero if any
//! check fails.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Args;
use deployment::{Deployment, DeploymentConfig};
use protocol::{ItemId, Operation, UserInfo};
use terminal::flows::{self, Certification, StoringOrder, StoringPath};
use terminal::CardClient;

use e2e::{Catalog, Hosted};

mod download;

#[derive(Args)]
pub struct DemoArgs {
    /// Data directory to create (must not exist). Default: a fresh directory under the system
    /// temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub(crate) const PIN: &str = "2468";

pub(crate) struct Demo {
    step: usize,
    failures: Vec<String>,
    passed: usize,
}

impl Demo {
    pub(crate) fn report(&mut self, what: &str, result: anyhow::Result<String>) {
        self.step += 1;
        match result {
            Ok(detail) => {
                self.passed += 1;
                println!("[{:>2}] {what:<64} ok  {detail}", self.step);
            }
            Err(e) => {
                println!("[{:>2}] {what:<64} FAILED: {e:#}", self.step);
                self.failures.push(format!("{what}: {e:#}"));
            }
        }
    }
}

fn fresh_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match arg {
        Some(d) => d,
        None => {
            let mut tag = [0u8; 4];
            crypto::Rng::fill(&mut crypto::OsRng, &mut tag);
            std::env::temp_dir().join(format!("cardwright-demo-{}", hex::encode(tag)))
        }
    };
    if dir.exists() {
        bail!(
            "{} already exists; the demo needs a fresh directory",
            dir.display()
        );
    }
    Ok(dir)
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = fresh_dir(args.dir)?;
    let runtime = crate::server_args::runtime()?;
    runtime.block_on(async {
        println!("bringing up the parties in {} …", dir.display());
        let deployment = Deployment::start(DeploymentConfig::new(dir.clone()))
            .await
            .context("starting the deployment")?;
        for p in deployment.parties() {
            println!("  {:<17} {}", p.id.as_str(), p.url);
        }
        println!();
        let mut demo = Demo {
            step: 0,
            failures: Vec::new(),
            passed: 0,
        };
        let outcome = walk(&mut demo, &deployment).await;
        if let Err(e) = outcome {
            println!("demo stopped: {e:#}");
            demo.failures.push(format!("demo stopped: {e:#}"));
        }
        deployment.stop().await?;
        println!();
        println!("summary");
        println!("  data directory  {}", dir.display());
        println!(
            "  card image      {}",
            dir.join("cards/alice/card.nvm").display()
        );
        println!(
            "  steps           {} passed, {} failed",
            demo.passed,
            demo.failures.len()
        );
        println!(
            "  run it again    cardwright up --dir {}   (then cardwright terminal list --dir {} --card {}/cards/alice)",
            dir.display(),
            dir.display(),
            dir.display()
        );
        if demo.failures.is_empty() {
            println!("all checks passed");
            Ok(())
        } else {
            for f in &demo.failures {
                println!("  failed: {f}");
            }
            bail!("{} step(s) failed", demo.failures.len())
        }
    })
}

pub(crate) fn quiet(_: &str) {}

async fn walk(d: &mut Demo, dep: &Deployment) -> anyhow::Result<()> {
    let parties = e2e::parties(dep)?;
    let catalog = e2e::publish_catalog(dep).await;
    d.report(
        "provider publishes its catalog",
        catalog
            .as_ref()
            .map(Catalog::describe)
            .map_err(|e| anyhow::anyhow!("{e:#}")),
    );
    let catalog = catalog?;
    d.report(
        "issuer delegates STO-3 to the provider; provider keeps it",
        e2e::delegate(dep).await,
    );

    let card_dir = dep.dir.join("cards").join("alice");
    let mut card = CardClient::new(Hosted::create(&card_dir)?);
    let r = flows::personalise(
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
    .await
    .map(|id| format!("card {id}, 4096 bytes"))
    .map_err(anyhow::Error::from);
    d.report("issuer personalises a blank card (CARD-3)", r);

    let user = UserInfo::new("alice", "Alice Example", "alice@example.org")?;
    let r = flows::register(&mut card, &parties.issuer, PIN, &user, &mut quiet)
        .await
        .map(|reg| {
            format!(
                "RC serial {} signed by {}",
                reg.rc.serial(),
                reg.rc.issuer_id()
            )
        })
        .map_err(anyhow::Error::from);
    let registered = r.is_ok();
    d.report("card registers; the issuer certifies it (REG-2)", r);
    if !registered {
        bail!("registration failed; nothing more can run");
    }

    let storing: [(&str, Operation, StoringPath, &ItemId, Certification); 8] = [
        (
            "STO-1 store via the issuer (issuer SAR, provider SA)",
            Operation::Store,
            StoringPath::ViaIssuer,
            &catalog.ticket,
            Certification::None,
        ),
        (
            "STO-2 store via the provider (provider SAR, issuer SA)",
            Operation::Store,
            StoringPath::ViaProvider,
            &catalog.coupon,
            Certification::None,
        ),
        (
            "STO-3 store by the provider alone (delegation)",
            Operation::Store,
            StoringPath::ProviderOnly,
            &catalog.points,
            Certification::None,
        ),
        (
            "STO-4 store certified data (provider SDCI)",
            Operation::Store,
            StoringPath::ViaIssuer,
            &catalog.pass,
            Certification::Provider,
        ),
        (
            "STO-5 store registrar-certified data (SDCI')",
            Operation::Store,
            StoringPath::ViaProvider,
            &catalog.member_id,
            Certification::Registrar,
        ),
        (
            "STO-6 delete via the provider",
            Operation::Delete,
            StoringPath::ViaProvider,
            &catalog.coupon,
            Certification::None,
        ),
        (
            "STO-6 delete by the provider alone",
            Operation::Delete,
            StoringPath::ProviderOnly,
            &catalog.points,
            Certification::None,
        ),
        (
            "STO-6 delete via the issuer",
            Operation::Delete,
            StoringPath::ViaIssuer,
            &catalog.ticket,
            Certification::None,
        ),
    ];
    for (what, operation, path, item, certification) in storing {
        let order = StoringOrder {
            operation,
            path,
            item: item.clone(),
            version: None,
            certification,
            pin: PIN.to_string(),
        };
        let r = async {
            let outcome = flows::store_or_delete(&mut card, &parties, &order, &mut quiet).await?;
            let cmp = flows::compare(&mut card, &parties).await?;
            if !cmp.in_sync() {
                bail!("records differ from the card's listing: {cmp:?}");
            }
            Ok(format!(
                "receipt #{}; issuer and provider records = card listing",
                outcome.receipt.counter
            ))
        }
        .await;
        d.report(what, r);
    }

    let r = async {
        let mut bob = CardClient::new(Hosted::create(&dep.dir.join("cards").join("bob"))?);
        flows::personalise(
            &mut bob,
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
        let user = UserInfo::new("bob", "Bob Example", "bob@example.org")?;
        let reg = flows::register(&mut bob, &parties.issuer, PIN, &user, &mut quiet).await?;
        Ok((bob, format!("card {}", reg.card_id)))
    }
    .await;
    let mut bob = match r {
        Ok((bob, detail)) => {
            d.report("a second card is personalised and registered", Ok(detail));
            bob
        }
        Err(e) => {
            d.report("a second card is personalised and registered", Err(e));
            bail!("no second card; the refusals need one");
        }
    };
    for (what, r) in e2e::refusals(dep, &parties, &mut card, &mut bob, &catalog, PIN).await {
        d.report(&what, r);
    }

    let r = e2e::verify_ledgers(dep, &parties, &mut card).await;
    d.report("both ledgers verify (hash chain, signatures, RC)", r);

    // Power cycle: the card comes back from its sealed image on disk.
    drop(card);
    let r = async {
        let mut card = CardClient::new(Hosted::open(&card_dir)?);
        let cmp = flows::compare(&mut card, &parties).await?;
        if !cmp.in_sync() {
            bail!("records differ after the power cycle: {cmp:?}");
        }
        let items: Vec<String> = cmp
            .listing
            .contents
            .items()
            .iter()
            .map(|i| String::from_utf8_lossy(i.item_id.as_bytes()).into_owned())
            .collect();
        Ok(format!(
            "{} items [{}], {} bytes free, counter {}",
            items.len(),
            items.join(", "),
            cmp.listing.contents.free(),
            cmp.listing.counter
        ))
    }
    .await;
    d.report("power cycle; signed listing = both records (REC-1)", r);

    download::walk(d, dep, &parties).await
}
