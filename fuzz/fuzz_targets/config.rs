//! Any text as an experiment config: parsing and validation return `Ok` or an error, and a config
//! that validates builds its process and model input without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let origin = std::path::Path::new("fuzz.toml");
    if let Ok(cfg) = prism::config::ExperimentConfig::from_toml(&text, Some(origin))
        && cfg.validate().is_ok()
    {
        let _ = cfg.process.build();
        let _ = cfg.model_input();
        let _ = cfg.to_toml();
    }
});
