//! REG-2: the user information an RC certifies and the registration information a card signs
//! with its new key (proof of possession), and the issuer's check of it.

use der::asn1::{OctetStringRef, Utf8StringRef};
use der::Sequence;

use crate::codec::{der_codec, DerCodec};
use crate::error::{ConsentError, ProtocolError};
use crate::field::{self, invalid, octets, utf8, Challenge};
use crate::signed::{Purpose, Signed, SignedObject};
use crypto::VerifyingKey;
use pki::CardId;

/// Who the card belongs to, as the registration certificate certifies it (SPEC REG-2). The RC
/// carries SHA-256 of this value's DER ([`UserInfo::digest`]).
///
/// Bounds, in characters: user ID 1..=64, name 0..=128, email 0..=128; no control characters
/// (they would let a value disguise itself on a screen).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserInfo {
    user_id: String,
    name: String,
    email: String,
}

#[derive(Sequence)]
pub(crate) struct UserInfoWire<'a> {
    user_id: Utf8StringRef<'a>,
    name: Utf8StringRef<'a>,
    email: Utf8StringRef<'a>,
}

impl UserInfo {
    pub const MAX_USER_ID_CHARS: usize = 64;
    pub const MAX_NAME_CHARS: usize = 128;
    pub const MAX_EMAIL_CHARS: usize = 128;

    pub fn new(user_id: &str, name: &str, email: &str) -> Result<UserInfo, ProtocolError> {
        check_text("userId", user_id, 1, Self::MAX_USER_ID_CHARS)?;
        check_text("name", name, 0, Self::MAX_NAME_CHARS)?;
        check_text("email", email, 0, Self::MAX_EMAIL_CHARS)?;
        Ok(UserInfo {
            user_id: user_id.to_string(),
            name: name.to_string(),
            email: email.to_string(),
        })
    }

    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn email(&self) -> &str {
        &self.email
    }

    fn to_wire(&self) -> der::Result<UserInfoWire<'_>> {
        Ok(UserInfoWire {
            user_id: utf8(&self.user_id)?,
            name: utf8(&self.name)?,
            email: utf8(&self.email)?,
        })
    }

    pub(crate) fn from_wire(wire: UserInfoWire<'_>) -> Result<UserInfo, ProtocolError> {
        UserInfo::new(
            wire.user_id.as_str(),
            wire.name.as_str(),
            wire.email.as_str(),
        )
    }
}

fn check_text(
    field: &'static str,
    text: &str,
    min: usize,
    max: usize,
) -> Result<(), ProtocolError> {
    let chars = text.chars().count();
    if chars < min || chars > max {
        return Err(invalid(
            "UserInfo",
            field,
            format!("{chars} characters, expected {min}..={max}"),
        ));
    }
    if let Some(c) = text.chars().find(|c| c.is_control()) {
        return Err(invalid(
            "UserInfo",
            field,
            format!("control character U+{:04X}", u32::from(c)),
        ));
    }
    Ok(())
}

der_codec!(UserInfo, UserInfoWire, "UserInfo");

/// What a card sends its issuer to be registered (REG-2), signed with the new key itself under
/// [`Purpose::RegistrationInfo`] and no chain: the signature proves possession of the key, and
/// the issuer's challenge makes the proof fresh, so a terminal can neither substitute its own
/// key nor replay an old registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationInfo {
    pub card_id: CardId,
    /// The card's new registration public key (uncompressed SEC1, 65 bytes on the wire).
    pub public_key: VerifyingKey,
    pub user_info: UserInfo,
    /// The issuer's single-use challenge for this registration.
    pub challenge: Challenge,
}

#[derive(Sequence)]
pub(crate) struct RegistrationInfoWire<'a> {
    card_id: OctetStringRef<'a>,
    public_key: OctetStringRef<'a>,
    user_info: UserInfoWire<'a>,
    challenge: OctetStringRef<'a>,
}

/// The length of an uncompressed SEC1 P-256 point (SEC 1 §2.3.3).
const SEC1_UNCOMPRESSED_LEN: usize = 65;

impl RegistrationInfo {
    /// Signs this registration information with the card's new key (no chain: the key is
    /// inside the body).
    pub fn sign(&self, new_key: &crypto::SigningKey) -> SignedObject {
        <Self as Signed>::sign(self, new_key, Vec::new())
    }

    fn to_wire<'a>(&'a self, sec1: &'a [u8]) -> der::Result<RegistrationInfoWire<'a>> {
        Ok(RegistrationInfoWire {
            card_id: octets(&self.card_id.0)?,
            public_key: octets(sec1)?,
            user_info: self.user_info.to_wire()?,
            challenge: octets(&self.challenge.0)?,
        })
    }

    pub(crate) fn from_wire(wire: RegistrationInfoWire<'_>) -> Result<Self, ProtocolError> {
        const OBJECT: &str = "RegistrationInfo";
        let key_bytes = wire.public_key.as_bytes();
        if key_bytes.len() != SEC1_UNCOMPRESSED_LEN || key_bytes[0] != 0x04 {
            return Err(invalid(
                OBJECT,
                "publicKey",
                format!(
                    "{} bytes, expected an uncompressed SEC1 point of {SEC1_UNCOMPRESSED_LEN}",
                    key_bytes.len()
                ),
            ));
        }
        let public_key = VerifyingKey::from_sec1(key_bytes)
            .map_err(|e| invalid(OBJECT, "publicKey", e.to_string()))?;
        Ok(RegistrationInfo {
            card_id: field::card_id(OBJECT, "cardId", wire.card_id)?,
            public_key,
            user_info: UserInfo::from_wire(wire.user_info)?,
            challenge: field::challenge(OBJECT, "challenge", wire.challenge)?,
        })
    }
}

// Written by hand rather than with `der_codec!`: the public key is held as a key, and its SEC1
// bytes exist only while encoding.
impl DerCodec for RegistrationInfo {
    const NAME: &'static str = "RegistrationInfo";

    fn to_der(&self) -> Vec<u8> {
        let sec1 = self.public_key.to_sec1();
        crate::codec::encode(self.to_wire(&sec1))
    }

    fn from_der(bytes: &[u8]) -> Result<Self, ProtocolError> {
        Self::from_wire(crate::codec::decode::<RegistrationInfoWire<'_>>(
            Self::NAME,
            bytes,
        )?)
    }
}

impl Signed for RegistrationInfo {
    const PURPOSE: Purpose = Purpose::RegistrationInfo;
}

impl RegistrationInfo {
    /// The canonical DER encoding (docs/protocol.asn).
    pub fn to_der(&self) -> Vec<u8> {
        <Self as DerCodec>::to_der(self)
    }

    /// Decodes canonical DER, refusing trailing bytes and out-of-range values.
    pub fn from_der(bytes: &[u8]) -> Result<Self, ProtocolError> {
        <Self as DerCodec>::from_der(bytes)
    }

    /// SHA-256 of the DER encoding.
    pub fn digest(&self) -> crypto::Digest {
        <Self as DerCodec>::digest(self)
    }
}

/// The issuer's check of a card's registration information (REG-2): the purpose, the proof of
/// possession (the signature verifies under the public key inside the body) and that it
/// answers `challenge`, the issuer's outstanding challenge for this registration. The issuer
/// then checks the card ID against its own registry.
pub fn verify_registration_info(
    registration: &SignedObject,
    challenge: &Challenge,
) -> Result<RegistrationInfo, ConsentError> {
    let claimed: RegistrationInfo = registration.body_unverified()?;
    let info: RegistrationInfo = registration.open(&claimed.public_key)?;
    if info.challenge != *challenge {
        return Err(ConsentError::ChallengeMismatch {
            object: "RegistrationInfo",
            expected: *challenge,
            found: info.challenge,
        });
    }
    Ok(info)
}
