//! NTP replies come off the management network, where anyone can send anything: the view must
//! refuse or read any bytes without panicking, what it reads must re-emit to the same 48-byte
//! header, a kiss code is read at stratum 0 only, and every timestamp converts to Unix time and
//! back to itself (the era is what the conversion reads from the top bit).
#![no_main]

use std::time::Duration;

use tandem_wire::ntp::{NtpPacket, NtpRepr, Timestamp, HEADER_LEN};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let unchecked = NtpPacket::new_unchecked(data);
    let _ = (unchecked.leap(), unchecked.mode(), unchecked.transmit_timestamp());
    let Ok(packet) = NtpPacket::new_checked(data) else {
        assert!(data.len() < HEADER_LEN);
        return;
    };
    let repr = NtpRepr::parse(&packet);
    let mut out = [0u8; HEADER_LEN];
    assert_eq!(repr.emit(&mut out), Ok(HEADER_LEN));
    assert_eq!(&out[..], &data[..HEADER_LEN]);
    assert_eq!(repr.kiss_code().is_some(), repr.stratum == 0);
    assert_eq!(repr.kiss_code(), packet.kiss_code());
    let _ = repr.root_delay.nanos() + repr.root_dispersion.nanos();
    for stamp in [
        repr.reference_timestamp,
        repr.origin_timestamp,
        repr.receive_timestamp,
        repr.transmit_timestamp,
    ] {
        let nanos = stamp.to_unix_nanos();
        if nanos >= 0 {
            let back = Timestamp::from_unix(Duration::from_nanos(
                u64::try_from(nanos).expect("era 1 ends in 2104"),
            ));
            assert_eq!(back.seconds(), stamp.seconds());
            // Nanoseconds lose a little of the 2^-32 s fraction, never a whole nanosecond.
            assert!(stamp.fraction() - back.fraction() <= 5, "{stamp:?} {back:?}");
        }
    }
});
