//! Fuzzes `eew_core::telegram::jma_code::parse`: the JMA code-telegram parser alone.
//! A panic is a crash; an `Ok` report must keep every invariant (see `src/lib.rs`),
//! an `Err` must carry a sentence.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    eew_core_fuzz::check_outcome(&eew_core::telegram::jma_code::parse(data));
});
