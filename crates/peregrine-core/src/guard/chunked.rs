//! Incremental validation of a chunked request body (RFC 9112 §7.1), byte by byte, so
//! that it works however the body is split across reads. Chunk extensions are where
//! chunk-extension smuggling hides (CVE-2025-55315): a lone CR or LF inside one is
//! refused, as is anything else outside the grammar.

use super::head::{is_field_value_byte, is_tchar};
use super::rejection::Rejection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading chunk-size hex digits.
    Size {
        digits: u8,
    },
    /// BWS, which may only lead to `;` (RFC 9112 §7.1.1: BWS ";").
    SemiBws,
    /// After a quoted extension value: `;`, CR or BWS.
    AfterValue,
    /// After `;`: BWS, then the extension name.
    ExtNameStart,
    ExtName,
    /// After a name: BWS, then `=`, `;` or CR.
    AfterExtName,
    /// After `=`: BWS, then a token or a quoted string.
    ExtValueStart,
    ExtToken,
    ExtQuoted,
    ExtQuotedEscape,
    /// Saw CR ending the chunk-size line; LF must follow.
    SizeLineLf,
    Data,
    /// After chunk data: CR then LF.
    DataCr,
    DataLf,
    /// After the last chunk: trailer fields, then the empty line.
    TrailerLineStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// CR of the final empty line seen; LF must follow.
    FinalLf,
    Done,
}

pub struct ChunkedValidator {
    state: State,
    size: u64,
    remaining: u64,
    trailer_bytes: usize,
    max_trailer_bytes: usize,
}

impl ChunkedValidator {
    pub fn new(max_trailer_bytes: usize) -> Self {
        ChunkedValidator {
            state: State::Size { digits: 0 },
            size: 0,
            remaining: 0,
            trailer_bytes: 0,
            max_trailer_bytes,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Validates `bytes`, which continue the body. Returns how many bytes belong to the
    /// body: all of them, or fewer when the body ended inside `bytes` (what follows is
    /// the next request).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<usize, Rejection> {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == State::Done {
                return Ok(i);
            }
            if self.state == State::Data {
                // Skip chunk data in one step.
                let take = (bytes.len() - i).min(self.remaining as usize);
                i += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            self.step(bytes[i])?;
            i += 1;
        }
        Ok(i)
    }

    fn step(&mut self, b: u8) -> Result<(), Rejection> {
        use State::*;
        let bad = Err(Rejection::InvalidChunk);
        self.state = match self.state {
            Size { digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    // 16 hex digits fill a u64; a 17th would overflow.
                    if digits == 16 {
                        return bad;
                    }
                    self.size = (self.size << 4) | u64::from((b as char).to_digit(16).unwrap_or(0));
                    Size { digits: digits + 1 }
                }
                _ if digits == 0 => return bad,
                b'\r' => SizeLineLf,
                b';' => ExtNameStart,
                b' ' | b'\t' => SemiBws,
                _ => return bad,
            },
            SemiBws => match b {
                b' ' | b'\t' => SemiBws,
                b';' => ExtNameStart,
                _ => return bad,
            },
            AfterValue => match b {
                b' ' | b'\t' => SemiBws,
                b';' => ExtNameStart,
                b'\r' => SizeLineLf,
                _ => return bad,
            },
            ExtNameStart => match b {
                b' ' | b'\t' => ExtNameStart,
                _ if is_tchar(b) => ExtName,
                _ => return bad,
            },
            ExtName => match b {
                _ if is_tchar(b) => ExtName,
                b' ' | b'\t' => AfterExtName,
                b'=' => ExtValueStart,
                b';' => ExtNameStart,
                b'\r' => SizeLineLf,
                _ => return bad,
            },
            AfterExtName => match b {
                b' ' | b'\t' => AfterExtName,
                b'=' => ExtValueStart,
                b';' => ExtNameStart,
                _ => return bad,
            },
            ExtValueStart => match b {
                b' ' | b'\t' => ExtValueStart,
                b'"' => ExtQuoted,
                _ if is_tchar(b) => ExtToken,
                _ => return bad,
            },
            ExtToken => match b {
                _ if is_tchar(b) => ExtToken,
                b' ' | b'\t' => SemiBws,
                b';' => ExtNameStart,
                b'\r' => SizeLineLf,
                _ => return bad,
            },
            ExtQuoted => match b {
                b'"' => AfterValue,
                b'\\' => ExtQuotedEscape,
                b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff => ExtQuoted,
                _ => return bad,
            },
            ExtQuotedEscape => match b {
                b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => ExtQuoted,
                _ => return bad,
            },
            SizeLineLf => match b {
                b'\n' if self.size == 0 => TrailerLineStart,
                b'\n' => {
                    self.remaining = self.size;
                    self.size = 0;
                    Data
                }
                _ => return bad,
            },
            Data => unreachable!("data is consumed in feed"),
            DataCr => match b {
                b'\r' => DataLf,
                _ => return bad,
            },
            DataLf => match b {
                b'\n' => Size { digits: 0 },
                _ => return bad,
            },
            TrailerLineStart => match b {
                b'\r' => FinalLf,
                _ if is_tchar(b) => {
                    self.count_trailer()?;
                    TrailerName
                }
                _ => return bad,
            },
            TrailerName => {
                self.count_trailer()?;
                match b {
                    _ if is_tchar(b) => TrailerName,
                    b':' => TrailerValue,
                    _ => return bad,
                }
            }
            TrailerValue => {
                self.count_trailer()?;
                match b {
                    b'\r' => TrailerLf,
                    _ if is_field_value_byte(b) => TrailerValue,
                    _ => return bad,
                }
            }
            TrailerLf => match b {
                b'\n' => TrailerLineStart,
                _ => return bad,
            },
            FinalLf => match b {
                b'\n' => Done,
                _ => return bad,
            },
            Done => Done,
        };
        Ok(())
    }

    fn count_trailer(&mut self) -> Result<(), Rejection> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.max_trailer_bytes {
            return Err(Rejection::HeadersTooLarge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(body: &[u8]) -> Result<usize, Rejection> {
        let mut v = ChunkedValidator::new(1024);
        v.feed(body)
    }

    #[test]
    fn accepts_valid_bodies_however_they_are_split() {
        let body =
            b"5;a=b;c=\"q\\\"x\"\r\nhello\r\n6 ; ext\r\n world\r\n0\r\nX-T: 1\r\n\r\nGET /next";
        let body_len = body.len() - b"GET /next".len();
        assert_eq!(run(body), Ok(body_len));
        for split in 1..body_len {
            let mut v = ChunkedValidator::new(1024);
            let first = v.feed(&body[..split]).unwrap();
            assert_eq!(first, split);
            assert_eq!(
                v.feed(&body[split..]).unwrap(),
                body_len - split,
                "split at {split}"
            );
            assert!(v.is_done());
        }
        assert_eq!(run(b"A\r\n0123456789\r\n0\r\n\r\n"), Ok(20));
    }

    #[test]
    fn rejects_malformed_chunks() {
        for body in [
            &b"x\r\nhello\r\n0\r\n\r\n"[..],
            b"\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5;a\nb\r\nhello\r\n0\r\n\r\n",
            b"5;a\rb\r\nhello\r\n0\r\n\r\n",
            b"5;\"q\"\r\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloX\r\n0\r\n\r\n",
            b"5\r\nhello\n0\r\n\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"11111111111111111\r\n",
            b"5 \r\nhello\r\n0\r\n\r\n",
            b"5;a \r\nhello\r\n0\r\n\r\n",
            b"0\r\nX : 1\r\n\r\n",
            b"0\r\n\n",
        ] {
            assert_eq!(
                run(body),
                Err(Rejection::InvalidChunk),
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
