//! `cardwright terminal …`: the user's terminal relaying between a card on this computer and
//! the parties' servers (REG-2, STO-1…7). The flows live in `terminal::flows`; this file reads
//! the command line, opens the card and finds the servers.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use card_host::{CardDir, HostedCard, SealingKey, SEALING_KEY_ENV};
use clap::{Args, Subcommand, ValueEnum};
use e2e::Hosted;
use party_api::issuer::{IssuerClient, PersonaliseRequest};
use party_api::provider::ProviderClient;
use party_api::HttpClient;
use pki::PartyId;
use protocol::{ItemId, Operation, UserInfo};
use terminal::flows::{self, Certification, Parties, StoringOrder, StoringPath};
use terminal::{CardChannel, CardClient};

use crate::card_cmd::KeyArgs;

mod download;
mod portal;

#[derive(Subcommand)]
pub enum TerminalCommand {
    /// Personalise a new card from an issuer record (at the issuer's facility; needs the
    /// issuer's operator token). Creates the card image if the directory has none.
    Personalise {
        #[command(flatten)]
        card: CardArgs,
        #[command(flatten)]
        parties: PartyArgs,
        /// The holder's PIN, 4..=12 digits.
        #[arg(long)]
        pin: String,
        /// Card capacity in bytes for stored items.
        #[arg(long, default_value_t = 4096)]
        capacity: u32,
        /// The issuer operator's token; default: DIR/issuer/operator-token.
        #[arg(long)]
        token: Option<String>,
    },
    /// Register the card with its issuer (REG-2).
    Register {
        #[command(flatten)]
        card: CardArgs,
        #[command(flatten)]
        parties: PartyArgs,
        #[arg(long)]
        pin: String,
        #[arg(long)]
        user_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
    },
    /// Store a provider's item on the card with both consents (STO-1…5).
    Store(StoringArgs),
    /// Delete an item from the card with both consents (STO-6).
    Delete(StoringArgs),
    /// Add an application to the card from one of the provider's services (APP-3); resumes
    /// an interrupted download of this card first (REC-2).
    Download(download::DownloadArgs),
    /// Serve the user's portal on this computer (APP-4): a web page that walks you through
    /// adding an application to your card.
    Portal(portal::PortalArgs),
    /// The card's signed listing, compared with the issuer's and provider's records.
    List {
        #[command(flatten)]
        card: CardArgs,
        #[command(flatten)]
        parties: PartyArgs,
    },
}

#[derive(Args)]
pub struct CardArgs {
    /// The card's directory (its sealed image).
    #[arg(long, required_unless_present = "reader")]
    card: Option<PathBuf>,
    /// A card in a PC/SC reader instead (its name, or part of it; "" for the first reader).
    /// Needs a build with `--features pcsc`.
    #[arg(long, conflicts_with = "card")]
    reader: Option<String>,
    #[command(flatten)]
    key: KeyArgs,
}

/// The card a command works on: an image on this computer or a card in a PC/SC reader.
type Card = CardClient<Box<dyn CardChannel>>;

fn open_card(args: &CardArgs, create: bool) -> anyhow::Result<Card> {
    match (&args.card, &args.reader) {
        (Some(dir), _) => {
            let hosted = open_image(dir, &args.key, create)?;
            Ok(CardClient::new(Box::new(hosted)))
        }
        (None, Some(reader)) => open_reader(reader),
        (None, None) => bail!("name the card: --card DIR or --reader NAME"),
    }
}

#[cfg(feature = "pcsc")]
fn open_reader(reader: &str) -> anyhow::Result<Card> {
    let card = terminal::PcscCard::connect(reader)?;
    Ok(CardClient::new(Box::new(card)))
}

#[cfg(not(feature = "pcsc"))]
fn open_reader(reader: &str) -> anyhow::Result<Card> {
    bail!(
        "--reader {reader:?}: this cardwright was built without PC/SC; build it with \
         `cargo build --release -p cli --features pcsc`"
    )
}

#[derive(Args)]
pub struct PartyArgs {
    /// A deployment's data directory (`cardwright up`): the servers are found in its
    /// deployment.json.
    #[arg(long, default_value = "cardwright-data")]
    dir: PathBuf,
    /// The issuer's base URL (instead of the deployment's).
    #[arg(long)]
    issuer: Option<String>,
    /// The provider's base URL (instead of the deployment's).
    #[arg(long)]
    provider: Option<String>,
    /// The provider's party ID (with --provider).
    #[arg(long)]
    provider_id: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum PathArg {
    ViaIssuer,
    ViaProvider,
    ProviderOnly,
}

#[derive(Clone, Copy, ValueEnum)]
enum CertifiedArg {
    None,
    Provider,
    Registrar,
}

#[derive(Args)]
pub struct StoringArgs {
    #[command(flatten)]
    card: CardArgs,
    #[command(flatten)]
    parties: PartyArgs,
    #[arg(long)]
    pin: String,
    /// The item ID, hex (1..=16 bytes).
    #[arg(long)]
    item: String,
    /// The item version (default: the catalog's highest for a store, the card's for a delete).
    #[arg(long)]
    version: Option<u32>,
    /// Which consent path (STO-1, STO-2, STO-3).
    #[arg(long, value_enum, default_value = "via-issuer")]
    path: PathArg,
    /// Certified data (STO-4 provider SDCI, STO-5 Data Registrar SDCI').
    #[arg(long, value_enum, default_value = "none")]
    certified: CertifiedArg,
}

fn open_image(dir: &Path, key: &KeyArgs, create: bool) -> anyhow::Result<Hosted> {
    if !create && !CardDir::nvm_path(dir).exists() {
        bail!(
            "there is no card in {} (make one with `cardwright terminal personalise --card {}`)",
            dir.display(),
            dir.display()
        );
    }
    if create && !CardDir::nvm_path(dir).exists() {
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let (sealing, written) = crate::card_cmd::sealing_key_for_new_card(dir, key)?;
        if let Some(path) = written {
            println!("new card sealing key in {}", path.display());
        }
        let hosted = HostedCard::create(dir, &sealing, card::DEFAULT_IMAGE_CAPACITY)
            .with_context(|| format!("creating a card in {}", dir.display()))?;
        return Ok(Hosted(hosted));
    }
    let key_file = key.key_file.clone().or_else(|| {
        let suggested = CardDir::suggested_key_file(dir);
        (std::env::var_os(SEALING_KEY_ENV).is_none() && suggested.exists()).then_some(suggested)
    });
    let sealing = SealingKey::resolve(key_file.as_deref())?;
    let hosted = HostedCard::open(dir, &sealing)
        .with_context(|| format!("opening the card in {}", dir.display()))?;
    Ok(Hosted(hosted))
}

fn deployment_url(dir: &Path, party: &str) -> anyhow::Result<(String, String)> {
    let (id, url) = deployment::listed_party(dir, party).with_context(|| {
        format!(
            "(start the parties with `cardwright up --dir {}`, or pass --issuer and --provider)",
            dir.display()
        )
    })?;
    Ok((url, id.as_str().to_string()))
}

fn parties(args: &PartyArgs) -> anyhow::Result<Parties> {
    let issuer_url = match &args.issuer {
        Some(u) => u.clone(),
        None => deployment_url(&args.dir, "issuer")?.0,
    };
    let (provider_url, provider_id) = match (&args.provider, &args.provider_id) {
        (Some(u), Some(id)) => (u.clone(), id.clone()),
        (Some(_), None) => bail!("--provider needs --provider-id"),
        _ => deployment_url(&args.dir, "provider")?,
    };
    Ok(Parties {
        issuer: IssuerClient::new(HttpClient::new(&issuer_url)?),
        provider: ProviderClient::new(HttpClient::new(&provider_url)?),
        provider_id: PartyId::new(&provider_id)
            .with_context(|| format!("provider ID {provider_id:?}"))?,
    })
}

fn say(step: &str) {
    println!("  … {step}");
}

pub fn run(cmd: TerminalCommand) -> anyhow::Result<()> {
    let runtime = crate::server_args::runtime()?;
    runtime.block_on(run_async(cmd))
}

async fn run_async(cmd: TerminalCommand) -> anyhow::Result<()> {
    match cmd {
        TerminalCommand::Personalise {
            card,
            parties: p,
            pin,
            capacity,
            token,
        } => {
            let token = match token {
                Some(t) => t,
                None => {
                    let path = p.dir.join("issuer").join("operator-token");
                    std::fs::read_to_string(&path)
                        .with_context(|| {
                            format!(
                                "reading the issuer's operator token {} (or pass --token)",
                                path.display()
                            )
                        })?
                        .trim()
                        .to_string()
                }
            };
            let parties = parties(&p)?;
            let mut c = open_card(&card, true)?;
            let order = PersonaliseRequest {
                pin,
                pin_try_limit: None,
                capacity: Some(capacity),
            };
            let card_id =
                flows::personalise(&mut c, &parties.issuer, &token, &order, &mut say).await?;
            println!("personalised card {card_id}");
        }
        TerminalCommand::Register {
            card,
            parties: p,
            pin,
            user_id,
            name,
            email,
        } => {
            let parties = parties(&p)?;
            let mut c = open_card(&card, false)?;
            let user = UserInfo::new(&user_id, &name, &email).context("user information")?;
            let registered =
                flows::register(&mut c, &parties.issuer, &pin, &user, &mut say).await?;
            println!(
                "registered card {} (RC serial {}, valid until {})",
                registered.card_id,
                registered.rc.serial(),
                registered.rc.not_after().0
            );
        }
        TerminalCommand::Store(args) => storing(Operation::Store, args).await?,
        TerminalCommand::Delete(args) => storing(Operation::Delete, args).await?,
        TerminalCommand::Download(args) => download::run(args).await?,
        TerminalCommand::Portal(args) => portal::run(args).await?,
        TerminalCommand::List { card, parties: p } => {
            let parties = parties(&p)?;
            let mut c = open_card(&card, false)?;
            let cmp = flows::compare(&mut c, &parties).await?;
            println!(
                "card {}: counter {}, {} of {} bytes free",
                cmp.card_id,
                cmp.listing.counter,
                cmp.listing.contents.free(),
                cmp.listing.contents.capacity()
            );
            for item in cmp.listing.contents.items() {
                println!(
                    "  {:<34} v{:<4} {:>6} bytes  {}",
                    hex::encode(item.item_id.as_bytes()),
                    item.version,
                    item.size,
                    item.owner
                );
            }
            println!(
                "issuer's record: {}; provider's record: {}",
                if cmp.issuer_in_sync {
                    "agrees"
                } else {
                    "DIFFERS"
                },
                if cmp.provider_in_sync {
                    "agrees"
                } else {
                    "DIFFERS"
                }
            );
            if !cmp.in_sync() {
                bail!("the parties' records differ from the card's signed listing");
            }
        }
    }
    Ok(())
}

async fn storing(operation: Operation, args: StoringArgs) -> anyhow::Result<()> {
    let parties = parties(&args.parties)?;
    let mut c = open_card(&args.card, false)?;
    let item = hex::decode(&args.item)
        .ok()
        .and_then(|b| ItemId::new(&b).ok())
        .with_context(|| format!("--item {:?} is not 1..=16 bytes of hex", args.item))?;
    let order = StoringOrder {
        operation,
        path: match args.path {
            PathArg::ViaIssuer => StoringPath::ViaIssuer,
            PathArg::ViaProvider => StoringPath::ViaProvider,
            PathArg::ProviderOnly => StoringPath::ProviderOnly,
        },
        item,
        version: args.version,
        certification: match args.certified {
            CertifiedArg::None => Certification::None,
            CertifiedArg::Provider => Certification::Provider,
            CertifiedArg::Registrar => Certification::Registrar,
        },
        pin: args.pin,
    };
    let outcome = flows::store_or_delete(&mut c, &parties, &order, &mut say).await?;
    println!(
        "{:?} {} v{}: receipt #{} recorded by the issuer (ledger #{}, {}) and the provider (ledger #{})",
        outcome.receipt.result,
        hex::encode(outcome.sdi.item_id.as_bytes()),
        outcome.sdi.version,
        outcome.receipt.counter,
        outcome.issuer_seq,
        if outcome.issuer_in_sync { "in sync" } else { "out of sync" },
        outcome.provider_seq
    );
    Ok(())
}
