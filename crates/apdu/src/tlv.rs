//! BER-TLV data objects (ISO 7816-4 §5.2, ISO/IEC 8825-1): tags of one to three bytes and
//! definite, minimally encoded lengths. Constructed objects are returned as plain values; parse
//! their value again with [`parse_all`] to descend.
//!
//! Parsing is strict so that every accepted encoding is the only one for its content: no
//! indefinite lengths, no padding bytes `00`/`FF` between objects, no over-long lengths.

use crate::ApduError;

/// Largest tag number we parse: three tag bytes (ISO 7816-4 §5.2).
const MAX_TAG_BYTES: usize = 3;
/// Largest number of subsequent length bytes we parse (`84 xx xx xx xx`).
const MAX_LENGTH_BYTES: usize = 4;
/// First tag byte: low five bits all set means "tag number continues" (ISO 8825-1 §8.1.2.4).
const TAG_NUMBER_CONTINUES: u8 = 0x1F;
/// Subsequent tag byte: b8 set means "another tag byte follows" (ISO 8825-1 §8.1.2.4.2).
const TAG_MORE_BYTES: u8 = 0x80;
/// First tag byte: b6 set means a constructed encoding (ISO 8825-1 §8.1.2.5).
const TAG_CONSTRUCTED: u8 = 0x20;
/// Length byte `80`: indefinite form (ISO 8825-1 §8.1.3.6), refused by ISO 7816-4 BER-TLV.
const LENGTH_INDEFINITE: u8 = 0x80;

/// One BER-TLV data object.
///
/// `tag` holds the raw tag bytes big-endian: `4F`, `9F7F`, `DF01` are `0x4F`, `0x9F7F`,
/// `0xDF01`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tlv {
    pub tag: u32,
    pub value: Vec<u8>,
}

impl Tlv {
    /// A data object.
    pub fn new(tag: u32, value: impl Into<Vec<u8>>) -> Tlv {
        Tlv {
            tag,
            value: value.into(),
        }
    }

    /// True when the tag says the value is itself a sequence of data objects.
    pub fn is_constructed(&self) -> bool {
        first_tag_byte(self.tag) & TAG_CONSTRUCTED != 0
    }

    /// The object's encoding, as [`encode`] writes it.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self.tag, &self.value)
    }
}

/// Encodes tag, definite length and value.
///
/// The length uses the short form below 128 and the shortest long form `81`..`84` otherwise.
/// The tag is written as its significant bytes (at least one); tags that [`parse_one`] refuses
/// (over three bytes, or whose bytes do not form a well-formed tag) are written all the same.
pub fn encode(tag: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 5 + value.len());
    encode_into(&mut out, tag, value);
    out
}

/// Like [`encode`], appending to `out`, for building constructed objects without copies.
pub fn encode_into(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    let tag_bytes = tag.to_be_bytes();
    let first = tag_bytes.iter().position(|&b| b != 0).unwrap_or(3);
    out.extend_from_slice(&tag_bytes[first..]);

    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let len_bytes = (len as u64).to_be_bytes();
        let first = len_bytes.iter().position(|&b| b != 0).unwrap_or(7);
        out.push(0x80 | (8 - first) as u8);
        out.extend_from_slice(&len_bytes[first..]);
    }
    out.extend_from_slice(value);
}

/// Parses the data object at the start of `bytes`, returning it and how many bytes it took.
/// Bytes after it are left alone.
pub fn parse_one(bytes: &[u8]) -> Result<(Tlv, usize), ApduError> {
    parse_at(bytes, 0)
}

/// Parses `bytes` as exactly one data object.
pub fn parse_single(bytes: &[u8]) -> Result<Tlv, ApduError> {
    let (tlv, consumed) = parse_one(bytes)?;
    match bytes.len() - consumed {
        0 => Ok(tlv),
        count => Err(ApduError::TlvTrailingBytes { count }),
    }
}

/// Parses `bytes` as a sequence of data objects, all the way to the end; empty input is an
/// empty sequence.
pub fn parse_all(bytes: &[u8]) -> Result<Vec<Tlv>, ApduError> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        let (tlv, consumed) = parse_at(bytes, offset)?;
        out.push(tlv);
        offset += consumed;
    }
    Ok(out)
}

/// The value of the first object with `tag`, if any.
pub fn find(tlvs: &[Tlv], tag: u32) -> Option<&[u8]> {
    tlvs.iter()
        .find(|tlv| tlv.tag == tag)
        .map(|tlv| tlv.value.as_slice())
}

fn first_tag_byte(tag: u32) -> u8 {
    let bytes = tag.to_be_bytes();
    bytes.iter().copied().find(|&b| b != 0).unwrap_or(0)
}

/// Parses the object starting at `start`; offsets in errors are relative to `bytes`.
fn parse_at(bytes: &[u8], start: usize) -> Result<(Tlv, usize), ApduError> {
    let mut reader = Reader { bytes, pos: start };

    let first = reader.byte()?;
    if first == 0x00 || first == 0xFF {
        return Err(ApduError::InvalidTag {
            offset: start,
            byte: first,
        });
    }
    let mut tag = u32::from(first);
    if first & TAG_NUMBER_CONTINUES == TAG_NUMBER_CONTINUES {
        let mut tag_len = 1;
        loop {
            let b = reader.byte()?;
            tag_len += 1;
            if tag_len > MAX_TAG_BYTES {
                return Err(ApduError::TagTooLong { offset: start });
            }
            tag = (tag << 8) | u32::from(b);
            if b & TAG_MORE_BYTES == 0 {
                break;
            }
        }
    }

    let length_offset = reader.pos;
    let l0 = reader.byte()?;
    let len = if l0 < 0x80 {
        usize::from(l0)
    } else if l0 == LENGTH_INDEFINITE {
        return Err(ApduError::IndefiniteLength {
            offset: length_offset,
        });
    } else {
        let octets = usize::from(l0 & 0x7F);
        if octets > MAX_LENGTH_BYTES {
            return Err(ApduError::LengthFieldTooLong {
                offset: length_offset,
                octets,
            });
        }
        let raw = reader.take(octets)?;
        let len = raw.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        // Minimal: one long-form byte only for 128..=255, and no leading zero bytes. `raw` is
        // not empty: `80` was refused above, so `octets` is at least 1.
        if raw[0] == 0 || (octets == 1 && len < 0x80) {
            return Err(ApduError::NonMinimalLength {
                offset: length_offset,
                length: usize::try_from(len).unwrap_or(usize::MAX),
            });
        }
        usize::try_from(len).unwrap_or(usize::MAX)
    };

    let value = reader.take(len)?;
    Ok((Tlv::new(tag, value), reader.pos - start))
}

/// A cursor that turns running out of bytes into [`ApduError::TlvTruncated`].
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, ApduError> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ApduError> {
        let available = self.bytes.len().saturating_sub(self.pos);
        if n > available {
            return Err(ApduError::TlvTruncated {
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// A File Control Information template as SELECT returns it (ISO 7816-4 §7.4.3):
    /// `6F` { `84` DF name, `A5` { `9F65` maximum length of data field in command } }.
    const FCI: &str = "6F 10 84 08 A000000151000000 A5 04 9F65 01 FF";

    #[test]
    fn parses_nested_fci() {
        let outer = parse_all(&h(FCI)).unwrap();
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].tag, 0x6F);
        assert!(outer[0].is_constructed());

        let inner = parse_all(&outer[0].value).unwrap();
        assert_eq!(find(&inner, 0x84), Some(&h("A000000151000000")[..]));
        assert!(!inner[0].is_constructed());
        let proprietary = parse_all(find(&inner, 0xA5).unwrap()).unwrap();
        assert_eq!(proprietary, vec![Tlv::new(0x9F65, [0xFF])]);
        assert_eq!(find(&inner, 0x9F65), None);
    }

    #[test]
    fn tag_forms() {
        assert_eq!(parse_single(&h("4F 01 AA")).unwrap().tag, 0x4F);
        assert_eq!(parse_single(&h("9F7F 00")).unwrap().tag, 0x9F7F);
        assert_eq!(parse_single(&h("DF01 00")).unwrap().tag, 0xDF01);
        assert_eq!(parse_single(&h("DF8101 00")).unwrap().tag, 0xDF8101);
        assert_eq!(
            parse_one(&h("DF818101 00")),
            Err(ApduError::TagTooLong { offset: 0 })
        );
        assert_eq!(
            parse_all(&h("4F00 00 4F00")),
            Err(ApduError::InvalidTag {
                offset: 2,
                byte: 0x00
            })
        );
        assert_eq!(
            parse_one(&h("FF 00")),
            Err(ApduError::InvalidTag {
                offset: 0,
                byte: 0xFF
            })
        );
    }

    #[test]
    fn length_forms() {
        for (len, prefix) in [
            (0, "53 00"),
            (127, "53 7F"),
            (128, "53 81 80"),
            (255, "53 81 FF"),
            (256, "53 82 0100"),
            (65_535, "53 82 FFFF"),
            (65_536, "53 83 010000"),
        ] {
            let value = vec![0x5A; len];
            let encoded = encode(0x53, &value);
            let mut expected = h(prefix);
            expected.extend_from_slice(&value);
            assert_eq!(encoded, expected, "length {len}");
            assert_eq!(parse_single(&encoded), Ok(Tlv::new(0x53, value)));
        }
        assert_eq!(encode(0x9F7F, &[1]), h("9F7F 01 01"));
        assert_eq!(encode(0xDF8101, &[]), h("DF8101 00"));
    }

    #[test]
    fn rejects_indefinite_length() {
        assert_eq!(
            parse_one(&h("30 80 0000")),
            Err(ApduError::IndefiniteLength { offset: 1 })
        );
    }

    #[test]
    fn rejects_non_minimal_lengths() {
        assert_eq!(
            parse_one(&h("53 81 7F")),
            Err(ApduError::NonMinimalLength {
                offset: 1,
                length: 127
            })
        );
        assert_eq!(
            parse_one(&h("9F7F 82 0080")),
            Err(ApduError::NonMinimalLength {
                offset: 2,
                length: 128
            })
        );
        assert_eq!(
            parse_one(&h("53 85 0000000001")),
            Err(ApduError::LengthFieldTooLong {
                offset: 1,
                octets: 5
            })
        );
    }

    #[test]
    fn rejects_truncation() {
        assert_eq!(
            parse_one(&[]),
            Err(ApduError::TlvTruncated {
                offset: 0,
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            parse_one(&h("9F")),
            Err(ApduError::TlvTruncated {
                offset: 1,
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            parse_one(&h("53 82 01")),
            Err(ApduError::TlvTruncated {
                offset: 2,
                needed: 2,
                available: 1
            })
        );
        assert_eq!(
            parse_all(&h("4F 01 AA 53 03 0102")),
            Err(ApduError::TlvTruncated {
                offset: 5,
                needed: 3,
                available: 2
            })
        );
        // A four-byte length must not overflow or allocate before the bounds check.
        assert!(matches!(
            parse_one(&h("53 84 FFFFFFFF 00")),
            Err(ApduError::TlvTruncated { needed, .. }) if needed == 0xFFFF_FFFF
        ));
    }

    #[test]
    fn single_rejects_trailing_bytes() {
        assert_eq!(
            parse_single(&h("4F 01 AA BB")),
            Err(ApduError::TlvTrailingBytes { count: 1 })
        );
        assert_eq!(parse_one(&h("4F 01 AA BB")).unwrap().1, 3);
    }

    #[test]
    fn empty_sequence() {
        assert_eq!(parse_all(&[]), Ok(vec![]));
    }

    #[test]
    fn encode_into_builds_constructed() {
        let mut inner = Vec::new();
        encode_into(&mut inner, 0x84, &h("A000000151000000"));
        encode_into(&mut inner, 0xA5, &encode(0x9F65, &[0xFF]));
        assert_eq!(encode(0x6F, &inner), h(FCI));
        assert_eq!(Tlv::new(0x6F, inner).to_bytes(), h(FCI));
    }
}
