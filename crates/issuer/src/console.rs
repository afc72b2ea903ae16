//! The issuer's operators' console (docs/app-download.md §6, SPEC APP-4): server-rendered pages
//! on `server_kit::console` (sign-in with an operator token, sessions in the database, CSRF on
//! every form, no JavaScript). Every page calls the same service functions as the operator
//! routes of `http.rs` / `http/download.rs`; nothing here goes through HTTP.
//!
//! - `GET /console/cards`: every card with its holder, status, capacity bar, applications,
//!   receipt counter and whether its last receipt agreed with the view
//! - `GET /console/cards/{card_id}`: one card's registry (APP-1): personal information,
//!   applications, items, downloads, the ledger of receipts checked with
//!   `protocol::verify_ledger`
//! - `GET /console/applications`, `POST` (multipart): the application DB and the form adding
//!   one, its code uploaded as a file
//! - `GET /console/downloads[?state=]`: download operations with their attempts and member
//!   notification
//! - `GET /console/notifications`: the member-notification outbox;
//!   `POST /console/notifications/{op}/retry` is "retry now"
//! - `GET /console/providers`: the provider policies (status, quota, URL)

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use pki::{CardId, Certificate, PartyId};
use protocol::{ItemId, LedgerEntry, ListedItem, OperationId, Receipt, SignedObject};
use serde::Deserialize;
use server_kit::console::{
    self, badge, byte_size, capacity_bar, counted, empty_panel, group_digits, ledger_table, notice,
    party_id, query_pair, sentence, short_hex, timestamp, timestamp_or_dash, utc, Console,
    ConsoleOperator, Tone, Transport,
};
use server_kit::ApiError;

use crate::download::{ApplicationOrder, DownloadStatus};
use crate::http::AppState;
use crate::service::{Issuer, ServiceError};
use crate::store::{
    Application, CardSummary, DownloadRecord, DownloadState, NotificationRecord, NotificationState,
    ProviderPolicy, ProviderStatus,
};

pub const CARDS_PATH: &str = "/console/cards";
pub const APPLICATIONS_PATH: &str = "/console/applications";
pub const DOWNLOADS_PATH: &str = "/console/downloads";
pub const NOTIFICATIONS_PATH: &str = "/console/notifications";
pub const PROVIDERS_PATH: &str = "/console/providers";

/// The issuer's console: its name is its party ID, its clock the issuer's.
pub fn console(issuer: &Issuer, db: server_kit::Db, transport: Transport) -> Console {
    Console::new(db, issuer.party_id().to_string(), transport)
        .with_clock(issuer.clock.clone())
        .with_page("Cards", CARDS_PATH)
        .with_page("Applications", APPLICATIONS_PATH)
        .with_page("Downloads", DOWNLOADS_PATH)
        .with_page("Notifications", NOTIFICATIONS_PATH)
        .with_page("Providers", PROVIDERS_PATH)
}

/// The console's routes (the kit's sign-in, sign-out and stylesheet with the issuer's pages),
/// to merge into the issuer's router.
pub fn router(console: &Console) -> Router<AppState> {
    let pages = Router::new()
        .route(CARDS_PATH, get(cards))
        .route("/console/cards/{card_id}", get(card))
        .route(
            APPLICATIONS_PATH,
            get(applications)
                .post(add_application)
                .layer(DefaultBodyLimit::max(server_kit::console::MAX_FORM_BYTES)),
        )
        .route(DOWNLOADS_PATH, get(downloads))
        .route(NOTIFICATIONS_PATH, get(notifications))
        .route(
            "/console/notifications/{operation_id}/retry",
            post(retry_notification),
        )
        .route(PROVIDERS_PATH, get(providers));
    console::router(console, pages)
}

// ---- small pieces -----------------------------------------------------------------------------

/// A service error as a page: its words for the operator's mistakes and the card's state
/// (4xx), a plain apology for the server's own failures (5xx, logged with their cause).
fn failure(op: &ConsoleOperator, title: &str, error: ServiceError) -> Response {
    let (status, words) = op.failure_words(title, &ApiError::from(error));
    op.problem(status, title, &words)
}

fn card_link(card_id: &CardId) -> Markup {
    let hex = card_id.to_hex();
    html! { a href={ (CARDS_PATH) "/" (hex) } { code { (hex) } } }
}

fn card_link_short(card_id: &CardId) -> Markup {
    let hex = card_id.to_hex();
    html! { a href={ (CARDS_PATH) "/" (hex) } { (short_hex(&hex)) } }
}

fn aid_text(aid: &ItemId) -> String {
    hex::encode(aid.as_bytes())
}

/// A personal-information field, or "not given" (cards registered before it was kept).
fn given(text: &str) -> Markup {
    if text.is_empty() {
        html! { span.muted { "not given" } }
    } else {
        html! { (text) }
    }
}

fn download_badge(state: DownloadState) -> Markup {
    match state {
        DownloadState::Opened => badge(Tone::Warning, "opened"),
        DownloadState::Installed => badge(Tone::Good, "installed"),
        DownloadState::Expired => badge(Tone::Neutral, "expired"),
    }
}

fn notification_badge(state: NotificationState) -> Markup {
    match state {
        NotificationState::Pending => badge(Tone::Warning, "pending"),
        NotificationState::Delivered => badge(Tone::Good, "delivered"),
        NotificationState::Stuck => badge(Tone::Bad, "stuck"),
    }
}

/// Whether the ledger's last entry says the card's contents after its receipt were the view's
/// (its view digest = the receipt's listing digest); `None` if it cannot be read.
fn last_receipt_in_sync(entry_der: &[u8]) -> Option<bool> {
    let object = SignedObject::from_der(entry_der).ok()?;
    let entry: LedgerEntry = object.body_unverified().ok()?;
    let receipt: Receipt = entry.receipt.body_unverified().ok()?;
    Some(entry.view_digest == receipt.listing_digest)
}

fn sync_badge(summary: &CardSummary) -> Markup {
    match summary.last_entry_der.as_deref().map(last_receipt_in_sync) {
        None => badge(Tone::Neutral, "no receipts yet"),
        Some(Some(true)) => badge(Tone::Good, "in sync"),
        Some(Some(false)) => badge(Tone::Bad, "differs"),
        Some(None) => badge(Tone::Bad, "unreadable"),
    }
}

fn status_of(registered: bool, revoked: bool) -> Markup {
    match (registered, revoked) {
        (false, _) => badge(Tone::Neutral, "personalised"),
        (true, false) => badge(Tone::Good, "registered"),
        (true, true) => badge(Tone::Bad, "revoked"),
    }
}

// ---- cards ------------------------------------------------------------------------------------

async fn cards(State(state): State<AppState>, op: ConsoleOperator) -> Response {
    let summaries = match state.issuer.store.card_summaries().await {
        Ok(summaries) => summaries,
        Err(e) => return failure(&op, "Cards", e.into()),
    };
    let registered = summaries.iter().filter(|c| c.holder.is_some()).count();
    let revoked = summaries.iter().filter(|c| c.revoked_at.is_some()).count();
    let content = html! {
        p.muted {
            (counted(summaries.len() as u64, "card", "cards")) " · "
            (group_digits(registered as u64)) " registered · "
            (group_digits(revoked as u64)) " revoked"
        }
        @if summaries.is_empty() {
            (empty_panel("No cards yet. Cards appear here once they are personalised."))
        } @else {
            table #cards {
                thead { tr {
                    th { "Card" } th { "Holder" } th { "Status" } th { "Capacity" }
                    th.num { "Applications" } th.num { "Receipts" } th { "In sync" }
                } }
                tbody {
                    @for c in &summaries {
                        tr {
                            td { (card_link(&c.card_id)) }
                            td {
                                @match &c.holder {
                                    Some((user_id, name)) => {
                                        @if name.is_empty() { (user_id) } @else {
                                            (name) br; span.muted { (user_id) }
                                        }
                                    }
                                    None => { span.muted { "not registered" } }
                                }
                            }
                            td { (status_of(c.holder.is_some(), c.revoked_at.is_some())) }
                            @let capacity = u64::from(c.capacity);
                            td { (capacity_bar(capacity.saturating_sub(c.used), capacity)) }
                            td.num { (group_digits(c.applications)) }
                            td.num {
                                @match c.last_counter {
                                    Some(n) => (group_digits(n)),
                                    None => span.muted { "—" },
                                }
                            }
                            td { (sync_badge(c)) }
                        }
                    }
                }
            }
            p.hint {
                "Receipts: the card's last receipt counter the issuer recorded. In sync: the \
                 card's contents after its last receipt were the issuer's view of them."
            }
        }
    };
    op.page("Cards", content).into_response()
}

fn downloads_table(rows: &[DownloadStatus], with_card: bool) -> Markup {
    html! {
        table.downloads {
            thead { tr {
                th { "Operation" }
                @if with_card { th { "Card" } }
                th { "Provider" } th { "Service" } th { "Application" } th { "State" }
                th.num { "Attempts" } th { "Notification" }
            } }
            tbody {
                @for s in rows {
                    @let d = &s.download;
                    tr {
                        td { (short_hex(&d.operation_id.to_hex())) }
                        @if with_card { td { (card_link_short(&d.card_id)) } }
                        td { (party_id(&d.provider)) }
                        td { code { (d.service_id.as_str()) } }
                        td { span.num { code { (aid_text(&d.aid)) } " v" (d.version) } }
                        td {
                            (download_badge(d.state)) br;
                            span.muted {
                                @match d.installed_at {
                                    Some(t) => { "installed " (timestamp(t)) }
                                    None => { "opened " (timestamp(d.opened_at)) }
                                }
                            }
                        }
                        td.num { (s.attempts.len()) }
                        td {
                            @match &s.notification {
                                Some(n) => {
                                    (notification_badge(n.state)) br;
                                    span.muted {
                                        (counted(u64::from(n.attempts), "attempt", "attempts"))
                                    }
                                }
                                None => span.muted { "—" },
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn statuses(
    issuer: &Issuer,
    downloads: &[DownloadRecord],
) -> Result<Vec<DownloadStatus>, ServiceError> {
    let mut rows = Vec::with_capacity(downloads.len());
    for d in downloads {
        rows.push(issuer.download_status(&d.operation_id).await?);
    }
    Ok(rows)
}

fn items_table(items: &[ListedItem]) -> Markup {
    html! {
        table #items {
            thead { tr {
                th { "Item" } th.num { "Version" } th { "Owner" } th.num { "Size" }
                th { "Data digest" }
            } }
            tbody {
                @for i in items {
                    tr {
                        td { code { (aid_text(&i.item_id)) } }
                        td.num { (i.version) }
                        td { (party_id(&i.owner)) }
                        td.num { (byte_size(u64::from(i.size))) }
                        td { (short_hex(&hex::encode(i.data_digest.0))) }
                    }
                }
            }
        }
    }
}

async fn card(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Path(card_id): Path<String>,
) -> Response {
    let Some(card_id) = hex::decode(&card_id)
        .ok()
        .and_then(|b| CardId::from_slice(&b))
    else {
        return op.problem(
            StatusCode::NOT_FOUND,
            "No such card",
            &format!("{card_id:?} is not a card ID (16 bytes in hex)."),
        );
    };
    let issuer = &state.issuer;
    let registry = match issuer.registry(&card_id).await {
        Ok(r) => r,
        Err(e) => return failure(&op, "Card", e),
    };
    let downloads = match statuses(issuer, &registry.downloads).await {
        Ok(rows) => rows,
        Err(e) => return failure(&op, "Card", e),
    };
    let ledger = match &registry.card.registration {
        Some(_) => match issuer.ledger(&card_id).await {
            Ok((registration, entries)) => match Certificate::from_der(&registration.rc_der) {
                Ok(rc) => Some((rc, entries)),
                Err(e) => return failure(&op, "Card", e.into()),
            },
            Err(e) => return failure(&op, "Card", e),
        },
        None => None,
    };
    let c = &registry.card.card;
    let items = registry
        .view
        .as_ref()
        .map(|v| v.items.clone())
        .unwrap_or_default();
    let free = u64::from(crate::service::free_of(&items, c.capacity));
    let capacity = u64::from(c.capacity);
    let registration = registry.card.registration.as_ref();
    let revocation = registry.card.revocation.as_ref();
    let content = html! {
        div.panel {
            dl.facts #registry {
                dt { "Card ID" } dd { code { (card_id.to_hex()) } }
                dt { "Status" } dd { (status_of(registration.is_some(), revocation.is_some())) }
                @if let Some(r) = registration {
                    dt { "Holder" } dd #holder-name { (given(&r.user_name)) }
                    dt { "User ID" } dd { (r.user_id) }
                    dt { "E-mail" } dd { (given(&r.user_email)) }
                    dt { "Registered" } dd { (utc(r.registered_at)) " · RC serial " (r.serial)
                        @if let Some((rc, _)) = &ledger {
                            " · valid until " (utc(rc.not_after()))
                        }
                    }
                }
                @if let Some(v) = revocation {
                    dt { "Revoked" } dd {
                        (utc(v.revoked_at)) " (" (v.reason.as_str()) ") by " (v.revoked_by)
                    }
                }
                dt { "Personalised" } dd { (utc(c.personalised_at)) " by " (c.personalised_by) }
                dt { "Capacity" } dd { (capacity_bar(free, capacity)) }
                dt { "Receipt counter" } dd {
                    @match &registry.view {
                        Some(v) => (group_digits(v.last_counter)),
                        None => span.muted { "—" },
                    }
                }
            }
        }
        h2 { "Applications" }
        @if registry.applications.is_empty() {
            (empty_panel("No applications on this card yet."))
        } @else {
            table #applications {
                thead { tr {
                    th { "Name" } th { "AID" } th.num { "Version" } th { "Provider" }
                    th.num { "Size" }
                } }
                tbody {
                    @for (item, application) in &registry.applications {
                        tr {
                            td { (application.name) }
                            td { code { (aid_text(&item.item_id)) } }
                            td.num { (item.version) }
                            td { (party_id(&application.provider)) }
                            td.num { (byte_size(u64::from(item.size))) }
                        }
                    }
                }
            }
        }
        h2 { "Items" }
        @if items.is_empty() {
            (empty_panel("The issuer's view of this card holds no items."))
        } @else {
            (items_table(&items))
        }
        h2 #downloads-heading { "Downloads" }
        @if downloads.is_empty() {
            (empty_panel("No downloads for this card yet."))
        } @else {
            (downloads_table(&downloads, false))
        }
        h2 { "Ledger of receipts" }
        @match &ledger {
            Some((rc, entries)) => (ledger_table(entries, &issuer.public_key(), "the issuer", rc)),
            None => (empty_panel("The card is not registered: it has no ledger yet.")),
        }
    };
    op.page(&format!("Card {}", card_id.to_hex()), content)
        .into_response()
}

// ---- applications -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct AddedQuery {
    added: Option<String>,
    unchanged: Option<String>,
}

/// What the add form held, to show it again with an error.
#[derive(Debug, Default, Clone)]
struct ApplicationForm {
    aid: String,
    version: String,
    provider: String,
    name: String,
    description: String,
}

async fn applications(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Query(query): Query<AddedQuery>,
) -> Response {
    let message = match (&query.added, &query.unchanged) {
        (Some(what), _) => Some(notice(Tone::Good, &format!("Added {what}."))),
        (None, Some(what)) => Some(notice(
            Tone::Neutral,
            &format!(
                "{what} was in the application DB already, with this content: nothing changed."
            ),
        )),
        (None, None) => None,
    };
    applications_page(
        &state,
        &op,
        StatusCode::OK,
        message,
        &ApplicationForm::default(),
    )
    .await
}

async fn applications_page(
    state: &AppState,
    op: &ConsoleOperator,
    status: StatusCode,
    message: Option<Markup>,
    form: &ApplicationForm,
) -> Response {
    let issuer = &state.issuer;
    let list = match issuer.applications().await {
        Ok(list) => list,
        Err(e) => return failure(op, "Applications", e),
    };
    let providers = match issuer.store.providers().await {
        Ok(p) => p,
        Err(e) => return failure(op, "Applications", e.into()),
    };
    let content = html! {
        @if let Some(message) = message { (message) }
        @if list.is_empty() {
            (empty_panel("No applications yet. Add the first one below."))
        } @else {
            (applications_table(&list))
        }
        h2 { "Add an application" }
        div.panel {
            form.stacked #add-application method="post" action=(APPLICATIONS_PATH)
                enctype="multipart/form-data" {
                (op.csrf_field())
                label { "Name"
                    input type="text" name="name" id="name" required value=(form.name); }
                label { "AID"
                    input type="text" name="aid" id="aid" required value=(form.aid)
                        placeholder="a0000002471001" spellcheck="false";
                    span.hint { "5 to 16 bytes in hex (ISO 7816-5)." } }
                label { "Version"
                    input type="number" name="version" id="version" min="0" required
                        value=(form.version); }
                label { "Provider"
                    input type="text" name="provider" id="provider" list="known-providers"
                        required value=(form.provider) spellcheck="false";
                    span.hint { "The provider whose service it is; it needs a policy here." } }
                datalist id="known-providers" {
                    @for p in &providers { option value=(p.provider.as_str()) {} }
                }
                label { "Description"
                    input type="text" name="description" id="description"
                        value=(form.description); }
                label { "Code"
                    input type="file" name="code" id="code" required;
                    span.hint { "The application's package, 1 byte to "
                        (group_digits(crate::download::MAX_CODE_LEN as u64)) " bytes." } }
                button type="submit" id="add" { "Add application" }
            }
        }
    };
    (status, op.page("Applications", content)).into_response()
}

fn applications_table(list: &[Application]) -> Markup {
    html! {
        table #application-db {
            thead { tr {
                th { "Name" } th { "AID" } th.num { "Version" } th { "Provider" } th.num { "Size" }
                th { "Digest" } th { "Added" }
            } }
            tbody {
                @for a in list {
                    tr {
                        td {
                            (a.name)
                            @if !a.description.is_empty() { br; span.muted { (a.description) } }
                        }
                        td { code { (aid_text(&a.aid)) } }
                        td.num { (a.version) }
                        td { (party_id(&a.provider)) }
                        td.num { (byte_size(u64::from(a.size))) }
                        td { (short_hex(&hex::encode(a.digest.0))) }
                        td { (timestamp(a.added_at)) br; span.muted { "by " (a.added_by) } }
                    }
                }
            }
        }
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    name: String,
    filename: Option<String>,
    data: Vec<u8>,
}

/// The boundary of a `multipart/form-data` content type.
fn boundary_of(headers: &HeaderMap) -> Option<String> {
    let content_type = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mut params = content_type.split(';');
    let essence = params.next()?.trim();
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .find_map(|param| {
            let (key, value) = param.trim().split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| value.trim().trim_matches('"').to_string())
        })
        .filter(|b| !b.is_empty())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `name` and `filename` parameters of a `Content-Disposition: form-data` header value
/// (quoted strings may hold `;`).
fn disposition(value: &str) -> (Option<String>, Option<String>) {
    let mut params = BTreeMap::new();
    let mut rest = value;
    while let Some(at) = rest.find(';') {
        rest = rest[at + 1..].trim_start();
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_ascii_lowercase();
        let after = &rest[eq + 1..];
        let (val, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            let end = after.find(';').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, val);
        rest = next;
    }
    (params.remove("name"), params.remove("filename"))
}

/// The parts of a `multipart/form-data` body (RFC 7578), or what is wrong with it.
fn multipart(body: &[u8], boundary: &str) -> Result<Vec<Part>, &'static str> {
    let delimiter = format!("\r\n--{boundary}");
    let mut framed = Vec::with_capacity(body.len() + 2);
    framed.extend_from_slice(b"\r\n");
    framed.extend_from_slice(body);
    let start = find(&framed, delimiter.as_bytes()).ok_or("no part in the form")?;
    let mut rest = &framed[start + delimiter.len()..];
    let mut parts = Vec::new();
    loop {
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        rest = rest
            .strip_prefix(b"\r\n")
            .ok_or("a malformed part boundary")?;
        let end =
            find(rest, delimiter.as_bytes()).ok_or("the form ends in the middle of a part")?;
        let part = &rest[..end];
        let head_end = find(part, b"\r\n\r\n").ok_or("a part without headers")?;
        let head =
            std::str::from_utf8(&part[..head_end]).map_err(|_| "a part's headers are not text")?;
        let (name, filename) = head
            .split("\r\n")
            .filter_map(|line| line.split_once(':'))
            .find(|(header, _)| header.trim().eq_ignore_ascii_case("content-disposition"))
            .map(|(_, value)| disposition(value))
            .unwrap_or((None, None));
        let name = name.ok_or("a part without a name")?;
        let data_start = (head_end + 4).min(part.len());
        parts.push(Part {
            name,
            filename,
            data: part[data_start..].to_vec(),
        });
        rest = &rest[end + delimiter.len()..];
    }
}

fn text_field(parts: &[Part], name: &str) -> Result<String, String> {
    match parts.iter().find(|p| p.name == name) {
        Some(p) => {
            String::from_utf8(p.data.clone()).map_err(|_| format!("The field {name} is not text."))
        }
        None => Ok(String::new()),
    }
}

/// The add form's fields, and the order they make (or why they make none).
fn application_order(parts: &[Part]) -> (ApplicationForm, Result<ApplicationOrder, String>) {
    let form = ApplicationForm {
        aid: text_field(parts, "aid")
            .unwrap_or_default()
            .trim()
            .to_string(),
        version: text_field(parts, "version")
            .unwrap_or_default()
            .trim()
            .to_string(),
        provider: text_field(parts, "provider")
            .unwrap_or_default()
            .trim()
            .to_string(),
        name: text_field(parts, "name")
            .unwrap_or_default()
            .trim()
            .to_string(),
        description: text_field(parts, "description")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    let order = (|| {
        for field in ["aid", "version", "provider", "name", "description"] {
            text_field(parts, field)?;
        }
        let aid_bytes = hex::decode(&form.aid).map_err(|_| {
            format!(
                "The AID {:?} is not hex: write its bytes as pairs of hex digits.",
                form.aid
            )
        })?;
        let aid = ItemId::new(&aid_bytes).map_err(|e| format!("The AID is refused: {e}."))?;
        let version: u32 = form.version.parse().map_err(|_| {
            format!(
                "The version {:?} is not a whole number from 0 to 4 294 967 295.",
                form.version
            )
        })?;
        let provider = PartyId::new(&form.provider).map_err(|_| {
            format!(
                "The provider {:?} is not a party ID (1 to 64 letters, digits, '.', '_' or '-').",
                form.provider
            )
        })?;
        let code = parts
            .iter()
            .find(|p| p.name == "code")
            .map(|p| p.data.clone())
            .unwrap_or_default();
        if code.is_empty() {
            return Err(
                "Choose the application's code file: none was sent, or it is empty.".to_string(),
            );
        }
        Ok(ApplicationOrder {
            aid,
            version,
            provider,
            name: form.name.clone(),
            description: form.description.clone(),
            code,
            policy_bits: 0,
        })
    })();
    (form, order)
}

async fn add_application(
    State(state): State<AppState>,
    op: ConsoleOperator,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |form: &ApplicationForm, status: StatusCode, words: &str| {
        let message = notice(
            Tone::Bad,
            &format!("The application was not added. {words}"),
        );
        let state = state.clone();
        let op = op.clone();
        let form = form.clone();
        async move { applications_page(&state, &op, status, Some(message), &form).await }
    };
    let Some(boundary) = boundary_of(&headers) else {
        return refuse(
            &ApplicationForm::default(),
            StatusCode::BAD_REQUEST,
            "The form was not sent as multipart/form-data.",
        )
        .await;
    };
    let parts = match multipart(&body, &boundary) {
        Ok(parts) => parts,
        Err(why) => {
            return refuse(
                &ApplicationForm::default(),
                StatusCode::BAD_REQUEST,
                &format!("The form could not be read: {why}."),
            )
            .await
        }
    };
    let (form, order) = application_order(&parts);
    let order = match order {
        Ok(order) => order,
        Err(words) => return refuse(&form, StatusCode::BAD_REQUEST, &words).await,
    };
    match state.issuer.add_application(order, op.name()).await {
        Ok((application, newly)) => {
            let what = format!(
                "{} (AID {}, version {}, {})",
                application.name,
                aid_text(&application.aid),
                application.version,
                byte_size(u64::from(application.size))
            );
            if newly {
                tracing::info!(
                    operator = %op.name(),
                    aid = %aid_text(&application.aid),
                    version = application.version,
                    provider = %application.provider,
                    size = application.size,
                    "application added (console)"
                );
            }
            let key = if newly { "added" } else { "unchanged" };
            let query = query_pair(key, &what);
            Redirect::to(&format!("{APPLICATIONS_PATH}?{query}")).into_response()
        }
        Err(e) => {
            let api = ApiError::from(e);
            if api.status == StatusCode::INTERNAL_SERVER_ERROR {
                tracing::error!(
                    operator = %op.name(),
                    cause = %api.message,
                    "console: adding an application failed"
                );
                return refuse(
                    &form,
                    api.status,
                    "The server could not record it just now; try again in a moment.",
                )
                .await;
            }
            refuse(&form, api.status, &sentence(&api.message)).await
        }
    }
}

// ---- downloads --------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct StateQuery {
    state: Option<String>,
}

async fn downloads(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Query(query): Query<StateQuery>,
) -> Response {
    let wanted = match query.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(text) => match DownloadState::parse(text) {
            Some(s) => Some(s),
            None => {
                return op.problem(
                    StatusCode::BAD_REQUEST,
                    "Downloads",
                    &format!("{text:?} is not a download state: opened, installed or expired."),
                )
            }
        },
    };
    let issuer = &state.issuer;
    let rows = match issuer.downloads(wanted).await {
        Ok(list) => match statuses(issuer, &list).await {
            Ok(rows) => rows,
            Err(e) => return failure(&op, "Downloads", e),
        },
        Err(e) => return failure(&op, "Downloads", e),
    };
    let filter = |label: &str, value: Option<DownloadState>| {
        let href = match value {
            Some(s) => format!("{DOWNLOADS_PATH}?state={}", s.as_str()),
            None => DOWNLOADS_PATH.to_string(),
        };
        let current = value == wanted;
        html! { a href=(href) aria-current=[current.then_some("true")] {
            @if current { strong { (label) } } @else { (label) }
        } }
    };
    let content = html! {
        p.muted {
            "Show: " (filter("all", None)) " · " (filter("opened", Some(DownloadState::Opened)))
            " · " (filter("installed", Some(DownloadState::Installed)))
            " · " (filter("expired", Some(DownloadState::Expired)))
        }
        @if rows.is_empty() {
            (empty_panel(match wanted {
                None => "No downloads yet.",
                Some(DownloadState::Opened) => "No download is open.",
                Some(DownloadState::Installed) => "No download has been installed yet.",
                Some(DownloadState::Expired) => "No download has expired.",
            }))
        } @else {
            (downloads_table(&rows, true))
        }
    };
    op.page("Downloads", content).into_response()
}

// ---- notifications ----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct RetriedQuery {
    retried: Option<String>,
}

async fn notifications(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Query(query): Query<RetriedQuery>,
) -> Response {
    let rows = match state.issuer.notifications(None).await {
        Ok(rows) => rows,
        Err(e) => return failure(&op, "Notifications", e),
    };
    let (waiting, delivered): (Vec<&NotificationRecord>, Vec<&NotificationRecord>) = rows
        .iter()
        .partition(|n| n.state != NotificationState::Delivered);
    let content = html! {
        @if let Some(op_hex) = &query.retried {
            (notice(Tone::Good, &format!(
                "The notification of operation {op_hex} is due now: the notifier sends it within \
                 a second."
            )))
        }
        p.muted {
            "Each installed download tells its provider about the new member (S15). Refused \
             notifications are stuck: they are tried again every 5 minutes, or now with Retry."
        }
        h2 { "Waiting" }
        @if waiting.is_empty() {
            (empty_panel("Nothing waiting: every notification was delivered."))
        } @else {
            table #waiting {
                thead { tr {
                    th { "Operation" } th { "Provider" } th { "State" } th.num { "Attempts" }
                    th { "Next attempt" } th { "Last error" } th { "" }
                } }
                tbody {
                    @for n in &waiting {
                        @let op_hex = n.operation_id.to_hex();
                        tr {
                            td { (short_hex(&op_hex)) }
                            td { (party_id(&n.provider)) }
                            td { (notification_badge(n.state)) }
                            td.num { (n.attempts) }
                            td { (timestamp(n.next_attempt_at)) }
                            td {
                                @match &n.last_error {
                                    Some(e) => (e),
                                    None => span.muted { "—" },
                                }
                            }
                            td {
                                form.inline method="post"
                                    action={ (NOTIFICATIONS_PATH) "/" (op_hex) "/retry" } {
                                    (op.csrf_field())
                                    button.secondary type="submit" id={ "retry-" (op_hex) } {
                                        "Retry now"
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Delivered" }
        @if delivered.is_empty() {
            (empty_panel("No notification delivered yet."))
        } @else {
            table #delivered {
                thead { tr {
                    th { "Operation" } th { "Provider" } th { "State" } th.num { "Attempts" }
                    th { "Created" } th { "Delivered" }
                } }
                tbody {
                    @for n in &delivered {
                        tr {
                            td { (short_hex(&n.operation_id.to_hex())) }
                            td { (party_id(&n.provider)) }
                            td { (notification_badge(n.state)) }
                            td.num { (n.attempts) }
                            td { (timestamp(n.created_at)) }
                            td { (timestamp_or_dash(n.delivered_at)) }
                        }
                    }
                }
            }
        }
    };
    op.page("Notifications", content).into_response()
}

async fn retry_notification(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Path(operation_id): Path<String>,
) -> Response {
    let Ok(operation_id) = OperationId::from_hex(&operation_id) else {
        return op.problem(
            StatusCode::NOT_FOUND,
            "Notifications",
            &format!("{operation_id:?} is not an operation ID (16 bytes in hex)."),
        );
    };
    match state.issuer.retry_notification(&operation_id).await {
        Ok(_) => {
            tracing::info!(
                operator = %op.name(),
                operation_id = %operation_id,
                "member notification retried now (console)"
            );
            state.notifier.wake();
            Redirect::to(&format!(
                "{NOTIFICATIONS_PATH}?retried={}",
                operation_id.to_hex()
            ))
            .into_response()
        }
        Err(e) => failure(&op, "Notifications", e),
    }
}

// ---- providers --------------------------------------------------------------------------------

async fn providers(State(state): State<AppState>, op: ConsoleOperator) -> Response {
    let issuer = &state.issuer;
    let (policies, applications) =
        match (issuer.store.providers().await, issuer.applications().await) {
            (Ok(p), Ok(a)) => (p, a),
            (Err(e), _) => return failure(&op, "Providers", e.into()),
            (_, Err(e)) => return failure(&op, "Providers", e),
        };
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for a in &applications {
        *counts.entry(a.provider.as_str()).or_default() += 1;
    }
    let content = html! {
        @if policies.is_empty() {
            (empty_panel("No providers yet. A provider's items reach this issuer's cards once its \
                    policy allows them."))
        } @else {
            (providers_table(&policies, &counts))
            p.hint { "Quota: the most bytes one provider's items may take on one card." }
        }
    };
    op.page("Providers", content).into_response()
}

fn providers_table(policies: &[ProviderPolicy], counts: &BTreeMap<&str, u64>) -> Markup {
    html! {
        table #providers {
            thead { tr {
                th { "Provider" } th { "Status" } th.num { "Quota" } th { "URL" }
                th.num { "Applications" } th { "Updated" }
            } }
            tbody {
                @for p in policies {
                    tr {
                        td { (party_id(&p.provider)) }
                        td { @match p.status {
                            ProviderStatus::Allowed => (badge(Tone::Good, "allowed")),
                            ProviderStatus::Blocked => (badge(Tone::Bad, "blocked")),
                        } }
                        td.num { (byte_size(u64::from(p.quota_bytes))) }
                        td { @match &p.url {
                            Some(url) => code { (url.as_str()) },
                            None => (badge(Tone::Warning, "not set")),
                        } }
                        @let count = counts.get(p.provider.as_str()).copied().unwrap_or(0);
                        td.num { (group_digits(count)) }
                        td { (timestamp(p.updated_at)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_multipart_bodies() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"aid\"\r\n\r\na000000247\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"code\"; filename=\"a;b.cap\"\r\n\
Content-Type: application/octet-stream\r\n\r\n\x00\r\n--X\x01\r\n--XyZ--\r\n";
        let parts = multipart(body, "XyZ").unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data.as_slice()),
            ("aid", &b"a000000247"[..])
        );
        assert_eq!(parts[1].name, "code");
        assert_eq!(parts[1].filename.as_deref(), Some("a;b.cap"));
        assert_eq!(parts[1].data, b"\x00\r\n--X\x01");
        // Truncated bodies are refused, never a panic.
        for cut in 0..body.len() {
            let _ = multipart(&body[..cut], "XyZ");
        }
        assert!(multipart(b"no parts", "XyZ").is_err());
    }

    #[test]
    fn reads_the_boundary() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            "multipart/form-data; boundary=\"----abc\"".parse().unwrap(),
        );
        assert_eq!(boundary_of(&headers).as_deref(), Some("----abc"));
        headers.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert_eq!(boundary_of(&headers), None);
    }
}
