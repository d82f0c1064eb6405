//! The southbound executor: owns one `NETLINK_GENERIC` socket, resolves the `IPVS` family,
//! and sends many requests per `sendmsg`, matching acknowledgements by sequence number.
//!
//! Chunks are sized so the kernel's acknowledgements fit the socket's receive buffer (the kernel
//! processes a whole datagram synchronously inside `sendmsg` and drops acks that do not fit).
//! A dump (`Dump*`) travels alone: the kernel allows one dump in flight per socket.

use std::io;

use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr};

use crate::nla::{error_code, DecodeError, NlMsgIter};
use crate::reply::{decode_family_id, decode_reply, Reply};
use crate::request::{encode_get_family, EncodeError, Request};
use crate::types::*;
use crate::uapi::*;

/// How successes are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckMode {
    /// `NLM_F_ACK` on every request: one ack per request (the default).
    Each,
    /// `NLM_F_ACK` only on the last request of each datagram; failures are still reported
    /// per request by the kernel. Fewer `recv` calls for large loads.
    ErrorsOnly,
}

/// Opening the IPVS client failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The kernel has no `IPVS` generic netlink family: load the `ip_vs` module (and check the
    /// kernel was built with CONFIG_IP_VS).
    #[error("kernel has no IPVS generic netlink family; load the ip_vs module")]
    FamilyAbsent,
    /// The netlink socket could not be created or bound.
    #[error("cannot open NETLINK_GENERIC socket: {0}")]
    Socket(#[source] io::Error),
    /// Resolving the family failed in transport.
    #[error("resolving the IPVS family failed: {0}")]
    Transport(#[from] TransportError),
}

/// The transport failed; the state of requests not yet acknowledged is unknown: re-read the
/// kernel table and diff again.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// sendmsg/recvmsg failed.
    #[error("netlink socket I/O failed: {0}")]
    Io(#[from] io::Error),
    /// The kernel dropped replies (ENOBUFS): lower the batch size or raise the receive buffer.
    #[error("kernel dropped netlink replies (receive buffer overrun); lower the batch size")]
    RepliesLost,
    /// A reply could not be parsed.
    #[error("malformed netlink reply: {0}")]
    Decode(#[from] DecodeError),
    /// A request could not be encoded.
    #[error("request #{index} ({request}) cannot be encoded: {source}")]
    Encode {
        /// Index in the submitted slice.
        index: usize,
        /// The request, named.
        request: String,
        /// Why.
        source: EncodeError,
    },
    /// A received datagram was larger than the receive buffer.
    #[error("netlink datagram of {0} bytes truncated")]
    Truncated(usize),
}

/// The kernel refused one request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{request}: {} (errno {errno})", io::Error::from_raw_os_error(*errno))]
pub struct RequestError {
    /// Index of the request in the submitted slice.
    pub index: usize,
    /// Positive errno (EEXIST, ENOENT, ESRCH, EINVAL...).
    pub errno: i32,
    /// The request, named (`NEW_DEST 10.0.0.1:80 in tcp 192.0.2.1:80`).
    pub request: String,
}

/// Either the transport failed or the kernel refused a request.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// See [`TransportError`].
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// See [`RequestError`].
    #[error(transparent)]
    Request(#[from] RequestError),
}

/// Outcome of one request: its decoded replies, or the kernel's errno.
pub type Outcome = Result<Vec<Reply>, RequestError>;

/// Default cap on requests per datagram.
pub const DEFAULT_MAX_BATCH: usize = 256;
const RECV_BUF: usize = 256 * 1024;
const WANTED_RCVBUF: usize = 4 * 1024 * 1024;
/// Kernel memory charged per ack skb, rounded up (truesize of a small skb).
const ACK_TRUESIZE: usize = 1024;

/// A connected IPVS generic netlink client.
#[derive(Debug)]
pub struct Executor {
    sock: Socket,
    family: u16,
    seq: u32,
    max_batch: usize,
    ack_mode: AckMode,
    tx: Vec<u8>,
    rx: Vec<u8>,
}

impl Executor {
    /// Opens a socket and resolves the `IPVS` family id.
    pub fn open() -> Result<Executor, OpenError> {
        let mut sock = Socket::new(NETLINK_GENERIC).map_err(OpenError::Socket)?;
        sock.bind_auto().map_err(OpenError::Socket)?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(OpenError::Socket)?;
        // Best effort: short acks, bigger receive buffer (capped by net.core.rmem_max).
        let _ = sock.set_cap_ack(true);
        let _ = sock.set_rx_buf_sz(WANTED_RCVBUF);
        let rcvbuf = sock.get_rx_buf_sz().unwrap_or(212_992);
        let max_batch = (rcvbuf / 2 / ACK_TRUESIZE).clamp(16, DEFAULT_MAX_BATCH);
        let mut exec = Executor {
            sock,
            family: 0,
            seq: 1,
            max_batch,
            ack_mode: AckMode::Each,
            tx: Vec::with_capacity(64 * 1024),
            rx: Vec::with_capacity(RECV_BUF),
        };
        exec.family = exec.resolve_family()?;
        Ok(exec)
    }

    /// The resolved `IPVS` family id.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    /// Caps the number of requests per datagram (at least 1).
    pub fn set_max_batch(&mut self, n: usize) {
        self.max_batch = n.max(1);
    }

    /// Chooses how successes are acknowledged.
    pub fn set_ack_mode(&mut self, mode: AckMode) {
        self.ack_mode = mode;
    }

    fn resolve_family(&mut self) -> Result<u16, OpenError> {
        let seq = self.next_seq(1);
        self.tx.clear();
        encode_get_family(seq, &mut self.tx).map_err(|source| TransportError::Encode {
            index: 0,
            request: "CTRL_CMD_GETFAMILY IPVS".into(),
            source,
        })?;
        self.sock.send(&self.tx, 0).map_err(TransportError::Io)?;
        let mut family = None;
        loop {
            self.recv()?;
            for msg in NlMsgIter::new(&self.rx) {
                let msg = msg.map_err(TransportError::Decode)?;
                if msg.seq != seq {
                    continue;
                }
                match msg.ty {
                    NLMSG_ERROR => {
                        let errno = error_code(msg.payload).map_err(TransportError::Decode)?;
                        return match (errno, family) {
                            (0, Some(id)) => Ok(id),
                            (0, None) => Err(OpenError::Transport(TransportError::Decode(
                                DecodeError::Missing("CTRL_ATTR_FAMILY_ID"),
                            ))),
                            (ENOENT, _) => Err(OpenError::FamilyAbsent),
                            (e, _) => Err(OpenError::Transport(TransportError::Io(
                                io::Error::from_raw_os_error(e),
                            ))),
                        };
                    }
                    GENL_ID_CTRL => {
                        family =
                            Some(decode_family_id(msg.payload).map_err(TransportError::Decode)?)
                    }
                    _ => {}
                }
            }
        }
    }

    fn next_seq(&mut self, n: usize) -> u32 {
        let first = self.seq;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.seq = self.seq.wrapping_add(n);
        first
    }

    fn recv(&mut self) -> Result<(), TransportError> {
        self.rx.clear();
        if self.rx.capacity() < RECV_BUF {
            self.rx.reserve(RECV_BUF);
        }
        match self.sock.recv(&mut self.rx, 0) {
            Ok(n) if n > self.rx.len() => Err(TransportError::Truncated(n)),
            Ok(_) => Ok(()),
            Err(e) if e.raw_os_error() == Some(ENOBUFS) => Err(TransportError::RepliesLost),
            Err(e) => Err(TransportError::Io(e)),
        }
    }

    /// Sends all requests (batched) and returns one outcome per request, in order. Requests are
    /// executed in order; a refused request does not stop the ones after it.
    pub fn execute(&mut self, requests: &[Request]) -> Result<Vec<Outcome>, TransportError> {
        let mut outcomes = Vec::with_capacity(requests.len());
        let mut i = 0;
        while i < requests.len() {
            let end = if requests[i].is_dump() {
                i + 1
            } else {
                let mut e = i;
                while e < requests.len() && e - i < self.max_batch && !requests[e].is_dump() {
                    e += 1;
                }
                e
            };
            self.execute_chunk(&requests[i..end], i, &mut outcomes)?;
            i = end;
        }
        Ok(outcomes)
    }

    /// Sends all requests and returns only the refusals (empty = all applied).
    pub fn apply(&mut self, requests: &[Request]) -> Result<Vec<RequestError>, TransportError> {
        Ok(self
            .execute(requests)?
            .into_iter()
            .filter_map(Result::err)
            .collect())
    }

    fn execute_chunk(
        &mut self,
        chunk: &[Request],
        base: usize,
        outcomes: &mut Vec<Outcome>,
    ) -> Result<(), TransportError> {
        let first = self.next_seq(chunk.len());
        self.tx.clear();
        for (k, req) in chunk.iter().enumerate() {
            let seq = first.wrapping_add(u32::try_from(k).unwrap_or(u32::MAX));
            let ack = self.ack_mode == AckMode::Each || k + 1 == chunk.len();
            req.encode_with_ack(self.family, seq, ack, &mut self.tx)
                .map_err(|source| TransportError::Encode {
                    index: base + k,
                    request: req.to_string(),
                    source,
                })?;
        }
        self.sock.send(&self.tx, 0)?;

        let mut results: Vec<Option<Outcome>> = vec![None; chunk.len()];
        let mut replies: Vec<Vec<Reply>> = vec![Vec::new(); chunk.len()];
        let mut open = chunk.len();
        while open > 0 {
            self.recv()?;
            for msg in NlMsgIter::new(&self.rx) {
                let msg = msg?;
                let k = usize::try_from(msg.seq.wrapping_sub(first)).unwrap_or(usize::MAX);
                if k >= chunk.len() {
                    continue; // stale reply to an earlier, abandoned exchange
                }
                let finished = match msg.ty {
                    NLMSG_ERROR | NLMSG_DONE => {
                        // DONE carries an int status (0 or -errno) like ERROR does.
                        let errno = if msg.payload.is_empty() {
                            0
                        } else {
                            error_code(msg.payload)?
                        };
                        if errno == 0 {
                            Ok(core::mem::take(&mut replies[k]))
                        } else {
                            Err(RequestError {
                                index: base + k,
                                errno,
                                request: chunk[k].to_string(),
                            })
                        }
                    }
                    NLMSG_NOOP | NLMSG_OVERRUN => continue,
                    _ => {
                        let fam = match &chunk[k] {
                            Request::DumpDests(key) => Some(key.family()),
                            _ => None,
                        };
                        replies[k].push(decode_reply(msg.payload, fam)?);
                        continue;
                    }
                };
                if results[k].is_none() {
                    results[k] = Some(finished);
                    open -= 1;
                }
                // With AckMode::ErrorsOnly, the final ack proves every earlier request succeeded.
                if self.ack_mode == AckMode::ErrorsOnly && k + 1 == chunk.len() {
                    for (j, slot) in results.iter_mut().enumerate() {
                        if slot.is_none() {
                            *slot = Some(Ok(core::mem::take(&mut replies[j])));
                            open -= 1;
                        }
                    }
                }
            }
        }
        outcomes.extend(results.into_iter().map(|r| r.unwrap_or(Ok(Vec::new()))));
        Ok(())
    }

    fn one(&mut self, req: Request) -> Result<Vec<Reply>, ExecError> {
        let mut out = self.execute(core::slice::from_ref(&req))?;
        match out.pop() {
            Some(r) => Ok(r?),
            None => Ok(Vec::new()),
        }
    }

    /// Reads every service.
    pub fn services(&mut self) -> Result<Vec<ServiceEntry>, ExecError> {
        Ok(self
            .one(Request::DumpServices)?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Service(s) => Some(s),
                _ => None,
            })
            .collect())
    }

    /// Reads the destinations of one service.
    pub fn dests(&mut self, key: &ServiceKey) -> Result<Vec<DestEntry>, ExecError> {
        Ok(self
            .one(Request::DumpDests(*key))?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Dest(d) => Some(d),
                _ => None,
            })
            .collect())
    }

    /// Reads the whole table: every service with its destinations.
    pub fn table(&mut self) -> Result<Vec<(ServiceEntry, Vec<DestEntry>)>, ExecError> {
        let services = self.services()?;
        let mut out = Vec::with_capacity(services.len());
        for s in services {
            let dests = self.dests(&s.service.key)?;
            out.push((s, dests));
        }
        Ok(out)
    }

    /// Reads version and connection table size.
    pub fn info(&mut self) -> Result<Option<Info>, ExecError> {
        Ok(self
            .one(Request::GetInfo)?
            .into_iter()
            .find_map(|r| match r {
                Reply::Info(i) => Some(i),
                _ => None,
            }))
    }

    /// Reads the connection timeouts.
    pub fn timeouts(&mut self) -> Result<Option<Timeouts>, ExecError> {
        Ok(self
            .one(Request::GetConfig)?
            .into_iter()
            .find_map(|r| match r {
                Reply::Config(t) => Some(t),
                _ => None,
            }))
    }

    /// Reads the running sync daemons.
    pub fn daemons(&mut self) -> Result<Vec<SyncDaemon>, ExecError> {
        Ok(self
            .one(Request::DumpDaemons)?
            .into_iter()
            .filter_map(|r| match r {
                Reply::Daemon(d) => Some(d),
                _ => None,
            })
            .collect())
    }
}

const ENOENT: i32 = 2;
const ENOBUFS: i32 = 105;
