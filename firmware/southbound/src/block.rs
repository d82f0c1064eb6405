//! Block devices from sysfs (`/sys/class/block`): the partition the kernel found with a given
//! GPT name, and whether a whole disk is partitioned. The appliance keeps its config slots in
//! the partition named `tandem-config` of its boot disk, or on a board's whole raw config disk,
//! which it must never take when the disk holds a partition table (slot 0 would overwrite it).

use std::fs;
use std::io::Read;
use std::path::Path;

/// One entry of `/sys/class/block`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    /// Kernel name (`vda`, `vda2`); the device node is `/dev/<name>`.
    pub name: String,
    /// The GPT partition name (`PARTNAME=` of its uevent), for a named partition.
    pub partition_name: Option<String>,
    /// Whether it is a partition (it has a `partition` attribute).
    pub is_partition: bool,
}

fn uevent_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
}

/// Every block device, sorted by name.
pub fn block_entries(sys_class_block: &Path) -> std::io::Result<Vec<BlockEntry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(sys_class_block)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        let uevent = fs::read_to_string(dir.join("uevent")).unwrap_or_default();
        entries.push(BlockEntry {
            name,
            partition_name: uevent_value(&uevent, "PARTNAME"),
            is_partition: dir.join("partition").exists(),
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

/// The kernel name of the first partition whose GPT name is `name`.
pub fn partition_named(sys_class_block: &Path, name: &str) -> Option<String> {
    block_entries(sys_class_block)
        .ok()?
        .into_iter()
        .find(|e| e.is_partition && e.partition_name.as_deref() == Some(name))
        .map(|e| e.name)
}

/// Whether the kernel found partitions on the whole disk `disk` (kernel name, `vda`): its
/// sysfs directory holds partition subdirectories.
pub fn has_partitions(sys_class_block: &Path, disk: &str) -> bool {
    let Ok(children) = fs::read_dir(sys_class_block.join(disk)) else {
        return false;
    };
    children
        .flatten()
        .any(|child| child.path().join("partition").exists())
}

/// Whether `device` starts with a GPT header ("EFI PART" at LBA 1 of 512- or 4096-byte
/// sectors), whether or not the kernel parsed it.
pub fn holds_gpt(device: &Path) -> std::io::Result<bool> {
    let mut head = vec![0u8; 4096 + 8];
    let mut file = fs::File::open(device)?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    let at = |offset: usize| head.get(offset..offset + 8) == Some(&b"EFI PART"[..]);
    Ok((filled >= 520 && at(512)) || (filled >= 4104 && at(4096)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn fake_sysfs(root: &Path) {
        for (name, uevent, partition) in [
            (
                "vda",
                "MAJOR=253\nMINOR=0\nDEVNAME=vda\nDEVTYPE=disk\n",
                false,
            ),
            (
                "vda1",
                "DEVNAME=vda1\nDEVTYPE=partition\nPARTN=1\nPARTNAME=tandem-esp\n",
                true,
            ),
            (
                "vda2",
                "DEVNAME=vda2\nDEVTYPE=partition\nPARTN=2\nPARTNAME=tandem-config\n",
                true,
            ),
            ("vdb", "DEVNAME=vdb\nDEVTYPE=disk\n", false),
        ] {
            let dir = root.join(name);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("uevent"), uevent).unwrap();
            if partition {
                fs::write(dir.join("partition"), "1\n").unwrap();
                // sysfs nests a disk's partitions in its directory too.
                let nested = root.join("vda").join(name);
                fs::create_dir_all(&nested).unwrap();
                fs::write(nested.join("partition"), "1\n").unwrap();
            }
        }
    }

    #[test]
    fn partitions_are_found_by_gpt_name_and_disks_know_they_are_partitioned() {
        let root = std::env::temp_dir().join(format!("tandem-block-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fake_sysfs(&root);
        assert_eq!(
            partition_named(&root, "tandem-config"),
            Some("vda2".to_owned())
        );
        assert_eq!(partition_named(&root, "nothing-such"), None);
        assert!(has_partitions(&root, "vda"));
        assert!(!has_partitions(&root, "vdb"));
        assert!(!has_partitions(&root, "sdz"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_gpt_header_is_recognised_at_either_sector_size() {
        let dir = std::env::temp_dir().join(format!("tandem-gpt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut disk = vec![0u8; 8192];
        let path = dir.join("disk");
        fs::write(&path, &disk).unwrap();
        assert!(!holds_gpt(&path).unwrap());
        disk[512..520].copy_from_slice(b"EFI PART");
        fs::write(&path, &disk).unwrap();
        assert!(holds_gpt(&path).unwrap());
        let mut disk4k = vec![0u8; 8192];
        disk4k[4096..4104].copy_from_slice(b"EFI PART");
        fs::write(&path, &disk4k).unwrap();
        assert!(holds_gpt(&path).unwrap());
        fs::write(&path, b"short").unwrap();
        assert!(!holds_gpt(&path).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
