//! The IPv4 neighbour table for the console's Diagnostics, from procfs (`/proc/net/arp`): which
//! addresses this box has resolved, to which MAC, on which port. (IPv6 neighbours are only in
//! netlink; they are not listed yet.)

/// One ARP entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub address: String,
    pub mac: String,
    pub device: String,
    /// `complete` (ATF_COM), `permanent` (ATF_PERM) or `incomplete`.
    pub state: &'static str,
}

const ARP_TABLE: &str = "/proc/net/arp";

/// Parses `/proc/net/arp`: a header line, then `IP HWtype Flags HWaddress Mask Device`.
/// Lines that do not have that shape are skipped.
pub fn parse_proc_net_arp(text: &str) -> Vec<Neighbour> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [address, _, flags, mac, _, device] = fields.as_slice() else {
                return None;
            };
            let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()?;
            let state = if flags & 0x4 != 0 {
                "permanent"
            } else if flags & 0x2 != 0 {
                "complete"
            } else {
                "incomplete"
            };
            Some(Neighbour {
                address: (*address).to_owned(),
                mac: (*mac).to_owned(),
                device: (*device).to_owned(),
                state,
            })
        })
        .collect()
}

/// The IPv4 neighbours now.
pub fn ipv4_neighbours() -> std::io::Result<Vec<Neighbour>> {
    Ok(parse_proc_net_arp(&std::fs::read_to_string(ARP_TABLE)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kernel_table_and_skips_odd_lines() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device\n\
                    192.0.2.21       0x1         0x2         52:54:00:12:34:56     *        public\n\
                    192.0.2.99       0x1         0x0         00:00:00:00:00:00     *        public\n\
                    garbage\n";
        let table = parse_proc_net_arp(text);
        assert_eq!(table.len(), 2);
        assert_eq!(table[0].address, "192.0.2.21");
        assert_eq!(table[0].state, "complete");
        assert_eq!(table[1].state, "incomplete");
        assert_eq!(table[0].device, "public");
    }
}
