//! The IDX format of MNIST / Fashion-MNIST (LeCun et al.): a big-endian header
//! `0x00 0x00 type ndim` + `ndim` u32 sizes, then the data; optionally gzip-compressed.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::{Error, Result};

/// The file's bytes, gunzipped if they start with gzip's magic number.
fn decompress(path: &Path, raw: Vec<u8>) -> Result<Vec<u8>> {
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::Data {
                path: path.into(),
                reason: format!("corrupt gzip stream: {e}"),
            })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses the header; returns the dimension sizes and the payload.
fn parse<'a>(path: &Path, bytes: &'a [u8], ndim: usize) -> Result<(Vec<usize>, &'a [u8])> {
    let bad = |reason: String| Error::Data {
        path: path.into(),
        reason,
    };
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("not an IDX file (bad magic number)".into()));
    }
    if bytes[2] != 0x08 {
        return Err(bad(format!(
            "unsupported IDX element type 0x{:02x} (need unsigned bytes)",
            bytes[2]
        )));
    }
    if bytes[3] as usize != ndim {
        return Err(bad(format!(
            "expected {ndim} dimensions, found {}",
            bytes[3]
        )));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(bad("truncated header".into()));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let need = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| bad(format!("header sizes {dims:?} overflow")))?;
    let payload = &bytes[header..];
    if payload.len() != need {
        return Err(bad(format!(
            "header promises {need} bytes of data, file has {}",
            payload.len()
        )));
    }
    Ok((dims, payload))
}

/// Reads an images file: `(n, rows, cols, pixels)` with pixels row-major, one byte each.
pub fn read_idx_images(path: &Path) -> Result<(usize, usize, usize, Vec<u8>)> {
    parse_idx_images(
        path,
        std::fs::read(path).map_err(|e| Error::io("read", path, e))?,
    )
}

/// [`read_idx_images`] on the bytes of the file `path` (which errors name). Images of zero rows
/// or columns are refused.
pub fn parse_idx_images(path: &Path, raw: Vec<u8>) -> Result<(usize, usize, usize, Vec<u8>)> {
    let bytes = decompress(path, raw)?;
    let (dims, payload) = parse(path, &bytes, 3)?;
    if dims[1] == 0 || dims[2] == 0 {
        return Err(Error::Data {
            path: path.into(),
            reason: format!("its images are {}×{} pixels", dims[1], dims[2]),
        });
    }
    Ok((dims[0], dims[1], dims[2], payload.to_vec()))
}

/// Reads a labels file.
pub fn read_idx_labels(path: &Path) -> Result<Vec<u32>> {
    parse_idx_labels(
        path,
        std::fs::read(path).map_err(|e| Error::io("read", path, e))?,
    )
}

/// [`read_idx_labels`] on the bytes of the file `path` (which errors name).
pub fn parse_idx_labels(path: &Path, raw: Vec<u8>) -> Result<Vec<u32>> {
    let bytes = decompress(path, raw)?;
    let (_, payload) = parse(path, &bytes, 1)?;
    Ok(payload.iter().map(|&b| b as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_raw_and_rejects_corrupt_files_by_name() {
        let dir = std::env::temp_dir().join(format!("prism-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ok = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        ok.extend([1, 2, 3, 4]);
        let p = write(&dir, "ok-images-idx3-ubyte", &ok);
        assert_eq!(read_idx_images(&p).unwrap(), (2, 1, 2, vec![1, 2, 3, 4]));
        let p = write(&dir, "short-images-idx3-ubyte", &ok[..18]);
        let e = read_idx_images(&p).unwrap_err().to_string();
        assert!(
            e.contains("short-images-idx3-ubyte") && e.contains("promises 4 bytes"),
            "{e}"
        );
        let p = write(&dir, "junk.gz", &[0x1f, 0x8b, 1, 2, 3]);
        let e = read_idx_images(&p).unwrap_err().to_string();
        assert!(e.contains("junk.gz") && e.contains("gzip"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn reads_the_bundled_fashion_mnist() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/fashion-mnist");
        let (n, h, w, px) = read_idx_images(&dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
        assert_eq!((n, h, w, px.len()), (10_000, 28, 28, 10_000 * 784));
        let labels = read_idx_labels(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(labels.len(), 10_000);
        assert!(labels.iter().all(|&l| l < 10));
        // every class appears 1,000 times in the test split
        assert!((0..10).all(|c| labels.iter().filter(|&&l| l == c).count() == 1000));
    }
}
