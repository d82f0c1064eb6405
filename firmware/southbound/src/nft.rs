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
//! [`counter_packets`]) is shared with [`crate::vip_filter`], which owns its own table.

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

/// A base chain of an `inet` table: where it hooks in and at which priority.
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
/// [`push_expr`]). No rules: the table is only removed. Returns the batch and how many
/// sequence numbers it used (`seq..seq+count`).
pub fn encode_table_replace(chain: &BaseChain<'_>, rules: &[Vec<u8>], seq: u32) -> (Vec<u8>, u32) {
    let mut out = Vec::with_capacity(512 + rules.iter().map(|r| r.len() + 64).sum::<usize>());
    let mut next = seq;
    let mut message = |out: &mut Vec<u8>, ty: u16, flags: u16, family: u8, body: &[u8]| {
        let mut seq_here = next;
        next = next.wrapping_add(1);
        if ty == NFNL_MSG_BATCH_BEGIN || ty == NFNL_MSG_BATCH_END {
            seq_here = 0;
        }
        push_message(out, ty, flags, seq_here, family, body);
    };
    let nft = |msg: u16| (NFNL_SUBSYS_NFTABLES << 8) | msg;
    let begin_end_family = NFPROTO_UNSPEC;
    message(
        &mut out,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        begin_end_family,
        &[],
    );
    let mut table = Vec::new();
    push_str(&mut table, NFTA_TABLE_NAME, chain.table);
    let ack = NLM_F_REQUEST | NLM_F_ACK;
    // Add (no EXCL: a no-op when present) then delete: the table is gone whatever was there.
    message(
        &mut out,
        nft(NFT_MSG_NEWTABLE),
        ack | NLM_F_CREATE,
        NFPROTO_INET,
        &table,
    );
    message(&mut out, nft(NFT_MSG_DELTABLE), ack, NFPROTO_INET, &table);
    if !rules.is_empty() {
        message(
            &mut out,
            nft(NFT_MSG_NEWTABLE),
            ack | NLM_F_CREATE,
            NFPROTO_INET,
            &table,
        );
        let mut body = Vec::new();
        push_str(&mut body, NFTA_CHAIN_TABLE, chain.table);
        push_str(&mut body, NFTA_CHAIN_NAME, chain.name);
        let mut hook = Vec::new();
        push_u32(&mut hook, NFTA_HOOK_HOOKNUM, chain.hook);
        push_attr(&mut hook, NFTA_HOOK_PRIORITY, &chain.priority.to_be_bytes());
        push_attr(&mut body, NFTA_CHAIN_HOOK | NLA_F_NESTED, &hook);
        push_str(&mut body, NFTA_CHAIN_TYPE, chain.kind.type_name());
        message(
            &mut out,
            nft(NFT_MSG_NEWCHAIN),
            ack | NLM_F_CREATE,
            NFPROTO_INET,
            &body,
        );
        for expressions in rules {
            let mut body = Vec::new();
            push_str(&mut body, NFTA_RULE_TABLE, chain.table);
            push_str(&mut body, NFTA_RULE_CHAIN, chain.name);
            push_attr(&mut body, NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, expressions);
            message(
                &mut out,
                nft(NFT_MSG_NEWRULE),
                ack | NLM_F_CREATE | NLM_F_APPEND,
                NFPROTO_INET,
                &body,
            );
        }
    }
    message(
        &mut out,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        begin_end_family,
        &[],
    );
    (out, next.wrapping_sub(seq))
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
        NFPROTO_INET,
        &body,
    );
    sock.send(&request, 0).map_err(NftError::Socket)?;
    let mut total = 0u64;
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        buf.clear();
        sock.recv(&mut buf, 0).map_err(NftError::Socket)?;
        for (ty, _, message) in messages(&buf)? {
            match ty {
                NLMSG_DONE => return Ok(total),
                NLMSG_ERROR => {
                    let code = error_code(message)?;
                    if code == -libc::ENOENT {
                        return Ok(0);
                    }
                    if code != 0 {
                        return Err(NftError::Refused {
                            index: 0,
                            error: io::Error::from_raw_os_error(code.saturating_neg()),
                        });
                    }
                    return Ok(total);
                }
                _ => {
                    let rule_attributes = message.get(20..).ok_or(NftError::Reply)?;
                    total = total.saturating_add(rule_counter_packets(rule_attributes)?);
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
        let mut padded = [0u8; IFNAMSIZ];
        let bytes = name.as_bytes();
        let len = bytes.len().min(IFNAMSIZ - 1);
        padded[..len].copy_from_slice(&bytes[..len]);
        push_expr(&mut self.expressions, "meta", &meta_load(NFT_META_OIFNAME));
        push_expr(&mut self.expressions, "cmp", &cmp(NFT_CMP_NEQ, &padded));
        self
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
