#![no_main]
//! See `basalt::fuzz_targets::storage_records`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| basalt::fuzz_targets::storage_records(data));
