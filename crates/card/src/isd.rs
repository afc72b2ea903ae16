//! The card manager (GlobalPlatform Issuer Security Domain): every command the card accepts
//! outside the transport layer. `docs/card-os.md` is the table of these commands.
//!
//! Each handler parses its command once, checks life cycle and holder verification, verifies any
//! signed object completely (both consents, chains, card, challenge, expiry) *before* touching
//! state, and then makes exactly one [`Card::commit`] of the new state — so every command is
//! all-or-nothing across power loss (CARD-2). PIN verification is the one two-commit command: the
//! try counter is decremented and committed before the comparison (anti-tearing), and restored
//! after a match.

use apdu::{tlv, Command};
use crypto::{Rng, Sha256Hasher, SigningKey, SymmetricKey};
use pki::{CardId, Certificate, Crl, PartyId, Role, UnixTime};
use protocol::{
    Authorized, CardContext, Challenge, DownloadApplication, DownloadRequest, IssuerAction,
    ListedItem, Listing, ListingBody, Nonce, Operation, Policy, Receipt, ReceiptResult,
    RegistrationInfo, SignedObject, UserInfo,
};

use crate::state::{
    CardKeyEntry, Item, KeyVersion, LifeCycle, PersistentState, PinRecord, Registration, SkEntry,
};
use crate::wire::*;
use crate::{nvm::Nvm, Card, Refusal, ISD_AID};

/// PINs are 4..=12 ASCII digits.
const PIN_LENGTHS: std::ops::RangeInclusive<usize> = 4..=12;
const MAX_ITEM_SIZE: u32 = 32 * 1024;

/// An INSTALL [for load] that passed every check, waiting for its LOAD blocks (RAM only: a
/// power loss drops it and the terminal starts again with a fresh challenge).
pub struct LoadSession {
    authorized: Authorized,
    next_block: u8,
    hasher: Sha256Hasher,
    data: Vec<u8>,
}

/// The FCI returned by SELECT of the card manager (ISO 7816-4 §5.3.3, GP CS §11.9.3).
pub(crate) fn fci(state: &PersistentState) -> Vec<u8> {
    let mut prop = tlv::encode(0x9F6E, &[state.life_cycle.gp_code()]);
    prop.extend(tlv::encode(0x9F65, &[0xFF])); // maximum block length
    let mut body = tlv::encode(0x84, ISD_AID);
    body.extend(tlv::encode(0xA5, &prop));
    tlv::encode(0x6F, &body)
}

pub(crate) fn handle<N: Nvm>(
    card: &mut Card<N>,
    cmd: &Command,
    rng: &mut dyn Rng,
) -> Result<Vec<u8>, Refusal> {
    let lc = card.state.life_cycle;
    let gp = cmd.cla & 0x80 != 0;
    // Life-cycle gate (CARD-3): terminated cards answer only status; locked cards only status
    // and their issuer's commands.
    let allowed = match lc {
        LifeCycle::Terminated => cmd.ins == INS_GET_DATA,
        LifeCycle::Locked => matches!(
            cmd.ins,
            INS_GET_DATA | INS_GET_CHALLENGE | INS_SET_STATUS | INS_RESET_RETRY_COUNTER
        ),
        _ => true,
    };
    if !allowed {
        return Err(if lc == LifeCycle::Terminated {
            Refusal::Terminated
        } else {
            Refusal::ConditionsNotSatisfied
        });
    }
    match (gp, cmd.ins) {
        (_, INS_GET_DATA) => get_data(card, cmd),
        (false, INS_GET_CHALLENGE) => get_challenge(card, cmd, rng),
        (false, INS_VERIFY) => verify_pin(card, cmd),
        (false, INS_RESET_RETRY_COUNTER) => reset_retry_counter(card, cmd),
        (false, INS_GENERATE_KEY_PAIR) => generate_key_pair(card, cmd, rng),
        (true, INS_STORE_DATA) => store_data(card, cmd),
        (true, INS_REGISTER) => register(card, cmd, rng),
        (true, INS_REGISTER_COMPLETE) => register_complete(card, cmd),
        (true, INS_SIGN_DOWNLOAD_APPLICATION) => sign_download_application(card, cmd),
        (true, INS_GET_RECEIPT) => get_receipt(card, cmd),
        (true, INS_INSTALL) => install(card, cmd),
        (true, INS_LOAD) => load(card, cmd),
        (true, INS_DELETE) => delete(card, cmd),
        (true, INS_GET_STATUS) => get_status(card, cmd),
        (true, INS_SET_STATUS) => set_status(card, cmd),
        (true, INS_TAMPER) => tamper(card, cmd),
        (_, INS_VERIFY | INS_GET_CHALLENGE | INS_RESET_RETRY_COUNTER | INS_GENERATE_KEY_PAIR)
        | (
            _,
            INS_STORE_DATA
            | INS_REGISTER
            | INS_REGISTER_COMPLETE
            | INS_SIGN_DOWNLOAD_APPLICATION
            | INS_GET_RECEIPT
            | INS_INSTALL
            | INS_LOAD
            | INS_DELETE
            | INS_GET_STATUS
            | INS_SET_STATUS
            | INS_TAMPER,
        ) => Err(Refusal::ClaNotSupported),
        _ => Err(Refusal::InsNotSupported),
    }
}

// ---------------------------------------------------------------------------------------------
// Status and identity

fn get_data<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    let tag = u16::from_be_bytes([cmd.p1, cmd.p2]);
    let s = &card.state;
    if s.life_cycle == LifeCycle::Terminated && !matches!(tag, TAG_CARD_ID | TAG_CARD_STATUS) {
        return Err(Refusal::Terminated);
    }
    let value = match tag {
        TAG_CARD_ID => s.card_id.ok_or(Refusal::ReferencedDataNotFound)?.0.to_vec(),
        TAG_ISSUER_ID => s
            .issuer_id
            .as_ref()
            .ok_or(Refusal::ReferencedDataNotFound)?
            .as_str()
            .as_bytes()
            .to_vec(),
        TAG_CARD_DATA => {
            // Card recognition data (GP CS §H.2): the GP RID OID and the GP version 2.3.
            let mut rec = tlv::encode(0x06, &[0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x01]);
            rec.extend(tlv::encode(
                0x60,
                &tlv::encode(
                    0x06,
                    &[0x2A, 0x86, 0x48, 0x86, 0xFC, 0x6B, 0x02, 0x02, 0x03],
                ),
            ));
            return Ok(tlv::encode(0x66, &tlv::encode(0x73, &rec)));
        }
        TAG_KEY_INFORMATION => {
            // Key information data (GP CS §11.3.3.1): key id, version, type, length.
            let mut body = Vec::new();
            if let Some(sk) = &s.sk {
                body.extend(tlv::encode(0xC0, &[0x01, sk.version.0, 0x88, 32]));
            }
            if let Some(k) = &s.card_key {
                body.extend(tlv::encode(0xC0, &[0x02, k.version.0, 0xB1, 32]));
            }
            return Ok(tlv::encode(0xE0, &body));
        }
        TAG_CARD_STATUS => card_status(s),
        TAG_RC => s
            .registration
            .as_ref()
            .ok_or(Refusal::ReferencedDataNotFound)?
            .rc_der
            .clone(),
        TAG_ISSUER_AUTHENTICATOR if !s.issuer_authenticator.is_empty() => {
            s.issuer_authenticator.clone()
        }
        TAG_IRC => s
            .registration
            .as_ref()
            .ok_or(Refusal::ReferencedDataNotFound)?
            .irc_der
            .clone(),
        TAG_CARD_PUBLIC_KEY => s
            .card_key
            .as_ref()
            .ok_or(Refusal::ReferencedDataNotFound)?
            .key
            .verifying_key()
            .to_sec1(),
        _ => return Err(Refusal::ReferencedDataNotFound),
    };
    Ok(tlv::encode(u32::from(tag), &value))
}

/// The proprietary card status (GET DATA DF30).
fn card_status(s: &PersistentState) -> Vec<u8> {
    CardStatus {
        life_cycle: s.life_cycle.gp_code(),
        capacity: s.capacity,
        free: s.free(),
        receipt_counter: s.receipt_counter,
        pin_tries_left: s.pin.as_ref().map_or(0, |p| p.tries_left),
        time_floor: s.time_floor.0,
        registered: s.registration.is_some(),
        items: s.items.len() as u16,
    }
    .to_bytes()
}

fn get_challenge<N: Nvm>(
    card: &mut Card<N>,
    cmd: &Command,
    rng: &mut dyn Rng,
) -> Result<Vec<u8>, Refusal> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(Refusal::WrongP1P2);
    }
    if !cmd.data.is_empty() {
        return Err(Refusal::WrongLength);
    }
    if card.state.life_cycle == LifeCycle::Manufactured {
        return Err(Refusal::ConditionsNotSatisfied);
    }
    let c = Challenge::generate(rng);
    card.ram.challenge = Some(c);
    Ok(c.0.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Holder verification (CARD-4)

fn pin_mac(salt: &[u8; 16], pin: &[u8]) -> [u8; 32] {
    crypto::hmac_sha256(salt, pin)
}

fn valid_pin(pin: &[u8]) -> bool {
    PIN_LENGTHS.contains(&pin.len()) && pin.iter().all(u8::is_ascii_digit)
}

fn verify_pin<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    if cmd.p1 != 0x00 || cmd.p2 != 0x80 {
        return Err(Refusal::WrongP1P2);
    }
    let pin = card
        .state
        .pin
        .clone()
        .ok_or(Refusal::ConditionsNotSatisfied)?;
    // Empty data: ask for the status (ISO 7816-4 §7.5.6).
    if cmd.data.is_empty() {
        if card.ram.pin_verified {
            return Ok(Vec::new());
        }
        return Err(if pin.tries_left == 0 {
            Refusal::PinBlocked
        } else {
            Refusal::WrongPin {
                tries_left: pin.tries_left,
            }
        });
    }
    if pin.tries_left == 0 {
        return Err(Refusal::PinBlocked);
    }
    if !valid_pin(&cmd.data) {
        return Err(Refusal::WrongData);
    }
    card.ram.pin_verified = false;
    // Anti-tearing: the try is spent and committed before the comparison is made.
    let mut spent = card.state.clone();
    if let Some(p) = spent.pin.as_mut() {
        p.tries_left -= 1;
    }
    card.commit(spent)?;
    if crypto::ct_eq(&pin_mac(&pin.salt, &cmd.data), &pin.mac) {
        let mut restored = card.state.clone();
        if let Some(p) = restored.pin.as_mut() {
            p.tries_left = p.try_limit;
        }
        card.commit(restored)?;
        card.ram.pin_verified = true;
        Ok(Vec::new())
    } else {
        let left = pin.tries_left - 1;
        Err(if left == 0 {
            Refusal::PinBlocked
        } else {
            Refusal::WrongPin { tries_left: left }
        })
    }
}

fn require_pin<N: Nvm>(card: &Card<N>) -> Result<(), Refusal> {
    if card.ram.pin_verified {
        Ok(())
    } else {
        Err(Refusal::SecurityNotSatisfied)
    }
}

fn reset_retry_counter<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    // P1 = 03: reset the counter without new reference data; P2 = 80: the PIN.
    if cmd.p1 != 0x03 || cmd.p2 != 0x80 {
        return Err(Refusal::WrongP1P2);
    }
    let (action, issued_at) = issuer_command(card, &cmd.data)?;
    if action != IssuerAction::UnblockPin {
        return Err(Refusal::WrongData);
    }
    let mut next = card.state.clone();
    let p = next.pin.as_mut().ok_or(Refusal::ConditionsNotSatisfied)?;
    p.tries_left = p.try_limit;
    next.time_floor = next.time_floor.max(issued_at);
    card.commit(next)?;
    Ok(Vec::new())
}

// ---------------------------------------------------------------------------------------------
// Personalisation (CARD-3, KEY-1)

fn store_data<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    let last_block = cmd.p1 & 0x80 != 0;
    let dgis = parse_dgis(&cmd.data)?;
    let mut next = card.state.clone();
    match card.state.life_cycle {
        LifeCycle::Manufactured => {
            for (dgi, value) in dgis {
                personalise(&mut next, dgi, value)?;
            }
            if last_block {
                let complete = next.card_id.is_some()
                    && next.sk.is_some()
                    && next.issuer_anchor.is_some()
                    && next.data_anchor.is_some()
                    && next.pin.is_some()
                    && next.issuer_id.is_some()
                    && next.capacity > 0;
                if !complete {
                    return Err(Refusal::ConditionsNotSatisfied);
                }
                next.life_cycle = LifeCycle::Personalised;
            }
        }
        LifeCycle::Personalised | LifeCycle::InUse => {
            // After personalisation only signed data may be stored: revocation lists.
            for (dgi, value) in dgis {
                if dgi != DGI_CRL {
                    return Err(Refusal::SecurityNotSatisfied);
                }
                accept_crl(&mut next, value)?;
            }
        }
        _ => return Err(Refusal::ConditionsNotSatisfied),
    }
    card.commit(next)?;
    Ok(Vec::new())
}

/// DGI format (GP CS §11.11.2.2): 2-byte DGI, length 1 byte (< 0xFF) or FF + 2 bytes, value.
fn parse_dgis(mut data: &[u8]) -> Result<Vec<(u16, &[u8])>, Refusal> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < 3 {
            return Err(Refusal::WrongData);
        }
        let dgi = u16::from_be_bytes([data[0], data[1]]);
        let (len, hdr) = if data[2] == 0xFF {
            if data.len() < 5 {
                return Err(Refusal::WrongData);
            }
            (usize::from(u16::from_be_bytes([data[3], data[4]])), 5)
        } else {
            (usize::from(data[2]), 3)
        };
        let end = hdr + len;
        if data.len() < end {
            return Err(Refusal::WrongLength);
        }
        out.push((dgi, &data[hdr..end]));
        data = &data[end..];
    }
    Ok(out)
}

fn personalise(next: &mut PersistentState, dgi: u16, value: &[u8]) -> Result<(), Refusal> {
    match dgi {
        DGI_CARD_ID => next.card_id = Some(CardId::from_slice(value).ok_or(Refusal::WrongData)?),
        DGI_SK => {
            // Key version (1..=0x7F) then the 32-byte key.
            let (&kvn, key) = value.split_first().ok_or(Refusal::WrongData)?;
            if !(1..=0x7F).contains(&kvn) {
                return Err(Refusal::WrongData);
            }
            next.sk = Some(SkEntry {
                version: KeyVersion(kvn),
                key: SymmetricKey::from_bytes(key).map_err(|_| Refusal::WrongData)?,
            });
        }
        DGI_ISSUER_ANCHOR | DGI_DATA_ANCHOR => {
            let cert = Certificate::from_der(value).map_err(|_| Refusal::WrongData)?;
            let expected = if dgi == DGI_ISSUER_ANCHOR {
                Role::IssuerRegistrar
            } else {
                Role::DataRegistrar
            };
            if cert.role() != expected {
                return Err(Refusal::WrongData);
            }
            if dgi == DGI_ISSUER_ANCHOR {
                next.issuer_anchor = Some(value.to_vec());
            } else {
                next.data_anchor = Some(value.to_vec());
            }
        }
        DGI_PIN => {
            // Try limit (1..=15), salt (16), then the PIN digits.
            if value.len() < 17 {
                return Err(Refusal::WrongData);
            }
            let try_limit = value[0];
            let mut salt = [0u8; 16];
            salt.copy_from_slice(&value[1..17]);
            let pin = &value[17..];
            if !(1..=15).contains(&try_limit) || !valid_pin(pin) {
                return Err(Refusal::WrongData);
            }
            next.pin = Some(PinRecord {
                salt,
                mac: pin_mac(&salt, pin),
                try_limit,
                tries_left: try_limit,
            });
        }
        DGI_ISSUER_AUTHENTICATOR => {
            if value.is_empty() || value.len() > 64 {
                return Err(Refusal::WrongData);
            }
            next.issuer_authenticator = value.to_vec();
        }
        DGI_CAPACITY => {
            let cap = u32::from_be_bytes(value.try_into().map_err(|_| Refusal::WrongData)?);
            if cap == 0 {
                return Err(Refusal::WrongData);
            }
            next.capacity = cap;
        }
        DGI_TIME_FLOOR => {
            let t = u64::from_be_bytes(value.try_into().map_err(|_| Refusal::WrongData)?);
            next.time_floor = next.time_floor.max(UnixTime(t));
        }
        DGI_ISSUER_ID => {
            let id = std::str::from_utf8(value)
                .ok()
                .and_then(|s| PartyId::new(s).ok())
                .ok_or(Refusal::WrongData)?;
            next.issuer_id = Some(id);
        }
        _ => return Err(Refusal::ReferencedDataNotFound),
    }
    Ok(())
}

/// Accepts a revocation list signed by a registrar root or by the card's issuer, if it is newer
/// than the one held from the same signer (REG-3).
fn accept_crl(next: &mut PersistentState, der: &[u8]) -> Result<(), Refusal> {
    let crl = Crl::from_der(der).map_err(|_| Refusal::WrongData)?;
    let mut signers = Vec::new();
    for anchor in [&next.issuer_anchor, &next.data_anchor]
        .into_iter()
        .flatten()
    {
        signers.push(Certificate::from_der(anchor).map_err(|_| Refusal::MemoryFailure)?);
    }
    if let Some(r) = &next.registration {
        signers.push(Certificate::from_der(&r.irc_der).map_err(|_| Refusal::MemoryFailure)?);
    }
    if !signers.iter().any(|s| crl.verify_signed_by(s).is_ok()) {
        return Err(Refusal::AuthorizationInvalid);
    }
    let mut replaced = false;
    for held in next.crls.iter_mut() {
        let h = Crl::from_der(held).map_err(|_| Refusal::MemoryFailure)?;
        if h.issuer_id() == crl.issuer_id() {
            if crl.number() <= h.number() {
                return Err(Refusal::ConditionsNotSatisfied);
            }
            *held = der.to_vec();
            replaced = true;
        }
    }
    if !replaced {
        next.crls.push(der.to_vec());
    }
    next.time_floor = next.time_floor.max(crl.this_update());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Keys and registration (REG-2)

fn generate_key_pair<N: Nvm>(
    card: &mut Card<N>,
    cmd: &Command,
    rng: &mut dyn Rng,
) -> Result<Vec<u8>, Refusal> {
    // P1 = 00 or 80 (generate), P2 = 00 (the card's one key reference) — ISO 7816-8 §5.1.
    if !matches!(cmd.p1, 0x00 | 0x80) || cmd.p2 != 0x00 {
        return Err(Refusal::WrongP1P2);
    }
    if card.state.life_cycle != LifeCycle::Personalised || card.state.registration.is_some() {
        return Err(Refusal::ConditionsNotSatisfied);
    }
    require_pin(card)?;
    let mut next = card.state.clone();
    let version = next.card_key.as_ref().map_or(KeyVersion(1), |k| {
        KeyVersion(k.version.0.saturating_add(1).min(0x7F))
    });
    next.card_key = Some(CardKeyEntry {
        version,
        key: SigningKey::generate(rng),
    });
    let public = next
        .card_key
        .as_ref()
        .map(|k| k.key.verifying_key().to_sec1());
    card.commit(next)?;
    // Public key template (ISO 7816-8 §5.1): 7F49 { 86 point }.
    Ok(tlv::encode(
        0x7F49,
        &tlv::encode(0x86, &public.unwrap_or_default()),
    ))
}

fn register<N: Nvm>(
    card: &mut Card<N>,
    cmd: &Command,
    rng: &mut dyn Rng,
) -> Result<Vec<u8>, Refusal> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(Refusal::WrongP1P2);
    }
    if card.state.life_cycle != LifeCycle::Personalised {
        return Err(Refusal::ConditionsNotSatisfied);
    }
    require_pin(card)?;
    let tlvs = tlv::parse_all(&cmd.data).map_err(|_| Refusal::WrongData)?;
    let user_info = UserInfo::from_der(tlv::find(&tlvs, TAG_USER_INFO).ok_or(Refusal::WrongData)?)
        .map_err(|_| Refusal::WrongData)?;
    let challenge: [u8; 16] = tlv::find(&tlvs, TAG_ISSUER_CHALLENGE)
        .ok_or(Refusal::WrongData)?
        .try_into()
        .map_err(|_| Refusal::WrongData)?;
    let card_id = card.state.card_id.ok_or(Refusal::ConditionsNotSatisfied)?;
    // The key is generated on the card at the first registration request if GENERATE KEY PAIR
    // was not used; it never leaves the card.
    if card.state.card_key.is_none() {
        let mut next = card.state.clone();
        next.card_key = Some(CardKeyEntry {
            version: KeyVersion(1),
            key: SigningKey::generate(rng),
        });
        card.commit(next)?;
    }
    let key = &card
        .state
        .card_key
        .as_ref()
        .ok_or(Refusal::MemoryFailure)?
        .key;
    let info = RegistrationInfo {
        card_id,
        public_key: key.verifying_key(),
        user_info,
        challenge: Challenge(challenge),
    };
    Ok(info.sign(key).to_der())
}

fn register_complete<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(Refusal::WrongP1P2);
    }
    if card.state.life_cycle != LifeCycle::Personalised {
        return Err(Refusal::ConditionsNotSatisfied);
    }
    require_pin(card)?;
    let tlvs = tlv::parse_all(&cmd.data).map_err(|_| Refusal::WrongData)?;
    let rc_der = tlv::find(&tlvs, TAG_RC_DER).ok_or(Refusal::WrongData)?;
    let irc_der = tlv::find(&tlvs, TAG_IRC_DER).ok_or(Refusal::WrongData)?;
    let rc = Certificate::from_der(rc_der).map_err(|_| Refusal::WrongData)?;
    let irc = Certificate::from_der(irc_der).map_err(|_| Refusal::WrongData)?;
    let s = &card.state;
    let h = held(s)?;
    let verified = pki::verify_chain(
        &[rc.clone(), irc.clone()],
        &[h.issuer_anchor],
        &h.crls,
        s.time_floor,
        Role::Card,
    )
    .map_err(|e| diagnose(&mut card.ram.diagnostic, e))?;
    let key = s.card_key.as_ref().ok_or(Refusal::ConditionsNotSatisfied)?;
    if verified.leaf_key != key.key.verifying_key()
        || rc.card_id() != s.card_id
        || Some(irc.subject_id()) != s.issuer_id.as_ref()
        || rc.user_info_digest().is_none()
    {
        return Err(Refusal::AuthorizationInvalid);
    }
    let mut next = s.clone();
    next.registration = Some(Registration {
        rc_der: rc_der.to_vec(),
        irc_der: irc_der.to_vec(),
    });
    next.life_cycle = LifeCycle::InUse;
    next.time_floor = next.time_floor.max(rc.not_before());
    card.commit(next)?;
    Ok(Vec::new())
}

/// Records why a signed object was refused, for the host's logs and tests (never sent on the
/// wire: the status word stays coarse), and returns the refusal.
fn diagnose(slot: &mut Option<String>, error: impl std::fmt::Display) -> Refusal {
    *slot = Some(error.to_string());
    Refusal::AuthorizationInvalid
}

fn held_crls(s: &PersistentState) -> Result<Vec<Crl>, Refusal> {
    s.crls
        .iter()
        .map(|d| Crl::from_der(d).map_err(|_| Refusal::MemoryFailure))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Storing and deleting under dual consent (STO-1…6)

/// What the card holds for verifying signed objects, parsed once per command.
struct Held {
    card_id: CardId,
    issuer: PartyId,
    time_floor: UnixTime,
    rc: Option<Certificate>,
    issuer_anchor: Certificate,
    data_anchor: Certificate,
    crls: Vec<Crl>,
}

fn held(s: &PersistentState) -> Result<Held, Refusal> {
    // Invariant: personalisation stored valid certificates; a parse failure here is NVM damage.
    let parse = |d: &[u8]| Certificate::from_der(d).map_err(|_| Refusal::MemoryFailure);
    let missing = Refusal::ConditionsNotSatisfied;
    Ok(Held {
        card_id: s.card_id.ok_or(missing)?,
        issuer: s.issuer_id.clone().ok_or(missing)?,
        time_floor: s.time_floor,
        rc: s
            .registration
            .as_ref()
            .map(|r| parse(&r.rc_der))
            .transpose()?,
        issuer_anchor: parse(s.issuer_anchor.as_deref().ok_or(missing)?)?,
        data_anchor: parse(s.data_anchor.as_deref().ok_or(missing)?)?,
        crls: held_crls(s)?,
    })
}

impl Held {
    fn context(&self, challenge: Option<Challenge>) -> CardContext<'_> {
        CardContext {
            card_id: self.card_id,
            rc: self.rc.as_ref(),
            issuer: &self.issuer,
            issuer_anchor: &self.issuer_anchor,
            data_anchor: &self.data_anchor,
            crls: &self.crls,
            time_floor: self.time_floor,
            challenge,
        }
    }
}

/// Verifies an SA against everything the card holds, consuming the outstanding challenge
/// whatever the outcome (a challenge answers one attempt, no more).
fn authorize<N: Nvm>(card: &mut Card<N>, sa_der: &[u8]) -> Result<Authorized, Refusal> {
    let challenge = card.ram.challenge.take();
    let h = held(&card.state)?;
    let sa = SignedObject::from_der(sa_der).map_err(|_| Refusal::WrongData)?;
    let ctx = h.context(challenge);
    protocol::verify_storing_authorization(&sa, &ctx)
        .map_err(|e| diagnose(&mut card.ram.diagnostic, e))
}

/// The common front of INSTALL and DELETE: P1/P2, life cycle, the holder's PIN, then the SA
/// (tag DF50) verified for `operation`. Drops any pending load session. Returns the
/// authorization and the parsed data field.
fn storing_request<N: Nvm>(
    card: &mut Card<N>,
    cmd: &Command,
    p1p2: [u8; 2],
    operation: Operation,
) -> Result<(Authorized, Vec<tlv::Tlv>), Refusal> {
    if [cmd.p1, cmd.p2] != p1p2 {
        return Err(Refusal::WrongP1P2);
    }
    if card.state.life_cycle != LifeCycle::InUse {
        return Err(Refusal::ConditionsNotSatisfied);
    }
    require_pin(card)?;
    card.ram.load = None;
    let tlvs = tlv::parse_all(&cmd.data).map_err(|_| Refusal::WrongData)?;
    let sa = tlv::find(&tlvs, TAG_AUTHORIZATION).ok_or(Refusal::WrongData)?;
    let authorized = authorize(card, sa)?;
    if authorized.sdi.operation != operation {
        return Err(Refusal::WrongData);
    }
    Ok((authorized, tlvs))
}

fn install<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    // INSTALL [for load] (P1 = 02).
    let (authorized, tlvs) = storing_request(card, cmd, [0x02, 0x00], Operation::Store)?;
    let sdi = &authorized.sdi;
    if sdi.size > MAX_ITEM_SIZE {
        return Err(Refusal::NotEnoughMemory);
    }
    let s = &card.state;
    let existing = s.items.iter().find(|i| i.item_id == sdi.item_id);
    if let Some(old) = existing {
        // Anti-rollback: an item is only replaced by a newer version of its owner.
        if old.version >= sdi.version || old.owner != sdi.owner {
            return Err(Refusal::ConditionsNotSatisfied);
        }
    }
    let reclaimed = existing.map_or(0, |i| i.data.len() as u32);
    if sdi.size > s.free() + reclaimed {
        return Err(Refusal::NotEnoughMemory);
    }
    match tlv::find(&tlvs, TAG_CERTIFIED_DATA) {
        Some(der) => {
            let sdci = SignedObject::from_der(der).map_err(|_| Refusal::WrongData)?;
            let h = held(s)?;
            let mut ctx = h.context(None);
            // The provider's DPR may be newer than the floor; the issuer-signed time of this
            // very authorization is one the card is about to accept.
            ctx.time_floor = ctx.time_floor.max(authorized.newest_issued_at);
            protocol::verify_certified_data(&sdci, sdi, &sdi.data_digest, &ctx)
                .map_err(|e| diagnose(&mut card.ram.diagnostic, e))?;
        }
        None if sdi.policy.contains(Policy::CERTIFIED_DATA_REQUIRED) => {
            return Err(Refusal::SecurityNotSatisfied)
        }
        None => {}
    }
    card.ram.load = Some(LoadSession {
        authorized,
        next_block: 0,
        hasher: Sha256Hasher::new(),
        data: Vec::new(),
    });
    Ok(Vec::new())
}

fn load<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    // LOAD: P1 = 00 more blocks / 80 last block; P2 = block number (GP CS §11.6.2).
    let last = match cmd.p1 {
        0x00 => false,
        0x80 => true,
        _ => return Err(Refusal::WrongP1P2),
    };
    let session = card
        .ram
        .load
        .as_mut()
        .ok_or(Refusal::ConditionsNotSatisfied)?;
    if cmd.p2 != session.next_block {
        card.ram.load = None;
        return Err(Refusal::WrongP1P2);
    }
    let size = session.authorized.sdi.size as usize;
    if session.data.len() + cmd.data.len() > size {
        card.ram.load = None;
        return Err(Refusal::WrongData);
    }
    session.data.extend_from_slice(&cmd.data);
    session.hasher.update(&cmd.data);
    session.next_block = session.next_block.wrapping_add(1);
    if !last {
        return Ok(Vec::new());
    }
    // Invariant: checked just above that a session exists.
    let session = card
        .ram
        .load
        .take()
        .ok_or(Refusal::ConditionsNotSatisfied)?;
    let digest = session.hasher.finish();
    let sdi = &session.authorized.sdi;
    if session.data.len() != size || digest != sdi.data_digest {
        return Err(Refusal::WrongData);
    }
    let mut next = card.state.clone();
    next.items.retain(|i| i.item_id != sdi.item_id);
    next.items.push(Item {
        item_id: sdi.item_id.clone(),
        version: sdi.version,
        owner: sdi.owner.clone(),
        policy: sdi.policy,
        digest,
        data: session.data,
    });
    next.items.sort_by(|a, b| a.item_id.cmp(&b.item_id));
    finish_with_receipt(card, next, &session.authorized, ReceiptResult::Stored)
}

fn delete<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    let (authorized, _) = storing_request(card, cmd, [0x00, 0x00], Operation::Delete)?;
    let sdi = &authorized.sdi;
    let item = card
        .state
        .items
        .iter()
        .find(|i| i.item_id == sdi.item_id)
        .ok_or(Refusal::ReferencedDataNotFound)?;
    // Both parties must have agreed on exactly the item that is there.
    if item.owner != sdi.owner || item.version != sdi.version || item.digest != sdi.data_digest {
        return Err(Refusal::AuthorizationInvalid);
    }
    if item.policy.contains(Policy::NOT_DELETABLE) {
        return Err(Refusal::ConditionsNotSatisfied);
    }
    let mut next = card.state.clone();
    next.items.retain(|i| i.item_id != sdi.item_id);
    finish_with_receipt(card, next, &authorized, ReceiptResult::Deleted)
}

/// Commits `next` with the confirmation counter advanced and the time floor moved, and returns
/// the card-signed receipt (STO-7, REC-1).
fn finish_with_receipt<N: Nvm>(
    card: &mut Card<N>,
    mut next: PersistentState,
    authorized: &Authorized,
    result: ReceiptResult,
) -> Result<Vec<u8>, Refusal> {
    next.receipt_counter = next
        .receipt_counter
        .checked_add(1)
        .ok_or(Refusal::ConditionsNotSatisfied)?;
    next.time_floor = next.time_floor.max(authorized.newest_issued_at);
    let card_id = next.card_id.ok_or(Refusal::ConditionsNotSatisfied)?;
    let receipt = Receipt {
        card_id,
        counter: next.receipt_counter,
        operation: authorized.sdi.operation,
        item_id: authorized.sdi.item_id.clone(),
        sdi_digest: authorized.sdi_digest,
        authorization_digest: authorized.authorization_digest,
        result,
        listing_digest: contents(&next)?.digest(),
    };
    let key = next
        .card_key
        .as_ref()
        .ok_or(Refusal::ConditionsNotSatisfied)?
        .key
        .clone();
    // REC-2: the receipt body is kept in the same commit, so GET RECEIPT answers it exactly
    // when the operation took effect.
    next.keep_receipt(receipt.clone());
    card.commit(next)?;
    Ok(receipt.sign(&key).to_der())
}

/// What the card holds, as listings and receipts show it.
fn contents(s: &PersistentState) -> Result<ListingBody, Refusal> {
    let items = s
        .items
        .iter()
        .map(|i| ListedItem {
            item_id: i.item_id.clone(),
            version: i.version,
            size: i.data.len() as u32,
            data_digest: i.digest,
            owner: i.owner.clone(),
            policy: i.policy,
        })
        .collect();
    // Invariant: items are unique by ID and free <= capacity by construction; a failure here
    // means the persisted state is corrupt.
    ListingBody::new(items, s.capacity, s.free()).map_err(|_| Refusal::MemoryFailure)
}

fn get_status<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    let tlvs = tlv::parse_all(&cmd.data).map_err(|_| Refusal::WrongData)?;
    let s = &card.state;
    if let Some(nonce) = tlv::find(&tlvs, TAG_NONCE) {
        // Signed listing (REC-1): what is stored, signed by the card over the requester's nonce.
        if cmd.p1 != 0x40 || nonce.len() > 32 {
            return Err(if nonce.len() > 32 {
                Refusal::WrongData
            } else {
                Refusal::WrongP1P2
            });
        }
        let key = registered_key(s)?;
        let listing = Listing {
            card_id: s.card_id.ok_or(Refusal::ConditionsNotSatisfied)?,
            nonce: Nonce::new(nonce).map_err(|_| Refusal::WrongData)?,
            counter: s.receipt_counter,
            contents: contents(s)?,
        };
        return Ok(listing.sign(key).to_der());
    }
    // GlobalPlatform format (GP CS §11.4.3.1, P2 b2 = 1: TLV): E3 { 4F AID, 9F70 life cycle,
    // C5 privileges }.
    if cmd.p2 & 0x02 == 0 {
        return Err(Refusal::WrongP1P2);
    }
    if tlv::find(&tlvs, TAG_AID).is_none() {
        return Err(Refusal::WrongData);
    }
    let entry = |aid: &[u8], lc: u8, privileges: &[u8]| {
        let mut body = tlv::encode(0x4F, aid);
        body.extend(tlv::encode(0x9F70, &[lc]));
        body.extend(tlv::encode(0xC5, privileges));
        tlv::encode(0xE3, &body)
    };
    let out = match cmd.p1 {
        0x80 => entry(ISD_AID, s.life_cycle.gp_code(), &[0x9E, 0xFE, 0x80]),
        0x40 => s
            .items
            .iter()
            .flat_map(|i| entry(i.item_id.as_bytes(), 0x07, &[0x00, 0x00, 0x00]))
            .collect(),
        0x20 | 0x10 => Vec::new(),
        _ => return Err(Refusal::WrongP1P2),
    };
    if out.is_empty() {
        return Err(Refusal::ReferencedDataNotFound);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Adding an application over the Internet (APP-3) and resuming it (REC-2)

/// The card's registration key, once the card is registered (IN USE with an RC).
fn registered_key(s: &PersistentState) -> Result<&SigningKey, Refusal> {
    s.card_key
        .as_ref()
        .filter(|_| s.registration.is_some())
        .map(|k| &k.key)
        .ok_or(Refusal::ConditionsNotSatisfied)
}

/// SIGN DOWNLOAD APPLICATION: signs the provider's download request (tag DF45) with the
/// card's registration key, adding its receipt counter and free bytes, for a request made for
/// this card and its issuer, in force at the time floor, that fits. Writes nothing.
fn sign_download_application<N: Nvm>(
    card: &mut Card<N>,
    cmd: &Command,
) -> Result<Vec<u8>, Refusal> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(Refusal::WrongP1P2);
    }
    let s = &card.state;
    if s.life_cycle != LifeCycle::InUse {
        return Err(Refusal::ConditionsNotSatisfied);
    }
    let key = registered_key(s)?;
    require_pin(card)?;
    let tlvs = tlv::parse_all(&cmd.data).map_err(|_| Refusal::WrongData)?;
    let der = tlv::find(&tlvs, TAG_DOWNLOAD_REQUEST).ok_or(Refusal::WrongData)?;
    let diagnostic = &mut card.ram.diagnostic;
    let request = DownloadRequest::from_der(der).map_err(|e| {
        *diagnostic = Some(e.to_string());
        Refusal::WrongData
    })?;
    let card_id = s.card_id.ok_or(Refusal::ConditionsNotSatisfied)?;
    let issuer = s
        .issuer_id
        .as_ref()
        .ok_or(Refusal::ConditionsNotSatisfied)?;
    if request.card_id != card_id {
        *diagnostic = Some(format!(
            "download request is for card {}, this is card {card_id}",
            request.card_id
        ));
        return Err(Refusal::WrongData);
    }
    if request.issuer != *issuer {
        *diagnostic = Some(format!(
            "download request is addressed to issuer {}, this card's issuer is {issuer}",
            request.issuer
        ));
        return Err(Refusal::WrongData);
    }
    if request.not_after < s.time_floor {
        *diagnostic = Some(format!(
            "download request expired: not_after {} is before the time floor {}",
            request.not_after, s.time_floor
        ));
        return Err(Refusal::AuthorizationInvalid);
    }
    let free = s.free();
    if request.size > free {
        *diagnostic = Some(format!(
            "download request of {} bytes, {free} free",
            request.size
        ));
        return Err(Refusal::NotEnoughMemory);
    }
    let application = DownloadApplication {
        request,
        counter: s.receipt_counter,
        free,
    };
    Ok(application.sign(key).to_der())
}

/// GET RECEIPT: the kept receipt of the operation whose SA has this digest (tag DF62), signed
/// again — byte-identical to the one the operation answered (RFC 6979 signatures).
fn get_receipt<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(Refusal::WrongP1P2);
    }
    let s = &card.state;
    let key = registered_key(s)?;
    let tlvs = tlv::parse_all(&cmd.data).map_err(|_| Refusal::WrongData)?;
    let digest = tlv::find(&tlvs, TAG_AUTHORIZATION_DIGEST).ok_or(Refusal::WrongData)?;
    let digest = crypto::Digest(digest.try_into().map_err(|_| Refusal::WrongData)?);
    let receipt = s
        .kept_receipt(&digest)
        .ok_or(Refusal::ReferencedDataNotFound)?;
    Ok(receipt.sign(key).to_der())
}

// ---------------------------------------------------------------------------------------------
// Issuer commands and tamper

/// Verifies an issuer-signed command against the card's outstanding challenge.
fn issuer_command<N: Nvm>(
    card: &mut Card<N>,
    data: &[u8],
) -> Result<(IssuerAction, UnixTime), Refusal> {
    let challenge = card.ram.challenge.take();
    let tlvs = tlv::parse_all(data).map_err(|_| Refusal::WrongData)?;
    let obj =
        SignedObject::from_der(tlv::find(&tlvs, TAG_ISSUER_COMMAND).ok_or(Refusal::WrongData)?)
            .map_err(|_| Refusal::WrongData)?;
    // Issuer commands work before registration too (an issuer may unblock or terminate a
    // personalised card): the context then has no RC, which they do not need.
    let h = held(&card.state)?;
    let ctx = h.context(challenge);
    let command = protocol::verify_issuer_command(&obj, &ctx)
        .map_err(|e| diagnose(&mut card.ram.diagnostic, e))?;
    Ok((command.action, command.issued_at))
}

fn set_status<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    // P1 = 80: the card itself; P2: the target life-cycle state (GP CS §11.10.2).
    if cmd.p1 != 0x80 {
        return Err(Refusal::WrongP1P2);
    }
    let wanted = match cmd.p2 {
        0x7F => IssuerAction::Lock,
        0x0F => IssuerAction::Unlock,
        0xFF => IssuerAction::Terminate,
        _ => return Err(Refusal::WrongP1P2),
    };
    let (action, issued_at) = issuer_command(card, &cmd.data)?;
    if action != wanted {
        return Err(Refusal::WrongData);
    }
    let mut next = card.state.clone();
    next.life_cycle = match (action, card.state.life_cycle) {
        (IssuerAction::Lock, LifeCycle::InUse) => LifeCycle::Locked,
        (IssuerAction::Unlock, LifeCycle::Locked) => LifeCycle::InUse,
        (IssuerAction::Terminate, _) => LifeCycle::Terminated,
        _ => return Err(Refusal::ConditionsNotSatisfied),
    };
    next.time_floor = next.time_floor.max(issued_at);
    card.commit(next)?;
    card.ram.pin_verified = false;
    Ok(Vec::new())
}

/// The tamper signal (CARD-5, seed 001 claims 17–19): erase `Sk` and every private key, and
/// terminate. On a physical card a sensor raises it; here it is a command so it can be tested.
fn tamper<N: Nvm>(card: &mut Card<N>, cmd: &Command) -> Result<Vec<u8>, Refusal> {
    if cmd.p1 != 0 || cmd.p2 != 0 {
        return Err(Refusal::WrongP1P2);
    }
    if !cmd.data.is_empty() {
        return Err(Refusal::WrongLength);
    }
    let mut next = card.state.clone();
    next.sk = None;
    next.card_key = None;
    next.life_cycle = LifeCycle::Terminated;
    card.commit(next)?;
    card.ram = crate::Volatile::default();
    Ok(Vec::new())
}
