//! The card's persistent state and its versioned byte format.
//!
//! The whole persistent state is one value, [`PersistentState`], serialised into one byte image
//! that the transactional [`crate::store::Store`] replaces atomically. The format is versioned
//! (first byte) and laid out so that the fields that change on most commands (life cycle, PIN
//! tries, counters, time floor) sit at fixed offsets at the front: a PIN try rewrites a few bytes,
//! not the image. Golden files in `tests/golden/` pin the format.
//!
//! Versions: 1 (issues 1–3); 2 adds the ring of kept receipts at the end (REC-2, GET RECEIPT).
//! A version 1 image is still read (with no kept receipts) and is written as version 2 by the
//! card's next commit.

use crypto::{Digest, SigningKey, SymmetricKey};
use pki::{CardId, PartyId, UnixTime};
use protocol::{ItemId, Policy, Receipt};

/// Version of the image format written by this code.
pub const STATE_FORMAT_VERSION: u8 = 2;
/// The oldest image format version this code still reads (migrated on the next commit).
pub const OLDEST_READABLE_FORMAT_VERSION: u8 = 1;

/// How many of its latest receipts the card keeps, to sign again on GET RECEIPT (REC-2).
pub const KEPT_RECEIPTS: usize = 8;

/// The card life cycle (GlobalPlatform Card Specification v2.3 §5.1.1, with GP's coding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifeCycle {
    /// Fresh from the factory (GP OP_READY): only personalisation is possible.
    Manufactured,
    /// Personalised by its issuer (GP INITIALIZED): the holder can register it.
    Personalised,
    /// Registered and in use (GP SECURED).
    InUse,
    /// Locked by its issuer (GP CARD_LOCKED): only status and issuer commands.
    Locked,
    /// Terminated (GP TERMINATED): answers nothing but status, irreversibly.
    Terminated,
}

impl LifeCycle {
    /// GlobalPlatform's life-cycle byte (GP CS v2.3 Table 11-6).
    pub fn gp_code(self) -> u8 {
        match self {
            LifeCycle::Manufactured => 0x01,
            LifeCycle::Personalised => 0x07,
            LifeCycle::InUse => 0x0F,
            LifeCycle::Locked => 0x7F,
            LifeCycle::Terminated => 0xFF,
        }
    }

    fn from_gp_code(b: u8) -> Option<LifeCycle> {
        Some(match b {
            0x01 => LifeCycle::Manufactured,
            0x07 => LifeCycle::Personalised,
            0x0F => LifeCycle::InUse,
            0x7F => LifeCycle::Locked,
            0xFF => LifeCycle::Terminated,
            _ => return None,
        })
    }
}

/// A key version number (GP key version, 1..=0x7F).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyVersion(pub u8);

/// The card-unique symmetric key `Sk` with its version.
#[derive(Debug, Clone)]
pub struct SkEntry {
    pub version: KeyVersion,
    pub key: SymmetricKey,
}

/// The card's own key pair (registration key) with its version.
#[derive(Debug, Clone)]
pub struct CardKeyEntry {
    pub version: KeyVersion,
    pub key: SigningKey,
}

/// Holder PIN (CARD-4): stored as a salted HMAC, never in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinRecord {
    pub salt: [u8; 16],
    pub mac: [u8; 32],
    pub try_limit: u8,
    pub tries_left: u8,
}

/// The registration the card has accepted (REG-2): its RC and its issuer's IRC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub rc_der: Vec<u8>,
    pub irc_der: Vec<u8>,
}

/// One stored data item (an SDI's subject once stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub item_id: ItemId,
    pub version: u32,
    pub owner: PartyId,
    pub policy: Policy,
    pub digest: Digest,
    pub data: Vec<u8>,
}

/// Everything the card keeps across power loss.
#[derive(Debug, Clone)]
pub struct PersistentState {
    pub life_cycle: LifeCycle,
    pub receipt_counter: u64,
    pub time_floor: UnixTime,
    pub pin: Option<PinRecord>,
    pub card_id: Option<CardId>,
    pub issuer_id: Option<PartyId>,
    pub capacity: u32,
    pub sk: Option<SkEntry>,
    pub card_key: Option<CardKeyEntry>,
    pub issuer_authenticator: Vec<u8>,
    pub issuer_anchor: Option<Vec<u8>>,
    pub data_anchor: Option<Vec<u8>>,
    pub registration: Option<Registration>,
    /// Latest accepted revocation list per signer, as DER.
    pub crls: Vec<Vec<u8>>,
    pub items: Vec<Item>,
    /// The bodies of the card's latest receipts, oldest first, at most [`KEPT_RECEIPTS`]:
    /// written in the same commit as the operation that produced each one.
    pub receipts: Vec<Receipt>,
}

impl PersistentState {
    /// The state of a card fresh from the factory.
    pub fn manufactured() -> Self {
        PersistentState {
            life_cycle: LifeCycle::Manufactured,
            receipt_counter: 0,
            time_floor: UnixTime(0),
            pin: None,
            card_id: None,
            issuer_id: None,
            capacity: 0,
            sk: None,
            card_key: None,
            issuer_authenticator: Vec::new(),
            issuer_anchor: None,
            data_anchor: None,
            registration: None,
            crls: Vec::new(),
            items: Vec::new(),
            receipts: Vec::new(),
        }
    }

    /// Appends `receipt` to the kept receipts, dropping the oldest beyond [`KEPT_RECEIPTS`].
    pub fn keep_receipt(&mut self, receipt: Receipt) {
        self.receipts.push(receipt);
        let excess = self.receipts.len().saturating_sub(KEPT_RECEIPTS);
        self.receipts.drain(..excess);
    }

    /// The kept receipt of the operation authorized by the SA with this digest, newest first.
    pub fn kept_receipt(&self, authorization_digest: &Digest) -> Option<&Receipt> {
        self.receipts
            .iter()
            .rev()
            .find(|r| r.authorization_digest == *authorization_digest)
    }

    /// Bytes of content held (the quantity the capacity budget limits, CARD-6).
    pub fn used(&self) -> u32 {
        self.items.iter().map(|i| i.data.len() as u32).sum()
    }

    pub fn free(&self) -> u32 {
        self.capacity.saturating_sub(self.used())
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(1024));
        // Fixed-offset header: fields that change often first.
        w.u8(STATE_FORMAT_VERSION);
        w.u8(self.life_cycle.gp_code());
        match &self.pin {
            Some(p) => {
                w.u8(1);
                w.u8(p.tries_left);
                w.u8(p.try_limit);
                w.raw(&p.salt);
                w.raw(&p.mac);
            }
            None => {
                w.u8(0);
                w.u8(0);
                w.u8(0);
                w.raw(&[0u8; 48]);
            }
        }
        w.u64(self.receipt_counter);
        w.u64(self.time_floor.0);
        w.u32(self.capacity);
        match &self.card_id {
            Some(id) => {
                w.u8(1);
                w.raw(&id.0);
            }
            None => {
                w.u8(0);
                w.raw(&[0u8; 16]);
            }
        }
        match &self.sk {
            Some(sk) => {
                w.u8(sk.version.0);
                w.raw(sk.key.expose_bytes());
            }
            None => {
                w.u8(0);
                w.raw(&[0u8; 32]);
            }
        }
        match &self.card_key {
            Some(k) => {
                w.u8(k.version.0);
                w.raw(&*k.key.to_scalar_bytes());
            }
            None => {
                w.u8(0);
                w.raw(&[0u8; 32]);
            }
        }
        // Variable part.
        w.opt_str(self.issuer_id.as_ref().map(|p| p.as_str()));
        w.bytes(&self.issuer_authenticator);
        w.opt_bytes(self.issuer_anchor.as_deref());
        w.opt_bytes(self.data_anchor.as_deref());
        match &self.registration {
            Some(r) => {
                w.u8(1);
                w.bytes(&r.rc_der);
                w.bytes(&r.irc_der);
            }
            None => w.u8(0),
        }
        w.u16(self.crls.len() as u16);
        for c in &self.crls {
            w.bytes(c);
        }
        w.u16(self.items.len() as u16);
        for i in &self.items {
            w.small(i.item_id.as_bytes());
            w.u32(i.version);
            w.small(i.owner.as_str().as_bytes());
            w.u32(i.policy.bits());
            w.raw(&i.digest.0);
            w.bytes(&i.data);
        }
        // Version 2: the kept receipts, oldest first, each as its DER.
        w.u8(self.receipts.len() as u8);
        for r in &self.receipts {
            w.bytes(&r.to_der());
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        let mut r = Reader { b: bytes, at: 0 };
        let version = r.u8()?;
        if !(OLDEST_READABLE_FORMAT_VERSION..=STATE_FORMAT_VERSION).contains(&version) {
            return Err(StateError::UnknownVersion { found: version });
        }
        let lc_byte = r.u8()?;
        let life_cycle = LifeCycle::from_gp_code(lc_byte).ok_or(StateError::Corrupt {
            field: "life cycle",
            offset: 1,
        })?;
        let has_pin = r.flag("PIN presence")?;
        let tries_left = r.u8()?;
        let try_limit = r.u8()?;
        let salt: [u8; 16] = r.array()?;
        let mac: [u8; 32] = r.array()?;
        let pin = if has_pin {
            if tries_left > try_limit || try_limit == 0 {
                return Err(r.corrupt("PIN try counter"));
            }
            Some(PinRecord {
                salt,
                mac,
                try_limit,
                tries_left,
            })
        } else {
            r.expect_zero("absent PIN", &[&[tries_left, try_limit], &salt, &mac])?;
            None
        };
        let receipt_counter = r.u64()?;
        let time_floor = UnixTime(r.u64()?);
        let capacity = r.u32()?;
        let has_id = r.flag("card ID presence")?;
        let id: [u8; 16] = r.array()?;
        let card_id = if has_id {
            Some(CardId(id))
        } else {
            r.expect_zero("absent card ID", &[&id])?;
            None
        };
        let sk_version = r.u8()?;
        let sk_bytes: [u8; 32] = r.array()?;
        let sk = if sk_version == 0 {
            r.expect_zero("absent Sk", &[&sk_bytes])?;
            None
        } else {
            Some(SkEntry {
                version: KeyVersion(sk_version),
                key: SymmetricKey::from_bytes(&sk_bytes).map_err(|_| r.corrupt("Sk"))?,
            })
        };
        let key_version = r.u8()?;
        let scalar: [u8; 32] = r.array()?;
        let card_key = if key_version == 0 {
            r.expect_zero("absent card key", &[&scalar])?;
            None
        } else {
            Some(CardKeyEntry {
                version: KeyVersion(key_version),
                key: SigningKey::from_scalar_bytes(&scalar).map_err(|_| r.corrupt("card key"))?,
            })
        };
        let issuer_id = match r.opt_bytes()? {
            Some(s) => Some(
                std::str::from_utf8(&s)
                    .ok()
                    .and_then(|s| PartyId::new(s).ok())
                    .ok_or(r.corrupt("issuer id"))?,
            ),
            None => None,
        };
        let issuer_authenticator = r.bytes()?;
        let issuer_anchor = r.opt_bytes()?;
        let data_anchor = r.opt_bytes()?;
        let registration = match r.flag("registration presence")? {
            false => None,
            true => Some(Registration {
                rc_der: r.bytes()?,
                irc_der: r.bytes()?,
            }),
        };
        let n_crls = r.u16()?;
        let mut crls = Vec::new();
        for _ in 0..n_crls {
            crls.push(r.bytes()?);
        }
        let n_items = r.u16()?;
        let mut items = Vec::new();
        for _ in 0..n_items {
            let item_id = ItemId::new(&r.small()?).map_err(|_| r.corrupt("item id"))?;
            let version = r.u32()?;
            let owner_bytes = r.small()?;
            let owner = std::str::from_utf8(&owner_bytes)
                .ok()
                .and_then(|s| PartyId::new(s).ok())
                .ok_or(r.corrupt("item owner"))?;
            let policy = Policy::from_bits(r.u32()?).map_err(|_| r.corrupt("item policy"))?;
            let digest = Digest(r.array()?);
            let data = r.bytes()?;
            items.push(Item {
                item_id,
                version,
                owner,
                policy,
                digest,
                data,
            });
        }
        let mut receipts = Vec::new();
        if version >= 2 {
            let n_receipts = usize::from(r.u8()?);
            if n_receipts > KEPT_RECEIPTS {
                return Err(StateError::Corrupt {
                    field: "kept receipt count",
                    offset: r.at - 1,
                });
            }
            for _ in 0..n_receipts {
                let der = r.bytes()?;
                receipts.push(Receipt::from_der(&der).map_err(|_| r.corrupt("kept receipt"))?);
            }
        }
        if r.at != bytes.len() {
            return Err(StateError::TrailingBytes {
                at: r.at,
                len: bytes.len(),
            });
        }
        Ok(PersistentState {
            life_cycle,
            receipt_counter,
            time_floor,
            pin,
            card_id,
            issuer_id,
            capacity,
            sk,
            card_key,
            issuer_authenticator,
            issuer_anchor,
            data_anchor,
            registration,
            crls,
            items,
            receipts,
        })
    }
}

/// The persisted image could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("card image format version {found} is not supported (this build reads {OLDEST_READABLE_FORMAT_VERSION}..={STATE_FORMAT_VERSION})")]
    UnknownVersion { found: u8 },
    #[error("card image truncated at byte {at}")]
    Truncated { at: usize },
    #[error("card image field {field} is corrupt (near byte {offset})")]
    Corrupt { field: &'static str, offset: usize },
    #[error("card image has {} bytes after its end (at {at})", len - at)]
    TrailingBytes { at: usize, len: usize },
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }
    fn raw(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }
    fn small(&mut self, v: &[u8]) {
        self.u8(v.len() as u8);
        self.raw(v);
    }
    fn bytes(&mut self, v: &[u8]) {
        self.u32(v.len() as u32);
        self.raw(v);
    }
    fn opt_bytes(&mut self, v: Option<&[u8]>) {
        match v {
            Some(v) => {
                self.u8(1);
                self.bytes(v);
            }
            None => self.u8(0),
        }
    }
    fn opt_str(&mut self, v: Option<&str>) {
        self.opt_bytes(v.map(str::as_bytes));
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn corrupt(&self, field: &'static str) -> StateError {
        StateError::Corrupt {
            field,
            offset: self.at,
        }
    }
    fn take(&mut self, n: usize) -> Result<&[u8], StateError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(StateError::Truncated { at: self.at })?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], StateError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, StateError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, StateError> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, StateError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, StateError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    fn small(&mut self) -> Result<Vec<u8>, StateError> {
        let n = self.u8()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn bytes(&mut self) -> Result<Vec<u8>, StateError> {
        let n = self.u32()? as usize;
        Ok(self.take(n)?.to_vec())
    }
    fn opt_bytes(&mut self) -> Result<Option<Vec<u8>>, StateError> {
        match self.flag("option tag")? {
            false => Ok(None),
            true => Ok(Some(self.bytes()?)),
        }
    }
    /// A presence byte: exactly 0 or 1 (anything else is damage, never "absent").
    fn flag(&mut self, field: &'static str) -> Result<bool, StateError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(StateError::Corrupt {
                field,
                offset: self.at - 1,
            }),
        }
    }
    /// The padding behind an absent fixed-size field must be zero: one state, one encoding.
    fn expect_zero(&self, field: &'static str, parts: &[&[u8]]) -> Result<(), StateError> {
        if parts.iter().all(|p| p.iter().all(|b| *b == 0)) {
            Ok(())
        } else {
            Err(self.corrupt(field))
        }
    }
}
