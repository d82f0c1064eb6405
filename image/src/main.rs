//! `tandem-image`: builds `target/image/<board>/{vmlinuz,initramfs.cpio.gz,manifest.txt}` and,
//! with `--disk`, the flashable disk image `tandem-<board>.img`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use tandem_image::build::ExtraFile;
use tandem_image::kernel::installed_kernels;
use tandem_image::{build_image_with, DiskInputs, ImageRequest};

const USAGE: &str = "\
usage: tandem-image build --board NAME --tandem PATH [--out DIR] [--install-kernel]
                         [--disk]                (also the flashable tandem-<board>.img)
                         [--extra SRC:DEST]...   (lab images only: extra files)
       tandem-image list INITRAMFS.cpio.gz
       tandem-image boards";

fn main() -> ExitCode {
    match run(std::env::args_os().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tandem-image: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Vec<std::ffi::OsString>) -> Result<(), String> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_args(args);
    let command = match parser.next().map_err(|e| e.to_string())? {
        Some(Value(command)) => command.string().map_err(|e| e.to_string())?,
        _ => return Err(USAGE.into()),
    };
    match command.as_str() {
        "boards" => {
            for board in tandem_board::PROFILES {
                println!("{:<20} {}", board.name, board.description);
            }
            Ok(())
        }
        "list" => {
            let path = match parser.next().map_err(|e| e.to_string())? {
                Some(Value(path)) => PathBuf::from(path),
                _ => return Err(USAGE.into()),
            };
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut archive = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut archive)
                .map_err(|e| format!("{}: not gzip: {e}", path.display()))?;
            let mut stdout = std::io::stdout().lock();
            for entry in tandem_image::cpio::read_archive(&archive).map_err(|e| e.to_string())? {
                // A closed pipe (`| head`) ends the listing quietly.
                if writeln!(
                    stdout,
                    "{:o} {:>9} {}",
                    entry.mode,
                    entry.data.len(),
                    entry.path
                )
                .is_err()
                {
                    break;
                }
            }
            Ok(())
        }
        "build" => {
            let (mut board, mut tandem, mut out, mut install) = (None, None, None, false);
            let mut disk = false;
            let mut extras = Vec::new();
            while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
                match arg {
                    Long("board") => {
                        board = Some(
                            parser
                                .value()
                                .map_err(|e| e.to_string())?
                                .string()
                                .map_err(|e| e.to_string())?,
                        )
                    }
                    Long("tandem") => {
                        tandem = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?))
                    }
                    Long("out") => {
                        out = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?))
                    }
                    Long("install-kernel") => install = true,
                    Long("disk") => disk = true,
                    Long("extra") => extras.push(ExtraFile::parse(
                        &parser
                            .value()
                            .map_err(|e| e.to_string())?
                            .string()
                            .map_err(|e| e.to_string())?,
                    )?),
                    other => return Err(other.unexpected().to_string()),
                }
            }
            let board_name = board.ok_or("--board is required (see `tandem-image boards`)")?;
            let board = tandem_board::by_name(&board_name).ok_or_else(|| {
                format!("unknown board `{board_name}`; `tandem-image boards` lists the known ones")
            })?;
            let tandem = tandem.ok_or("--tandem PATH to the static tandem binary is required")?;
            let out = out.unwrap_or_else(|| PathBuf::from("target/image").join(board.name));
            let mut kernels = installed_kernels(std::path::Path::new("/"));
            if kernels.is_empty() && install {
                install_debian_kernel()?;
                kernels = installed_kernels(std::path::Path::new("/"));
            }
            let kernel = kernels.into_iter().next().ok_or(
                "no Debian kernel installed (/boot/vmlinuz-* with /lib/modules/*/modules.dep): \
                 run with --install-kernel as root, or apt-get install linux-image-amd64",
            )?;
            let request = ImageRequest {
                board,
                kernel,
                tandem,
                out: out.clone(),
            };
            // The box trusts the public half of the signing key: every image carries it.
            let key = tandem_image::sign::SigningKey::from_env(std::path::Path::new(
                tandem_image::sign::DEV_KEY_PATH,
            ))?;
            println!("{}", key.describe());
            std::fs::create_dir_all(&out).map_err(|e| format!("mkdir {}: {e}", out.display()))?;
            let key_file = out.join("firmware-key.pub");
            std::fs::write(&key_file, key.public_key_text())
                .map_err(|e| format!("{}: {e}", key_file.display()))?;
            extras.push(ExtraFile {
                source: key_file,
                dest: tandem_board::bundle::PUBLIC_KEY_PATH.to_owned(),
            });
            let report = build_image_with(&request, &extras).map_err(|e| e.to_string())?;
            println!(
                "image {} for board {} (kernel {}, {} modules, {} initramfs members)",
                out.display(),
                board.name,
                report.kernel_release,
                report.modules.len(),
                report.members.len()
            );
            for line in report.size_lines() {
                println!("{line}");
            }
            if disk {
                let (disk, bundle) = tandem_image::build_disk_image_signed(
                    &request,
                    &DiskInputs::debian(),
                    Some(&key),
                )
                .map_err(|e| e.to_string())?;
                println!("disk image {} ({})", disk.path.display(), disk.cmdline);
                for line in disk.size_lines() {
                    println!("{line}");
                }
                if let Some(bundle) = bundle {
                    println!(
                        "firmware bundle {} ({} bytes)",
                        bundle.path.display(),
                        bundle.bytes
                    );
                    println!("bench: bundle_bytes {} bytes", bundle.bytes);
                }
                if key.development {
                    println!("{}", key.describe());
                }
            }
            Ok(())
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

/// Installs Debian's kernel package (host side only: the image never runs apt).
fn install_debian_kernel() -> Result<(), String> {
    eprintln!("tandem-image: no kernel installed; running apt-get install linux-image-amd64");
    let status = std::process::Command::new("apt-get")
        .args([
            "install",
            "-y",
            "--no-install-recommends",
            "linux-image-amd64",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "apt-get install linux-image-amd64 failed ({status}); run apt-get update first"
        ))
    }
}
