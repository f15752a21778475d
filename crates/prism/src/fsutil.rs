//! Atomic file writes: temporary file in the same directory, fsync, rename, fsync the directory.
//! A crash leaves either the old file or the new one, never half of one.

use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically, creating the parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            d.sync_all().ok();
        }
        Ok(())
    })();
    result.map_err(|e: std::io::Error| {
        std::fs::remove_file(&tmp).ok();
        Error::io("write", path, e)
    })
}

/// Whether `name` is a temporary file of [`write_atomic`]: `.<file>.tmp-<pid>`.
fn is_temporary(name: &str) -> bool {
    name.starts_with('.')
        && name
            .rsplit_once(".tmp-")
            .is_some_and(|(_, pid)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
}

/// Removes the temporary files that writes killed half-way (by a crash, SIGKILL or power loss)
/// left in `dir` (not its subdirectories); returns their names. Call it before writing into a
/// directory that no other process writes into.
pub fn remove_stale_temporaries(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io("read directory", dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_temporary(&name) && entry.path().is_file() {
            std::fs::remove_file(entry.path()).map_err(|e| Error::io("remove", entry.path(), e))?;
            removed.push(name);
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("prism-fsutil-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        write_atomic(&dir.join("model.safetensors"), b"kept").unwrap();
        for name in [
            ".model.safetensors.tmp-123",
            ".train_state.safetensors.tmp-9",
        ] {
            std::fs::write(dir.join(name), b"half").unwrap();
        }
        std::fs::write(dir.join(".hidden.tmp-x"), b"kept").unwrap();
        std::fs::write(dir.join("notes.tmp-1"), b"kept").unwrap();
        let removed = remove_stale_temporaries(&dir).unwrap();
        assert_eq!(
            removed,
            [
                ".model.safetensors.tmp-123",
                ".train_state.safetensors.tmp-9"
            ]
        );
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, [".hidden.tmp-x", "model.safetensors", "notes.tmp-1"]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
