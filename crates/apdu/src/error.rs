//! The one error type of the crate: every way an APDU, a BER-TLV object or a command chain can
//! be malformed, each carrying the offending values, and the status word a card answers with.

use crate::Status;

/// What went wrong while parsing, encoding or chaining APDUs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApduError {
    /// A command APDU needs at least the four header bytes CLA INS P1 P2 (ISO 7816-4 §5.1).
    #[error("command APDU has {len} bytes, fewer than the 4-byte header")]
    CommandTooShort { len: usize },

    /// Lc announces more data bytes than the command carries.
    #[error("Lc declares {declared} data bytes but only {actual} follow")]
    LengthMismatch { declared: usize, actual: usize },

    /// Bytes follow the Le field (or the data field when no Le fits).
    #[error("{count} unexpected bytes after the end of the command")]
    TrailingBytes { count: usize },

    /// The body starts with `00` (the extended-length marker) but has no room for the two
    /// further length bytes (ISO 7816-4 §5.1: a short Lc is never `00`).
    #[error("extended length field truncated: the command body has {body_len} bytes")]
    ExtendedLengthTruncated { body_len: usize },

    /// Extended Lc `00 00 00` is not a valid Lc, yet more bytes follow it.
    #[error("extended Lc is zero but {following} bytes follow it")]
    ZeroExtendedLc { following: usize },

    /// After extended Lc and data, an extended Le takes exactly two bytes.
    #[error("extended Le must be 2 bytes, found {found}")]
    ExtendedLeTruncated { found: usize },

    /// The command data does not fit even an extended APDU.
    #[error("command data of {len} bytes exceeds the maximum of {max}")]
    DataTooLong { len: usize, max: usize },

    /// Le must be in 1..=65536 (absent means no response data is expected).
    #[error("Le {le} is outside 1..=65536")]
    InvalidLe { le: usize },

    /// A response APDU needs at least SW1 SW2 (ISO 7816-4 §5.1).
    #[error("response APDU has {len} bytes, fewer than the 2-byte status word")]
    ResponseTooShort { len: usize },

    /// A BER-TLV object ends before its tag, length or value does.
    #[error("BER-TLV truncated at offset {offset}: needs {needed} bytes, {available} left")]
    TlvTruncated {
        offset: usize,
        needed: usize,
        available: usize,
    },

    /// The indefinite length form `80` is not allowed in ISO 7816-4 BER-TLV.
    #[error("BER-TLV indefinite length at offset {offset}")]
    IndefiniteLength { offset: usize },

    /// A long-form length that would fit in fewer bytes (ISO 8825-1 definite form, minimal).
    #[error("BER-TLV length {length} at offset {offset} is not minimally encoded")]
    NonMinimalLength { offset: usize, length: usize },

    /// A length field of more than four subsequent bytes.
    #[error("BER-TLV length field at offset {offset} has {octets} subsequent bytes (max 4)")]
    LengthFieldTooLong { offset: usize, octets: usize },

    /// Tags are at most three bytes here (ISO 7816-4 §5.2).
    #[error("BER-TLV tag at offset {offset} is longer than 3 bytes")]
    TagTooLong { offset: usize },

    /// `00` and `FF` are not valid first tag bytes (ISO 7816-4 §5.2 uses them as padding,
    /// which this crate refuses rather than skips).
    #[error("invalid BER-TLV tag byte {byte:#04x} at offset {offset}")]
    InvalidTag { offset: usize, byte: u8 },

    /// Bytes follow the single BER-TLV object that was expected.
    #[error("{count} bytes follow the BER-TLV object")]
    TlvTrailingBytes { count: usize },

    /// A chained command's successor has another header (ISO 7816-4 §5.4.1).
    #[error("command chain broken: expected header {expected:02X?}, got {got:02X?}")]
    ChainBroken { expected: [u8; 4], got: [u8; 4] },

    /// The chained data would exceed what the card is willing to buffer.
    #[error("command chain of {got} bytes exceeds the maximum of {max}")]
    ChainTooLong { max: usize, got: usize },
}

impl ApduError {
    /// The status word a card answers with when it meets this error (ISO 7816-4 §5.6).
    ///
    /// Length problems are `6700`, malformed data objects `6A80`, a broken chain `6883`.
    pub fn status(&self) -> Status {
        match self {
            ApduError::CommandTooShort { .. }
            | ApduError::LengthMismatch { .. }
            | ApduError::TrailingBytes { .. }
            | ApduError::ExtendedLengthTruncated { .. }
            | ApduError::ZeroExtendedLc { .. }
            | ApduError::ExtendedLeTruncated { .. }
            | ApduError::DataTooLong { .. }
            | ApduError::InvalidLe { .. }
            | ApduError::ChainTooLong { .. } => Status::WRONG_LENGTH,
            ApduError::TlvTruncated { .. }
            | ApduError::IndefiniteLength { .. }
            | ApduError::NonMinimalLength { .. }
            | ApduError::LengthFieldTooLong { .. }
            | ApduError::TagTooLong { .. }
            | ApduError::InvalidTag { .. }
            | ApduError::TlvTrailingBytes { .. } => Status::INCORRECT_DATA,
            ApduError::ChainBroken { .. } => Status::LAST_COMMAND_EXPECTED,
            ApduError::ResponseTooShort { .. } => Status::NO_PRECISE_DIAGNOSIS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(
            ApduError::LengthMismatch {
                declared: 8,
                actual: 3
            }
            .status(),
            Status::WRONG_LENGTH
        );
        assert_eq!(
            ApduError::IndefiniteLength { offset: 1 }.status(),
            Status::INCORRECT_DATA
        );
        assert_eq!(
            ApduError::ChainBroken {
                expected: [0, 0xDA, 0, 0],
                got: [0, 0xA4, 4, 0]
            }
            .status(),
            Status::LAST_COMMAND_EXPECTED
        );
    }

    #[test]
    fn messages_carry_values() {
        let e = ApduError::ChainBroken {
            expected: [0x00, 0xDA, 0x01, 0x02],
            got: [0x00, 0xA4, 0x04, 0x00],
        };
        assert_eq!(
            e.to_string(),
            "command chain broken: expected header [00, DA, 01, 02], got [00, A4, 04, 00]"
        );
        assert_eq!(
            ApduError::InvalidTag {
                offset: 3,
                byte: 0xFF
            }
            .to_string(),
            "invalid BER-TLV tag byte 0xff at offset 3"
        );
    }
}
