//! CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as in zlib and PNG) for the store's
//! header and commit record. An error-detecting code against torn and weak bytes, not a MAC:
//! the commit record also carries a SHA-256 of the journal body. Written here rather than taken
//! from a crate because only `crypto` may name a checksum/crypto library and this is 20 lines.

/// Byte-at-a-time lookup table, computed at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 of `data` (initial value and final XOR 0xFFFFFFFF).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn known_answers() {
        // The standard check value (CRC RevEng catalogue, "CRC-32/ISO-HDLC").
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn any_single_bit_flip_changes_the_crc() {
        let data = *b"commit record of fifty-two bytes, more or less......";
        let good = crc32(&data);
        for i in 0..data.len() {
            for bit in 0..8 {
                let mut d = data;
                d[i] ^= 1 << bit;
                assert_ne!(crc32(&d), good, "byte {i} bit {bit}");
            }
        }
    }
}
