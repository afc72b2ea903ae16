//! Status words SW1 SW2 (ISO 7816-4 §5.6): the named interindustry values the card answers
//! with, and the parameterised families `61xx`, `63Cx` and `6Cxx`.

use std::fmt;

/// A status word, SW1 in the high byte and SW2 in the low byte.
///
/// Displays as four upper-case hex digits (`9000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Status(pub u16);

impl Status {
    /// Normal processing (ISO 7816-4 §5.6, table 5).
    pub const SUCCESS: Status = Status(0x9000);
    /// `61xx` with xx = 00: 256 or more response bytes still available (ISO 7816-4 §5.6,
    /// table 5). Use [`Status::bytes_remaining`] for a count.
    pub const BYTES_REMAINING: Status = Status(0x6100);
    /// Warning, state of non-volatile memory unchanged (ISO 7816-4 §5.6, table 5).
    pub const WARNING_NVM_UNCHANGED: Status = Status(0x6200);
    /// Warning, selected file deactivated (ISO 7816-4 §5.6, table 6).
    pub const SELECTED_FILE_INVALIDATED: Status = Status(0x6283);
    /// `63Cx` with x = 0: verification failed, no tries left (ISO 7816-4 §5.6, table 6).
    /// Use [`Status::verify_failed`] for a count.
    pub const VERIFY_FAILED_TRIES: Status = Status(0x63C0);
    /// Error, state of non-volatile memory changed: memory failure (ISO 7816-4 §5.6, table 6).
    pub const MEMORY_FAILURE: Status = Status(0x6581);
    /// Wrong length; no further indication (ISO 7816-4 §5.6, table 5).
    pub const WRONG_LENGTH: Status = Status(0x6700);
    /// Logical channel not supported (ISO 7816-4 §5.6, table 6).
    pub const LOGICAL_CHANNEL_NOT_SUPPORTED: Status = Status(0x6881);
    /// Secure messaging not supported (ISO 7816-4 §5.6, table 6).
    pub const SECURE_MESSAGING_NOT_SUPPORTED: Status = Status(0x6882);
    /// Last command of the chain expected (ISO 7816-4 §5.6, table 6).
    pub const LAST_COMMAND_EXPECTED: Status = Status(0x6883);
    /// Command chaining not supported (ISO 7816-4 §5.6, table 6).
    pub const CHAINING_NOT_SUPPORTED: Status = Status(0x6884);
    /// Security status not satisfied (ISO 7816-4 §5.6, table 6).
    pub const SECURITY_STATUS_NOT_SATISFIED: Status = Status(0x6982);
    /// Authentication method blocked (ISO 7816-4 §5.6, table 6).
    pub const AUTHENTICATION_METHOD_BLOCKED: Status = Status(0x6983);
    /// Reference data not usable (ISO 7816-4 §5.6, table 6).
    pub const REFERENCE_DATA_NOT_USABLE: Status = Status(0x6984);
    /// Conditions of use not satisfied (ISO 7816-4 §5.6, table 6).
    pub const CONDITIONS_OF_USE_NOT_SATISFIED: Status = Status(0x6985);
    /// Command not allowed (no current EF) (ISO 7816-4 §5.6, table 6).
    pub const COMMAND_NOT_ALLOWED: Status = Status(0x6986);
    /// Incorrect parameters in the command data field (ISO 7816-4 §5.6, table 6).
    pub const INCORRECT_DATA: Status = Status(0x6A80);
    /// Function not supported (ISO 7816-4 §5.6, table 6).
    pub const FUNCTION_NOT_SUPPORTED: Status = Status(0x6A81);
    /// File or application not found (ISO 7816-4 §5.6, table 6).
    pub const FILE_OR_APPLICATION_NOT_FOUND: Status = Status(0x6A82);
    /// Not enough memory space in the file (ISO 7816-4 §5.6, table 6).
    pub const NOT_ENOUGH_MEMORY: Status = Status(0x6A84);
    /// Incorrect parameters P1-P2 (ISO 7816-4 §5.6, table 6).
    pub const INCORRECT_P1_P2: Status = Status(0x6A86);
    /// Nc inconsistent with parameters P1-P2 (ISO 7816-4 §5.6, table 6).
    pub const LC_INCONSISTENT_WITH_P1_P2: Status = Status(0x6A87);
    /// Referenced data or reference data not found (ISO 7816-4 §5.6, table 6).
    pub const REFERENCED_DATA_NOT_FOUND: Status = Status(0x6A88);
    /// Wrong parameters P1-P2 (ISO 7816-4 §5.6, table 5).
    pub const WRONG_P1_P2: Status = Status(0x6B00);
    /// `6Cxx` with xx = 00: wrong Le, 256 bytes available (ISO 7816-4 §5.6, table 5).
    /// Use [`Status::wrong_le`] for a count.
    pub const WRONG_LE: Status = Status(0x6C00);
    /// Instruction code not supported or invalid (ISO 7816-4 §5.6, table 5).
    pub const INS_NOT_SUPPORTED: Status = Status(0x6D00);
    /// Class not supported (ISO 7816-4 §5.6, table 5).
    pub const CLA_NOT_SUPPORTED: Status = Status(0x6E00);
    /// No precise diagnosis (ISO 7816-4 §5.6, table 5).
    pub const NO_PRECISE_DIAGNOSIS: Status = Status(0x6F00);

    /// The status word from its two bytes.
    pub const fn from_bytes(sw1: u8, sw2: u8) -> Status {
        Status(u16::from_be_bytes([sw1, sw2]))
    }

    /// SW1 SW2 as they go on the wire.
    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    /// The first status byte.
    pub const fn sw1(self) -> u8 {
        self.to_bytes()[0]
    }

    /// The second status byte.
    pub const fn sw2(self) -> u8 {
        self.to_bytes()[1]
    }

    /// `61xx`: `remaining` response bytes can be fetched with GET RESPONSE. 256 or more (and,
    /// meaninglessly, 0) are written `6100` (ISO 7816-4 §5.6, table 5).
    pub const fn bytes_remaining(remaining: usize) -> Status {
        let sw2 = if remaining >= 256 {
            0
        } else {
            remaining as u16
        };
        Status(0x6100 | sw2)
    }

    /// `63Cx`: verification failed, `tries_left` further tries allowed; counts above 15 are
    /// written as 15 (ISO 7816-4 §5.6, table 6).
    pub const fn verify_failed(tries_left: u8) -> Status {
        let x = if tries_left > 15 { 15 } else { tries_left };
        Status(0x63C0 | x as u16)
    }

    /// `6Cxx`: wrong Le, `available` bytes are available; 256 or more are written `6C00`
    /// (ISO 7816-4 §5.6, table 5).
    pub const fn wrong_le(available: usize) -> Status {
        let sw2 = if available >= 256 {
            0
        } else {
            available as u16
        };
        Status(0x6C00 | sw2)
    }

    /// Processing completed: `9000`, or `61xx` (completed, more data to fetch).
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000 || self.sw1() == 0x61
    }

    /// For `61xx`, how many bytes GET RESPONSE should ask for (`6100` means 256).
    pub const fn remaining(self) -> Option<usize> {
        if self.sw1() == 0x61 {
            Some(if self.sw2() == 0 {
                256
            } else {
                self.sw2() as usize
            })
        } else {
            None
        }
    }

    /// For `6Cxx`, the Le to resend the command with (`6C00` means 256).
    pub const fn correct_le(self) -> Option<usize> {
        if self.sw1() == 0x6C {
            Some(if self.sw2() == 0 {
                256
            } else {
                self.sw2() as usize
            })
        } else {
            None
        }
    }

    /// For `63Cx`, the number of tries left.
    pub const fn tries_left(self) -> Option<u8> {
        if self.0 & 0xFFF0 == 0x63C0 {
            Some(self.sw2() & 0x0F)
        } else {
            None
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let s = Status::from_bytes(0x6A, 0x82);
        assert_eq!(s, Status::FILE_OR_APPLICATION_NOT_FOUND);
        assert_eq!((s.sw1(), s.sw2()), (0x6A, 0x82));
        assert_eq!(s.to_bytes(), [0x6A, 0x82]);
    }

    #[test]
    fn display_is_four_hex_digits() {
        assert_eq!(Status::SUCCESS.to_string(), "9000");
        assert_eq!(Status::INCORRECT_DATA.to_string(), "6A80");
        assert_eq!(Status(0x0001).to_string(), "0001");
    }

    #[test]
    fn bytes_remaining() {
        assert_eq!(Status::bytes_remaining(1), Status(0x6101));
        assert_eq!(Status::bytes_remaining(255), Status(0x61FF));
        assert_eq!(Status::bytes_remaining(256), Status::BYTES_REMAINING);
        assert_eq!(Status::bytes_remaining(70_000), Status(0x6100));
        assert_eq!(Status(0x6100).remaining(), Some(256));
        assert_eq!(Status(0x6110).remaining(), Some(16));
        assert_eq!(Status::SUCCESS.remaining(), None);
    }

    #[test]
    fn verify_failed() {
        assert_eq!(Status::verify_failed(3), Status(0x63C3));
        assert_eq!(Status::verify_failed(0), Status::VERIFY_FAILED_TRIES);
        assert_eq!(Status::verify_failed(200), Status(0x63CF));
        assert_eq!(Status(0x63C2).tries_left(), Some(2));
        assert_eq!(Status(0x6300).tries_left(), None);
    }

    #[test]
    fn wrong_le() {
        assert_eq!(Status::wrong_le(16), Status(0x6C10));
        assert_eq!(Status::wrong_le(256), Status::WRONG_LE);
        assert_eq!(Status(0x6C10).correct_le(), Some(16));
        assert_eq!(Status(0x6C00).correct_le(), Some(256));
        assert_eq!(Status::WRONG_LENGTH.correct_le(), None);
    }

    #[test]
    fn success() {
        assert!(Status::SUCCESS.is_success());
        assert!(Status(0x6105).is_success());
        assert!(!Status::WARNING_NVM_UNCHANGED.is_success());
        assert!(!Status::verify_failed(2).is_success());
        assert!(!Status(0x9001).is_success());
    }

    #[test]
    fn named_values() {
        // Spot checks against ISO 7816-4 tables 5 and 6, so a typo in a constant fails here.
        let table = [
            (Status::SELECTED_FILE_INVALIDATED, 0x6283),
            (Status::MEMORY_FAILURE, 0x6581),
            (Status::LOGICAL_CHANNEL_NOT_SUPPORTED, 0x6881),
            (Status::SECURE_MESSAGING_NOT_SUPPORTED, 0x6882),
            (Status::LAST_COMMAND_EXPECTED, 0x6883),
            (Status::CHAINING_NOT_SUPPORTED, 0x6884),
            (Status::SECURITY_STATUS_NOT_SATISFIED, 0x6982),
            (Status::AUTHENTICATION_METHOD_BLOCKED, 0x6983),
            (Status::REFERENCE_DATA_NOT_USABLE, 0x6984),
            (Status::CONDITIONS_OF_USE_NOT_SATISFIED, 0x6985),
            (Status::COMMAND_NOT_ALLOWED, 0x6986),
            (Status::FUNCTION_NOT_SUPPORTED, 0x6A81),
            (Status::NOT_ENOUGH_MEMORY, 0x6A84),
            (Status::INCORRECT_P1_P2, 0x6A86),
            (Status::LC_INCONSISTENT_WITH_P1_P2, 0x6A87),
            (Status::REFERENCED_DATA_NOT_FOUND, 0x6A88),
            (Status::WRONG_P1_P2, 0x6B00),
            (Status::INS_NOT_SUPPORTED, 0x6D00),
            (Status::CLA_NOT_SUPPORTED, 0x6E00),
            (Status::NO_PRECISE_DIAGNOSIS, 0x6F00),
        ];
        for (status, value) in table {
            assert_eq!(status.0, value, "{status}");
        }
    }
}
