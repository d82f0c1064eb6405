//! Reading a box's metrics endpoint in tests: one `GET /metrics` from inside a namespace, a
//! sample's value by its series, and Debian's `promtool check metrics` over a body.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

/// `GET /metrics` to `address` from a thread inside namespace `netns`: the body of a 200
/// answer, else an error with the head.
pub fn scrape(netns: &str, address: SocketAddr) -> Result<String, String> {
    let answer = crate::netns::spawn_in(netns, move || -> Result<String, String> {
        let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(5))
            .map_err(|e| format!("connect {address}: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: tandem\r\n\r\n")
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .map_err(|e| e.to_string())?;
        Ok(answer)
    })?
    .join()
    .map_err(|_| "the scrape thread panicked".to_owned())???;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no head in {answer:?}"))?;
    if !head.starts_with("HTTP/1.1 200 OK") {
        return Err(format!("scrape answered {head}"));
    }
    Ok(body.to_owned())
}

/// The value of the sample `series` (name and labels exactly as rendered) in `body`.
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

/// `promtool check metrics` over `body` (Debian's prometheus package): its exit status and
/// what it said.
pub fn promtool(body: &str) -> Result<(bool, String), String> {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("promtool: {e}; install Debian's prometheus package (`make deps`)"))?;
    child
        .stdin
        .take()
        .ok_or("promtool has no stdin")?
        .write_all(body.as_bytes())
        .map_err(|e| e.to_string())?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), said))
}
