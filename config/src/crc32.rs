//! CRC-32 (IEEE 802.3, reflected, as zlib and U-Boot's environment use) for blob and slot checks.
//!
//! A CRC detects every single-bit flip and every burst up to 32 bits; the MAC, not the CRC,
//! protects against deliberate change.
//!
//! Slice-by-8: eight 256-entry tables (8 KiB, built at compile time) take eight bytes per step.
//! A commit checks a 200 KB blob twice; bytewise that was 0.65 ms each. (`crc32fast` would be
//! faster still with PCLMULQDQ, but adds 21 KB to a binary that must stay within 4 MiB.)

const TABLES: usize = 8;

const fn make_tables() -> [[u32; 256]; TABLES] {
    let mut tables = [[0u32; 256]; TABLES];
    let mut index = 0;
    while index < 256 {
        // `index < 256` makes the conversion lossless (TryFrom is not usable in a const fn).
        #[allow(clippy::cast_possible_truncation)]
        let mut crc = index as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][index] = crc;
        index += 1;
    }
    // tables[k][b]: the CRC of byte b followed by k zero bytes.
    let mut k = 1;
    while k < TABLES {
        let mut index = 0;
        while index < 256 {
            let previous = tables[k - 1][index];
            tables[k][index] = (previous >> 8) ^ tables[0][(previous & 0xFF) as usize];
            index += 1;
        }
        k += 1;
    }
    tables
}

static TABLES_8: [[u32; 256]; TABLES] = make_tables();

fn at(table: &[u32; 256], byte: u8) -> u32 {
    table[usize::from(byte)]
}

/// The CRC-32 of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let [t0, t1, t2, t3, t4, t5, t6, t7] = &TABLES_8;
    let mut crc = u32::MAX;
    let mut chunks = data.chunks_exact(8);
    for chunk in &mut chunks {
        let [b0, b1, b2, b3, b4, b5, b6, b7] = <[u8; 8]>::try_from(chunk).unwrap_or_default();
        let [c0, c1, c2, c3] = (crc ^ u32::from_le_bytes([b0, b1, b2, b3])).to_le_bytes();
        crc = at(t7, c0)
            ^ at(t6, c1)
            ^ at(t5, c2)
            ^ at(t4, c3)
            ^ at(t3, b4)
            ^ at(t2, b5)
            ^ at(t1, b6)
            ^ at(t0, b7);
    }
    for &byte in chunks.remainder() {
        crc = (crc >> 8) ^ at(t0, crc.to_le_bytes()[0] ^ byte);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    /// The bitwise definition, as the reference.
    fn reference(data: &[u8]) -> u32 {
        let mut crc = u32::MAX;
        for &byte in data {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(super::crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(super::crc32(b""), 0);
    }

    #[test]
    fn matches_the_bitwise_definition_at_every_length_and_alignment() {
        let data: Vec<u8> = (0..4099u32)
            .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[3])
            .collect();
        for start in 0..9 {
            for len in (0..300).chain([1023, 1024, 1025, 4000]) {
                let Some(slice) = data.get(start..start + len) else {
                    continue;
                };
                assert_eq!(super::crc32(slice), reference(slice), "{start}+{len}");
            }
        }
    }
}
