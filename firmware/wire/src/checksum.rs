//! The Internet checksum (RFC 1071) and the pseudo-headers VRRPv3 and ICMPv6 fold into it.
//!
//! Kept separate from the VRRP codec because the same sums serve several receive variants
//! (RFC 5798 pseudo-header, RFC 9568 message-only, keepalived's group-destination form).

use core::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running 32-bit one's-complement accumulator (big-endian 16-bit words; an
/// odd trailing byte is padded with zero as RFC 1071 says).
pub fn accumulate(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for word in &mut chunks {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([word[0], word[1]])));
        sum = fold_once(sum);
    }
    if let [last] = chunks.remainder() {
        sum = sum.wrapping_add(u32::from(u16::from_be_bytes([*last, 0])));
        sum = fold_once(sum);
    }
    sum
}

fn fold_once(sum: u32) -> u32 {
    (sum & 0xffff) + (sum >> 16)
}

/// Folds the accumulator to 16 bits and complements it: the value to store in a checksum field
/// (computed with that field zeroed), or zero when verifying a buffer whose field is filled in.
pub fn finish(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = fold_once(sum);
    }
    // `sum` is at most 0xffff after the loop, so the conversion cannot fail.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// Sum of the IPv4 pseudo-header (RFC 768 / RFC 793 layout): source, destination, zero,
/// protocol, upper-layer length.
pub fn ipv4_pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u32 {
    let mut sum = accumulate(0, &src.octets());
    sum = accumulate(sum, &dst.octets());
    sum = accumulate(sum, &[0, protocol]);
    accumulate(sum, &length.to_be_bytes())
}

/// Sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source, destination, 32-bit
/// upper-layer length, three zero bytes, next header.
pub fn ipv6_pseudo_header(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, length: u32) -> u32 {
    let mut sum = accumulate(0, &src.octets());
    sum = accumulate(sum, &dst.octets());
    sum = accumulate(sum, &length.to_be_bytes());
    accumulate(sum, &[0, 0, 0, next_header])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example_sums_to_known_value() {
        // RFC 1071 section 3 example: 00 01 f2 03 f4 f5 f6 f7 -> one's complement sum ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(accumulate(0, &data)), !0xddf2);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(accumulate(0, &[0x12]), 0x1200);
        assert_eq!(accumulate(0, &[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }

    #[test]
    fn verifying_a_filled_buffer_gives_zero() {
        let mut data = [0x45u8, 0x00, 0x00, 0x1c, 0xab, 0xcd, 0x00, 0x00, 0x12, 0x34];
        let sum = finish(accumulate(0, &data));
        data[6..8].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(finish(accumulate(0, &data)), 0);
    }
}
