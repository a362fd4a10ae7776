//! The HTTP/2 frame watch's reader (`guard/h2_frames.rs`), which follows frame headers
//! through a connection's bytes to count SETTINGS and PING frames and the connection
//! window. The input is the bytes a client sends after the preface (and, in a second
//! pass, with a 24-byte preface in front).
//!
//! Invariants:
//! - it never panics, whatever the bytes;
//! - fed in one read, it finds exactly the headers a plain walk of the frames finds
//!   (each 9-byte header, then its payload skipped), and the increment of each complete
//!   stream-0 WINDOW_UPDATE with a 4-byte payload;
//! - however the bytes are split across reads, it finds the same things.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod split;
use peregrine_core::guard::h2_frames::{scan_frames, FrameEvent};
use split::{fnv, random_split};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let whole = scan_frames(&[data], false);
    assert_eq!(whole, model(data), "one read differs from the plain walk");

    let mut seed = fnv(data);
    for reads in [random_split(data, &mut seed), data.chunks(1).collect()] {
        assert_eq!(
            scan_frames(&reads, false),
            whole,
            "split reads changed what was found"
        );
    }

    let mut with_preface = PREFACE.to_vec();
    with_preface.extend_from_slice(data);
    let reads = random_split(&with_preface, &mut seed);
    assert_eq!(
        scan_frames(&reads, true),
        whole,
        "the preface was not skipped"
    );
});

/// Walks the frames of `data` in one go.
fn model(data: &[u8]) -> Vec<FrameEvent> {
    let mut events = Vec::new();
    let mut at = 0;
    while data.len() - at >= 9 {
        let h = &data[at..at + 9];
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        events.push(FrameEvent::Header {
            kind: h[3],
            flags: h[4],
            len,
        });
        let payload = at + 9;
        if h[3] == 0x8 && stream == 0 && len == 4 && data.len() >= payload + 4 {
            let p = &data[payload..payload + 4];
            events.push(FrameEvent::WindowUpdate(u32::from_be_bytes([
                p[0], p[1], p[2], p[3],
            ])));
        }
        at = payload.saturating_add(len as usize);
        if at > data.len() {
            break;
        }
    }
    events
}
