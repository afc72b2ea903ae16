//! The user's agent: how a terminal talks to a card. It is an untrusted relay (STYLE rule 7): it
//! frames commands, follows GET RESPONSE and chaining, and turns status words into typed errors,
//! but it never holds a secret in clear — everything it carries is signed or sealed end to end.
//!
//! - [`CardChannel`]: something that carries APDU bytes to a card (in-process here; PC/SC and
//!   vpcd elsewhere).
//! - [`CardClient`]: one typed method per card command of `docs/card-os.md`.
//! - [`Personalisation`]: the issuer's personalisation record and its DGI encoding.
//! - [`flows`]: REG-2 and STO-1…7 relayed between a card and the parties' servers.
//! - [`PcscCard`] (feature `pcsc`): a card in a PC/SC reader.

mod channel;
mod client;
pub mod download;
pub mod flows;
pub mod journal;
#[cfg(feature = "pcsc")]
mod pcsc;
mod personalisation;
pub mod portal;

pub use channel::{CardChannel, ChannelError, InProcessCard};
pub use client::{meaning, CardClient, CardStatus, ClientError, IssuerCommandKind};
#[cfg(feature = "pcsc")]
pub use pcsc::{PcscCard, PcscTransaction};
pub use personalisation::{dgi, Personalisation};
