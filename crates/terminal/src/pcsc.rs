//! A card in a PC/SC reader (cargo feature `pcsc`): [`PcscCard`] carries APDUs through
//! `SCardTransmit` to whatever card the PC/SC service holds — a hardware card, or a cardwright
//! card served into pcscd over vpcd (`docs/pcsc.md`).
//!
//! The connection is shared, as PC/SC applications are expected to be: other applications may
//! use the reader between two of our commands, and [`PcscCard::transaction`] holds the card for
//! a sequence that must not be interleaved. Every PC/SC failure becomes a
//! [`ChannelError::Transport`] that says what happened and what to do; nothing PC/SC answers
//! makes this module panic. (The `pcsc` crate itself panics on a return code outside PC/SC's
//! table in debug builds and on a connection without a protocol; we connect only in shared mode
//! with T=0/T=1, where pcsclite always reports one.)

use std::ffi::CString;

use crate::channel::{CardChannel, ChannelError};

/// The largest response APDU: 65,536 data bytes (extended Le, ISO 7816-4 §5.1) and SW1 SW2.
const MAX_RESPONSE: usize = 65_536 + 2;
/// The largest command APDU: header, 3-byte Lc, 65,535 data bytes, 2-byte Le (ISO 7816-4 §5.1).
const MAX_COMMAND: usize = 4 + 3 + 65_535 + 2;

/// Whether the caller has built anything on the card (a selection, a verified PIN, an
/// outstanding challenge) that a reset would silently destroy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    /// Nothing reached the card since we connected, or since the caller was last told that the
    /// card's session ended: after a reset, resending the command loses nothing.
    Empty,
    /// A command reached the card: after a reset the caller must start again, and be told.
    Used,
}

/// A card in a PC/SC reader, connected in shared mode (T=0 or T=1, whichever the card and
/// reader agree on).
///
/// If the card was reset or removed and put back, the next command reconnects once: when
/// nothing had been sent yet it goes through; otherwise it fails with a
/// [`ChannelError::Transport`] saying the card's session (selection, PIN verification) is gone,
/// and the commands after it go to the freshly reset card.
///
/// Dropping it disconnects and resets the card, so a verified PIN does not outlive it.
pub struct PcscCard {
    card: pcsc::Card,
    reader: String,
    response: Vec<u8>,
    session: Session,
}

impl std::fmt::Debug for PcscCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscCard")
            .field("reader", &self.reader)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl PcscCard {
    /// The names of the readers the PC/SC service knows, in its order (with or without a card).
    pub fn readers() -> Result<Vec<String>, ChannelError> {
        let ctx = establish()?;
        Ok(list_readers(&ctx)?
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect())
    }

    /// Connects to the card in the reader named exactly `reader`, or else in the first reader
    /// whose name contains `reader` (so `""` means the first reader).
    ///
    /// Fails if no reader matches (the error lists the readers there are), if the reader holds
    /// no card, or if another application holds the card exclusively.
    pub fn connect(reader: &str) -> Result<PcscCard, ChannelError> {
        let ctx = establish()?;
        let readers = list_readers(&ctx)?;
        let names: Vec<String> = readers
            .iter()
            .map(|r| r.to_string_lossy().into_owned())
            .collect();
        let Some(index) = choose_reader(&names, reader) else {
            return Err(transport(no_such_reader(reader, &names)));
        };
        let name = names[index].clone();
        let card = ctx
            .connect(
                &readers[index],
                pcsc::ShareMode::Shared,
                pcsc::Protocols::ANY,
            )
            .map_err(|e| transport(connect_failure(&name, e)))?;
        Ok(PcscCard {
            card,
            reader: name,
            response: vec![0; MAX_RESPONSE],
            session: Session::Empty,
        })
    }

    /// The name of the reader the card is in.
    pub fn reader(&self) -> &str {
        &self.reader
    }

    /// Holds the card for this application alone until the returned guard is dropped
    /// (`SCardBeginTransaction`): other applications' commands wait, and none can reset the
    /// card in between. A reset inside the transaction is reported, never repaired by
    /// reconnecting.
    pub fn transaction(&mut self) -> Result<PcscTransaction<'_>, ChannelError> {
        let PcscCard {
            card,
            reader,
            response,
            session,
        } = self;
        let tx = match card.transaction2() {
            Ok(tx) => tx,
            Err((card, e)) => {
                let Some(what) = lost(e) else {
                    return Err(transport(transaction_failure(reader, e)));
                };
                recover(card, reader, session, what)?;
                card.transaction()
                    .map_err(|e| transport(transaction_failure(reader, e)))?
            }
        };
        Ok(PcscTransaction {
            tx,
            reader,
            response,
            session,
        })
    }
}

impl CardChannel for PcscCard {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        check_command(command)?;
        let first = self
            .card
            .transmit(command, &mut self.response)
            .map(<[u8]>::to_vec);
        let response = match first {
            Ok(r) => r,
            Err(e) => {
                let Some(what) = lost(e) else {
                    return Err(transport(transmit_failure(&self.reader, command.len(), e)));
                };
                recover(&mut self.card, &self.reader, &mut self.session, what)?;
                // Reconnected with nothing lost: the command goes once more, and only once.
                self.card
                    .transmit(command, &mut self.response)
                    .map_err(|e| transport(transmit_failure(&self.reader, command.len(), e)))?
                    .to_vec()
            }
        };
        self.session = Session::Used;
        Ok(response)
    }
}

/// The card held by one application ([`PcscCard::transaction`]); ends when dropped, leaving the
/// card as it is.
pub struct PcscTransaction<'a> {
    tx: pcsc::Transaction<'a>,
    reader: &'a str,
    response: &'a mut [u8],
    session: &'a mut Session,
}

impl std::fmt::Debug for PcscTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransaction")
            .field("reader", &self.reader)
            .finish_non_exhaustive()
    }
}

impl CardChannel for PcscTransaction<'_> {
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        check_command(command)?;
        match self.tx.transmit(command, self.response) {
            Ok(r) => {
                *self.session = Session::Used;
                Ok(r.to_vec())
            }
            Err(e) => {
                let Some(what) = lost(e) else {
                    return Err(transport(transmit_failure(self.reader, command.len(), e)));
                };
                // The caller hears that the session ended; the card reconnects after the
                // transaction, with nothing left to lose.
                *self.session = Session::Empty;
                Err(transport(format!(
                    "the card in reader \"{}\" {what} during a transaction: its session \
                     (selected application, verified PIN) is gone; end the transaction and start \
                     again",
                    self.reader
                )))
            }
        }
    }
}

/// After a PC/SC call on `card` found it reset, or removed (and perhaps put back) — `what`
/// happened — reconnects once. `Ok` means the call may be made again: nothing was lost.
/// Otherwise the error says what happened, and `session` is left empty because the caller now
/// knows.
fn recover(
    card: &mut pcsc::Card,
    reader: &str,
    session: &mut Session,
    what: &str,
) -> Result<(), ChannelError> {
    let reconnected = card.reconnect(
        pcsc::ShareMode::Shared,
        pcsc::Protocols::ANY,
        pcsc::Disposition::LeaveCard,
    );
    let before = std::mem::replace(session, Session::Empty);
    match (reconnected, before) {
        (Ok(()), Session::Empty) => Ok(()),
        (Ok(()), Session::Used) => Err(transport(format!(
            "the card in reader \"{reader}\" {what}: its session (selected application, verified \
             PIN) is gone; reconnected, start the exchange again"
        ))),
        (Err(pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard), _) => Err(transport(format!(
            "the card in reader \"{reader}\" {what} and there is no card in the reader now"
        ))),
        (Err(e), _) => Err(transport(format!(
            "the card in reader \"{reader}\" {what} and reconnecting failed: {}",
            describe(e)
        ))),
    }
}

/// What happened to the card, if `error` says it was reset or removed: the cases one
/// reconnect may repair.
fn lost(error: pcsc::Error) -> Option<&'static str> {
    match error {
        pcsc::Error::RemovedCard => Some("was removed"),
        pcsc::Error::ResetCard => Some("was reset (by another application or the reader)"),
        _ => None,
    }
}

fn establish() -> Result<pcsc::Context, ChannelError> {
    pcsc::Context::establish(pcsc::Scope::User).map_err(|e| {
        transport(format!(
            "cannot reach the PC/SC service (is pcscd running?): {}",
            describe(e)
        ))
    })
}

fn list_readers(ctx: &pcsc::Context) -> Result<Vec<CString>, ChannelError> {
    ctx.list_readers_owned()
        .map_err(|e| transport(format!("cannot list the PC/SC readers: {}", describe(e))))
}

/// The reader named exactly `wanted`, else the first whose name contains it.
fn choose_reader(names: &[String], wanted: &str) -> Option<usize> {
    names
        .iter()
        .position(|n| n == wanted)
        .or_else(|| names.iter().position(|n| n.contains(wanted)))
}

fn no_such_reader(wanted: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("no reader named \"{wanted}\": the PC/SC service has no readers")
    } else {
        let listed: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
        format!(
            "no reader named \"{wanted}\"; the readers are {}",
            listed.join(", ")
        )
    }
}

fn connect_failure(reader: &str, error: pcsc::Error) -> String {
    match error {
        pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => {
            format!("no card in reader \"{reader}\"")
        }
        pcsc::Error::SharingViolation => {
            format!("the card in reader \"{reader}\" is held exclusively by another application")
        }
        e => format!(
            "cannot connect to the card in reader \"{reader}\": {}",
            describe(e)
        ),
    }
}

fn transaction_failure(reader: &str, error: pcsc::Error) -> String {
    format!(
        "cannot hold the card in reader \"{reader}\" for a transaction: {}",
        describe(error)
    )
}

/// The failure of an exchange; says the command's length, never its bytes (a VERIFY carries
/// the PIN).
fn transmit_failure(reader: &str, len: usize, error: pcsc::Error) -> String {
    let what = match error {
        pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => {
            format!("the card was removed from reader \"{reader}\"")
        }
        pcsc::Error::ResetCard => format!("the card in reader \"{reader}\" was reset"),
        pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::Shutdown => format!(
            "the PC/SC service stopped (pcscd restarted or killed); connect to reader \
             \"{reader}\" again"
        ),
        pcsc::Error::UnknownReader | pcsc::Error::ReaderUnavailable => {
            format!("reader \"{reader}\" is gone")
        }
        e => format!("reader \"{reader}\": {}", describe(e)),
    };
    format!("sending a {len}-byte command: {what}")
}

/// PC/SC's description of `error` and its name, for searching the PC/SC documentation.
fn describe(error: pcsc::Error) -> String {
    format!("{error} ({error:?})")
}

fn check_command(command: &[u8]) -> Result<(), ChannelError> {
    if command.len() > MAX_COMMAND {
        return Err(transport(format!(
            "a command of {} bytes is longer than the longest extended APDU ({MAX_COMMAND})",
            command.len()
        )));
    }
    Ok(())
}

fn transport(detail: String) -> ChannelError {
    ChannelError::Transport { detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn an_exact_name_wins_over_an_earlier_reader_containing_it() {
        let readers = names(&["Virtual PCD 00 00", "Virtual PCD 00 0", "Other"]);
        assert_eq!(choose_reader(&readers, "Virtual PCD 00 0"), Some(1));
        assert_eq!(choose_reader(&readers, "PCD"), Some(0));
        assert_eq!(choose_reader(&readers, ""), Some(0));
        assert_eq!(choose_reader(&readers, "Yubico"), None);
        assert_eq!(choose_reader(&[], ""), None);
    }

    #[test]
    fn an_unknown_reader_is_reported_with_the_readers_there_are() {
        let readers = names(&["Virtual PCD 00 00", "Virtual PCD 00 01"]);
        assert_eq!(
            no_such_reader("Yubico", &readers),
            "no reader named \"Yubico\"; the readers are \"Virtual PCD 00 00\", \
             \"Virtual PCD 00 01\""
        );
        assert_eq!(
            no_such_reader("Yubico", &[]),
            "no reader named \"Yubico\": the PC/SC service has no readers"
        );
    }

    #[test]
    fn a_command_longer_than_any_apdu_is_refused_before_pcsc() {
        assert!(check_command(&vec![0; MAX_COMMAND]).is_ok());
        let ChannelError::Transport { detail } = check_command(&vec![0; MAX_COMMAND + 1])
            .expect_err("a command of MAX_COMMAND + 1 bytes");
        assert!(detail.contains("65545 bytes"), "{detail}");
    }

    #[test]
    fn failures_name_the_cause_and_never_the_command_bytes() {
        let d = transmit_failure("R", 13, pcsc::Error::ServiceStopped);
        assert!(
            d.starts_with("sending a 13-byte command: the PC/SC service stopped"),
            "{d}"
        );
        let d = connect_failure("R", pcsc::Error::NoSmartcard);
        assert_eq!(d, "no card in reader \"R\"");
        let d = transmit_failure("R", 9, pcsc::Error::CommError);
        assert!(d.contains("(CommError)"), "{d}");
    }
}
