//! Any bytes as an IDX images file and as a labels file (raw or gzip).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz-images-idx3-ubyte");
    if let Ok((n, r, c, px)) = prism::data::parse_idx_images(path, data.to_vec()) {
        assert_eq!(px.len(), n * r * c);
    }
    let _ = prism::data::parse_idx_labels(path, data.to_vec());
});
