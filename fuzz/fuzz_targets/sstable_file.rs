#![no_main]
//! See `basalt::fuzz_targets::sstable_file`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| basalt::fuzz_targets::sstable_file(data));
