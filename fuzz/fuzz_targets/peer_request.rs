#![no_main]
//! See `basalt::fuzz_targets::peer_request`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| basalt::fuzz_targets::peer_request(data));
