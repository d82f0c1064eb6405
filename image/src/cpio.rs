//! The `newc` cpio format the kernel unpacks into its initial rootfs.
//!
//! Written by hand because the builder must be byte-for-byte reproducible: every header field
//! (inode, mtime, owner) is chosen here, never taken from the build machine.

use std::io::Write;

const MAGIC: &[u8; 6] = b"070701";
const TRAILER: &str = "TRAILER!!!";

/// File type and permission bits for entries.
pub const MODE_DIR: u32 = 0o040_755;
pub const MODE_FILE: u32 = 0o100_644;
pub const MODE_EXEC: u32 = 0o100_755;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path without a leading slash.
    pub path: String,
    pub mode: u32,
    pub data: Vec<u8>,
}

/// Why an archive could not be written or read.
#[derive(Debug)]
pub enum CpioError {
    Io(std::io::Error),
    /// A member is larger than newc's 32-bit size field.
    TooLarge {
        path: String,
    },
    /// The bytes are not a newc archive (bad magic, truncated, bad hex field).
    Malformed {
        offset: usize,
        what: &'static str,
    },
}

impl core::fmt::Display for CpioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CpioError::Io(e) => write!(f, "{e}"),
            CpioError::TooLarge { path } => write!(f, "{path} is over 4 GiB, too large for newc"),
            CpioError::Malformed { offset, what } => {
                write!(f, "not a newc cpio archive at byte {offset}: {what}")
            }
        }
    }
}

impl std::error::Error for CpioError {}

impl From<std::io::Error> for CpioError {
    fn from(e: std::io::Error) -> Self {
        CpioError::Io(e)
    }
}

fn padding(length: usize) -> usize {
    (4 - length % 4) % 4
}

fn header(
    out: &mut impl Write,
    inode: u32,
    mode: u32,
    nlink: u32,
    size: u32,
    name: &str,
) -> Result<(), CpioError> {
    let name_size = u32::try_from(name.len() + 1).map_err(|_| CpioError::TooLarge {
        path: name.to_owned(),
    })?;
    out.write_all(MAGIC)?;
    // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
    for field in [inode, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, name_size, 0] {
        write!(out, "{field:08x}")?;
    }
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    out.write_all(&[0; 3][..padding(110 + name.len() + 1)])?;
    Ok(())
}

/// Writes `entries` in the given order, then the trailer. Inodes are numbered from 1 in order.
pub fn write_archive(out: &mut impl Write, entries: &[Entry]) -> Result<(), CpioError> {
    let mut inode = 0u32;
    for entry in entries {
        inode += 1;
        let size = u32::try_from(entry.data.len()).map_err(|_| CpioError::TooLarge {
            path: entry.path.clone(),
        })?;
        let nlink = if entry.mode & 0o170_000 == 0o040_000 {
            2
        } else {
            1
        };
        header(out, inode, entry.mode, nlink, size, &entry.path)?;
        out.write_all(&entry.data)?;
        out.write_all(&[0; 3][..padding(entry.data.len())])?;
    }
    header(out, 0, 0, 1, 0, TRAILER)?;
    Ok(())
}

fn hex_field(bytes: &[u8], offset: usize, index: usize) -> Result<u32, CpioError> {
    let start = offset + 6 + index * 8;
    let text = bytes
        .get(start..start + 8)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or(CpioError::Malformed {
            offset,
            what: "truncated header",
        })?;
    u32::from_str_radix(text, 16).map_err(|_| CpioError::Malformed {
        offset,
        what: "bad hex field",
    })
}

/// Reads every member of a newc archive (used by tests and `tandem-image list`).
pub fn read_archive(bytes: &[u8]) -> Result<Vec<Entry>, CpioError> {
    let mut entries = Vec::new();
    let mut offset = 0usize;
    loop {
        if bytes.get(offset..offset + 6) != Some(&MAGIC[..]) {
            return Err(CpioError::Malformed {
                offset,
                what: "bad magic",
            });
        }
        let mode = hex_field(bytes, offset, 1)?;
        let size = usize::try_from(hex_field(bytes, offset, 6)?).unwrap_or(usize::MAX);
        let name_size = usize::try_from(hex_field(bytes, offset, 11)?).unwrap_or(usize::MAX);
        let name_start = offset + 110;
        let name = bytes
            .get(name_start..name_start.saturating_add(name_size).saturating_sub(1))
            .ok_or(CpioError::Malformed {
                offset,
                what: "truncated name",
            })?;
        let name = String::from_utf8_lossy(name).into_owned();
        let data_start = name_start + name_size + padding(110 + name_size);
        if name == TRAILER {
            return Ok(entries);
        }
        let data = bytes
            .get(data_start..data_start.saturating_add(size))
            .ok_or(CpioError::Malformed {
                offset,
                what: "truncated data",
            })?;
        entries.push(Entry {
            path: name,
            mode,
            data: data.to_vec(),
        });
        offset = data_start + size + padding(size);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_round_trip_with_alignment() {
        let entries = vec![
            Entry {
                path: "etc".into(),
                mode: MODE_DIR,
                data: vec![],
            },
            Entry {
                path: "etc/x".into(),
                mode: MODE_FILE,
                data: b"abcde".to_vec(),
            },
            Entry {
                path: "init".into(),
                mode: MODE_EXEC,
                data: vec![7; 13],
            },
        ];
        let mut bytes = Vec::new();
        write_archive(&mut bytes, &entries).unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(read_archive(&bytes).unwrap(), entries);
    }

    #[test]
    fn the_header_layout_matches_the_kernel_format() {
        let mut bytes = Vec::new();
        write_archive(
            &mut bytes,
            &[Entry {
                path: "a".into(),
                mode: MODE_FILE,
                data: vec![1],
            }],
        )
        .unwrap();
        let head = std::str::from_utf8(&bytes[..110]).unwrap();
        let expected = [
            "070701", // magic
            "00000001", "000081a4", "00000000", "00000000", // ino, mode 0100644, uid, gid
            "00000001", "00000000", "00000001", // nlink, mtime, filesize
            "00000000", "00000000", "00000000", "00000000", // dev and rdev major/minor
            "00000002", "00000000", // namesize ("a\0"), check
        ]
        .concat();
        assert_eq!(head, expected);
        // Name "a\0" follows at 110, padded to 112; one data byte, padded to 116.
        assert_eq!(&bytes[110..112], b"a\0");
        assert_eq!(bytes[112], 1);
        assert_eq!(&bytes[116..122], b"070701");
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        assert!(read_archive(b"").is_err());
        assert!(read_archive(b"070701zzzz").is_err());
        let mut bytes = Vec::new();
        write_archive(
            &mut bytes,
            &[Entry {
                path: "a".into(),
                mode: MODE_FILE,
                data: vec![1; 9],
            }],
        )
        .unwrap();
        for cut in 0..bytes.len() {
            let _ = read_archive(&bytes[..cut]);
        }
    }
}
