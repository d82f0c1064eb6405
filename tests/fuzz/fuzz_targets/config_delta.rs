//! Config delta decode + apply (what a partner's push may carry) on arbitrary bytes: never
//! panics, never allocates unboundedly, whatever the rebuilt config is.
#![no_main]

use tandem_config::delta::{self, DELTA_MAGIC};
use tandem_config::model::{RealServer, VirtualService};
use tandem_config::Config;

fn base() -> Config {
    let mut config = Config::default();
    for port in [80u16, 443, 8080] {
        let mut service = VirtualService {
            port,
            ..VirtualService::default()
        };
        let _ = service.real_servers.push(RealServer::default());
        let _ = config.virtual_services.push(service);
    }
    config
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let base = base();
    let mut framed = DELTA_MAGIC.to_vec();
    framed.extend_from_slice(data);
    for bytes in [data, framed.as_slice()] {
        if let Ok(decoded) = delta::decode(bytes) {
            if let Ok(config) = decoded.apply(&base) {
                let _ = tandem_config::validate(&config);
                // May be refused (a rebuilt config larger than a slot), never a panic.
                let _ = tandem_config::blob::encode(&config, Default::default(), None);
            }
        }
    }
});
