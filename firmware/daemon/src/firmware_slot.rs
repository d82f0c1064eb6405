//! Which firmware this box runs and how it was booted: the version of this binary, and the
//! slot (`a` or `b`) of the flashable disk image whose unified kernel image systemd-boot
//! started (the image puts `tandem.slot=` into each slot's command line), or a direct kernel
//! boot (the lab's `qemu -kernel`), or a host run (`tandem run`). `status` shows it; the
//! upgrade path (writing the other slot, boot counting, blessing) starts from it.

use tandem_board::boot_disk::{Slot, SLOT_CMDLINE_KEY};

/// How the running firmware was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootPath {
    /// From slot `slot` of the disk image, by UEFI firmware (`/sys/firmware/efi` exists) or not.
    Slot { slot: Slot, uefi: bool },
    /// `tandem.slot=` names no slot.
    BadSlot { value: String },
    /// Booted by UEFI, but not from a Tandem slot (no `tandem.slot=`).
    UefiWithoutSlot,
    /// A kernel started directly (qemu `-kernel`, the lab), no slot.
    DirectKernel,
    /// Not PID 1 of the appliance (`tandem run` on a host).
    NotAppliance,
}

/// The running firmware: version and boot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareBoot {
    pub version: &'static str,
    pub path: BootPath,
}

impl FirmwareBoot {
    /// A daemon that is not the appliance's PID 1.
    pub fn not_appliance() -> FirmwareBoot {
        FirmwareBoot {
            version: env!("CARGO_PKG_VERSION"),
            path: BootPath::NotAppliance,
        }
    }

    /// The appliance's boot, from its kernel command line and whether it was booted by UEFI.
    pub fn detect(cmdline: &str, uefi: bool) -> FirmwareBoot {
        let path = match crate::init::cmdline_value(cmdline, SLOT_CMDLINE_KEY) {
            Some(value) => match Slot::from_letter(value) {
                Some(slot) => BootPath::Slot { slot, uefi },
                None => BootPath::BadSlot {
                    value: value.to_owned(),
                },
            },
            None if uefi => BootPath::UefiWithoutSlot,
            None => BootPath::DirectKernel,
        };
        FirmwareBoot {
            version: env!("CARGO_PKG_VERSION"),
            path,
        }
    }

    /// The `status` line.
    pub fn status_line(&self) -> String {
        let how = match &self.path {
            BootPath::Slot { slot, uefi: true } => format!("slot {slot} (uefi)"),
            BootPath::Slot { slot, uefi: false } => {
                format!("slot {slot} (not booted by UEFI: no slot can be switched)")
            }
            BootPath::BadSlot { value } => format!(
                "slot ?: {SLOT_CMDLINE_KEY}={value} on the kernel command line names no slot \
                 (a or b); rebuild the disk image with make image"
            ),
            BootPath::UefiWithoutSlot => format!(
                "slot -: booted by UEFI without {SLOT_CMDLINE_KEY}= (not from a Tandem disk \
                 image slot)"
            ),
            BootPath::DirectKernel => "slot -: direct kernel boot".to_owned(),
            BootPath::NotAppliance => "slot -: not the appliance (tandem run)".to_owned(),
        };
        format!("status: firmware {} {how}\n", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_comes_from_the_command_line_and_uefi_from_the_firmware() {
        let uefi = FirmwareBoot::detect("console=ttyS0,115200 quiet panic=-1 tandem.slot=a", true);
        assert_eq!(
            uefi.path,
            BootPath::Slot {
                slot: Slot::A,
                uefi: true
            }
        );
        assert_eq!(
            uefi.status_line(),
            format!(
                "status: firmware {} slot a (uefi)\n",
                env!("CARGO_PKG_VERSION")
            )
        );
        let direct = FirmwareBoot::detect("console=ttyS0 tandem.name=box-a", false);
        assert_eq!(direct.path, BootPath::DirectKernel);
        assert!(direct
            .status_line()
            .ends_with("slot -: direct kernel boot\n"));
        let b = FirmwareBoot::detect("tandem.slot=b", false);
        assert_eq!(
            b.path,
            BootPath::Slot {
                slot: Slot::B,
                uefi: false
            }
        );
        let bad = FirmwareBoot::detect("tandem.slot=c", true);
        assert!(bad.status_line().contains("names no slot"));
        assert_eq!(
            FirmwareBoot::detect("quiet", true).path,
            BootPath::UefiWithoutSlot
        );
        assert!(FirmwareBoot::not_appliance()
            .status_line()
            .contains("tandem run"));
    }
}
