//! Request body chunks lent to JavaScript, by address.
//!
//! `drain` hands each body chunk to JS as an external Buffer over the core's own bytes.
//! V8 counts that memory as external and frees it only when it collects the Buffer,
//! and it starts a major collection for every 64 MiB of external memory: in a
//! streamed echo those collections took about a quarter of the server's CPU, and the
//! I/O thread read every chunk into fresh, cold memory.
//!
//! So the binding keeps a clone of every chunk it lends, until the Buffer's finalizer
//! gives it back. That does two things:
//! - a lent chunk written back to the core (`write`, a response body) is sent from
//!   the clone: no copy, and no napi reference pinning the Buffer;
//! - JS can give a chunk back early (`NativeServer.releaseChunk`, when the app's own
//!   request body is relayed into its response and nothing else holds the chunk): the
//!   Buffer is detached, which tells V8 its memory is gone, and the bytes go back to
//!   the allocator as soon as the core has sent them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

use bytes::Bytes;

/// Lent chunks by the address of their first byte. Two lent chunks never share one:
/// each entry keeps its bytes alive until it is removed.
fn lent() -> MutexGuard<'static, HashMap<usize, Bytes>> {
    static LENT: OnceLock<Mutex<HashMap<usize, Bytes>>> = OnceLock::new();
    LENT.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// How many chunks are lent: the lookups skip the lock while there are none.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Records a chunk handed to JS. Empty chunks are not recorded: they have no address
/// of their own.
pub fn lend(chunk: Bytes) {
    if chunk.is_empty() {
        return;
    }
    if lent().insert(chunk.as_ptr() as usize, chunk).is_none() {
        COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

/// The Buffer over `chunk` was collected or detached: forgets the chunk.
pub fn give_back(chunk: &Bytes) {
    if chunk.is_empty() {
        return;
    }
    let mut lent = lent();
    let key = chunk.as_ptr() as usize;
    if lent.get(&key).is_some_and(|c| c.len() == chunk.len()) {
        lent.remove(&key);
        COUNT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The lent chunk whose bytes are exactly `bytes` (same address and length), if any.
pub fn find(bytes: &[u8]) -> Option<Bytes> {
    if bytes.is_empty() || COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    lent()
        .get(&(bytes.as_ptr() as usize))
        .filter(|c| c.len() == bytes.len())
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lent_chunk_is_found_by_its_exact_bytes_until_given_back() {
        let chunk = Bytes::from(vec![7u8; 100]);
        lend(chunk.clone());
        let found = find(&chunk).expect("the lent chunk");
        assert_eq!(found.as_ptr(), chunk.as_ptr());
        // A slice of it is not the chunk: it would be sent whole.
        assert!(find(&chunk[1..]).is_none());
        assert!(find(&chunk[..99]).is_none());
        give_back(&chunk);
        assert!(find(&chunk).is_none());
        // Giving back twice, or what was never lent, changes nothing.
        give_back(&chunk);
        give_back(&Bytes::from(vec![1u8; 3]));
        lend(Bytes::new());
        assert!(find(&[]).is_none());
    }
}
