//! Sending whole Ethernet frames (gratuitous ARP, unsolicited NA) out of one interface through
//! an `AF_PACKET` socket.

use std::io;

use socket2::{Domain, SockAddr, Socket, Type};

/// An `AF_PACKET` socket that sends frames out of one interface and receives nothing (it is
/// bound to protocol 0, so the kernel queues no incoming traffic on it).
#[derive(Debug)]
pub struct FrameSender {
    socket: Socket,
    address: SockAddr,
}

fn link_address(ifindex: u32) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::other("ifindex out of range"))?;
    // SAFETY: the closure writes a `sockaddr_ll` into storage that socket2 zeroed and sized for
    // any socket address (`sockaddr_storage` is larger than `sockaddr_ll`), sets the family to
    // AF_PACKET to match, and reports exactly `size_of::<sockaddr_ll>()` as the length.
    #[allow(unsafe_code)]
    let ((), address) = unsafe {
        SockAddr::try_init(|storage, length| {
            let ll = storage.cast::<libc::sockaddr_ll>();
            (*ll).sll_family = u16::try_from(libc::AF_PACKET).unwrap_or_default();
            (*ll).sll_ifindex = ifindex;
            (*ll).sll_halen = 6;
            *length = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or_default();
            Ok(())
        })
    }?;
    Ok(address)
}

impl FrameSender {
    /// Opens a sender on the interface with index `ifindex`.
    pub fn open(ifindex: u32) -> io::Result<FrameSender> {
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)?;
        let address = link_address(ifindex)?;
        Ok(FrameSender { socket, address })
    }

    /// Sends one complete Ethernet frame (destination MAC first).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sent = self.socket.send_to(frame, &self.address)?;
        if sent == frame.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "short frame send: {sent} of {} bytes",
                frame.len()
            )))
        }
    }
}
