//! NumPy `.npz` files (a zip of `.npy` arrays): what clean-fid and pytorch-fid store reference
//! statistics in (`mu`, `sigma`; clean-fid's KID statistics add `feats`) and what generative-model
//! evaluation suites exchange samples in (`arr_0`, `uint8` `[N, H, W, C]`, as OpenAI's
//! guided-diffusion evaluator). Reads little-endian `f4`, `f8` and `u1` arrays in C order, stored or
//! deflated; writes stored (uncompressed) members that `numpy.load` reads.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::{Error, Result};

/// The element type of an array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NpyDtype {
    /// `<f4`
    F32,
    /// `<f8`
    F64,
    /// `|u1`
    U8,
}

impl NpyDtype {
    fn descr(self) -> &'static str {
        match self {
            Self::F32 => "<f4",
            Self::F64 => "<f8",
            Self::U8 => "|u1",
        }
    }

    fn size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F64 => 8,
            Self::U8 => 1,
        }
    }
}

/// One array: its shape, the dtype it had on disk and its values as `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Shape (C order).
    pub shape: Vec<usize>,
    /// Element type on disk (and written back).
    pub dtype: NpyDtype,
    /// Values, row-major.
    pub data: Vec<f64>,
}

fn bad(path: &Path, reason: String) -> Error {
    Error::Data {
        path: path.into(),
        reason,
    }
}

/// Parses one `.npy` member.
fn parse_npy(bytes: &[u8], name: &str, path: &Path) -> Result<NpyArray> {
    let fail = |r: &str| bad(path, format!("array '{name}': {r}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(fail("not a .npy array"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(fail(&format!("unsupported .npy version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(|| fail("truncated header"))?;
    let field = |key: &str| -> Option<&str> {
        let i = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[i..].trim_start())
    };
    let descr = field("descr").ok_or_else(|| fail("no descr"))?;
    let dtype = if descr.starts_with("'<f4'") {
        NpyDtype::F32
    } else if descr.starts_with("'<f8'") {
        NpyDtype::F64
    } else if descr.starts_with("'|u1'") || descr.starts_with("'<u1'") {
        NpyDtype::U8
    } else {
        return Err(fail(&format!(
            "dtype {} is not supported (float32, float64 or uint8, little-endian)",
            descr.split(',').next().unwrap_or(descr)
        )));
    };
    if field("fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(fail("Fortran-ordered arrays are not supported"));
    }
    let shape_text = field("shape").ok_or_else(|| fail("no shape"))?;
    let close = shape_text.find(')').ok_or_else(|| fail("bad shape"))?;
    let shape = shape_text[1..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| fail("bad shape")))
        .collect::<Result<Vec<usize>>>()?;
    let n: usize = shape.iter().product();
    let body = &bytes[start + header_len..];
    if body.len() < n * dtype.size() {
        return Err(fail(&format!(
            "{} bytes of data for shape {shape:?}",
            body.len()
        )));
    }
    let data = match dtype {
        NpyDtype::U8 => body[..n].iter().map(|&b| b as f64).collect(),
        NpyDtype::F32 => body[..4 * n]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect(),
        NpyDtype::F64 => body[..8 * n]
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    };
    Ok(NpyArray { shape, dtype, data })
}

/// Reads every array of an `.npz` file, by name (without `.npy`).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, NpyArray>> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        action: "open",
        path: path.into(),
        source,
    })?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|e| bad(path, format!("not an .npz (zip) file: {e}")))?;
    let mut out = BTreeMap::new();
    for i in 0..zip.len() {
        let mut member = zip
            .by_index(i)
            .map_err(|e| bad(path, format!("zip member {i}: {e}")))?;
        let name = member.name().trim_end_matches(".npy").to_string();
        let mut bytes = Vec::with_capacity(member.size() as usize);
        member.read_to_end(&mut bytes).map_err(|source| Error::Io {
            action: "read",
            path: path.into(),
            source,
        })?;
        let array = parse_npy(&bytes, &name, path)?;
        out.insert(name, array);
    }
    Ok(out)
}

/// One `.npy` member's bytes (format version 1.0, header padded to 64 bytes).
fn npy_bytes(a: &NpyArray) -> Vec<u8> {
    let shape = match a.shape.len() {
        1 => format!("({},)", a.shape[0]),
        _ => format!(
            "({})",
            a.shape
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        a.dtype.descr()
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for &v in &a.data {
        match a.dtype {
            NpyDtype::U8 => out.push(v.round().clamp(0.0, 255.0) as u8),
            NpyDtype::F32 => out.extend((v as f32).to_le_bytes()),
            NpyDtype::F64 => out.extend(v.to_le_bytes()),
        }
    }
    out
}

/// Writes `arrays` as an `.npz` file, atomically.
pub fn write_npz(path: &Path, arrays: &[(&str, &NpyArray)]) -> Result<()> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::FileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(true);
        for (name, a) in arrays {
            let n: usize = a.shape.iter().product();
            if n != a.data.len() {
                return Err(Error::Shape(format!(
                    "npz array '{name}': {} values for shape {:?}",
                    a.data.len(),
                    a.shape
                )));
            }
            let io = |e: std::io::Error| Error::Io {
                action: "write",
                path: path.into(),
                source: e,
            };
            zip.start_file(format!("{name}.npy"), opts)
                .map_err(|e| bad(path, e.to_string()))?;
            zip.write_all(&npy_bytes(a)).map_err(io)?;
        }
        zip.finish().map_err(|e| bad(path, e.to_string()))?;
    }
    crate::fsutil::write_atomic(path, &buf.into_inner())
}
