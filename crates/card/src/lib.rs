//! The card OS: a virtual secure element driven only by ISO 7816-4 APDUs (SPEC §2).
//!
//! Sans-IO: bytes in, bytes out. Persistence goes through the [`nvm::Nvm`] trait and the
//! transactional [`store::Store`]; randomness is passed to [`Card::transmit`]; there is no clock
//! (expiry is judged against the card's *time floor*, see `docs/card-os.md`).
//!
//! Layers, outermost first:
//! - [`Card`] frames APDUs: parse (short and extended), ISO command chaining, GET RESPONSE,
//!   routing by the selected AID, life-cycle gate, and the one place where refusals become
//!   status words ([`refusal::Refusal::status`]).
//! - [`isd`] is the card manager (the GlobalPlatform Issuer Security Domain): personalisation,
//!   PIN, key generation, registration, storing and deleting under dual consent, receipts,
//!   listings, tamper.
//! - [`state`] is the persistent state and its versioned byte format.

pub mod isd;
pub mod nvm;
pub mod refusal;
pub mod state;
pub mod store;
pub mod wire;

use apdu::chaining::{CommandAssembler, ResponseQueue};
use apdu::{Command, Response, Status};
use crypto::Rng;
use pki::{CardId, UnixTime};

pub use refusal::Refusal;
pub use state::{LifeCycle, PersistentState};

/// The AID of the card manager: the GlobalPlatform Issuer Security Domain (GP CS v2.3 §H.1).
pub const ISD_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00];

/// ATR offering T=0 and T=1 (some GlobalPlatform tools connect with T=0 only; see
/// `shared/design/pcsc.md`). Historical bytes: "cardwright" in ASCII would not fit the 15-byte
/// limit, so they carry a category indicator 0x80 and a short product tag.
pub const ATR: &[u8] = &[
    0x3B, 0x9F, 0x96, 0x80, 0x1F, 0x87, 0x80, 0x31, 0xE0, 0x73, 0xFE, 0x21, 0x1B, 0x67, 0x4A, 0x4C,
    0x75, 0x30, 0x34, 0x05, 0x4B, 0xA9,
];

/// The largest command (after chaining) the card accepts: room for a chained certificate chain
/// or a data block.
pub const MAX_COMMAND_DATA: usize = 16 * 1024;

/// Default size of the state image the NVM is formatted for.
pub const DEFAULT_IMAGE_CAPACITY: usize = 96 * 1024;

use wire::{INS_GET_RESPONSE, INS_SELECT};

/// The class byte's verdict (ISO 7816-4 §5.4.1): logical channels and secure messaging are not
/// offered, and only the first interindustry class (`0X`/`1X`) and its GlobalPlatform
/// proprietary twin (`8X`/`9X`, GP CS §11.1.4) are understood.
fn class_refusal(cla: u8) -> Option<Status> {
    match cla {
        // First interindustry coding, and GP's proprietary classes that reuse it: b2-b1 the
        // logical channel, b4-b3 secure messaging, b5 chaining.
        0x00..=0x1F | 0x80..=0x9F => {
            if cla & 0x03 != 0 {
                Some(Status::LOGICAL_CHANNEL_NOT_SUPPORTED)
            } else if cla & 0x0C != 0 {
                Some(Status::SECURE_MESSAGING_NOT_SUPPORTED)
            } else {
                None
            }
        }
        // Further interindustry coding: b6 secure messaging, b4-b1 logical channels 4 to 19.
        0x40..=0x7F | 0xC0..=0xFE if cla & 0x20 != 0 => {
            Some(Status::SECURE_MESSAGING_NOT_SUPPORTED)
        }
        0x40..=0x7F | 0xC0..=0xFE => Some(Status::LOGICAL_CHANNEL_NOT_SUPPORTED),
        // RFU (2X, 3X), other proprietary classes (AX, BX) and the invalid FF.
        _ => Some(Status::CLA_NOT_SUPPORTED),
    }
}

/// Why the card could not be brought up or formatted (the host's view; never sent on the wire).
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("card storage: {0}")]
    Store(#[from] store::StoreError),
    #[error("card state: {0}")]
    State(#[from] state::StateError),
    #[error("card storage holds no card (empty image): manufacture it first")]
    Blank,
}

/// What a host can read about a card without APDUs (for `cardwright card info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    pub life_cycle: LifeCycle,
    pub card_id: Option<CardId>,
    pub issuer: Option<String>,
    pub registered: bool,
    pub capacity: u32,
    pub free: u32,
    pub items: usize,
    pub receipt_counter: u64,
    pub pin_tries_left: Option<u8>,
    pub time_floor: UnixTime,
}

/// RAM state: lost at every power cycle or reset.
#[derive(Default)]
pub(crate) struct Volatile {
    pub selected: Option<Vec<u8>>,
    pub challenge: Option<protocol::Challenge>,
    pub pin_verified: bool,
    pub load: Option<isd::LoadSession>,
    /// Why the last signed object was refused (host-side diagnostics only).
    pub diagnostic: Option<String>,
    pub assembler: Option<CommandAssembler>,
    pub responses: ResponseQueue,
}

/// A card: persistent state in a transactional store over `N`, plus RAM state.
pub struct Card<N: nvm::Nvm> {
    pub(crate) store: store::Store<N>,
    pub(crate) state: PersistentState,
    pub(crate) ram: Volatile,
}

impl<N: nvm::Nvm> Card<N> {
    /// The NVM size a card needs for a state image of `image_capacity` bytes.
    pub fn nvm_size_for(image_capacity: usize) -> usize {
        store::Store::<N>::nvm_size_for(image_capacity)
    }

    /// Formats `nvm` as a blank card (life cycle MANUFACTURED) with an image capacity that fills
    /// the NVM, and powers it up.
    pub fn manufacture(nvm: N, image_capacity: usize) -> Result<Self, CardError> {
        let mut store = store::Store::format(nvm, image_capacity)?;
        let state = PersistentState::manufactured();
        store.commit(&state.encode())?;
        Ok(Card {
            store,
            state,
            ram: Volatile::default(),
        })
    }

    /// Power-up: recovers an interrupted command (CARD-2) and loads the state.
    pub fn boot(nvm: N) -> Result<Self, CardError> {
        let store = store::Store::open(nvm)?;
        if store.image().is_empty() {
            return Err(CardError::Blank);
        }
        let state = PersistentState::decode(store.image())?;
        Ok(Card {
            store,
            state,
            ram: Volatile::default(),
        })
    }

    pub fn atr(&self) -> &'static [u8] {
        ATR
    }

    /// A reset (cold or warm): RAM state is lost; persistent state is untouched.
    pub fn reset(&mut self) {
        self.ram = Volatile::default();
    }

    /// The committed persistent state image (for tests and the host's `info`).
    pub fn image(&self) -> &[u8] {
        self.store.image()
    }

    /// Why the card refused the last signed object it was given, in words (for logs and
    /// tests; the card's answer on the wire is only the status word). Cleared by every command.
    pub fn last_refusal_detail(&self) -> Option<&str> {
        self.ram.diagnostic.as_deref()
    }

    pub fn into_nvm(self) -> N {
        self.store.into_nvm()
    }

    pub fn info(&self) -> CardInfo {
        let s = &self.state;
        CardInfo {
            life_cycle: s.life_cycle,
            card_id: s.card_id,
            issuer: s.issuer_id.as_ref().map(|p| p.to_string()),
            registered: s.registration.is_some(),
            capacity: s.capacity,
            free: s.free(),
            items: s.items.len(),
            receipt_counter: s.receipt_counter,
            pin_tries_left: s.pin.as_ref().map(|p| p.tries_left),
            time_floor: s.time_floor,
        }
    }

    /// Processes one command APDU and returns the response APDU (data + SW1 SW2). Never panics
    /// and always answers with a status word (CARD-8).
    pub fn transmit(&mut self, command: &[u8], rng: &mut dyn Rng) -> Vec<u8> {
        self.process(command, rng).to_bytes()
    }

    fn process(&mut self, bytes: &[u8], rng: &mut dyn Rng) -> Response {
        let (cmd, framing) = match Command::parse_with_framing(bytes) {
            Ok(c) => c,
            Err(_) => {
                self.ram.responses.clear();
                return Response::status(Status::WRONG_LENGTH);
            }
        };
        if let Some(refusal) = class_refusal(cmd.cla) {
            self.ram.responses.clear();
            return Response::status(refusal);
        }
        if cmd.ins == INS_GET_RESPONSE && cmd.cla & 0x80 == 0 && !cmd.is_chained() {
            return self.ram.responses.get_response(cmd.le);
        }
        self.ram.responses.clear();
        self.ram.diagnostic = None;

        // ISO 7816-4 §5.4.1 command chaining.
        let assembler = self
            .ram
            .assembler
            .get_or_insert_with(|| CommandAssembler::new(MAX_COMMAND_DATA));
        let cmd = match assembler.feed(cmd) {
            Ok(Some(whole)) => whole,
            Ok(None) => return Response::status(Status::SUCCESS),
            Err(apdu::ApduError::ChainTooLong { .. }) => {
                return Response::status(Status::WRONG_LENGTH)
            }
            Err(_) => return Response::status(Status::LAST_COMMAND_EXPECTED),
        };
        let le = cmd.le;
        let resp = match self.dispatch(&cmd, rng) {
            Ok(data) => Response::new(data, Status::SUCCESS),
            Err(refusal) => {
                // A failed write means the NVM is gone (power loss): the host reboots the card.
                Response::status(refusal.status())
            }
        };
        self.ram.responses.respond(resp, le, framing)
    }

    fn dispatch(&mut self, cmd: &Command, rng: &mut dyn Rng) -> Result<Vec<u8>, Refusal> {
        if cmd.ins == INS_SELECT && cmd.cla & 0x80 == 0 {
            return self.select(cmd);
        }
        match self.ram.selected.as_deref() {
            Some(aid) if aid == ISD_AID => isd::handle(self, cmd, rng),
            // Nothing selected: commands go to the card manager as GP's default selection.
            None => isd::handle(self, cmd, rng),
            Some(_) => Err(Refusal::NotFound),
        }
    }

    fn select(&mut self, cmd: &Command) -> Result<Vec<u8>, Refusal> {
        // SELECT by DF name (P1 = 04), first or only occurrence (P2 = 00) — ISO 7816-4 §7.1.1.
        if cmd.p1 != 0x04 || (cmd.p2 & !0x0C) != 0 {
            return Err(Refusal::WrongP1P2);
        }
        let aid = if cmd.data.is_empty() {
            ISD_AID
        } else {
            cmd.data.as_slice()
        };
        if !(5..=16).contains(&aid.len()) {
            return Err(Refusal::WrongData);
        }
        if aid.len() <= ISD_AID.len() && ISD_AID.starts_with(aid) {
            self.ram.selected = Some(ISD_AID.to_vec());
            self.ram.load = None;
            return Ok(isd::fci(&self.state));
        }
        self.ram.selected = None;
        Err(Refusal::NotFound)
    }

    /// Commits `new` as the persistent state, all or nothing (CARD-2).
    pub(crate) fn commit(&mut self, new: PersistentState) -> Result<(), Refusal> {
        let image = new.encode();
        match self.store.commit(&image) {
            Ok(_) => {
                self.state = new;
                Ok(())
            }
            Err(store::StoreError::ImageTooLarge { .. }) => Err(Refusal::NotEnoughMemory),
            Err(_) => Err(Refusal::MemoryFailure),
        }
    }
}
