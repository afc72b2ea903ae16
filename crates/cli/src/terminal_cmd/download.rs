//! `cardwright terminal download`: adds an application to the card from one of the provider's
//! services (APP-3), in the order of seed 003: the card's standing with its issuer, the
//! catalog against the card's free room, the membership terms, the card-signed download
//! application, then the issuer, the provider and the card finish it. A download this
//! terminal was in for the card (its journal) is resumed first (REC-2): run the same command
//! again after anything stopped it.

use anyhow::{bail, Context as _};
use clap::Args;
use terminal::download::{self, Control, Fit, Step};
use terminal::journal::Journal;

use super::{open_card, parties, CardArgs, PartyArgs};

#[derive(Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    card: CardArgs,
    #[command(flatten)]
    parties: PartyArgs,
    #[arg(long)]
    pin: String,
    /// The provider's service to join (see the list this command prints without it).
    #[arg(long)]
    service: Option<String>,
    /// Accept the provider's membership terms (they are printed first; without this flag the
    /// command stops after printing them).
    #[arg(long)]
    accept_terms: bool,
}

fn step_line(step: Step) -> String {
    match step {
        Step::Opened => "the issuer verified the card's signature and opened the download".into(),
        Step::Authorized { attempt } => {
            format!("the issuer and the provider authorized the installation (attempt {attempt})")
        }
        Step::PackageFetched => "the application arrived and matches its digest".into(),
        Step::Installed => "the card verified and installed it, and signed its receipt".into(),
        Step::Recorded => "the issuer recorded the receipt in the card's registry".into(),
        Step::Notified => "the provider started the service".into(),
    }
}

pub async fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let parties = parties(&args.parties)?;
    let journal = Journal::new(args.parties.dir.join("terminal").join("downloads"));
    let mut card = open_card(&args.card, false)?;
    let who = terminal::flows::identity(&mut card)?;

    let mut d = match download::resume(&journal, who.card_id)? {
        Some(d) => {
            println!(
                "resuming download {} of service {} for card {}",
                d.operation_id, d.entry.service_id, who.card_id
            );
            d
        }
        None => {
            let standing = download::check(&mut card, &parties).await?;
            println!(
                "card {} of {}: verified with {}; {} of {} bytes free",
                standing.card_id,
                standing.holder,
                standing.issuer,
                standing.free,
                standing.capacity
            );
            for app in &standing.applications {
                println!(
                    "  on the card: {} v{} ({} bytes, {})",
                    app.name, app.version, app.size, app.provider
                );
            }
            if let Some(open) = standing.open_downloads.first() {
                // Started on another computer (or this journal was lost): finish that one.
                let op = protocol::OperationId::from_hex(open)
                    .with_context(|| format!("the issuer's open download {open:?}"))?;
                println!("the issuer holds download {op} open for this card: continuing it");
                let d = download::adopt(&parties, &journal, standing.card_id, op).await?;
                return finish(&mut card, &parties, &journal, &args.pin, d, &who).await;
            }
            let offers = download::offers(&parties, &standing).await?;
            println!("services of {}:", parties.provider_id);
            for offer in &offers {
                let s = &offer.service;
                let fit = match offer.fit {
                    Fit::Fits => "fits".to_string(),
                    Fit::Installed => "already on your card".to_string(),
                    Fit::TooLarge { needs, free } => {
                        format!("needs {needs} bytes, {free} free")
                    }
                };
                println!(
                    "  {:<12} {} — {} v{}, {} bytes ({fit})",
                    s.service_id,
                    s.name,
                    s.application.name,
                    s.application.version,
                    s.application.size
                );
            }
            let Some(service) = args.service.as_deref() else {
                bail!("choose a service with --service ID");
            };
            let offer = offers
                .iter()
                .find(|o| o.service.service_id == service)
                .with_context(|| {
                    format!("{} offers no service {service:?}", parties.provider_id)
                })?;
            match offer.fit {
                Fit::Fits => {}
                Fit::Installed => bail!("{} is already on the card", offer.service.application.name),
                Fit::TooLarge { needs, free } => bail!(
                    "not enough room on the card: {} needs {needs} bytes; the card has {free} bytes free",
                    offer.service.application.name
                ),
            }
            let terms = download::terms(&parties).await?;
            println!(
                "membership terms (version {}):\n{}\n",
                terms.version, terms.text
            );
            if !args.accept_terms {
                bail!("read the terms above; pass --accept-terms to accept them");
            }
            let digest = crypto::sha256(terms.text.as_bytes()).0;
            let mut d = download::begin(&journal, standing.card_id, digest, service)?;
            println!("download {} started", d.operation_id);
            download::request(&parties, &journal, &standing.issuer, &mut d).await?;
            d
        }
    };
    if d.request().is_none() {
        download::request(&parties, &journal, who.irc.subject_id(), &mut d).await?;
    }
    if d.application().is_none() {
        let request = d
            .request()
            .context("the journal lost the provider's request")?;
        println!(
            "the card signs the download application: {} v{}, {} bytes, valid until {}",
            hex::encode(request.item_id.as_bytes()),
            request.version,
            request.size,
            request.not_after.0
        );
        if let Err(e) = download::sign(&mut card, &journal, &args.pin, &mut d) {
            return Err(forget_if_dead(&journal, &d, e));
        }
    }
    finish(&mut card, &parties, &journal, &args.pin, d, &who).await
}

/// A download that can never finish (`download::is_dead`) is forgotten, so running the command
/// again starts a new one.
fn forget_if_dead(
    journal: &Journal,
    d: &download::Download,
    e: terminal::flows::FlowError,
) -> anyhow::Error {
    if !download::is_dead(&e) {
        return e.into();
    }
    let _ = download::forget(journal, d);
    anyhow::Error::new(e).context(format!(
        "download {} cannot be finished and is forgotten: run the command again to start a new one",
        d.operation_id
    ))
}

async fn finish(
    card: &mut super::Card,
    parties: &terminal::flows::Parties,
    journal: &Journal,
    pin: &str,
    mut d: download::Download,
    who: &terminal::flows::CardIdentity,
) -> anyhow::Result<()> {
    let finished = match download::finish(card, parties, journal, pin, &mut d, &mut |s| {
        println!("  … {}", step_line(s));
        Control::Continue
    })
    .await
    {
        Ok(f) => f,
        Err(e) => return Err(forget_if_dead(journal, &d, e)),
    };
    println!(
        "service {} started for card {} (member since {}; receipt #{}{})",
        d.entry.service_id,
        who.card_id,
        finished.member_since,
        finished
            .receipt_counter
            .map_or_else(|| "?".to_string(), |c| c.to_string()),
        if finished.installed_now {
            ""
        } else {
            "; installed by an earlier run"
        }
    );
    Ok(())
}
