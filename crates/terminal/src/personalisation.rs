//! The issuer's personalisation record (CARD-3, KEY-1) and its STORE DATA encoding.

use card::wire::*;
use crypto::SymmetricKey;
use pki::{CardId, Certificate, PartyId, UnixTime};

/// What an issuer writes into a blank card. Holds `Sk` and the PIN: it lives in the issuer's
/// personalisation facility, never on an untrusted terminal.
#[derive(Debug, Clone)]
pub struct Personalisation {
    pub card_id: CardId,
    pub sk: SymmetricKey,
    pub sk_version: u8,
    pub issuer_anchor: Certificate,
    pub data_anchor: Certificate,
    pub issuer: PartyId,
    pub pin: String,
    pub pin_salt: [u8; 16],
    pub pin_try_limit: u8,
    pub issuer_authenticator: Vec<u8>,
    pub capacity: u32,
    pub time_floor: UnixTime,
}

/// One DGI (GP CS §11.11.2.2): 2-byte DGI, length (1 byte, or FF + 2 bytes), value.
pub fn dgi(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = tag.to_be_bytes().to_vec();
    if value.len() < 0xFF {
        out.push(value.len() as u8);
    } else {
        out.push(0xFF);
        out.extend((value.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(value);
    out
}

impl Personalisation {
    /// The STORE DATA blocks, in order; the last one completes personalisation.
    pub fn blocks(&self) -> Vec<Vec<u8>> {
        let mut sk = vec![self.sk_version];
        sk.extend_from_slice(self.sk.expose_bytes());
        let mut pin = vec![self.pin_try_limit];
        pin.extend_from_slice(&self.pin_salt);
        pin.extend_from_slice(self.pin.as_bytes());
        let mut identity = dgi(DGI_CARD_ID, &self.card_id.0);
        identity.extend(dgi(DGI_ISSUER_ID, self.issuer.as_str().as_bytes()));
        identity.extend(dgi(DGI_SK, &sk));
        identity.extend(dgi(DGI_PIN, &pin));
        identity.extend(dgi(DGI_ISSUER_AUTHENTICATOR, &self.issuer_authenticator));
        identity.extend(dgi(DGI_CAPACITY, &self.capacity.to_be_bytes()));
        identity.extend(dgi(DGI_TIME_FLOOR, &self.time_floor.0.to_be_bytes()));
        vec![
            identity,
            dgi(DGI_ISSUER_ANCHOR, self.issuer_anchor.der()),
            dgi(DGI_DATA_ANCHOR, self.data_anchor.der()),
        ]
    }
}

impl Personalisation {
    /// The record as the issuer's API hands it out (`POST /v1/cards`), checked field by field.
    pub fn from_record(
        record: &party_api::issuer::PersonalisationResponse,
    ) -> Result<Personalisation, String> {
        fn bytes(field: &str, text: &str) -> Result<Vec<u8>, String> {
            hex::decode(text).map_err(|e| format!("the record's {field} is not hex: {e}"))
        }
        fn fixed<const N: usize>(field: &str, text: &str) -> Result<[u8; N], String> {
            bytes(field, text)?
                .try_into()
                .map_err(|_| format!("the record's {field} is not {N} bytes"))
        }
        fn certificate(field: &str, text: &str) -> Result<Certificate, String> {
            Certificate::from_der(&bytes(field, text)?)
                .map_err(|e| format!("the record's {field}: {e}"))
        }
        Ok(Personalisation {
            card_id: CardId(fixed("card_id", &record.card_id)?),
            sk: SymmetricKey::from_bytes(&bytes("sk", &record.sk)?)
                .map_err(|e| format!("the record's sk: {e}"))?,
            sk_version: record.sk_version,
            issuer_anchor: certificate("issuer_anchor", &record.issuer_anchor)?,
            data_anchor: certificate("data_anchor", &record.data_anchor)?,
            issuer: PartyId::new(&record.issuer)
                .map_err(|e| format!("the record's issuer: {e}"))?,
            pin: record.pin.clone(),
            pin_salt: fixed("pin_salt", &record.pin_salt)?,
            pin_try_limit: record.pin_try_limit,
            issuer_authenticator: bytes("issuer_authenticator", &record.issuer_authenticator)?,
            capacity: record.capacity,
            time_floor: UnixTime(record.time_floor),
        })
    }
}
