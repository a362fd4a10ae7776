//! Encodes a batch of bridge events into the tape read by
//! packages/peregrine/src/native/tape.ts. The tape is the bridge's event queue
//! ([`EventQueue`]): each event is encoded as the I/O thread pushes it, where the
//! request's head is still in cache and is freed by the thread that allocated it, and
//! the JS thread's `drain()` only hands the bytes over (bench/README.md).
//!
//! Every record starts with `u8 kind, u32 exchange id, u32 payload length`, all
//! little-endian, so the reader can skip a record without parsing it.
//!
//! | kind | payload |
//! |---|---|
//! | 1 request | u8 version (10, 11, 20), u8 flags (1 body empty, 2 https), f64 connection id, f64 content length (-1 unknown), u32 HTTP/2 stream id (0 when none), remote and local address (u8 family 4/6, or 0 for a unix socket peer, 16 bytes, u16 port each), u16+method, u32+target, u16+authority, u16 header count, per header u16+name u32+value |
//! | 2 data | u32 index into the batch's chunk array |
//! | 3 trailers | u16 count, per header u16+name u32+value |
//! | 4 end | none |
//! | 5 body error | u16+code, u16+message |
//! | 6 write ready | none |
//! | 7 aborted | none |
//! | 8 stopped | none (id 0): the server has closed every connection |
//! | 9 tls | f64 connection id, u16+protocol, u16+cipher suite, u16+ALPN, u16+server name, u32+client certificate (DER, empty when none) |
//! | 10 connection closed | f64 connection id (id 0) |
//! | 11 rejected | u16 status (0: closed at accept), u16+reason code, f64 connection id, remote address (as in requests) (id 0) |
//! | 12 refused | u16+code, u16+message: a response the app handed over was not sent, and its exchange was aborted |
//!
//! A TLS connection's details cross once: a `tls` record, with the exchange id of the
//! request it belongs to, comes just before that connection's first `request` record.
//! The reader keeps them by connection id until `connection closed`.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{HeaderMap, Version};
use peregrine_core::bridge::{Event, EventQueue};

pub const REQUEST: u8 = 1;
pub const DATA: u8 = 2;
pub const TRAILERS: u8 = 3;
pub const END: u8 = 4;
pub const BODY_ERROR: u8 = 5;
pub const WRITE_READY: u8 = 6;
pub const ABORTED: u8 = 7;
pub const STOPPED: u8 = 8;
pub const TLS: u8 = 9;
pub const CONNECTION_CLOSED: u8 = 10;
pub const REJECTED: u8 = 11;
pub const REFUSED: u8 = 12;

const FLAG_BODY_EMPTY: u8 = 1;
const FLAG_HTTPS: u8 = 2;

/// The most room a new tape reserves at its first event: a few hundred requests'.
const RESERVED_BYTES_MAX: usize = 128 * 1024;
/// The least: a couple of requests' worth. Batches of one event (a write-ready, a
/// body chunk's record) are common, and each batch's bytes are a new allocation.
const RESERVED_BYTES_MIN: usize = 512;
/// The most body chunks' room a recycled tape keeps.
const RECYCLED_CHUNKS_MAX: usize = 1024;

#[derive(Default)]
pub struct Tape {
    bytes: Vec<u8>,
    pub chunks: Vec<Bytes>,
    events: usize,
    /// The length of the last batch's bytes, which the next one reserves room for.
    expected: usize,
}

impl EventQueue for Tape {
    fn push(&mut self, event: Event) {
        if self.bytes.capacity() == 0 {
            // The bytes go to JS with each batch (take_bytes), so each batch allocates
            // them anew: once, at about the last batch's size, rather than by doubling.
            self.bytes
                .reserve(self.expected.clamp(RESERVED_BYTES_MIN, RESERVED_BYTES_MAX));
        }
        self.events += 1;
        self.encode(event);
    }

    fn len(&self) -> usize {
        self.events
    }

    fn reset(&mut self) -> bool {
        self.bytes.clear();
        self.chunks.clear();
        self.events = 0;
        self.bytes.capacity() <= RESERVED_BYTES_MAX && self.chunks.capacity() <= RECYCLED_CHUNKS_MAX
    }
}

impl Tape {
    /// The encoded records, to hand to JS without a copy; the next batch reserves room
    /// for as many bytes.
    pub fn take_bytes(&mut self) -> Vec<u8> {
        self.expected = self.bytes.len();
        std::mem::take(&mut self.bytes)
    }

    /// Writes a record header and returns where its length goes.
    fn begin(&mut self, kind: u8, id: u32) -> usize {
        self.bytes.push(kind);
        self.bytes.extend_from_slice(&id.to_le_bytes());
        let at = self.bytes.len();
        self.bytes.extend_from_slice(&0u32.to_le_bytes());
        at
    }

    fn finish(&mut self, at: usize) {
        let len = (self.bytes.len() - at - 4) as u32;
        self.bytes[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    fn empty_record(&mut self, kind: u8, id: u32) {
        let at = self.begin(kind, id);
        self.finish(at);
    }

    /// A body error or a refusal: the error's code and message.
    fn error_record(&mut self, kind: u8, id: u32, error: &peregrine_core::Error) {
        let at = self.begin(kind, id);
        self.u16_str(error.code.as_str().as_bytes());
        self.u16_str(error.message.as_bytes());
        self.finish(at);
    }

    fn u16_str(&mut self, s: &[u8]) {
        // Header names, methods and authorities are far below 64 KiB: hyper's own
        // buffer limits reject anything larger before it gets here.
        let len = s.len().min(u16::MAX as usize);
        self.bytes.extend_from_slice(&(len as u16).to_le_bytes());
        self.bytes.extend_from_slice(&s[..len]);
    }

    fn u32_str(&mut self, s: &[u8]) {
        self.bytes
            .extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(s);
    }

    fn address(&mut self, addr: SocketAddr) {
        if addr == peregrine_core::transport::UNIX_PEER {
            self.bytes.push(0);
            self.bytes.extend_from_slice(&[0; 18]);
            return;
        }
        match addr.ip() {
            IpAddr::V4(ip) => {
                self.bytes.push(4);
                self.bytes.extend_from_slice(&ip.octets());
                self.bytes.extend_from_slice(&[0; 12]);
            }
            IpAddr::V6(ip) => {
                self.bytes.push(6);
                self.bytes.extend_from_slice(&ip.octets());
            }
        }
        self.bytes.extend_from_slice(&addr.port().to_le_bytes());
    }

    fn headers(&mut self, headers: &HeaderMap) {
        self.bytes
            .extend_from_slice(&(headers.len().min(u16::MAX as usize) as u16).to_le_bytes());
        for (name, value) in headers.iter().take(u16::MAX as usize) {
            self.u16_str(name.as_str().as_bytes());
            self.u32_str(value.as_bytes());
        }
    }

    fn encode(&mut self, event: Event) {
        match event {
            Event::Request {
                id,
                head,
                body_empty,
                first_on_connection,
            } => {
                if first_on_connection {
                    if let Some(tls) = &head.connection.tls {
                        let at = self.begin(TLS, id);
                        self.bytes
                            .extend_from_slice(&(head.connection.id as f64).to_le_bytes());
                        self.u16_str(tls.protocol.as_bytes());
                        self.u16_str(tls.cipher_suite.as_bytes());
                        self.u16_str(tls.alpn_protocol.as_deref().unwrap_or("").as_bytes());
                        self.u16_str(tls.server_name.as_deref().unwrap_or("").as_bytes());
                        self.u32_str(tls.client_certificate.as_deref().unwrap_or(&[]));
                        self.finish(at);
                    }
                }
                let at = self.begin(REQUEST, id);
                let parts = &head.parts;
                self.bytes.push(match parts.version {
                    Version::HTTP_10 | Version::HTTP_09 => 10,
                    Version::HTTP_2 => 20,
                    Version::HTTP_3 => 30,
                    _ => 11,
                });
                let mut flags = 0;
                if body_empty {
                    flags |= FLAG_BODY_EMPTY;
                }
                if head.connection.scheme == peregrine_core::Scheme::Https {
                    flags |= FLAG_HTTPS;
                }
                self.bytes.push(flags);
                self.bytes
                    .extend_from_slice(&(head.connection.id as f64).to_le_bytes());
                let content_length = parts
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .map_or(-1.0, |n| n as f64);
                self.bytes.extend_from_slice(&content_length.to_le_bytes());
                let stream_id = head.stream_id.unwrap_or(0);
                self.bytes.extend_from_slice(&stream_id.to_le_bytes());
                self.address(head.connection.remote);
                self.address(head.connection.local);
                self.u16_str(parts.method.as_str().as_bytes());
                let target = parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .as_bytes();
                self.u32_str(target);
                let authority = parts.uri.authority().map_or("", |a| a.as_str());
                self.u16_str(authority.as_bytes());
                self.headers(&parts.headers);
                self.finish(at);
            }
            Event::Data { id, data } => {
                let at = self.begin(DATA, id);
                self.bytes
                    .extend_from_slice(&(self.chunks.len() as u32).to_le_bytes());
                self.chunks.push(data);
                self.finish(at);
            }
            Event::Trailers { id, trailers } => {
                let at = self.begin(TRAILERS, id);
                self.headers(&trailers);
                self.finish(at);
            }
            Event::End { id } => self.empty_record(END, id),
            Event::BodyError { id, error } => self.error_record(BODY_ERROR, id, &error),
            Event::Refused { id, error } => self.error_record(REFUSED, id, &error),
            Event::WriteReady { id } => self.empty_record(WRITE_READY, id),
            Event::Aborted { id } => self.empty_record(ABORTED, id),
            Event::ConnectionClosed { connection_id } => {
                let at = self.begin(CONNECTION_CLOSED, 0);
                self.bytes
                    .extend_from_slice(&(connection_id as f64).to_le_bytes());
                self.finish(at);
            }
            Event::Rejected {
                reason,
                connection_id,
                remote,
            } => {
                let at = self.begin(REJECTED, 0);
                self.bytes.extend_from_slice(&reason.status().to_le_bytes());
                self.u16_str(reason.code().as_bytes());
                self.bytes
                    .extend_from_slice(&(connection_id as f64).to_le_bytes());
                self.address(remote);
                self.finish(at);
            }
        }
    }

    pub fn stopped(&mut self) {
        self.empty_record(STOPPED, 0);
    }
}

/// Reading tapes back, for the binding's tests.
#[cfg(test)]
pub mod fixtures {
    /// The records' kinds and ids, walked by their length fields as tape.ts does.
    pub fn records(bytes: &[u8]) -> Vec<(u8, u32)> {
        let mut found = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let id = u32::from_le_bytes(rest[1..5].try_into().unwrap());
            let len = u32::from_le_bytes(rest[5..9].try_into().unwrap()) as usize;
            found.push((rest[0], id));
            rest = &rest[9 + len..];
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::records;
    use std::sync::Arc;

    use peregrine_core::{ConnectionInfo, RequestHead, Scheme};

    use super::*;

    fn request(id: u32, target: &str) -> Event {
        let (parts, ()) = http::Request::get(target)
            .header("host", "example.test")
            .body(())
            .unwrap()
            .into_parts();
        let addr = "127.0.0.1:5000".parse().unwrap();
        Event::Request {
            id,
            head: RequestHead {
                parts,
                connection: Arc::new(ConnectionInfo::new(7, addr, addr, Scheme::Http, None)),
                stream_id: None,
            },
            body_empty: true,
            first_on_connection: false,
        }
    }

    #[test]
    fn events_are_encoded_as_they_are_queued() {
        let mut tape = Tape::default();
        assert!(tape.is_empty());
        tape.push(request(1, "/a?b=c"));
        tape.push(Event::Data {
            id: 1,
            data: Bytes::from_static(b"chunk"),
        });
        tape.push(Event::End { id: 1 });
        assert_eq!(tape.len(), 3);
        assert_eq!(tape.chunks, [Bytes::from_static(b"chunk")]);
        let bytes = tape.take_bytes();
        assert_eq!(records(&bytes), [(REQUEST, 1), (DATA, 1), (END, 1)]);
        let target = b"/a?b=c";
        assert!(bytes.windows(target.len()).any(|w| w == target));
    }

    #[test]
    fn a_recycled_tape_starts_empty_and_reserves_for_the_last_batch() {
        let mut tape = Tape::default();
        for id in 0..100 {
            tape.push(request(id, "/"));
        }
        let last = tape.take_bytes().len();
        assert!(tape.reset());
        assert!(tape.is_empty() && tape.chunks.is_empty());
        tape.push(Event::Aborted { id: 5 });
        assert!(tape.bytes.capacity() >= last.max(RESERVED_BYTES_MIN));
        assert_eq!(records(&tape.take_bytes()), [(ABORTED, 5)]);
    }

    #[test]
    fn a_tape_that_grew_past_its_reserve_is_not_kept() {
        let mut tape = Tape::default();
        tape.push(Event::Aborted { id: 1 });
        tape.bytes.reserve(RESERVED_BYTES_MAX + 1);
        assert!(!tape.reset());
        let mut chunks = Tape::default();
        chunks.chunks.reserve(RECYCLED_CHUNKS_MAX + 1);
        assert!(!chunks.reset());
    }
}
