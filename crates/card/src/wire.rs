//! The card's wire vocabulary: instruction bytes, GET DATA tags, data-field tags and
//! personalisation DGIs of `docs/card-os.md`. Shared by the card and by terminals, so the two
//! sides cannot drift apart.

pub const INS_SELECT: u8 = 0xA4; // ISO 7816-4 §7.1.1
pub const INS_GET_RESPONSE: u8 = 0xC0; // ISO 7816-4 §7.6.1

// Instructions. GlobalPlatform's where GP has the command (GP CS v2.3 §11), ISO 7816-4/-8's
// otherwise, proprietary (CLA 80) for what neither has.
pub const INS_VERIFY: u8 = 0x20; // ISO 7816-4 §7.5.6
pub const INS_RESET_RETRY_COUNTER: u8 = 0x2C; // ISO 7816-4 §7.5.10
pub const INS_GENERATE_KEY_PAIR: u8 = 0x46; // ISO 7816-8 §5.1 GENERATE ASYMMETRIC KEY PAIR
pub const INS_GET_CHALLENGE: u8 = 0x84; // ISO 7816-4 §7.5.3
pub const INS_GET_DATA: u8 = 0xCA; // GP CS §11.3 / ISO 7816-4 §7.4.2
pub const INS_REGISTER: u8 = 0xD0; // proprietary: REG-2 registration information
pub const INS_REGISTER_COMPLETE: u8 = 0xD2; // proprietary: REG-2 store RC + IRC
pub const INS_SIGN_DOWNLOAD_APPLICATION: u8 = 0xD4; // proprietary: APP-3 signed download application
pub const INS_GET_RECEIPT: u8 = 0xD6; // proprietary: REC-2 a kept receipt, signed again
pub const INS_STORE_DATA: u8 = 0xE2; // GP CS §11.11
pub const INS_DELETE: u8 = 0xE4; // GP CS §11.2
pub const INS_INSTALL: u8 = 0xE6; // GP CS §11.5
pub const INS_LOAD: u8 = 0xE8; // GP CS §11.6
pub const INS_SET_STATUS: u8 = 0xF0; // GP CS §11.10
pub const INS_GET_STATUS: u8 = 0xF2; // GP CS §11.4
pub const INS_TAMPER: u8 = 0xFE; // proprietary: the tamper signal (CARD-5)

// GET DATA tags.
pub const TAG_ISSUER_ID: u16 = 0x0042; // GP: Issuer Identification Number
pub const TAG_CARD_ID: u16 = 0x0045; // GP: Card Image Number
pub const TAG_CARD_DATA: u16 = 0x0066; // GP: Card Data (card recognition data)
pub const TAG_KEY_INFORMATION: u16 = 0x00E0; // GP: Key Information Template
pub const TAG_CARD_STATUS: u16 = 0xDF30; // proprietary: life cycle, capacity, counters
pub const TAG_RC: u16 = 0xDF31; // proprietary: the registration certificate
pub const TAG_CARD_PUBLIC_KEY: u16 = 0xDF32; // proprietary: the card's public key (SEC1)
pub const TAG_IRC: u16 = 0xDF33; // proprietary: the issuer's certificate the card accepted
pub const TAG_ISSUER_AUTHENTICATOR: u16 = 0xDF34; // proprietary: UPD-1, read by the terminal

// Data-field tags of proprietary TLVs.
pub const TAG_USER_INFO: u32 = 0xDF40;
pub const TAG_ISSUER_CHALLENGE: u32 = 0xDF41;
pub const TAG_RC_DER: u32 = 0xDF42;
pub const TAG_IRC_DER: u32 = 0xDF43;
pub const TAG_DOWNLOAD_REQUEST: u32 = 0xDF45;
pub const TAG_AUTHORIZATION: u32 = 0xDF50;
pub const TAG_CERTIFIED_DATA: u32 = 0xDF51;
pub const TAG_ISSUER_COMMAND: u32 = 0xDF52;
pub const TAG_NONCE: u32 = 0xDF60;
pub const TAG_AUTHORIZATION_DIGEST: u32 = 0xDF62;
pub const TAG_AID: u32 = 0x4F;

// Personalisation data grouping identifiers (STORE DATA, GP CS §11.11.2.2 DGI format).
pub const DGI_CARD_ID: u16 = 0x0101;
pub const DGI_SK: u16 = 0x0102;
pub const DGI_ISSUER_ANCHOR: u16 = 0x0103;
pub const DGI_DATA_ANCHOR: u16 = 0x0104;
pub const DGI_PIN: u16 = 0x0105;
pub const DGI_ISSUER_AUTHENTICATOR: u16 = 0x0106;
pub const DGI_CAPACITY: u16 = 0x0107;
pub const DGI_TIME_FLOOR: u16 = 0x0108;
pub const DGI_ISSUER_ID: u16 = 0x0109;
pub const DGI_CRL: u16 = 0x0201;

/// The proprietary card status record (GET DATA `DF30`), 29 bytes, big-endian.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CardStatus {
    /// GlobalPlatform life-cycle byte.
    pub life_cycle: u8,
    pub capacity: u32,
    pub free: u32,
    pub receipt_counter: u64,
    pub pin_tries_left: u8,
    pub time_floor: u64,
    pub registered: bool,
    pub items: u16,
}

impl CardStatus {
    pub const LEN: usize = 29;

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(Self::LEN);
        v.push(self.life_cycle);
        v.extend(self.capacity.to_be_bytes());
        v.extend(self.free.to_be_bytes());
        v.extend(self.receipt_counter.to_be_bytes());
        v.push(self.pin_tries_left);
        v.extend(self.time_floor.to_be_bytes());
        v.push(u8::from(self.registered));
        v.extend(self.items.to_be_bytes());
        v
    }

    /// Reads the record; `None` unless it is exactly [`CardStatus::LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<CardStatus> {
        if b.len() != Self::LEN {
            return None;
        }
        let u32_at = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[i..i + 8]);
            u64::from_be_bytes(a)
        };
        Some(CardStatus {
            life_cycle: b[0],
            capacity: u32_at(1),
            free: u32_at(5),
            receipt_counter: u64_at(9),
            pin_tries_left: b[17],
            time_floor: u64_at(18),
            registered: b[26] != 0,
            items: u16::from_be_bytes([b[27], b[28]]),
        })
    }
}
