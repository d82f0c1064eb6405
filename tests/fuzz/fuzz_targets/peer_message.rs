//! The peer-cable connection list decoder must refuse any bytes without panicking, and what it
//! accepts must re-encode to the same bytes (so nothing in an accepted datagram goes unread).
#![no_main]

use tandem_wire::peer_message::{decode, KeyPolicy, PeerMessageRepr, TcpConnection};

const KEY: [u8; 32] = [0x5a; 32];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let pair_id = data
        .get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);
    for policy in [KeyPolicy::Unkeyed, KeyPolicy::Require(&KEY)] {
        let Ok(message) = decode(data, policy, pair_id) else {
            continue;
        };
        let entries: Vec<TcpConnection> = message.entries().collect();
        assert_eq!(entries.len(), usize::from(message.entry_count()));
        let repr = PeerMessageRepr {
            pair_id: message.pair_id(),
            epoch: message.epoch(),
            sequence: message.sequence(),
            chunk_index: message.chunk_index(),
            chunk_count: message.chunk_count(),
            entries: &entries,
        };
        let key = match policy {
            KeyPolicy::Unkeyed => None,
            KeyPolicy::Require(key) => Some(key),
        };
        let mut buffer = [0u8; tandem_wire::peer_message::MAX_DATAGRAM_LEN];
        let len = repr
            .emit(&mut buffer, key)
            .expect("accepted datagrams re-encode");
        assert_eq!(&buffer[..len], data);
    }
});
