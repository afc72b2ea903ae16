//! `cardwright demo`: one card's whole life so far, on a sealed card image in a fresh data
//! directory, with the parties (registrars, issuer, provider) in this process. Every step is
//! checked; the command exits non-zero if any check fails.
//!
//! The parties' keys come from a throwaway PKI made for this run (`testkit::world`); the card is
//! the real card OS on a real sealed file image, driven only by APDUs.

use std::path::PathBuf;

use anyhow::{bail, Context};
use card_host::{CardSlot, HostedCard, SealedFileNvm, SealingKey};
use clap::Args;
use crypto::Rng;
use pki::Certificate;
use protocol::{
    verify_listing, verify_receipt, Challenge, Nonce, Operation, Policy, ReceiptResult,
};
use terminal::{CardChannel, CardClient, ChannelError};
use testkit::world::{Path, SaParams, World, PIN};

#[derive(Args)]
pub struct DemoArgs {
    /// Data directory to create (must not exist). Default: a fresh directory under the system
    /// temporary directory.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The card on its sealed image, as a terminal channel.
struct Hosted(HostedCard<SealedFileNvm>);

impl CardChannel for Hosted {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        Ok(self.0.transmit(command))
    }
}

struct Demo {
    card_dir: PathBuf,
    key: SealingKey,
    step: usize,
    failures: Vec<String>,
    summary: Vec<(String, String)>,
}

impl Demo {
    fn step(&mut self, what: &str, result: anyhow::Result<String>) {
        self.step += 1;
        match result {
            Ok(detail) => {
                println!("[{:>2}] {what:<58} ok  {detail}", self.step);
                self.summary.push((what.to_string(), detail));
            }
            Err(e) => {
                println!("[{:>2}] {what:<58} FAILED: {e:#}", self.step);
                self.failures.push(format!("{what}: {e:#}"));
            }
        }
    }

    fn open(&self) -> anyhow::Result<CardClient<Hosted>> {
        let hosted = HostedCard::open(&self.card_dir, &self.key)?;
        let mut c = CardClient::new(Hosted(hosted));
        c.select_card_manager()?;
        Ok(c)
    }
}

fn fresh_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match arg {
        Some(d) => d,
        None => {
            let mut tag = [0u8; 4];
            crypto::OsRng.fill(&mut tag);
            std::env::temp_dir().join(format!("cardwright-demo-{}", hex::encode(tag)))
        }
    };
    if dir.exists() {
        bail!(
            "{} already exists; the demo needs a fresh directory",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = fresh_dir(args.dir)?;
    let mut seed = [0u8; 8];
    crypto::OsRng.fill(&mut seed);
    let world = World::new(u64::from_le_bytes(seed));
    println!("cardwright demo — data directory {}", dir.display());
    println!(
        "parties: issuer {:?}, provider {:?}, registrars {:?} / {:?} (throwaway keys)",
        world.pki.issuer.id.as_str(),
        world.pki.provider.id.as_str(),
        world.pki.issuer_registrar.id.as_str(),
        world.pki.data_registrar.id.as_str()
    );
    let key_file = dir.join("card.key");
    let key = SealingKey::generate_file(&key_file)?;
    let card_dir = dir.join("card");
    let mut d = Demo {
        card_dir,
        key,
        step: 0,
        failures: Vec::new(),
        summary: Vec::new(),
    };
    let outcome = walk(&mut d, &world);
    if let Err(e) = outcome {
        d.failures.push(format!("demo stopped: {e:#}"));
        println!("demo stopped: {e:#}");
    }
    println!();
    println!("summary");
    println!("  card image   {}", d.card_dir.join("card.nvm").display());
    println!("  sealing key  {}", key_file.display());
    println!(
        "  steps        {} passed, {} failed",
        d.summary.len(),
        d.failures.len()
    );
    println!(
        "  inspect it   cardwright card info {} --key-file {}",
        d.card_dir.display(),
        key_file.display()
    );
    if d.failures.is_empty() {
        println!("all checks passed");
        Ok(())
    } else {
        for f in &d.failures {
            println!("  failed: {f}");
        }
        bail!("{} step(s) failed", d.failures.len())
    }
}

fn walk(d: &mut Demo, w: &World) -> anyhow::Result<()> {
    let hosted = HostedCard::create(&d.card_dir, &d.key, card::DEFAULT_IMAGE_CAPACITY)?;
    let mut c = CardClient::new(Hosted(hosted));
    c.select_card_manager()?;

    let r = (|| {
        c.personalise(&w.personalisation())?;
        let s = c.status()?;
        Ok(format!(
            "card {} of {}, {} bytes",
            c.card_id()?.to_hex(),
            w.pki.issuer.id,
            s.capacity
        ))
    })();
    d.step("issuer personalises the blank card (CARD-3)", r);

    let mut rc: Option<Certificate> = None;
    let r = (|| {
        c.verify_pin(PIN)?;
        let issuer_challenge = Challenge([0xC3; 16]);
        let reg = c.register(&w.user, &issuer_challenge.0)?;
        let cert = w.issue_rc(&reg, &issuer_challenge);
        c.register_complete(&cert, &w.pki.issuer.cert)?;
        let detail = format!("RC serial {} for {}", cert.serial(), w.user.name());
        rc = Some(cert);
        Ok(detail)
    })();
    d.step("card registers; issuer certifies its key (REG-2)", r);
    let Some(rc) = rc else {
        bail!("registration failed; nothing more can run")
    };

    let mut results: Vec<(&str, anyhow::Result<String>)> = Vec::new();
    let mut expected_counter = 0u64;
    let mut store = |c: &mut CardClient<Hosted>,
                     path: Path,
                     item: &[u8],
                     data: &[u8],
                     certified: Option<bool>|
     -> anyhow::Result<String> {
        let policy = if certified.is_some() {
            Policy::CERTIFIED_DATA_REQUIRED
        } else {
            Policy::NONE
        };
        let sdi = w.sdi_with(Operation::Store, item, 1, data, &w.pki.provider.id, policy);
        let ch = Challenge(c.get_challenge()?);
        let sa = w.sa(path, &sdi, ch, &rc);
        let cert = certified.map(|by_registrar| {
            if by_registrar {
                w.sdci_prime(&sdi)
            } else {
                w.sdci(&sdi)
            }
        });
        let receipt = verify_receipt(&c.store(&sa, cert.as_ref(), data)?, &rc)?;
        expected_counter += 1;
        if receipt.counter != expected_counter || receipt.result != ReceiptResult::Stored {
            bail!("unexpected receipt {receipt:?}");
        }
        Ok(format!("receipt #{} verified", receipt.counter))
    };
    results.push((
        "STO-1 store via the issuer (issuer SAR, provider SA)",
        store(
            &mut c,
            Path::ViaIssuer,
            b"ticket-0001",
            b"concert, row 7 seat 12",
            None,
        ),
    ));
    results.push((
        "STO-2 store via the provider (provider SAR, issuer SA)",
        store(
            &mut c,
            Path::ViaProvider,
            b"coupon-0001",
            b"10% off, valid in May",
            None,
        ),
    ));
    results.push((
        "STO-3 store by the provider alone, issuer delegation",
        store(
            &mut c,
            Path::ProviderOnly,
            b"points-0001",
            b"120 points",
            None,
        ),
    ));
    results.push((
        "STO-4 store certified data (provider SDCI)",
        store(
            &mut c,
            Path::ViaIssuer,
            b"pass-0001",
            b"gym pass 2027",
            Some(false),
        ),
    ));
    results.push((
        "STO-5 store registrar-certified data (SDCI')",
        store(
            &mut c,
            Path::ViaIssuer,
            b"id-0001",
            b"member ID 48151623",
            Some(true),
        ),
    ));
    for (what, r) in results {
        d.step(what, r);
    }

    let r = (|| {
        let sdi = w.sdi(
            Operation::Delete,
            b"coupon-0001",
            1,
            b"10% off, valid in May",
        );
        let ch = Challenge(c.get_challenge()?);
        let receipt = verify_receipt(&c.delete(&w.sa(Path::ViaProvider, &sdi, ch, &rc))?, &rc)?;
        if receipt.result != ReceiptResult::Deleted {
            bail!("unexpected receipt {receipt:?}");
        }
        Ok(format!("receipt #{} verified", receipt.counter))
    })();
    d.step("STO-6 delete with both consents", r);

    let refusals: Vec<(&str, anyhow::Result<String>)> = vec![
        ("refused: a replayed authorization", {
            let sdi = w.sdi(Operation::Store, b"replay", 1, b"x");
            refused(&mut c, |c| {
                let ch = Challenge(c.get_challenge()?);
                let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
                c.store(&sa, None, b"x")?;
                Ok(c.store(&sa, None, b"x").map(drop)?)
            })
        }),
        ("refused: an authorization for another card", {
            let other = World::new(7);
            let sdi = other.sdi(Operation::Store, b"other", 1, b"x");
            refused(&mut c, |c| {
                let ch = Challenge(c.get_challenge()?);
                Ok(c.store(&w.sa(Path::ViaIssuer, &sdi, ch, &rc), None, b"x")
                    .map(drop)?)
            })
        }),
        ("refused: an expired authorization", {
            let sdi = w.sdi(Operation::Store, b"late", 1, b"x");
            refused(&mut c, |c| {
                let ch = Challenge(c.get_challenge()?);
                let mut p = SaParams::new(w, Path::ViaIssuer, sdi, ch, &rc);
                p.issued_at = pki::UnixTime(p.issued_at.0 - 10 * 3600);
                p.not_after = pki::UnixTime(p.issued_at.0 + 60);
                Ok(c.store(&p.sign(), None, b"x").map(drop)?)
            })
        }),
        ("refused: data that does not match its SDI", {
            let sdi = w.sdi(Operation::Store, b"forged", 1, b"genuine");
            refused(&mut c, |c| {
                let ch = Challenge(c.get_challenge()?);
                Ok(
                    c.store(&w.sa(Path::ViaIssuer, &sdi, ch, &rc), None, b"forged!")
                        .map(drop)?,
                )
            })
        }),
        ("refused: more than the card's free capacity", {
            let big = vec![0u8; 8192];
            let sdi = w.sdi(Operation::Store, b"huge", 1, &big);
            refused(&mut c, |c| {
                let ch = Challenge(c.get_challenge()?);
                Ok(c.store(&w.sa(Path::ViaIssuer, &sdi, ch, &rc), None, &big)
                    .map(drop)?)
            })
        }),
    ];
    for (what, r) in refusals {
        d.step(what, r);
    }
    drop(c);

    // Power cycle: the card comes back from its sealed image on disk.
    let r = (|| {
        let mut c = d.open()?;
        let nonce = Nonce::new(b"demo listing")?;
        let listing = verify_listing(&c.listing(nonce.as_bytes())?, &rc, &nonce)?;
        let items: Vec<String> = listing
            .contents
            .items()
            .iter()
            .map(|i| String::from_utf8_lossy(i.item_id.as_bytes()).into_owned())
            .collect();
        // Six stores (one in the replay check), one delete.
        if items.len() != 5 || listing.counter != 7 {
            bail!(
                "listing after power cycle: {items:?}, counter {}",
                listing.counter
            );
        }
        Ok(format!(
            "{} items [{}], {} bytes free, counter {}",
            items.len(),
            items.join(", "),
            listing.contents.free(),
            listing.counter
        ))
    })();
    d.step("power cycle; the card's signed listing (REC-1)", r);

    let r = (|| {
        let mut c = d.open()?;
        let tries = c.status()?.pin_tries_left;
        match c.verify_pin("0000") {
            Err(e) if e.status().is_some_and(|s| s.tries_left().is_some()) => {}
            other => bail!("wrong PIN was not refused: {other:?}"),
        }
        c.verify_pin(PIN)?;
        Ok(format!(
            "{tries} tries; a wrong PIN costs one, the right PIN restores"
        ))
    })();
    d.step("holder verification with a retry counter (CARD-4)", r);
    Ok(())
}

/// Runs `f`, which must end in a refusal by the card; reports the status word.
fn refused(
    c: &mut CardClient<Hosted>,
    f: impl FnOnce(&mut CardClient<Hosted>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    match f(c) {
        Ok(()) => bail!("the card accepted it"),
        Err(e) => match e.downcast_ref::<terminal::ClientError>() {
            Some(ce) if ce.status().is_some() => {
                let why = c
                    .channel()
                    .0
                    .card()
                    .last_refusal_detail()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default();
                Ok(format!(
                    "card answered {} ({}){why}",
                    ce.status().map(|s| s.to_string()).unwrap_or_default(),
                    ce.status().map(terminal::meaning).unwrap_or_default()
                ))
            }
            _ => Err(e),
        },
    }
}
