//! Lab topology: the namespace, its segments, the boxes and the client namespaces.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tandem_board::{NicMatch, NicRole};

use crate::console::Console;
use crate::qmp::Qmp;
use crate::shell::{ip, ip_in};

/// Where labs keep their sockets, pid files and console logs.
pub const LAB_RUN_DIR: &str = "/tmp/tandem-lab";
/// Prefix of every lab namespace name: `tlab-<pid>-<n>`.
const PREFIX: &str = "tlab-";
/// The first UDP port of the direct links' ends, on the loopback of the lab's own namespace
/// (so two labs never collide).
const FIRST_CABLE_PORT: u16 = 40000;

/// An error of the harness, with the step that failed.
pub type LabError = String;

/// A lab network segment: one bridge in the lab namespace, and the box NIC on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    Public,
    Private,
    Peer,
    Mgmt,
    /// A box's second public NIC (role `public2`, PCI slot 7): on the public bridge too, as
    /// two cables of a bonded public side to one switch (or two stacked ones) are. Its QMP id
    /// is `nic-public2`, so each public port's cable can be pulled on its own.
    Public2,
}

impl Segment {
    /// Every segment; a NIC's MAC ends in its position here plus one.
    pub const ALL: [Segment; 5] = [
        Segment::Public,
        Segment::Private,
        Segment::Peer,
        Segment::Mgmt,
        Segment::Public2,
    ];

    pub fn name(self) -> &'static str {
        self.role().interface_name()
    }

    /// The board role of a box NIC on this segment.
    pub fn role(self) -> NicRole {
        match self {
            Segment::Public => NicRole::Public,
            Segment::Private => NicRole::Private,
            Segment::Peer => NicRole::Peer,
            Segment::Mgmt => NicRole::Mgmt,
            Segment::Public2 => NicRole::Public2,
        }
    }

    /// The bridge of the segment's LAN: both public NICs of a box are on the public one.
    fn bridge(self) -> String {
        match self {
            Segment::Public2 => Segment::Public.bridge(),
            _ => format!("br-{}", self.name()),
        }
    }

    /// The PCI slot the `qemu-lab` board expects this segment's NIC in.
    fn pci_slot(self) -> Result<String, LabError> {
        let spec = tandem_board::profiles::QEMU_LAB
            .nic(self.role())
            .ok_or_else(|| format!("qemu-lab board has no {} port", self.name()))?;
        match spec.matcher {
            NicMatch::PciPath(path) => {
                // "0000:00:03.0" -> "0x3"
                let slot = path.get(8..10).ok_or("bad PCI path in board profile")?;
                let slot = u8::from_str_radix(slot, 16).map_err(|e| e.to_string())?;
                Ok(format!("{slot:#x}"))
            }
            NicMatch::Mac(_) => Err("qemu-lab NICs are matched by PCI path".into()),
        }
    }
}

/// What box to boot.
#[derive(Debug, Clone)]
pub struct BoxSpec {
    pub name: String,
    pub segments: Vec<Segment>,
    pub memory_mb: u32,
    pub board: &'static str,
    /// Extra kernel command line words.
    pub append: String,
    /// Config (TOML text) written into the box's config disk before it boots; `None` leaves
    /// the disk erased, so the box runs unconfigured.
    pub config: Option<String>,
    /// Which image the box boots.
    pub image: ImageKind,
    /// The console UI on the serial console (the product's default); false keeps the line
    /// commands (`tandem.console=lines`) that most lab tests type.
    pub console_ui: bool,
    /// NICs cabled straight to another box's NIC on the same segment instead of to the
    /// segment's bridge: (segment, peer box name). See [`BoxSpec::with_direct_link`].
    pub direct_links: Vec<(Segment, String)>,
    /// Boot the flashable disk image under OVMF ([`crate::uefi`]) instead of `-kernel`.
    pub uefi: bool,
    /// The disk image to boot when `uefi` (None: the one `make image` built).
    pub disk_image: Option<PathBuf>,
    /// The RTC's start (qemu `-rtc base=`, e.g. `2016-01-01T00:00:00`): the box boots with its
    /// clock there (the kernel sets the clock from the RTC). None: the host's time.
    pub rtc_base: Option<String>,
}

/// The images a lab box can boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// `target/image/<board>` (`make image`): what ships.
    Production,
    /// `target/image/<board>-lab` (`make lab-image`): the production image plus lab-only
    /// programs such as `/lab/lab-httpd`.
    Lab,
    /// `target/image/<board>-bench` (`make bench-image`): the lab image plus Debian's
    /// `ipvsadm` and its shared libraries, the baseline the IPVS benchmark compares against.
    Bench,
}

impl BoxSpec {
    pub fn new(name: &str, segments: &[Segment]) -> BoxSpec {
        BoxSpec {
            name: name.to_owned(),
            segments: segments.to_vec(),
            memory_mb: 256,
            board: "qemu-lab",
            append: String::new(),
            config: None,
            image: ImageKind::Production,
            console_ui: false,
            direct_links: Vec::new(),
            uefi: false,
            disk_image: None,
            rtc_base: None,
        }
    }

    /// The same box booting the production disk image (`make image`) under OVMF, as a box
    /// boots from its disk: systemd-boot starts slot a's unified kernel image, whose command
    /// line is the image's own (the console UI, no `tandem.name`: `append` and `console_ui`
    /// do not apply); the config goes into the image's config partition. A reboot stays in
    /// qemu (no `-no-reboot`), so boot counting can be watched over several boots.
    pub fn with_uefi_disk(mut self) -> BoxSpec {
        self.uefi = true;
        self.console_ui = true;
        self
    }

    /// [`BoxSpec::with_uefi_disk`] booting `image` (a copy the test changed, e.g. with a slot b
    /// on trial) instead of the one `make image` built.
    pub fn with_uefi_disk_image(self, image: &Path) -> BoxSpec {
        let mut spec = self.with_uefi_disk();
        spec.disk_image = Some(image.to_owned());
        spec
    }

    /// The same box with its NIC on `segment` cabled straight to box `peer`'s NIC on the same
    /// segment (the NIC is added if `segments` lacks it), as two routers' ports joined by a
    /// crossover cable: no bridge in between, so every frame passes, the slow-protocols
    /// multicast `01:80:c2:00:00:02` of LACP included, which a Linux bridge never forwards.
    /// `peer`'s spec must name this box the same way. The cable is a pair of qemu UDP socket
    /// netdevs on the lab namespace's loopback (ports the lab hands out per box and segment,
    /// kept across [`Lab::restart_box`]), so the NIC keeps its QMP id `nic-<segment>`:
    /// [`QemuBox::set_cable`] pulls this end only (the peer's NIC keeps its carrier and
    /// receives nothing, as behind a media converter); pull both ends for a dead cable. A
    /// client added on that segment sits on its bridge, which this NIC is not on, and
    /// [`Lab::block_port`] refuses the NIC (no bridge port).
    pub fn with_direct_link(mut self, segment: Segment, peer: &str) -> BoxSpec {
        if !self.segments.contains(&segment) {
            self.segments.push(segment);
        }
        self.direct_links.retain(|(s, _)| *s != segment);
        self.direct_links.push((segment, peer.to_owned()));
        self
    }

    /// The peer box of this box's direct link on `segment`, if it has one.
    fn direct_peer(&self, segment: Segment) -> Option<&str> {
        self.direct_links
            .iter()
            .find(|(s, _)| *s == segment)
            .map(|(_, peer)| peer.as_str())
    }

    /// The same box with the console UI on its serial console, as it ships.
    pub fn with_console_ui(mut self) -> BoxSpec {
        self.console_ui = true;
        self
    }

    /// The same box booted from the lab image, starting the lab program `program` (a path in
    /// `/lab/`) through tandem's lab-only hook.
    pub fn with_lab_program(mut self, program: &str) -> BoxSpec {
        self.image = ImageKind::Lab;
        self.append = format!("{} tandem.lab_exec={program}", self.append)
            .trim()
            .to_owned();
        self
    }

    /// The same box with its RTC (and so its clock at boot) starting at `base`
    /// (`2016-01-01T00:00:00`, UTC): a box whose clock is wrong until SNTP sets it.
    pub fn with_rtc_base(mut self, base: &str) -> BoxSpec {
        self.rtc_base = Some(base.to_owned());
        self
    }

    /// The same box with `config` (TOML) on its config disk.
    pub fn with_config(mut self, config: &str) -> BoxSpec {
        self.config = Some(config.to_owned());
        self
    }
}

/// Writes a config disk image: two erased slots and the (erased) pair identity region, and
/// `config` (TOML) saved as generation 1.
pub fn write_config_disk(path: &Path, config: Option<&str>) -> Result<(), LabError> {
    use tandem_config::identity::IDENTITY_BYTES;
    use tandem_config::storage::{FileDevice, SlotStore, APPLIANCE_SLOT_BYTES};
    let device = FileDevice::create(path, 2 * APPLIANCE_SLOT_BYTES + IDENTITY_BYTES)
        .map_err(|e| format!("cannot create config disk {}: {e}", path.display()))?;
    let Some(text) = config else { return Ok(()) };
    let config = tandem_config::text::from_toml(text).map_err(|e| format!("lab config: {e}"))?;
    let meta = tandem_config::blob::BlobMeta {
        generation: 1,
        parent_generation: 0,
        pair_id: 0,
    };
    let blob =
        tandem_config::blob::encode(&config, meta, None).map_err(|e| format!("lab config: {e}"))?;
    let mut store = SlotStore::new(device, APPLIANCE_SLOT_BYTES);
    store
        .save(&blob, tandem_config::MacPolicy::Unkeyed)
        .map_err(|e| format!("lab config disk: {e}"))?;
    Ok(())
}

/// A running qemu box.
#[derive(Debug)]
pub struct QemuBox {
    pub name: String,
    pub console: Console,
    pub segments: Vec<Segment>,
    /// The segments whose NIC is cabled straight to another box: (segment, peer box name).
    pub direct_links: Vec<(Segment, String)>,
    child: Child,
    qmp_socket: PathBuf,
}

impl QemuBox {
    /// Waits for the `ready` line; returns the seconds from `/init` to ready it reports.
    pub fn wait_ready(&self, timeout: Duration) -> Result<f64, LabError> {
        let line = self.console.wait_for_any_time("tandem: ready ", timeout)?;
        parse_ready_seconds(&line)
            .ok_or_else(|| format!("{}: unreadable ready line {line:?}", self.name))
    }

    /// A fresh QMP session.
    pub fn qmp(&self) -> Result<Qmp, LabError> {
        Qmp::connect(&self.qmp_socket, Duration::from_secs(30))
    }

    /// Pulls (`false`) or replugs (`true`) this box's cable on `segment`.
    pub fn set_cable(&self, segment: Segment, plugged: bool) -> Result<(), LabError> {
        self.qmp()?
            .set_link(&format!("nic-{}", segment.name()), plugged)
    }

    /// Kills the box through QMP `quit` and waits for qemu to exit.
    pub fn kill(&mut self) -> Result<(), LabError> {
        self.qmp()?.quit()?;
        self.wait_exit(Duration::from_secs(30)).map(|_| ())
    }

    /// Waits for qemu to exit; returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, LabError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: qemu still running after {timeout:?}",
                    self.name
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether qemu is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `status` on the console and returns the status lines (without the `status: ` prefix).
    pub fn status(&self, timeout: Duration) -> Result<Vec<String>, LabError> {
        self.console.skip_to_end();
        self.console.send_line("status")?;
        let mut lines = Vec::new();
        loop {
            let line = self.console.wait_for("status: ", timeout)?;
            let body = line.split("status: ").nth(1).unwrap_or_default().to_owned();
            if body == "end" {
                return Ok(lines);
            }
            lines.push(body);
        }
    }

    /// Sends `<engine> status` (`lvs`, `vrrp`, `realserver`) on the console and returns its
    /// lines up to the `<engine>: end` marker, skipping interleaved log lines.
    pub fn engine_status(&self, engine: &str, timeout: Duration) -> Result<Vec<String>, LabError> {
        self.console.skip_to_end();
        self.console.send_line(&format!("{engine} status"))?;
        let end = format!("{engine}: end");
        let mut lines = Vec::new();
        loop {
            let line = self.console.wait_for(&format!("{engine}: "), timeout)?;
            // Log lines carry the `tandem: ` prefix; the status block does not.
            if line.contains("tandem: ") {
                continue;
            }
            let line = line.trim().to_owned();
            if line == end {
                return Ok(lines);
            }
            lines.push(line);
        }
    }

    /// Sends `command` (one whose reply has no end marker, such as `vrrp status`) until a
    /// reply line containing `pattern` arrives, and returns that line. Each attempt waits a
    /// little longer for the reply (a busy TCG guest answers slowly); a reply that does not
    /// match is simply followed by the next attempt, so this waits for a condition, not for
    /// the first answer. The error names the pattern and carries the console's tail.
    pub fn wait_reply(
        &self,
        command: &str,
        pattern: &str,
        timeout: Duration,
    ) -> Result<String, LabError> {
        let deadline = Instant::now() + timeout;
        let mut attempt = Duration::from_secs(3);
        loop {
            self.console.skip_to_end();
            self.console.send_line(command)?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.console.wait_for(pattern, attempt.min(left)) {
                Ok(line) => return Ok(line),
                Err(error) if Instant::now() >= deadline => {
                    return Err(format!("`{command}`: {error}"))
                }
                Err(_) => attempt = (attempt * 2).min(Duration::from_secs(20)),
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ready 3.318 s after /init ...` -> 3.318.
pub fn parse_ready_seconds(line: &str) -> Option<f64> {
    line.split("tandem: ready ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A client host: a namespace with `eth0` on one segment.
#[derive(Debug)]
pub struct ClientNs {
    pub netns: String,
    pub segment: Segment,
}

impl ClientNs {
    /// Adds an address (`192.0.2.100/24`, `2001:db8::100/64`) to the client's `eth0`.
    pub fn add_address(&self, cidr: &str) -> Result<(), LabError> {
        let family = if cidr.contains(':') { "-6" } else { "-4" };
        ip_in(
            &self.netns,
            &[family, "addr", "add", cidr, "dev", "eth0", "nodad"],
        )
        .map(|_| ())
    }

    /// Runs a host program inside the client namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, LabError> {
        crate::shell::exec_in(&self.netns, program, args)
    }

    /// Opens a TCP connection from the client namespace to `to` (the socket lives in that
    /// namespace; the stream can be used from any thread).
    pub fn connect_tcp(
        &self,
        to: std::net::SocketAddr,
        timeout: Duration,
    ) -> Result<std::net::TcpStream, LabError> {
        let path = format!("/run/netns/{}", self.netns);
        let file = fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {path}: {e}"))?;
            std::net::TcpStream::connect_timeout(&to, timeout)
                .map_err(|e| format!("connect to {to}: {e}"))
        })
        .join()
        .map_err(|_| "connect thread panicked".to_owned())?
    }
}

/// One lab: a namespace with bridges, boxes and clients. Dropping it removes everything.
#[derive(Debug)]
pub struct Lab {
    pub id: String,
    pub dir: PathBuf,
    pub boxes: Vec<QemuBox>,
    pub clients: Vec<ClientNs>,
    segments: Vec<Segment>,
    /// The UDP port of each direct-link end, by box name and segment: the address its qemu
    /// socket netdev binds on the lab namespace's loopback, and where its peer sends.
    cable_ports: BTreeMap<(String, Segment), u16>,
}

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Creates an empty lab namespace (sweeping labs of dead test processes first).
    pub fn new() -> Result<Lab, LabError> {
        sweep_stale_labs();
        let id = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let dir = Path::new(LAB_RUN_DIR).join(&id);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        ip(&["netns", "add", &id])?;
        let lab = Lab {
            id,
            dir,
            boxes: Vec::new(),
            clients: Vec::new(),
            segments: Vec::new(),
            cable_ports: BTreeMap::new(),
        };
        ip_in(&lab.id, &["link", "set", "lo", "up"])?;
        // Bridges and taps are wires, not hosts: without IPv6 they cannot answer the boxes'
        // all-nodes probes in place of the real partner.
        for key in [
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        ] {
            crate::shell::exec_in(&lab.id, "sysctl", &["-qw", &format!("{key}=1")])?;
        }
        Ok(lab)
    }

    fn ensure_segment(&mut self, segment: Segment) -> Result<(), LabError> {
        let bridge = segment.bridge();
        // Public2 shares the public bridge: made once, by whichever segment comes first.
        if self.segments.iter().any(|s| s.bridge() == bridge) {
            return Ok(());
        }
        ip_in(
            &self.id,
            &[
                "link",
                "add",
                &bridge,
                "type",
                "bridge",
                "mcast_snooping",
                "0",
            ],
        )?;
        ip_in(&self.id, &["link", "set", &bridge, "up"])?;
        self.segments.push(segment);
        Ok(())
    }

    /// Starts a box (does not wait for it to boot).
    pub fn start_box(&mut self, spec: &BoxSpec) -> Result<usize, LabError> {
        let index = self.boxes.len();
        let qemu_box = self.launch(spec, index, true)?;
        self.boxes.push(qemu_box);
        Ok(index)
    }

    /// Boots box `spec.name` again after it stopped (a `reboot` ends qemu: the lab runs it with
    /// `-no-reboot`), with the same NICs, MACs and config disk (`spec.config` is ignored: the
    /// disk keeps what the box committed). Waits until it is ready.
    pub fn restart_box(&mut self, spec: &BoxSpec, timeout: Duration) -> Result<f64, LabError> {
        let index = self
            .boxes
            .iter()
            .position(|b| b.name == spec.name)
            .ok_or_else(|| format!("no box {} in this lab", spec.name))?;
        if self.boxes[index].is_running() {
            return Err(format!("{} is still running; stop it first", spec.name));
        }
        let qemu_box = self.launch(spec, index, false)?;
        self.boxes[index] = qemu_box;
        self.boxes[index].wait_ready(timeout)
    }

    /// Erases the config disk of box `name` (stopped), as a factory-fresh replacement box has
    /// it: no config, no pair identity. [`Lab::restart_box`] then boots it.
    pub fn erase_config_disk(&mut self, name: &str) -> Result<(), LabError> {
        if self.box_named(name)?.is_running() {
            return Err(format!("{name} is still running; stop it first"));
        }
        let uefi = crate::uefi::UefiFiles::of(&self.dir, name);
        if uefi.disk.is_file() {
            return crate::uefi::write_config_partition(&uefi.disk, None);
        }
        write_config_disk(&self.dir.join(format!("{name}.config.img")), None)
    }

    /// The UDP port of box `name`'s end of its direct link on `segment` in the lab namespace:
    /// handed out on first use, the same for the rest of the lab's life.
    fn cable_port(&mut self, name: &str, segment: Segment) -> Result<u16, LabError> {
        let next = u16::try_from(self.cable_ports.len())
            .ok()
            .and_then(|n| FIRST_CABLE_PORT.checked_add(n))
            .ok_or("too many direct links in one lab")?;
        Ok(*self
            .cable_ports
            .entry((name.to_owned(), segment))
            .or_insert(next))
    }

    /// The `-netdev` of box `spec`'s NIC on `segment`, cabled straight to box `peer`.
    fn direct_netdev(
        &mut self,
        spec: &BoxSpec,
        segment: Segment,
        peer: &str,
    ) -> Result<String, LabError> {
        if peer == spec.name {
            return Err(format!(
                "{}: a direct link on {} to itself",
                spec.name,
                segment.name()
            ));
        }
        // A peer already running must have named this box on the same segment, or the two
        // ends would not meet.
        if let Some(other) = self.boxes.iter().find(|b| b.name == peer) {
            let back = other
                .direct_links
                .iter()
                .any(|(s, p)| *s == segment && *p == spec.name);
            if !back {
                return Err(format!(
                    "{}: direct link on {} to {peer}, but {peer} is not cabled back to it \
                     (with_direct_link({:?}, {:?}) on {peer}'s spec)",
                    spec.name,
                    segment.name(),
                    segment,
                    spec.name
                ));
            }
        }
        let local = self.cable_port(&spec.name, segment)?;
        let remote = self.cable_port(peer, segment)?;
        Ok(format!(
            "socket,id=net-{},udp=127.0.0.1:{remote},localaddr=127.0.0.1:{local}",
            segment.name()
        ))
    }

    /// The qemu arguments of a `-kernel` boot: the image's kernel and initramfs, the lab's
    /// command line, the raw config disk in PCI slot 8; a reboot ends qemu (`-no-reboot`).
    fn direct_kernel_args(
        &self,
        spec: &BoxSpec,
        kernel: &Path,
        initrd: &Path,
        config_disk: &Path,
    ) -> Vec<String> {
        vec![
            "-no-reboot".into(),
            "-kernel".into(),
            kernel.display().to_string(),
            "-initrd".into(),
            initrd.display().to_string(),
            "-append".into(),
            format!(
                "console=ttyS0,115200 quiet panic=-1 tandem.name={}{} {}",
                spec.name,
                if spec.console_ui {
                    ""
                } else {
                    " tandem.console=lines"
                },
                spec.append
            ),
            "-drive".into(),
            format!(
                "file={},format=raw,if=none,id=config",
                config_disk.display()
            ),
            "-device".into(),
            "virtio-blk-pci,drive=config,addr=0x8".into(),
        ]
    }

    /// Starts qemu for `spec` as box number `index`; `fresh` writes its config disk and taps.
    fn launch(&mut self, spec: &BoxSpec, index: usize, fresh: bool) -> Result<QemuBox, LabError> {
        let image = match spec.image {
            ImageKind::Production => crate::image_dir(spec.board),
            ImageKind::Lab => crate::lab_image_dir(spec.board),
            ImageKind::Bench => crate::bench_image_dir(spec.board),
        };
        let (kernel, initrd) = (image.join("vmlinuz"), image.join("initramfs.cpio.gz"));
        if !spec.uefi && (!kernel.is_file() || !initrd.is_file()) {
            return Err(format!(
                "no image in {}: run `make image` / `make lab-image` (or `make test`, which \
                 builds both) first",
                image.display()
            ));
        }
        let console_socket = self.dir.join(format!("{}.console", spec.name));
        let qmp_socket = self.dir.join(format!("{}.qmp", spec.name));
        let config_disk = self.dir.join(format!("{}.config.img", spec.name));
        let uefi = if !spec.uefi {
            None
        } else if fresh {
            Some(crate::uefi::prepare(
                &self.dir,
                &spec.name,
                spec.disk_image
                    .clone()
                    .unwrap_or_else(|| crate::uefi::disk_image(spec.board)),
                spec.config.as_deref(),
            )?)
        } else {
            Some(crate::uefi::UefiFiles::of(&self.dir, &spec.name))
        };
        if fresh && uefi.is_none() {
            write_config_disk(&config_disk, spec.config.as_deref())?;
        }
        if !fresh {
            // The sockets of the box's previous run.
            let _ = fs::remove_file(&console_socket);
            let _ = fs::remove_file(&qmp_socket);
        }
        let mut args: Vec<String> = [
            "-accel",
            "tcg",
            "-machine",
            "pc",
            "-smp",
            "1",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if let Some(base) = &spec.rtc_base {
            args.extend(["-rtc".into(), format!("base={base}")]);
        }
        args.extend(["-m".into(), spec.memory_mb.to_string()]);
        match &uefi {
            Some(files) => args.extend(crate::uefi::qemu_args(files)),
            None => args.extend(self.direct_kernel_args(spec, &kernel, &initrd, &config_disk)),
        }
        args.extend([
            "-chardev".into(),
            format!(
                "socket,id=console,path={},server=on,wait=on",
                console_socket.display()
            ),
            "-serial".into(),
            "chardev:console".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", qmp_socket.display()),
            "-device".into(),
            "i6300esb".into(),
            "-pidfile".into(),
            self.dir
                .join(format!("{}.pid", spec.name))
                .display()
                .to_string(),
        ]);
        for segment in &spec.segments {
            let netdev = if let Some(peer) = spec.direct_peer(*segment) {
                self.direct_netdev(spec, *segment, peer)?
            } else {
                self.ensure_segment(*segment)?;
                let tap = format!("{}-{}", spec.name, segment.name());
                if tap.len() > 15 {
                    return Err(format!(
                        "box name {} too long for tap {tap} (15 chars max)",
                        spec.name
                    ));
                }
                if fresh {
                    ip_in(&self.id, &["tuntap", "add", "dev", &tap, "mode", "tap"])?;
                }
                ip_in(
                    &self.id,
                    &["link", "set", &tap, "master", &segment.bridge(), "up"],
                )?;
                format!(
                    "tap,id=net-{0},ifname={tap},script=no,downscript=no",
                    segment.name()
                )
            };
            let role_index = Segment::ALL.iter().position(|s| s == segment).unwrap_or(0);
            let mac = format!("52:54:00:1a:{:02x}:{:02x}", index + 1, role_index + 1);
            // The NIC reports a speed and duplex, as hardware does: without them the bonding
            // driver keeps a port down in 802.3ad, balance-tlb and balance-alb ("failed to
            // get link speed/duplex"), and LACP keys ports by their speed.
            args.extend([
                "-netdev".into(),
                netdev,
                "-device".into(),
                format!(
                    "virtio-net-pci,netdev=net-{0},id=nic-{0},mac={mac},addr={1},romfile=,\
                     speed=1000,duplex=full",
                    segment.name(),
                    segment.pci_slot()?
                ),
            ]);
        }
        let qemu_log = fs::File::create(self.dir.join(format!("{}.qemu.log", spec.name)))
            .map_err(|e| e.to_string())?;
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", &self.id, "qemu-system-x86_64"])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(qemu_log.try_clone().map_err(|e| e.to_string())?)
            .stderr(qemu_log);
        // SAFETY: the closure runs in the forked child before exec and only calls prctl(2),
        // which is async-signal-safe; it touches no memory of the parent.
        #[allow(unsafe_code)]
        unsafe {
            command.pre_exec(|| {
                // qemu dies with the thread that started it, so a killed test leaves no box.
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start qemu: {e}"))?;
        let console = Console::connect(
            &spec.name,
            &console_socket,
            self.dir.join(format!("{}.console.log", spec.name)),
            Duration::from_secs(30),
        )?;
        Ok(QemuBox {
            name: spec.name.clone(),
            console,
            segments: spec.segments.clone(),
            direct_links: spec.direct_links.clone(),
            child,
            qmp_socket,
        })
    }

    /// Starts every box, then waits until all are ready; returns their ready seconds.
    pub fn boot(&mut self, specs: &[BoxSpec], timeout: Duration) -> Result<Vec<f64>, LabError> {
        let first = self.boxes.len();
        for spec in specs {
            self.start_box(spec)?;
        }
        self.boxes
            .get(first..)
            .unwrap_or_default()
            .iter()
            .map(|b| b.wait_ready(timeout))
            .collect()
    }

    /// The box called `name`.
    pub fn box_named(&mut self, name: &str) -> Result<&mut QemuBox, LabError> {
        self.boxes
            .iter_mut()
            .find(|b| b.name == name)
            .ok_or_else(|| format!("no box {name} in this lab"))
    }

    /// Blocks (`true`) or unblocks box `name`'s port on `segment`'s bridge: the bridge port of
    /// its tap goes to state disabled (nothing forwarded either way) or back to forwarding,
    /// while both ends keep carrier: a service LAN cut at the switch, not a pulled cable
    /// ([`QemuBox::set_cable`]).
    pub fn block_port(&self, name: &str, segment: Segment, blocked: bool) -> Result<(), LabError> {
        let qemu_box = self
            .boxes
            .iter()
            .find(|b| b.name == name)
            .ok_or_else(|| format!("no box {name} in this lab"))?;
        if !qemu_box.segments.contains(&segment) {
            return Err(format!("{name} has no NIC on {}", segment.name()));
        }
        if let Some((_, peer)) = qemu_box.direct_links.iter().find(|(s, _)| *s == segment) {
            return Err(format!(
                "{name}'s {} NIC is cabled straight to {peer}: no bridge port to block \
                 (pull the cable with set_cable)",
                segment.name()
            ));
        }
        let tap = format!("{name}-{}", segment.name());
        let state = if blocked { "0" } else { "3" };
        crate::shell::exec_in(
            &self.id,
            "bridge",
            &["link", "set", "dev", &tap, "state", state],
        )
        .map(|_| ())
    }

    /// Adds a client namespace with `eth0` on `segment`.
    pub fn add_client(
        &mut self,
        short_name: &str,
        segment: Segment,
    ) -> Result<&ClientNs, LabError> {
        self.ensure_segment(segment)?;
        let netns = format!("{}-{short_name}", self.id);
        ip(&["netns", "add", &netns])?;
        let client = ClientNs { netns, segment };
        let lab_end = format!("c-{short_name}");
        if lab_end.len() > 15 {
            return Err(format!("client name {short_name} too long"));
        }
        ip_in(
            &self.id,
            &[
                "link",
                "add",
                &lab_end,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                &client.netns,
            ],
        )?;
        ip_in(
            &self.id,
            &["link", "set", &lab_end, "master", &segment.bridge(), "up"],
        )?;
        ip_in(&client.netns, &["link", "set", "lo", "up"])?;
        ip_in(&client.netns, &["link", "set", "eth0", "up"])?;
        self.clients.push(client);
        self.clients
            .last()
            .ok_or_else(|| "client vanished".to_owned())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for b in &mut self.boxes {
            b.stop();
        }
        for client in &self.clients {
            let _ = ip(&["netns", "del", &client.netns]);
        }
        let _ = ip(&["netns", "del", &self.id]);
        if std::env::var_os("TANDEM_LAB_KEEP_LOGS").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Removes namespaces and boxes of labs whose test process is gone.
fn sweep_stale_labs() {
    let Ok(list) = ip(&["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        // The lab namespace is `tlab-<pid>-<n>`; clients are `tlab-<pid>-<n>-<name>`.
        let lab_id: String = name.splitn(4, '-').take(3).collect::<Vec<_>>().join("-");
        if let Ok(entries) = fs::read_dir(Path::new(LAB_RUN_DIR).join(&lab_id)) {
            for entry in entries.flatten() {
                if entry.path().extension().is_some_and(|e| e == "pid") {
                    if let Some(qemu) = fs::read_to_string(entry.path())
                        .ok()
                        .and_then(|t| t.trim().parse::<i32>().ok())
                    {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(qemu),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
        }
        let _ = ip(&["netns", "del", name]);
        let _ = fs::remove_dir_all(Path::new(LAB_RUN_DIR).join(&lab_id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_lines_parse() {
        let line = "[    4.894] tandem: ready 3.318 s after /init (kernel up 4.894 s) name=box-a";
        assert_eq!(parse_ready_seconds(line), Some(3.318));
        assert_eq!(parse_ready_seconds("tandem: starting"), None);
    }

    #[test]
    fn segments_map_to_the_board_pci_slots() {
        assert_eq!(Segment::Public.pci_slot().unwrap(), "0x3");
        assert_eq!(Segment::Peer.pci_slot().unwrap(), "0x5");
        assert_eq!(Segment::Mgmt.pci_slot().unwrap(), "0x6");
        assert_eq!(Segment::Public2.pci_slot().unwrap(), "0x7");
    }

    #[test]
    fn a_direct_link_adds_its_nic_and_names_one_peer_per_segment() {
        let spec = BoxSpec::new("box-a", &[Segment::Public, Segment::Peer])
            .with_direct_link(Segment::Public, "box-c")
            .with_direct_link(Segment::Public2, "box-b")
            .with_direct_link(Segment::Public, "box-b");
        assert_eq!(
            spec.segments,
            [Segment::Public, Segment::Peer, Segment::Public2],
            "the NIC is added once, in the order asked"
        );
        assert_eq!(spec.direct_peer(Segment::Public), Some("box-b"));
        assert_eq!(spec.direct_peer(Segment::Public2), Some("box-b"));
        assert_eq!(spec.direct_peer(Segment::Peer), None, "bridged as before");
        assert!(BoxSpec::new("box-a", &[Segment::Public])
            .direct_links
            .is_empty());
    }

    #[test]
    fn the_second_public_nic_is_on_the_public_bridge_with_its_own_names() {
        assert_eq!(Segment::Public2.bridge(), "br-public");
        assert_eq!(Segment::Public.bridge(), "br-public");
        assert_eq!(Segment::Private.bridge(), "br-private");
        assert_eq!(
            Segment::Public2.name(),
            "public2",
            "QMP id nic-public2, tap box-public2"
        );
        let names: std::collections::BTreeSet<_> = Segment::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Segment::ALL.len());
    }
}
