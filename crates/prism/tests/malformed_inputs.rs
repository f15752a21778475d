//! Property tests over malformed inputs: mutated and random bytes into the config parser, the
//! IDX and image readers and the checkpoint reader must give `Ok` or an error that names what is
//! wrong (the file, the key) — never a panic. Bounded for CI: a fixed seed and a few hundred
//! cases per reader (seconds). A long run: `PROPTEST_CASES=100000 cargo test --release -p prism
//! --test malformed_inputs` (and `PROPTEST_RNG_SEED=N` for other inputs); `tools/fuzz.sh` runs
//! the same readers under libFuzzer (`fuzz/`).

use std::io::Write;
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use prism::config::ExperimentConfig;

/// The test runner's settings: `default` cases and a fixed seed, unless `PROPTEST_CASES` or
/// `PROPTEST_RNG_SEED` say otherwise; no failure files written into the repository.
fn settings(default: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0x5eed_f022);
    }
    c.failure_persistence = None;
    c
}

/// Edits to a byte string: (position as a fraction, byte) overwrites, an optional truncation,
/// and random bytes inserted somewhere.
fn edits() -> impl Strategy<Value = (Vec<(f64, u8)>, Option<f64>, Vec<u8>)> {
    (
        prop::collection::vec((0.0..1.0f64, any::<u8>()), 0..8),
        prop::option::of(0.0..1.0f64),
        prop::collection::vec(any::<u8>(), 0..6),
    )
}

/// `bytes` with `edits` applied; positions are fractions of `region` bytes from the start (the
/// header of a format, say) so that mutations land where the parser looks.
fn mutate(bytes: &[u8], region: usize, e: &(Vec<(f64, u8)>, Option<f64>, Vec<u8>)) -> Vec<u8> {
    let mut b = bytes.to_vec();
    let region = region.clamp(1, b.len().max(1));
    let at = |f: f64| ((f * region as f64) as usize).min(region - 1);
    for &(f, v) in &e.0 {
        if let Some(x) = b.get_mut(at(f)) {
            *x = v;
        }
    }
    if !e.2.is_empty() && !b.is_empty() {
        let i = at(e.0.first().map_or(0.5, |p| p.0));
        b.splice(i..i, e.2.iter().copied());
    }
    if let Some(f) = e.1 {
        b.truncate((f * b.len() as f64) as usize);
    }
    b
}

/// An error's message must say something and name `what` (a file name, usually).
fn named(e: &prism::Error, what: &str) {
    let m = e.to_string();
    assert!(m.contains(what), "error does not name '{what}': {m}");
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A valid IDX images file of `n` images of `r`×`c` bytes.
fn idx_images(n: u32, r: u32, c: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for d in [n, r, c] {
        b.extend(d.to_be_bytes());
    }
    b.extend((0..n * r * c).map(|i| i as u8));
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Values that break naive number handling.
const EDGE: [&str; 14] = [
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "-0.0",
    "1e308",
    "1e-320",
    "18446744073709551616",
    "9223372036854775807",
    "4294967296",
    "\"x\"",
    "[]",
    "{}",
];

proptest! {
    #![proptest_config(settings(256))]

    /// Every preset with one number (or value) replaced by an edge value, or lines dropped, or
    /// bytes changed: parsing and validation end in `Ok` or an error, and a config that passes
    /// validation builds its process and model input without panicking.
    #[test]
    fn configs(preset in 0usize..64, value in 0usize..EDGE.len(), nth in 0usize..40,
               drop_line in prop::option::of(0usize..60), e in edits()) {
        let mut presets: Vec<PathBuf> = std::fs::read_dir(root().join("configs")).unwrap()
            .map(|d| d.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        presets.sort();
        let text = std::fs::read_to_string(&presets[preset % presets.len()]).unwrap();
        // Replace the nth value after an '=' by an edge value.
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let assignments: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(" = ")).collect();
        if let Some(&i) = assignments.get(nth % assignments.len().max(1)) {
            let key = lines[i].split(" = ").next().unwrap().to_string();
            lines[i] = format!("{key} = {}", EDGE[value]);
        }
        if let Some(d) = drop_line.filter(|&d| d < lines.len()) {
            lines.remove(d);
        }
        let mut text = lines.join("\n").into_bytes();
        if value % 3 == 0 {
            text = mutate(&text, text.len(), &e);
        }
        let text = String::from_utf8_lossy(&text);
        let origin = Path::new("fuzz-config.toml");
        match ExperimentConfig::from_toml(&text, Some(origin)) {
            Err(e) => prop_assert!(!e.to_string().is_empty()),
            Ok(cfg) => {
                if cfg.validate().is_ok() {
                    let _ = cfg.process.build();
                    let _ = cfg.model_input();
                    let _ = cfg.to_toml();
                }
            }
        }
    }

    /// IDX image and label files, raw and gzipped, mutated in the header or anywhere.
    #[test]
    fn idx_files(n in 0u32..4, r in 0u32..5, c in 0u32..5, zipped: bool, header: bool,
                 e in edits()) {
        let raw = idx_images(n, r, c);
        let bytes = if zipped { gzip(&raw) } else { raw };
        let region = if header && !zipped { 16 } else { bytes.len() };
        let bytes = mutate(&bytes, region, &e);
        let path = Path::new("fuzz-images-idx3-ubyte");
        match prism::data::parse_idx_images(path, bytes.clone()) {
            Ok((n, r, c, px)) => prop_assert_eq!(px.len(), n * r * c),
            Err(e) => named(&e, "fuzz-images-idx3-ubyte"),
        }
        if let Err(e) = prism::data::parse_idx_labels(path, bytes) {
            named(&e, "fuzz-images-idx3-ubyte");
        }
    }

    /// PNG and JPEG files (grey, RGB, RGBA) mutated in the header or anywhere.
    #[test]
    fn image_files(w in 1u32..9, h in 1u32..9, kind in 0usize..4, header: bool, e in edits()) {
        let img = image::RgbaImage::from_fn(w, h, |x, y| image::Rgba([x as u8 * 30, y as u8 * 30, 7, 200]));
        let dynamic = match kind {
            0 => image::DynamicImage::ImageRgba8(img),
            1 => image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(img).to_rgb8()),
            _ => image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgba8(img).to_luma8()),
        };
        let format = if kind == 3 { image::ImageFormat::Jpeg } else { image::ImageFormat::Png };
        let mut bytes = Vec::new();
        dynamic.write_to(&mut std::io::Cursor::new(&mut bytes), format).unwrap();
        let region = if header { 64 } else { bytes.len() };
        let bytes = mutate(&bytes, region, &e);
        let path = Path::new("fuzz-image.png");
        match prism::data::decode_image(path, &bytes, [255, 255, 255]) {
            Ok(img) => prop_assert!(img.width() > 0 && img.height() > 0),
            Err(e) => named(&e, "fuzz-image.png"),
        }
    }
}

proptest! {
    #![proptest_config(settings(48))]

    /// The shipped model file with its header (sizes, JSON of names, dtypes, offsets and the
    /// metadata with the config) mutated: reading it, and loading it as a model, end in `Ok` or
    /// an error naming the file.
    #[test]
    fn checkpoints(e in edits(), header: bool) {
        let shipped = std::fs::read(root().join("checkpoints/fashion-mnist-cond/model.safetensors")).unwrap();
        let header_len = 8 + u64::from_le_bytes(shipped[..8].try_into().unwrap()) as usize;
        let region = if header { header_len } else { shipped.len() };
        let bytes = mutate(&shipped, region, &e);
        let name = "fuzz-model.safetensors";
        if let Err(e) = prism::io::parse(&bytes, Path::new(name)) {
            named(&e, name);
            return Ok(());
        }
        let dir = std::env::temp_dir().join(format!("prism-fuzz-ck-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let loaded = prism::run::load_model(&path, &prism::default_device());
        std::fs::remove_dir_all(&dir).ok();
        if let Err(e) = loaded {
            named(&e, name);
        }
    }
}
