#![no_main]
//! See `basalt::fuzz_targets::sstable_block`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| basalt::fuzz_targets::sstable_block(data));
