//! Encodes a batch of bridge events into the tape read by
//! packages/peregrine/src/native/tape.ts.
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
//!
//! A TLS connection's details cross once: a `tls` record, with the exchange id of the
//! request it belongs to, comes just before that connection's first `request` record.
//! The reader keeps them by connection id until `connection closed`.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::{HeaderMap, Version};
use peregrine_core::bridge::Event;

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

const FLAG_BODY_EMPTY: u8 = 1;
const FLAG_HTTPS: u8 = 2;

#[derive(Default)]
pub struct Tape {
    pub bytes: Vec<u8>,
    pub chunks: Vec<Bytes>,
}

impl Tape {
    pub fn with_capacity(events: usize) -> Self {
        Tape {
            bytes: Vec::with_capacity(events * 256),
            chunks: Vec::new(),
        }
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

    pub fn push(&mut self, event: Event) {
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
            Event::BodyError { id, error } => {
                let at = self.begin(BODY_ERROR, id);
                self.u16_str(error.code.as_str().as_bytes());
                self.u16_str(error.message.as_bytes());
                self.finish(at);
            }
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
