//! keepalived.conf import on arbitrary text: never panics; what it accepts validates and exports.
#![no_main]

use tandem_config::import::{self, Format};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(imported) = import::import(text, Some(Format::Keepalived)) {
        let _ = tandem_config::validate(&imported.config);
        let exported = tandem_config::export::keepalived::export(&imported.config);
        let _ = import::import(&exported.text, Some(Format::Keepalived));
    }
});
