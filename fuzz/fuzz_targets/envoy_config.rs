#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: maps_fuzz::ConfigInput| maps_fuzz::envoy_config_target(&input));
