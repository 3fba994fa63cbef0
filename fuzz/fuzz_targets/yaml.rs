//! `cargo +nightly fuzz run yaml`: see `../entries.rs`.
#![no_main]

#[path = "../entries.rs"]
mod entries;

libfuzzer_sys::fuzz_target!(|data: &[u8]| entries::yaml(data));
