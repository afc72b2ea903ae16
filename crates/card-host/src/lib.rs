//! What a card needs to live on a computer: its image on disk, sealed under a key that is never
//! stored beside it ([`SealedFileNvm`], [`SealingKey`], [`CardDir`]); a way for PC/SC software
//! to reach it ([`vpcd`]); and the raw disk rate that bounds its durable writes ([`bench`]).
//!
//! The card itself (crate `card`) does no IO. This crate is where files, sockets, threads, the
//! clock and the operating system's randomness enter, and nothing here interprets an APDU: the
//! transports move bytes between a reader and a [`CardSlot`].

pub mod bench;
mod card_dir;
mod error;
mod hosted;
mod sealed_nvm;
mod sealing_key;
mod slot;
pub mod vpcd;

pub use card_dir::CardDir;
pub use error::HostError;
pub use hosted::HostedCard;
pub use sealed_nvm::{SealedFileNvm, PAGE_SIZE};
pub use sealing_key::{SealingKey, SEALING_KEY_ENV};
pub use slot::{CardSlot, PowerEvent};
