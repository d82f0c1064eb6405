//! The disk a box boots from, as both sides must agree on it: the image builder writes it
//! (`target/image/<board>/tandem-<board>.img`) and the appliance finds its config partition and
//! reads or renames its firmware slots on it.
//!
//! Layout (GPT): partition 1 is the EFI system partition (FAT) with systemd-boot and the
//! firmware slots as unified kernel images in `/EFI/Linux/` (systemd-boot's type #2 entries);
//! partition 2 holds the two config slots and the identity region, byte for byte what a
//! board's whole config disk holds, found by its GPT name [`CONFIG_PARTITION_NAME`].
//!
//! A slot's file name is `tandem-<generation>-<slot>[+LEFT[-DONE]].efi`. systemd-boot (252)
//! orders type #2 entries without an os-release `ID`/`IMAGE_ID` (the slots carry none) by their
//! file name, highest version first, with entries whose tries are used up (`+0-N`) last, and
//! boots the first. So the slot installed last (highest generation) is tried first while it
//! has tries left; when they run out the previous slot, whose file nobody touched, boots again.
//! Blessing a slot is renaming it to drop the counter.

use core::fmt;

/// GPT partition name of the config partition (the daemon finds it by this name in sysfs).
pub const CONFIG_PARTITION_NAME: &str = "tandem-config";
/// Size of the config partition: two 2 MiB config slots and the identity region, with room to
/// grow.
pub const CONFIG_PARTITION_BYTES: u64 = 8 << 20;
/// GPT partition type of the config partition: Tandem's own, so no OS mounts it.
pub const CONFIG_PARTITION_TYPE: &str = "d80b668e-e92f-4d3a-9b81-c71e2ab7f176";
/// GPT partition name of the EFI system partition.
pub const ESP_PARTITION_NAME: &str = "tandem-esp";
/// Where the slots live on the EFI system partition.
pub const SLOT_DIR: &str = "EFI/Linux";
/// The kernel command-line word naming the slot a unified kernel image belongs to.
pub const SLOT_CMDLINE_KEY: &str = "tandem.slot";
/// Boot tries a newly installed slot gets before systemd-boot falls back.
pub const BOOT_TRIES: u32 = 3;

/// One of the two firmware slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    /// The slot's letter, as in file names and on the kernel command line.
    pub const fn letter(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }

    /// The slot from its letter (`a` or `b`).
    pub fn from_letter(text: &str) -> Option<Slot> {
        match text {
            "a" => Some(Slot::A),
            "b" => Some(Slot::B),
            _ => None,
        }
    }

    /// The other slot: where an upgrade is written.
    pub const fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letter())
    }
}

/// The boot counter of a slot file still on trial: `+LEFT-DONE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tries {
    pub left: u32,
    pub done: u32,
}

/// A slot's unified kernel image file name on the EFI system partition, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotFile {
    /// Install generation: the higher one is booted first.
    pub generation: u64,
    pub slot: Slot,
    /// The boot counter; `None`: blessed (or never counted).
    pub tries: Option<Tries>,
}

impl SlotFile {
    /// A blessed slot file.
    pub const fn blessed(generation: u64, slot: Slot) -> SlotFile {
        SlotFile {
            generation,
            slot,
            tries: None,
        }
    }

    /// A newly installed slot file with [`BOOT_TRIES`] tries.
    pub const fn on_trial(generation: u64, slot: Slot) -> SlotFile {
        SlotFile {
            generation,
            slot,
            tries: Some(Tries {
                left: BOOT_TRIES,
                done: 0,
            }),
        }
    }

    /// The same slot with its counter dropped: what blessing renames it to.
    pub const fn bless(self) -> SlotFile {
        SlotFile::blessed(self.generation, self.slot)
    }

    /// Whether systemd-boot will no longer pick it (its tries are used up).
    pub fn is_bad(&self) -> bool {
        self.tries.is_some_and(|t| t.left == 0)
    }

    /// Parses `tandem-<generation>-<slot>[+LEFT[-DONE]].efi` (case-insensitive, as FAT is);
    /// `None` for any other name.
    pub fn parse(name: &str) -> Option<SlotFile> {
        let lower = name.to_ascii_lowercase();
        let stem = lower.strip_prefix("tandem-")?.strip_suffix(".efi")?;
        let (base, counter) = match stem.split_once('+') {
            Some((base, counter)) => (base, Some(counter)),
            None => (stem, None),
        };
        let (generation, slot) = base.split_once('-')?;
        if generation.is_empty() || !generation.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let generation = generation.parse().ok()?;
        let slot = Slot::from_letter(slot)?;
        let tries = match counter {
            None => None,
            Some(counter) => {
                let (left, done) = counter.split_once('-').unwrap_or((counter, "0"));
                let number = |text: &str| -> Option<u32> {
                    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    text.parse().ok()
                };
                Some(Tries {
                    left: number(left)?,
                    done: number(done)?,
                })
            }
        };
        Some(SlotFile {
            generation,
            slot,
            tries,
        })
    }

    /// The file name (`tandem-1-a.efi`, `tandem-2-b+3-0.efi`).
    pub fn file_name(&self) -> String {
        let counter = match self.tries {
            None => String::new(),
            Some(Tries { left, done: 0 }) => format!("+{left}"),
            Some(Tries { left, done }) => format!("+{left}-{done}"),
        };
        format!(
            "tandem-{}-{}{counter}.efi",
            self.generation,
            self.slot.letter()
        )
    }
}

impl fmt::Display for SlotFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file_name())
    }
}

/// Which slot file systemd-boot boots first among `files` (any names; others are ignored):
/// the highest generation whose tries are not used up, else the highest generation. The
/// daemon uses it to say what the next boot will be; systemd-boot decides the same way.
pub fn boot_order(files: &[SlotFile]) -> Vec<SlotFile> {
    let mut order = files.to_vec();
    order.sort_by(|a, b| {
        a.is_bad()
            .cmp(&b.is_bad())
            .then(b.generation.cmp(&a.generation))
            .then(b.slot.cmp(&a.slot))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_file_names_round_trip() {
        for (name, file) in [
            ("tandem-1-a.efi", SlotFile::blessed(1, Slot::A)),
            ("tandem-2-b+3.efi", SlotFile::on_trial(2, Slot::B)),
            (
                "tandem-12-a+0-3.efi",
                SlotFile {
                    generation: 12,
                    slot: Slot::A,
                    tries: Some(Tries { left: 0, done: 3 }),
                },
            ),
        ] {
            assert_eq!(SlotFile::parse(name), Some(file), "{name}");
            assert_eq!(file.file_name(), name);
        }
        // systemd-boot writes `+2-1` and FAT may hand back upper case.
        assert_eq!(
            SlotFile::parse("TANDEM-2-B+2-1.EFI"),
            Some(SlotFile {
                generation: 2,
                slot: Slot::B,
                tries: Some(Tries { left: 2, done: 1 })
            })
        );
        assert_eq!(
            SlotFile::on_trial(2, Slot::B).bless().file_name(),
            "tandem-2-b.efi"
        );
    }

    #[test]
    fn other_names_are_not_slots() {
        for name in [
            "tandem-a.efi",
            "tandem-1-c.efi",
            "tandem--a.efi",
            "tandem-1-a",
            "tandem-1-a+.efi",
            "tandem-1-a+x.efi",
            "tandem-1-a+1-.efi",
            "tandem-99999999999999999999-a.efi",
            "linux.efi",
            "tandem-+1-a.efi",
        ] {
            assert_eq!(SlotFile::parse(name), None, "{name}");
        }
    }

    #[test]
    fn the_newest_slot_with_tries_left_boots_first_and_a_used_up_one_last() {
        let old = SlotFile::blessed(1, Slot::A);
        let trial = SlotFile::on_trial(2, Slot::B);
        assert_eq!(boot_order(&[old, trial])[0], trial);
        let used_up = SlotFile {
            tries: Some(Tries { left: 0, done: 3 }),
            ..trial
        };
        assert_eq!(boot_order(&[used_up, old]), vec![old, used_up]);
        assert_eq!(Slot::A.other(), Slot::B);
    }
}
