//! `cardwright card …`: a card on this computer.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use card::Card;
use card_host::{vpcd, CardDir, CardSlot, HostedCard, SealedFileNvm, SealingKey, SEALING_KEY_ENV};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum CardCommand {
    /// Create a blank (manufactured) card in a new directory.
    New {
        dir: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// Size of the card's state image in KiB (its NVM is about twice that).
        #[arg(long, default_value_t = card::DEFAULT_IMAGE_CAPACITY / 1024)]
        image_kib: usize,
    },
    /// Show a card's life cycle, identity, capacity and counters.
    Info {
        dir: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Send command APDUs (hex, one argument each) and print each response and status word.
    Apdu {
        dir: PathBuf,
        /// Command APDUs in hex; spaces inside an argument are ignored.
        #[arg(required = true)]
        apdus: Vec<String>,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Serve the card into pcscd through the vpcd driver until interrupted.
    Serve {
        dir: PathBuf,
        /// Where vpcd listens (its server mode); the card connects to it.
        #[arg(long, value_name = "HOST:PORT", num_args = 0..=1,
              default_missing_value = vpcd::DEFAULT_VPCD_ADDR, required = true)]
        vpcd: String,
        #[command(flatten)]
        key: KeyArgs,
    },
}

#[derive(Args)]
pub struct KeyArgs {
    /// File holding the card image's sealing key (64 hex characters). Without it,
    /// the CARDWRIGHT_CARD_KEY environment variable is used.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
}

pub fn run(cmd: CardCommand) -> anyhow::Result<()> {
    match cmd {
        CardCommand::New {
            dir,
            key,
            image_kib,
        } => new(&dir, key, image_kib),
        CardCommand::Info { dir, key } => info(&dir, key),
        CardCommand::Apdu { dir, apdus, key } => apdu(&dir, &apdus, key),
        CardCommand::Serve { dir, vpcd, key } => serve(&dir, &vpcd, key),
    }
}

fn new(dir: &Path, key: KeyArgs, image_kib: usize) -> anyhow::Result<()> {
    if !(4..=4096).contains(&image_kib) {
        bail!("--image-kib must be between 4 and 4096 (got {image_kib})");
    }
    if CardDir::nvm_path(dir).exists() {
        bail!(
            "a card already exists in {}; choose another directory",
            dir.display()
        );
    }
    let (sealing, where_from) = sealing_key_for_new_card(dir, &key)?;
    let hosted = HostedCard::create(dir, &sealing, image_kib * 1024)
        .with_context(|| format!("creating a card in {}", dir.display()))?;
    println!("created a blank card in {}", dir.display());
    if let Some(path) = where_from {
        println!(
            "new sealing key written to {} (mode 0600): keep it apart from the card; \
             pass it with --key-file",
            path.display()
        );
    }
    print_info(hosted.card());
    Ok(())
}

/// The sealing key for a new card in `dir`: the key file given (generated there if absent),
/// else `CARDWRIGHT_CARD_KEY`, else a new key file beside the card. The path is returned when a
/// new key file was written, so the caller can say where.
pub fn sealing_key_for_new_card(
    dir: &Path,
    key: &KeyArgs,
) -> anyhow::Result<(SealingKey, Option<PathBuf>)> {
    Ok(match (&key.key_file, std::env::var_os(SEALING_KEY_ENV)) {
        (Some(path), _) if path.exists() => (SealingKey::from_key_file(path)?, None),
        (Some(path), _) => (SealingKey::generate_file(path)?, Some(path.clone())),
        (None, Some(_)) => (SealingKey::resolve(None)?, None),
        (None, None) => {
            let path = CardDir::suggested_key_file(dir);
            (SealingKey::generate_file(&path)?, Some(path))
        }
    })
}

fn open(dir: &Path, key: &KeyArgs) -> anyhow::Result<HostedCard<SealedFileNvm>> {
    let sealing = SealingKey::resolve(key.key_file.as_deref())?;
    HostedCard::open(dir, &sealing)
        .with_context(|| format!("opening the card in {}", dir.display()))
}

fn info(dir: &Path, key: KeyArgs) -> anyhow::Result<()> {
    let hosted = open(dir, &key)?;
    print_info(hosted.card());
    Ok(())
}

fn print_info(card: &Card<SealedFileNvm>) {
    let i = card.info();
    println!("life cycle:       {:?}", i.life_cycle);
    println!(
        "card ID:          {}",
        i.card_id
            .map_or("(not personalised)".into(), |c| c.to_hex())
    );
    println!(
        "issuer:           {}",
        i.issuer.unwrap_or_else(|| "(none)".into())
    );
    println!(
        "registered:       {}",
        if i.registered { "yes" } else { "no" }
    );
    println!("capacity:         {} bytes, {} free", i.capacity, i.free);
    println!("stored items:     {}", i.items);
    println!("receipt counter:  {}", i.receipt_counter);
    println!(
        "PIN tries left:   {}",
        i.pin_tries_left
            .map_or("(no PIN)".into(), |t| t.to_string())
    );
    println!("time floor:       {} (unix seconds)", i.time_floor.0);
}

fn parse_hex(arg: &str) -> anyhow::Result<Vec<u8>> {
    let clean: String = arg.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).with_context(|| format!("APDU {arg:?} is not hex"))
}

fn apdu(dir: &Path, apdus: &[String], key: KeyArgs) -> anyhow::Result<()> {
    let commands = apdus
        .iter()
        .map(|a| parse_hex(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut hosted = open(dir, &key)?;
    for cmd in commands {
        let resp = hosted.transmit(&cmd);
        let (data, sw) = resp.split_at(resp.len().saturating_sub(2));
        let status = apdu::Status::from_bytes(sw[0], sw[1]);
        println!(">> {}", hex::encode_upper(&cmd));
        if data.is_empty() {
            println!("<< {status} ({})", terminal::meaning(status));
        } else {
            println!(
                "<< {} {status} ({})",
                hex::encode_upper(data),
                terminal::meaning(status)
            );
        }
    }
    Ok(())
}

fn serve(dir: &Path, addr: &str, key: KeyArgs) -> anyhow::Result<()> {
    let mut hosted = open(dir, &key)?;
    println!(
        "serving the card in {} to vpcd at {addr}; stop with Ctrl-C (every command is atomic)",
        dir.display()
    );
    let stop = AtomicBool::new(false);
    vpcd::serve_vpcd(addr, &mut hosted, &stop)?;
    Ok(())
}
