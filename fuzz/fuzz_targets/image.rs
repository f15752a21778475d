//! Any bytes as an image file (PNG, JPEG: the format is guessed from the bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz-image");
    if let Ok(img) = prism::data::decode_image(path, data, [255, 255, 255]) {
        assert!(img.width() > 0 && img.height() > 0);
    }
});
