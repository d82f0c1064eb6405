//! VRRP Accept_Mode: a master that is not the address owner drops packets addressed to its
//! virtual addresses (RFC 9568 section 6.4.3, "MUST NOT accept packets addressed to the IPvX
//! address(es) associated with the virtual router" unless Accept_Mode is True; RFC 3768 section
//! 6.4.3 likewise, without the Accept_Mode knob), as nftables rules over netlink.
//!
//! Tandem owns table `inet tandem_vrrp` for this (the LVS engine owns `inet tandem`; neither
//! touches the other's). It holds one base chain, `accept_mode` (filter, hook input, priority
//! 110), with `tcp flags & syn == 0 accept` per family and `icmpv6 type 135-136 accept` (when
//! any address is IPv6) first, then one rule per address: `ip daddr X counter drop` /
//! `ip6 daddr X counter drop`. The table is replaced in one transaction whenever the set of
//! addresses changes, and removed when the set is empty.
//!
//! Why these matches:
//! - ARP is not IP: an `inet` chain never sees it, so the box keeps answering ARP for a VIP.
//! - IPv6 neighbour discovery: a multicast NS goes to the solicited-node group (not the VIP),
//!   but the unicast NS of neighbour unreachability detection goes to the VIP itself. Without
//!   the NS/NA exception a client's entry would fail at its first reachability probe
//!   (keepalived's nftables table makes the same exception).
//! - TCP segments without SYN reach the stack: they cannot open a connection, and the stack
//!   answers them with a reset (no socket has them). That reset is what a tickle ACK is for:
//!   after a takeover the partner's clients answer the tickle with an ACK, and only the reset
//!   to that ACK makes them reconnect at once. Dropping it left tickles working only while the
//!   table was not yet installed.
//! - Hook input at priority 110 runs after IPVS. In `net/netfilter/ipvs/ip_vs_core.c`,
//!   `ip_vs_ops4` / `ip_vs_ops6` register `ip_vs_out_hook` (formerly `ip_vs_reply4/6`) on
//!   `NF_INET_LOCAL_IN` at `NF_IP_PRI_NAT_SRC - 2` (98) and `ip_vs_in_hook` (formerly
//!   `ip_vs_remote_request4/6`) at `NF_IP_PRI_NAT_SRC - 1` (99). `ip_vs_in_hook` schedules a
//!   packet for a virtual service and hands it to the forwarding method (NAT, DR, TUN), which
//!   returns `NF_STOLEN`: the packet leaves the hook list and never reaches priority 110. So
//!   traffic for an LVS service on a VIP is balanced as before, and only what would reach a
//!   local socket (ping to the VIP, a port that is no service) is dropped.
//!
//! The drops are counted by a `counter` expression per rule and read back with one rule dump
//! ([`dropped_packets`]); counters start again from zero each time the table is replaced.

use std::net::IpAddr;

use crate::nft::{
    counter_packets, encode_table_replace, run_batch, BaseChain, ChainKind, NftError, RuleBuilder,
    HOOK_LOCAL_IN, VERDICT_ACCEPT, VERDICT_DROP,
};

/// The table (family `inet`).
pub const TABLE: &str = "tandem_vrrp";
/// Its one chain.
pub const CHAIN: &str = "accept_mode";
/// After IPVS's LOCAL_IN hooks (98, 99) and the filter priority (0).
pub const PRIORITY: i32 = 110;

const ICMPV6: u8 = 58;
const TCP: u8 = 6;
/// Offset of the flags byte in the TCP header, and the SYN bit in it.
const TCP_FLAGS: u32 = 13;
const TCP_SYN: u8 = 0x02;
/// ICMPv6 Neighbor Solicitation and Neighbor Advertisement (RFC 4861).
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;

const FILTER_CHAIN: BaseChain<'static> = BaseChain {
    table: TABLE,
    name: CHAIN,
    kind: ChainKind::Filter,
    hook: HOOK_LOCAL_IN,
    priority: PRIORITY,
};

/// The rules' expression lists for dropping traffic to `addresses` (sorted, duplicates once).
pub fn rules(addresses: &[IpAddr]) -> Vec<Vec<u8>> {
    let mut addresses = addresses.to_vec();
    addresses.sort_unstable();
    addresses.dedup();
    let mut rules = Vec::with_capacity(addresses.len() + 3);
    for ipv6 in [false, true] {
        if addresses.iter().any(|a| a.is_ipv6() == ipv6) {
            rules.push(
                RuleBuilder::new()
                    .family(ipv6)
                    .l4proto(TCP)
                    .transport_byte_masked(TCP_FLAGS, TCP_SYN, 0)
                    .verdict(VERDICT_ACCEPT)
                    .build(),
            );
        }
    }
    if addresses.iter().any(IpAddr::is_ipv6) {
        rules.push(
            RuleBuilder::new()
                .family(true)
                .l4proto(ICMPV6)
                .transport_byte_in(0, ND_NEIGHBOR_SOLICIT, ND_NEIGHBOR_ADVERT)
                .verdict(VERDICT_ACCEPT)
                .build(),
        );
    }
    for address in addresses {
        rules.push(
            RuleBuilder::new()
                .family(address.is_ipv6())
                .destination(address)
                .counter()
                .verdict(VERDICT_DROP)
                .build(),
        );
    }
    rules
}

/// The transaction replacing table `inet tandem_vrrp` with rules dropping traffic to
/// `addresses` (none: the table is removed), numbered from `seq`.
pub fn encode_replace(addresses: &[IpAddr], seq: u32) -> (Vec<u8>, u32) {
    encode_table_replace(&FILTER_CHAIN, &rules(addresses), seq)
}

/// Makes the kernel drop local delivery of packets to `addresses` (none: removes the table).
/// All or nothing: on an error the previous table is untouched.
pub fn replace(addresses: &[IpAddr]) -> Result<(), NftError> {
    let first = 1u32;
    let (batch, count) = encode_replace(addresses, first);
    run_batch(&batch, first, count)
}

/// Packets dropped since the table was last replaced (0 when there is no table).
pub fn dropped_packets() -> Result<u64, NftError> {
    counter_packets(TABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Message types of a batch, in order.
    fn types(batch: &[u8]) -> Vec<u16> {
        let mut out = Vec::new();
        let mut rest = batch;
        while rest.len() >= 16 {
            let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
            out.push(u16::from_ne_bytes(rest[4..6].try_into().unwrap()));
            rest = &rest[len..];
        }
        out
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn one_drop_rule_per_address_after_the_tcp_and_nd_exceptions() {
        let v4: IpAddr = "192.0.2.100".parse().unwrap();
        let v6: IpAddr = "2001:db8::100".parse().unwrap();
        let only_v4 = rules(&[v4, v4]);
        assert_eq!(only_v4.len(), 2, "duplicates collapse");
        // First: non-SYN TCP accepted (the stack resets it), no counter, no address.
        assert!(contains(&only_v4[0], b"bitwise\0"));
        assert!(contains(&only_v4[0], &[TCP_SYN]));
        assert!(!contains(&only_v4[0], b"counter\0"));
        assert!(!contains(&only_v4[0], &[192, 0, 2, 100]));
        assert!(contains(&only_v4[1], &[192, 0, 2, 100]));
        assert!(contains(&only_v4[1], b"counter\0"));
        let both = rules(&[v6, v4]);
        assert_eq!(both.len(), 5);
        // TCP for each family, then the ND accept, before any drop.
        assert!(contains(&both[0], b"bitwise\0") && contains(&both[1], b"bitwise\0"));
        assert!(contains(&both[2], &[ND_NEIGHBOR_SOLICIT]));
        assert!(!contains(&both[2], b"counter\0"));
        assert!(contains(
            &both[4],
            &"2001:db8::100"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        ));
    }

    #[test]
    fn the_batch_builds_an_input_chain_or_only_removes_the_table() {
        let nft = |m: u16| (10 << 8) | m;
        let (batch, count) = encode_replace(&["192.0.2.100".parse().unwrap()], 7);
        assert_eq!(
            types(&batch),
            [0x10, nft(0), nft(2), nft(0), nft(3), nft(6), nft(6), 0x11]
        );
        assert_eq!(count, 8);
        assert!(contains(&batch, b"tandem_vrrp\0"));
        assert!(contains(&batch, b"accept_mode\0"));
        assert!(contains(&batch, &PRIORITY.to_be_bytes()));
        let (batch, _) = encode_replace(&[], 1);
        assert_eq!(types(&batch), [0x10, nft(0), nft(2), 0x11]);
    }
}
