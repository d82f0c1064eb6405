//! Source NAT for the real servers behind a NAT director, as nftables rules over netlink.
//!
//! LVS-NAT real servers use the director (its NAT gateway address) as their default route. The
//! replies of balanced connections are translated back by IPVS itself, but connections the
//! real servers open themselves (updates, DNS, mail, ...) would leave with their private source
//! address and never come back: the Red Hat LVS guide's director masquerades them. Tandem owns
//! table `inet tandem_nat` for this, with one base chain, `postrouting` (nat, hook postrouting,
//! priority 100 = srcnat), and one rule per NAT network: `meta nfproto ipv4 ip saddr <network>
//! oifname != "<gateway port>" masquerade` (ip6 likewise). The whole table is replaced in one
//! transaction; no rules remove it.
//!
//! IPVS's own NAT traffic is not touched: `ip_vs_nat_xmit` marks the packets it forwards as
//! untracked (unless `net.ipv4.vs.conntrack` is set), and a NAT chain only sees tracked flows;
//! its replies leave with the VIP as source, outside the masqueraded network anyway. Traffic
//! going back out of the gateway port (real server to real server) keeps its address.

use std::net::IpAddr;

use crate::nft::{
    encode_table_replace, run_batch, BaseChain, ChainKind, NftError, RuleBuilder, HOOK_POST_ROUTING,
};

/// The table (family `inet`).
pub const TABLE: &str = "tandem_nat";
/// Its one chain.
pub const CHAIN: &str = "postrouting";
/// `NF_IP_PRI_NAT_SRC`.
pub const PRIORITY_SRCNAT: i32 = 100;

const NAT_CHAIN: BaseChain<'static> = BaseChain {
    table: TABLE,
    name: CHAIN,
    kind: ChainKind::Nat,
    hook: HOOK_POST_ROUTING,
    priority: PRIORITY_SRCNAT,
};

/// Masquerade what `network`/`prefix_len` sends out of any port but `inside_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasqueradeRule {
    pub network: IpAddr,
    pub prefix_len: u8,
    /// The port the real servers sit behind (the NAT gateway's port).
    pub inside_port: String,
}

/// The transaction replacing table `inet tandem_nat` with `rules` (none: the table is removed),
/// numbered from `seq`.
pub fn encode_replace(rules: &[MasqueradeRule], seq: u32) -> Result<(Vec<u8>, u32), NftError> {
    let expressions = rules
        .iter()
        .map(|rule| {
            Ok(RuleBuilder::new()
                .family(rule.network.is_ipv6())
                .source_prefix(rule.network, rule.prefix_len)?
                .output_interface_not(&rule.inside_port)
                .masquerade()
                .build())
        })
        .collect::<Result<Vec<_>, NftError>>()?;
    Ok(encode_table_replace(&NAT_CHAIN, &expressions, seq))
}

/// Installs `rules` (none: removes the table). All or nothing: on an error the previous table
/// is untouched.
pub fn replace(rules: &[MasqueradeRule]) -> Result<(), NftError> {
    let first = 1u32;
    let (batch, count) = encode_replace(rules, first)?;
    run_batch(&batch, first, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_nat_chain_on_postrouting_with_the_masked_network_and_the_port() {
        let rule = MasqueradeRule {
            network: "198.51.100.0".parse().unwrap(),
            prefix_len: 24,
            inside_port: "private".into(),
        };
        let (batch, count) = encode_replace(std::slice::from_ref(&rule), 1).unwrap();
        // begin, add/del/add table, chain, one rule, end
        assert_eq!(count, 7);
        assert!(contains(&batch, b"tandem_nat\0"));
        // NFTA_CHAIN_TYPE "nat" as a whole attribute (len 8, type 7): the table name's "nat\0"
        // alone would match without it.
        assert!(contains(&batch, &[8, 0, 7, 0, b'n', b'a', b't', 0]));
        assert!(contains(&batch, b"masq\0"));
        assert!(contains(&batch, &[198, 51, 100, 0]));
        assert!(contains(&batch, &[255, 255, 255, 0]));
        let mut padded = [0u8; 16];
        padded[..7].copy_from_slice(b"private");
        assert!(contains(&batch, &padded));
        // NFTA_HOOK_HOOKNUM (len 8, type 1) = NF_INET_POST_ROUTING, big-endian.
        let mut hook = vec![8, 0, 1, 0];
        hook.extend_from_slice(&HOOK_POST_ROUTING.to_be_bytes());
        assert!(contains(&batch, &hook));
    }

    #[test]
    fn a_prefix_longer_than_the_address_is_refused_and_no_rules_remove_the_table() {
        let rule = MasqueradeRule {
            network: "198.51.100.0".parse().unwrap(),
            prefix_len: 33,
            inside_port: "private".into(),
        };
        assert!(matches!(
            encode_replace(&[rule], 1),
            Err(NftError::SourcePrefix { prefix_len: 33 })
        ));
        let (_, count) = encode_replace(&[], 1).unwrap();
        assert_eq!(count, 4, "begin, add table, delete table, end");
    }
}
