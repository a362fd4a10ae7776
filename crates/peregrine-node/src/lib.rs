//! The napi-rs binding. It converts JavaScript values to and from peregrine-core types
//! and forwards calls; HTTP logic lives in the core, API design in the TS package.
//!
//! Requests reach JavaScript as a "tape": one Buffer per batch in which every event is
//! a small binary record (see `tape.rs` and packages/peregrine/src/native/tape.ts,
//! which must agree). Strings inside it are decoded by JS only when the app reads them.

mod answerer;
mod batch;
mod bench;
mod convert;
mod lent;
mod pool;
mod server;
mod tape;

/// The binding's Rust code allocates with mimalloc rather than the system's malloc.
/// Every request allocates and frees on two threads (parsed on an I/O thread, its
/// record and response made on the JS thread), and glibc's malloc spent a fifth of
/// the crossing benchmark there; with mimalloc the crossing took a quarter less time
/// and plaintext served 4-18% more requests a second on the same core
/// (bench/README.md).
/// JavaScript and Node.js keep their own allocator: memory handed to JS is freed by
/// the finalizers napi-rs installs, in Rust.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc returns freed pages to the OS lazily, when the thread that freed them
/// allocates again; after a burst of parked connections (peregrine-core's memory.rs)
/// the I/O threads go idle with the pages still resident. A forced collection returns
/// them.
#[napi_derive::module_init]
fn init() {
    peregrine_core::memory::set_release(|| {
        // SAFETY: mi_collect takes no pointers and may run on any thread.
        unsafe { libmimalloc_sys::mi_collect(true) }
    });
}
