//! The provider's operators' console (docs/app-download.md §6, SPEC APP-4): server-rendered
//! pages on `server_kit::console` (sign-in with an operator token, sessions in the database,
//! CSRF on every form, no JavaScript). Every page calls the same service functions as the
//! operator routes of `http.rs` / `http/download.rs`; nothing here goes through HTTP.
//!
//! - `GET /console/services`, `POST`: the catalog (APP-2) and the form adding a service
//! - `GET /console/terms`, `POST`: the membership terms in force and the form publishing the
//!   next version
//! - `GET /console/members`, `GET /console/members/{service_id}`: members per service (card,
//!   user, member since, operation)
//! - `GET /console/downloads`: download operations and where each stands
//! - `GET /console/ledgers[?card=]`, `GET /console/ledgers/{card_id}`: a card's ledger of
//!   receipts, checked with `protocol::verify_ledger`

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use pki::{CardId, Certificate, PartyId};
use protocol::{ItemId, ServiceId};
use serde::Deserialize;
use server_kit::console::{
    self, badge, byte_size, counted, empty_panel, group_digits, ledger_table, notice, party_id,
    query_pair, sentence, short_hex, timestamp, timestamp_or_dash, utc, Console, ConsoleForm,
    ConsoleOperator, Tone, Transport,
};
use server_kit::ApiError;

use crate::http::AppState;
use crate::service::{NewService, Provider, ServiceError};
use crate::store::{DownloadStage, LedgerRecord, MemberRecord, ServiceRecord};

pub const SERVICES_PATH: &str = "/console/services";
pub const TERMS_PATH: &str = "/console/terms";
pub const MEMBERS_PATH: &str = "/console/members";
pub const DOWNLOADS_PATH: &str = "/console/downloads";
pub const LEDGERS_PATH: &str = "/console/ledgers";

/// The provider's console: its name is its party ID, its clock the provider's.
pub fn console(provider: &Provider, db: server_kit::Db, transport: Transport) -> Console {
    Console::new(db, provider.party_id().to_string(), transport)
        .with_clock(provider.party_trust().clock.clone())
        .with_page("Services", SERVICES_PATH)
        .with_page("Terms", TERMS_PATH)
        .with_page("Members", MEMBERS_PATH)
        .with_page("Downloads", DOWNLOADS_PATH)
        .with_page("Ledgers", LEDGERS_PATH)
}

/// The console's routes (the kit's sign-in, sign-out and stylesheet with the provider's
/// pages), to merge into the provider's router.
pub fn router(console: &Console) -> Router<AppState> {
    let pages = Router::new()
        .route(SERVICES_PATH, get(services).post(add_service))
        .route(TERMS_PATH, get(terms).post(publish_terms))
        .route(MEMBERS_PATH, get(members_index))
        .route("/console/members/{service_id}", get(members))
        .route(DOWNLOADS_PATH, get(downloads))
        .route(LEDGERS_PATH, get(ledgers_index))
        .route("/console/ledgers/{card_id}", get(ledger));
    console::router(console, pages)
}

// ---- small pieces -----------------------------------------------------------------------------

/// A service error in words: the service's own message for 4xx, a plain apology for the
/// server's own failures (logged with their cause).
fn words_of(op: &ConsoleOperator, title: &str, error: ServiceError) -> (StatusCode, String) {
    let (status, words) = op.failure_words(title, &ApiError::from(error));
    (status, sentence(&words))
}

fn failure(op: &ConsoleOperator, title: &str, error: ServiceError) -> Response {
    let (status, words) = words_of(op, title, error);
    op.problem(status, title, &words)
}

fn ledger_link(card_id: &CardId, full: bool) -> Markup {
    let hex = card_id.to_hex();
    html! { a href={ (LEDGERS_PATH) "/" (hex) } {
        @if full { code { (hex) } } @else { (short_hex(&hex)) }
    } }
}

fn aid_text(aid: &ItemId) -> String {
    hex::encode(aid.as_bytes())
}

fn stage_badge(stage: DownloadStage) -> Markup {
    match stage {
        DownloadStage::Requested => badge(Tone::Neutral, "requested"),
        DownloadStage::Granted => badge(Tone::Warning, "granted"),
        DownloadStage::Member => badge(Tone::Good, "member"),
    }
}

// ---- services ---------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct DoneQuery {
    added: Option<String>,
    unchanged: Option<String>,
}

/// The add form's fields, as sent (shown again with an error).
#[derive(Debug, Default, Clone, Deserialize)]
struct ServiceForm {
    #[serde(default)]
    service_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    aid: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    issuer: String,
}

async fn services(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Query(query): Query<DoneQuery>,
) -> Response {
    let message = match (&query.added, &query.unchanged) {
        (Some(id), _) => Some(notice(Tone::Good, &format!("Service {id} added."))),
        (None, Some(id)) => Some(notice(
            Tone::Neutral,
            &format!("Service {id} was in the catalog already, as given: nothing changed."),
        )),
        (None, None) => None,
    };
    services_page(
        &state,
        &op,
        StatusCode::OK,
        message,
        &ServiceForm::default(),
    )
    .await
}

async fn services_page(
    state: &AppState,
    op: &ConsoleOperator,
    status: StatusCode,
    message: Option<Markup>,
    form: &ServiceForm,
) -> Response {
    let provider = &state.provider;
    let catalog = match provider.services().await {
        Ok(list) => list,
        Err(e) => return failure(op, "Services", e),
    };
    let mut counts = Vec::with_capacity(catalog.len());
    for s in &catalog {
        match provider.service_members(&s.service_id).await {
            Ok(members) => counts.push(members.len() as u64),
            Err(e) => return failure(op, "Services", e),
        }
    }
    let content = html! {
        @if let Some(message) = message { (message) }
        @if catalog.is_empty() {
            (empty_panel("No services yet. Add the first one below."))
        } @else {
            (catalog_table(&catalog, &counts))
        }
        h2 { "Add a service" }
        div.panel {
            p.muted {
                "A service offers one application of an issuer's application DB; the provider \
                 pins its size and digest as the issuer describes it."
            }
            form.stacked #add-service method="post" action=(SERVICES_PATH) {
                (op.csrf_field())
                label { "Service ID"
                    input type="text" name="service_id" id="service_id" required
                        value=(form.service_id) spellcheck="false" placeholder="transit";
                    span.hint { "1 to 64 letters, digits, '.', '_' or '-'." } }
                label { "Name" input type="text" name="name" id="name" required value=(form.name); }
                label { "Description"
                    textarea name="description" id="description" rows="3" { (form.description) } }
                label { "Application AID"
                    input type="text" name="aid" id="aid" required value=(form.aid)
                        spellcheck="false" placeholder="a0000008710101";
                    span.hint { "As the issuer's application DB lists it, in hex." } }
                label { "Version"
                    input type="number" name="version" id="version" min="0" required
                        value=(form.version); }
                label { "Issuer"
                    input type="text" name="issuer" id="issuer" required value=(form.issuer)
                        spellcheck="false" placeholder="issuer-1"; }
                button type="submit" id="add" { "Add service" }
            }
        }
    };
    (status, op.page("Services", content)).into_response()
}

fn catalog_table(catalog: &[ServiceRecord], counts: &[u64]) -> Markup {
    html! {
        table #catalog {
            thead { tr {
                th { "Service" } th { "Application" } th { "AID" } th.num { "Version" }
                th.num { "Size" } th { "Issuer" } th.num { "Members" } th { "Added" }
            } }
            tbody {
                @for (s, count) in catalog.iter().zip(counts) {
                    tr {
                        td {
                            strong { (s.name) } br;
                            code { (s.service_id.as_str()) }
                            @if !s.description.is_empty() { br; span.muted { (s.description) } }
                        }
                        td { (s.application_name) }
                        td { code { (aid_text(&s.aid)) } }
                        td.num { (s.version) }
                        td.num { (byte_size(u64::from(s.size))) }
                        td { (party_id(&s.issuer)) }
                        td.num {
                            a href={ (MEMBERS_PATH) "/" (s.service_id.as_str()) } {
                                (group_digits(*count))
                            }
                        }
                        td { (timestamp(s.created_at)) }
                    }
                }
            }
        }
    }
}

/// The order the form makes, or why it makes none.
fn new_service(form: &ServiceForm) -> Result<NewService, String> {
    let service_id = ServiceId::new(form.service_id.trim()).map_err(|_| {
        format!(
            "The service ID {:?} is not one: 1 to 64 letters, digits, '.', '_' or '-'.",
            form.service_id
        )
    })?;
    let name = form.name.trim();
    if name.is_empty() {
        return Err("Give the service a name.".to_string());
    }
    let aid = hex::decode(form.aid.trim())
        .ok()
        .and_then(|b| ItemId::new(&b).ok())
        .ok_or_else(|| format!("The AID {:?} is not 1 to 16 bytes in hex.", form.aid))?;
    let version: u32 = form.version.trim().parse().map_err(|_| {
        format!(
            "The version {:?} is not a whole number from 0 to 4 294 967 295.",
            form.version
        )
    })?;
    let issuer = PartyId::new(form.issuer.trim())
        .map_err(|_| format!("The issuer {:?} is not a party ID.", form.issuer))?;
    Ok(NewService {
        service_id,
        name: name.to_string(),
        description: form.description.trim().to_string(),
        aid,
        version,
        issuer,
    })
}

async fn add_service(
    State(state): State<AppState>,
    op: ConsoleOperator,
    ConsoleForm(form): ConsoleForm<ServiceForm>,
) -> Response {
    let refused = |status: StatusCode, words: String| {
        let message = notice(Tone::Bad, &format!("The service was not added. {words}"));
        (status, message)
    };
    let (status, message) = match new_service(&form) {
        Err(words) => refused(StatusCode::BAD_REQUEST, words),
        Ok(new) => match state.provider.add_service(&new).await {
            Ok((service, added)) => {
                let id = service.service_id.to_string();
                if added {
                    tracing::info!(
                        operator = %op.name(),
                        service = %id,
                        aid = %aid_text(&service.aid),
                        version = service.version,
                        size = service.size,
                        "service added (console)"
                    );
                }
                let key = if added { "added" } else { "unchanged" };
                return Redirect::to(&format!("{SERVICES_PATH}?{}", query_pair(key, &id)))
                    .into_response();
            }
            Err(e) => {
                let (status, words) = words_of(&op, "Adding a service", e);
                refused(status, words)
            }
        },
    };
    services_page(&state, &op, status, Some(message), &form).await
}

// ---- terms ------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct PublishedQuery {
    published: Option<u32>,
    unchanged: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
struct TermsForm {
    #[serde(default)]
    text: String,
}

async fn terms(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Query(query): Query<PublishedQuery>,
) -> Response {
    let message = match (query.published, query.unchanged) {
        (Some(v), _) => Some(notice(
            Tone::Good,
            &format!("Version {v} published: new downloads accept it from now on."),
        )),
        (None, Some(v)) => Some(notice(
            Tone::Neutral,
            &format!("Version {v} has this text already: nothing changed."),
        )),
        (None, None) => None,
    };
    terms_page(&state, &op, StatusCode::OK, message, None).await
}

async fn terms_page(
    state: &AppState,
    op: &ConsoleOperator,
    status: StatusCode,
    message: Option<Markup>,
    draft: Option<&str>,
) -> Response {
    let current = match state.provider.terms(None).await {
        Ok(t) => Some(t),
        Err(ServiceError::UnknownTerms { .. }) => None,
        Err(e) => return failure(op, "Terms", e),
    };
    let content = html! {
        @if let Some(message) = message { (message) }
        @match &current {
            Some(t) => div.panel {
                dl.facts #terms-facts {
                    dt { "Version" } dd #terms-version { (t.version) }
                    dt { "Published" } dd { (utc(t.published_at)) }
                    dt { "Digest" } dd { code #terms-digest { (hex::encode(t.digest.0)) } }
                }
                h3 { "Text" }
                div #terms-text { @for line in t.text.lines() { (line) br; } }
            },
            None => (empty_panel("No terms published yet: users cannot start a download until \
                            there are.")),
        }
        h2 { "Publish a new version" }
        div.panel {
            p.muted {
                "Every download application binds the digest of the terms its user accepted; \
                 older versions are kept. A download started under an older version must be \
                 started again."
            }
            form.stacked #publish-terms method="post" action=(TERMS_PATH) {
                (op.csrf_field())
                label { "Text"
                    textarea name="text" id="text" rows="10" required {
                        (draft.or(current.as_ref().map(|t| t.text.as_str())).unwrap_or_default())
                    } }
                button type="submit" id="publish" { "Publish" }
            }
        }
    };
    (status, op.page("Terms", content)).into_response()
}

async fn publish_terms(
    State(state): State<AppState>,
    op: ConsoleOperator,
    ConsoleForm(form): ConsoleForm<TermsForm>,
) -> Response {
    // Browsers send a textarea's line breaks as CRLF; the terms keep the text as typed with
    // plain line feeds, as the API does.
    let text = form.text.replace("\r\n", "\n");
    match state.provider.publish_terms(&text).await {
        Ok((terms, new)) => {
            if new {
                tracing::info!(
                    operator = %op.name(),
                    version = terms.version,
                    digest = %hex::encode(terms.digest.0),
                    "membership terms published (console)"
                );
            }
            let key = if new { "published" } else { "unchanged" };
            Redirect::to(&format!("{TERMS_PATH}?{key}={}", terms.version)).into_response()
        }
        Err(e) => {
            let (status, words) = words_of(&op, "Publishing terms", e);
            let message = notice(Tone::Bad, &format!("Nothing was published. {words}"));
            terms_page(&state, &op, status, Some(message), Some(&text)).await
        }
    }
}

// ---- members ----------------------------------------------------------------------------------

async fn members_index(State(state): State<AppState>, op: ConsoleOperator) -> Response {
    let provider = &state.provider;
    let catalog = match provider.services().await {
        Ok(list) => list,
        Err(e) => return failure(&op, "Members", e),
    };
    let mut rows = Vec::with_capacity(catalog.len());
    for s in &catalog {
        match provider.service_members(&s.service_id).await {
            Ok(members) => {
                let latest = members.iter().map(|m| m.member_since).max();
                rows.push((s, members.len() as u64, latest));
            }
            Err(e) => return failure(&op, "Members", e),
        }
    }
    let content = html! {
        @if rows.is_empty() {
            (empty_panel("No services yet, so no members."))
        } @else {
            table #member-counts {
                thead { tr { th { "Service" } th.num { "Members" } th { "Latest member" } } }
                tbody {
                    @for (s, count, latest) in &rows {
                        tr {
                            td { a href={ (MEMBERS_PATH) "/" (s.service_id.as_str()) } { (s.name) }
                                 " " code { (s.service_id.as_str()) } }
                            td.num { (group_digits(*count)) }
                            td { (timestamp_or_dash(*latest)) }
                        }
                    }
                }
            }
        }
    };
    op.page("Members", content).into_response()
}

fn members_table(members: &[MemberRecord]) -> Markup {
    html! {
        table #members {
            thead { tr {
                th { "Card" } th { "User" } th { "E-mail" } th { "Member since" } th { "Operation" }
                th { "State" }
            } }
            tbody {
                @for m in members {
                    tr {
                        td { (ledger_link(&m.card_id, true)) }
                        td { (m.user.name) br; span.muted { (m.user.user_id) } }
                        td { (m.user.email) }
                        td { (timestamp(m.member_since)) }
                        td { (short_hex(&m.operation_id.to_hex())) }
                        @let tone = if m.state == "active" { Tone::Good } else { Tone::Neutral };
                        td { (badge(tone, &m.state)) }
                    }
                }
            }
        }
    }
}

async fn members(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Path(service_id): Path<String>,
) -> Response {
    let Ok(id) = ServiceId::new(&service_id) else {
        return op.problem(
            StatusCode::NOT_FOUND,
            "Members",
            &format!("{service_id:?} is not a service ID."),
        );
    };
    let provider = &state.provider;
    let service = match provider.service(&id).await {
        Ok(s) => s,
        Err(e) => return failure(&op, "Members", e),
    };
    let list = match provider.service_members(&id).await {
        Ok(list) => list,
        Err(e) => return failure(&op, "Members", e),
    };
    let content = html! {
        p.muted {
            (service.name) " · application " (service.application_name) " ("
            code { (aid_text(&service.aid)) } " v" (service.version) ") from "
            (service.issuer.as_str())
        }
        @if list.is_empty() {
            (empty_panel("No members yet. A card becomes a member when its issuer tells us it \
                    installed the application."))
        } @else {
            p.muted { (counted(list.len() as u64, "member", "members")) }
            (members_table(&list))
        }
        p { a href=(MEMBERS_PATH) { "All services" } }
    };
    op.page(&format!("Members of {}", id.as_str()), content)
        .into_response()
}

// ---- downloads --------------------------------------------------------------------------------

async fn downloads(State(state): State<AppState>, op: ConsoleOperator) -> Response {
    let provider = &state.provider;
    let list = match provider.store().downloads().await {
        Ok(list) => list,
        Err(e) => return failure(&op, "Downloads", e.into()),
    };
    let mut rows = Vec::with_capacity(list.len());
    for d in &list {
        match provider.download_status(&d.operation_id).await {
            Ok(status) => rows.push(status),
            Err(e) => return failure(&op, "Downloads", e),
        }
    }
    let content = html! {
        p.muted {
            "requested: the card was asked to sign its application (S6) · granted: the provider \
             consented to the store (S11) · member: the issuer reported the installation (S16)."
        }
        @if rows.is_empty() {
            (empty_panel("No downloads yet."))
        } @else {
            table #downloads {
                thead { tr {
                    th { "Operation" } th { "Card" } th { "Service" } th { "Issuer" } th { "State" }
                    th { "Requested" } th { "Valid until" } th { "Member since" }
                } }
                tbody {
                    @for s in &rows {
                        @let d = &s.download;
                        tr {
                            td { (short_hex(&d.operation_id.to_hex())) }
                            td { (ledger_link(&d.card_id, false)) }
                            td { code { (d.service_id.as_str()) } }
                            td { (party_id(&d.issuer)) }
                            td { (stage_badge(d.stage)) }
                            td { (timestamp(d.created_at)) }
                            td { (timestamp(d.not_after)) }
                            td { (timestamp_or_dash(s.member_since)) }
                        }
                    }
                }
            }
        }
    };
    op.page("Downloads", content).into_response()
}

// ---- ledgers ----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct CardQuery {
    card: Option<String>,
}

fn parse_card(text: &str) -> Option<CardId> {
    hex::decode(text.trim())
        .ok()
        .and_then(|b| CardId::from_slice(&b))
}

async fn ledgers_index(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Query(query): Query<CardQuery>,
) -> Response {
    let mut message = None;
    if let Some(text) = query.card.as_deref().filter(|t| !t.trim().is_empty()) {
        match parse_card(text) {
            Some(card) => {
                return Redirect::to(&format!("{LEDGERS_PATH}/{}", card.to_hex())).into_response()
            }
            None => {
                message = Some(notice(
                    Tone::Bad,
                    &format!("{text:?} is not a card ID: 16 bytes, 32 hex digits."),
                ))
            }
        }
    }
    let provider = &state.provider;
    let catalog = match provider.services().await {
        Ok(list) => list,
        Err(e) => return failure(&op, "Ledgers", e),
    };
    let mut cards = BTreeSet::new();
    for s in &catalog {
        match provider.service_members(&s.service_id).await {
            Ok(members) => cards.extend(members.into_iter().map(|m| m.card_id)),
            Err(e) => return failure(&op, "Ledgers", e),
        }
    }
    let status = if message.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let content = html! {
        @if let Some(message) = message { (message) }
        div.panel {
            form.stacked method="get" action=(LEDGERS_PATH) {
                label { "Card ID"
                    input type="text" name="card" id="card" required spellcheck="false"
                        placeholder="32 hex digits"; }
                button type="submit" id="open-ledger" { "Open the ledger" }
            }
        }
        h2 { "Members' cards" }
        @if cards.is_empty() {
            (empty_panel("No members yet."))
        } @else {
            ul #member-cards { @for c in &cards { li { (ledger_link(c, true)) } } }
        }
    };
    (status, op.page("Ledgers", content)).into_response()
}

async fn ledger(
    State(state): State<AppState>,
    op: ConsoleOperator,
    Path(card_id): Path<String>,
) -> Response {
    let Some(card) = parse_card(&card_id) else {
        return op.problem(
            StatusCode::NOT_FOUND,
            "Ledger",
            &format!("{card_id:?} is not a card ID (16 bytes in hex)."),
        );
    };
    let provider = &state.provider;
    let (rc_der, records) = match provider.ledger(card).await {
        Ok(found) => found,
        Err(e) => return failure(&op, "Ledger", e),
    };
    let rc = match Certificate::from_der(&rc_der) {
        Ok(rc) => rc,
        Err(e) => {
            tracing::error!(card_id = %card, cause = %e, "console: the stored RC is unreadable");
            return op.problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Ledger",
                "The card's RC kept here cannot be read, so its ledger cannot be checked.",
            );
        }
    };
    let content = ledger_content(provider, &card, &rc, &records);
    op.page(&format!("Ledger of card {}", card.to_hex()), content)
        .into_response()
}

fn ledger_content(
    provider: &Provider,
    card: &CardId,
    rc: &Certificate,
    records: &[LedgerRecord],
) -> Markup {
    html! {
        div.panel {
            dl.facts {
                dt { "Card ID" } dd { code { (card.to_hex()) } }
                dt { "RC" } dd { "serial " (rc.serial()) " · valid until " (utc(rc.not_after())) }
            }
        }
        (ledger_table(
            records.iter().map(|r| r.entry_der.as_slice()),
            &provider.dpr().public_key(),
            "this provider",
            rc,
        ))
        p { a href=(LEDGERS_PATH) { "Another card" } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_add_service_form() {
        let form = ServiceForm {
            service_id: " transit ".into(),
            name: "Transit".into(),
            description: String::new(),
            aid: "a0000008710101".into(),
            version: "1".into(),
            issuer: "issuer-1".into(),
        };
        let new = new_service(&form).unwrap();
        assert_eq!(new.service_id.as_str(), "transit");
        assert_eq!(new.version, 1);
        let bad = ServiceForm {
            version: "one".into(),
            ..form.clone()
        };
        assert!(new_service(&bad).unwrap_err().contains("\"one\""));
        let bad = ServiceForm {
            aid: "zz".into(),
            ..form
        };
        assert!(new_service(&bad).unwrap_err().contains("AID"));
    }
}
