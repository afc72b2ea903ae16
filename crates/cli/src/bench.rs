//! `cardwright bench …`: throughput figures, each printed next to the bound that limits it,
//! measured in the same run on the same machine (SPEC PERF).

mod authorize;
mod download;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use card::nvm::Nvm;
use card::Card;
use card_host::{CardDir, SealedFileNvm, SealingKey};
use clap::{Args, Subcommand};
use crypto::{InsecureSeededRng, SigningKey};
use protocol::{Challenge, Operation};
use terminal::{CardClient, InProcessCard};
use testkit::world::{Path, World, PIN};

#[derive(Subcommand)]
pub enum BenchCommand {
    /// APDUs per second of an in-process card, and durable writing commands per second of a
    /// card on a sealed file image.
    Card(CardBenchArgs),
    /// Storing authorizations per second end to end over HTTP (SQLite, and PostgreSQL when
    /// given a cluster), next to the bound their signature operations set.
    Authorize(authorize::AuthorizeBenchArgs),
    /// Applications added to cards per second end to end (APP-3), next to the bound their
    /// signature operations set.
    Download(download::DownloadBenchArgs),
}

#[derive(Args)]
pub struct CardBenchArgs {
    /// Seconds to spend on each figure.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    /// Directory for the durable card image (default: a fresh directory under the system
    /// temporary directory, removed afterwards). Put it on the disk you want to measure.
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Card(args) => card(args),
        BenchCommand::Authorize(args) => authorize::run(args),
        BenchCommand::Download(args) => download::run(args),
    }
}

/// Runs `op` repeatedly for about `budget`; returns operations per second.
fn rate(budget: Duration, mut op: impl FnMut()) -> f64 {
    op(); // warm-up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget || n < 3 {
        op();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn line(what: &str, value: f64, unit: &str, bound: &str) {
    println!("  {what:<44} {value:>10.0} {unit:<8} {bound}");
}

fn expect_sw(resp: &[u8], sw: [u8; 2]) {
    assert_eq!(
        &resp[resp.len() - 2..],
        &sw,
        "benchmark command answered {:02X?}",
        &resp[resp.len() - 2..]
    );
}

fn card(args: CardBenchArgs) -> anyhow::Result<()> {
    let budget = Duration::from_secs_f64(args.seconds.max(0.05));
    let w = World::new(0xBE7C);
    let (mut c, rc) = w.registered();
    let mut rng = InsecureSeededRng::insecure_seeded_for_tests(1);

    println!(
        "in-process card, RAM NVM ({} s per figure)",
        budget.as_secs_f64()
    );
    let card = &mut c.channel().card;
    // The bound for APDU throughput: an APDU the card frames, routes and refuses at once.
    let noop = rate(budget, || {
        let r = card.transmit(&[0x80, 0x7E, 0x00, 0x00], &mut rng);
        expect_sw(&r, [0x6D, 0x00]);
    });
    line(
        "no-op APDU (unknown INS → 6D00)",
        noop,
        "APDU/s",
        "(the bound)",
    );
    for (name, apdu) in [
        (
            "SELECT card manager",
            &hex_apdu("00A4040008A000000151000000")[..],
        ),
        ("GET DATA card status (DF30)", &hex_apdu("80CADF3000")[..]),
        ("GET CHALLENGE", &hex_apdu("0084000010")[..]),
    ] {
        let r = rate(budget, || {
            let resp = card.transmit(apdu, &mut rng);
            expect_sw(&resp, [0x90, 0x00]);
        });
        line(
            name,
            r,
            "APDU/s",
            &format!("{:5.1}% of no-op", 100.0 * r / noop),
        );
    }

    // Signing and verifying bound the commands that carry signed objects.
    let key = SigningKey::generate(&mut rng);
    let sig = key.sign(b"bench");
    let vk = key.verifying_key();
    let sign = rate(budget, || drop(key.sign(b"bench")));
    let verify = rate(budget, || vk.verify(b"bench", &sig).expect("verifies"));
    line(
        "raw ECDSA P-256 sign",
        sign,
        "op/s",
        "(bound of signed answers)",
    );
    line(
        "raw ECDSA P-256 verify",
        verify,
        "op/s",
        "(bound of checked objects)",
    );
    let listing = rate(budget, || {
        let resp = card.transmit(&hex_apdu("80F24000 06 DF6003010203 00"), &mut rng);
        expect_sw(&resp, [0x90, 0x00]);
    });
    line(
        "GET STATUS signed listing",
        listing,
        "APDU/s",
        &format!("{:5.1}% of raw sign", 100.0 * listing / sign),
    );
    // A store: INSTALL (SA + SAR: 2 chains of 1 certificate and 2 signatures = 4 verifies) and
    // one LOAD (1 receipt signature), plus GET CHALLENGE; data 32 bytes.
    let data = [0x5Au8; 32];
    let mut version = 0u32;
    let stores = rate(budget, || {
        version += 1;
        let sdi = w.sdi(Operation::Store, b"bench", version, &data);
        let ch = Challenge(c.get_challenge().expect("challenge"));
        let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
        c.store(&sa, None, &data).expect("store");
    });
    let bound = 1.0 / (4.0 / verify + 1.0 / sign + 2.0 / sign);
    line(
        "store: challenge + INSTALL + LOAD",
        stores,
        "store/s",
        &format!(
            "{:5.1}% of 4 verify + 3 sign ({bound:.0}/s)",
            100.0 * stores / bound
        ),
    );

    // Durable writes: the sealed file image on a real disk.
    let (dir, remove) = match args.dir {
        Some(d) => (d, false),
        None => (
            std::env::temp_dir().join(format!("cardwright-bench-{}", std::process::id())),
            true,
        ),
    };
    let result = durable(&w, &dir, budget);
    if remove {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn durable(w: &World, dir: &std::path::Path, budget: Duration) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let card_dir = dir.join("card");
    let key = SealingKey::generate(&mut crypto::OsRng);
    let image = 64 * 1024;
    let nvm = CardDir::create(&card_dir, &key, Card::<SealedFileNvm>::nvm_size_for(image))?;
    let card = Card::manufacture(nvm, image)?;
    let mut c = CardClient::new(InProcessCard::new(
        card,
        Box::new(InsecureSeededRng::insecure_seeded_for_tests(2)),
    ));
    c.select_card_manager()?;
    c.personalise(&w.personalisation())?;
    println!("durable card, sealed file image in {}", dir.display());
    let fsync = card_host::bench::fsync_rate(dir, budget)?;
    line(
        "raw write + fdatasync of one page",
        fsync,
        "/s",
        "(the bound: one sync)",
    );
    // VERIFY with the right PIN commits twice (try spent, then restored); each commit syncs
    // after the journal body, the commit record, the apply and the clear: 8 fdatasyncs.
    let verifies = rate(budget, || c.verify_pin(PIN).expect("verify"));
    line(
        "VERIFY PIN (2 commits, 8 fdatasyncs issued)",
        verifies,
        "cmd/s",
        &format!(
            "costs {:.1} raw fdatasyncs each; bound at 8: {:.0}/s",
            fsync / verifies,
            fsync / 8.0
        ),
    );
    let nvm = c.into_channel().into_card().into_nvm();
    println!("  (card image: {} bytes of NVM)", nvm.len());
    Ok(())
}

fn hex_apdu(s: &str) -> Vec<u8> {
    let clean: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    // Invariant: constant APDUs in this file are valid hex.
    hex::decode(clean).expect("constant APDU hex")
}
