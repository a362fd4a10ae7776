//! The napi-rs binding. It converts JavaScript values to and from peregrine-core types
//! and forwards calls; HTTP logic lives in the core, API design in the TS package.
//!
//! Requests reach JavaScript as a "tape": one Buffer per batch in which every event is
//! a small binary record (see `tape.rs` and packages/peregrine/src/native/tape.ts,
//! which must agree). Strings inside it are decoded by JS only when the app reads them.

mod batch;
mod bench;
mod convert;
mod pool;
mod server;
mod tape;
