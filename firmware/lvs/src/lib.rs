//! LVS director logic: the desired IPVS table, its diff against the kernel's table as a minimal
//! ordered list of operations, and health checking (sans-IO scheduling and decisions, plus a
//! tokio prober). The daemon feeds health results in, takes [`reconcile::Op`]s out, and hands
//! their [`tandem_ipvs::Request`]s to the IPVS executor.

pub mod health;
pub mod model;
pub mod reconcile;

pub use model::*;
pub use reconcile::{diff, diff_service, ApplyError, Op};
