#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| dpwrap::fuzzing::azure_encrypted_key(data));
