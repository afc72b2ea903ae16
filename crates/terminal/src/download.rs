//! Adding an application to a card over the Internet (SPEC APP-3, seed 003 S1–S16; design:
//! docs/app-download.md): the terminal's half, as steps the portal and the CLI call in order,
//! and a resumable finish (REC-2).
//!
//! 1. [`check`] (S1–S3): the card proves itself with a signed listing over the issuer's nonce;
//!    the issuer answers the card's standing (holder, capacity, free, applications).
//! 2. [`offers`] (S4): the provider's services, each marked as fitting, too large or installed.
//! 3. [`begin`] (T1): the user accepted the terms and chose a service; a new operation ID is
//!    journalled before anything leaves the terminal.
//! 4. [`request`] (S5–S6): the provider answers the DownloadRequest the card is asked to sign.
//! 5. [`sign`] (S7): PIN, then the card signs the DownloadApplication.
//! 6. [`finish`] (S8–S16): the issuer verifies and opens the download, authorizes an attempt
//!    (its SAR, the provider's SA), the card installs the package and signs its receipt, the
//!    issuer records it and notifies the provider, the provider starts the service.
//!
//! [`finish`] is also the resume path: it asks the issuer where the operation stands and reads
//! the card's signed listing before doing anything, so a terminal killed, a server restarted or
//! a card pulled out at any point ends with one installation, one registry entry and one
//! member notification (the resume rule of docs/app-download.md §5).

use party_api::issuer_download::{DownloadResponse, StandingResponse};
use party_api::provider_download::{ServiceResponse, TermsResponse};
use pki::{CardId, PartyId};
use protocol::{verify_receipt, DownloadRequest, OperationId, ReceiptResult, SignedObject};

use crate::flows::{
    card_step, field, identity, invalid, party_step, signed_listing, signed_listing_over,
    CardIdentity, FlowError, Parties,
};
use crate::journal::{Journal, JournalEntry};
use crate::{CardChannel, CardClient};

/// The step [`sign`] reports the card's refusals under (the portal words them by step: a
/// refused signature means the request is dead, not that a package was damaged).
pub const SIGN_STEP: &str = "the card signs the download application";

/// The step [`finish`] reports the card's INSTALL and LOAD refusals under.
pub const INSTALL_STEP: &str = "the card installs the application";

fn journal_step(step: &'static str) -> impl Fn(crate::journal::JournalError) -> FlowError {
    move |e| invalid(step, e)
}

/// An application the issuer's registry lists on the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledApplication {
    /// AID, hex.
    pub aid: String,
    pub version: u32,
    pub name: String,
    pub provider: String,
    pub size: u32,
}

/// What the issuer says about the card after checking its signed listing (S2–S3, screen (d)).
#[derive(Debug, Clone)]
pub struct Standing {
    pub card_id: CardId,
    pub issuer: PartyId,
    /// The holder's name in the issuer's registry.
    pub holder: String,
    pub capacity: u32,
    pub free: u32,
    pub applications: Vec<InstalledApplication>,
    /// Operations the issuer holds open for this card (hex IDs): one to resume.
    pub open_downloads: Vec<String>,
    /// The registry matches the card's listing.
    pub in_sync: bool,
}

/// S1–S3: the card's standing with its issuer, proven by a listing signed over the issuer's
/// nonce.
pub async fn check<C: CardChannel>(
    card: &mut CardClient<C>,
    parties: &Parties,
) -> Result<Standing, FlowError> {
    const STEP: &str = "checking the card with its issuer";
    let who = identity(card)?;
    let nonce_answer = parties
        .issuer
        .check(&who.card_id)
        .await
        .map_err(party_step(STEP))?;
    let nonce = nonce_answer.nonce_value().map_err(field(STEP))?;
    let listing = signed_listing_over(card, &who, nonce, STEP)?;
    let answer: StandingResponse = parties
        .issuer
        .standing(&who.card_id, &listing.nonce, &listing.object)
        .await
        .map_err(party_step(STEP))?;
    Ok(Standing {
        card_id: who.card_id,
        issuer: who.irc.subject_id().clone(),
        holder: answer.holder.name,
        capacity: answer.capacity,
        free: answer.free,
        applications: answer
            .applications
            .into_iter()
            .map(|a| InstalledApplication {
                aid: a.aid,
                version: a.version,
                name: a.name,
                provider: a.provider,
                size: a.size,
            })
            .collect(),
        open_downloads: answer.open_downloads,
        in_sync: answer.in_sync,
    })
}

/// Whether a service's application can go onto the card (S4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Fits,
    /// The card already holds this application (at this or a later version).
    Installed,
    /// It needs more bytes than the card has free.
    TooLarge {
        needs: u32,
        free: u32,
    },
}

/// One service of the provider's catalog as the user sees it on screen (d).
#[derive(Debug, Clone)]
pub struct Offer {
    pub service: ServiceResponse,
    pub fit: Fit,
}

/// S4: the provider's catalog for this card's issuer, each service marked against the card's
/// standing.
pub async fn offers(parties: &Parties, standing: &Standing) -> Result<Vec<Offer>, FlowError> {
    const STEP: &str = "reading the provider's services";
    let list = parties
        .provider
        .services()
        .await
        .map_err(party_step(STEP))?;
    Ok(list
        .services
        .into_iter()
        // A service installs one issuer's application: other issuers' cards cannot have it.
        .filter(|service| service.issuer == standing.issuer.as_str())
        .map(|service| {
            let app = &service.application;
            let installed = standing
                .applications
                .iter()
                .any(|a| a.aid.eq_ignore_ascii_case(&app.aid) && a.version >= app.version);
            let fit = if installed {
                Fit::Installed
            } else if app.size > standing.free {
                Fit::TooLarge {
                    needs: app.size,
                    free: standing.free,
                }
            } else {
                Fit::Fits
            };
            Offer { service, fit }
        })
        .collect())
}

/// The provider's membership terms the user is asked to accept (screen (b)).
pub async fn terms(parties: &Parties) -> Result<TermsResponse, FlowError> {
    parties
        .provider
        .terms()
        .await
        .map_err(party_step("reading the membership terms"))
}

/// One download in progress, as journalled.
#[derive(Debug, Clone)]
pub struct Download {
    pub card_id: CardId,
    pub operation_id: OperationId,
    pub entry: JournalEntry,
}

impl Download {
    /// The provider's request, once [`request`] ran.
    pub fn request(&self) -> Option<DownloadRequest> {
        let der = hex::decode(self.entry.request.as_deref()?).ok()?;
        DownloadRequest::from_der(&der).ok()
    }

    /// The card-signed application, once [`sign`] ran.
    pub fn application(&self) -> Option<SignedObject> {
        let der = hex::decode(self.entry.download_application.as_deref()?).ok()?;
        SignedObject::from_der(&der).ok()
    }
}

/// T1: the user accepted the terms (digest of the text they read) and chose `service_id`: a new
/// operation, journalled before anything is sent.
pub fn begin(
    journal: &Journal,
    card_id: CardId,
    terms_digest: [u8; 32],
    service_id: &str,
) -> Result<Download, FlowError> {
    let operation_id = OperationId::generate(&mut crypto::OsRng);
    let entry = JournalEntry::new(operation_id.0, card_id, service_id, terms_digest);
    journal
        .write(&entry)
        .map_err(journal_step("journalling the download"))?;
    Ok(Download {
        card_id,
        operation_id,
        entry,
    })
}

/// The download this terminal was in for the card, if any (resume after a restart).
pub fn resume(journal: &Journal, card_id: CardId) -> Result<Option<Download>, FlowError> {
    let Some(entry) = journal
        .read(&card_id)
        .map_err(journal_step("reading the download journal"))?
    else {
        return Ok(None);
    };
    let operation_id = OperationId::from_hex(&entry.operation_id)
        .map_err(|e| invalid("reading the download journal", e))?;
    Ok(Some(Download {
        card_id,
        operation_id,
        entry,
    }))
}

/// S5–S6: the service choice goes to the provider, which answers the request the card signs.
/// Repeating it (after a lost answer or a restart) returns the same request.
pub async fn request(
    parties: &Parties,
    journal: &Journal,
    issuer: &PartyId,
    download: &mut Download,
) -> Result<DownloadRequest, FlowError> {
    const STEP: &str = "asking the provider for the download application";
    if let Some(r) = download.request() {
        return Ok(r);
    }
    let service_id = protocol::ServiceId::new(&download.entry.service_id)
        .map_err(|e| invalid(STEP, format!("the journalled service: {e}")))?;
    let terms_digest = hex::decode(&download.entry.terms_digest)
        .ok()
        .and_then(|d| <[u8; 32]>::try_from(d).ok())
        .map(crypto::Digest)
        .ok_or_else(|| invalid(STEP, "the journalled terms digest is not 32 bytes of hex"))?;
    let answer = parties
        .provider
        .open_download(
            &download.operation_id,
            &download.card_id,
            issuer,
            &service_id,
            &terms_digest,
        )
        .await
        .map_err(party_step(STEP))?;
    let der = hex::decode(&answer.request)
        .map_err(|_| invalid(STEP, "the provider's request is not hex"))?;
    let request = DownloadRequest::from_der(&der)
        .map_err(|e| invalid(STEP, format!("the provider's request: {e}")))?;
    if request.operation_id != download.operation_id || request.card_id != download.card_id {
        return Err(invalid(
            STEP,
            "the provider's request names another operation or card",
        ));
    }
    download.entry.request = Some(answer.request);
    journal.write(&download.entry).map_err(journal_step(STEP))?;
    Ok(request)
}

/// S7: the holder's PIN, then the card signs the download application (writing nothing). The
/// signed application is journalled.
pub fn sign<C: CardChannel>(
    card: &mut CardClient<C>,
    journal: &Journal,
    pin: &str,
    download: &mut Download,
) -> Result<SignedObject, FlowError> {
    const STEP: &str = SIGN_STEP;
    let request = download
        .request()
        .ok_or_else(|| invalid(STEP, "no download request yet"))?;
    card.select_card_manager().map_err(card_step(STEP))?;
    card.verify_pin(pin)
        .map_err(card_step("verifying the PIN"))?;
    let signed = card
        .sign_download_application(&request)
        .map_err(card_step(STEP))?;
    download.entry.download_application = Some(hex::encode(signed.to_der()));
    journal.write(&download.entry).map_err(journal_step(STEP))?;
    Ok(signed)
}

/// Where [`finish`] has got to; the portal's progress checklist and the tests' interruption
/// points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The issuer verified the card's signature and opened the download (S8–S10).
    Opened,
    /// The issuer signed, the provider consented: attempt `attempt` (S11).
    Authorized { attempt: u32 },
    /// The package arrived and matches the application's digest.
    PackageFetched,
    /// The card verified and installed the application and signed its receipt (S12).
    Installed,
    /// The issuer recorded the receipt in the registry (S13–S14).
    Recorded,
    /// The provider acknowledged the new member (S15–S16).
    Notified,
}

/// What a step callback tells [`finish`]: go on, or stop here as if the terminal had been
/// killed (tests drive every interruption with this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Abort,
}

/// The end of a download: the service has started.
#[derive(Debug, Clone)]
pub struct Finished {
    pub operation_id: OperationId,
    /// The counter of the card's receipt for the installation, as the issuer recorded it.
    pub receipt_counter: Option<u64>,
    /// When the provider recorded the member.
    pub member_since: u64,
    /// Whether this run installed it (false: an earlier run had, and this one completed the
    /// records).
    pub installed_now: bool,
}

/// How long [`finish`] waits for the provider to record the member before saying so.
const NOTIFICATION_WAIT_MS: u64 = 30_000;

/// S8–S16, resumable (docs/app-download.md §5): asks the issuer where the operation stands,
/// reads the card's signed listing, and only then opens, authorizes, installs or posts the
/// receipt — whichever is still missing. `pin` is verified again before an installation (the
/// card forgets it when it loses power). `steps` hears each step and may abort there.
pub async fn finish<C: CardChannel>(
    card: &mut CardClient<C>,
    parties: &Parties,
    journal: &Journal,
    pin: &str,
    download: &mut Download,
    steps: &mut dyn FnMut(Step) -> Control,
) -> Result<Finished, FlowError> {
    const OPEN: &str = "the issuer verifies the download application";
    let mut at = |step: Step| match steps(step) {
        Control::Continue => Ok(()),
        Control::Abort => Err(FlowError::Interrupted {
            step: step_name(step),
        }),
    };
    let who = identity(card)?;
    if who.card_id != download.card_id {
        return Err(invalid(OPEN, "another card is in the reader"));
    }
    let op = download.operation_id;

    // Where does the issuer stand?
    let mut state = match parties.issuer.download(&op).await {
        Ok(s) => s,
        Err(e) if e.code() == Some("unknown_operation") => {
            let application = download
                .application()
                .ok_or_else(|| invalid(OPEN, "the card has not signed the application yet"))?;
            parties
                .issuer
                .open_download(&application, &who.rc)
                .await
                .map_err(party_step(OPEN))?;
            at(Step::Opened)?;
            parties
                .issuer
                .download(&op)
                .await
                .map_err(party_step(OPEN))?
        }
        Err(e) => return Err(party_step(OPEN)(e)),
    };

    let mut installed_now = false;
    if !is_recorded(&state) {
        let target = target(parties, download, &state).await?;
        let receipt = match kept_receipt(card, &who, &target, &state)? {
            Some(receipt) => receipt,
            None => {
                installed_now = true;
                install(card, parties, pin, download, &target, &mut at).await?
            }
        };
        const RECORD: &str = "the issuer records the card's receipt";
        parties
            .issuer
            .download_receipt(&op, &receipt)
            .await
            .map_err(party_step(RECORD))?;
        at(Step::Recorded)?;
        state = parties
            .issuer
            .download(&op)
            .await
            .map_err(party_step(RECORD))?;
    }

    const NOTIFY: &str = "the provider starts the service";
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_millis(NOTIFICATION_WAIT_MS);
    // The issuer's notifier is woken by the receipt, so the member usually follows within
    // milliseconds: poll soon, then less often.
    let mut pause_ms = 5;
    let member_since = loop {
        let at_provider = parties
            .provider
            .download(&op)
            .await
            .map_err(party_step(NOTIFY))?;
        if let Some(since) = at_provider.member_since {
            break since;
        }
        if std::time::Instant::now() > deadline {
            return Err(invalid(
                NOTIFY,
                "the issuer has not yet told the provider; it keeps trying, check again later",
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
        pause_ms = (pause_ms * 2).min(200);
    };
    at(Step::Notified)?;
    journal
        .remove(&download.card_id)
        .map_err(journal_step(NOTIFY))?;
    Ok(Finished {
        operation_id: op,
        receipt_counter: state.receipt_counter,
        member_since,
        installed_now,
    })
}

/// Whether `error` means this download can never finish, so a new one must start: the issuer
/// says its application expired, or the card refuses to sign the journalled request (expired at
/// the card's time floor, `6984`, or not for this card, `6A80`).
pub fn is_dead(error: &FlowError) -> bool {
    let unsignable = matches!(error, FlowError::Card { step, .. } if *step == SIGN_STEP)
        && matches!(
            error.card_status(),
            Some(apdu::Status::INCORRECT_DATA | apdu::Status::REFERENCE_DATA_NOT_USABLE)
        );
    unsignable || error.party_code() == Some("application_expired")
}

/// Removes `download` from the journal if the journal's entry for its card is still that
/// operation (a newer one, begun elsewhere, is kept): after [`is_dead`], so the next start
/// begins a new operation instead of resuming this one.
pub fn forget(journal: &Journal, download: &Download) -> Result<(), FlowError> {
    const STEP: &str = "forgetting the download that cannot complete";
    let journalled = journal
        .read(&download.card_id)
        .map_err(journal_step(STEP))?;
    if journalled.is_some_and(|e| e.operation_id == download.entry.operation_id) {
        journal
            .remove(&download.card_id)
            .map_err(journal_step(STEP))?;
    }
    Ok(())
}

/// What the card must end up holding: from the provider's request when this terminal asked for
/// it, else (a download adopted from the issuer) from the issuer's record and package.
struct Target {
    item_id: protocol::ItemId,
    version: u32,
    data_digest: crypto::Digest,
}

async fn target(
    parties: &Parties,
    download: &Download,
    state: &DownloadResponse,
) -> Result<Target, FlowError> {
    const STEP: &str = "reading the issuer's record of the download";
    if let Some(r) = download.request() {
        return Ok(Target {
            item_id: r.item_id,
            version: r.version,
            data_digest: r.data_digest,
        });
    }
    let package = parties
        .issuer
        .package(&download.operation_id)
        .await
        .map_err(party_step(STEP))?;
    let item_id = hex::decode(&state.aid)
        .ok()
        .and_then(|b| protocol::ItemId::new(&b).ok())
        .ok_or_else(|| invalid(STEP, "the issuer's AID is not hex"))?;
    Ok(Target {
        item_id,
        version: state.version,
        data_digest: package.digest_value().map_err(field(STEP))?,
    })
}

/// A download the issuer holds open for this card but this terminal has no journal of (the
/// user moved to another computer, or the journal was lost; the standing lists it in
/// `open_downloads`): journalled here so [`finish`] can complete it. The card's signature the
/// issuer verified when it opened the download is what proves it is this card's.
pub async fn adopt(
    parties: &Parties,
    journal: &Journal,
    card_id: CardId,
    operation_id: OperationId,
) -> Result<Download, FlowError> {
    const STEP: &str = "taking up the download the issuer holds open";
    let state = parties
        .issuer
        .download(&operation_id)
        .await
        .map_err(party_step(STEP))?;
    if state.card_id != card_id.to_hex() {
        return Err(invalid(STEP, "that download is for another card"));
    }
    let mut entry = JournalEntry::new(operation_id.0, card_id, &state.service_id, [0; 32]);
    entry.terms_digest = String::new();
    journal.write(&entry).map_err(journal_step(STEP))?;
    Ok(Download {
        card_id,
        operation_id,
        entry,
    })
}

fn step_name(step: Step) -> &'static str {
    match step {
        Step::Opened => "opened",
        Step::Authorized { .. } => "authorized",
        Step::PackageFetched => "package fetched",
        Step::Installed => "installed",
        Step::Recorded => "recorded",
        Step::Notified => "notified",
    }
}

fn is_recorded(state: &DownloadResponse) -> bool {
    matches!(state.state.as_str(), "installed" | "notified")
}

/// REC-2 (b): the card already holds the application at the request's version and digest (an
/// earlier run installed it and lost the answer): its kept receipt for one of the operation's
/// attempts, newest first.
fn kept_receipt<C: CardChannel>(
    card: &mut CardClient<C>,
    who: &CardIdentity,
    request: &Target,
    state: &DownloadResponse,
) -> Result<Option<SignedObject>, FlowError> {
    const STEP: &str = "reading what the card holds";
    let listing = signed_listing(card, who, STEP)?.listing;
    let holds = listing.contents.items().iter().any(|i| {
        i.item_id == request.item_id
            && i.version == request.version
            && i.data_digest == request.data_digest
    });
    if !holds {
        return Ok(None);
    }
    for attempt in state.attempts.iter().rev() {
        let Some(digest) = attempt
            .sa_digest
            .as_deref()
            .and_then(|d| hex::decode(d).ok())
            .and_then(|d| <[u8; 32]>::try_from(d).ok())
        else {
            continue;
        };
        match card.get_receipt(&crypto::Digest(digest)) {
            Ok(object) => {
                let receipt = verify_receipt(&object, &who.rc)
                    .map_err(|e| invalid(STEP, format!("the card's kept receipt: {e}")))?;
                if receipt.result == ReceiptResult::Stored {
                    return Ok(Some(object));
                }
            }
            Err(e) if e.status() == Some(apdu::Status::REFERENCED_DATA_NOT_FOUND) => continue,
            Err(e) => return Err(card_step(STEP)(e)),
        }
    }
    Err(invalid(
        STEP,
        "the card holds the application but keeps no receipt for this download; ask the issuer to reconcile the card",
    ))
}

/// REC-2 (c): a fresh attempt — the card's challenge, the issuer's SAR and the provider's SA,
/// the package, INSTALL and LOAD. The card refuses a version it holds (never twice).
async fn install<C: CardChannel>(
    card: &mut CardClient<C>,
    parties: &Parties,
    pin: &str,
    download: &Download,
    request: &Target,
    at: &mut dyn FnMut(Step) -> Result<(), FlowError>,
) -> Result<SignedObject, FlowError> {
    const AUTHORIZE: &str = "the issuer and the provider authorize the installation";
    const PACKAGE: &str = "fetching the application";
    const INSTALL: &str = INSTALL_STEP;
    let op = download.operation_id;
    card.select_card_manager().map_err(card_step(INSTALL))?;
    card.verify_pin(pin)
        .map_err(card_step("verifying the PIN"))?;
    let challenge = protocol::Challenge(card.get_challenge().map_err(card_step(AUTHORIZE))?);
    let authorization = parties
        .issuer
        .authorize_download(&op, &challenge)
        .await
        .map_err(party_step(AUTHORIZE))?;
    at(Step::Authorized {
        attempt: authorization.attempt,
    })?;
    let sa = authorization.sa_object().map_err(field(AUTHORIZE))?;
    let package = parties
        .issuer
        .package(&op)
        .await
        .map_err(party_step(PACKAGE))?;
    let code = package.code_bytes().map_err(field(PACKAGE))?;
    // The card checks this too; checking here tells the user where the damage happened.
    if crypto::sha256(&code) != request.data_digest {
        return Err(invalid(
            PACKAGE,
            "the application arrived damaged (its digest does not match)",
        ));
    }
    at(Step::PackageFetched)?;
    let receipt = card.store(&sa, None, &code).map_err(card_step(INSTALL))?;
    at(Step::Installed)?;
    Ok(receipt)
}
