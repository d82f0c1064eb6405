//! Whether a firmware bundle may be installed on this box, decided before a byte of it is
//! written: the container whole (`tandem_board::bundle`), the Ed25519 signature by the key the
//! image carries (ring, already linked for the TLS checks), the manifest, the board, the config
//! format this box stores, and the partner's firmware when paired. Also `firmware fetch`'s HTTP
//! GET: plain HTTP, bounded, blocking (run it on a worker): the signature is the trust, not the
//! transport.
//!
//! Sans-IO but for [`Trust::load`] and [`http_get`]; the write itself is
//! `firmware_slot::Firmware::install`.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use tandem_board::bundle::{
    hex, parse_public_key, Bundle, BundleError, Manifest, ManifestError, Version, MAX_BUNDLE,
};

use crate::pair_service::PartnerFirmware;

/// The public key a bundle must be signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    key: [u8; 32],
    /// First 8 bytes of SHA-256 of the key (what a bundle's header names).
    id: [u8; 8],
}

impl Trust {
    pub fn new(key: [u8; 32]) -> Trust {
        let digest = ring::digest::digest(&ring::digest::SHA256, &key);
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest.as_ref()[..8]);
        Trust { key, id }
    }

    /// The key from the image (`/etc/tandem/firmware-key.pub`).
    pub fn load() -> Result<Trust, String> {
        let path = format!("/{}", tandem_board::bundle::PUBLIC_KEY_PATH);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!("{path}: {e}: this image carries no firmware signing key; rebuild it with make image")
        })?;
        parse_public_key(&text).map(Trust::new).ok_or_else(|| {
            format!(
                "{path} is not `tandem-firmware-key ed25519 <64 hex digits>`; rebuild the image"
            )
        })
    }

    /// The key id in hex.
    pub fn id(&self) -> String {
        hex(&self.id)
    }
}

/// What the box knows that a bundle is checked against.
#[derive(Debug, Clone, Copy)]
pub struct BoxFacts<'a> {
    pub board: Option<&'a str>,
    /// The config blob format this firmware stores (the new firmware must read it).
    pub config_format: u16,
    pub paired: bool,
    /// The partner firmware's formats, once heard.
    pub partner: Option<PartnerFirmware>,
}

/// Why a bundle is refused; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Unreadable(String),
    Container(BundleError),
    NoKey(String),
    BadSignature {
        signed_by: String,
        trusted: String,
    },
    Manifest(ManifestError),
    WrongBoard {
        bundle: String,
        this_box: String,
    },
    ConfigFormat {
        stored: u16,
        oldest: u16,
        newest: u16,
    },
    Partner(String),
}

impl Refusal {
    /// The counter's name.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Unreadable(_) => "unreadable",
            Refusal::Container(error) => error.reason(),
            Refusal::NoKey(_) => "no_key",
            Refusal::BadSignature { .. } => "bad_signature",
            Refusal::Manifest(_) => "bad_manifest",
            Refusal::WrongBoard { .. } => "wrong_board",
            Refusal::ConfigFormat { .. } => "config_format",
            Refusal::Partner(_) => "partner_version",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Unreadable(why) | Refusal::NoKey(why) | Refusal::Partner(why) => {
                f.write_str(why)
            }
            Refusal::Container(error) => write!(f, "{error}"),
            Refusal::BadSignature { signed_by, trusted } if signed_by == trusted => write!(
                f,
                "bad signature: the bundle names this box's key {trusted} but its signature does \
                 not match its bytes (damaged or altered); fetch it again from its source"
            ),
            Refusal::BadSignature { signed_by, trusted } => write!(
                f,
                "bad signature: the bundle is signed by key {signed_by}, this box trusts only key \
                 {trusted}; install a bundle built with this box's signing key"
            ),
            Refusal::Manifest(error) => write!(f, "bad manifest: {error}"),
            Refusal::WrongBoard { bundle, this_box } => write!(
                f,
                "wrong board: the bundle is for board {bundle}, this box is {this_box}; build the \
                 bundle with make image BOARD={this_box}"
            ),
            Refusal::ConfigFormat {
                stored,
                oldest,
                newest,
            } => write!(
                f,
                "config format: this box stores config blob format {stored}, the bundle's \
                 firmware reads formats {oldest}-{newest}; it could not load this box's config"
            ),
        }
    }
}

/// A bundle that may be installed: its manifest, the slot image, and what the operator should
/// know (unchecked parts).
#[derive(Debug, Clone)]
pub struct Verified<'a> {
    pub manifest: Manifest,
    pub image: &'a [u8],
    pub notes: Vec<String>,
}

/// Checks `bytes` in the order cheapest first: the container, the signature (before anything in
/// the manifest is believed), the manifest, the board, the config format, the partner (its
/// channel and config format, and its version against the bundle's `min-partner`).
pub fn verify<'a>(
    bytes: &'a [u8],
    trust: Result<&Trust, &str>,
    facts: &BoxFacts<'_>,
) -> Result<Verified<'a>, Refusal> {
    let bundle = Bundle::parse(bytes).map_err(Refusal::Container)?;
    let trust = trust.map_err(|why| Refusal::NoKey(why.to_owned()))?;
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &trust.key);
    if key.verify(bundle.signed, bundle.signature).is_err() {
        return Err(Refusal::BadSignature {
            signed_by: hex(&bundle.key_id),
            trusted: trust.id(),
        });
    }
    let manifest = Manifest::parse(bundle.manifest).map_err(Refusal::Manifest)?;
    let this_box = facts.board.unwrap_or("-");
    if facts.board != Some(manifest.board.as_str()) {
        return Err(Refusal::WrongBoard {
            bundle: manifest.board,
            this_box: this_box.to_owned(),
        });
    }
    if !manifest.reads_config(facts.config_format) {
        return Err(Refusal::ConfigFormat {
            stored: facts.config_format,
            oldest: manifest.config_oldest,
            newest: manifest.config_newest,
        });
    }
    let mut notes = Vec::new();
    match (facts.paired, facts.partner) {
        (false, _) => {}
        (true, None) => notes.push(
            "paired, but the partner was not heard since this boot: its firmware was not \
             checked against the bundle"
                .to_owned(),
        ),
        (true, Some(partner)) => {
            if !tandem_wire::replication::channels_work_together(
                partner.channel_version,
                manifest.channel,
            ) {
                return Err(Refusal::Partner(format!(
                    "partner version: the partner speaks replication channel {}, the bundle's \
                     firmware {}: the pair could not replicate; install a firmware of the \
                     partner's channel, or `unpair` first",
                    partner.channel_version, manifest.channel
                )));
            }
            // min-partner 0.0.0 asks nothing; any other needs the partner's version, and a
            // partner that does not tell it (channel 3) counts as older than any.
            let any = Version(0, 0, 0);
            match partner.version {
                _ if manifest.min_partner == any => {}
                Some(version) if version.satisfies(manifest.min_partner) => {}
                Some(version) => {
                    return Err(Refusal::Partner(format!(
                        "partner version: the bundle needs the partner at {} or newer, the \
                         partner runs {version}: upgrade the partner first (pair upgrade does \
                         it in order)",
                        manifest.min_partner
                    )))
                }
                None if tandem_wire::replication::speaks_firmware(partner.channel_version) => {
                    return Err(Refusal::Partner(format!(
                        "partner version: the bundle needs the partner at {} or newer, and the \
                         partner has not told its version since it was heard (or it is not \
                         x.y.z): try again in a second; `pair status` shows it",
                        manifest.min_partner
                    )))
                }
                None => {
                    return Err(Refusal::Partner(format!(
                        "partner version: the bundle needs the partner at {} or newer, the \
                         partner does not tell its version (firmware of replication channel \
                         {}, older than any min-partner): upgrade the partner first (pair \
                         upgrade does it in order)",
                        manifest.min_partner, partner.channel_version
                    )))
                }
            }
            if !manifest.reads_config(partner.blob_format) {
                return Err(Refusal::Partner(format!(
                    "partner version: the partner writes config blob format {}, the bundle's \
                     firmware reads {}-{}: it could not take the partner's config; `unpair` \
                     first to upgrade this box alone",
                    partner.blob_format, manifest.config_oldest, manifest.config_newest
                )));
            }
            if manifest.config_newest > partner.blob_format {
                notes.push(format!(
                    "the bundle's firmware writes config format {}, the partner reads up to {}: \
                     nothing is replicated to the partner until it runs the new firmware too",
                    manifest.config_newest, partner.blob_format
                ));
            }
        }
    }
    Ok(Verified {
        manifest,
        image: bundle.image,
        notes,
    })
}

/// Reads a bundle file, at most [`MAX_BUNDLE`] bytes.
pub fn read_bundle(path: &str) -> Result<Vec<u8>, Refusal> {
    let file = std::fs::File::open(path).map_err(|e| {
        Refusal::Unreadable(format!("cannot read {path}: {e}; give a path on this box"))
    })?;
    let mut bytes = Vec::new();
    file.take(MAX_BUNDLE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Refusal::Unreadable(format!("cannot read {path}: {e}")))?;
    if bytes.len() as u64 > MAX_BUNDLE {
        return Err(Refusal::Unreadable(format!(
            "{path} is over {MAX_BUNDLE} bytes: not a firmware bundle"
        )));
    }
    Ok(bytes)
}

/// An `http://ADDRESS[:PORT]/PATH` URL, the address a literal (the box has no resolver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub address: SocketAddr,
    pub host: String,
    pub path: String,
}

impl HttpUrl {
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("{url}: only http:// URLs (the signature is the trust, not the transport)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, "/"),
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!("{url}: the path has spaces or control characters"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url}: `[` without `]`"))?;
            (host, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let ip: IpAddr = host.parse().map_err(|_| {
            format!("{url}: `{host}` is not an IP address (this box resolves no names)")
        })?;
        let port = match port {
            None => 80,
            Some(port) => port
                .parse::<u16>()
                .map_err(|_| format!("{url}: port `{port}` is not 0..65535"))?,
        };
        Ok(HttpUrl {
            address: SocketAddr::new(ip, port),
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// GETs `url` with HTTP/1.1 (`Connection: close`), at most `max` body bytes, each read within
/// `timeout` and the whole within `6 * timeout`. Blocking: run it on a worker thread.
pub fn http_get(url: &HttpUrl, max: u64, timeout: Duration) -> Result<Vec<u8>, String> {
    let began = Instant::now();
    let stream = TcpStream::connect_timeout(&url.address, timeout)
        .map_err(|e| format!("connect to {}: {e}", url.address))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(|e| format!("{}: {e}", url.address))?;
    let mut stream = stream;
    write!(
        stream,
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tandem/{}\r\nConnection: close\r\n\r\n",
        url.path,
        url.host,
        env!("CARGO_PKG_VERSION")
    )
    .map_err(|e| format!("send to {}: {e}", url.address))?;
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let limit = max + 16 * 1024;
    loop {
        if began.elapsed() > timeout * 6 {
            return Err(format!(
                "{}: not done after {} s",
                url.address,
                (timeout * 6).as_secs()
            ));
        }
        let n = stream
            .read(&mut buffer)
            .map_err(|e| format!("receive from {}: {e}", url.address))?;
        if n == 0 {
            break;
        }
        received.extend_from_slice(&buffer[..n]);
        if received.len() as u64 > limit {
            return Err(format!(
                "the server sends more than {max} bytes: not a firmware bundle"
            ));
        }
    }
    http_body(&received, max)
}

/// The body of a whole HTTP/1.x response (`200` only; `Content-Length` checked when given,
/// chunked encoding refused).
pub fn http_body(response: &[u8], max: u64) -> Result<Vec<u8>, String> {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the server's answer has no complete HTTP head")?;
    let head = std::str::from_utf8(&response[..end]).map_err(|_| "the HTTP head is not text")?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    let code = status
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .ok_or_else(|| format!("`{status}` is not an HTTP/1.x status line"))?;
    if code != "200" {
        return Err(format!("the server answered `{status}`"));
    }
    let mut length = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .parse::<u64>()
                    .map_err(|_| format!("Content-Length `{value}` is not a number"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && !value.eq_ignore_ascii_case("identity")
        {
            return Err(format!(
                "Transfer-Encoding `{value}` is not supported; serve the file with a \
                 Content-Length"
            ));
        }
    }
    let body = &response[end + 4..];
    if let Some(length) = length {
        if length > max {
            return Err(format!(
                "Content-Length {length} is over {max} bytes: not a firmware bundle"
            ));
        }
        if (body.len() as u64) < length {
            return Err(format!(
                "truncated: the connection closed after {} of {length} bytes; fetch again",
                body.len()
            ));
        }
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        return Ok(body.get(..length).unwrap_or(body).to_vec());
    }
    if body.len() as u64 > max {
        return Err(format!(
            "the body is over {max} bytes: not a firmware bundle"
        ));
    }
    Ok(body.to_vec())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ring::signature::KeyPair;
    use tandem_board::bundle::unsigned_bundle;

    struct Signer {
        pair: ring::signature::Ed25519KeyPair,
    }

    impl Signer {
        fn new(seed: u8) -> Signer {
            Signer {
                pair: ring::signature::Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap(),
            }
        }

        fn trust(&self) -> Trust {
            Trust::new(self.pair.public_key().as_ref().try_into().unwrap())
        }

        fn bundle(&self, manifest: &Manifest, image: &[u8]) -> Vec<u8> {
            let trust = self.trust();
            let mut bytes = unsigned_bundle(trust.id, manifest.render().as_bytes(), image);
            let signature = self.pair.sign(&bytes);
            bytes.extend_from_slice(signature.as_ref());
            bytes
        }
    }

    fn manifest(board: &str) -> Manifest {
        Manifest {
            board: board.into(),
            version: Version(0, 2, 0),
            config_oldest: 1,
            config_newest: 5,
            channel: 3,
            min_partner: Version(0, 1, 0),
        }
    }

    const FACTS: BoxFacts<'static> = BoxFacts {
        board: Some("qemu-lab"),
        config_format: 5,
        paired: false,
        partner: None,
    };

    #[test]
    fn a_bundle_signed_by_the_trusted_key_for_this_board_is_accepted() {
        let signer = Signer::new(1);
        let bytes = signer.bundle(&manifest("qemu-lab"), b"MZ image");
        let verified = verify(&bytes, Ok(&signer.trust()), &FACTS).unwrap();
        assert_eq!(verified.image, b"MZ image");
        assert_eq!(verified.manifest.version, Version(0, 2, 0));
        assert!(verified.notes.is_empty());
    }

    #[test]
    fn each_bad_bundle_is_refused_with_its_reason() {
        let signer = Signer::new(1);
        let trust = signer.trust();
        let good = signer.bundle(&manifest("qemu-lab"), b"MZ image");
        let refused = |bytes: &[u8]| verify(bytes, Ok(&trust), &FACTS).unwrap_err();

        let mut flipped = good.clone();
        let at = flipped.len() - 70;
        flipped[at] ^= 1;
        let error = refused(&flipped);
        assert_eq!(error.reason(), "bad_signature");
        assert!(error.to_string().contains("damaged or altered"), "{error}");

        let other = Signer::new(2).bundle(&manifest("qemu-lab"), b"MZ image");
        let error = refused(&other);
        assert_eq!(error.reason(), "bad_signature");
        assert!(
            error
                .to_string()
                .contains(&format!("this box trusts only key {}", trust.id())),
            "{error}"
        );

        let error = refused(&good[..good.len() - 1]);
        assert_eq!(error.reason(), "truncated");

        let error = refused(&signer.bundle(&manifest("apu2"), b"MZ image"));
        assert_eq!(error.reason(), "wrong_board");
        assert!(error
            .to_string()
            .contains("for board apu2, this box is qemu-lab"));

        let mut bytes = unsigned_bundle(trust.id, b"board qemu-lab\n", b"MZ");
        bytes.extend_from_slice(signer.pair.sign(&bytes).as_ref());
        let error = refused(&bytes);
        assert_eq!(error.reason(), "bad_manifest");
        assert!(
            error.to_string().contains("`version` is missing"),
            "{error}"
        );

        let mut newer = manifest("qemu-lab");
        newer.config_oldest = 6;
        newer.config_newest = 6;
        let error = refused(&signer.bundle(&newer, b"MZ"));
        assert_eq!(error.reason(), "config_format");

        let error = verify(&good, Err("no key in this image"), &FACTS).unwrap_err();
        assert_eq!(error.reason(), "no_key");
    }

    #[test]
    fn a_paired_box_checks_the_partners_firmware() {
        let signer = Signer::new(1);
        let trust = signer.trust();
        let good = signer.bundle(&manifest("qemu-lab"), b"MZ image");
        let paired = |partner| BoxFacts {
            paired: true,
            partner,
            ..FACTS
        };
        let unheard = verify(&good, Ok(&trust), &paired(None)).unwrap();
        assert!(unheard.notes[0].contains("not checked"));
        let same = PartnerFirmware {
            blob_format: 5,
            channel_version: 3,
            version: Some(Version(0, 1, 0)),
            slot: None,
        };
        let ok = verify(&good, Ok(&trust), &paired(Some(same))).unwrap();
        assert!(ok.notes.is_empty(), "{:?}", ok.notes);
        let other_channel = PartnerFirmware {
            channel_version: 2,
            ..same
        };
        let error = verify(&good, Ok(&trust), &paired(Some(other_channel))).unwrap_err();
        assert_eq!(error.reason(), "partner_version");
        // N and N+1 work together: a channel-4 partner takes a channel-3 bundle's firmware.
        let next_channel = PartnerFirmware {
            channel_version: 4,
            ..same
        };
        assert!(verify(&good, Ok(&trust), &paired(Some(next_channel))).is_ok());
        let older = PartnerFirmware {
            blob_format: 4,
            ..same
        };
        let ok = verify(&good, Ok(&trust), &paired(Some(older))).unwrap();
        assert!(ok.notes[0].contains("nothing is replicated to the partner"));
    }

    #[test]
    fn the_bundles_min_partner_is_enforced_against_the_partners_version() {
        let signer = Signer::new(1);
        let trust = signer.trust();
        let mut needs = manifest("qemu-lab");
        needs.min_partner = Version(0, 2, 0);
        let bundle = signer.bundle(&needs, b"MZ image");
        let paired = |partner| BoxFacts {
            paired: true,
            partner: Some(partner),
            ..FACTS
        };
        let partner = |version| PartnerFirmware {
            blob_format: 5,
            channel_version: 4,
            version,
            slot: None,
        };
        let error = verify(
            &bundle,
            Ok(&trust),
            &paired(partner(Some(Version(0, 1, 9)))),
        )
        .unwrap_err();
        assert_eq!(error.reason(), "partner_version");
        assert_eq!(
            error.to_string(),
            "partner version: the bundle needs the partner at 0.2.0 or newer, the partner runs \
             0.1.9: upgrade the partner first (pair upgrade does it in order)"
        );
        assert!(verify(
            &bundle,
            Ok(&trust),
            &paired(partner(Some(Version(0, 2, 0))))
        )
        .is_ok());
        assert!(verify(
            &bundle,
            Ok(&trust),
            &paired(partner(Some(Version(0, 10, 0))))
        )
        .is_ok());
        // A channel-3 partner does not tell its version: older than any min-partner set.
        let silent = PartnerFirmware {
            channel_version: 3,
            ..partner(None)
        };
        let error = verify(&bundle, Ok(&trust), &paired(silent)).unwrap_err();
        assert_eq!(error.reason(), "partner_version");
        assert!(
            error.to_string().contains("does not tell its version")
                && error.to_string().contains("upgrade the partner first"),
            "{error}"
        );
        // A channel-4 partner whose FIRMWARE was not heard yet: not known, so refused too.
        let error = verify(&bundle, Ok(&trust), &paired(partner(None))).unwrap_err();
        assert!(
            error.to_string().contains("has not told its version"),
            "{error}"
        );
        // min-partner 0.0.0 asks nothing of it.
        needs.min_partner = Version(0, 0, 0);
        let any = signer.bundle(&needs, b"MZ image");
        assert!(verify(&any, Ok(&trust), &paired(silent)).is_ok());
        // Unpaired, nothing is asked of a partner.
        assert!(verify(&bundle, Ok(&trust), &FACTS).is_ok());
    }

    #[test]
    fn urls_and_http_answers_are_read_strictly() {
        let url = HttpUrl::parse("http://10.0.9.1:8000/b/tandem.bundle").unwrap();
        assert_eq!(url.address, "10.0.9.1:8000".parse().unwrap());
        assert_eq!(url.path, "/b/tandem.bundle");
        let v6 = HttpUrl::parse("http://[fd00::1]/x").unwrap();
        assert_eq!(v6.address, "[fd00::1]:80".parse().unwrap());
        assert!(HttpUrl::parse("https://10.0.0.1/x").is_err());
        assert!(HttpUrl::parse("http://updates.example/x")
            .unwrap_err()
            .contains("resolves no names"));
        assert!(HttpUrl::parse("http://10.0.0.1:99999/x").is_err());

        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        assert_eq!(http_body(ok, 10).unwrap(), b"abc");
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc";
        assert!(http_body(cut, 10).unwrap_err().starts_with("truncated"));
        let big = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc";
        assert!(http_body(big, 10).unwrap_err().contains("over 10 bytes"));
        let missing = b"HTTP/1.0 404 Not Found\r\n\r\n";
        assert!(http_body(missing, 10).unwrap_err().contains("404"));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc";
        assert!(http_body(chunked, 10).is_err());
        assert_eq!(
            http_body(b"HTTP/1.0 200 OK\r\n\r\nxyz", 10).unwrap(),
            b"xyz"
        );
    }
}
