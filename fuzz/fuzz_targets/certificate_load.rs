#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dpwrap::fuzzing::certificate_load(data));
