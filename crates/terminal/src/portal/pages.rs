//! The portal's screens, each a maud function of a plain view struct (seed 003, 図5 (a)–(i);
//! docs/app-download.md §6). Pages know nothing of cards, parties or jobs: the session builds a
//! view from what it holds and a page renders it. Every page shares one [`layout`]: the
//! provider's name, the step indicator, the panel, and — while a job runs — a one-second
//! `<meta http-equiv="refresh">` (no JavaScript, CSP `default-src 'self'`: no inline style
//! either, so bars are SVG attributes).

use maud::{html, Markup, DOCTYPE};

use super::messages::{Action, Problem};

/// The steps across the top of every page, in the seed's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// (a) insert the card.
    Card,
    /// (b) membership terms.
    Terms,
    /// (c) the issuer checks the card.
    Check,
    /// (d) card verified, choose a service.
    Choose,
    /// (e)(f) the download application.
    Apply,
    /// (g)(h) the card signs.
    Sign,
    /// S8–S15: issuer, card and provider at work.
    Install,
    /// (i) the service has started.
    Done,
}

impl Stage {
    const ALL: [Stage; 8] = [
        Stage::Card,
        Stage::Terms,
        Stage::Check,
        Stage::Choose,
        Stage::Apply,
        Stage::Sign,
        Stage::Install,
        Stage::Done,
    ];

    fn label(self) -> &'static str {
        match self {
            Stage::Card => "Card",
            Stage::Terms => "Terms",
            Stage::Check => "Check",
            Stage::Choose => "Choose",
            Stage::Apply => "Apply",
            Stage::Sign => "Sign",
            Stage::Install => "Install",
            Stage::Done => "Done",
        }
    }
}

/// Whether the page reloads itself (a job is running, or the portal waits for a card).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    Off,
    EverySecond,
}

/// What every page needs besides its own content.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// The provider's name as the user knows it (the portal is the provider's door to the card).
    pub provider: &'a str,
    pub stage: Stage,
    pub refresh: Refresh,
    /// The session's CSRF token, put into every form.
    pub csrf: &'a str,
}

/// One sub-step of a page's checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Waiting,
    Running,
    Done,
    Failed,
}

/// A labelled line of a checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    pub label: String,
    /// A second line under the label (e.g. "block 3 of 12").
    pub note: Option<String>,
    pub mark: Mark,
}

/// What the reader holds, as (a) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderState {
    /// No card answers (`detail`: why, in the reader's words).
    NoCard { detail: String },
    /// A card answered with its ID and capacity.
    Card {
        card_id: String,
        capacity: u32,
        free: u32,
        pin_tries: u8,
    },
    /// The card is busy with a job.
    Busy,
}

/// (a) insert card.
#[derive(Debug, Clone)]
pub struct InsertCardView {
    pub reader: String,
    pub state: ReaderState,
    /// A download this terminal's journal (or the issuer) still has open for this card.
    pub unfinished: Option<String>,
}

/// (b) the provider's membership terms.
#[derive(Debug, Clone)]
pub struct TermsView {
    pub version: u32,
    pub text: String,
    /// The user pressed Continue without ticking "I agree".
    pub unticked: bool,
}

/// (c) checking the card with the issuer.
#[derive(Debug, Clone)]
pub struct CheckingView {
    pub issuer: String,
    pub steps: Vec<CheckItem>,
}

/// An application on the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplicationLine {
    pub name: String,
    pub version: u32,
    pub size: u32,
}

/// Whether a service can be chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    Fits,
    TooLarge { needs: u32, free: u32 },
    Installed,
}

/// A service of the provider's catalog, as (d) offers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChoice {
    pub service_id: String,
    pub name: String,
    pub description: String,
    pub application: String,
    pub size: u32,
    pub fit: Fit,
}

/// (d) card verified: holder, capacity, applications, services.
#[derive(Debug, Clone)]
pub struct ServicesView {
    pub issuer: String,
    pub holder: String,
    pub card_id: String,
    pub capacity: u32,
    pub free: u32,
    pub applications: Vec<ApplicationLine>,
    pub services: Vec<ServiceChoice>,
    /// Pre-selected (the user's last choice).
    pub chosen: Option<String>,
    /// The issuer holds a download open for this card that this terminal did not start (or
    /// lost the journal of): offer to finish it.
    pub unfinished: bool,
}

/// (e)(f) the provider asks for a signed download application.
#[derive(Debug, Clone)]
pub struct ApplicationView {
    pub provider: String,
    pub issuer: String,
    pub service: String,
    pub application: String,
    pub aid: String,
    pub version: u32,
    pub size: u32,
    pub valid_until: String,
}

/// (g) enter the PIN.
#[derive(Debug, Clone)]
pub struct SignView {
    pub service: String,
    pub tries_left: Option<u8>,
    /// A line over the field: why the PIN is asked again, or that the last one was malformed.
    pub notice: Option<String>,
}

/// S8–S15 progress.
#[derive(Debug, Clone)]
pub struct ProgressView {
    pub service: String,
    pub steps: Vec<CheckItem>,
}

/// (i) the service has started.
#[derive(Debug, Clone)]
pub struct DoneView {
    pub service: String,
    pub provider: String,
    /// `None` while the provider has not yet recorded the member (the issuer's notifier retries).
    pub member_since: Option<String>,
    pub applications: Vec<ApplicationLine>,
    pub capacity: u32,
    pub free: u32,
}

/// Groups digits by thousands with no-break spaces: `8 192`, `32 768` (the design's figures).
pub fn bytes(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 * 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{a0}');
        }
        out.push(c);
    }
    out
}

/// The UTC calendar time of a Unix time, `2025-03-01 14:05 UTC`.
pub fn utc(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs = unix_seconds % 86_400;
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), after H. Hinnant's algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3_600,
        secs % 3_600 / 60
    )
}

/// The page around every screen.
pub fn layout(frame: &Frame<'_>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if frame.refresh == Refresh::EverySecond {
                    meta http-equiv="refresh" content="1";
                }
                title { (title) " · " (frame.provider) }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header.top {
                    div.brand {
                        span.mark aria-hidden="true" { (initial(frame.provider)) }
                        span.name { (frame.provider) }
                    }
                    span.tagline { "Add a service to your card" }
                }
                nav.steps aria-label="Steps" {
                    ol {
                        @for (i, stage) in Stage::ALL.iter().enumerate() {
                            li class=[stage_class(*stage, frame.stage)]
                                aria-current=[(*stage == frame.stage).then_some("step")] {
                                span.dot { (i + 1) }
                                span.label { (stage.label()) }
                            }
                        }
                    }
                }
                main.panel id="screen" { (body) }
                footer.foot {
                    "This page is served by your own computer and reaches only your card, "
                    "the card's issuer and " (frame.provider) "."
                }
            }
        }
    }
}

fn stage_class(stage: Stage, current: Stage) -> Option<&'static str> {
    match stage.cmp(&current) {
        std::cmp::Ordering::Less => Some("done"),
        std::cmp::Ordering::Equal => Some("current"),
        std::cmp::Ordering::Greater => None,
    }
}

fn initial(name: &str) -> String {
    name.chars()
        .find(|c| c.is_alphanumeric())
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default()
}

fn csrf_field(frame: &Frame<'_>) -> Markup {
    html! { input type="hidden" name="csrf" value=(frame.csrf); }
}

fn checklist(items: &[CheckItem]) -> Markup {
    html! {
        ol.checklist {
            @for item in items {
                li class=(mark_class(item.mark)) {
                    span.tick aria-hidden="true" { (mark_symbol(item.mark)) }
                    span.what {
                        span.label { (item.label) }
                        @if let Some(note) = &item.note { span.note { (note) } }
                    }
                }
            }
        }
    }
}

fn mark_class(mark: Mark) -> &'static str {
    match mark {
        Mark::Waiting => "waiting",
        Mark::Running => "running",
        Mark::Done => "done",
        Mark::Failed => "failed",
    }
}

fn mark_symbol(mark: Mark) -> &'static str {
    match mark {
        Mark::Waiting => "",
        Mark::Running => "◐",
        Mark::Done => "✓",
        Mark::Failed => "✕",
    }
}

/// The capacity bar: used part filled, free part open, and the numbers in words.
fn capacity(capacity: u32, free: u32) -> Markup {
    let free = free.min(capacity);
    let used_per_mille = if capacity == 0 {
        0
    } else {
        u64::from(capacity - free) * 1000 / u64::from(capacity)
    };
    html! {
        div.capacity {
            svg.bar viewBox="0 0 1000 10" preserveAspectRatio="none" role="img"
                aria-label=(format!("{} of {} bytes free", bytes(free), bytes(capacity))) {
                rect.track x="0" y="0" width="1000" height="10" rx="5" {}
                rect.used x="0" y="0" width=(used_per_mille) height="10" rx="5" {}
            }
            p.figures id="capacity" {
                strong { (bytes(free)) } " of " (bytes(capacity)) " bytes free"
            }
        }
    }
}

fn applications(apps: &[ApplicationLine]) -> Markup {
    html! {
        @if apps.is_empty() {
            p.muted id="applications" { "No applications on your card yet." }
        } @else {
            ul.apps id="applications" {
                @for app in apps {
                    li {
                        span.app-name { (app.name) }
                        span.app-meta { "version " (app.version) " · " (bytes(app.size)) " bytes" }
                    }
                }
            }
        }
    }
}

/// (a) insert card.
pub fn insert_card(frame: &Frame<'_>, view: &InsertCardView) -> Markup {
    let body = html! {
        h1 { "Insert your card" }
        p.lead {
            "Put your card in the reader. " (frame.provider)
            " will then show you its membership terms and the services you can add."
        }
        dl.facts {
            dt { "Reader" } dd id="reader" { (view.reader) }
            dt { "Card" }
            dd id="card-state" {
                @match &view.state {
                    ReaderState::NoCard { detail } => {
                        span.waiting-dot aria-hidden="true" {}
                        "Waiting for a card… "
                        span.muted { "(" (detail) ")" }
                    }
                    ReaderState::Card { card_id, capacity, free, .. } => {
                        "Card " code { (short_id(card_id)) } " · "
                        (bytes(*free)) " of " (bytes(*capacity)) " bytes free"
                    }
                    ReaderState::Busy => { "Your card is busy…" }
                }
            }
        }
        @if let Some(service) = &view.unfinished {
            div.notice {
                p { "A download of " strong { (service) } " to this card did not finish." }
                form method="post" action="/resume" {
                    (csrf_field(frame))
                    button.primary type="submit" { "Continue the download" }
                }
            }
        }
        @if matches!(view.state, ReaderState::Card { .. }) && view.unfinished.is_none() {
            form.actions method="post" action="/card" {
                (csrf_field(frame))
                button.primary type="submit" id="continue" { "Continue" }
            }
        }
    };
    layout(frame, "Insert your card", body)
}

fn short_id(card_id: &str) -> String {
    if card_id.len() > 12 {
        format!("{}…{}", &card_id[..6], &card_id[card_id.len() - 4..])
    } else {
        card_id.to_string()
    }
}

/// (b) membership terms.
pub fn terms(frame: &Frame<'_>, view: &TermsView) -> Markup {
    let body = html! {
        h1 { (frame.provider) " membership terms" }
        p.lead { "Please read the terms. Your card will sign that you accepted this version." }
        div.terms-box tabindex="0" id="terms-text" {
            @for line in view.text.lines().filter(|l| !l.trim().is_empty()) {
                p { (line) }
            }
        }
        p.muted { "Version " (view.version) }
        form method="post" action="/terms" {
            (csrf_field(frame))
            @if view.unticked {
                p.field-error role="alert" id="unticked" { "Tick 'I agree' to continue." }
            }
            label.agree {
                input type="checkbox" name="agree" value="yes" id="agree";
                span { "I agree to the membership terms" }
            }
            div.actions {
                button.primary type="submit" id="continue" { "Continue" }
            }
        }
    };
    layout(frame, "Membership terms", body)
}

/// (c) checking.
pub fn checking(frame: &Frame<'_>, view: &CheckingView) -> Markup {
    let body = html! {
        h1 { "Checking your card with " (view.issuer) "…" }
        p.lead { "Your card proves who it is; " (view.issuer) " confirms it is registered and how much room it has." }
        (checklist(&view.steps))
    };
    layout(frame, "Checking your card", body)
}

/// (d) card verified, choose a service.
pub fn services(frame: &Frame<'_>, view: &ServicesView) -> Markup {
    let any_choice = view.services.iter().any(|s| s.fit == Fit::Fits);
    let body = html! {
        div.verified id="verified" {
            span.seal aria-hidden="true" { "✓" }
            div {
                p.verified-title { "Card verified" }
                p.muted { "by " (view.issuer) " · card " code { (short_id(&view.card_id)) } }
            }
        }
        p.holder id="holder" { "Holder: " strong { (view.holder) } }
        @if view.unfinished {
            div.notice id="unfinished" {
                p { "A download to this card was started and has not finished." }
                form method="post" action="/resume" {
                    (csrf_field(frame))
                    button.primary type="submit" { "Finish that download" }
                }
            }
        }
        h2 { "Room on your card" }
        (capacity(view.capacity, view.free))
        h2 { "On your card" }
        (applications(&view.applications))
        h2 { "Services from " (frame.provider) }
        form method="post" action="/services" {
            (csrf_field(frame))
            ul.services id="services" {
                @for s in &view.services {
                    @let id = format!("service-{}", s.service_id);
                    @let selectable = s.fit == Fit::Fits;
                    li class=(if selectable { "service" } else { "service unavailable" }) {
                        input type="radio" name="service" value=(s.service_id) id=(id)
                            disabled[!selectable]
                            checked[selectable && view.chosen.as_deref() == Some(s.service_id.as_str())];
                        label for=(id) {
                            span.service-name { (s.name) }
                            span.service-desc { (s.description) }
                            span.service-meta { (s.application) " · " (bytes(s.size)) " bytes" }
                            @match s.fit {
                                Fit::Fits => {}
                                Fit::Installed => { span.why { "Already on your card" } }
                                Fit::TooLarge { needs, free } => {
                                    span.why {
                                        "Needs " (bytes(needs)) " bytes; your card has "
                                        (bytes(free)) " bytes free."
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div.actions {
                button.primary type="submit" id="choose" disabled[!any_choice] { "Choose" }
            }
        }
    };
    layout(frame, "Card verified", body)
}

/// (e)(f) the download application.
pub fn application(frame: &Frame<'_>, view: &ApplicationView) -> Markup {
    let body = html! {
        h1 { (view.provider) " asks you to apply for " (view.service) " with your card's signature" }
        p.lead { "Check what your card will sign. Nothing is installed until the issuer and "
            (view.provider) " both agree and your card checks the application." }
        dl.facts.application id="application" {
            dt { "Service" } dd { (view.service) }
            dt { "Application" } dd { (view.application) }
            dt { "Application ID" } dd { code { (view.aid) } }
            dt { "Version" } dd { (view.version) }
            dt { "Size" } dd { (bytes(view.size)) " bytes" }
            dt { "Provider" } dd { (view.provider) }
            dt { "Issuer" } dd { (view.issuer) }
            dt { "Valid until" } dd { (view.valid_until) }
        }
        form.actions method="post" action="/application" {
            (csrf_field(frame))
            a.button.secondary href="/services" { "Back" }
            button.primary type="submit" id="apply" { "Apply" }
        }
    };
    layout(frame, "Download application", body)
}

/// (g) PIN.
pub fn sign(frame: &Frame<'_>, view: &SignView) -> Markup {
    let body = html! {
        h1 { "Sign with your card" }
        p.lead { "Enter your card's PIN. Your card signs the application for "
            strong { (view.service) } "; the PIN goes to the card only." }
        form method="post" action="/sign" autocomplete="off" {
            (csrf_field(frame))
            @if let Some(notice) = &view.notice {
                p.field-error role="alert" id="pin-notice" { (notice) }
            }
            label.field for="pin" { "PIN" }
            input #pin type="password" name="pin" inputmode="numeric" pattern="[0-9]{4,12}"
                minlength="4" maxlength="12" required autocomplete="off" autofocus;
            @if let Some(tries) = view.tries_left {
                p.muted id="tries" { (tries_text(tries)) " before the card is blocked." }
            }
            div.actions {
                button.primary type="submit" id="sign" { "Sign" }
            }
        }
    };
    layout(frame, "Sign", body)
}

/// "1 try left", "3 tries left".
pub fn tries_text(tries: u8) -> String {
    if tries == 1 {
        "1 try left".to_string()
    } else {
        format!("{tries} tries left")
    }
}

/// A wait for a party's answer (no card work): a title, a line, a spinner.
pub fn waiting(frame: &Frame<'_>, title: &str, lead: &str) -> Markup {
    let body = html! {
        h1 { (title) }
        p.lead { (lead) }
        div.spinner aria-hidden="true" {}
    };
    layout(frame, title, body)
}

/// (h) signing.
pub fn signing(frame: &Frame<'_>) -> Markup {
    let body = html! {
        h1 { "Your card is signing the application…" }
        p.lead { "Keep your card in the reader." }
        div.spinner aria-hidden="true" {}
    };
    layout(frame, "Signing", body)
}

/// S8–S15.
pub fn progress(frame: &Frame<'_>, view: &ProgressView) -> Markup {
    let body = html! {
        h1 { "Adding " (view.service) " to your card…" }
        p.lead { "Keep your card in the reader until this is done." }
        (checklist(&view.steps))
    };
    layout(frame, "Installing", body)
}

/// (i) the service has started.
pub fn done(frame: &Frame<'_>, view: &DoneView) -> Markup {
    let body = html! {
        div.verified.started id="started" {
            span.seal aria-hidden="true" { "✓" }
            div {
                p.verified-title { (view.service) " has started" }
                @match &view.member_since {
                    Some(since) => p id="member" { "Member of " (view.provider) " since " (since) },
                    None => p.muted id="member" {
                        "Installed. " (view.provider) " is being told about your membership…"
                    },
                }
            }
        }
        h2 { "Room on your card" }
        (capacity(view.capacity, view.free))
        h2 { "On your card now" }
        (applications(&view.applications))
        form.actions method="post" action="/finish" {
            (csrf_field(frame))
            button.primary type="submit" id="finish" { "Finish" }
        }
    };
    layout(frame, "Service started", body)
}

/// `/problem`: what happened in words and the next action.
pub fn problem(frame: &Frame<'_>, problem: &Problem) -> Markup {
    let body = html! {
        div.problem role="alert" id="problem" {
            h1 { (problem.title) }
            p id="problem-message" { (problem.message) }
            p.next id="problem-advice" { (problem.advice) }
        }
        (action_buttons(frame, &problem.action))
        @if !problem.detail.is_empty() {
            details.technical {
                summary { "Technical details" }
                pre { (problem.detail) }
            }
        }
    };
    layout(frame, &problem.title, body)
}

fn action_buttons(frame: &Frame<'_>, action: &Action) -> Markup {
    let start_over = |class: &str| {
        html! {
            form.inline method="post" action="/finish" {
                (csrf_field(frame))
                button class=(class) type="submit" id="start-over" { "Start over" }
            }
        }
    };
    html! {
        div.actions {
            @match action {
                Action::ChooseAnother => {
                    a.button.primary href="/services" id="next" { "Choose another service" }
                    (start_over("secondary"))
                }
                Action::EnterPinAgain => {
                    a.button.primary href="/sign" id="next" { "Enter the PIN again" }
                    (start_over("secondary"))
                }
                Action::Continue => {
                    form.inline method="post" action="/resume" {
                        (csrf_field(frame))
                        button.primary type="submit" id="next" { "Continue" }
                    }
                    (start_over("secondary"))
                }
                Action::ReadTerms => {
                    a.button.primary href="/terms" id="next" { "Read the terms again" }
                }
                Action::Contact { .. }
                | Action::Register { .. }
                | Action::StartOver
                | Action::StartAfresh => {
                    (start_over("primary"))
                }
            }
        }
    }
}

/// A page for a refused request to the local server itself (no session, no frame).
pub fn refused(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                link rel="stylesheet" href="/style.css";
            }
            body {
                main.panel {
                    div.problem role="alert" {
                        h1 { (title) }
                        p { (message) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame<'static> {
        Frame {
            provider: "Tram & Co",
            stage: Stage::Choose,
            refresh: Refresh::Off,
            csrf: "c0ffee",
        }
    }

    #[test]
    fn bytes_are_grouped_by_thousands() {
        assert_eq!(bytes(0), "0");
        assert_eq!(bytes(999), "999");
        assert_eq!(bytes(8192), "8\u{a0}192");
        assert_eq!(bytes(32768), "32\u{a0}768");
        assert_eq!(bytes(1_048_576), "1\u{a0}048\u{a0}576");
    }

    #[test]
    fn utc_dates_are_civil() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13 UTC");
    }

    #[test]
    fn services_disable_what_does_not_fit_and_say_both_numbers() {
        let view = ServicesView {
            issuer: "Issuer".into(),
            holder: "Ada <Lovelace>".into(),
            card_id: "00112233445566778899aabbccddeeff".into(),
            capacity: 32768,
            free: 8192,
            applications: vec![],
            services: vec![
                ServiceChoice {
                    service_id: "tickets".into(),
                    name: "Tickets".into(),
                    description: "Tram tickets".into(),
                    application: "Ticket wallet".into(),
                    size: 1200,
                    fit: Fit::Fits,
                },
                ServiceChoice {
                    service_id: "big".into(),
                    name: "Big".into(),
                    description: "Too big".into(),
                    application: "Big app".into(),
                    size: 12480,
                    fit: Fit::TooLarge {
                        needs: 12480,
                        free: 8192,
                    },
                },
            ],
            chosen: None,
            unfinished: false,
        };
        let page = services(&frame(), &view).into_string();
        assert!(page.contains("Card verified"));
        assert!(page.contains("Ada &lt;Lovelace&gt;"), "escaped: {page}");
        assert!(page.contains("Tram &amp; Co"));
        assert!(page.contains("8\u{a0}192</strong> of 32\u{a0}768 bytes free"));
        assert!(
            page.contains(r#"value="big" id="service-big" disabled"#),
            "{page}"
        );
        assert!(page.contains("Needs 12\u{a0}480 bytes; your card has 8\u{a0}192 bytes free."));
        assert!(page.contains(r#"name="csrf" value="c0ffee""#));
        assert!(!page.contains("<script"));
        assert!(!page.contains("style="));
        assert!(!page.contains("http-equiv"));
    }

    #[test]
    fn a_running_job_refreshes_the_page_every_second() {
        let mut f = frame();
        f.refresh = Refresh::EverySecond;
        let page = signing(&f).into_string();
        assert!(page.contains(r#"<meta http-equiv="refresh" content="1">"#));
    }

    #[test]
    fn the_step_indicator_marks_done_and_current_steps() {
        let page = signing(&Frame {
            stage: Stage::Sign,
            ..frame()
        })
        .into_string();
        assert_eq!(page.matches(r#"<li class="done">"#).count(), 5, "{page}");
        assert!(
            page.contains(r#"<li class="current" aria-current="step">"#),
            "{page}"
        );
    }
}
