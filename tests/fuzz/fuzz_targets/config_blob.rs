//! Config blob decode + validate on arbitrary bytes: never panics, never allocates unboundedly.
#![no_main]

use tandem_config::blob::{self, MacKey, MacPolicy};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let key = MacKey([7; 32]);
    for policy in [MacPolicy::Inspect, MacPolicy::Unkeyed, MacPolicy::Require(&key)] {
        if let Ok(decoded) = blob::decode(data, policy, Some(1)) {
            let _ = tandem_config::validate(&decoded.config);
        }
    }
    // Also reach the payload decoder: frame the input as a payload with a correct header and CRC.
    if data.len() <= blob::MAX_PAYLOAD_BYTES {
        let mut framed = blob::encode(&tandem_config::Config::default(), blob::BlobMeta::default(), None)
            .unwrap_or_default();
        if framed.len() >= blob::OVERHEAD_BYTES {
            framed.truncate(blob::HEADER_BYTES);
            let Ok(len) = u32::try_from(data.len()) else { return };
            framed[32..36].copy_from_slice(&len.to_le_bytes());
            framed.extend_from_slice(data);
            let crc = tandem_config::crc32::crc32(&framed);
            framed.extend_from_slice(&crc.to_le_bytes());
            framed.extend_from_slice(&[0; blob::MAC_BYTES]);
            if let Ok(decoded) = blob::decode(&framed, MacPolicy::Unkeyed, None) {
                let _ = tandem_config::validate(&decoded.config);
                let again = blob::encode(&decoded.config, blob::BlobMeta::default(), None);
                assert!(again.is_ok(), "a decoded config must encode again");
            }
        }
    }
});
