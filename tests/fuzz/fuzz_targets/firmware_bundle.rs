//! Firmware bundles come from a USB stick or an HTTP server on the management network: the
//! container and manifest parsers must refuse or read any bytes without panicking, a parsed
//! bundle's parts must tile its bytes exactly (header, manifest, image, signature), and a
//! manifest that parses must render to text that parses to itself.
#![no_main]

use tandem_board::bundle::{Bundle, Manifest, HEADER_BYTES, SIGNATURE_BYTES};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::parse(data) {
        assert_eq!(
            HEADER_BYTES + bundle.manifest.len() + bundle.image.len() + SIGNATURE_BYTES,
            data.len()
        );
        assert_eq!(bundle.signed.len() + SIGNATURE_BYTES, data.len());
        let _ = Manifest::parse(bundle.manifest);
    }
    if let Ok(manifest) = Manifest::parse(data) {
        let text = manifest.render();
        assert_eq!(Manifest::parse(text.as_bytes()).as_ref(), Ok(&manifest));
    }
});
