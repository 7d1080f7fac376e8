//! The kernel's TCP socket tables as the loopback listener's peer check reads them.
#![no_main]

use authctl_agent::fuzzing::parse_table;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let owners = parse_table(text);
        assert!(owners.len() <= text.lines().count());
    }
});
