//! `config.toml`: any text either parses into a valid configuration or is refused with an error
//! that names the file.
#![no_main]

use authctl_agent::fuzzing::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = std::path::Path::new("/fuzz/config.toml");
    if let Err(e) = Config::parse(text, path) {
        assert!(e.to_string().contains("/fuzz/config.toml"), "{e}");
    }
});
