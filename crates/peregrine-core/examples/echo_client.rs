//! The streamed-echo load client for `npm run bench` (workload `echo`): POSTs `--bytes`
//! bytes to `--url` over one HTTP/1.1 connection (Content-Length, 1 MiB writes) while
//! reading the echo back, checks every byte, and prints
//! `BENCH_JSON {"bytes":…,"seconds":…,"mibps":…}`. Exits 1 on a short, corrupt or late
//! echo.
//!
//! It is native because a Node.js client saturates its core near 600 MiB/s on the
//! development machine, below the servers it measures (bench/README.md, "Workloads").
//! The payload repeats a 251-byte period, so any offset's bytes are a slice of one small
//! pattern and nothing is held.
//!
//! ```text
//! cargo run --release -p peregrine-core --example echo_client -- \
//!     --url=http://127.0.0.1:5000/echo --bytes=1073741824
//! ```

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PERIOD: usize = 251;
const CHUNK: usize = 1 << 20;

struct Args {
    host: String,
    path: String,
    bytes: u64,
    timeout: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut bytes = 1u64 << 30;
    let mut timeout_ms = 300_000u64;
    for arg in std::env::args().skip(1) {
        let (name, value) = arg
            .split_once('=')
            .ok_or(format!("expected --name=value: {arg}"))?;
        match name {
            "--url" => url = Some(value.to_string()),
            "--bytes" => bytes = value.parse().map_err(|_| format!("bad --bytes {value}"))?,
            "--timeout-ms" => {
                timeout_ms = value
                    .parse()
                    .map_err(|_| format!("bad --timeout-ms {value}"))?
            }
            _ => return Err(format!("unknown flag {name}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    Ok(Args {
        host: host.to_string(),
        path: if path.is_empty() { "/" } else { path }.to_string(),
        bytes,
        timeout: Duration::from_millis(timeout_ms),
    })
}

/// The payload, CHUNK bytes plus one period so that a slice of up to CHUNK bytes can
/// start at any phase.
fn pattern() -> Vec<u8> {
    (0..CHUNK + PERIOD).map(|i| (i % PERIOD) as u8).collect()
}

/// Sends the request; returns the write half, which must stay open until the echo is
/// read: dropping it half-closes the connection, which a server may take as the client
/// leaving.
async fn send(
    mut writer: tokio::net::tcp::OwnedWriteHalf,
    args: &Args,
    pattern: &[u8],
) -> std::io::Result<tokio::net::tcp::OwnedWriteHalf> {
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        args.path, args.host, args.bytes
    );
    writer.write_all(head.as_bytes()).await?;
    let mut sent = 0u64;
    while sent < args.bytes {
        let n = (args.bytes - sent).min(CHUNK as u64) as usize;
        let phase = (sent % PERIOD as u64) as usize;
        writer.write_all(&pattern[phase..phase + n]).await?;
        sent += n as u64;
    }
    Ok(writer)
}

/// How the response body is framed, and where its decoding stands.
#[derive(Clone, Copy)]
enum Framing {
    Length(u64),
    /// Inside a chunk: this many data bytes are left in it.
    ChunkData(u64),
    /// Reading a chunk-size line, or the CRLF after a chunk's data.
    ChunkLine,
    Done,
}

struct Echo<'a> {
    pattern: &'a [u8],
    received: u64,
    framing: Framing,
}

impl Echo<'_> {
    /// Checks and counts body bytes.
    fn body(&mut self, data: &[u8]) -> Result<(), String> {
        let mut at = 0;
        while at < data.len() {
            let phase = (self.received % PERIOD as u64) as usize;
            let n = (data.len() - at).min(CHUNK);
            if data[at..at + n] != self.pattern[phase..phase + n] {
                return Err(format!("corrupt echo near byte {}", self.received));
            }
            self.received += n as u64;
            at += n;
        }
        Ok(())
    }

    /// Decodes what `buf` holds; returns how many bytes it used (a partial line waits).
    fn feed(&mut self, buf: &[u8]) -> Result<usize, String> {
        let mut used = 0;
        while used < buf.len() {
            match self.framing {
                Framing::Done => break,
                Framing::Length(left) | Framing::ChunkData(left) => {
                    let n = left.min((buf.len() - used) as u64) as usize;
                    self.body(&buf[used..used + n])?;
                    used += n;
                    let rest = left - n as u64;
                    self.framing = match (self.framing, rest) {
                        (Framing::Length(_), 0) => Framing::Done,
                        (Framing::Length(_), _) => Framing::Length(rest),
                        (_, 0) => Framing::ChunkLine,
                        _ => Framing::ChunkData(rest),
                    };
                }
                Framing::ChunkLine => {
                    let Some(end) = buf[used..].windows(2).position(|w| w == b"\r\n") else {
                        break;
                    };
                    let line = std::str::from_utf8(&buf[used..used + end])
                        .map_err(|_| "bad chunk line")?;
                    used += end + 2;
                    if line.is_empty() {
                        continue; // the CRLF after a chunk's data
                    }
                    let size = u64::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| format!("bad chunk size {line:?}"))?;
                    // The last chunk; trailers are not expected from an echo.
                    self.framing = if size == 0 {
                        Framing::Done
                    } else {
                        Framing::ChunkData(size)
                    };
                }
            }
        }
        Ok(used)
    }
}

/// Reads the response head's status and framing.
fn parse_head(head: &str) -> Result<Framing, String> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("the server answered {status:?}"));
    }
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            return Ok(Framing::ChunkLine);
        }
        if name.eq_ignore_ascii_case("content-length") {
            return value
                .parse()
                .map(Framing::Length)
                .map_err(|_| format!("bad content-length {value}"));
        }
    }
    Err("the response has neither Content-Length nor chunked framing".into())
}

async fn receive(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    total: u64,
    pattern: &[u8],
) -> Result<(), String> {
    let mut buf = vec![0u8; 4 * CHUNK];
    let mut filled = 0;
    let mut echo: Option<Echo> = None;
    loop {
        if filled == buf.len() {
            return Err("a response line or head does not fit the buffer".into());
        }
        let n = reader
            .read(&mut buf[filled..])
            .await
            .map_err(|e| e.to_string())?;
        if n == 0 {
            let got = echo.as_ref().map_or(0, |e| e.received);
            return Err(format!("the server closed after {got} of {total} bytes"));
        }
        filled += n;
        let mut used = 0;
        if echo.is_none() {
            let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head =
                std::str::from_utf8(&buf[..end]).map_err(|_| "the response head is not text")?;
            echo = Some(Echo {
                pattern,
                received: 0,
                framing: parse_head(head)?,
            });
            used = end + 4;
        }
        let state = echo.as_mut().expect("set above");
        used += state.feed(&buf[used..filled])?;
        buf.copy_within(used..filled, 0);
        filled -= used;
        if matches!(state.framing, Framing::Done) {
            return if state.received == total {
                Ok(())
            } else {
                Err(format!(
                    "the echo ended after {} of {total} bytes",
                    state.received
                ))
            };
        }
    }
}

async fn run(args: Args) -> Result<f64, String> {
    let pattern = pattern();
    let stream = TcpStream::connect(&args.host)
        .await
        .map_err(|e| format!("connect {}: {e}", args.host))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let (reader, writer) = stream.into_split();
    let sending = send(writer, &args, &pattern);
    let receiving = receive(reader, args.bytes, &pattern);
    let (sent, received) = tokio::join!(sending, receiving);
    received?;
    let writer = sent.map_err(|e| format!("sending: {e}"))?;
    let seconds = started.elapsed().as_secs_f64();
    drop(writer);
    Ok(seconds)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(why) => {
            eprintln!("echo_client: {why}\nusage: echo_client --url=http://HOST:PORT/PATH [--bytes=N] [--timeout-ms=MS]");
            std::process::exit(2);
        }
    };
    let bytes = args.bytes;
    let timeout = args.timeout;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(async { tokio::time::timeout(timeout, run(args)).await });
    match outcome {
        Ok(Ok(seconds)) => {
            let mibps = bytes as f64 / (1024.0 * 1024.0) / seconds;
            println!("BENCH_JSON {{\"bytes\":{bytes},\"seconds\":{seconds},\"mibps\":{mibps}}}");
        }
        Ok(Err(why)) => {
            eprintln!("echo_client: {why}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("echo_client: the echo of {bytes} bytes took longer than {timeout:?}");
            std::process::exit(1);
        }
    }
}
