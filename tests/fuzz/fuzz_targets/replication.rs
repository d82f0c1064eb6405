//! Config replication messages arrive from the peer cable (STATE and FIRMWARE datagrams) and
//! over TCP from the partner's push channel (CHALLENGE, PUSH, BUNDLE, RESULT frames), where a miscabled box or an
//! attacker can send anything. The decoder must refuse any bytes without panicking, and what it
//! accepts must re-encode to the same bytes (so nothing in an accepted message goes unread); a
//! structurally valid message signed again under the pair key must authenticate and decode to
//! the same message; a frame's length prefix is bounded before a reader would allocate for it.
#![no_main]

use tandem_wire::replication::{
    decode, frame_len, frame_len_of, KeyPolicy, Kind, Message, ReplicationPacket,
    FRAME_PREFIX_LEN, HEADER_LEN, MAX_FRAME_LEN,
};

const KEY: [u8; 32] = [0x5a; 32];
const KINDS: [Kind; 6] = [
    Kind::State,
    Kind::Challenge,
    Kind::Push,
    Kind::Result,
    Kind::Firmware,
    Kind::Bundle,
];

fn emit(message: &Message<'_>, key: Option<&[u8; 32]>) -> Vec<u8> {
    let mut out = vec![0u8; message.buffer_len(key.is_some())];
    let len = message.emit(&mut out, key).expect("accepted messages re-encode");
    assert_eq!(len, out.len());
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let pair_id = data
        .get(8..16)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);

    // Structure alone: the view and the parser agree; a valid message re-signed under the key
    // authenticates and decodes to the same message.
    let packet = ReplicationPacket::new_unchecked(data);
    let parsed = Message::parse(&packet);
    assert_eq!(ReplicationPacket::new_checked(data).is_ok(), parsed.is_ok());
    if let Ok(message) = parsed {
        let signed = emit(&message, Some(&KEY));
        assert_eq!(
            decode(&signed, pair_id, KeyPolicy::Require(&KEY)),
            Ok(message)
        );
        assert!(decode(&signed, pair_id, KeyPolicy::Unkeyed).is_err());
    }

    for policy in [KeyPolicy::Unkeyed, KeyPolicy::Require(&KEY)] {
        let Ok(message) = decode(data, pair_id, policy) else {
            continue;
        };
        assert_eq!(message.pair_id(), pair_id);
        let key = match policy {
            KeyPolicy::Unkeyed => None,
            KeyPolicy::Require(key) => Some(key),
        };
        assert_eq!(emit(&message, key), data);
        // The same message as a TCP frame: its prefix passes the readers' bounds.
        let mut frame = vec![0u8; message.framed_len(key.is_some())];
        let len = message.emit_frame(&mut frame, key).expect("accepted messages frame");
        assert_eq!(len, FRAME_PREFIX_LEN + data.len());
        let prefix: [u8; FRAME_PREFIX_LEN] = frame[..FRAME_PREFIX_LEN]
            .try_into()
            .expect("four bytes");
        assert_eq!(frame_len(prefix), Ok(data.len()));
        assert_eq!(frame_len_of(prefix, message.kind()), Ok(data.len()));
        assert_eq!(&frame[FRAME_PREFIX_LEN..], data);
    }

    // Arbitrary frame prefixes: refused or within the bounds, never a panic.
    if let Some(prefix) = data
        .get(..FRAME_PREFIX_LEN)
        .and_then(|b| <[u8; FRAME_PREFIX_LEN]>::try_from(b).ok())
    {
        if let Ok(len) = frame_len(prefix) {
            assert!((HEADER_LEN..=MAX_FRAME_LEN).contains(&len));
        }
        for kind in KINDS {
            if let Ok(len) = frame_len_of(prefix, kind) {
                assert!((kind.min_len()..=kind.max_len()).contains(&len));
                assert_eq!(frame_len(prefix), Ok(len));
            }
        }
        // The input read as one frame: whatever the prefix admits decodes without panicking.
        if let Some(body) = frame_len(prefix)
            .ok()
            .and_then(|len| data.get(FRAME_PREFIX_LEN..FRAME_PREFIX_LEN + len))
        {
            let _ = decode(body, pair_id, KeyPolicy::Unkeyed);
        }
    }
});
