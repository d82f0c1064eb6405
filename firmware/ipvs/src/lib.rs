//! IPVS client over generic netlink.
//!
//! Requests are plain data ([`Request`]) encoded to bytes by [`Request::encode`]; replies decode
//! from bytes with [`decode_reply`]; only [`Executor`] touches a socket. The split keeps the
//! codec testable against exact byte vectors derived from `include/uapi/linux/ip_vs.h`, and lets
//! the executor batch thousands of requests into a few `sendmsg` calls.

pub mod conn;
mod exec;
pub mod nla;
mod reply;
mod request;
mod types;
pub mod uapi;

pub use exec::{
    AckMode, ExecError, Executor, OpenError, Outcome, RequestError, TransportError,
    DEFAULT_MAX_BATCH,
};
pub use nla::{DecodeError, NlMsg, NlMsgIter};
pub use reply::{
    decode_datagram, decode_dest, decode_family_id, decode_reply, decode_service, decode_stats,
    Reply,
};
pub use request::{encode_get_family, EncodeError, Request};
pub use types::*;
