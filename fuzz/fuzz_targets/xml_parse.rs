#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dpwrap::fuzzing::xml_round_trip(data));
