//! Hostile blobs: every truncation, every single-bit flip, replays, and the golden vectors.

// Test code: panics are the failure report, and the figures are small known values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_lossless
)]

use tandem_config::blob::{self, BlobError, BlobMeta, MacKey, MacPolicy, CRC_BYTES, MAC_BYTES};
use tandem_config::import;
use tandem_config::Config;

fn director1() -> Config {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/director1.keepalived.conf"
    ))
    .unwrap();
    import::import(&text, None).unwrap().config
}

#[test]
fn every_truncation_is_refused_with_a_named_error() {
    let blob = blob::encode(
        &director1(),
        BlobMeta {
            generation: 9,
            ..BlobMeta::default()
        },
        None,
    )
    .unwrap();
    for len in 0..blob.len() {
        match blob::decode(&blob[..len], MacPolicy::Inspect, None) {
            Err(BlobError::TooShort { .. } | BlobError::LengthMismatch { .. }) => {}
            other => panic!("truncated to {len}: {other:?}"),
        }
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert!(matches!(
        blob::decode(&longer, MacPolicy::Inspect, None),
        Err(BlobError::LengthMismatch { .. })
    ));
}

#[test]
fn every_single_bit_flip_is_refused() {
    let key = MacKey([0x5a; 32]);
    let meta = BlobMeta {
        generation: 3,
        parent_generation: 2,
        pair_id: 77,
    };
    for keyed in [false, true] {
        let blob = blob::encode(&director1(), meta, keyed.then_some(&key)).unwrap();
        let policy = if keyed {
            MacPolicy::Require(&key)
        } else {
            MacPolicy::Unkeyed
        };
        assert!(blob::decode(&blob, policy, None).is_ok());
        let mac_at = blob.len() - MAC_BYTES;
        for bit in 0..blob.len() * 8 {
            let mut damaged = blob.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let result = blob::decode(&damaged, policy, None);
            let byte = bit / 8;
            if !keyed && byte >= mac_at {
                // An unkeyed blob's MAC slot is not covered by anything; a flip there is harmless
                // and must not make decoding fail or change the config.
                assert_eq!(result.map(|d| d.config), Ok(director1()));
                continue;
            }
            match result {
                Err(
                    BlobError::BadMagic
                    | BlobError::PayloadTooLarge { .. }
                    | BlobError::LengthMismatch { .. }
                    | BlobError::CrcMismatch { .. }
                    | BlobError::MacMismatch,
                ) => {}
                other => panic!("bit {bit} (byte {byte}, keyed {keyed}) flipped: {other:?}"),
            }
        }
    }
}

#[test]
fn replayed_older_generation_is_refused() {
    let old = blob::encode(
        &director1(),
        BlobMeta {
            generation: 4,
            ..BlobMeta::default()
        },
        None,
    )
    .unwrap();
    let new = blob::encode(
        &director1(),
        BlobMeta {
            generation: 5,
            parent_generation: 4,
            ..BlobMeta::default()
        },
        None,
    )
    .unwrap();
    let accepted = blob::decode(&new, MacPolicy::Unkeyed, Some(4)).unwrap();
    let last = accepted.header.generation;
    assert_eq!(
        blob::decode(&old, MacPolicy::Unkeyed, Some(last)),
        Err(BlobError::StaleGeneration {
            generation: 4,
            last_accepted: 5
        })
    );
    let message = blob::decode(&old, MacPolicy::Unkeyed, Some(last))
        .unwrap_err()
        .to_string();
    assert!(message.contains("older than generation 5"), "{message}");
}

#[test]
fn crc_covers_header_and_payload_exactly() {
    let blob = blob::encode(&Config::default(), BlobMeta::default(), None).unwrap();
    let crc_at = blob.len() - MAC_BYTES - CRC_BYTES;
    assert_eq!(
        blob::check_integrity(&blob).unwrap().payload_len as usize,
        crc_at - blob::HEADER_BYTES
    );
}

/// Golden vectors freeze format version 1: these bytes must decode to these configs forever.
/// Regenerate only when adding a new format version (`TANDEM_WRITE_GOLDEN=1`), never to change v1.
#[test]
fn golden_vectors_of_format_1_decode() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
    let key = MacKey(*b"tandem-golden-vector-key-32bytes");
    let cases: [(&str, Config, Option<&MacKey>, BlobMeta); 3] = [
        (
            "v1_empty.blob",
            Config::default(),
            None,
            BlobMeta::default(),
        ),
        (
            "v1_director1.blob",
            director1(),
            None,
            BlobMeta {
                generation: 12,
                parent_generation: 11,
                pair_id: 0,
            },
        ),
        (
            "v1_director1_keyed.blob",
            director1(),
            Some(&key),
            BlobMeta {
                generation: 13,
                parent_generation: 12,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
    ];
    for (name, config, key, meta) in cases {
        let path = format!("{dir}/{name}");
        if std::env::var_os("TANDEM_WRITE_GOLDEN").is_some() {
            std::fs::write(&path, blob::encode(&config, meta, key).unwrap()).unwrap();
            std::fs::write(
                format!("{path}.toml"),
                tandem_config::text::to_toml(&config).unwrap(),
            )
            .unwrap();
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let policy = match key {
            Some(key) => MacPolicy::Require(key),
            None => MacPolicy::Unkeyed,
        };
        // The expected model is the frozen text next to the blob, not today's importer.
        let text = std::fs::read_to_string(format!("{path}.toml")).unwrap();
        let expected = tandem_config::text::from_toml(&text).unwrap();
        let decoded = blob::decode(&bytes, policy, None).unwrap();
        assert_eq!(decoded.header.format_version, 1);
        assert_eq!(decoded.header.generation, meta.generation);
        assert_eq!(decoded.header.pair_id, meta.pair_id);
        assert_eq!(decoded.config, expected, "{name}");
        let config = expected;
        // The encoder still writes exactly the frozen bytes for format 1.
        assert_eq!(
            blob::encode(&config, meta, key).unwrap(),
            bytes,
            "{name} encoding changed"
        );
    }
}
