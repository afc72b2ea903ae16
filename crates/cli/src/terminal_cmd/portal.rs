//! `cardwright terminal portal`: serves the user's portal (APP-4, `terminal::portal`) on this
//! computer's loopback and prints the one link that opens it. The card is opened afresh for
//! each piece of card work, so a card taken out and put back is seen as the reader sees it.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Args;
use terminal::portal::{self, OpenWith, PortalConfig};
use terminal::{CardChannel, ChannelError};

use super::{parties, CardArgs, PartyArgs};

#[derive(Args)]
pub struct PortalArgs {
    #[command(flatten)]
    card: CardArgs,
    #[command(flatten)]
    parties: PartyArgs,
    /// Where to serve the portal: a loopback address (it serves this computer only).
    #[arg(long, default_value = "127.0.0.1:7610")]
    listen: SocketAddr,
}

fn reader(args: &CardArgs) -> anyhow::Result<Box<dyn portal::CardReader>> {
    match (&args.card, &args.reader) {
        (Some(dir), _) => {
            // Fails early (no card, wrong key) rather than on the first page.
            drop(super::open_image(dir, &args.key, false)?);
            let dir = dir.clone();
            let key = args.key.key_file.clone();
            let name = format!("card image {}", dir.display());
            Ok(Box::new(OpenWith::new(name, move || {
                let key = crate::card_cmd::KeyArgs {
                    key_file: key.clone(),
                };
                super::open_image(&dir, &key, false)
                    .map(|h| Box::new(h) as Box<dyn CardChannel + Send>)
                    .map_err(|e| ChannelError::Transport {
                        detail: format!("{e:#}"),
                    })
            })))
        }
        (None, Some(name)) => pcsc_reader(name),
        (None, None) => anyhow::bail!("name the card: --card DIR or --reader NAME"),
    }
}

#[cfg(feature = "pcsc")]
fn pcsc_reader(name: &str) -> anyhow::Result<Box<dyn portal::CardReader>> {
    let wanted = name.to_string();
    Ok(Box::new(OpenWith::new(
        format!("reader {name:?}"),
        move || {
            terminal::PcscCard::connect(&wanted)
                .map(|c| Box::new(c) as Box<dyn CardChannel + Send>)
                .map_err(|e| ChannelError::Transport {
                    detail: e.to_string(),
                })
        },
    )))
}

#[cfg(not(feature = "pcsc"))]
fn pcsc_reader(name: &str) -> anyhow::Result<Box<dyn portal::CardReader>> {
    anyhow::bail!(
        "--reader {name:?}: this cardwright was built without PC/SC; build it with \
         `cargo build --release -p cli --features pcsc`"
    )
}

pub async fn run(args: PortalArgs) -> anyhow::Result<()> {
    let parties = parties(&args.parties)?;
    let issuer_name = super::deployment_url(&args.parties.dir, "issuer")
        .map(|(_, id)| id)
        .unwrap_or_else(|_| "your card's issuer".to_string());
    let config = PortalConfig {
        listen: args.listen,
        reader: reader(&args.card)?,
        provider_name: parties.provider_id.as_str().to_string(),
        parties,
        journal_dir: args.parties.dir.join("terminal").join("downloads"),
        issuer_name,
    };
    let running = portal::serve(config).await.context("starting the portal")?;
    println!(
        "the portal is ready: open this link in a browser on this computer (keep it to yourself: it is the portal's key):"
    );
    println!();
    println!("  {}", running.url());
    println!();
    println!("Ctrl-C stops it.");
    server_kit::shutdown_signal().await;
    running.stop().await.context("stopping the portal")?;
    Ok(())
}
