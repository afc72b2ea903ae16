//! End-to-end scenarios across every party (docs/parties.md): a [`deployment::Deployment`] of
//! real servers, real card images driven by the terminal's flows, and the checks that the
//! parties' records equal the card's signed listing and that the ledgers verify. `cardwright
//! demo` runs these scenarios; `tests/` runs them with assertions, on SQLite and PostgreSQL.

pub mod webdriver;

use std::path::Path;

use anyhow::{bail, Context as _};
use card_host::{CardDir, CardSlot, HostedCard, SealedFileNvm, SealingKey};
use deployment::Deployment;
use party_api::issuer::{DelegationRequest, IssuerClient};
use party_api::provider::ProviderClient;
use party_api::HttpClient;
use protocol::{verify_ledger, ItemId};
use terminal::flows::{self, Parties};
use terminal::{CardChannel, CardClient, ChannelError};

/// A card on its sealed image in a directory, as a terminal channel. The sealing key lives
/// next to the card directory (`<dir>.key`).
pub struct Hosted(pub HostedCard<SealedFileNvm>);

impl Hosted {
    /// A new blank card in `dir` (with a new sealing key file beside it).
    pub fn create(dir: &Path) -> anyhow::Result<Hosted> {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let key = SealingKey::generate_file(&CardDir::suggested_key_file(dir))?;
        let hosted = HostedCard::create(dir, &key, card::DEFAULT_IMAGE_CAPACITY)
            .with_context(|| format!("creating a card in {}", dir.display()))?;
        Ok(Hosted(hosted))
    }

    /// The card in `dir`, as a power-up reads it from its image.
    pub fn open(dir: &Path) -> anyhow::Result<Hosted> {
        let key = SealingKey::from_key_file(&CardDir::suggested_key_file(dir))?;
        let hosted = HostedCard::open(dir, &key)
            .with_context(|| format!("opening the card in {}", dir.display()))?;
        Ok(Hosted(hosted))
    }

    /// Why the card refused the last command (for reports; the card never says on the wire).
    pub fn last_refusal(&self) -> Option<String> {
        self.0.card().last_refusal_detail().map(str::to_string)
    }
}

impl CardChannel for Hosted {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        Ok(self.0.transmit(command))
    }
}

/// The terminal's view of a deployment's issuer and provider.
pub fn parties(dep: &Deployment) -> anyhow::Result<Parties> {
    Ok(Parties {
        issuer: IssuerClient::new(HttpClient::new(&dep.issuer.url)?),
        provider: ProviderClient::new(HttpClient::new(&dep.provider.url)?),
        provider_id: dep.provider.id.clone(),
    })
}

/// The sample catalog the demo and the tests publish at the provider.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub ticket: ItemId,
    pub coupon: ItemId,
    pub points: ItemId,
    /// Policy: certified data required (STO-4).
    pub pass: ItemId,
    /// Policy: certified data required (STO-5, certified by the Data Registrar).
    pub member_id: ItemId,
    /// Larger than a 4096-byte card.
    pub huge: ItemId,
}

impl Catalog {
    /// Each item's name and the hex ID the terminal commands take.
    pub fn describe(&self) -> String {
        [
            &self.ticket,
            &self.coupon,
            &self.points,
            &self.pass,
            &self.member_id,
            &self.huge,
        ]
        .iter()
        .map(|id| {
            format!(
                "{} ({})",
                String::from_utf8_lossy(id.as_bytes()),
                hex::encode(id.as_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
    }
}

fn item(name: &str) -> ItemId {
    // Invariant: the sample names are 1..=16 bytes.
    ItemId::new(name.as_bytes()).expect("sample item ID")
}

/// Publishes the sample catalog (idempotent: publishing the same version again is accepted).
pub async fn publish_catalog(dep: &Deployment) -> anyhow::Result<Catalog> {
    let provider = ProviderClient::new(HttpClient::new(&dep.provider.url)?);
    let catalog = Catalog {
        ticket: item("ticket"),
        coupon: item("coupon"),
        points: item("points"),
        pass: item("pass"),
        member_id: item("member-id"),
        huge: item("huge"),
    };
    let entries: [(&ItemId, Vec<u8>, u32); 6] = [
        (&catalog.ticket, b"concert, row 7 seat 12".to_vec(), 0),
        (&catalog.coupon, b"10% off, valid in May".to_vec(), 0),
        (&catalog.points, b"120 points".to_vec(), 0),
        (&catalog.pass, b"gym pass 2027".to_vec(), 1),
        (&catalog.member_id, b"member ID 48151623".to_vec(), 1),
        (&catalog.huge, vec![0x5A; 5000], 0),
    ];
    for (id, data, policy) in entries {
        let policy = protocol::Policy::from_bits(policy)?;
        provider
            .publish(&dep.provider.operator_token, id, 1, &data, policy)
            .await
            .with_context(|| format!("publishing {id:?}"))?;
    }
    Ok(catalog)
}

/// STO-3's precondition: the issuer signs a delegation for the provider (every item, store
/// and delete, up to 4 KiB) and the provider keeps it.
pub async fn delegate(dep: &Deployment) -> anyhow::Result<String> {
    let issuer = IssuerClient::new(HttpClient::new(&dep.issuer.url)?);
    let provider = ProviderClient::new(HttpClient::new(&dep.provider.url)?);
    let delegation = issuer
        .delegate(
            &dep.issuer.operator_token,
            &DelegationRequest {
                provider: dep.provider.id.as_str().to_string(),
                provider_certificate: hex::encode(dep.dpr.der()),
                operations: vec!["store".to_string(), "delete".to_string()],
                item_prefix: String::new(),
                max_item_size: 4096,
                card_id: None,
                not_after: None,
            },
        )
        .await
        .context("the issuer's delegation")?;
    let object = delegation.delegation_object()?;
    provider
        .add_delegation(&dep.provider.operator_token, &object)
        .await
        .context("the provider keeping the delegation")?;
    Ok(format!("valid until {}", delegation.not_after))
}

/// Fetches both ledgers of the card and verifies them (hash chain, signatures, RC).
pub async fn verify_ledgers<C: CardChannel>(
    dep: &Deployment,
    parties: &Parties,
    card: &mut CardClient<C>,
) -> anyhow::Result<String> {
    let identity = flows::identity(card)?;
    let issuer_ledger = parties.issuer.ledger(&identity.card_id).await?;
    let entries = issuer_ledger.entry_objects()?;
    let issuer_summary = verify_ledger(&entries, &dep.irc.public_key(), &identity.rc)
        .context("the issuer's ledger")?;
    let provider_ledger = parties.provider.ledger(&identity.card_id).await?;
    let entries = provider_ledger.entry_objects()?;
    let provider_summary = verify_ledger(&entries, &dep.dpr.public_key(), &identity.rc)
        .context("the provider's ledger")?;
    if issuer_summary.entries == 0 {
        bail!("the issuer's ledger is empty");
    }
    Ok(format!(
        "issuer {} entries, provider {} entries",
        issuer_summary.entries, provider_summary.entries
    ))
}

/// An SA obtained on STO-1 for storing `item` on the card, without presenting it: what the
/// refusal scenarios tamper with.
pub struct Obtained {
    pub sdi: protocol::Sdi,
    pub sar: protocol::SignedObject,
    pub sa: protocol::SignedObject,
    pub data: Vec<u8>,
}

/// Verifies the PIN, takes a card challenge and obtains STO-1 consents for storing `item`.
pub async fn obtain<C: CardChannel>(
    card: &mut CardClient<C>,
    parties: &Parties,
    item: &ItemId,
    pin: &str,
) -> anyhow::Result<Obtained> {
    let identity = flows::identity(card)?;
    card.verify_pin(pin)?;
    let sdi = flows::store_sdi(parties, identity.card_id, item, None).await?;
    let challenge = protocol::Challenge(card.get_challenge()?);
    let answer = parties
        .issuer
        .request(&identity.card_id, &sdi, &challenge)
        .await?;
    let data = parties
        .provider
        .data(item, &identity.card_id, Some(sdi.version))
        .await?;
    Ok(Obtained {
        sdi,
        sar: answer.sar_object()?,
        sa: answer.sa_object()?,
        data: data.data_bytes()?,
    })
}

/// Hands a receipt the scenario obtained outside a flow to both parties (as a flow would).
pub async fn record<C: CardChannel>(
    card: &mut CardClient<C>,
    parties: &Parties,
    receipt: &protocol::SignedObject,
    sdi: &protocol::Sdi,
) -> anyhow::Result<()> {
    let identity = flows::identity(card)?;
    parties.issuer.receipt(receipt, Some(sdi)).await?;
    parties
        .provider
        .receipt(receipt, &identity.rc, &identity.irc)
        .await?;
    Ok(())
}

/// Expects the card to refuse `result`; describes the refusal (status word and the card's
/// own reason, which it keeps off the wire).
pub fn card_refused<T>(
    result: Result<T, terminal::ClientError>,
    card: &mut CardClient<Hosted>,
) -> anyhow::Result<String> {
    match result {
        Ok(_) => bail!("the card accepted it"),
        Err(e) => match e.status() {
            Some(status) => Ok(format!(
                "card: {status} ({}){}",
                terminal::meaning(status),
                card.channel()
                    .last_refusal()
                    .map(|d| format!(", {d}"))
                    .unwrap_or_default()
            )),
            None => Err(e.into()),
        },
    }
}

/// Expects a party to refuse `result` with `code`.
pub fn party_refused<T>(
    result: Result<T, party_api::ClientError>,
    code: &str,
) -> anyhow::Result<String> {
    match result {
        Ok(_) => bail!("the server accepted it (expected {code})"),
        Err(e) if e.code() == Some(code) => {
            Ok(format!("server: {} {code}", e.status().unwrap_or_default()))
        }
        Err(e) => bail!("expected {code}, got: {e}"),
    }
}

/// The issuer's party signer, read from the deployment's files (for scenarios that replay or
/// alter what the issuer sends to the provider).
pub fn issuer_signer(dep: &Deployment) -> anyhow::Result<party_api::PartySigner> {
    let (key, _) =
        server_kit::load_or_generate_key(&dep.issuer.dir.join("key.pem"), &mut crypto::OsRng)?;
    Ok(party_api::PartySigner::new(
        dep.issuer.id.clone(),
        protocol::PartyRole::Issuer,
        key,
        dep.irc.clone(),
    ))
}

fn now() -> pki::UnixTime {
    server_kit::Clock::now(&server_kit::SystemClock)
}

/// Flips the last byte of a signed object's DER (inside its signature).
pub fn altered(object: &protocol::SignedObject) -> Vec<u8> {
    let mut der = object.to_der();
    if let Some(last) = der.last_mut() {
        *last ^= 0x01;
    }
    der
}

/// The refusals every deployment must show (issue 3): each entry is what was tried and either
/// how it was refused, or why the scenario failed (it was accepted, or refused for another
/// reason). `other` is a second registered card.
pub async fn refusals(
    dep: &Deployment,
    parties: &Parties,
    card: &mut CardClient<Hosted>,
    other: &mut CardClient<Hosted>,
    catalog: &Catalog,
    pin: &str,
) -> Vec<(String, anyhow::Result<String>)> {
    let mut out: Vec<(String, anyhow::Result<String>)> = Vec::new();
    let signer = issuer_signer(dep);

    // A replayed authorization: the card refuses the SA twice, the provider the SAR twice.
    let r = async {
        let got = obtain(card, parties, &catalog.ticket, pin).await?;
        let receipt = card.store(&got.sa, None, &got.data)?;
        record(card, parties, &receipt, &got.sdi).await?;
        let on_card = card_refused(card.store(&got.sa, None, &got.data), card);
        let signer = signer.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let at_server = party_refused(
            parties.provider.grant(signer, now(), &got.sar).await,
            "authorization_replayed",
        );
        // Leave the card as it was: delete what the first use stored.
        flows::store_or_delete(
            card,
            parties,
            &flows::StoringOrder {
                operation: protocol::Operation::Delete,
                path: flows::StoringPath::ViaIssuer,
                item: catalog.ticket.clone(),
                version: None,
                certification: flows::Certification::None,
                pin: pin.to_string(),
            },
            &mut |_| {},
        )
        .await?;
        Ok(format!("{}; {}", on_card?, at_server?))
    }
    .await;
    out.push((
        "refused: a replayed authorization (card and server)".into(),
        r,
    ));

    // An altered authorization.
    let r = async {
        let got = obtain(card, parties, &catalog.ticket, pin).await?;
        let forged = protocol::SignedObject::from_der(&altered(&got.sa));
        let on_card = match forged {
            Ok(forged) => card_refused(card.store(&forged, None, &got.data), card)?,
            Err(e) => format!("does not even parse: {e}"),
        };
        let signer = signer.as_ref().map_err(|e| anyhow::anyhow!("{e:#}"))?;
        let at_server = match protocol::SignedObject::from_der(&altered(&got.sar)) {
            Ok(forged) => party_refused(
                parties.provider.grant(signer, now(), &forged).await,
                "untrusted_signer",
            )?,
            Err(e) => format!("does not even parse: {e}"),
        };
        Ok(format!("{on_card}; {at_server}"))
    }
    .await;
    out.push((
        "refused: an altered authorization (card and server)".into(),
        r,
    ));

    // An authorization for another card.
    let r = async {
        let theirs = obtain(other, parties, &catalog.coupon, pin).await?;
        card.verify_pin(pin)?;
        let _ = card.get_challenge()?;
        let on_card = card_refused(card.store(&theirs.sa, None, &theirs.data), card)?;
        let mine = flows::identity(card)?;
        let challenge = protocol::Challenge(card.get_challenge()?);
        let at_server = party_refused(
            parties
                .issuer
                .request(&mine.card_id, &theirs.sdi, &challenge)
                .await,
            "card_mismatch",
        )?;
        Ok(format!("{on_card}; {at_server}"))
    }
    .await;
    out.push(("refused: an authorization for another card".into(), r));

    // Data not matching its SDI.
    let r = async {
        let got = obtain(card, parties, &catalog.ticket, pin).await?;
        card_refused(card.store(&got.sa, None, b"forged data"), card)
    }
    .await;
    out.push(("refused: data that does not match its SDI".into(), r));

    // Capacity exhausted.
    let r = async {
        let got = obtain(card, parties, &catalog.huge, pin).await?;
        card_refused(card.store(&got.sa, None, &got.data), card)
    }
    .await;
    out.push(("refused: more than the card's free capacity".into(), r));

    // A provider the issuer's policy does not allow (STO-1 and STO-3's delegation).
    let r = async {
        let issuer = &parties.issuer;
        let token = &dep.issuer.operator_token;
        let policy = issuer.provider(&dep.provider.id).await?;
        issuer
            .put_provider(
                token,
                &dep.provider.id,
                &party_api::issuer::ProviderRequest {
                    status: "blocked".into(),
                    ..policy_request(&policy)
                },
            )
            .await?;
        let refused = async {
            let got = obtain(card, parties, &catalog.ticket, pin).await;
            let sto1 = match got {
                Ok(_) => bail!("STO-1 was authorized for a blocked provider"),
                Err(e) => match e.downcast_ref::<party_api::ClientError>() {
                    Some(ce) if ce.code() == Some("provider_not_allowed") => {
                        "STO-1: 403 provider_not_allowed".to_string()
                    }
                    _ => return Err(e),
                },
            };
            let sto3 = match delegate(dep).await {
                Ok(_) => bail!("a delegation was signed for a blocked provider"),
                Err(e) => match e.downcast_ref::<party_api::ClientError>() {
                    Some(ce) if ce.code() == Some("provider_not_allowed") => {
                        "STO-3 delegation: 403 provider_not_allowed".to_string()
                    }
                    _ => return Err(e),
                },
            };
            Ok(format!("{sto1}; {sto3}"))
        }
        .await;
        issuer
            .put_provider(token, &dep.provider.id, &policy_request(&policy))
            .await?;
        refused
    }
    .await;
    out.push(("refused: a provider the issuer's policy blocks".into(), r));

    // An operator of one party acting for another.
    let r = async {
        party_refused(
            parties
                .issuer
                .personalise(
                    &dep.provider.operator_token,
                    &party_api::issuer::PersonaliseRequest {
                        pin: pin.to_string(),
                        pin_try_limit: None,
                        capacity: None,
                    },
                )
                .await,
            "unauthenticated",
        )
    }
    .await;
    out.push((
        "refused: the provider's operator acting for the issuer".into(),
        r,
    ));
    out
}

fn policy_request(
    policy: &party_api::issuer::ProviderResponse,
) -> party_api::issuer::ProviderRequest {
    party_api::issuer::ProviderRequest {
        status: policy.status.clone(),
        quota_bytes: policy.quota_bytes,
        url: policy.url.clone(),
    }
}
