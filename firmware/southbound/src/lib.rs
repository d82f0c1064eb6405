//! The southbound layer: the only code in Tandem that touches the kernel.
//!
//! Role engines decide; this crate executes. Changes to the kernel are described as data
//! ([`net::NetOp`]) and applied by one executor over route netlink ([`rtnl`], with the bytes
//! walked and built by [`nlmsg`]), so engines stay pure and tests can record what would be
//! done. Reads come from sysfs and procfs. Nothing here shells out: the image has no `ip`,
//! `modprobe` or `sysctl`.

pub mod block;
pub mod bond;
pub mod cluster_filter;
pub mod efi;
pub mod kmod;
pub mod lan_probe;
pub mod link_monitor;
pub mod macvlan;
pub mod neigh;
pub mod net;
pub mod nft;
pub mod nlmsg;
pub mod packet;
pub mod peer_socket;
pub mod ping;
pub mod probe;
pub mod process;
pub mod route;
pub mod rtnl;
pub mod snat;
pub mod sock_diag;
pub mod sysctl;
pub mod sysfs;
pub mod tickle;
pub mod timer;
pub mod vip_filter;
pub mod vmac_filter;
pub mod vrrp_socket;
pub mod watchdog;
