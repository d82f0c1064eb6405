//! Load sharing of one address between the two boxes, CLUSTERIP-style, as nftables rules over
//! netlink.
//!
//! Why this exists: iptables' CLUSTERIP target, which let several hosts answer one IPv4
//! address by hashing each flow to one of them, was removed from Linux in v6.3 (commit
//! 9db5d918e2c0). Tandem builds the same thing from nf_tables expressions, encoded here with
//! [`crate::nft`]'s encoder (the image has no `nft`). Both boxes hold the service address (the
//! VIP) and a shared MAC; upstream sends every packet for the VIP to that MAC, so both boxes
//! receive every packet; each box hashes the flow into one of `buckets` buckets and takes the
//! packet only when the bucket is one of its own. When the partner fails, this box adds the
//! partner's buckets to its `taken_over` set (one set element transaction, [`set_buckets`]).
//!
//! The shared MAC is either a multicast MAC (`unicast_flood == false`, e.g.
//! `01:00:5e:7f:00:01`: switches flood it; the NIC is told to accept it with [`join_mac`]) or a
//! locally administered unicast MAC that is never a source address, so switches never learn
//! it and flood it as unknown unicast (`unicast_flood == true`, e.g. `02:54:44:00:00:01`).
//!
//! Tandem owns three tables named [`TABLE`] (nothing else is touched):
//! - `ip tandem_cluster`: per group `g` two sets of bucket numbers (4-byte host-order
//!   integers, plain hash sets changed at run time), `mine_g` and `taken_g`, and one base chain
//!   `prerouting` (filter, hook prerouting, priority -150: after conntrack at -200) with five
//!   rules per group, all starting `iifname IF ether daddr MAC ip daddr VIP`:
//!   1. `ct mark 0x54440001 meta pkttype set host counter accept`: flows this box took;
//!   2. `jhash FIELDS mod BUCKETS seed S @taken_g ct mark set 0x54440001 meta pkttype set host
//!      counter accept`: buckets taken over from a failed partner, any packet, mid-stream too;
//!   3. `meta l4proto tcp tcp flags & (fin|syn|rst|ack) == syn jhash ... @mine_g ct mark set
//!      ... accept` and `meta l4proto != tcp ct state new jhash ... @mine_g ct mark set ...
//!      accept`: new flows in this box's own buckets. Not `ct state new` for TCP: conntrack's
//!      loose pickup makes a mid-stream segment of the partner's connection NEW here, and
//!      taking it would make this box's stack reset the partner's connection;
//!   4. `counter drop`: everything else for the VIP (the partner's flows).
//!
//!   `meta pkttype set host` matters: a frame to a multicast MAC is `PACKET_MULTICAST`, and
//!   TCP and UDP discard anything not `PACKET_HOST`.
//! - `arp tandem_cluster`: chain `output` (filter, hook output, priority 0), per group
//!   `meta oifname IF arp saddr ip VIP arp saddr ether set MAC` (requests and replies, as
//!   CLUSTERIP's ARP mangling did), so neighbours resolve the VIP to the shared MAC. The
//!   Ethernet source stays the box's own MAC, which is what keeps a unicast shared MAC unknown
//!   to switches.
//! - `netdev tandem_cluster`, only when a group uses unicast flooding: one ingress chain per
//!   such interface (`ingress_IF`, priority 0) with `ether daddr MAC meta pkttype set host`. A
//!   frame to a unicast MAC that is not the NIC's own is `PACKET_OTHERHOST`, which `ip_rcv`
//!   drops before prerouting.
//!
//! [`CT_MARK`] (`0x54440001`, "TD" and 1) is the conntrack mark of flows this box accepted:
//! once a flow is marked, its packets stay here whatever happens to the bucket sets, so a
//! bucket moving back to the recovered partner leaves the connections already open here alone
//! (the partner drops their segments: rule 3 only takes SYNs).
//!
//! [`replace`] rebuilds all three tables in one transaction (each added then deleted, then
//! built again, as [`crate::nft::encode_table_replace`] does), so the kernel applies all or
//! none; counters start from zero. [`set_buckets`] changes only set elements, in one
//! transaction. Kernel modules: `nf_tables`, `nft_ct` (which brings `nf_conntrack`) and
//! `nft_hash`; the appliance has no `modprobe` for the kernel to call, so load them first.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use crate::nft::{
    rule_counters, run_batch, BaseChain, Batch, ChainKind, Family, NftError, PayloadBase,
    PayloadField, RuleBuilder, HOOK_ARP_OUT, HOOK_NETDEV_INGRESS, HOOK_PRE_ROUTING, PACKET_HOST,
    SET_KEY_U32, VERDICT_ACCEPT, VERDICT_DROP,
};
use crate::nlmsg::{Request, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use crate::rtnl::{Rtnl, RtnlError};

/// The tables' name, in families `ip`, `arp` and `netdev`.
pub const TABLE: &str = "tandem_cluster";
/// The `ip` table's chain.
pub const CHAIN: &str = "prerouting";
/// The `arp` table's chain.
pub const ARP_CHAIN: &str = "output";
/// After conntrack (-200), so `ct` expressions see the packet's connection.
pub const PRIORITY: i32 = -150;
/// The conntrack mark of the flows this box accepted ("TD", 1).
pub const CT_MARK: u32 = 0x5444_0001;
/// Most buckets a group can have (one bit each in [`BucketSets`]).
pub const MAX_BUCKETS: u32 = 64;
/// Rules per group in the `ip` chain, in order: established, taken over, new TCP, new other,
/// drop.
pub const RULES_PER_GROUP: usize = 5;

const TCP: u8 = 6;
/// Offset of the flags byte in the TCP header, and the bits `tcp flags & (fin|syn|rst|ack)`
/// looks at.
const TCP_FLAGS: u32 = 13;
const TCP_FIN_SYN_RST_ACK: u8 = 0x01 | 0x02 | 0x04 | 0x10;
const TCP_SYN: u8 = 0x02;
/// In an Ethernet/IPv4 ARP header: the sender hardware address, the sender protocol address.
const ARP_SENDER_MAC: u32 = 8;
const ARP_SENDER_IP: u32 = 14;
/// `IFNAMSIZ - 1`.
const IFNAME_MAX: usize = 15;

/// What a flow is hashed on. Both boxes must use the same fields, seed and bucket count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFields {
    /// `ip saddr`: a client stays on one box.
    SourceIp,
    /// `ip saddr . th sport`.
    SourceIpPort,
    /// `ip saddr . th sport . th dport`.
    SourceIpPortDestinationPort,
}

impl HashFields {
    /// The payload fields, as `th` reads them: the transport header's first two 16-bit words
    /// (ports for TCP, UDP, SCTP; type, code and checksum for ICMP; both boxes read the same).
    fn fields(self) -> &'static [PayloadField] {
        const SADDR: PayloadField = PayloadField {
            base: PayloadBase::Network,
            offset: 12,
            len: 4,
        };
        const SPORT: PayloadField = PayloadField {
            base: PayloadBase::Transport,
            offset: 0,
            len: 2,
        };
        const DPORT: PayloadField = PayloadField {
            base: PayloadBase::Transport,
            offset: 2,
            len: 2,
        };
        match self {
            HashFields::SourceIp => &[SADDR],
            HashFields::SourceIpPort => &[SADDR, SPORT],
            HashFields::SourceIpPortDestinationPort => &[SADDR, SPORT, DPORT],
        }
    }
}

/// One load-shared address on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRules {
    /// The service interface (`iifname` / `oifname` match; 1 to 15 bytes).
    pub interface: String,
    pub vip: Ipv4Addr,
    /// The shared MAC.
    pub mac: [u8; 6],
    /// `false`: multicast MAC mode; `true`: unicast flooding MAC mode (adds the netdev table).
    pub unicast_flood: bool,
    pub hash: HashFields,
    pub seed: u32,
    /// The hash's modulus, 1..=64; bucket numbers are `0..buckets`.
    pub buckets: u32,
}

/// The buckets a box takes for one group. Bit `i` = bucket `i` (0-based); bits at or above the
/// group's bucket count are installed as they are and never match.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct BucketSets {
    /// This box's own buckets: new flows are taken, the partner's running flows are not.
    pub mine: u64,
    /// Buckets taken over from a failed partner: every packet is taken.
    pub taken_over: u64,
}

/// Packets counted per group since the last [`replace`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct GroupCounters {
    /// Packets of flows this box had already accepted (`ct mark`).
    pub established: u64,
    /// Packets accepted through the taken-over buckets (they mark their flow, so after the
    /// first packet a flow counts as established).
    pub taken_over: u64,
    /// First packets of new flows in this box's own buckets (TCP SYNs and other new flows).
    pub new_accepted: u64,
    /// Packets for the VIP left to the partner.
    pub dropped: u64,
}

/// The name of group `group`'s set of own buckets.
pub fn mine_set(group: usize) -> String {
    format!("mine_{group}")
}

/// The name of group `group`'s set of taken-over buckets.
pub fn taken_set(group: usize) -> String {
    format!("taken_{group}")
}

/// The name of the netdev ingress chain of `interface` (unicast flooding mode).
pub fn ingress_chain(interface: &str) -> String {
    format!("ingress_{interface}")
}

/// The bucket the kernel's rules put a flow in: nft's `jhash` (the kernel's `jhash()` over the
/// fields, each zero-padded to 4 bytes, reduced with `reciprocal_scale`). For status output
/// and tests; ports are ignored by the fields that do not hash them.
pub fn bucket(
    hash: HashFields,
    seed: u32,
    buckets: u32,
    source: Ipv4Addr,
    source_port: u16,
    destination_port: u16,
) -> u32 {
    let mut key = [0u8; 12];
    key[..4].copy_from_slice(&source.octets());
    key[4..6].copy_from_slice(&source_port.to_be_bytes());
    key[8..10].copy_from_slice(&destination_port.to_be_bytes());
    let len = match hash {
        HashFields::SourceIp => 4,
        HashFields::SourceIpPort => 8,
        HashFields::SourceIpPortDestinationPort => 12,
    };
    let scaled = (u64::from(jhash(&key[..len], seed)) * u64::from(buckets)) >> 32;
    u32::try_from(scaled).unwrap_or(u32::MAX)
}

/// Linux's `jhash()` (`include/linux/jhash.h`, Bob Jenkins' lookup3) for keys up to 12 bytes:
/// no mixing rounds, only the tail, whose bytes are combined little-endian on every CPU.
fn jhash(key: &[u8], seed: u32) -> u32 {
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let init = 0xdead_beef_u32.wrapping_add(len).wrapping_add(seed);
    let (mut a, mut b, mut c) = (init, init, init);
    if key.is_empty() {
        return c;
    }
    let word = |i: usize| -> u32 {
        (0..4).fold(0u32, |acc, j| {
            acc | (u32::from(key.get(i * 4 + j).copied().unwrap_or(0)) << (8 * j))
        })
    };
    a = a.wrapping_add(word(0));
    b = b.wrapping_add(word(1));
    c = c.wrapping_add(word(2));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(14));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(11));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(25));
    c ^= b;
    c = c.wrapping_sub(b.rotate_left(16));
    a ^= c;
    a = a.wrapping_sub(c.rotate_left(4));
    b ^= a;
    b = b.wrapping_sub(a.rotate_left(14));
    c ^= b;
    c.wrapping_sub(b.rotate_left(24))
}

/// The set elements of `bits`: bucket numbers as 4-byte host-order keys (what the hash
/// expression leaves in its register).
fn keys(bits: u64) -> Vec<Vec<u8>> {
    (0..64u32)
        .filter(|bucket| bits & (1u64 << bucket) != 0)
        .map(|bucket| bucket.to_ne_bytes().to_vec())
        .collect()
}

/// Refuses groups the kernel would refuse less clearly (or a bucket count the sets cannot
/// hold).
fn validate(groups: &[(GroupRules, BucketSets)]) -> Result<(), NftError> {
    for (group, (rules, _)) in groups.iter().enumerate() {
        if rules.buckets == 0 || rules.buckets > MAX_BUCKETS {
            return Err(NftError::Buckets {
                group,
                buckets: rules.buckets,
            });
        }
        if rules.interface.is_empty()
            || rules.interface.len() > IFNAME_MAX
            || rules.interface.contains('\0')
        {
            return Err(NftError::Interface {
                name: rules.interface.clone(),
            });
        }
    }
    Ok(())
}

/// The five `ip` rules of group `group`, in [`RULES_PER_GROUP`] order.
fn group_rules(group: usize, rules: &GroupRules) -> Result<Vec<Vec<u8>>, NftError> {
    let base = || {
        RuleBuilder::new()
            .input_interface(&rules.interface)
            .ether_destination(rules.mac)
            .destination(IpAddr::V4(rules.vip))
    };
    let take = |builder: RuleBuilder| {
        builder
            .set_ct_mark(CT_MARK)
            .set_pkttype(PACKET_HOST)
            .counter()
            .verdict(VERDICT_ACCEPT)
            .build()
    };
    let fields = rules.hash.fields();
    let (mine, taken) = (mine_set(group), taken_set(group));
    Ok(vec![
        base()
            .ct_mark(CT_MARK)
            .set_pkttype(PACKET_HOST)
            .counter()
            .verdict(VERDICT_ACCEPT)
            .build(),
        take(base().hash_in_set(fields, rules.seed, rules.buckets, &taken)?),
        take(
            base()
                .l4proto(TCP)
                .transport_byte_masked(TCP_FLAGS, TCP_FIN_SYN_RST_ACK, TCP_SYN)
                .hash_in_set(fields, rules.seed, rules.buckets, &mine)?,
        ),
        take(base().l4proto_not(TCP).ct_state_new().hash_in_set(
            fields,
            rules.seed,
            rules.buckets,
            &mine,
        )?),
        base().counter().verdict(VERDICT_DROP).build(),
    ])
}

/// The transaction replacing Tandem's load-sharing tables with the rules and bucket sets of
/// `groups` (group index = position; none: the tables are only removed), numbered from `seq`.
/// Returns the batch and how many sequence numbers it used. Refuses a bucket count outside
/// 1..=64 and an interface name that cannot be one.
pub fn encode_replace(
    groups: &[(GroupRules, BucketSets)],
    seq: u32,
) -> Result<(Vec<u8>, u32), NftError> {
    validate(groups)?;
    let mut batch = Batch::new(seq);
    for family in [Family::Ip, Family::Arp, Family::Netdev] {
        batch.remove_table(family, TABLE);
    }
    if groups.is_empty() {
        return Ok(batch.finish());
    }

    batch.add_table(Family::Ip, TABLE);
    for (group, (_, sets)) in groups.iter().enumerate() {
        for (name, bits) in [
            (mine_set(group), sets.mine),
            (taken_set(group), sets.taken_over),
        ] {
            batch.add_set(Family::Ip, TABLE, &name, SET_KEY_U32);
            batch.add_elements(Family::Ip, TABLE, &name, &keys(bits));
        }
    }
    batch.add_chain(
        Family::Ip,
        &BaseChain {
            table: TABLE,
            name: CHAIN,
            kind: ChainKind::Filter,
            hook: HOOK_PRE_ROUTING,
            priority: PRIORITY,
        },
        None,
    );
    for (group, (rules, _)) in groups.iter().enumerate() {
        for expressions in group_rules(group, rules)? {
            batch.add_rule(Family::Ip, TABLE, CHAIN, &expressions);
        }
    }

    batch.add_table(Family::Arp, TABLE);
    batch.add_chain(
        Family::Arp,
        &BaseChain {
            table: TABLE,
            name: ARP_CHAIN,
            kind: ChainKind::Filter,
            hook: HOOK_ARP_OUT,
            priority: 0,
        },
        None,
    );
    let mut arp: Vec<(&str, Ipv4Addr, [u8; 6])> = groups
        .iter()
        .map(|(r, _)| (r.interface.as_str(), r.vip, r.mac))
        .collect();
    arp.sort_unstable();
    arp.dedup();
    for (interface, vip, mac) in arp {
        let rule = RuleBuilder::new()
            .output_interface(interface)
            .payload_equals(PayloadBase::Network, ARP_SENDER_IP, &vip.octets())
            .payload_write(PayloadBase::Network, ARP_SENDER_MAC, &mac)
            .build();
        batch.add_rule(Family::Arp, TABLE, ARP_CHAIN, &rule);
    }

    let mut flooded: Vec<(&str, [u8; 6])> = groups
        .iter()
        .filter(|(r, _)| r.unicast_flood)
        .map(|(r, _)| (r.interface.as_str(), r.mac))
        .collect();
    flooded.sort_unstable();
    flooded.dedup();
    if !flooded.is_empty() {
        batch.add_table(Family::Netdev, TABLE);
        let mut interfaces: Vec<&str> = flooded.iter().map(|(i, _)| *i).collect();
        interfaces.dedup();
        for interface in interfaces {
            let chain = ingress_chain(interface);
            batch.add_chain(
                Family::Netdev,
                &BaseChain {
                    table: TABLE,
                    name: &chain,
                    kind: ChainKind::Filter,
                    hook: HOOK_NETDEV_INGRESS,
                    priority: 0,
                },
                Some(interface),
            );
            for (_, mac) in flooded.iter().filter(|(i, _)| *i == interface) {
                let rule = RuleBuilder::new()
                    .ether_destination(*mac)
                    .set_pkttype(PACKET_HOST)
                    .build();
                batch.add_rule(Family::Netdev, TABLE, &chain, &rule);
            }
        }
    }
    Ok(batch.finish())
}

/// Installs `groups` in the running kernel, replacing whatever Tandem had for load sharing, in
/// one transaction (none: removes the tables). All or nothing: on an error the previous tables
/// are untouched. Counters start from zero.
pub fn replace(groups: &[(GroupRules, BucketSets)]) -> Result<(), NftError> {
    let first = 1u32;
    let (batch, count) = encode_replace(groups, first)?;
    run_batch(&batch, first, count)
}

/// The transaction moving buckets: for each `(group, old, new)`, the buckets in `new` but not
/// in `old` are added to the group's sets and those in `old` but not in `new` deleted; nothing
/// else. Numbered from `seq`; returns the batch and how many sequence numbers it used.
pub fn encode_set_buckets(changes: &[(usize, BucketSets, BucketSets)], seq: u32) -> (Vec<u8>, u32) {
    build_set_buckets(changes, seq).finish()
}

fn build_set_buckets(changes: &[(usize, BucketSets, BucketSets)], seq: u32) -> Batch {
    let mut batch = Batch::new(seq);
    for &(group, old, new) in changes {
        for (set, old, new) in [
            (mine_set(group), old.mine, new.mine),
            (taken_set(group), old.taken_over, new.taken_over),
        ] {
            batch.add_elements(Family::Ip, TABLE, &set, &keys(new & !old));
            batch.delete_elements(Family::Ip, TABLE, &set, &keys(old & !new));
        }
    }
    batch
}

/// Moves buckets in the running kernel, in one transaction (see [`encode_set_buckets`]); no
/// difference sends nothing. `old` must be what is installed: deleting a bucket that is not in
/// a set (or naming a group that does not exist) makes the kernel refuse the whole
/// transaction; then [`replace`] puts the tables back in a known state.
pub fn set_buckets(changes: &[(usize, BucketSets, BucketSets)]) -> Result<(), NftError> {
    let first = 1u32;
    let batch = build_set_buckets(changes, first);
    if batch.is_empty() {
        return Ok(());
    }
    let (batch, count) = batch.finish();
    run_batch(&batch, first, count)
}

/// Each group's packet counters, in group order, read with one rule dump of the `ip` table.
/// All zero when the table does not exist; refused when it does not hold `groups` groups'
/// rules.
pub fn counters(groups: usize) -> Result<Vec<GroupCounters>, NftError> {
    let rules = rule_counters(Family::Ip, TABLE)?;
    if rules.is_empty() {
        return Ok(vec![GroupCounters::default(); groups]);
    }
    let expected = groups.saturating_mul(RULES_PER_GROUP);
    if rules.len() != expected {
        return Err(NftError::Layout {
            table: TABLE,
            rules: rules.len(),
            expected,
        });
    }
    Ok(rules
        .chunks_exact(RULES_PER_GROUP)
        .map(|r| GroupCounters {
            established: r[0],
            taken_over: r[1],
            new_accepted: r[2].saturating_add(r[3]),
            dropped: r[4],
        })
        .collect())
}

// Route netlink for the NIC's address filter (`linux/rtnetlink.h`, `linux/neighbour.h`).
const RTM_NEWNEIGH: u16 = 28;
const RTM_DELNEIGH: u16 = 29;
const AF_BRIDGE: u8 = 7;
const NDA_LLADDR: u16 = 2;
const NTF_SELF: u8 = 0x02;
const NUD_NOARP: u16 = 0x40;
const NUD_PERMANENT: u16 = 0x80;

/// `struct ndmsg` + `NDA_LLADDR` as `bridge fdb add|del MAC dev IF self permanent` sends it.
fn fdb_request(kind: u16, flags: u16, ifindex: u32, mac: [u8; 6]) -> io::Result<Request> {
    let index = i32::try_from(ifindex).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("interface index {ifindex} is out of range; pass the kernel's ifindex"),
        )
    })?;
    let mut ndmsg = [0u8; 12];
    ndmsg[0] = AF_BRIDGE;
    ndmsg[4..8].copy_from_slice(&index.to_ne_bytes());
    ndmsg[8..10].copy_from_slice(&(NUD_NOARP | NUD_PERMANENT).to_ne_bytes());
    ndmsg[10] = NTF_SELF;
    Ok(Request::new(kind, NLM_F_REQUEST | NLM_F_ACK | flags, &ndmsg).attribute(NDA_LLADDR, &mac))
}

fn fdb_exchange(request: Request, fine: i32) -> io::Result<()> {
    let mut rtnl = Rtnl::open()?;
    match rtnl.execute(request) {
        Ok(()) => Ok(()),
        Err(RtnlError::Kernel(errno)) if errno == fine => Ok(()),
        Err(RtnlError::Kernel(errno)) => Err(io::Error::from_raw_os_error(errno)),
        Err(RtnlError::Socket(e)) => Err(e),
        Err(other) => Err(io::Error::other(other.to_string())),
    }
}

/// Makes interface `ifindex` receive frames for `mac` (the shared MAC): the address goes into
/// the device's own multicast or unicast filter (`RTM_NEWNEIGH`, `AF_BRIDGE`, `NTF_SELF`,
/// permanent: what `bridge fdb add MAC dev IF self permanent` sends). Already there is success.
pub fn join_mac(ifindex: u32, mac: [u8; 6]) -> io::Result<()> {
    let request = fdb_request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, ifindex, mac)?;
    fdb_exchange(request, libc::EEXIST)
}

/// Takes `mac` out of interface `ifindex`'s address filter again (`RTM_DELNEIGH` likewise).
/// Not there is success.
pub fn leave_mac(ifindex: u32, mac: [u8; 6]) -> io::Result<()> {
    let request = fdb_request(RTM_DELNEIGH, 0, ifindex, mac)?;
    fdb_exchange(request, libc::ENOENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NFT: u16 = 10 << 8;
    const NEWTABLE: u16 = NFT;
    const DELTABLE: u16 = NFT | 2;
    const NEWCHAIN: u16 = NFT | 3;
    const NEWRULE: u16 = NFT | 6;
    const NEWSET: u16 = NFT | 9;
    const NEWSETELEM: u16 = NFT | 12;
    const DELSETELEM: u16 = NFT | 14;
    const BEGIN: u16 = 0x10;
    const END: u16 = 0x11;
    const IP: u8 = 2;
    const ARP: u8 = 3;
    const NETDEV: u8 = 5;

    /// One message of a batch: type, nfgenmsg family, the attributes after nfgenmsg.
    fn messages(batch: &[u8]) -> Vec<(u16, u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut rest = batch;
        while rest.len() >= 20 {
            let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
            assert!(
                len >= 20 && len.is_multiple_of(4) && len <= rest.len(),
                "{len}"
            );
            let ty = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
            out.push((ty, rest[16], rest[20..len].to_vec()));
            rest = &rest[len..];
        }
        assert!(rest.is_empty());
        out
    }

    /// Attributes as (type without flags, value).
    fn attrs(mut buf: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut out = Vec::new();
        while buf.len() >= 4 {
            let len = usize::from(u16::from_ne_bytes(buf[0..2].try_into().unwrap()));
            assert!(len >= 4 && len <= buf.len());
            let ty = u16::from_ne_bytes(buf[2..4].try_into().unwrap()) & 0x3fff;
            out.push((ty, buf[4..len].to_vec()));
            buf = &buf[(len + 3) & !3..];
        }
        out
    }

    fn attr(buf: &[u8], ty: u16) -> Vec<u8> {
        attrs(buf)
            .into_iter()
            .find(|(t, _)| *t == ty)
            .map(|(_, v)| v)
            .unwrap_or_else(|| panic!("no attribute {ty}"))
    }

    fn be32(v: &[u8]) -> u32 {
        u32::from_be_bytes(v.try_into().unwrap())
    }

    fn string(v: &[u8]) -> String {
        String::from_utf8(v.split(|b| *b == 0).next().unwrap().to_vec()).unwrap()
    }

    /// A rule message's expressions: (name, data attributes).
    fn expressions(rule_body: &[u8]) -> Vec<(String, Vec<u8>)> {
        attrs(&attr(rule_body, 4))
            .into_iter()
            .map(|(_, element)| {
                let name = string(&attr(&element, 1));
                let data = attrs(&element)
                    .into_iter()
                    .find(|(t, _)| *t == 2)
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                (name, data)
            })
            .collect()
    }

    fn group(interface: &str, unicast_flood: bool, hash: HashFields) -> GroupRules {
        GroupRules {
            interface: interface.into(),
            vip: Ipv4Addr::new(192, 0, 2, 50),
            mac: [0x01, 0x00, 0x5e, 0x7f, 0x00, 0x01],
            unicast_flood,
            hash,
            seed: 0x1234_5678,
            buckets: 16,
        }
    }

    #[test]
    fn replace_builds_ip_and_arp_tables_in_one_transaction() {
        let sets = BucketSets {
            mine: 0x5555,
            taken_over: 0,
        };
        let (batch, count) = encode_replace(
            &[(
                group("eth0", false, HashFields::SourceIpPortDestinationPort),
                sets,
            )],
            40,
        )
        .unwrap();
        let m = messages(&batch);
        let kinds: Vec<(u16, u8)> = m.iter().map(|(t, f, _)| (*t, *f)).collect();
        assert_eq!(
            kinds,
            [
                (BEGIN, 0),
                (NEWTABLE, IP),
                (DELTABLE, IP),
                (NEWTABLE, ARP),
                (DELTABLE, ARP),
                (NEWTABLE, NETDEV),
                (DELTABLE, NETDEV),
                (NEWTABLE, IP),
                (NEWSET, IP),
                (NEWSETELEM, IP), // mine; taken_over is empty: no element message
                (NEWSET, IP),
                (NEWCHAIN, IP),
                (NEWRULE, IP),
                (NEWRULE, IP),
                (NEWRULE, IP),
                (NEWRULE, IP),
                (NEWRULE, IP),
                (NEWTABLE, ARP),
                (NEWCHAIN, ARP),
                (NEWRULE, ARP),
                (END, 0),
            ]
        );
        assert_eq!(count as usize, m.len());
        // The sets: 4-byte integer keys, no flags (updatable), distinct ids.
        let set = &m[8].2;
        assert_eq!(string(&attr(set, 2)), "mine_0");
        assert_eq!(be32(&attr(set, 3)), 0);
        assert_eq!(be32(&attr(set, 5)), 4);
        assert_ne!(attr(set, 10), attr(&m[10].2, 10));
        assert_eq!(string(&attr(&m[10].2, 2)), "taken_0");
        // The elements: the even buckets 0..14 as host-order u32.
        let list = attr(&m[9].2, 3);
        let elements: Vec<u32> = attrs(&list)
            .iter()
            .map(|(_, e)| {
                let key = attr(&attr(e, 1), 1);
                u32::from_ne_bytes(key.try_into().unwrap())
            })
            .collect();
        assert_eq!(elements, [0, 2, 4, 6, 8, 10, 12, 14]);
        // The chain: prerouting, priority -150.
        let hook = attr(&m[11].2, 4);
        assert_eq!(be32(&attr(&hook, 1)), 0);
        assert_eq!(attr(&hook, 2), (-150i32).to_be_bytes());
        // The ARP chain hooks NF_ARP_OUT.
        assert_eq!(be32(&attr(&attr(&m[18].2, 4), 1)), 1);
    }

    #[test]
    fn a_hash_of_three_fields_loads_padded_registers_and_looks_up_the_taken_set() {
        let (batch, _) = encode_replace(
            &[(
                group("eth0", false, HashFields::SourceIpPortDestinationPort),
                BucketSets::default(),
            )],
            1,
        )
        .unwrap();
        let m = messages(&batch);
        let rules: Vec<&Vec<u8>> = m
            .iter()
            .filter(|(t, f, _)| *t == NEWRULE && *f == IP)
            .map(|(_, _, b)| b)
            .collect();
        assert_eq!(rules.len(), RULES_PER_GROUP);
        let taken = expressions(rules[1]);
        let names: Vec<&str> = taken.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "meta",
                "cmp", // iifname
                "meta",
                "cmp",
                "payload",
                "cmp", // iiftype ether, ether daddr
                "payload",
                "cmp", // ip daddr
                "payload",
                "payload",
                "payload",
                "hash",
                "lookup", // jhash ... @taken_0
                "immediate",
                "ct", // ct mark set
                "immediate",
                "meta", // meta pkttype set host
                "counter",
                "immediate",
            ]
        );
        // ip saddr into register 2, th sport / th dport into the next 32-bit registers.
        let load = |i: usize| {
            let d = &taken[i].1;
            (
                be32(&attr(d, 1)),
                be32(&attr(d, 2)),
                be32(&attr(d, 3)),
                be32(&attr(d, 4)),
            )
        };
        assert_eq!(load(8), (2, 1, 12, 4));
        assert_eq!(load(9), (13, 2, 0, 2));
        assert_eq!(load(10), (14, 2, 2, 2));
        let hash = &taken[11].1;
        assert_eq!(be32(&attr(hash, 1)), 2, "sreg");
        assert_eq!(be32(&attr(hash, 2)), 1, "dreg");
        assert_eq!(be32(&attr(hash, 3)), 12, "len: three padded words");
        assert_eq!(be32(&attr(hash, 4)), 16, "modulus");
        assert_eq!(be32(&attr(hash, 5)), 0x1234_5678, "seed");
        assert_eq!(be32(&attr(hash, 7)), 0, "NFT_HASH_JENKINS");
        assert!(attrs(hash).iter().all(|(t, _)| *t != 6), "no offset");
        let lookup = &taken[12].1;
        assert_eq!(string(&attr(lookup, 1)), "taken_0");
        assert_eq!(be32(&attr(lookup, 2)), 1);
        // ct mark set 0x54440001 (host order), meta pkttype set host (one byte 0).
        assert_eq!(
            attr(&attr(&taken[13].1, 2), 1),
            CT_MARK.to_ne_bytes().to_vec()
        );
        assert_eq!(be32(&attr(&taken[14].1, 2)), 3, "NFT_CT_MARK");
        assert_eq!(be32(&attr(&taken[16].1, 2)), 19, "NFT_META_PKTTYPE");
        assert_eq!(attr(&attr(&taken[15].1, 2), 1), [0]);
        // The interface match: 16 zero-padded bytes.
        let mut padded = [0u8; 16];
        padded[..4].copy_from_slice(b"eth0");
        assert_eq!(attr(&attr(&taken[1].1, 3), 1), padded);
        // The new-TCP rule looks up mine_0 after `tcp flags & 0x17 == syn`; the other-protocol
        // rule after `ct state new`; the first rule compares the ct mark; the last drops.
        let tcp = expressions(rules[2]);
        assert!(tcp
            .iter()
            .any(|(n, d)| n == "bitwise" && attr(&attr(d, 4), 1) == [0x17]));
        assert!(tcp
            .iter()
            .any(|(n, d)| n == "lookup" && string(&attr(d, 1)) == "mine_0"));
        let other = expressions(rules[3]);
        assert!(other
            .iter()
            .any(|(n, d)| n == "cmp" && be32(&attr(d, 2)) == 1 && attr(&attr(d, 3), 1) == [6]));
        assert!(other
            .iter()
            .any(|(n, d)| n == "ct" && be32(&attr(d, 2)) == 0));
        let established = expressions(rules[0]);
        assert!(established
            .iter()
            .any(|(n, d)| n == "cmp" && attr(&attr(d, 3), 1) == CT_MARK.to_ne_bytes()));
        assert!(!established.iter().any(|(n, _)| n == "hash"));
        let drop = expressions(rules[4]);
        assert_eq!(drop.last().unwrap().0, "immediate");
        assert_eq!(drop[drop.len() - 2].0, "counter");
        // ARP: oifname, arp saddr ip, then a 6-byte write at offset 8 without checksum.
        let arp = m
            .iter()
            .find(|(t, f, _)| *t == NEWRULE && *f == ARP)
            .unwrap();
        let arp = expressions(&arp.2);
        let write = &arp.last().unwrap().1;
        assert_eq!(be32(&attr(write, 5)), 1, "sreg");
        assert_eq!(be32(&attr(write, 2)), 1, "network header");
        assert_eq!(be32(&attr(write, 3)), 8);
        assert_eq!(be32(&attr(write, 4)), 6);
        assert_eq!(be32(&attr(write, 6)), 0, "NFT_PAYLOAD_CSUM_NONE");
        assert_eq!(
            attr(&attr(&arp[arp.len() - 2].1, 2), 1),
            [0x01, 0x00, 0x5e, 0x7f, 0x00, 0x01]
        );
    }

    #[test]
    fn fewer_fields_hash_fewer_words() {
        for (hash, len, loads) in [
            (HashFields::SourceIp, 4, 1),
            (HashFields::SourceIpPort, 8, 2),
        ] {
            let (batch, _) =
                encode_replace(&[(group("eth0", false, hash), BucketSets::default())], 1).unwrap();
            let m = messages(&batch);
            let rule = m.iter().filter(|(t, _, _)| *t == NEWRULE).nth(1).unwrap();
            let e = expressions(&rule.2);
            let h = e.iter().position(|(n, _)| n == "hash").unwrap();
            assert_eq!(be32(&attr(&e[h].1, 3)), len);
            assert_eq!(&e[h - loads - 1].0, "cmp", "{hash:?}");
        }
    }

    #[test]
    fn unicast_flooding_adds_one_netdev_chain_per_interface() {
        let mut a = group("eth0", true, HashFields::SourceIp);
        a.mac = [0x02, 0x54, 0x44, 0, 0, 1];
        let mut b = a.clone();
        b.vip = Ipv4Addr::new(192, 0, 2, 51);
        let mut c = a.clone();
        c.interface = "eth1".into();
        let none = BucketSets::default();
        let (batch, _) = encode_replace(&[(a, none), (b, none), (c, none)], 1).unwrap();
        let m = messages(&batch);
        let netdev: Vec<u16> = m
            .iter()
            .skip(7)
            .filter(|(_, f, _)| *f == NETDEV)
            .map(|(t, _, _)| *t)
            .collect();
        // Two groups share eth0 and the MAC: one chain, one rule there.
        assert_eq!(netdev, [NEWTABLE, NEWCHAIN, NEWRULE, NEWCHAIN, NEWRULE]);
        let chain = m
            .iter()
            .find(|(t, f, _)| *t == NEWCHAIN && *f == NETDEV)
            .unwrap();
        assert_eq!(string(&attr(&chain.2, 3)), "ingress_eth0");
        let hook = attr(&chain.2, 4);
        assert_eq!(string(&attr(&hook, 3)), "eth0", "NFTA_HOOK_DEV");
        assert_eq!(be32(&attr(&hook, 1)), 0, "NF_NETDEV_INGRESS");
        let rule = m
            .iter()
            .find(|(t, f, _)| *t == NEWRULE && *f == NETDEV)
            .unwrap();
        let names: Vec<String> = expressions(&rule.2).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["meta", "cmp", "payload", "cmp", "immediate", "meta"],
            "ether daddr MAC meta pkttype set host, no verdict"
        );
        // Three groups: 15 ip rules, three ARP rules (one per address).
        assert_eq!(
            m.iter()
                .filter(|(t, f, _)| *t == NEWRULE && *f == IP)
                .count(),
            15
        );
        assert_eq!(
            m.iter()
                .filter(|(t, f, _)| *t == NEWRULE && *f == ARP)
                .count(),
            3
        );
    }

    #[test]
    fn no_groups_only_removes_the_three_tables() {
        let (batch, count) = encode_replace(&[], 1).unwrap();
        let kinds: Vec<(u16, u8)> = messages(&batch).iter().map(|(t, f, _)| (*t, *f)).collect();
        assert_eq!(
            kinds,
            [
                (BEGIN, 0),
                (NEWTABLE, IP),
                (DELTABLE, IP),
                (NEWTABLE, ARP),
                (DELTABLE, ARP),
                (NEWTABLE, NETDEV),
                (DELTABLE, NETDEV),
                (END, 0),
            ]
        );
        assert_eq!(count, 8);
    }

    #[test]
    fn a_bucket_move_only_adds_and_deletes_the_differences() {
        let old = BucketSets {
            mine: 0b0101,
            taken_over: 0,
        };
        let new = BucketSets {
            mine: 0b0110,
            taken_over: 1 << 63,
        };
        let unchanged = BucketSets {
            mine: 0xff,
            taken_over: 0xff00,
        };
        let (batch, count) = encode_set_buckets(&[(0, old, new), (3, unchanged, unchanged)], 9);
        let m = messages(&batch);
        let element_keys = |body: &[u8]| -> Vec<u32> {
            attrs(&attr(body, 3))
                .iter()
                .map(|(_, e)| u32::from_ne_bytes(attr(&attr(e, 1), 1).try_into().unwrap()))
                .collect()
        };
        let summary: Vec<(u16, String, Vec<u32>)> = m[1..m.len() - 1]
            .iter()
            .map(|(t, f, b)| {
                assert_eq!(*f, IP);
                assert_eq!(string(&attr(b, 1)), TABLE);
                (*t, string(&attr(b, 2)), element_keys(b))
            })
            .collect();
        assert_eq!(
            summary,
            [
                (NEWSETELEM, "mine_0".to_owned(), vec![1]),
                (DELSETELEM, "mine_0".to_owned(), vec![0]),
                (NEWSETELEM, "taken_0".to_owned(), vec![63]),
            ]
        );
        assert_eq!(count, 5);
        assert_eq!(
            encode_set_buckets(&[(1, unchanged, unchanged)], 1).1,
            2,
            "nothing but begin and end"
        );
        assert!(set_buckets(&[(0, unchanged, unchanged)]).is_ok(), "no-op");
    }

    #[test]
    fn bad_bucket_counts_and_interface_names_are_refused() {
        let none = BucketSets::default();
        for buckets in [0, 65] {
            let g = GroupRules {
                buckets,
                ..group("eth0", false, HashFields::SourceIp)
            };
            let err = encode_replace(
                &[
                    (group("eth0", false, HashFields::SourceIp), none),
                    (g, none),
                ],
                1,
            )
            .unwrap_err();
            assert!(
                matches!(err, NftError::Buckets { group: 1, buckets: b } if b == buckets),
                "{err}"
            );
        }
        for name in ["", "sixteen-bytes-xx"] {
            let err =
                encode_replace(&[(group(name, false, HashFields::SourceIp), none)], 1).unwrap_err();
            assert!(matches!(err, NftError::Interface { .. }), "{err}");
        }
        assert!(encode_replace(
            &[(
                GroupRules {
                    buckets: 64,
                    ..group("fifteen-bytes-x", false, HashFields::SourceIp)
                },
                none
            )],
            1
        )
        .is_ok());
    }

    #[test]
    fn buckets_are_spread_and_in_range() {
        let mut seen = [0u32; 16];
        for port in 10_000..12_000u16 {
            let b = bucket(
                HashFields::SourceIpPort,
                7,
                16,
                Ipv4Addr::new(192, 0, 2, 100),
                port,
                80,
            );
            seen[b as usize] += 1;
        }
        assert!(seen.iter().all(|n| (60..=190).contains(n)), "{seen:?}");
        // Fields not hashed do not matter; one bucket means bucket 0.
        let a = Ipv4Addr::new(198, 51, 100, 7);
        assert_eq!(
            bucket(HashFields::SourceIp, 1, 64, a, 1, 2),
            bucket(HashFields::SourceIp, 1, 64, a, 3, 4)
        );
        assert_eq!(
            bucket(HashFields::SourceIpPortDestinationPort, 9, 1, a, 5, 6),
            0
        );
        // The kernel's jhash of nothing is its initial value.
        assert_eq!(jhash(&[], 5), 0xdead_beef_u32.wrapping_add(5));
    }

    #[test]
    fn fdb_requests_are_what_bridge_fdb_sends() {
        let mac = [0x01, 0x00, 0x5e, 0x7f, 0x00, 0x01];
        let bytes = fdb_request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_EXCL, 7, mac)
            .unwrap()
            .finish(1)
            .unwrap();
        assert_eq!(u16::from_ne_bytes([bytes[4], bytes[5]]), RTM_NEWNEIGH);
        assert_eq!(
            u16::from_ne_bytes([bytes[6], bytes[7]]),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        );
        let ndmsg = &bytes[16..28];
        assert_eq!(ndmsg[0], AF_BRIDGE);
        assert_eq!(i32::from_ne_bytes(ndmsg[4..8].try_into().unwrap()), 7);
        assert_eq!(u16::from_ne_bytes([ndmsg[8], ndmsg[9]]), 0xc0);
        assert_eq!(ndmsg[10], NTF_SELF);
        assert_eq!(attr(&bytes[28..], NDA_LLADDR), mac);
        assert!(fdb_request(RTM_DELNEIGH, 0, u32::MAX, mac).is_err());
    }
}
