//! iptables import (iptables-save or `iptables` command lines) on arbitrary text: never panics,
//! keeps its notes bounded, and what it accepts validates and survives the TOML form.
#![no_main]

use tandem_config::import::{self, iptables::MAX_NOTES, Format};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = import::detect(text);
    if let Ok(imported) = import::import(text, Some(Format::Iptables)) {
        // The listed notes plus one summary per kind.
        assert!(imported.notes.len() <= MAX_NOTES + 3);
        let _ = tandem_config::validate(&imported.config);
        let toml =
            tandem_config::text::to_toml(&imported.config).expect("an import writes as TOML");
        let again = tandem_config::text::from_toml(&toml).expect("and reads back");
        assert_eq!(again, imported.config);
    }
});
