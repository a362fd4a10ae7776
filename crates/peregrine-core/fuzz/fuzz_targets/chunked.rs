//! `guard::chunked::ChunkedValidator`, incremental chunked-body validation. The input is
//! a body (and whatever follows it). It is fed whole, one byte at a time and split at
//! pseudo-random points: every way must reach the same verdict at the same byte. The
//! verdict must also match a plain, non-incremental reading of RFC 9112 §7.1.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peregrine_core::guard::chunked::ChunkedValidator;
use peregrine_core::guard::head::{is_field_value_byte, is_tchar};
use peregrine_core::Rejection;

/// The trailer limit the guard passes (maxRequestHeadersTotalSize), and a tiny one.
const MAX_TRAILERS: [usize; 2] = [32768, 8];

/// What feeding a body produced: bytes consumed (or the refusal) and whether it ended.
type Outcome = (Result<usize, Rejection>, bool);

fuzz_target!(|data: &[u8]| {
    for max_trailer in MAX_TRAILERS {
        let whole = feed(data, &[data.len()], max_trailer);
        if let (Ok(consumed), done) = whole {
            assert!(consumed <= data.len(), "consumed more than it was given");
            assert!(
                done || consumed == data.len(),
                "stopped early without ending"
            );
        }
        if data.len() <= 2048 {
            let single = vec![1; data.len()];
            assert_eq!(feed(data, &single, max_trailer), whole, "byte by byte");
        }
        let mut seed = fnv(data);
        for _ in 0..4 {
            let pieces = random_split(data.len(), &mut seed);
            assert_eq!(feed(data, &pieces, max_trailer), whole, "split {pieces:?}");
        }
        compare_with_reference(data, max_trailer, whole);
    }
});

/// Feeds `data` in pieces of the given lengths, as reads would arrive.
fn feed(data: &[u8], pieces: &[usize], max_trailer: usize) -> Outcome {
    let mut validator = ChunkedValidator::new(max_trailer);
    let mut consumed = 0;
    let mut at = 0;
    for &len in pieces {
        let piece = &data[at..at + len];
        at += len;
        match validator.feed(piece) {
            Ok(n) => {
                assert!(n <= piece.len(), "consumed more than it was given");
                consumed += n;
                if n < piece.len() {
                    assert!(validator.is_done(), "left bytes without ending");
                }
            }
            Err(reason) => return (Err(reason), validator.is_done()),
        }
        if validator.is_done() {
            // Once the body has ended, nothing more belongs to it.
            assert_eq!(validator.feed(&data[at..]), Ok(0));
            assert_eq!(validator.feed(b"0\r\n\r\n"), Ok(0));
            break;
        }
    }
    (Ok(consumed), validator.is_done())
}

fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn random_split(len: usize, seed: &mut u64) -> Vec<usize> {
    let mut pieces = Vec::new();
    let mut left = len;
    while left > 0 {
        // xorshift64
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let n = (*seed % 8 + 1).min(left as u64) as usize;
        let n = if (*seed).is_multiple_of(5) { left } else { n };
        pieces.push(n);
        left -= n;
    }
    if pieces.is_empty() {
        pieces.push(0);
    }
    pieces
}

/// The reference reading of a chunked body.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// The body ends here.
    Done(usize),
    Invalid,
    /// Valid so far, but a line or the data is not complete yet.
    Incomplete,
}

fn compare_with_reference(data: &[u8], max_trailer: usize, whole: Outcome) {
    match (reference(data, max_trailer), whole) {
        (Verdict::Done(n), outcome) => assert_eq!(outcome, (Ok(n), true), "reference ends at {n}"),
        (Verdict::Invalid, (result, _)) => assert!(result.is_err(), "reference refuses"),
        // The validator may refuse a line before its CRLF arrives.
        (Verdict::Incomplete, (Ok(n), done)) => assert!(!done && n == data.len()),
        (Verdict::Incomplete, (Err(_), _)) => {}
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
}

fn reference(data: &[u8], max_trailer: usize) -> Verdict {
    let mut at = 0;
    loop {
        let Some(eol) = find_crlf(&data[at..]) else {
            return Verdict::Incomplete;
        };
        let Some(size) = chunk_size_line(&data[at..at + eol]) else {
            return Verdict::Invalid;
        };
        at += eol + 2;
        if size == 0 {
            return trailers(data, at, max_trailer);
        }
        let left = (data.len() - at) as u64;
        if size > left {
            return Verdict::Incomplete;
        }
        at += size as usize;
        for expected in *b"\r\n" {
            match data.get(at) {
                None => return Verdict::Incomplete,
                Some(b) if *b != expected => return Verdict::Invalid,
                Some(_) => at += 1,
            }
        }
    }
}

/// chunk-size [ chunk-ext ], without its CRLF; 16 hex digits at most (a u64).
/// chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] )
fn chunk_size_line(line: &[u8]) -> Option<u64> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 || digits > 16 {
        return None;
    }
    let size = u64::from_str_radix(std::str::from_utf8(&line[..digits]).ok()?, 16).ok()?;
    let mut at = digits;
    let bws = |at: &mut usize| {
        while matches!(line.get(*at), Some(b' ' | b'\t')) {
            *at += 1;
        }
    };
    let token = |at: &mut usize| {
        let start = *at;
        while line.get(*at).is_some_and(|b| is_tchar(*b)) {
            *at += 1;
        }
        *at > start
    };
    while at < line.len() {
        bws(&mut at);
        if line.get(at) != Some(&b';') {
            return None;
        }
        at += 1;
        bws(&mut at);
        if !token(&mut at) {
            return None;
        }
        let after_name = at;
        bws(&mut at);
        if line.get(at) != Some(&b'=') {
            at = after_name;
            continue;
        }
        at += 1;
        bws(&mut at);
        if line.get(at) == Some(&b'"') {
            at = quoted_string_end(line, at + 1)?;
        } else if !token(&mut at) {
            return None;
        }
    }
    Some(size)
}

/// Just past the closing quote of a quoted-string whose content starts at `at`.
fn quoted_string_end(line: &[u8], mut at: usize) -> Option<usize> {
    let qdtext = |b: u8| matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..);
    loop {
        match *line.get(at)? {
            b'"' => return Some(at + 1),
            b'\\' => {
                let escaped = *line.get(at + 1)?;
                if !(escaped == b'\t' || escaped == b' ' || escaped >= 0x21 && escaped != 0x7f) {
                    return None;
                }
                at += 2;
            }
            b if qdtext(b) => at += 1,
            _ => return None,
        }
    }
}

/// trailer-section CRLF: `name ":" value` lines, where every byte of a line and its CR
/// counts against `max_trailer`.
fn trailers(data: &[u8], mut at: usize, max_trailer: usize) -> Verdict {
    let mut counted = 0;
    loop {
        let Some(eol) = find_crlf(&data[at..]) else {
            return Verdict::Incomplete;
        };
        let line = &data[at..at + eol];
        at += eol + 2;
        if line.is_empty() {
            return Verdict::Done(at);
        }
        counted += line.len() + 1;
        if counted > max_trailer {
            return Verdict::Invalid;
        }
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            return Verdict::Invalid;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.is_empty()
            || !name.iter().all(|b| is_tchar(*b))
            || !value.iter().all(|b| is_field_value_byte(*b))
        {
            return Verdict::Invalid;
        }
    }
}
