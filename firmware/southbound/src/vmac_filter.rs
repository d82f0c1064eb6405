//! VRRP `use_vmac`: keeps a backup's group reports off the virtual router MAC, as nftables
//! rules over netlink.
//!
//! Why: the VRRP socket of a vmac instance joins 224.0.0.18 / ff02::12 on the macvlan (the
//! partner's adverts, sent from the same virtual MAC, reach only the macvlan: see
//! [`crate::macvlan`]), and the kernel announces a join with an IGMP / MLD report sent from the
//! macvlan, that is from the virtual MAC, on the backup too. A switch then learns the virtual
//! MAC on the backup's port and sends the virtual router's traffic there until the master's
//! next advert. keepalived moves those reports to the parent with nftables `dup` rules; here
//! the reports of the VRRP group are dropped as they leave the macvlan, and the parent reports
//! the group itself (the engine's socket on the parent joins it too, for unicast adverts).
//! An IPv6 macvlan speaks MLDv1 (`force_mld_version=1`), one group per report, so the master's
//! reports for the solicited-node groups of its IPv6 virtual addresses still leave from the
//! virtual MAC, where the master is.
//!
//! Tandem owns table `inet tandem_vmac`: one base chain, `reports` (filter, hook output,
//! priority 0), with per macvlan `oifname X meta l4proto igmp drop`, `oifname X icmpv6 type
//! 131-132 @th,64,128 ff02::12 drop` (MLDv1 report and done of the VRRP group), `oifname X
//! icmpv6 type 143 drop` (MLDv2, which an MLDv1 link never sends) and `oifname X icmpv6 type
//! 133 drop` (router solicitations), each counted. The table is replaced in one transaction
//! when the set of macvlans changes, and removed when it is empty.

use std::net::Ipv6Addr;

use crate::nft::{
    counter_packets, encode_table_replace, run_batch, BaseChain, ChainKind, NftError, PayloadBase,
    RuleBuilder, HOOK_LOCAL_OUT, VERDICT_DROP,
};

/// The table (family `inet`).
pub const TABLE: &str = "tandem_vmac";
/// Its one chain.
pub const CHAIN: &str = "reports";

const IGMP: u8 = 2;
const ICMPV6: u8 = 58;
const MLD_REPORT: u8 = 131;
const MLD_DONE: u8 = 132;
const ROUTER_SOLICIT: u8 = 133;
const MLD2_REPORT: u8 = 143;
/// ff02::12, the VRRP group.
const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Offset of the multicast address in an MLDv1 message.
const MLD_GROUP: u32 = 8;

const CHAIN_SPEC: BaseChain<'static> = BaseChain {
    table: TABLE,
    name: CHAIN,
    kind: ChainKind::Filter,
    hook: HOOK_LOCAL_OUT,
    priority: 0,
};

/// The rules' expression lists for `vmacs` (sorted, each once).
pub fn rules(vmacs: &[String]) -> Vec<Vec<u8>> {
    let mut names = vmacs.to_vec();
    names.sort_unstable();
    names.dedup();
    let mut rules = Vec::with_capacity(names.len() * 4);
    for name in &names {
        let icmpv6 = || {
            RuleBuilder::new()
                .family(true)
                .output_interface(name)
                .l4proto(ICMPV6)
        };
        rules.push(
            RuleBuilder::new()
                .family(false)
                .output_interface(name)
                .l4proto(IGMP)
                .counter()
                .verdict(VERDICT_DROP)
                .build(),
        );
        rules.push(
            icmpv6()
                .transport_byte_in(0, MLD_REPORT, MLD_DONE)
                .payload_equals(PayloadBase::Transport, MLD_GROUP, &VRRP_GROUP_V6.octets())
                .counter()
                .verdict(VERDICT_DROP)
                .build(),
        );
        for kind in [MLD2_REPORT, ROUTER_SOLICIT] {
            rules.push(
                icmpv6()
                    .transport_byte_in(0, kind, kind)
                    .counter()
                    .verdict(VERDICT_DROP)
                    .build(),
            );
        }
    }
    rules
}

/// The transaction replacing table `inet tandem_vmac` with the rules for `vmacs` (none: the
/// table is removed), numbered from `seq`.
pub fn encode_replace(vmacs: &[String], seq: u32) -> (Vec<u8>, u32) {
    encode_table_replace(&CHAIN_SPEC, &rules(vmacs), seq)
}

/// Keeps the group reports of `vmacs` off the wire (none: removes the table). All or nothing.
pub fn replace(vmacs: &[String]) -> Result<(), NftError> {
    let first = 1u32;
    let (batch, count) = encode_replace(vmacs, first);
    run_batch(&batch, first, count)
}

/// Reports dropped since the table was last replaced (0 without a table).
pub fn dropped_packets() -> Result<u64, NftError> {
    counter_packets(TABLE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn four_counted_drops_per_vmac_naming_it() {
        let names = vec![
            "vrrp.51".to_owned(),
            "vrrp.7".to_owned(),
            "vrrp.51".to_owned(),
        ];
        let all = rules(&names);
        assert_eq!(all.len(), 8, "duplicates collapse");
        for rule in &all[..4] {
            assert!(contains(rule, b"vrrp.51\0"));
            assert!(contains(rule, b"counter\0"));
        }
        assert!(contains(&all[1], &VRRP_GROUP_V6.octets()));
        assert!(contains(&all[4], b"vrrp.7\0"));
        let (batch, _) = encode_replace(&names, 3);
        assert!(contains(&batch, b"tandem_vmac\0"));
        assert!(contains(&batch, b"reports\0"));
        assert!(contains(&batch, &HOOK_LOCAL_OUT.to_be_bytes()));
        // No vmac: the table is only removed (begin, add and delete table, end).
        let (_, count) = encode_replace(&[], 1);
        assert_eq!(count, 4);
    }
}
