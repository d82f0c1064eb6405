#![no_main]
// Kernel replies are parsed defensively: any byte string decodes to a value or an error.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = tandem_ipvs::decode_datagram(data);
    let _ = tandem_ipvs::decode_service(data);
    let _ = tandem_ipvs::decode_dest(data, Some(tandem_ipvs::Family::Inet6));
    let _ = tandem_ipvs::decode_stats(data, false);
});
