//! The demo's second part (issue 4, APP-1…3): a new card joins one of the provider's services
//! over the Internet in seed 003's order, the service that does not fit is refused with both
//! numbers, and the issuer's registry and the provider's member list are printed afterwards.

use anyhow::{bail, Context as _};
use deployment::sample::{LOUNGE, TRANSIT};
use deployment::Deployment;
use protocol::{ServiceId, UserInfo};
use terminal::download::{self, Control, Fit};
use terminal::flows::{self, Parties};
use terminal::journal::Journal;
use terminal::CardClient;

use super::{quiet, Demo, PIN};
use e2e::Hosted;

pub async fn walk(d: &mut Demo, dep: &Deployment, parties: &Parties) -> anyhow::Result<()> {
    let r = dep.publish_sample_catalog().await.map(|()| {
        format!(
            "{} ({} bytes), {} ({} bytes), terms",
            TRANSIT.service_id, TRANSIT.size, LOUNGE.service_id, LOUNGE.size
        )
    });
    d.report(
        "issuer's application DB and provider's services (APP-1/2)",
        r,
    );

    let card_dir = dep.dir.join("cards").join("carol");
    let mut card = CardClient::new(Hosted::create(&card_dir)?);
    let r = async {
        flows::personalise(
            &mut card,
            &parties.issuer,
            &dep.issuer.operator_token,
            &party_api::issuer::PersonaliseRequest {
                pin: PIN.to_string(),
                pin_try_limit: None,
                capacity: Some(8192),
            },
            &mut quiet,
        )
        .await?;
        let user = UserInfo::new("carol", "Carol Example", "carol@example.org")?;
        let registered =
            flows::register(&mut card, &parties.issuer, PIN, &user, &mut quiet).await?;
        anyhow::Ok(format!("card {}, 8192 bytes", registered.card_id))
    }
    .await;
    d.report("a new card for Carol, registered (REG-2)", r);

    // S1–S4.
    let standing = download::check(&mut card, parties).await;
    d.report(
        "S1-S3 card proves itself; issuer answers its standing",
        standing
            .as_ref()
            .map(|s| format!("{}: {} of {} bytes free", s.holder, s.free, s.capacity))
            .map_err(|e| anyhow::anyhow!("{e}")),
    );
    let standing = standing?;
    let offers = download::offers(parties, &standing).await?;
    let lounge = offers
        .iter()
        .find(|o| o.service.service_id == LOUNGE.service_id)
        .map(|o| o.fit);
    d.report(
        "S4 the catalog against free room (too large: with numbers)",
        match lounge {
            Some(Fit::TooLarge { needs, free }) => {
                Ok(format!("{}: needs {needs} bytes, {free} free", LOUNGE.name))
            }
            other => Err(anyhow::anyhow!("lounge marked {other:?}")),
        },
    );

    // The user accepts the terms and chooses the transit pass.
    let journal = Journal::new(dep.dir.join("terminal").join("downloads"));
    let terms = download::terms(parties).await?;
    let mut dl = download::begin(
        &journal,
        standing.card_id,
        crypto::sha256(terms.text.as_bytes()).0,
        TRANSIT.service_id,
    )?;
    let r = download::request(parties, &journal, &standing.issuer, &mut dl).await;
    d.report(
        "S5-S6 service chosen; provider asks for a download application",
        r.as_ref()
            .map(|q| format!("op {}, {} bytes", q.operation_id, q.size))
            .map_err(|e| anyhow::anyhow!("{e}")),
    );
    r?;
    let r = download::sign(&mut card, &journal, PIN, &mut dl);
    d.report(
        "S7 PIN; the card signs the download application",
        r.map(|_| "signed by the card's registration key".to_string())
            .map_err(anyhow::Error::from),
    );
    let mut steps = Vec::new();
    let r = download::finish(&mut card, parties, &journal, PIN, &mut dl, &mut |s| {
        steps.push(format!("{s:?}"));
        Control::Continue
    })
    .await;
    d.report(
        "S8-S16 issuer verifies; both consent; card installs; member",
        r.map(|f| {
            format!(
                "{} (member since {})",
                steps.join(" > "),
                server_kit::console::utc(pki::UnixTime(f.member_since))
            )
        })
        .map_err(anyhow::Error::from),
    );

    // The records afterwards.
    let r = async {
        let registry = parties
            .issuer
            .registry(&dep.issuer.operator_token, &standing.card_id)
            .await?;
        let members = parties
            .provider
            .service_members(
                &dep.provider.operator_token,
                &ServiceId::new(TRANSIT.service_id)?,
            )
            .await?;
        println!();
        println!("     issuer registry of card {}", registry.card_id);
        if let Some(h) = &registry.holder {
            println!(
                "       holder        {} <{}> ({})",
                h.name, h.email, h.user_id
            );
        }
        println!(
            "       capacity      {} bytes, {} free, receipt counter {}",
            registry.capacity, registry.free, registry.last_counter
        );
        for a in &registry.applications {
            println!(
                "       application   {} v{} ({}), {} bytes, for {}",
                a.name, a.version, a.aid, a.size, a.provider
            );
        }
        println!("     provider members of {}", members.service_id);
        for m in &members.members {
            println!(
                "       {}  {} <{}>  since {}",
                m.card_id,
                m.user.name,
                m.user.email,
                server_kit::console::utc(pki::UnixTime(m.member_since))
            );
        }
        println!();
        if registry.applications.len() != 1 || members.members.len() != 1 {
            bail!("expected one application and one member");
        }
        if registry.free != 8192 - TRANSIT.size {
            bail!("registry free {} after one install", registry.free);
        }
        anyhow::Ok(format!(
            "1 application, {} bytes free; 1 member",
            registry.free
        ))
    }
    .await;
    d.report("registry and member list agree with the card", r);
    let r = flows::compare(&mut card, parties)
        .await
        .context("comparing")
        .and_then(|c| {
            if c.in_sync() {
                Ok(format!(
                    "counter {}, {} bytes free",
                    c.listing.counter,
                    c.listing.contents.free()
                ))
            } else {
                bail!("records differ: {c:?}")
            }
        });
    d.report("card's signed listing = both records (REC-1)", r);
    Ok(())
}
