//! The edge guard's incremental head scanning and framing (`guard/mod.rs`), through
//! `guard::replay`, which drives a real `GuardedIo` one socket read at a time. The input
//! is a connection's bytes (pipelined requests and bodies).
//!
//! Invariants:
//! - hyper only ever reads a prefix of the input, then perhaps the stand-in;
//! - fed in one read, the guard lets through exactly what a plain reading does (each
//!   head validated whole, bodies framed as the head says) and puts the stand-in at the
//!   refused request's position;
//! - however the bytes are split across reads, a connection is refused iff it is refused
//!   when they arrive at once, and otherwise hyper reads the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;

mod split;
use peregrine_core::guard::chunked::ChunkedValidator;
use peregrine_core::guard::head::{skip_leading_empty_lines, validate, Framing, HeadLimits};
use peregrine_core::guard::replay::{replay, Replay, STAND_IN};
use split::{fnv, random_split};

const LIMITS: [HeadLimits; 2] = [
    HeadLimits {
        max_request_line: 8192,
        max_header_count: 100,
        max_headers_total: 32768,
    },
    HeadLimits {
        max_request_line: 32,
        max_header_count: 4,
        max_headers_total: 96,
    },
];

fuzz_target!(|data: &[u8]| {
    // One read is at most the guard's 16 KiB read size.
    if data.len() > 16 * 1024 {
        return;
    }
    for limits in LIMITS {
        let whole = replay(&[data], limits);
        check_against_model(data, limits, &whole);

        let mut seed = fnv(data);
        let mut splits = vec![random_split(data, &mut seed), random_split(data, &mut seed)];
        if data.len() <= 1024 {
            splits.push(data.chunks(1).collect());
        }
        for reads in splits {
            let split = replay(&reads, limits);
            compare_split(data, &whole, &split, reads.len());
        }
    }
});

/// The bytes hyper read before the stand-in, if any.
fn passed(replay: &Replay) -> &[u8] {
    match replay.refusal {
        Some(_) => replay
            .read
            .strip_suffix(STAND_IN)
            .expect("a refusal without its stand-in at the end"),
        None => &replay.read,
    }
}

fn check_common(data: &[u8], replay: &Replay) {
    assert!(data.starts_with(passed(replay)), "hyper read altered bytes");
    assert!(replay.rejections.len() <= 1, "refused twice");
    if let Some((_, reason)) = replay.refusal {
        assert_eq!(replay.rejections, [reason]);
    }
}

/// How a plain, non-incremental reading ends.
#[derive(Debug)]
enum Model {
    /// Everything is valid (trailing bytes may be an unfinished request).
    Clean,
    /// A request is refused; that many requests came before it.
    Refused(u64),
    /// The input ends inside a head that is not complete; the guard may refuse it early.
    OpenHead(u64),
}

/// Reads `data` request by request: returns how many bytes hyper gets and how it ends.
fn model(data: &[u8], limits: HeadLimits) -> (usize, Model) {
    let mut at = 0;
    let mut requests = 0;
    loop {
        if at == data.len() {
            return (at, Model::Clean);
        }
        let rest = &data[at..];
        let start = skip_leading_empty_lines(rest);
        let Some(end) = rest[start..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| start + p + 4)
        else {
            return (at, Model::OpenHead(requests));
        };
        let head = &rest[..end];
        let bare = head.iter().enumerate().any(|(i, &b)| {
            (b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
                || (b == b'\r' && head.get(i + 1) != Some(&b'\n'))
        });
        if bare {
            return (at, Model::Refused(requests));
        }
        let Ok(parsed) = validate(head, &limits) else {
            return (at, Model::Refused(requests));
        };
        if parsed.upgrade {
            return (data.len(), Model::Clean);
        }
        let body = &rest[end..];
        let body_len = match parsed.framing {
            Framing::None => 0,
            Framing::Length(n) if n <= body.len() as u64 => n as usize,
            Framing::Length(_) => return (data.len(), Model::Clean),
            Framing::Chunked => {
                let mut validator = ChunkedValidator::new(limits.max_headers_total);
                match validator.feed(body) {
                    Ok(n) if validator.is_done() => n,
                    Ok(_) => return (data.len(), Model::Clean),
                    Err(_) => return (at, Model::Refused(requests)),
                }
            }
        };
        at += end + body_len;
        requests += 1;
    }
}

fn check_against_model(data: &[u8], limits: HeadLimits, whole: &Replay) {
    check_common(data, whole);
    let (len, model) = model(data, limits);
    assert_eq!(
        passed(whole).len(),
        len,
        "hyper read {len} bytes in the model"
    );
    match model {
        Model::Clean => assert!(whole.rejections.is_empty(), "refused a valid connection"),
        Model::Refused(requests) => {
            assert_eq!(
                whole.refusal.map(|r| r.0),
                Some(requests),
                "stand-in position"
            )
        }
        Model::OpenHead(requests) => {
            if let Some((at, _)) = whole.refusal {
                assert_eq!(at, requests, "stand-in position");
            }
        }
    }
}

fn compare_split(data: &[u8], whole: &Replay, split: &Replay, reads: usize) {
    check_common(data, split);
    assert_eq!(
        whole.rejections.is_empty(),
        split.rejections.is_empty(),
        "refused in one read but not in {reads}, or the other way: {whole:?} / {split:?}"
    );
    if whole.rejections.is_empty() {
        assert_eq!(
            whole.read, split.read,
            "split reads changed what hyper read"
        );
    } else {
        // Split, the head of a request with a bad chunked body may already have gone to
        // hyper; then the body is cut off rather than answered by a stand-in.
        assert!(passed(split).starts_with(passed(whole)));
        if let (Some(a), Some(b)) = (whole.refusal, split.refusal) {
            assert_eq!(a.0, b.0, "stand-in position");
        }
    }
}
