//! The signed firmware bundle, as both sides must agree on it: `make image` writes it next to
//! the disk image (`target/image/<board>/tandem-<board>-<version>.bundle`) and the appliance
//! checks it (`firmware fetch URL`, `firmware install FILE`) before a byte of it is written to
//! the inactive slot. This module is the container and the manifest, pure and without crypto:
//! the signature is checked by the appliance (ring's Ed25519, already linked for TLS) and made
//! by the image builder.
//!
//! Container (integers big-endian):
//!
//! ```text
//!  0   8  magic "TANDEMFW"
//!  8   2  container version (1)
//! 10   2  zero
//! 12   4  manifest length M (at most MAX_MANIFEST)
//! 16   8  image length I (at most MAX_IMAGE)
//! 24   8  key id: the first 8 bytes of SHA-256 of the signing public key (for the message only)
//! 32   M  manifest (UTF-8 lines `key value`, see [`Manifest`])
//! 32+M I  the slot image (a unified kernel image)
//! ..  64  Ed25519 signature over every byte before it
//! ```
//!
//! Nothing may follow the signature. The public key the box trusts is in its initramfs at
//! [`PUBLIC_KEY_PATH`] as one line `tandem-firmware-key ed25519 <64 hex digits>`.

use core::fmt;

/// The container's first bytes.
pub const MAGIC: &[u8; 8] = b"TANDEMFW";
/// The container version this firmware writes and reads.
pub const CONTAINER_VERSION: u16 = 1;
/// Header bytes before the manifest.
pub const HEADER_BYTES: usize = 32;
/// Ed25519 signature bytes at the end.
pub const SIGNATURE_BYTES: usize = 64;
/// Longest manifest accepted.
pub const MAX_MANIFEST: usize = 4096;
/// Largest slot image accepted (the ESP holds two slots of ~12 MB and one being written).
pub const MAX_IMAGE: u64 = 24 << 20;
/// Largest bundle file accepted (`firmware fetch` stops reading there).
pub const MAX_BUNDLE: u64 = MAX_IMAGE + (HEADER_BYTES + MAX_MANIFEST + SIGNATURE_BYTES) as u64;
/// Where the box's trusted public key is in the initramfs.
pub const PUBLIC_KEY_PATH: &str = "etc/tandem/firmware-key.pub";
/// The public key file's line prefix.
pub const PUBLIC_KEY_PREFIX: &str = "tandem-firmware-key ed25519 ";

/// Why bytes are not a bundle (before the signature is checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// Shorter than the header plus a signature.
    TooShort {
        bytes: usize,
    },
    /// Not a bundle at all.
    BadMagic,
    UnknownContainer {
        version: u16,
    },
    ManifestTooLong {
        bytes: u64,
    },
    ImageTooLarge {
        bytes: u64,
    },
    /// The file ends before the lengths in its header say.
    Truncated {
        bytes: usize,
        expected: u64,
    },
    /// Bytes after the signature.
    Trailing {
        bytes: usize,
        expected: u64,
    },
}

impl BundleError {
    /// A short name for counters (`truncated`, `not_a_bundle`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            BundleError::TooShort { .. } | BundleError::Truncated { .. } => "truncated",
            BundleError::BadMagic | BundleError::UnknownContainer { .. } => "not_a_bundle",
            BundleError::ManifestTooLong { .. }
            | BundleError::ImageTooLarge { .. }
            | BundleError::Trailing { .. } => "bad_container",
        }
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::TooShort { bytes } => write!(
                f,
                "truncated: {bytes} bytes is shorter than a bundle's header and signature; fetch \
                 or copy the whole file again"
            ),
            BundleError::BadMagic => f.write_str(
                "not a Tandem firmware bundle (no TANDEMFW header); give the .bundle file make \
                 image wrote, not the disk image or a UKI",
            ),
            BundleError::UnknownContainer { version } => write!(
                f,
                "bundle container version {version} is unknown to this firmware (it reads \
                 {CONTAINER_VERSION}); use a bundle of a firmware that this one can install"
            ),
            BundleError::ManifestTooLong { bytes } => write!(
                f,
                "the header's manifest length {bytes} is over {MAX_MANIFEST} bytes: not a bundle \
                 make image wrote"
            ),
            BundleError::ImageTooLarge { bytes } => write!(
                f,
                "the header's image length {bytes} is over {MAX_IMAGE} bytes: not a bundle make \
                 image wrote"
            ),
            BundleError::Truncated { bytes, expected } => write!(
                f,
                "truncated: {bytes} bytes, the header says {expected}; fetch or copy the whole \
                 file again"
            ),
            BundleError::Trailing { bytes, expected } => write!(
                f,
                "{bytes} bytes, the header says {expected}: bytes after the signature; fetch or \
                 copy the file again"
            ),
        }
    }
}

/// A bundle's parts, borrowed from its bytes; the signature is not checked yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bundle<'a> {
    pub key_id: [u8; 8],
    pub manifest: &'a [u8],
    pub image: &'a [u8],
    /// Every byte the signature covers.
    pub signed: &'a [u8],
    pub signature: &'a [u8; SIGNATURE_BYTES],
}

impl<'a> Bundle<'a> {
    /// Splits `bytes` into header, manifest, image and signature; never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        if bytes.len() < HEADER_BYTES + SIGNATURE_BYTES {
            if bytes.len() >= MAGIC.len() && !bytes.starts_with(MAGIC) {
                return Err(BundleError::BadMagic);
            }
            return Err(BundleError::TooShort { bytes: bytes.len() });
        }
        if !bytes.starts_with(MAGIC) {
            return Err(BundleError::BadMagic);
        }
        let u16_at = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let version = u16_at(8);
        if version != CONTAINER_VERSION || u16_at(10) != 0 {
            return Err(BundleError::UnknownContainer { version });
        }
        let mut manifest_len = [0u8; 4];
        manifest_len.copy_from_slice(&bytes[12..16]);
        let manifest_len = u64::from(u32::from_be_bytes(manifest_len));
        let mut image_len = [0u8; 8];
        image_len.copy_from_slice(&bytes[16..24]);
        let image_len = u64::from_be_bytes(image_len);
        let mut key_id = [0u8; 8];
        key_id.copy_from_slice(&bytes[24..32]);
        if manifest_len > MAX_MANIFEST as u64 {
            return Err(BundleError::ManifestTooLong {
                bytes: manifest_len,
            });
        }
        if image_len > MAX_IMAGE {
            return Err(BundleError::ImageTooLarge { bytes: image_len });
        }
        let expected = (HEADER_BYTES + SIGNATURE_BYTES) as u64 + manifest_len + image_len;
        let have = bytes.len() as u64;
        if have < expected {
            return Err(BundleError::Truncated {
                bytes: bytes.len(),
                expected,
            });
        }
        if have > expected {
            return Err(BundleError::Trailing {
                bytes: bytes.len(),
                expected,
            });
        }
        // Both lengths are bounded above, so these fit in usize.
        let manifest_end = HEADER_BYTES + usize::try_from(manifest_len).unwrap_or(usize::MAX);
        let signed_end = bytes.len() - SIGNATURE_BYTES;
        let (signed, signature) = bytes.split_at(signed_end);
        let signature: &[u8; SIGNATURE_BYTES] = signature
            .try_into()
            .map_err(|_| BundleError::TooShort { bytes: bytes.len() })?;
        let manifest = signed
            .get(HEADER_BYTES..manifest_end)
            .ok_or(BundleError::TooShort { bytes: bytes.len() })?;
        let image = signed
            .get(manifest_end..)
            .ok_or(BundleError::TooShort { bytes: bytes.len() })?;
        Ok(Bundle {
            key_id,
            manifest,
            image,
            signed,
            signature,
        })
    }
}

/// The bytes to sign for `manifest` and `image` with the key whose id is `key_id`: a
/// bundle is these followed by the 64-byte signature.
pub fn unsigned_bundle(key_id: [u8; 8], manifest: &[u8], image: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_BYTES + manifest.len() + image.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&CONTAINER_VERSION.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(
        &u32::try_from(manifest.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&(image.len() as u64).to_be_bytes());
    out.extend_from_slice(&key_id);
    out.extend_from_slice(manifest);
    out.extend_from_slice(image);
    out
}

/// A firmware version `MAJOR.MINOR.PATCH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u32, pub u32, pub u32);

impl Version {
    /// Parses `1.2.3` (digits only, three parts).
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.split('.');
        let mut number = || -> Option<u32> {
            let part = parts.next()?;
            if part.is_empty() || part.len() > 9 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let version = Version(number()?, number()?, number()?);
        parts.next().is_none().then_some(version)
    }

    /// The version of a running firmware's version string: `MAJOR.MINOR.PATCH`, maybe
    /// followed by a `-pre` or `+build` suffix (which does not order: `0.2.0-rc1` counts as
    /// `0.2.0`). The one place firmware versions are compared: this and `Ord`.
    pub fn of_firmware(text: &str) -> Option<Version> {
        let core = text.split(['-', '+']).next().unwrap_or(text);
        Version::parse(core)
    }

    /// Whether a partner at `self` satisfies a bundle's `min-partner` of `min` (0.0.0: any).
    pub fn satisfies(self, min: Version) -> bool {
        self >= min
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What a bundle says of the firmware in it. As text, one `key value` per line, every key
/// once, no other key:
///
/// ```text
/// board qemu-x86
/// version 0.2.0
/// config-formats 1-5        (config blob formats it reads; it writes the newest)
/// channel 2                 (the replication channel version it speaks to its partner)
/// min-partner 0.1.0         (the oldest partner firmware it works with)
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub board: String,
    pub version: Version,
    pub config_oldest: u16,
    pub config_newest: u16,
    pub channel: u8,
    pub min_partner: Version,
}

/// Why a manifest does not parse: the line (1-based) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "manifest: {}", self.problem)
        } else {
            write!(f, "manifest line {}: {}", self.line, self.problem)
        }
    }
}

const KEYS: [&str; 5] = [
    "board",
    "version",
    "config-formats",
    "channel",
    "min-partner",
];

impl Manifest {
    /// Parses the manifest text; every key must be there once.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let at = |line: usize, problem: String| ManifestError { line, problem };
        let text = core::str::from_utf8(bytes).map_err(|_| {
            at(
                0,
                "not UTF-8 text; rebuild the bundle with make image".into(),
            )
        })?;
        let mut values: [Option<(usize, &str)>; 5] = [None; 5];
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(' ')
                .ok_or_else(|| at(number, format!("`{line}` is not `key value`")))?;
            let slot = KEYS.iter().position(|k| *k == key).ok_or_else(|| {
                at(
                    number,
                    format!("unknown key `{key}` (known: {})", KEYS.join(", ")),
                )
            })?;
            if values[slot].is_some() {
                return Err(at(number, format!("`{key}` given twice")));
            }
            values[slot] = Some((number, value.trim()));
        }
        let get = |slot: usize| {
            values[slot].ok_or_else(|| {
                at(
                    0,
                    format!(
                        "`{}` is missing; rebuild the bundle with make image",
                        KEYS[slot]
                    ),
                )
            })
        };
        let (line, board) = get(0)?;
        if board.is_empty()
            || board.len() > 64
            || !board
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(at(line, format!("board `{board}` is not a board name")));
        }
        let version = |slot: usize| -> Result<Version, ManifestError> {
            let (line, text) = get(slot)?;
            Version::parse(text).ok_or_else(|| {
                at(
                    line,
                    format!("{} `{text}` is not MAJOR.MINOR.PATCH", KEYS[slot]),
                )
            })
        };
        let firmware_version = version(1)?;
        let min_partner = version(4)?;
        let (line, formats) = get(2)?;
        let number = |text: &str| -> Option<u16> {
            if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            text.parse().ok()
        };
        let (oldest, newest) = formats
            .split_once('-')
            .and_then(|(a, b)| Some((number(a)?, number(b)?)))
            .filter(|(a, b)| *a >= 1 && a <= b)
            .ok_or_else(|| {
                at(
                    line,
                    format!("config-formats `{formats}` is not OLDEST-NEWEST (e.g. 1-5)"),
                )
            })?;
        let (line, channel_text) = get(3)?;
        let channel = number(channel_text)
            .and_then(|c| u8::try_from(c).ok())
            .ok_or_else(|| at(line, format!("channel `{channel_text}` is not 0..255")))?;
        Ok(Manifest {
            board: board.to_owned(),
            version: firmware_version,
            config_oldest: oldest,
            config_newest: newest,
            channel,
            min_partner,
        })
    }

    /// The manifest as text (what [`Manifest::parse`] reads).
    pub fn render(&self) -> String {
        format!(
            "board {}\nversion {}\nconfig-formats {}-{}\nchannel {}\nmin-partner {}\n",
            self.board,
            self.version,
            self.config_oldest,
            self.config_newest,
            self.channel,
            self.min_partner
        )
    }

    /// Whether the firmware in the bundle reads config blob format `format`.
    pub fn reads_config(&self, format: u16) -> bool {
        (self.config_oldest..=self.config_newest).contains(&format)
    }
}

/// The bundle file name `make image` writes for a board and version.
pub fn bundle_file_name(board: &str, version: &str) -> String {
    format!("tandem-{board}-{version}.bundle")
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The 32-byte public key from the key file's text (`tandem-firmware-key ed25519 <hex>`).
pub fn parse_public_key(text: &str) -> Option<[u8; 32]> {
    let hex_text = text.trim().strip_prefix(PUBLIC_KEY_PREFIX)?.trim();
    if hex_text.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex_text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            board: "qemu-x86".into(),
            version: Version(0, 2, 0),
            config_oldest: 1,
            config_newest: 5,
            channel: 2,
            min_partner: Version(0, 1, 0),
        }
    }

    fn bundle(image: &[u8]) -> Vec<u8> {
        let mut bytes = unsigned_bundle([7; 8], manifest().render().as_bytes(), image);
        bytes.extend_from_slice(&[9; SIGNATURE_BYTES]);
        bytes
    }

    #[test]
    fn a_bundle_splits_into_its_parts() {
        let bytes = bundle(b"MZ the image");
        let parsed = Bundle::parse(&bytes).unwrap();
        assert_eq!(parsed.key_id, [7; 8]);
        assert_eq!(parsed.image, b"MZ the image");
        assert_eq!(parsed.signature, &[9; SIGNATURE_BYTES]);
        assert_eq!(parsed.signed.len(), bytes.len() - SIGNATURE_BYTES);
        assert_eq!(Manifest::parse(parsed.manifest).unwrap(), manifest());
    }

    #[test]
    fn every_cut_of_a_bundle_is_refused_as_truncated() {
        let bytes = bundle(b"MZ the image");
        for cut in 0..bytes.len() {
            let error = Bundle::parse(&bytes[..cut]).unwrap_err();
            assert_eq!(error.reason(), "truncated", "cut at {cut}: {error}");
            assert!(error.to_string().starts_with("truncated"), "{error}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Bundle::parse(&longer),
            Err(BundleError::Trailing { .. })
        ));
    }

    #[test]
    fn headers_that_lie_are_refused() {
        let mut bytes = bundle(b"image");
        bytes[0] = b'X';
        assert_eq!(Bundle::parse(&bytes), Err(BundleError::BadMagic));
        let mut bytes = bundle(b"image");
        bytes[9] = 2;
        assert_eq!(
            Bundle::parse(&bytes),
            Err(BundleError::UnknownContainer { version: 2 })
        );
        let mut bytes = bundle(b"image");
        bytes[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            Bundle::parse(&bytes),
            Err(BundleError::ImageTooLarge { bytes: u64::MAX })
        );
        let mut bytes = bundle(b"image");
        bytes[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Bundle::parse(&bytes),
            Err(BundleError::ManifestTooLong { .. })
        ));
        assert_eq!(
            Bundle::parse(b"\x7fELF and more bytes"),
            Err(BundleError::BadMagic)
        );
    }

    #[test]
    fn manifests_parse_strictly_and_name_the_line() {
        let text = manifest().render();
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), manifest());
        let cases = [
            (text.replace("board qemu-x86", "board qemu x86"), "line 1"),
            (text.replace("version 0.2.0", "version 0.2"), "line 2"),
            (text.replace("1-5", "5-1"), "config-formats"),
            (text.replace("channel 2", "channel 300"), "channel"),
            (
                text.replace("min-partner 0.1.0\n", ""),
                "`min-partner` is missing",
            ),
            (format!("{text}board other\n"), "given twice"),
            (format!("{text}colour blue\n"), "unknown key `colour`"),
            (format!("{text}lonely\n"), "not `key value`"),
        ];
        for (bad, why) in cases {
            let error = Manifest::parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(error.contains(why), "{error} lacks {why}");
        }
        assert!(Manifest::parse(&[0xff, 0xfe]).is_err());
        assert!(manifest().reads_config(5) && !manifest().reads_config(6));
    }

    #[test]
    fn public_keys_round_trip_through_their_text() {
        let key = [0xab; 32];
        let text = format!("{PUBLIC_KEY_PREFIX}{}\n", hex(&key));
        assert_eq!(parse_public_key(&text), Some(key));
        assert_eq!(parse_public_key("tandem-firmware-key ed25519 abcd"), None);
        assert_eq!(parse_public_key(&text.replace("ab", "zz")), None);
        assert_eq!(Version::parse("1.2.3"), Some(Version(1, 2, 3)));
        assert_eq!(Version::parse("1.2.3.4"), None);
        assert_eq!(Version::parse("1..3"), None);
    }

    #[test]
    fn firmware_versions_compare_by_their_numbers() {
        assert_eq!(Version::of_firmware("0.2.0"), Some(Version(0, 2, 0)));
        assert_eq!(Version::of_firmware("0.2.0-rc1"), Some(Version(0, 2, 0)));
        assert_eq!(
            Version::of_firmware("1.10.3+g12ab"),
            Some(Version(1, 10, 3))
        );
        assert_eq!(Version::of_firmware("dev"), None);
        assert_eq!(Version::of_firmware("0.2"), None);
        assert!(Version(0, 10, 0) > Version(0, 9, 9));
        assert!(Version(0, 2, 0).satisfies(Version(0, 2, 0)));
        assert!(Version(0, 1, 9).satisfies(Version(0, 0, 0)));
        assert!(!Version(0, 1, 9).satisfies(Version(0, 2, 0)));
    }
}
