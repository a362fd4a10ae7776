//! Decodes response batches, which packages/peregrine/src/native/response-batch.ts
//! writes (the two must agree).
//!
//! A batch is a run of records, one per whole response, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 4 | exchange id |
//! | 2 | status |
//! | 4 | header block length |
//! | 4 | body length, or `u32::MAX` when the body is the next entry of the bodies array |
//! | … | the header block, then the inline body |
//!
//! A header block is a run of fields, each starting with a u16 tag:
//! - below [`FIELD_TABLE_SIZE`]: the field stored at that index of the [`FieldTable`];
//! - [`LITERAL`]: u32 name length, name, u32 value length, value (UTF-8);
//! - [`DEFINE`]: u16 index, then as [`LITERAL`]; the field is also stored at the index,
//!   replacing what was there.
//!
//! The field table exists because most responses repeat the same few fields
//! (`content-type: text/plain; charset=utf-8`): JS writes two bytes instead of
//! encoding the field again, and the binding clones a parsed field instead of parsing
//! and checking it again. JS decides what is indexed and when the table starts over;
//! the binding only follows the definitions, in batch order.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

/// Indexes a field table has; tags below it are references.
pub const FIELD_TABLE_SIZE: usize = 1024;
const LITERAL: u16 = 0xffff;
const DEFINE: u16 = 0xfffe;

const RECORD_HEAD: usize = 14;
const BODY_IN_ARRAY: u32 = u32::MAX;

/// A batch that does not follow the format: a bug on the JS side, never the app's.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// One response of a batch.
pub struct BatchRecord<'a> {
    pub id: u32,
    pub status: u16,
    header_bytes: usize,
    pub body_in_array: bool,
    /// Headers, then the inline body.
    block: &'a [u8],
}

impl<'a> BatchRecord<'a> {
    /// Splits the first record off a batch: (record, the rest). Only the framing is
    /// checked; [`BatchRecord::count_fields`] checks the header block.
    pub fn frame(bytes: &'a [u8]) -> Result<(BatchRecord<'a>, &'a [u8]), Malformed> {
        let head = bytes.get(..RECORD_HEAD).ok_or(Malformed)?;
        let header_bytes = u32_at(head, 6) as usize;
        let body_length = u32_at(head, 10);
        let body_in_array = body_length == BODY_IN_ARRAY;
        let block_length = header_bytes
            + if body_in_array {
                0
            } else {
                body_length as usize
            };
        let rest = &bytes[RECORD_HEAD..];
        if rest.len() < block_length {
            return Err(Malformed);
        }
        let (block, rest) = rest.split_at(block_length);
        let record = BatchRecord {
            id: u32_at(head, 0),
            status: u16::from_le_bytes([head[4], head[5]]),
            header_bytes,
            body_in_array,
            block,
        };
        Ok((record, rest))
    }

    /// Walks the header block: the number of fields, or Malformed when a field is cut
    /// short or mistagged.
    pub fn count_fields(&self) -> Result<usize, Malformed> {
        let mut fields = Fields::new(self.headers());
        let mut count = 0;
        while fields.next().transpose()?.is_some() {
            count += 1;
        }
        Ok(count)
    }

    pub fn headers(&self) -> &'a [u8] {
        &self.block[..self.header_bytes]
    }

    /// The inline body (empty when the body is in the bodies array).
    pub fn body(&self) -> &'a [u8] {
        &self.block[self.header_bytes..]
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// A field of a header block, as written.
#[derive(Debug, PartialEq, Eq)]
enum RawField {
    Indexed(usize),
    /// Byte ranges of the name and the value within the block, and where to store the
    /// field (for [`DEFINE`]).
    Literal {
        name: std::ops::Range<usize>,
        value: std::ops::Range<usize>,
        define: Option<usize>,
    },
}

/// Walks a header block's fields.
struct Fields<'a> {
    block: &'a [u8],
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(block: &'a [u8]) -> Self {
        Fields { block, at: 0 }
    }

    fn take(&mut self, n: usize) -> Result<std::ops::Range<usize>, Malformed> {
        let end = self.at.checked_add(n).ok_or(Malformed)?;
        if end > self.block.len() {
            return Err(Malformed);
        }
        let range = self.at..end;
        self.at = end;
        Ok(range)
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let r = self.take(2)?;
        Ok(u16::from_le_bytes([
            self.block[r.start],
            self.block[r.start + 1],
        ]))
    }

    fn string(&mut self) -> Result<std::ops::Range<usize>, Malformed> {
        let r = self.take(4)?;
        let length = u32_at(self.block, r.start) as usize;
        self.take(length)
    }

    fn next(&mut self) -> Option<Result<RawField, Malformed>> {
        if self.at == self.block.len() {
            return None;
        }
        Some(self.field())
    }

    fn field(&mut self) -> Result<RawField, Malformed> {
        let tag = self.u16()?;
        let define = match tag {
            LITERAL => None,
            DEFINE => {
                let index = usize::from(self.u16()?);
                if index >= FIELD_TABLE_SIZE {
                    return Err(Malformed);
                }
                Some(index)
            }
            index if usize::from(index) < FIELD_TABLE_SIZE => {
                return Ok(RawField::Indexed(usize::from(index)))
            }
            _ => return Err(Malformed),
        };
        let name = self.string()?;
        let value = self.string()?;
        Ok(RawField::Literal {
            name,
            value,
            define,
        })
    }
}

/// A parsed field, or why it was refused (kept, so that every later reference to the
/// index is refused the same way rather than finding an older field there).
type Field = Result<(HeaderName, HeaderValue), String>;

/// The fields JS has indexed, for one JS thread's server handle.
pub struct FieldTable {
    slots: Vec<Option<Field>>,
}

impl Default for FieldTable {
    fn default() -> Self {
        FieldTable {
            slots: (0..FIELD_TABLE_SIZE).map(|_| None).collect(),
        }
    }
}

impl FieldTable {
    /// The headers of one record, as a map (the tests' form of [`FieldTable::decode_into`]).
    #[cfg(test)]
    pub fn decode(&mut self, block: &Bytes) -> Result<http::HeaderMap, String> {
        let mut fields = Vec::new();
        self.decode_into(block, &mut fields)?;
        let mut map = http::HeaderMap::new();
        for (name, value) in fields {
            map.append(name, value);
        }
        Ok(map)
    }

    /// Appends the headers of one record to `out`; `block` is its header block, already
    /// checked by [`BatchRecord::count_fields`]. Literal values are slices of `block`; stored
    /// fields own their bytes, so that the table does not hold a batch's memory. Every
    /// definition in the block is applied, even when a field before it is refused,
    /// because JS counts on them; the first refusal is returned, and then `out` is left
    /// as it was.
    pub fn decode_into(
        &mut self,
        block: &Bytes,
        out: &mut Vec<(HeaderName, HeaderValue)>,
    ) -> Result<(), String> {
        let start = out.len();
        let mut refusal: Option<String> = None;
        let mut fields = Fields::new(block);
        while let Some(raw) = fields.next() {
            let field = match raw {
                Err(Malformed) => Err("a response batch is malformed".to_string()),
                Ok(RawField::Indexed(index)) => self.slots[index]
                    .clone()
                    .unwrap_or_else(|| Err(format!("header field {index} was never defined"))),
                Ok(RawField::Literal {
                    name,
                    value,
                    define: None,
                }) => parse(&block[name], block.slice(value)),
                Ok(RawField::Literal {
                    name,
                    value,
                    define: Some(index),
                }) => {
                    let field = parse(&block[name], Bytes::copy_from_slice(&block[value]));
                    self.slots[index] = Some(field.clone());
                    field
                }
            };
            match field {
                Ok(field) => out.push(field),
                Err(message) => {
                    refusal.get_or_insert(message);
                }
            }
        }
        match refusal {
            Some(message) => {
                out.truncate(start);
                Err(message)
            }
            None => Ok(()),
        }
    }
}

fn parse(name: &[u8], value: Bytes) -> Field {
    let name = HeaderName::from_bytes(name).map_err(|_| {
        format!(
            "\"{}\" is not a valid header name",
            String::from_utf8_lossy(name)
        )
    })?;
    let value = HeaderValue::from_maybe_shared(value)
        .map_err(|_| format!("the value of header \"{name}\" has invalid characters"))?;
    Ok((name, value))
}

/// Batches as response-batch.ts writes them, for the binding's tests.
#[cfg(test)]
pub mod fixtures {
    use super::{DEFINE, LITERAL};

    pub fn literal(out: &mut Vec<u8>, define: Option<u16>, name: &str, value: &str) {
        match define {
            Some(index) => {
                out.extend_from_slice(&DEFINE.to_le_bytes());
                out.extend_from_slice(&index.to_le_bytes());
            }
            None => out.extend_from_slice(&LITERAL.to_le_bytes()),
        }
        for s in [name, value] {
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }

    pub fn indexed(out: &mut Vec<u8>, index: u16) {
        out.extend_from_slice(&index.to_le_bytes());
    }

    pub fn record(id: u32, status: u16, headers: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&status.to_le_bytes());
        out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(headers);
        out.extend_from_slice(body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{indexed, literal, record};
    use super::*;

    fn pairs(map: &http::HeaderMap) -> Vec<(String, String)> {
        map.iter()
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn literals_definitions_and_references_decode_in_order() {
        let mut table = FieldTable::default();
        let mut first = Vec::new();
        literal(&mut first, Some(3), "content-type", "text/plain");
        literal(&mut first, None, "x-once", "1");
        let map = table.decode(&Bytes::from(first)).unwrap();
        assert_eq!(
            pairs(&map),
            [("content-type", "text/plain"), ("x-once", "1")]
                .map(|(n, v)| (n.to_string(), v.to_string()))
        );
        let mut second = Vec::new();
        indexed(&mut second, 3);
        literal(&mut second, Some(3), "vary", "accept");
        indexed(&mut second, 3);
        let map = table.decode(&Bytes::from(second)).unwrap();
        assert_eq!(
            pairs(&map),
            [
                ("content-type", "text/plain"),
                ("vary", "accept"),
                ("vary", "accept")
            ]
            .map(|(n, v)| (n.to_string(), v.to_string()))
        );
    }

    #[test]
    fn a_refused_definition_refuses_its_record_and_every_later_reference() {
        let mut table = FieldTable::default();
        let mut block = Vec::new();
        literal(&mut block, Some(0), "x-bad", "a\u{1}b");
        literal(&mut block, Some(1), "x-good", "ok");
        let refused = table.decode(&Bytes::from(block)).unwrap_err();
        assert!(refused.contains("x-bad"), "{refused}");
        // The definition after the refused field was applied all the same.
        let mut later = Vec::new();
        indexed(&mut later, 1);
        assert_eq!(table.decode(&Bytes::from(later)).unwrap().len(), 1);
        let mut again = Vec::new();
        indexed(&mut again, 0);
        assert!(table.decode(&Bytes::from(again)).is_err());
    }

    #[test]
    fn a_refused_record_leaves_the_shared_list_as_it_was() {
        let mut table = FieldTable::default();
        let mut fields = Vec::new();
        let mut first = Vec::new();
        literal(&mut first, None, "content-type", "text/plain");
        table.decode_into(&Bytes::from(first), &mut fields).unwrap();
        let mut bad = Vec::new();
        literal(&mut bad, None, "x-good", "ok");
        literal(&mut bad, None, "x-bad", "a\u{1}b");
        assert!(table.decode_into(&Bytes::from(bad), &mut fields).is_err());
        let mut third = Vec::new();
        literal(&mut third, None, "vary", "accept");
        table.decode_into(&Bytes::from(third), &mut fields).unwrap();
        let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["content-type", "vary"]);
    }

    #[test]
    fn an_undefined_reference_is_refused() {
        let mut table = FieldTable::default();
        let mut block = Vec::new();
        indexed(&mut block, 7);
        let refused = table.decode(&Bytes::from(block)).unwrap_err();
        assert!(refused.contains("never defined"), "{refused}");
    }

    #[test]
    fn stored_values_do_not_hold_the_batch() {
        let mut table = FieldTable::default();
        let mut block = Vec::new();
        literal(&mut block, Some(0), "etag", "\"abc\"");
        let block = Bytes::from(block);
        table.decode(&block).unwrap();
        // Only the caller holds the block now: the stored value is a copy.
        assert!(block.is_unique());
    }

    /// A record framed and its header block checked, as `answerer::check` does.
    fn split(bytes: &[u8]) -> Result<(BatchRecord<'_>, &[u8]), Malformed> {
        let (record, rest) = BatchRecord::frame(bytes)?;
        record.count_fields()?;
        Ok((record, rest))
    }

    #[test]
    fn split_walks_records_and_refuses_malformed_ones() {
        let mut headers = Vec::new();
        literal(&mut headers, None, "a", "b");
        indexed(&mut headers, 2);
        let mut batch = record(9, 204, &headers, b"hi");
        batch.extend(record(10, 200, &[], b""));
        let (first, rest) = split(&batch).unwrap();
        assert_eq!((first.id, first.status, first.body()), (9, 204, &b"hi"[..]));
        assert_eq!(first.headers(), &headers[..]);
        let (second, rest) = split(rest).unwrap();
        assert_eq!((second.id, second.headers().len(), rest.len()), (10, 0, 0));

        // Each way a header block can be cut short or mistagged.
        let too_high = (FIELD_TABLE_SIZE as u16).to_le_bytes();
        let mut bad_define = DEFINE.to_le_bytes().to_vec();
        bad_define.extend_from_slice(&too_high);
        let mut long_name = LITERAL.to_le_bytes().to_vec();
        long_name.extend_from_slice(&100u32.to_le_bytes());
        long_name.extend_from_slice(b"short");
        for bad in [&too_high[..], &[1u8][..], &bad_define[..], &long_name[..]] {
            assert_eq!(split(&record(1, 200, bad, b"")).err(), Some(Malformed));
        }
        let (_, cut) = split(&batch[..batch.len() - 1]).unwrap();
        assert_eq!(split(cut).err(), Some(Malformed));
    }
}
