//! Any bytes as a checkpoint file (safetensors with prism's metadata): reading it gives `Ok` or an
//! error naming the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.safetensors");
    match prism::io::parse(data, path) {
        Err(e) => assert!(e.to_string().contains("fuzz.safetensors"), "{e}"),
        Ok(ck) => {
            assert!(prism::io::non_finite(&ck.tensors).is_none());
            let _ = ck.meta_u64("step", path);
            let _ = ck.meta(prism::io::FORMAT_KEY, path);
        }
    }
});
