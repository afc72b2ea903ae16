//! Command APDUs (ISO 7816-4 §5.1): the four cases in short and extended form, parsed once into
//! a typed [`Command`] and encoded back in the shortest form that holds it.

use crate::ApduError;

/// CLA bit b5: "command is not the last command of a chain" (ISO 7816-4 §5.4.1).
pub const CLA_CHAINING: u8 = 0x10;
/// Largest Nc a short APDU can carry (ISO 7816-4 §5.1).
pub const MAX_SHORT_DATA: usize = 255;
/// Largest Ne a short APDU can ask for: Le `00` (ISO 7816-4 §5.1).
pub const MAX_SHORT_LE: usize = 256;
/// Largest Nc an extended APDU can carry (ISO 7816-4 §5.1).
pub const MAX_EXTENDED_DATA: usize = 65_535;
/// Largest Ne an extended APDU can ask for: Le `00 00` (ISO 7816-4 §5.1).
pub const MAX_EXTENDED_LE: usize = 65_536;

/// Short or extended length fields (ISO 7816-4 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// One-byte Lc and Le: at most 255 data bytes in, 256 out.
    Short,
    /// Three-byte Lc and two- or three-byte Le: at most 65 535 in, 65 536 out.
    Extended,
}

/// A command APDU.
///
/// `le` is Ne, the maximum number of response data bytes expected: `None` when the command has
/// no Le field, otherwise `Some(n)` with `n` in `1..=65536` (a short Le byte `00` is 256, an
/// extended Le `00 00` is 65 536).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    pub data: Vec<u8>,
    pub le: Option<usize>,
}

impl Command {
    /// A command without Le (case 1 or 3).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8, data: impl Into<Vec<u8>>) -> Command {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: data.into(),
            le: None,
        }
    }

    /// The same command expecting up to `le` response bytes (case 2 or 4).
    pub fn with_le(self, le: usize) -> Command {
        Command {
            le: Some(le),
            ..self
        }
    }

    /// CLA INS P1 P2.
    pub fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }

    /// True when CLA bit b5 says more commands of this chain follow (ISO 7816-4 §5.4.1).
    pub fn is_chained(&self) -> bool {
        self.cla & CLA_CHAINING != 0
    }

    /// Parses one command APDU, short or extended, cases 1 to 4 (ISO 7816-4 §5.1).
    ///
    /// Every byte must be accounted for: a wrong Lc or bytes after Le are errors.
    pub fn parse(bytes: &[u8]) -> Result<Command, ApduError> {
        Command::parse_with_framing(bytes).map(|(command, _)| command)
    }

    /// Like [`Command::parse`], also telling which length fields the command used, so a card
    /// can answer an extended command with an extended response (see
    /// [`crate::chaining::ResponseQueue::respond`]). Case 1 counts as short.
    pub fn parse_with_framing(bytes: &[u8]) -> Result<(Command, Framing), ApduError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(ApduError::CommandTooShort { len: bytes.len() });
        };
        let command = |data: &[u8], le: Option<usize>| Command {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data: data.to_vec(),
            le,
        };
        match body {
            // Case 1.
            [] => Ok((command(&[], None), Framing::Short)),
            // Case 2S.
            [le] => Ok((command(&[], Some(short_le(*le))), Framing::Short)),
            // A short Lc is never 00: a leading 00 announces extended lengths.
            [0, rest @ ..] => {
                let [hi, lo, rest @ ..] = rest else {
                    return Err(ApduError::ExtendedLengthTruncated {
                        body_len: body.len(),
                    });
                };
                let n = usize::from(u16::from_be_bytes([*hi, *lo]));
                if rest.is_empty() {
                    // Case 2E.
                    return Ok((command(&[], Some(extended_le(n))), Framing::Extended));
                }
                if n == 0 {
                    return Err(ApduError::ZeroExtendedLc {
                        following: rest.len(),
                    });
                }
                let (data, tail) = split_data(rest, n)?;
                let le = match tail {
                    // Case 3E.
                    [] => None,
                    // Case 4E.
                    [hi, lo] => Some(extended_le(usize::from(u16::from_be_bytes([*hi, *lo])))),
                    [_] => return Err(ApduError::ExtendedLeTruncated { found: 1 }),
                    _ => {
                        return Err(ApduError::TrailingBytes {
                            count: tail.len() - 2,
                        })
                    }
                };
                Ok((command(data, le), Framing::Extended))
            }
            [lc, rest @ ..] => {
                let (data, tail) = split_data(rest, usize::from(*lc))?;
                let le = match tail {
                    // Case 3S.
                    [] => None,
                    // Case 4S.
                    [le] => Some(short_le(*le)),
                    _ => {
                        return Err(ApduError::TrailingBytes {
                            count: tail.len() - 1,
                        })
                    }
                };
                Ok((command(data, le), Framing::Short))
            }
        }
    }

    /// The framing [`Command::to_bytes`] uses: short when the data has at most 255 bytes and
    /// Le is at most 256, extended otherwise.
    pub fn framing(&self) -> Framing {
        let long_le = matches!(self.le, Some(n) if n > MAX_SHORT_LE);
        if self.data.len() <= MAX_SHORT_DATA && !long_le {
            Framing::Short
        } else {
            Framing::Extended
        }
    }

    /// Checks that the command can be encoded: at most 65 535 data bytes, Le in 1..=65536.
    pub fn check(&self) -> Result<(), ApduError> {
        if self.data.len() > MAX_EXTENDED_DATA {
            return Err(ApduError::DataTooLong {
                len: self.data.len(),
                max: MAX_EXTENDED_DATA,
            });
        }
        match self.le {
            Some(le) if le == 0 || le > MAX_EXTENDED_LE => Err(ApduError::InvalidLe { le }),
            _ => Ok(()),
        }
    }

    /// [`Command::to_bytes`] after [`Command::check`]: the encoding, or why there is none.
    pub fn encode(&self) -> Result<Vec<u8>, ApduError> {
        self.check()?;
        Ok(self.to_bytes())
    }

    /// The command on the wire, in the framing [`Command::framing`] names.
    ///
    /// For a command that [`Command::check`] accepts, `Command::parse(&c.to_bytes()) == Ok(c)`.
    /// Otherwise this still never panics: `Some(0)` is written as no Le (Ne = 0 is what an
    /// absent Le means), an Le above 65 536 as `00 00` (the most an APDU can ask for), and data
    /// beyond 65 535 bytes behind an extended Lc of `00 00 00`, which every ISO 7816-4 parser
    /// rejects rather than misreads. Use [`Command::encode`] to get an error instead.
    pub fn to_bytes(&self) -> Vec<u8> {
        let le = match self.le {
            None | Some(0) => None,
            Some(n) => Some(n.min(MAX_EXTENDED_LE)),
        };
        let mut out = Vec::with_capacity(4 + 3 + self.data.len() + 3);
        out.extend_from_slice(&self.header());
        match self.framing() {
            Framing::Short => {
                if !self.data.is_empty() {
                    // Invariant: Framing::Short means data.len() <= 255.
                    out.push(self.data.len() as u8);
                    out.extend_from_slice(&self.data);
                }
                if let Some(n) = le {
                    // 256 wraps to 00, as ISO 7816-4 §5.1 encodes it.
                    out.push((n % 256) as u8);
                }
            }
            Framing::Extended => {
                if !self.data.is_empty() {
                    // Deliberately invalid for oversized data; see the doc comment.
                    let lc = u16::try_from(self.data.len()).unwrap_or(0);
                    out.push(0);
                    out.extend_from_slice(&lc.to_be_bytes());
                    out.extend_from_slice(&self.data);
                }
                if let Some(n) = le {
                    if self.data.is_empty() {
                        out.push(0);
                    }
                    // 65536 wraps to 00 00, as ISO 7816-4 §5.1 encodes it.
                    out.extend_from_slice(&((n % 65_536) as u16).to_be_bytes());
                }
            }
        }
        out
    }
}

/// A short Le byte: `00` means 256.
fn short_le(byte: u8) -> usize {
    if byte == 0 {
        MAX_SHORT_LE
    } else {
        usize::from(byte)
    }
}

/// An extended Le value: `00 00` means 65 536.
fn extended_le(value: usize) -> usize {
    if value == 0 {
        MAX_EXTENDED_LE
    } else {
        value
    }
}

/// The `declared` data bytes and what follows them.
fn split_data(rest: &[u8], declared: usize) -> Result<(&[u8], &[u8]), ApduError> {
    if rest.len() < declared {
        return Err(ApduError::LengthMismatch {
            declared,
            actual: rest.len(),
        });
    }
    Ok(rest.split_at(declared))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// SELECT the GlobalPlatform Issuer Security Domain by AID (ISO 7816-4 §11.1.1).
    const SELECT_ISD: &str = "00 A4 04 00 08 A000000151000000";

    #[test]
    fn case_1() {
        let c = Command::parse(&h("00 70 00 00")).unwrap();
        assert_eq!(c, Command::new(0x00, 0x70, 0, 0, []));
        assert_eq!(c.to_bytes(), h("00 70 00 00"));
    }

    #[test]
    fn case_2_short() {
        let c = Command::parse(&h("00 CA 9F 7F 2D")).unwrap();
        assert_eq!(c, Command::new(0x00, 0xCA, 0x9F, 0x7F, []).with_le(0x2D));
        assert_eq!(c.to_bytes(), h("00 CA 9F 7F 2D"));
    }

    #[test]
    fn short_le_00_means_256() {
        let c = Command::parse(&h("00 C0 00 00 00")).unwrap();
        assert_eq!(c.le, Some(256));
        assert_eq!(c.to_bytes(), h("00 C0 00 00 00"));
        assert_eq!(c.framing(), Framing::Short);
    }

    #[test]
    fn case_3_short() {
        let c = Command::parse(&h(SELECT_ISD)).unwrap();
        assert_eq!(
            c,
            Command::new(0x00, 0xA4, 0x04, 0x00, h("A000000151000000"))
        );
        assert_eq!(c.to_bytes(), h(SELECT_ISD));
    }

    #[test]
    fn case_4_short() {
        let bytes = h(&format!("{SELECT_ISD} 00"));
        let (c, framing) = Command::parse_with_framing(&bytes).unwrap();
        assert_eq!(c.data, h("A000000151000000"));
        assert_eq!(c.le, Some(256));
        assert_eq!(framing, Framing::Short);
        assert_eq!(c.to_bytes(), bytes);
    }

    #[test]
    fn case_2_extended() {
        let (c, framing) = Command::parse_with_framing(&h("00 B0 00 00 00 01 00")).unwrap();
        assert_eq!(c.le, Some(256));
        assert_eq!(framing, Framing::Extended);
        // 256 fits a short Le, so it is re-encoded short.
        assert_eq!(c.to_bytes(), h("00 B0 00 00 00"));

        let c = Command::parse(&h("00 B0 00 00 00 00 00")).unwrap();
        assert_eq!(c.le, Some(65_536));
        assert_eq!(c.to_bytes(), h("00 B0 00 00 00 00 00"));

        let c = Command::parse(&h("00 B0 00 00 00 01 01")).unwrap();
        assert_eq!(c.le, Some(257));
        assert_eq!(c.to_bytes(), h("00 B0 00 00 00 01 01"));
    }

    #[test]
    fn case_3_extended() {
        let mut bytes = h("80 E8 00 00 00 01 00");
        bytes.extend([0xAB; 256]);
        let (c, framing) = Command::parse_with_framing(&bytes).unwrap();
        assert_eq!(c.data, vec![0xAB; 256]);
        assert_eq!(c.le, None);
        assert_eq!(framing, Framing::Extended);
        assert_eq!(c.to_bytes(), bytes);
    }

    #[test]
    fn case_4_extended() {
        let mut bytes = h("00 2A 9E 9A 00 00 03 010203");
        bytes.extend(h("00 00"));
        let c = Command::parse(&bytes).unwrap();
        assert_eq!(c.data, h("010203"));
        assert_eq!(c.le, Some(65_536));
        assert_eq!(c.to_bytes(), bytes);

        // Short data with a large Le must still be extended on the wire.
        let c = Command::new(0x00, 0x2A, 0x9E, 0x9A, h("010203")).with_le(1000);
        assert_eq!(c.framing(), Framing::Extended);
        assert_eq!(c.to_bytes(), h("00 2A 9E 9A 00 0003 010203 03E8"));
        assert_eq!(Command::parse(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn rejects_short_header() {
        for len in 0..4 {
            assert_eq!(
                Command::parse(&vec![0; len]),
                Err(ApduError::CommandTooShort { len })
            );
        }
    }

    #[test]
    fn rejects_lc_longer_than_data() {
        assert_eq!(
            Command::parse(&h("00 A4 04 00 08 A0000001")),
            Err(ApduError::LengthMismatch {
                declared: 8,
                actual: 4
            })
        );
        assert_eq!(
            Command::parse(&h("00 DA 00 00 00 01 00 AA")),
            Err(ApduError::LengthMismatch {
                declared: 256,
                actual: 1
            })
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        assert_eq!(
            Command::parse(&h("00 A4 04 00 02 3F00 00 00 00")),
            Err(ApduError::TrailingBytes { count: 2 })
        );
        assert_eq!(
            Command::parse(&h("00 A4 04 00 00 0002 3F00 0000 FF")),
            Err(ApduError::TrailingBytes { count: 1 })
        );
        assert_eq!(
            Command::parse(&h("00 B0 00 00 00 00 00 00")),
            Err(ApduError::ZeroExtendedLc { following: 1 })
        );
    }

    #[test]
    fn rejects_zero_short_lc_followed_by_data() {
        // `00` where a short Lc would be is the extended marker, so `00 AA` cannot be a case 3S
        // command with Lc = 0 and must be rejected.
        assert_eq!(
            Command::parse(&h("00 DA 00 00 00 AA")),
            Err(ApduError::ExtendedLengthTruncated { body_len: 2 })
        );
        assert_eq!(
            Command::parse(&h("00 DA 00 00 00 00 02 AABB CC")),
            Err(ApduError::ExtendedLeTruncated { found: 1 })
        );
    }

    #[test]
    fn check_and_encode() {
        let c = Command::new(0, 0xDA, 0, 0, vec![0; 65_535]).with_le(65_536);
        assert_eq!(c.check(), Ok(()));
        assert_eq!(Command::parse(&c.encode().unwrap()).unwrap(), c);

        let big = Command::new(0, 0xDA, 0, 0, vec![0; 65_536]);
        assert_eq!(
            big.encode(),
            Err(ApduError::DataTooLong {
                len: 65_536,
                max: 65_535
            })
        );
        // Oversized data never encodes to something a card could misread.
        assert!(Command::parse(&big.to_bytes()).is_err());

        let zero = Command::new(0, 0xB0, 0, 0, []).with_le(0);
        assert_eq!(zero.encode(), Err(ApduError::InvalidLe { le: 0 }));
        assert_eq!(zero.to_bytes(), h("00 B0 00 00"));

        let huge = Command::new(0, 0xB0, 0, 0, []).with_le(70_000);
        assert_eq!(huge.encode(), Err(ApduError::InvalidLe { le: 70_000 }));
        assert_eq!(
            Command::parse(&huge.to_bytes()).unwrap().le,
            Some(MAX_EXTENDED_LE)
        );
    }

    #[test]
    fn chaining_bit() {
        assert!(Command::new(0x10, 0xDB, 0x3F, 0xFF, [1]).is_chained());
        assert!(Command::new(0x90, 0xE8, 0, 0, [1]).is_chained());
        assert!(!Command::new(0x00, 0xDB, 0x3F, 0xFF, [1]).is_chained());
        assert_eq!(
            Command::new(0x10, 0xDB, 0x3F, 0xFF, []).header(),
            [0x10, 0xDB, 0x3F, 0xFF]
        );
    }
}
