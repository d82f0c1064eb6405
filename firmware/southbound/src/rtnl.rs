//! A small route-netlink executor: one `NETLINK_ROUTE` socket, a request out, its answer in,
//! matched by sequence number.
//!
//! Why this exists instead of rtnetlink's `Handle`: the size budget. rtnetlink's connection task
//! decodes every incoming message as a full `RouteNetlinkMessage` (every link kind, tc, routes),
//! about 400 KB of the 4 MiB appliance binary, plus its own and netlink-proto's glue. Tandem sends
//! a handful of requests and reads a handful of fields ([`crate::nlmsg`]).
//!
//! Blocking is fine here: the kernel handles a route-netlink request inside `sendmsg`, so when
//! `send` returns the ack, the error or the first part of a dump is already queued (the rest of
//! a dump is produced inside each `recvmsg`). The async connection did the same syscalls on the
//! same thread. A receive timeout only guards against the impossible.

use std::io;
use std::time::Duration;

use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

use crate::nlmsg::{self, Request, NLMSG_DONE, NLMSG_ERROR, NLM_F_MULTI};

/// Longest wait for an answer the kernel has already queued.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// One received datagram: the kernel fills at most 32 KiB per dump part.
pub(crate) const RECEIVE_BUFFER: usize = 64 * 1024;

/// Why a route-netlink exchange failed.
#[derive(Debug)]
pub enum RtnlError {
    /// The kernel refused the request with this errno (positive).
    Kernel(i32),
    /// Sending or receiving failed.
    Socket(io::Error),
    /// No answer within [`ANSWER_TIMEOUT`].
    Timeout,
    /// The answer did not parse.
    Malformed,
    /// The request does not fit a netlink message.
    TooLarge,
}

impl RtnlError {
    /// The kernel's errno, when it refused the request.
    pub fn errno(&self) -> Option<i32> {
        match self {
            RtnlError::Kernel(errno) => Some(*errno),
            _ => None,
        }
    }
}

impl core::fmt::Display for RtnlError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RtnlError::Kernel(errno) => write!(f, "{}", io::Error::from_raw_os_error(*errno)),
            RtnlError::Socket(e) => write!(
                f,
                "netlink socket failed: {e} (out of memory or file descriptors? restart tandem)"
            ),
            RtnlError::Timeout => write!(
                f,
                "the kernel did not answer within {} s (is the box overloaded? try again)",
                ANSWER_TIMEOUT.as_secs()
            ),
            RtnlError::Malformed => write!(
                f,
                "the kernel's answer did not parse (report it with the kernel version)"
            ),
            RtnlError::TooLarge => write!(
                f,
                "the request does not fit a netlink message (is a link name over 15 bytes? fix \
                 the config)"
            ),
        }
    }
}

impl std::error::Error for RtnlError {}

/// What to do with one answer message.
pub(crate) type Each<'a> = &'a mut dyn FnMut(u16, &[u8]);

/// A route-netlink socket for requests and dumps (no multicast groups).
#[derive(Debug)]
pub(crate) struct Rtnl {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

impl Rtnl {
    /// Opens a socket talking to the kernel only, with a receive timeout.
    pub(crate) fn open() -> io::Result<Rtnl> {
        let socket = kernel_socket(0)?;
        nix::sys::socket::setsockopt(
            &socket,
            nix::sys::socket::sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(i64::try_from(ANSWER_TIMEOUT.as_secs()).unwrap_or(5), 0),
        )?;
        Ok(Rtnl {
            socket,
            sequence: 0,
            buffer: vec![0; RECEIVE_BUFFER],
        })
    }

    /// Sends a request with `NLM_F_ACK` and waits for its ack.
    pub(crate) fn execute(&mut self, request: Request) -> Result<(), RtnlError> {
        self.exchange(request, &mut |_, _| {})
    }

    /// Sends `request` and hands each answer message (type, payload) to `each`, until the
    /// answer ends: an ack or error (`NLMSG_ERROR`), the end of a dump (`NLMSG_DONE`), or a
    /// single answer (a message without `NLM_F_MULTI`, as `RTM_GETLINK` of one link sends).
    /// Messages with another sequence number (a late answer to an earlier request) are skipped.
    pub(crate) fn exchange(&mut self, request: Request, each: Each<'_>) -> Result<(), RtnlError> {
        self.sequence = self.sequence.wrapping_add(1).max(1);
        let sequence = self.sequence;
        let bytes = request.finish(sequence).ok_or(RtnlError::TooLarge)?;
        retry_interrupted(|| self.socket.send(&bytes, 0)).map_err(RtnlError::Socket)?;
        loop {
            let length = retry_interrupted(|| self.socket.recv(&mut &mut self.buffer[..], 0))
                .map_err(|e| match e.kind() {
                    io::ErrorKind::WouldBlock => RtnlError::Timeout,
                    _ => RtnlError::Socket(e),
                })?;
            let datagram = self.buffer.get(..length).unwrap_or(&self.buffer);
            for message in nlmsg::messages(datagram) {
                let message = message.map_err(|_| RtnlError::Malformed)?;
                if message.sequence != sequence {
                    continue;
                }
                match message.kind {
                    NLMSG_ERROR => {
                        let code =
                            nlmsg::error_code(message.payload).ok_or(RtnlError::Malformed)?;
                        return refused(code);
                    }
                    NLMSG_DONE => return refused(nlmsg::done_code(message.payload)),
                    kind => {
                        each(kind, message.payload);
                        if message.flags & NLM_F_MULTI == 0 {
                            return Ok(());
                        }
                    }
                }
            }
        }
    }
}

/// `Ok` for status 0, the kernel's refusal for a negated errno.
fn refused(code: i32) -> Result<(), RtnlError> {
    match code {
        0 => Ok(()),
        code => Err(RtnlError::Kernel(code.saturating_neg())),
    }
}

/// A `NETLINK_ROUTE` socket bound to `groups` that only the kernel can send to.
pub(crate) fn kernel_socket(groups: u32) -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE)?;
    socket.bind(&SocketAddr::new(0, groups))?;
    // Connected to port 0: the kernel refuses unicasts from other processes' sockets.
    socket.connect(&SocketAddr::new(0, 0))?;
    Ok(socket)
}

/// Runs `call` again while it is interrupted by a signal (a socket with a receive timeout
/// returns EINTR even under `SA_RESTART`).
fn retry_interrupted<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}
