//! Everything a socket can reach before a handler runs — frame header parsing, the protocol
//! guard, body decoding by the kafka-protocol crate, record batch validation of produce
//! payloads — through `sluice::testing::decode_request_frame`, which the plain-Rust smoke
//! test (`node/tests/fuzz_smoke.rs`) runs too. Input: one request frame without its length
//! prefix. Seeds: `node/fuzz/seeds/request/`, frames captured from real clients
//! (`scripts/fuzz-corpus.sh`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sluice::testing::decode_request_frame(data);
});
