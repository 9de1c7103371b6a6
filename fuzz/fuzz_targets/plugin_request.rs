#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|req: maps_fuzz::PluginRequest| maps_fuzz::check_plugin_request(&req));
