//! Firewall marks for IPVS fwmark services, as nftables rules over netlink.
//!
//! The image has no `nft` binary, so the rules are built here as plain data and encoded to the
//! `nf_tables` netlink messages the kernel takes (uapi `linux/netfilter/nf_tables.h`). Tandem
//! owns one table, `inet tandem`, with one chain, `prerouting` (filter hook prerouting, priority
//! mangle -150), holding one rule per mark rule: `ip daddr <prefix> <proto> dport <range>
//! meta mark set <mark>`. The whole table is replaced in one transaction (`BATCH_BEGIN`, add
//! table, delete table, add table, chain, rules, `BATCH_END`): the kernel applies all of it or
//! none, and packets never see a half-built table. Nothing outside the table is touched.
//!
//! The encoder underneath ([`encode_table_replace`], the expression builders, [`run_batch`],
//! [`counter_packets`]) is shared with [`crate::vip_filter`], [`crate::snat`] and
//! [`crate::cluster_filter`], which own their own tables. [`Batch`] builds transactions over
//! tables of any family (`inet`, `ip`, `arp`, `netdev`), with sets and set elements, for those
//! that need more than one `inet` chain.

use std::io;
use std::net::IpAddr;

use netlink_sys::{Socket, SocketAddr};

/// The table Tandem owns (family `inet`).
pub const TABLE: &str = "tandem";
/// The chain in it that sets the marks.
pub const CHAIN: &str = "prerouting";
/// `NF_IP_PRI_MANGLE`.
pub const PRIORITY_MANGLE: i32 = -150;

// uapi constants (linux/netlink.h, linux/netfilter/nfnetlink.h, nf_tables.h).
const NETLINK_NETFILTER: isize = 12;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NLM_F_DUMP: u16 = 0x300;
const NFT_MSG_GETGEN: u16 = 16;
const NFT_MSG_NEWSET: u16 = 9;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFPROTO_ARP: u8 = 3;
const NFPROTO_NETDEV: u8 = 5;
const NFTA_HOOK_DEV: u16 = 3;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_KEY_TYPE: u16 = 4;
const NFTA_SET_KEY_LEN: u16 = 5;
const NFTA_SET_ID: u16 = 10;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_LOOKUP_SET: u16 = 1;
const NFTA_LOOKUP_SREG: u16 = 2;
const NFTA_HASH_SREG: u16 = 1;
const NFTA_HASH_DREG: u16 = 2;
const NFTA_HASH_LEN: u16 = 3;
const NFTA_HASH_MODULUS: u16 = 4;
const NFTA_HASH_SEED: u16 = 5;
const NFTA_HASH_TYPE: u16 = 7;
const NFT_HASH_JENKINS: u32 = 0;
const NFTA_CT_DREG: u16 = 1;
const NFTA_CT_KEY: u16 = 2;
const NFTA_CT_SREG: u16 = 4;
const NFT_CT_STATE: u32 = 0;
const NFT_CT_MARK: u32 = 3;
/// `NF_CT_STATE_BIT(IP_CT_NEW)`: bit `IP_CT_NEW + 1` of the `ct state` word.
const CT_STATE_NEW: u32 = 1 << 3;
const NFTA_PAYLOAD_SREG: u16 = 5;
const NFTA_PAYLOAD_CSUM_TYPE: u16 = 6;
const NFT_PAYLOAD_LL_HEADER: u32 = 0;
const NFT_PAYLOAD_CSUM_NONE: u32 = 0;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_IIFTYPE: u32 = 8;
const NFT_META_PKTTYPE: u32 = 19;
/// `ARPHRD_ETHER`: `meta iiftype` of an Ethernet port (nft checks it before reading the link
/// header, and so do the rules here).
const ARPHRD_ETHER: u16 = 1;
/// The 16-byte register 2, which is also 32-bit register `NFT_REG32_04`: the first of the
/// registers a concatenation is loaded into (register 1 holds the hash).
const NFT_REG_2: u32 = 2;
const NFT_REG32_04: u32 = 12;
/// The last 32-bit register (`NFT_REG32_15`).
const NFT_REG32_15: u32 = 23;
const NFTA_SET_USERDATA: u16 = 13;
/// nft's set user data (libnftnl `NFTNL_UDATA_SET_KEYBYTEORDER`, nft `BYTEORDER_HOST_ENDIAN`):
/// how `nft list` reads the keys back. Informational, like the key type.
const UDATA_SET_KEYBYTEORDER: u8 = 0;
const BYTEORDER_HOST_ENDIAN: u32 = 1;

/// The key of a set: nft's datatype number (informational for the kernel: `nft list` prints
/// with it), length in bytes, and whether the keys are host byte order (values a `hash` or
/// `meta` expression leaves in a register) rather than network byte order (packet bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetKey {
    pub datatype: u32,
    pub len: u32,
    pub host_order: bool,
}

/// A 4-byte host-order integer key (a bucket number; nft 1.0.6 lists such a set as `type 0`
/// with decimal elements).
pub const SET_KEY_U32: SetKey = SetKey {
    datatype: 4,
    len: 4,
    host_order: true,
};
/// `NF_ARP_OUT`: the hook of an `arp` output chain.
pub const HOOK_ARP_OUT: u32 = 1;
/// `NF_NETDEV_INGRESS`: the hook of a `netdev` ingress chain.
pub const HOOK_NETDEV_INGRESS: u32 = 0;
/// `PACKET_HOST`: `meta pkttype host`.
pub const PACKET_HOST: u8 = 0;
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
/// `NF_INET_PRE_ROUTING`.
pub const HOOK_PRE_ROUTING: u32 = 0;
/// `NF_INET_LOCAL_IN`.
pub const HOOK_LOCAL_IN: u32 = 1;
/// `NF_INET_LOCAL_OUT`.
pub const HOOK_LOCAL_OUT: u32 = 3;
/// `NF_INET_POST_ROUTING`.
pub const HOOK_POST_ROUTING: u32 = 4;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFT_REG_1: u32 = 1;
const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFTA_META_SREG: u16 = 3;
const NFT_META_MARK: u32 = 3;
const NFT_META_OIFNAME: u32 = 7;
const NFT_CMP_NEQ: u32 = 1;
/// `IFNAMSIZ`: interface names are compared as 16 zero-padded bytes.
const IFNAMSIZ: usize = 16;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;
const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_GTE: u32 = 5;
const NFT_CMP_LTE: u32 = 3;
const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;
const NFTA_IMMEDIATE_DREG: u16 = 1;
const NFTA_IMMEDIATE_DATA: u16 = 2;
const NFT_REG_VERDICT: u32 = 0;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
/// `NF_DROP`.
pub const VERDICT_DROP: u32 = 0;
/// `NF_ACCEPT`.
pub const VERDICT_ACCEPT: u32 = 1;
const NFTA_COUNTER_PACKETS: u16 = 2;
/// Attribute type bits (without `NLA_F_NESTED` / `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The transport protocol a mark rule matches (IANA protocol numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Proto {
    Tcp,
    Udp,
    Sctp,
}

impl L4Proto {
    fn number(self) -> u8 {
        match self {
            L4Proto::Tcp => 6,
            L4Proto::Udp => 17,
            L4Proto::Sctp => 132,
        }
    }
}

/// One marking rule: packets to `destination/prefix_len` with this protocol and a destination
/// port in `ports` (inclusive; `None` for any port) get `mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarkRule {
    pub mark: u32,
    pub protocol: L4Proto,
    pub destination: IpAddr,
    pub prefix_len: u8,
    pub ports: Option<(u16, u16)>,
}

/// Why the rules could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("mark rule {index}: prefix /{prefix_len} is longer than the address; fix fwmark_rules[{index}].destination")]
    Prefix { index: usize, prefix_len: u8 },
    #[error("source prefix /{prefix_len} is longer than the address; fix the prefix (nat_gateway.prefix)")]
    SourcePrefix { prefix_len: u8 },
    #[error("cannot open a netfilter netlink socket (is nf_tables loaded?): {0}")]
    Socket(io::Error),
    #[error("the kernel refused the nftables transaction (message {index}): {error}; nothing was changed")]
    Refused { index: usize, error: io::Error },
    #[error("malformed netlink reply from the kernel")]
    Reply,
    #[error("load-sharing group {group}: {buckets} buckets is outside 1..=64; fix the group's bucket count")]
    Buckets { group: usize, buckets: u32 },
    #[error("interface name {name:?} is empty or longer than 15 bytes; fix the interface name")]
    Interface { name: String },
    #[error(
        "a hash over {len} bytes of fields does not fit nftables' registers; hash fewer fields"
    )]
    HashFields { len: u32 },
    #[error("table {table} holds {rules} counted rules, not the {expected} of the groups asked for; replace the table (it was changed outside Tandem, or the group count is stale)")]
    Layout {
        table: &'static str,
        rules: usize,
        expected: usize,
    },
}

/// What a base chain does: filter (accept, drop, mark) or NAT (sees the first packet of each
/// conntrack flow only; its statements set up the flow's address translation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainKind {
    Filter,
    Nat,
}

impl ChainKind {
    /// The kernel's chain type name (`NFTA_CHAIN_TYPE`).
    fn type_name(self) -> &'static str {
        match self {
            ChainKind::Filter => "filter",
            ChainKind::Nat => "nat",
        }
    }
}

/// The family of an nftables table (`NFPROTO_*`): which packets its chains see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 and IPv6 (`inet`).
    Inet,
    /// IPv4 only (`ip`).
    Ip,
    /// ARP (`arp`): hooks `NF_ARP_IN` / [`HOOK_ARP_OUT`].
    Arp,
    /// Per device, before any protocol (`netdev`): hook [`HOOK_NETDEV_INGRESS`] on one device.
    Netdev,
}

impl Family {
    fn number(self) -> u8 {
        match self {
            Family::Inet => NFPROTO_INET,
            Family::Ip => NFPROTO_IPV4,
            Family::Arp => NFPROTO_ARP,
            Family::Netdev => NFPROTO_NETDEV,
        }
    }
}

/// Where a payload offset counts from (`NFT_PAYLOAD_*_HEADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadBase {
    /// The link-layer (Ethernet) header; readable in `ip`/`inet` prerouting and `netdev`.
    Link,
    /// The network header (IP, or the ARP header in an `arp` table).
    Network,
    /// The transport header (`th`): TCP/UDP ports, ICMP type and code, ...
    Transport,
}

impl PayloadBase {
    fn number(self) -> u32 {
        match self {
            PayloadBase::Link => NFT_PAYLOAD_LL_HEADER,
            PayloadBase::Network => NFT_PAYLOAD_NETWORK_HEADER,
            PayloadBase::Transport => NFT_PAYLOAD_TRANSPORT_HEADER,
        }
    }
}

/// One field of a hashed concatenation: `len` bytes at `offset` from `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadField {
    pub base: PayloadBase,
    pub offset: u32,
    pub len: u32,
}

/// One nf_tables transaction being built: `BATCH_BEGIN`, the messages, `BATCH_END`. The kernel
/// applies all of it or none. Sequence numbers run from the `seq` given to [`Batch::new`] (the
/// begin message takes the first; batch ends carry 0 on the wire); [`Batch::finish`] says how
/// many it used, for [`run_batch`].
#[derive(Debug, Clone)]
pub struct Batch {
    out: Vec<u8>,
    first: u32,
    next: u32,
    /// `NFTA_SET_ID` of the next set added: sets are named in the transaction by id and name.
    set_id: u32,
}

impl Batch {
    /// A transaction numbered from `seq`.
    pub fn new(seq: u32) -> Batch {
        let mut batch = Batch {
            out: Vec::with_capacity(1024),
            first: seq,
            next: seq,
            set_id: 1,
        };
        batch.message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, NFPROTO_UNSPEC, &[]);
        batch
    }

    fn message(&mut self, ty: u16, flags: u16, family: u8, body: &[u8]) {
        let seq = if ty == NFNL_MSG_BATCH_BEGIN || ty == NFNL_MSG_BATCH_END {
            0
        } else {
            self.next
        };
        self.next = self.next.wrapping_add(1);
        push_message(&mut self.out, ty, flags, seq, family, body);
    }

    fn nft(&mut self, msg: u16, flags: u16, family: Family, body: &[u8]) {
        self.message(
            (NFNL_SUBSYS_NFTABLES << 8) | msg,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            family.number(),
            body,
        );
    }

    /// How many messages (counting begin, not end) are in so far.
    pub fn len(&self) -> u32 {
        self.next.wrapping_sub(self.first)
    }

    /// Whether nothing but the begin message is in.
    pub fn is_empty(&self) -> bool {
        self.len() <= 1
    }

    /// Removes table `family name` and everything in it, whether it exists or not: add (no
    /// `EXCL`: a no-op when present), then delete.
    pub fn remove_table(&mut self, family: Family, table: &str) {
        let mut body = Vec::new();
        push_str(&mut body, NFTA_TABLE_NAME, table);
        self.nft(NFT_MSG_NEWTABLE, NLM_F_CREATE, family, &body);
        self.nft(NFT_MSG_DELTABLE, 0, family, &body);
    }

    /// Adds table `family name` (after [`Batch::remove_table`]: a new, empty one).
    pub fn add_table(&mut self, family: Family, table: &str) {
        let mut body = Vec::new();
        push_str(&mut body, NFTA_TABLE_NAME, table);
        self.nft(NFT_MSG_NEWTABLE, NLM_F_CREATE, family, &body);
    }

    /// Adds base chain `chain` to its table of `family`; `device` is the device a `netdev`
    /// chain hooks (`NFTA_HOOK_DEV`), `None` for the other families.
    pub fn add_chain(&mut self, family: Family, chain: &BaseChain<'_>, device: Option<&str>) {
        let mut body = Vec::new();
        push_str(&mut body, NFTA_CHAIN_TABLE, chain.table);
        push_str(&mut body, NFTA_CHAIN_NAME, chain.name);
        let mut hook = Vec::new();
        push_u32(&mut hook, NFTA_HOOK_HOOKNUM, chain.hook);
        push_attr(&mut hook, NFTA_HOOK_PRIORITY, &chain.priority.to_be_bytes());
        if let Some(device) = device {
            push_str(&mut hook, NFTA_HOOK_DEV, device);
        }
        push_attr(&mut body, NFTA_CHAIN_HOOK | NLA_F_NESTED, &hook);
        push_str(&mut body, NFTA_CHAIN_TYPE, chain.kind.type_name());
        self.nft(NFT_MSG_NEWCHAIN, NLM_F_CREATE, family, &body);
    }

    /// Adds a plain hash set `name` (no flags: elements can be added and deleted while rules
    /// look it up) with keys like `key` ([`SET_KEY_U32`]).
    pub fn add_set(&mut self, family: Family, table: &str, name: &str, key: SetKey) {
        let mut body = Vec::new();
        push_str(&mut body, NFTA_SET_TABLE, table);
        push_str(&mut body, NFTA_SET_NAME, name);
        push_u32(&mut body, NFTA_SET_FLAGS, 0);
        push_u32(&mut body, NFTA_SET_KEY_TYPE, key.datatype);
        push_u32(&mut body, NFTA_SET_KEY_LEN, key.len);
        push_u32(&mut body, NFTA_SET_ID, self.set_id);
        if key.host_order {
            let mut userdata = vec![UDATA_SET_KEYBYTEORDER, 4];
            userdata.extend_from_slice(&BYTEORDER_HOST_ENDIAN.to_ne_bytes());
            push_attr(&mut body, NFTA_SET_USERDATA, &userdata);
        }
        self.set_id = self.set_id.wrapping_add(1);
        self.nft(NFT_MSG_NEWSET, NLM_F_CREATE, family, &body);
    }

    /// Adds `keys` to set `table`.`set` (nothing when `keys` is empty; a key already there is
    /// no error).
    pub fn add_elements(&mut self, family: Family, table: &str, set: &str, keys: &[Vec<u8>]) {
        self.elements(NFT_MSG_NEWSETELEM, NLM_F_CREATE, family, table, set, keys);
    }

    /// Deletes `keys` from set `table`.`set` (nothing when `keys` is empty; a key that is not
    /// there makes the kernel refuse the whole transaction with `ENOENT`).
    pub fn delete_elements(&mut self, family: Family, table: &str, set: &str, keys: &[Vec<u8>]) {
        self.elements(NFT_MSG_DELSETELEM, 0, family, table, set, keys);
    }

    fn elements(
        &mut self,
        msg: u16,
        flags: u16,
        family: Family,
        table: &str,
        set: &str,
        keys: &[Vec<u8>],
    ) {
        if keys.is_empty() {
            return;
        }
        let mut list = Vec::new();
        for key in keys {
            let mut element = Vec::new();
            push_data(&mut element, NFTA_SET_ELEM_KEY, key);
            push_attr(&mut list, NFTA_LIST_ELEM | NLA_F_NESTED, &element);
        }
        let mut body = Vec::new();
        push_str(&mut body, NFTA_SET_ELEM_LIST_TABLE, table);
        push_str(&mut body, NFTA_SET_ELEM_LIST_SET, set);
        push_attr(&mut body, NFTA_SET_ELEM_LIST_ELEMENTS | NLA_F_NESTED, &list);
        self.nft(msg, flags, family, &body);
    }

    /// Appends a rule (its expression list, from [`RuleBuilder::build`]) to `table`.`chain`.
    pub fn add_rule(&mut self, family: Family, table: &str, chain: &str, expressions: &[u8]) {
        let mut body = Vec::new();
        push_str(&mut body, NFTA_RULE_TABLE, table);
        push_str(&mut body, NFTA_RULE_CHAIN, chain);
        push_attr(&mut body, NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, expressions);
        self.nft(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, family, &body);
    }

    /// Closes the transaction: the bytes to send and how many sequence numbers it used
    /// (`seq..seq+count`, for [`run_batch`]).
    pub fn finish(mut self) -> (Vec<u8>, u32) {
        self.message(NFNL_MSG_BATCH_END, NLM_F_REQUEST, NFPROTO_UNSPEC, &[]);
        let count = self.len();
        (self.out, count)
    }
}

/// A base chain: its table and name, where it hooks in and at which priority. The table's
/// family is given where the chain is added ([`Batch::add_chain`]);
/// [`encode_table_replace`] puts it in an `inet` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseChain<'a> {
    pub table: &'a str,
    pub name: &'a str,
    pub kind: ChainKind,
    /// `HOOK_PRE_ROUTING`, `HOOK_LOCAL_IN`, `HOOK_POST_ROUTING`, ...
    pub hook: u32,
    pub priority: i32,
}

/// The chain of table `inet tandem` that sets the marks.
const MARK_CHAIN: BaseChain<'static> = BaseChain {
    table: TABLE,
    name: CHAIN,
    kind: ChainKind::Filter,
    hook: HOOK_PRE_ROUTING,
    priority: PRIORITY_MANGLE,
};

/// Builds the `nf_tables` messages of one transaction replacing table `inet tandem` with a
/// chain holding `rules` (no rules: the table is removed). Message sequence numbers start at
/// `seq`; the batch carries `count` messages, `seq..seq+count`.
pub fn encode_replace(rules: &[MarkRule], seq: u32) -> Result<(Vec<u8>, u32), NftError> {
    let expressions = rules
        .iter()
        .enumerate()
        .map(|(index, rule)| mark_expressions(index, rule))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(encode_table_replace(&MARK_CHAIN, &expressions, seq))
}

/// Builds one transaction replacing table `inet <chain.table>` with the base chain `chain`
/// holding one rule per entry of `rules` (each the rule's encoded expression list, as built with
/// [`RuleBuilder`]). No rules: the table is only removed. Returns the batch and how many
/// sequence numbers it used (`seq..seq+count`).
pub fn encode_table_replace(chain: &BaseChain<'_>, rules: &[Vec<u8>], seq: u32) -> (Vec<u8>, u32) {
    let mut batch = Batch::new(seq);
    batch.remove_table(Family::Inet, chain.table);
    if !rules.is_empty() {
        batch.add_table(Family::Inet, chain.table);
        batch.add_chain(Family::Inet, chain, None);
        for expressions in rules {
            batch.add_rule(Family::Inet, chain.table, chain.name, expressions);
        }
    }
    batch.finish()
}

/// Replaces table `inet tandem` in the running kernel with one holding `rules` (none: removes
/// it). All or nothing.
pub fn replace(rules: &[MarkRule]) -> Result<(), NftError> {
    let first = 1u32;
    let (batch, count) = encode_replace(rules, first)?;
    run_batch(&batch, first, count)
}

/// A netfilter netlink socket bound and connected to the kernel.
fn open_socket() -> Result<Socket, NftError> {
    let mut sock = Socket::new(NETLINK_NETFILTER).map_err(NftError::Socket)?;
    sock.bind_auto().map_err(NftError::Socket)?;
    sock.connect(&SocketAddr::new(0, 0))
        .map_err(NftError::Socket)?;
    Ok(sock)
}

/// Sends a batch built with sequence numbers `first..first+count` and waits for the kernel's
/// verdict on all of it: `Ok` when every message was accepted, else the first refusal.
pub fn run_batch(batch: &[u8], first: u32, count: u32) -> Result<(), NftError> {
    let sock = open_socket()?;
    sock.send(batch, 0).map_err(NftError::Socket)?;
    // A fence: the batch is processed inside the send above, so every reply to it precedes the
    // reply to this request.
    let fence = first.wrapping_add(count);
    let mut getgen = Vec::new();
    push_message(
        &mut getgen,
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
        NLM_F_REQUEST | NLM_F_ACK,
        fence,
        NFPROTO_UNSPEC,
        &[],
    );
    sock.send(&getgen, 0).map_err(NftError::Socket)?;
    let mut refused = None;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        sock.recv(&mut buf, 0).map_err(NftError::Socket)?;
        for (ty, seq, message) in messages(&buf)? {
            if ty == NLMSG_ERROR && refused.is_none() {
                let code = error_code(message)?;
                if code != 0 && seq != fence {
                    let index = usize::try_from(seq.wrapping_sub(first)).unwrap_or(usize::MAX);
                    refused = Some(NftError::Refused {
                        index,
                        error: io::Error::from_raw_os_error(code.saturating_neg()),
                    });
                }
            }
            if seq == fence && (ty == NLMSG_ERROR || ty == NLMSG_DONE) {
                return refused.map_or(Ok(()), Err);
            }
        }
    }
}

/// The packets counted by every `counter` expression of the rules in table `inet <table>`,
/// summed (0 when the table does not exist). One rule dump: cheap enough for a status request.
pub fn counter_packets(table: &str) -> Result<u64, NftError> {
    Ok(rule_counters(Family::Inet, table)?
        .into_iter()
        .fold(0u64, u64::saturating_add))
}

/// The packets counted by each rule of table `family table`, in the kernel's dump order (chain
/// by chain, each in rule order; 0 for a rule without a `counter`). Empty when the table does
/// not exist. One rule dump.
pub fn rule_counters(family: Family, table: &str) -> Result<Vec<u64>, NftError> {
    let sock = open_socket()?;
    let seq = 1u32;
    let mut body = Vec::new();
    push_str(&mut body, NFTA_RULE_TABLE, table);
    let mut request = Vec::new();
    push_message(
        &mut request,
        (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        family.number(),
        &body,
    );
    sock.send(&request, 0).map_err(NftError::Socket)?;
    let mut counters = Vec::new();
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        sock.recv(&mut buf, 0).map_err(NftError::Socket)?;
        for (ty, _, message) in messages(&buf)? {
            match ty {
                NLMSG_DONE => return Ok(counters),
                NLMSG_ERROR => {
                    let code = error_code(message)?;
                    if code == -libc::ENOENT {
                        return Ok(Vec::new());
                    }
                    if code != 0 {
                        return Err(NftError::Refused {
                            index: 0,
                            error: io::Error::from_raw_os_error(code.saturating_neg()),
                        });
                    }
                    return Ok(counters);
                }
                _ => {
                    let rule_attributes = message.get(20..).ok_or(NftError::Reply)?;
                    counters.push(rule_counter_packets(rule_attributes)?);
                }
            }
        }
    }
}

/// Sums `NFTA_COUNTER_PACKETS` of the counter expressions in one rule's attributes.
fn rule_counter_packets(rule: &[u8]) -> Result<u64, NftError> {
    let mut total = 0u64;
    for (ty, value) in attributes(rule)? {
        if ty != NFTA_RULE_EXPRESSIONS {
            continue;
        }
        for (_, element) in attributes(value)? {
            let expression = attributes(element)?;
            let is_counter = expression.iter().any(|(ty, v)| {
                *ty == NFTA_EXPR_NAME && v.split(|b| *b == 0).next() == Some(b"counter")
            });
            if !is_counter {
                continue;
            }
            for (ty, data) in &expression {
                if *ty != NFTA_EXPR_DATA {
                    continue;
                }
                for (ty, value) in attributes(data)? {
                    if ty == NFTA_COUNTER_PACKETS {
                        let packets: [u8; 8] = value.try_into().map_err(|_| NftError::Reply)?;
                        total = total.saturating_add(u64::from_be_bytes(packets));
                    }
                }
            }
        }
    }
    Ok(total)
}

/// One netlink message of a receive buffer: (type, sequence, whole message).
type Message<'a> = (u16, u32, &'a [u8]);

/// Netlink messages in a receive buffer.
fn messages(buf: &[u8]) -> Result<Vec<Message<'_>>, NftError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= 16 {
        let len = usize::try_from(read_u32_ne(rest, 0)?).map_err(|_| NftError::Reply)?;
        if len < 16 || len > rest.len() {
            return Err(NftError::Reply);
        }
        out.push((read_u16_ne(rest, 4)?, read_u32_ne(rest, 8)?, &rest[..len]));
        let aligned = len.saturating_add(3) & !3;
        rest = rest.get(aligned.min(rest.len())..).unwrap_or_default();
    }
    Ok(out)
}

/// The (negative errno or 0) code of an `NLMSG_ERROR` message.
fn error_code(message: &[u8]) -> Result<i32, NftError> {
    message
        .get(16..20)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
        .ok_or(NftError::Reply)
}

/// Netlink attributes of `buf`: (type without flag bits, value).
fn attributes(buf: &[u8]) -> Result<Vec<(u16, &[u8])>, NftError> {
    let mut out = Vec::new();
    let mut rest = buf;
    while rest.len() >= 4 {
        let len = usize::from(read_u16_ne(rest, 0)?);
        if len < 4 || len > rest.len() {
            return Err(NftError::Reply);
        }
        let ty = read_u16_ne(rest, 2)? & NLA_TYPE_MASK;
        out.push((ty, &rest[4..len]));
        let aligned = len.saturating_add(3) & !3;
        rest = rest.get(aligned.min(rest.len())..).unwrap_or_default();
    }
    Ok(out)
}

fn mark_expressions(index: usize, rule: &MarkRule) -> Result<Vec<u8>, NftError> {
    let (nfproto, address, offset): (u8, Vec<u8>, u32) = match rule.destination {
        IpAddr::V4(a) => (NFPROTO_IPV4, a.octets().to_vec(), 16),
        IpAddr::V6(a) => (NFPROTO_IPV6, a.octets().to_vec(), 24),
    };
    let bits = address.len() * 8;
    if usize::from(rule.prefix_len) > bits {
        return Err(NftError::Prefix {
            index,
            prefix_len: rule.prefix_len,
        });
    }
    let mut exprs = Vec::new();
    // meta nfproto == ipv4/ipv6
    push_expr(&mut exprs, "meta", &meta_load(NFT_META_NFPROTO));
    push_expr(&mut exprs, "cmp", &cmp(NFT_CMP_EQ, &[nfproto]));
    // meta l4proto == proto
    push_expr(&mut exprs, "meta", &meta_load(NFT_META_L4PROTO));
    push_expr(
        &mut exprs,
        "cmp",
        &cmp(NFT_CMP_EQ, &[rule.protocol.number()]),
    );
    // daddr (masked) == prefix
    push_prefix_match(&mut exprs, rule.destination, rule.prefix_len, offset)?;
    // dport in range (both protocols carry the destination port at transport offset 2)
    if let Some((first, last)) = rule.ports {
        push_expr(
            &mut exprs,
            "payload",
            &payload_load(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2),
        );
        if first == last {
            push_expr(&mut exprs, "cmp", &cmp(NFT_CMP_EQ, &first.to_be_bytes()));
        } else {
            // cmp compares bytes in order, so big-endian ports compare numerically.
            push_expr(&mut exprs, "cmp", &cmp(NFT_CMP_GTE, &first.to_be_bytes()));
            push_expr(&mut exprs, "cmp", &cmp(NFT_CMP_LTE, &last.to_be_bytes()));
        }
    }
    // meta mark set <mark> (the mark is a host-order u32 in the register)
    let mut immediate = Vec::new();
    push_u32(&mut immediate, NFTA_IMMEDIATE_DREG, NFT_REG_1);
    push_data(
        &mut immediate,
        NFTA_IMMEDIATE_DATA,
        &rule.mark.to_ne_bytes(),
    );
    push_expr(&mut exprs, "immediate", &immediate);
    let mut set = Vec::new();
    push_u32(&mut set, NFTA_META_KEY, NFT_META_MARK);
    push_u32(&mut set, NFTA_META_SREG, NFT_REG_1);
    push_expr(&mut exprs, "meta", &set);
    Ok(exprs)
}

/// Loads the address at network-header `offset` and compares it, masked to `prefix_len` bits,
/// with `address`'s network (a plain compare for a full-length prefix).
fn push_prefix_match(
    exprs: &mut Vec<u8>,
    address: IpAddr,
    prefix_len: u8,
    offset: u32,
) -> Result<(), NftError> {
    let address: Vec<u8> = match address {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let bits = address.len() * 8;
    let len = u32::try_from(address.len()).map_err(|_| NftError::Reply)?;
    push_expr(
        exprs,
        "payload",
        &payload_load(NFT_PAYLOAD_NETWORK_HEADER, offset, len),
    );
    let mask: Vec<u8> = (0..address.len())
        .map(|i| {
            let from = i * 8;
            let ones = usize::from(prefix_len).saturating_sub(from).min(8);
            // `ones` is 0..=8, so the shift stays in range and the value fits a byte.
            u8::try_from(0xff_u16 << (8 - ones) & 0xff).unwrap_or(0)
        })
        .collect();
    if usize::from(prefix_len) < bits {
        let mut bitwise = Vec::new();
        push_u32(&mut bitwise, NFTA_BITWISE_SREG, NFT_REG_1);
        push_u32(&mut bitwise, NFTA_BITWISE_DREG, NFT_REG_1);
        push_u32(&mut bitwise, NFTA_BITWISE_LEN, len);
        push_data(&mut bitwise, NFTA_BITWISE_MASK, &mask);
        push_data(&mut bitwise, NFTA_BITWISE_XOR, &vec![0; address.len()]);
        push_expr(exprs, "bitwise", &bitwise);
    }
    let network: Vec<u8> = address.iter().zip(&mask).map(|(a, m)| a & m).collect();
    push_expr(exprs, "cmp", &cmp(NFT_CMP_EQ, &network));
    Ok(())
}

/// Builds one rule's expression list, for [`encode_table_replace`]. Every match loads into
/// register 1 and compares; a rule whose matches all hold runs its statements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleBuilder {
    expressions: Vec<u8>,
}

impl RuleBuilder {
    pub fn new() -> RuleBuilder {
        RuleBuilder::default()
    }

    /// `meta nfproto ipv4` / `meta nfproto ipv6`.
    pub fn family(mut self, ipv6: bool) -> RuleBuilder {
        let family = if ipv6 { NFPROTO_IPV6 } else { NFPROTO_IPV4 };
        push_expr(&mut self.expressions, "meta", &meta_load(NFT_META_NFPROTO));
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_EQ, &[family]));
        self
    }

    /// `meta l4proto <number>` (the transport after any IPv6 extension headers).
    pub fn l4proto(mut self, number: u8) -> RuleBuilder {
        push_expr(&mut self.expressions, "meta", &meta_load(NFT_META_L4PROTO));
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_EQ, &[number]));
        self
    }

    /// `ip daddr <address>` / `ip6 daddr <address>` (exact; call [`RuleBuilder::family`] first).
    pub fn destination(mut self, address: IpAddr) -> RuleBuilder {
        let (octets, offset): (Vec<u8>, u32) = match address {
            IpAddr::V4(a) => (a.octets().to_vec(), 16),
            IpAddr::V6(a) => (a.octets().to_vec(), 24),
        };
        let len = if address.is_ipv6() { 16 } else { 4 };
        push_expr(
            &mut self.expressions,
            "payload",
            &payload_load(NFT_PAYLOAD_NETWORK_HEADER, offset, len),
        );
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_EQ, &octets));
        self
    }

    /// The transport header byte at `offset` lies in `first..=last` (e.g. the ICMPv6 type).
    pub fn transport_byte_in(mut self, offset: u32, first: u8, last: u8) -> RuleBuilder {
        push_expr(
            &mut self.expressions,
            "payload",
            &payload_load(NFT_PAYLOAD_TRANSPORT_HEADER, offset, 1),
        );
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_GTE, &[first]));
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_LTE, &[last]));
        self
    }

    /// The transport header byte at `offset`, masked with `mask`, equals `value & mask` (e.g.
    /// `tcp flags & syn == 0`).
    pub fn transport_byte_masked(mut self, offset: u32, mask: u8, value: u8) -> RuleBuilder {
        push_expr(
            &mut self.expressions,
            "payload",
            &payload_load(NFT_PAYLOAD_TRANSPORT_HEADER, offset, 1),
        );
        let mut bitwise = Vec::new();
        push_u32(&mut bitwise, NFTA_BITWISE_SREG, NFT_REG_1);
        push_u32(&mut bitwise, NFTA_BITWISE_DREG, NFT_REG_1);
        push_u32(&mut bitwise, NFTA_BITWISE_LEN, 1);
        push_data(&mut bitwise, NFTA_BITWISE_MASK, &[mask]);
        push_data(&mut bitwise, NFTA_BITWISE_XOR, &[0]);
        push_expr(&mut self.expressions, "bitwise", &bitwise);
        push_expr(
            &mut self.expressions,
            "cmp",
            &cmp(NFT_CMP_EQ, &[value & mask]),
        );
        self
    }

    /// `ip saddr <network>/<prefix_len>` / `ip6 saddr ...` (call [`RuleBuilder::family`] first).
    /// A prefix longer than the address is refused.
    pub fn source_prefix(
        mut self,
        network: IpAddr,
        prefix_len: u8,
    ) -> Result<RuleBuilder, NftError> {
        let (offset, bits) = match network {
            IpAddr::V4(_) => (12, 32),
            IpAddr::V6(_) => (8, 128),
        };
        if prefix_len > bits {
            return Err(NftError::SourcePrefix { prefix_len });
        }
        push_prefix_match(&mut self.expressions, network, prefix_len, offset)?;
        Ok(self)
    }

    /// `oifname != "<name>"`: the packet leaves through any other interface.
    pub fn output_interface_not(mut self, name: &str) -> RuleBuilder {
        push_expr(&mut self.expressions, "meta", &meta_load(NFT_META_OIFNAME));
        push_expr(
            &mut self.expressions,
            "cmp",
            &cmp(NFT_CMP_NEQ, &padded_ifname(name)),
        );
        self
    }

    /// `oifname "<name>"`: the packet leaves through this interface.
    pub fn output_interface(mut self, name: &str) -> RuleBuilder {
        push_expr(&mut self.expressions, "meta", &meta_load(NFT_META_OIFNAME));
        push_expr(
            &mut self.expressions,
            "cmp",
            &cmp(NFT_CMP_EQ, &padded_ifname(name)),
        );
        self
    }

    /// `iifname "<name>"`: the packet came in through this interface.
    pub fn input_interface(mut self, name: &str) -> RuleBuilder {
        push_expr(&mut self.expressions, "meta", &meta_load(NFT_META_IIFNAME));
        push_expr(
            &mut self.expressions,
            "cmp",
            &cmp(NFT_CMP_EQ, &padded_ifname(name)),
        );
        self
    }

    /// `ether daddr <mac>`, after nft's own dependency `meta iiftype ether` (the link header is
    /// only read from an Ethernet port).
    pub fn ether_destination(mut self, mac: [u8; 6]) -> RuleBuilder {
        push_expr(&mut self.expressions, "meta", &meta_load(NFT_META_IIFTYPE));
        push_expr(
            &mut self.expressions,
            "cmp",
            &cmp(NFT_CMP_EQ, &ARPHRD_ETHER.to_ne_bytes()),
        );
        self.payload_equals(PayloadBase::Link, 0, &mac)
    }

    /// The payload bytes at `offset` from `base` equal `value` (e.g. `arp saddr ip X`).
    pub fn payload_equals(mut self, base: PayloadBase, offset: u32, value: &[u8]) -> RuleBuilder {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        push_expr(
            &mut self.expressions,
            "payload",
            &payload_load(base.number(), offset, len),
        );
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_EQ, value));
        self
    }

    /// `meta l4proto != <number>`.
    pub fn l4proto_not(mut self, number: u8) -> RuleBuilder {
        push_expr(&mut self.expressions, "meta", &meta_load(NFT_META_L4PROTO));
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_NEQ, &[number]));
        self
    }

    /// `ct mark <mark>`: the packet's connection carries this mark (a packet without one, or
    /// untracked, does not match).
    pub fn ct_mark(mut self, mark: u32) -> RuleBuilder {
        let mut load = Vec::new();
        push_u32(&mut load, NFTA_CT_KEY, NFT_CT_MARK);
        push_u32(&mut load, NFTA_CT_DREG, NFT_REG_1);
        push_expr(&mut self.expressions, "ct", &load);
        push_expr(
            &mut self.expressions,
            "cmp",
            &cmp(NFT_CMP_EQ, &mark.to_ne_bytes()),
        );
        self
    }

    /// `ct state new`: the packet would open a connection conntrack has not seen (for TCP this
    /// includes a mid-stream segment picked up loosely, not only a SYN).
    pub fn ct_state_new(mut self) -> RuleBuilder {
        let mut load = Vec::new();
        push_u32(&mut load, NFTA_CT_KEY, NFT_CT_STATE);
        push_u32(&mut load, NFTA_CT_DREG, NFT_REG_1);
        push_expr(&mut self.expressions, "ct", &load);
        let mut bitwise = Vec::new();
        push_u32(&mut bitwise, NFTA_BITWISE_SREG, NFT_REG_1);
        push_u32(&mut bitwise, NFTA_BITWISE_DREG, NFT_REG_1);
        push_u32(&mut bitwise, NFTA_BITWISE_LEN, 4);
        push_data(&mut bitwise, NFTA_BITWISE_MASK, &CT_STATE_NEW.to_ne_bytes());
        push_data(&mut bitwise, NFTA_BITWISE_XOR, &[0; 4]);
        push_expr(&mut self.expressions, "bitwise", &bitwise);
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_NEQ, &[0; 4]));
        self
    }

    /// `jhash <fields joined with .> mod <modulus> seed <seed> @<set>`: the Jenkins hash of the
    /// concatenated fields, reduced to `0..modulus`, is an element of `set` (4-byte host-order
    /// keys). As nft lays a concatenation out, every field starts a fresh 32-bit register from
    /// register 2 on, zero-padded to 4 bytes, and the hash runs over the padded bytes. Refused
    /// when the fields do not fit the registers.
    pub fn hash_in_set(
        mut self,
        fields: &[PayloadField],
        seed: u32,
        modulus: u32,
        set: &str,
    ) -> Result<RuleBuilder, NftError> {
        let words: u32 = fields
            .iter()
            .map(|f| f.len.div_ceil(4))
            .fold(0, u32::saturating_add);
        if fields.is_empty()
            || fields.iter().any(|f| f.len == 0)
            || words > NFT_REG32_15 + 1 - NFT_REG32_04
        {
            return Err(NftError::HashFields {
                len: words.saturating_mul(4),
            });
        }
        let mut register = NFT_REG32_04;
        for field in fields {
            // nft names the first register by its 16-byte number; the kernel takes either.
            let named = if register == NFT_REG32_04 {
                NFT_REG_2
            } else {
                register
            };
            let mut load = Vec::new();
            push_u32(&mut load, NFTA_PAYLOAD_DREG, named);
            push_u32(&mut load, NFTA_PAYLOAD_BASE, field.base.number());
            push_u32(&mut load, NFTA_PAYLOAD_OFFSET, field.offset);
            push_u32(&mut load, NFTA_PAYLOAD_LEN, field.len);
            push_expr(&mut self.expressions, "payload", &load);
            register += field.len.div_ceil(4);
        }
        let mut hash = Vec::new();
        push_u32(&mut hash, NFTA_HASH_SREG, NFT_REG_2);
        push_u32(&mut hash, NFTA_HASH_DREG, NFT_REG_1);
        push_u32(&mut hash, NFTA_HASH_LEN, words * 4);
        push_u32(&mut hash, NFTA_HASH_MODULUS, modulus);
        push_u32(&mut hash, NFTA_HASH_SEED, seed);
        push_u32(&mut hash, NFTA_HASH_TYPE, NFT_HASH_JENKINS);
        push_expr(&mut self.expressions, "hash", &hash);
        let mut lookup = Vec::new();
        push_str(&mut lookup, NFTA_LOOKUP_SET, set);
        push_u32(&mut lookup, NFTA_LOOKUP_SREG, NFT_REG_1);
        push_expr(&mut self.expressions, "lookup", &lookup);
        Ok(self)
    }

    /// `ct mark set <mark>`: the packet's connection is marked (kept for all its later packets,
    /// and read back by [`RuleBuilder::ct_mark`]).
    pub fn set_ct_mark(mut self, mark: u32) -> RuleBuilder {
        self.load_immediate(&mark.to_ne_bytes());
        let mut set = Vec::new();
        push_u32(&mut set, NFTA_CT_KEY, NFT_CT_MARK);
        push_u32(&mut set, NFTA_CT_SREG, NFT_REG_1);
        push_expr(&mut self.expressions, "ct", &set);
        self
    }

    /// `meta pkttype set <pkttype>` ([`PACKET_HOST`]): only in prerouting (ip, inet, bridge)
    /// and netdev ingress chains; the kernel refuses it elsewhere.
    pub fn set_pkttype(mut self, pkttype: u8) -> RuleBuilder {
        self.load_immediate(&[pkttype]);
        let mut set = Vec::new();
        push_u32(&mut set, NFTA_META_KEY, NFT_META_PKTTYPE);
        push_u32(&mut set, NFTA_META_SREG, NFT_REG_1);
        push_expr(&mut self.expressions, "meta", &set);
        self
    }

    /// Writes `value` over the payload at `offset` from `base`, with no checksum update (e.g.
    /// `arp saddr ether set <mac>`; an IP or transport field would need one).
    pub fn payload_write(mut self, base: PayloadBase, offset: u32, value: &[u8]) -> RuleBuilder {
        self.load_immediate(value);
        let mut write = Vec::new();
        push_u32(&mut write, NFTA_PAYLOAD_SREG, NFT_REG_1);
        push_u32(&mut write, NFTA_PAYLOAD_BASE, base.number());
        push_u32(&mut write, NFTA_PAYLOAD_OFFSET, offset);
        push_u32(
            &mut write,
            NFTA_PAYLOAD_LEN,
            u32::try_from(value.len()).unwrap_or(u32::MAX),
        );
        push_u32(&mut write, NFTA_PAYLOAD_CSUM_TYPE, NFT_PAYLOAD_CSUM_NONE);
        push_expr(&mut self.expressions, "payload", &write);
        self
    }

    /// `immediate`: `value` into register 1, for a statement that reads it.
    fn load_immediate(&mut self, value: &[u8]) {
        let mut immediate = Vec::new();
        push_u32(&mut immediate, NFTA_IMMEDIATE_DREG, NFT_REG_1);
        push_data(&mut immediate, NFTA_IMMEDIATE_DATA, value);
        push_expr(&mut self.expressions, "immediate", &immediate);
    }

    /// `masquerade`: rewrite the source to the output interface's address (NAT chains only).
    pub fn masquerade(mut self) -> RuleBuilder {
        push_expr(&mut self.expressions, "masq", &[]);
        self
    }

    /// `counter`: packets and bytes that reach this point, read back by [`counter_packets`].
    pub fn counter(mut self) -> RuleBuilder {
        push_expr(&mut self.expressions, "counter", &[]);
        self
    }

    /// The final verdict ([`VERDICT_DROP`], [`VERDICT_ACCEPT`]).
    pub fn verdict(mut self, code: u32) -> RuleBuilder {
        let mut verdict = Vec::new();
        push_u32(&mut verdict, NFTA_VERDICT_CODE, code);
        let mut data = Vec::new();
        push_attr(&mut data, NFTA_DATA_VERDICT | NLA_F_NESTED, &verdict);
        let mut immediate = Vec::new();
        push_u32(&mut immediate, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
        push_attr(&mut immediate, NFTA_IMMEDIATE_DATA | NLA_F_NESTED, &data);
        push_expr(&mut self.expressions, "immediate", &immediate);
        self
    }

    /// The encoded expression list.
    pub fn build(self) -> Vec<u8> {
        self.expressions
    }
}

/// An interface name as nft compares it: `IFNAMSIZ` bytes, zero-padded (a longer name is cut
/// to 15 bytes, which no interface has).
fn padded_ifname(name: &str) -> [u8; IFNAMSIZ] {
    let mut padded = [0u8; IFNAMSIZ];
    let bytes = name.as_bytes();
    let len = bytes.len().min(IFNAMSIZ - 1);
    padded[..len].copy_from_slice(&bytes[..len]);
    padded
}

fn meta_load(key: u32) -> Vec<u8> {
    let mut out = Vec::new();
    push_u32(&mut out, NFTA_META_KEY, key);
    push_u32(&mut out, NFTA_META_DREG, NFT_REG_1);
    out
}

fn cmp(op: u32, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_u32(&mut out, NFTA_CMP_SREG, NFT_REG_1);
    push_u32(&mut out, NFTA_CMP_OP, op);
    push_data(&mut out, NFTA_CMP_DATA, value);
    out
}

fn payload_load(base: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    push_u32(&mut out, NFTA_PAYLOAD_DREG, NFT_REG_1);
    push_u32(&mut out, NFTA_PAYLOAD_BASE, base);
    push_u32(&mut out, NFTA_PAYLOAD_OFFSET, offset);
    push_u32(&mut out, NFTA_PAYLOAD_LEN, len);
    out
}

fn push_expr(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut expr = Vec::new();
    push_str(&mut expr, NFTA_EXPR_NAME, name);
    push_attr(&mut expr, NFTA_EXPR_DATA | NLA_F_NESTED, data);
    push_attr(out, NFTA_LIST_ELEM | NLA_F_NESTED, &expr);
}

fn push_data(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    let mut data = Vec::new();
    push_attr(&mut data, NFTA_DATA_VALUE, value);
    push_attr(out, ty | NLA_F_NESTED, &data);
}

/// nf_tables takes its u32 attributes in network byte order.
fn push_u32(out: &mut Vec<u8>, ty: u16, value: u32) {
    push_attr(out, ty, &value.to_be_bytes());
}

fn push_str(out: &mut Vec<u8>, ty: u16, value: &str) {
    let mut bytes = value.as_bytes().to_vec();
    bytes.push(0);
    push_attr(out, ty, &bytes);
}

fn push_attr(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    // Attribute sizes here are bounded by the rule shapes above (far below 64 KiB).
    let len = u16::try_from(4 + value.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(value);
    pad4(out);
}

/// nlmsghdr + nfgenmsg + body.
fn push_message(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, body: &[u8]) {
    let len = u32::try_from(16 + 4 + body.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    out.push(family);
    out.push(0); // NFNETLINK_V0
                 // res_id: the subsystem for batch messages, 0 otherwise (big endian).
    let res_id = if ty == NFNL_MSG_BATCH_BEGIN || ty == NFNL_MSG_BATCH_END {
        NFNL_SUBSYS_NFTABLES
    } else {
        0
    };
    out.extend_from_slice(&res_id.to_be_bytes());
    out.extend_from_slice(body);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn read_u32_ne(buf: &[u8], at: usize) -> Result<u32, NftError> {
    buf.get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
        .ok_or(NftError::Reply)
}

fn read_u16_ne(buf: &[u8], at: usize) -> Result<u16, NftError> {
    buf.get(at..at + 2)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes)
        .ok_or(NftError::Reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(mark: u32, dst: &str, prefix_len: u8, ports: Option<(u16, u16)>) -> MarkRule {
        MarkRule {
            mark,
            protocol: L4Proto::Tcp,
            destination: dst.parse().unwrap(),
            prefix_len,
            ports,
        }
    }

    /// (type, flags, seq) of each message in a batch.
    fn headers(batch: &[u8]) -> Vec<(u16, u16, u32)> {
        let mut out = Vec::new();
        let mut rest = batch;
        while !rest.is_empty() {
            let len = usize::try_from(read_u32_ne(rest, 0).unwrap()).unwrap();
            assert!(len.is_multiple_of(4));
            out.push((
                read_u16_ne(rest, 4).unwrap(),
                read_u16_ne(rest, 6).unwrap(),
                read_u32_ne(rest, 8).unwrap(),
            ));
            rest = &rest[len..];
        }
        out
    }

    #[test]
    fn batch_replaces_the_table_in_one_transaction() {
        let rules = [
            rule(7, "192.0.2.10", 32, Some((80, 80))),
            rule(8, "2001:db8::", 64, Some((8000, 8099))),
        ];
        let (batch, count) = encode_replace(&rules, 100).unwrap();
        let h = headers(&batch);
        let types: Vec<u16> = h.iter().map(|m| m.0).collect();
        let nft = |m: u16| (10 << 8) | m;
        assert_eq!(
            types,
            [0x10, nft(0), nft(2), nft(0), nft(3), nft(6), nft(6), 0x11]
        );
        assert_eq!(count, 8);
        // Batch ends carry seq 0; the rest are numbered from 100 in order and ask for acks.
        assert_eq!(h[1].2, 101);
        assert_eq!(h[6].2, 106);
        assert!(h[1..7].iter().all(|m| m.1 & NLM_F_ACK != 0));
        assert_eq!(
            u16::from_be_bytes([batch[18], batch[19]]),
            10,
            "res_id nftables"
        );
    }

    #[test]
    fn counters_are_read_from_a_rule_dump_and_garbage_is_an_error() {
        // A rule as the kernel dumps it: table, chain, expressions (cmp, counter, immediate).
        let mut counter = Vec::new();
        push_attr(&mut counter, 1, &999u64.to_be_bytes()); // NFTA_COUNTER_BYTES
        push_attr(&mut counter, NFTA_COUNTER_PACKETS, &5u64.to_be_bytes());
        let mut exprs = Vec::new();
        push_expr(&mut exprs, "cmp", &cmp(NFT_CMP_EQ, &[1]));
        push_expr(&mut exprs, "counter", &counter);
        push_expr(
            &mut exprs,
            "immediate",
            &RuleBuilder::new().verdict(VERDICT_DROP).build(),
        );
        let mut rule = Vec::new();
        push_str(&mut rule, NFTA_RULE_TABLE, "tandem_vrrp");
        push_str(&mut rule, NFTA_RULE_CHAIN, "accept_mode");
        push_attr(&mut rule, NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, &exprs);
        assert_eq!(rule_counter_packets(&rule).unwrap(), 5);
        // Every truncation is refused or counts less, never a panic.
        for end in 0..rule.len() {
            let _ = rule_counter_packets(&rule[..end]);
        }
        let mut bad = rule.clone();
        bad[0] = 200; // first attribute longer than the buffer
        assert!(matches!(rule_counter_packets(&bad), Err(NftError::Reply)));
    }

    #[test]
    fn no_rules_only_removes_the_table_and_bad_prefixes_are_refused() {
        let (batch, _) = encode_replace(&[], 1).unwrap();
        let types: Vec<u16> = headers(&batch).iter().map(|m| m.0).collect();
        assert_eq!(types, [0x10, (10 << 8), (10 << 8) | 2, 0x11]);
        let err = encode_replace(&[rule(1, "192.0.2.0", 33, None)], 1).unwrap_err();
        assert!(
            matches!(
                err,
                NftError::Prefix {
                    index: 0,
                    prefix_len: 33
                }
            ),
            "{err}"
        );
    }
}
