//! Fuzzes `eew_core::parse`: any input, through format detection and dispatch.
//! A panic is a crash; an `Ok` report must keep every invariant (see `src/lib.rs`),
//! an `Err` must carry a sentence.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = eew_core::telegram::detect(data);
    eew_core_fuzz::check_outcome(&eew_core::parse(data));
});
