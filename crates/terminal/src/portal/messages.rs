//! What went wrong, in words a card holder understands, and what to do next: the one table
//! from [`FlowError`] (party codes, card status words, unreachable servers, a card pulled out)
//! to a [`Problem`] shown on `/problem` (docs/app-download.md §6, errors table). Technical
//! detail (step, code, status word) goes under "Technical details", never in the sentence.

use apdu::chaining::TransceiveError;

use crate::download;
use crate::flows::FlowError;
use crate::ClientError;

use super::pages::{bytes, tries_text};

/// A failure as the portal shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A short heading.
    pub title: String,
    /// What happened, in a sentence or two naming the party and the numbers.
    pub message: String,
    /// What the user can do.
    pub advice: String,
    /// The button the page offers.
    pub action: Action,
    /// The error as the flow reported it (step, code, status word).
    pub detail: String,
}

/// The next action a problem page offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Back to (d).
    ChooseAnother,
    /// Back to (g).
    EnterPinAgain,
    /// Resume the download where it stopped (the card is back, the server answers again, a new
    /// attempt after a damaged package).
    Continue,
    /// Back to (b), for a new acceptance.
    ReadTerms,
    /// Nothing the portal can do: the named party must act. The page offers to start over.
    Contact { party: String },
    /// The card must be registered first (`cardwright terminal register`).
    Register { issuer: String },
    /// Begin again at (a): the old operation cannot go on.
    StartOver,
    /// Begin again at (a) with a new operation: the journalled one can never complete (its
    /// request expired, or it is not this card's), so "Start over" removes it from the
    /// journal first instead of offering to continue it.
    StartAfresh,
}

/// Whether the card already holds the application when the failure happens (after T8 the
/// application is installed and only the confirmation is pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnCard {
    NotYet,
    Installed,
}

/// What the portal knows around a failure, for the words.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    pub issuer: &'a str,
    pub provider: &'a str,
    /// Base URLs, to tell which party a connection failure was with.
    pub issuer_url: &'a str,
    pub provider_url: &'a str,
    /// The application being added, once chosen.
    pub application: Option<&'a str>,
    /// Its size, once chosen.
    pub needs: Option<u32>,
    /// The card's free bytes as last seen.
    pub free: Option<u32>,
    pub on_card: OnCard,
}

impl Situation<'_> {
    fn application(&self) -> &str {
        self.application.unwrap_or("The application")
    }

    /// The party a URL belongs to.
    fn party_at(&self, url: &str) -> &str {
        if !self.provider_url.is_empty() && url.starts_with(self.provider_url) {
            self.provider
        } else if !self.issuer_url.is_empty() && url.starts_with(self.issuer_url) {
            self.issuer
        } else {
            "the server"
        }
    }
}

fn problem(
    title: impl Into<String>,
    message: impl Into<String>,
    advice: impl Into<String>,
    action: Action,
    detail: String,
) -> Problem {
    Problem {
        title: title.into(),
        message: message.into(),
        advice: advice.into(),
        action,
        detail,
    }
}

/// The words for a flow's failure.
pub fn explain(error: &FlowError, s: &Situation<'_>) -> Problem {
    let detail = error.to_string();
    if let (Some(status), FlowError::Card { step, .. }) = (error.card_status(), error) {
        return card_refusal(status.0, step, s, detail);
    }
    match error {
        FlowError::Card {
            source:
                ClientError::Transport {
                    source: TransceiveError::Transport(_),
                    ..
                },
            ..
        } => return card_removed(s, detail),
        FlowError::Party { source, .. } => {
            if let Some(p) = party_problem(source, s, &detail) {
                return p;
            }
        }
        _ => {}
    }
    something_went_wrong(s, detail)
}

/// The card could not be reached at all (the reader has no card, or it was pulled out).
pub fn card_removed(s: &Situation<'_>, detail: String) -> Problem {
    let message = match s.on_card {
        OnCard::NotYet => "Your card was removed. Nothing was lost.",
        OnCard::Installed => {
            "Your card was removed. The application is on your card; nothing was lost."
        }
    };
    problem(
        "Card removed",
        message,
        "Put it back in the reader and press Continue: the download picks up where it stopped.",
        Action::Continue,
        detail,
    )
}

/// The capacity refusal, with both numbers when they are known.
pub fn not_enough_room(s: &Situation<'_>, detail: String) -> Problem {
    let message = match (s.needs, s.free) {
        (Some(needs), Some(free)) => format!(
            "Not enough room on your card. {} needs {} bytes; your card has {} bytes free.",
            s.application(),
            bytes(needs),
            bytes(free)
        ),
        _ => format!(
            "Not enough room on your card for {}.",
            s.application.unwrap_or("this application")
        ),
    };
    problem(
        "This service does not fit",
        message,
        "Remove an application you no longer use, or choose another service.",
        Action::ChooseAnother,
        detail,
    )
}

/// The application (or the membership) is already on the card.
pub fn already_on_card(s: &Situation<'_>, detail: String) -> Problem {
    problem(
        "Already on your card",
        format!("{} is already on your card.", s.application()),
        "Choose another service.",
        Action::ChooseAnother,
        detail,
    )
}

/// The card's refusal `status` at `step`: the same status word means different things for
/// different commands (SIGN DOWNLOAD APPLICATION's `6984` is an expired request, INSTALL's a
/// refused authorization).
fn card_refusal(status: u16, step: &str, s: &Situation<'_>, detail: String) -> Problem {
    match status {
        0x6A84 => not_enough_room(s, detail),
        0x63C1..=0x63CF => problem(
            "Wrong PIN",
            format!(
                "That PIN is not correct. {} before the card is blocked.",
                tries_text((status & 0x0F) as u8)
            ),
            "Enter the PIN again. Take care: a blocked card needs its issuer.",
            Action::EnterPinAgain,
            detail,
        ),
        0x63C0 | 0x6983 => problem(
            "PIN blocked",
            "Your card's PIN is blocked. Nothing was changed on your card.",
            format!("Only {} can unblock it: contact them.", s.issuer),
            Action::Contact {
                party: s.issuer.to_string(),
            },
            detail,
        ),
        0x6982 => problem(
            "PIN needed",
            "Your card needs its PIN before it signs.",
            "Enter your PIN.",
            Action::EnterPinAgain,
            detail,
        ),
        0x6984 if step == download::SIGN_STEP => form_expired(s, detail),
        0x6A80 if step == download::SIGN_STEP => form_not_for_this_card(s, detail),
        0x6A80 | 0x6984 if step == download::INSTALL_STEP => damaged(s, detail),
        _ => something_went_wrong(s, detail),
    }
}

/// SIGN DOWNLOAD APPLICATION `6984`: the provider's request ended before the card's time
/// floor (the PIN screen was left open too long). That request can never be signed: a new
/// operation is needed, not the journalled one again.
fn form_expired(s: &Situation<'_>, detail: String) -> Problem {
    problem(
        "The application form has expired",
        format!(
            "The application form from {} expired before your card signed it. Nothing was changed on your card.",
            s.provider
        ),
        "Start over to get a new application form, then sign it with your PIN straight away.",
        Action::StartAfresh,
        detail,
    )
}

/// SIGN DOWNLOAD APPLICATION `6A80`: the request names another card or another issuer than the
/// card's (or cannot be read). This card will never sign it.
fn form_not_for_this_card(s: &Situation<'_>, detail: String) -> Problem {
    problem(
        "This application form is not for your card",
        format!(
            "Your card refused to sign the application form from {}: it is made out for another card, or for a card of another issuer than {}. Nothing was changed on your card.",
            s.provider, s.issuer
        ),
        "Start over with the card you want the service on in the reader: you will get a new application form.",
        Action::StartAfresh,
        detail,
    )
}

fn damaged(_s: &Situation<'_>, detail: String) -> Problem {
    problem(
        "The application arrived damaged",
        "The application arrived damaged and was not installed. Your card is unchanged.",
        "Try again: the application is sent afresh.",
        Action::Continue,
        detail,
    )
}

fn party_problem(
    source: &party_api::ClientError,
    s: &Situation<'_>,
    detail: &str,
) -> Option<Problem> {
    use party_api::ClientError as E;
    let detail = detail.to_string();
    let unreachable = |party: &str| unreachable(party, s, detail.clone());
    match source {
        E::Transport { url, .. } | E::InvalidUrl { url, .. } => Some(unreachable(s.party_at(url))),
        E::Refused {
            code, status, url, ..
        } => {
            let by = s.party_at(url);
            Some(match code.as_str() {
                "insufficient_capacity" => not_enough_room(s, detail),
                "provider_unreachable" => unreachable(s.provider),
                "issuer_unreachable" => unreachable(s.issuer),
                c if c.ends_with("_unreachable") => unreachable(by),
                "card_not_registered" | "unknown_card" => problem(
                    "Card not registered",
                    format!("This card is not registered with {}.", s.issuer),
                    format!(
                        "Register it first with {} (cardwright terminal register), then start again.",
                        s.issuer
                    ),
                    Action::Register {
                        issuer: s.issuer.to_string(),
                    },
                    detail,
                ),
                "registration_revoked" => problem(
                    "Card reported lost or stolen",
                    format!(
                        "This card has been reported lost or stolen to {}.",
                        s.issuer
                    ),
                    format!("Contact {}.", s.issuer),
                    Action::Contact {
                        party: s.issuer.to_string(),
                    },
                    detail,
                ),
                "registration_expired" => problem(
                    "Registration expired",
                    format!("This card's registration with {} has expired.", s.issuer),
                    format!("Contact {}.", s.issuer),
                    Action::Contact {
                        party: s.issuer.to_string(),
                    },
                    detail,
                ),
                "registry_out_of_sync" => problem(
                    "Records out of date",
                    format!(
                        "{}'s record of your card does not match what your card says. Nothing was changed on your card.",
                        s.issuer
                    ),
                    format!("Contact {}.", s.issuer),
                    Action::Contact {
                        party: s.issuer.to_string(),
                    },
                    detail,
                ),
                "provider_refused" => problem(
                    format!("{} refused", s.provider),
                    format!(
                        "{} refused to give its consent to this download. Nothing was changed on your card.",
                        s.provider
                    ),
                    format!("Contact {}.", s.provider),
                    Action::Contact {
                        party: s.provider.to_string(),
                    },
                    detail,
                ),
                "terms_outdated" => problem(
                    "The terms have changed",
                    format!(
                        "{} has changed its membership terms since you accepted them.",
                        s.provider
                    ),
                    "Read the terms again.",
                    Action::ReadTerms,
                    detail,
                ),
                // The provider's service installs another issuer's application.
                "issuer_mismatch" => problem(
                    "Not for cards of your issuer",
                    format!(
                        "{} from {} is for cards of another issuer; your card is from {}. Nothing was changed on your card.",
                        s.application.unwrap_or("This service"),
                        s.provider,
                        s.issuer
                    ),
                    "Choose another service.",
                    Action::ChooseAnother,
                    detail,
                ),
                "already_installed" | "already_member" => already_on_card(s, detail),
                "download_in_progress" => problem(
                    "A download is not finished",
                    format!(
                        "A download of {} to your card has not finished yet.",
                        s.application.unwrap_or("this application")
                    ),
                    "Continue it: it picks up where it stopped.",
                    Action::Continue,
                    detail,
                ),
                "quota_exceeded" | "provider_not_allowed" => problem(
                    "Not allowed on this card",
                    format!(
                        "{} does not allow {} on your card.",
                        s.issuer,
                        s.application.unwrap_or("this application")
                    ),
                    format!("Contact {}.", s.issuer),
                    Action::Contact {
                        party: s.issuer.to_string(),
                    },
                    detail,
                ),
                // The card-signed application the journal holds is past its end: only a new
                // operation can go on.
                "application_expired" => problem(
                    "Took too long",
                    "The application expired before it was sent. Nothing was changed on your card.",
                    "Start again: it takes a minute.",
                    Action::StartAfresh,
                    detail,
                ),
                "authorization_expired" | "nonce_expired" | "nonce_spent" => problem(
                    "Took too long",
                    "The application expired before it was sent. Nothing was changed on your card.",
                    "Start again: it takes a minute.",
                    Action::StartOver,
                    detail,
                ),
                _ if *status >= 500 => unreachable(by),
                _ => return None,
            })
        }
        E::InvalidResponse { .. } | E::InvalidRequest { .. } => None,
    }
}

fn unreachable(party: &str, s: &Situation<'_>, detail: String) -> Problem {
    let message = match s.on_card {
        OnCard::NotYet => format!("Can't reach {party} right now. Your card is unchanged."),
        OnCard::Installed => format!(
            "Can't reach {party} right now. The application is on your card; the confirmation will be sent when {} answers.",
            s.issuer
        ),
    };
    problem(
        format!("Can't reach {party}"),
        message,
        "Check your Internet connection, then Try again.",
        Action::Continue,
        detail,
    )
}

fn something_went_wrong(s: &Situation<'_>, detail: String) -> Problem {
    let message = match s.on_card {
        OnCard::NotYet => "Something went wrong. Nothing was changed on your card.".to_string(),
        OnCard::Installed => format!(
            "Something went wrong. The application is on your card; the confirmation will be sent when {} answers.",
            s.issuer
        ),
    };
    problem(
        "Something went wrong",
        message,
        format!("Try again. If it happens again, contact {}.", s.issuer),
        Action::Continue,
        detail,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use apdu::Status;

    fn situation() -> Situation<'static> {
        Situation {
            issuer: "Kanto Card Issuer",
            provider: "Tram & Co",
            issuer_url: "http://127.0.0.1:7001",
            provider_url: "http://127.0.0.1:7002",
            application: Some("Ticket wallet"),
            needs: Some(12480),
            free: Some(8192),
            on_card: OnCard::NotYet,
        }
    }

    fn card(sw: u16) -> FlowError {
        card_at(crate::download::SIGN_STEP, sw)
    }

    fn card_at(step: &'static str, sw: u16) -> FlowError {
        FlowError::Card {
            step,
            source: ClientError::Refused {
                command: "SIGN DOWNLOAD APPLICATION",
                status: Status(sw),
                meaning: crate::meaning(Status(sw)),
            },
        }
    }

    fn party(url: &str, status: u16, code: &str) -> FlowError {
        FlowError::Party {
            step: "opening the download",
            source: party_api::ClientError::Refused {
                method: "POST".into(),
                url: format!("{url}/v1/downloads"),
                status,
                code: code.into(),
                message: "refused".into(),
            },
        }
    }

    fn no_answer(url: &str) -> FlowError {
        FlowError::Party {
            step: "checking the card",
            source: party_api::ClientError::Transport {
                url: format!("{url}/v1/cards"),
                detail: "connection refused".into(),
            },
        }
    }

    #[test]
    fn capacity_names_the_application_and_both_numbers_from_card_or_issuer() {
        let s = situation();
        let want = "Not enough room on your card. Ticket wallet needs 12\u{a0}480 bytes; your card has 8\u{a0}192 bytes free.";
        for e in [
            card(0x6A84),
            party(s.issuer_url, 409, "insufficient_capacity"),
        ] {
            let p = explain(&e, &s);
            assert_eq!(p.message, want);
            assert_eq!(
                p.advice,
                "Remove an application you no longer use, or choose another service."
            );
            assert_eq!(p.action, Action::ChooseAnother);
        }
    }

    #[test]
    fn pin_words_count_the_tries_and_a_block_sends_to_the_issuer() {
        let s = situation();
        let p = explain(&card(0x63C2), &s);
        assert_eq!(
            p.message,
            "That PIN is not correct. 2 tries left before the card is blocked."
        );
        assert_eq!(p.action, Action::EnterPinAgain);
        assert!(explain(&card(0x63C1), &s).message.contains("1 try left"));
        for sw in [0x6983, 0x63C0] {
            let p = explain(&card(sw), &s);
            assert_eq!(
                p.message,
                "Your card's PIN is blocked. Nothing was changed on your card."
            );
            assert_eq!(
                p.advice,
                "Only Kanto Card Issuer can unblock it: contact them."
            );
        }
    }

    #[test]
    fn a_card_pulled_out_says_nothing_was_lost_and_continues() {
        let e = FlowError::Card {
            step: "loading",
            source: ClientError::Transport {
                command: "LOAD",
                source: TransceiveError::Transport(crate::ChannelError::Transport {
                    detail: "no card".into(),
                }),
            },
        };
        let p = explain(&e, &situation());
        assert_eq!(p.message, "Your card was removed. Nothing was lost.");
        assert_eq!(
            p.advice,
            "Put it back in the reader and press Continue: the download picks up where it stopped."
        );
        assert_eq!(p.action, Action::Continue);
    }

    #[test]
    fn an_unreachable_server_is_named_and_after_installation_the_card_is_said_to_hold_it() {
        let mut s = situation();
        let p = explain(&no_answer(s.issuer_url), &s);
        assert_eq!(
            p.message,
            "Can't reach Kanto Card Issuer right now. Your card is unchanged."
        );
        assert_eq!(p.advice, "Check your Internet connection, then Try again.");
        let p = explain(&no_answer(s.provider_url), &s);
        assert!(p.message.starts_with("Can't reach Tram & Co right now."));
        let p = explain(&party(s.issuer_url, 502, "provider_unreachable"), &s);
        assert!(p.message.starts_with("Can't reach Tram & Co right now."));
        s.on_card = OnCard::Installed;
        let p = explain(&no_answer(s.issuer_url), &s);
        assert_eq!(
            p.message,
            "Can't reach Kanto Card Issuer right now. The application is on your card; the confirmation will be sent when Kanto Card Issuer answers."
        );
    }

    #[test]
    fn registration_states_have_their_own_sentences() {
        let s = situation();
        let cases = [
            (
                "card_not_registered",
                "This card is not registered with Kanto Card Issuer.",
            ),
            (
                "registration_revoked",
                "This card has been reported lost or stolen to Kanto Card Issuer.",
            ),
            (
                "registration_expired",
                "This card's registration with Kanto Card Issuer has expired.",
            ),
        ];
        for (code, want) in cases {
            let p = explain(&party(s.issuer_url, 409, code), &s);
            assert_eq!(p.message, want, "{code}");
        }
        assert!(matches!(
            explain(&party(s.issuer_url, 409, "card_not_registered"), &s).action,
            Action::Register { .. }
        ));
    }

    #[test]
    fn damaged_packages_and_refused_authorizations_offer_a_new_attempt() {
        for sw in [0x6A80, 0x6984] {
            let p = explain(&card_at(crate::download::INSTALL_STEP, sw), &situation());
            assert!(p
                .message
                .starts_with("The application arrived damaged and was not installed."));
            assert_eq!(p.action, Action::Continue);
        }
    }

    #[test]
    fn an_expired_application_form_is_not_signed_again_but_started_afresh() {
        // SIGN DOWNLOAD APPLICATION 6984: the provider's request is past the card's time floor
        // (the PIN screen was left open too long). Signing the journalled request again can
        // never succeed: a new operation, not Continue.
        let p = explain(&card(0x6984), &situation());
        assert_eq!(p.title, "The application form has expired");
        assert_eq!(
            p.message,
            "The application form from Tram & Co expired before your card signed it. Nothing was changed on your card."
        );
        assert_eq!(
            p.advice,
            "Start over to get a new application form, then sign it with your PIN straight away."
        );
        assert_eq!(p.action, Action::StartAfresh);
        assert!(p.detail.contains("6984"), "{}", p.detail);
    }

    #[test]
    fn an_application_form_for_another_card_is_not_signed_again_but_started_afresh() {
        // SIGN DOWNLOAD APPLICATION 6A80: the request names another card or issuer.
        let p = explain(&card(0x6A80), &situation());
        assert_eq!(p.title, "This application form is not for your card");
        assert_eq!(
            p.message,
            "Your card refused to sign the application form from Tram & Co: it is made out for another card, or for a card of another issuer than Kanto Card Issuer. Nothing was changed on your card."
        );
        assert_eq!(
            p.advice,
            "Start over with the card you want the service on in the reader: you will get a new application form."
        );
        assert_eq!(p.action, Action::StartAfresh);
    }

    #[test]
    fn the_same_status_words_at_other_steps_are_neither_damage_nor_an_expired_form() {
        // VERIFY's bad PIN format, GET RECEIPT's bad digest length: a plain failure.
        for (step, sw) in [
            ("verifying the PIN", 0x6A80),
            ("reading what the card holds", 0x6A80),
            ("checking the card with its issuer", 0x6984),
        ] {
            let p = explain(&card_at(step, sw), &situation());
            assert_eq!(p.title, "Something went wrong", "{step}");
            assert_eq!(p.action, Action::Continue, "{step}");
        }
    }

    #[test]
    fn an_application_the_issuer_finds_expired_is_started_afresh_too() {
        // The card signed in time, but the issuer got it after the request's end: resending the
        // journalled application can never succeed either.
        let s = situation();
        let p = explain(&party(s.issuer_url, 422, "application_expired"), &s);
        assert_eq!(p.title, "Took too long");
        assert_eq!(p.action, Action::StartAfresh);
        // A check's nonce is the check's alone: the download itself may go on.
        let p = explain(&party(s.issuer_url, 409, "nonce_expired"), &s);
        assert_eq!(p.action, Action::StartOver);
    }

    #[test]
    fn sync_provider_and_terms_name_the_party_to_turn_to() {
        let s = situation();
        let p = explain(&party(s.issuer_url, 409, "registry_out_of_sync"), &s);
        assert!(p.message.starts_with("Kanto Card Issuer's record"));
        assert_eq!(p.advice, "Contact Kanto Card Issuer.");
        let p = explain(&party(s.issuer_url, 502, "provider_refused"), &s);
        assert!(p.message.starts_with("Tram & Co refused"));
        assert_eq!(p.advice, "Contact Tram & Co.");
        let p = explain(&party(s.provider_url, 422, "terms_outdated"), &s);
        assert_eq!(
            p.message,
            "Tram & Co has changed its membership terms since you accepted them."
        );
        assert_eq!(p.action, Action::ReadTerms);
    }

    #[test]
    fn a_service_for_another_issuers_cards_sends_back_to_the_choice() {
        let s = situation();
        let p = explain(&party(s.provider_url, 422, "issuer_mismatch"), &s);
        assert_eq!(
            p.message,
            "Ticket wallet from Tram & Co is for cards of another issuer; your card is from Kanto Card Issuer. Nothing was changed on your card."
        );
        assert_eq!(p.action, Action::ChooseAnother);
    }

    #[test]
    fn anything_else_is_said_plainly_with_the_detail_kept() {
        let s = situation();
        let p = explain(&party(s.issuer_url, 400, "invalid_rc"), &s);
        assert_eq!(p.title, "Something went wrong");
        assert!(p.detail.contains("invalid_rc"), "{}", p.detail);
        let p = explain(&party(s.issuer_url, 500, "internal"), &s);
        assert!(p.message.starts_with("Can't reach Kanto Card Issuer"));
    }
}
