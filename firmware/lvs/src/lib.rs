//! LVS director logic: the director plan of a config ([`plan`]), the desired IPVS table, its
//! diff against the kernel's table as a minimal ordered list of operations, health checking
//! (sans-IO scheduling and decisions, plus a tokio prober), and the decisions of a live apply of
//! a new config ([`live`]: stable check identities, health carried over, report lines), and the
//! checks VRRP instances track ([`tracked`]: keepalived `track_script` as built-in checks). The
//! daemon feeds health results in, takes [`reconcile::Op`]s out, and hands their
//! [`tandem_ipvs::Request`]s to the IPVS executor.

pub mod health;
pub mod live;
pub mod model;
pub mod plan;
pub mod reconcile;
pub mod tracked;

pub use model::*;
pub use reconcile::{diff, diff_service, ApplyError, Op};
