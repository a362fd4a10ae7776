//! Conversions between JavaScript values and core types.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, StatusCode};
use napi::bindgen_prelude::{Buffer, BufferSlice, Unknown};
use napi::{Status, ValueType};
use peregrine_core::{Error, ErrorCode};

/// Buffers at least this large are pinned and sent without a copy. Below it, copying
/// is cheaper than a napi reference plus the hop back to the JS thread to release it:
/// each release is a threadsafe-function call that wakes the JS thread, and in a
/// streamed echo of 32 KiB chunks those wake-ups cost the I/O thread more than copying.
const ZERO_COPY_MIN: usize = 64 * 1024;

/// Core errors reach JS as `Error("<CODE>: <message>")`; the TS package moves the code
/// into `error.code`.
pub fn js_error(e: Error) -> napi::Error {
    napi::Error::new(Status::GenericFailure, e.to_string())
}

fn invalid(message: String) -> napi::Error {
    js_error(Error::new(ErrorCode::InvalidHeader, message))
}

/// Headers arrive packed as `name\nvalue\nname\nvalue`. The TS package has already
/// refused names and values containing CR, LF or NUL, so the packing is unambiguous.
/// Each value is a slice of one copy of the string.
pub fn headers(packed: &str) -> napi::Result<HeaderMap> {
    let packed = Bytes::copy_from_slice(packed.as_bytes());
    let mut map = HeaderMap::new();
    if packed.is_empty() {
        return Ok(map);
    }
    let mut start = 0;
    let mut name: Option<HeaderName> = None;
    let bytes = packed.as_ref();
    for end in separators(bytes).chain(std::iter::once(bytes.len())) {
        let field = &bytes[start..end];
        match name.take() {
            None => {
                name = Some(HeaderName::from_bytes(field).map_err(|_| {
                    invalid(format!(
                        "\"{}\" is not a valid header name",
                        String::from_utf8_lossy(field)
                    ))
                })?);
            }
            Some(header) => {
                let value =
                    HeaderValue::from_maybe_shared(packed.slice(start..end)).map_err(|_| {
                        invalid(format!(
                            "the value of header \"{header}\" has invalid characters"
                        ))
                    })?;
                map.append(header, value);
            }
        }
        start = end + 1;
    }
    match name {
        Some(header) => Err(invalid(format!("header \"{header}\" has no value"))),
        None => Ok(map),
    }
}

/// The positions of the `\n` separators.
fn separators(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter_map(|(i, b)| (*b == b'\n').then_some(i))
}

pub fn status(code: u32) -> napi::Result<StatusCode> {
    final_status(code).map_err(js_error)
}

/// A final status: 200 to 999, or an upgrade's 101.
pub fn final_status(code: u32) -> Result<StatusCode, Error> {
    u16::try_from(code)
        .ok()
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|s| s.as_u16() >= 200 || s.as_u16() == 101)
        .ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidStatus,
                format!("{code} is not a valid final status code (200-999)"),
            )
        })
}

/// A body chunk from JS: a string (encoded to UTF-8 once), a Buffer or Uint8Array,
/// or null/undefined for nothing.
pub fn bytes(value: Unknown<'_>) -> napi::Result<Bytes> {
    match value.get_type()? {
        ValueType::String => {
            let s = unsafe { value.cast::<String>()? };
            Ok(Bytes::from(s))
        }
        ValueType::Undefined | ValueType::Null => Ok(Bytes::new()),
        _ => {
            let slice = unsafe { value.cast::<BufferSlice>()? };
            // A request body chunk written back goes from the core's own bytes.
            if let Some(chunk) = crate::lent::find(&slice) {
                return Ok(chunk);
            }
            if slice.len() < ZERO_COPY_MIN {
                return Ok(Bytes::copy_from_slice(&slice));
            }
            // The napi Buffer holds a reference that keeps the JS memory alive until
            // the socket has sent it; napi-rs releases it on the JS thread.
            let pinned = unsafe { value.cast::<Buffer>()? };
            Ok(Bytes::from_owner(pinned))
        }
    }
}
