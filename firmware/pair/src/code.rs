//! The pairing code `pair start` shows and `pair join CODE` takes: 8 decimal digits, shown as
//! `1234-5678`. It is the SPAKE2 password, so it must be uniform: it is drawn from random bytes
//! the caller supplies by rejection sampling (a plain `u32 % 10^8` would favour low codes).

use core::fmt;
use core::str::FromStr;

use rand_core::CryptoRng;

/// Number of digits in a code.
pub const CODE_DIGITS: usize = 8;
/// Number of distinct codes (10^8).
const CODE_SPACE: u32 = 100_000_000;
/// The largest multiple of [`CODE_SPACE`] that fits in a `u32`: 4-byte draws at or above it are
/// rejected so that `draw % CODE_SPACE` is uniform.
const ACCEPT_BELOW: u32 = (u32::MAX / CODE_SPACE) * CODE_SPACE;

/// An 8-digit pairing code (`00000000` to `99999999`).
///
/// `Debug` hides the digits (a code in a log would let anyone on the cable pair); `Display`
/// shows them as `1234-5678` for the console.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PairingCode {
    value: u32,
}

impl PairingCode {
    /// The code with this numeric value, if it has at most 8 digits.
    pub const fn new(value: u32) -> Option<PairingCode> {
        if value < CODE_SPACE {
            Some(PairingCode { value })
        } else {
            None
        }
    }

    /// The numeric value (`1234-5678` is 12345678).
    pub const fn value(self) -> u32 {
        self.value
    }

    /// A uniform code from random bytes: takes them 4 at a time (big-endian) and keeps the first
    /// draw below the largest multiple of 10^8 (each draw is kept with probability 0.977, so 32
    /// bytes fail with probability below 10^-13). `None` when every draw was rejected: call
    /// again with fresh bytes.
    pub fn from_random_bytes(bytes: &[u8]) -> Option<PairingCode> {
        bytes
            .chunks_exact(4)
            .filter_map(|chunk| <[u8; 4]>::try_from(chunk).ok())
            .map(u32::from_be_bytes)
            .find(|draw| *draw < ACCEPT_BELOW)
            .and_then(|draw| PairingCode::new(draw % CODE_SPACE))
    }

    /// A uniform code from a cryptographic RNG (draws until one is accepted).
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> PairingCode {
        loop {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            if let Some(code) = PairingCode::from_random_bytes(&bytes) {
                return code;
            }
        }
    }

    /// The 8 ASCII digits, the SPAKE2 password.
    pub(crate) fn digits(self) -> [u8; CODE_DIGITS] {
        let mut out = [b'0'; CODE_DIGITS];
        let mut rest = self.value;
        for slot in out.iter_mut().rev() {
            // `rest % 10` is a single digit: the cast cannot truncate.
            *slot = b'0' + u8::try_from(rest % 10).unwrap_or(0);
            rest /= 10;
        }
        out
    }
}

impl fmt::Display for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:04}", self.value / 10_000, self.value % 10_000)
    }
}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingCode(****-****)")
    }
}

/// A text that is not a pairing code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseCodeError;

impl fmt::Display for ParseCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a pairing code is the 8 digits `pair start` shows on the other console, written \
             1234-5678, 1234 5678 or 12345678",
        )
    }
}

impl FromStr for PairingCode {
    type Err = ParseCodeError;

    /// Accepts `12345678`, `1234 5678` and `1234-5678` (surrounding blanks ignored).
    fn from_str(text: &str) -> Result<PairingCode, ParseCodeError> {
        let text = text.trim().as_bytes();
        let (head, tail) = match text {
            [a, b, c, d, b' ' | b'-', tail @ ..] => ([*a, *b, *c, *d], tail),
            [a, b, c, d, tail @ ..] => ([*a, *b, *c, *d], tail),
            _ => return Err(ParseCodeError),
        };
        if tail.len() != 4 {
            return Err(ParseCodeError);
        }
        let mut value: u32 = 0;
        for byte in head.iter().chain(tail) {
            if !byte.is_ascii_digit() {
                return Err(ParseCodeError);
            }
            value = value * 10 + u32::from(byte - b'0');
        }
        PairingCode::new(value).ok_or(ParseCodeError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parses_the_three_forms_and_shows_one() {
        for text in ["12345678", "1234 5678", "1234-5678", "  1234-5678\n"] {
            let code: PairingCode = text.parse().unwrap();
            assert_eq!(code.value(), 12_345_678);
            assert_eq!(code.to_string(), "1234-5678");
        }
        let zero: PairingCode = "0000-0042".parse().unwrap();
        assert_eq!(zero.value(), 42);
        assert_eq!(zero.to_string(), "0000-0042");
        assert_eq!(&zero.digits(), b"00000042");
        assert_eq!(alloc::format!("{zero:?}"), "PairingCode(****-****)");
    }

    #[test]
    fn refuses_everything_else_naming_the_form() {
        for text in [
            "",
            "1234567",
            "123456789",
            "1234--5678",
            "12345-678",
            "1234_5678",
            "1234-567a",
            "+1234567",
            "１２３４５６７８",
            "1234 -5678",
        ] {
            assert_eq!(text.parse::<PairingCode>(), Err(ParseCodeError), "{text:?}");
        }
        let message = ParseCodeError.to_string();
        assert!(message.contains("1234-5678") && message.contains("8 digits"));
        assert_eq!(PairingCode::new(100_000_000), None);
    }

    #[test]
    fn random_bytes_are_rejection_sampled() {
        // The first draw is too large (4_294_967_295 >= 4_200_000_000): the second is used.
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        bytes[4..].copy_from_slice(&4_199_999_999u32.to_be_bytes());
        assert_eq!(
            PairingCode::from_random_bytes(&bytes).map(PairingCode::value),
            Some(99_999_999)
        );
        assert_eq!(
            PairingCode::from_random_bytes(&u32::MAX.to_be_bytes()),
            None
        );
        assert_eq!(PairingCode::from_random_bytes(&[1, 2, 3]), None);
        assert_eq!(ACCEPT_BELOW, 4_200_000_000);
    }

    #[test]
    fn generated_codes_cover_the_space_evenly() {
        let mut rng = crate::crypto::SeedRng::new([7; 32]);
        let mut first_digit = [0u32; 10];
        for _ in 0..5000 {
            let code = PairingCode::generate(&mut rng);
            first_digit[usize::from(code.digits()[0] - b'0')] += 1;
        }
        // 500 expected per leading digit; a biased `% 10^8` would still pass this, the
        // rejection is checked above: this catches a generator stuck on few values.
        assert!(
            first_digit.iter().all(|n| (380..=620).contains(n)),
            "{first_digit:?}"
        );
    }
}
