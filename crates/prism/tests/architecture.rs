//! The module layering of docs/ARCHITECTURE.md holds: every `crate::…` path in the library's
//! sources (test modules and test files excepted) names a module of a lower layer, or the crate
//! root. The table of layers is read from the document itself, so the rule and its check cannot
//! drift apart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `module → layer` from the table rows `| layer | `module` | … |`.
fn layers() -> BTreeMap<String, u32> {
    let doc = std::fs::read_to_string(root().join("../../docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md exists");
    let mut out = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        if let (Ok(layer), Some(name)) = (
            cells[1].parse::<u32>(),
            cells[2].strip_prefix('`').and_then(|c| c.strip_suffix('`')),
        ) {
            out.insert(name.to_string(), layer);
        }
    }
    out
}

/// The source without its `#[cfg(test)]` modules and with comments removed.
fn library_code(text: &str) -> String {
    let mut code = String::new();
    let mut skipping_test_module = false;
    let mut depth = 0i64;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if !skipping_test_module && trimmed.starts_with("#[cfg(test)]") {
            // A `#[cfg(test)] mod x;` line or a `#[cfg(test)] mod tests { … }` block.
            if let Some(next) = lines.peek()
                && next.trim_start().starts_with("mod ")
                && next.contains('{')
            {
                skipping_test_module = true;
                depth = 0;
            }
            continue;
        }
        if skipping_test_module {
            depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
            if depth <= 0 && line.contains('}') {
                skipping_test_module = false;
            }
            continue;
        }
        if trimmed.starts_with("//") {
            continue;
        }
        code.push_str(line.split("//").next().unwrap_or(""));
        code.push('\n');
    }
    code
}

/// Every module named after `crate::` in `code`, including inside `use crate::{a, b::c}`.
fn imported(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.push(name);
            }
        } else {
            out.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_import_only_lower_layers() {
    let layers = layers();
    assert!(
        layers.len() > 10,
        "the layer table was not found: {layers:?}"
    );
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    let mut unknown = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy().to_string();
        if name == "tests.rs" || name.ends_with("_tests.rs") || name == "golden_data.rs" {
            continue;
        }
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if module == "lib" {
            continue;
        }
        let Some(&own) = layers.get(&module) else {
            unknown.push(module);
            continue;
        };
        let code = library_code(&std::fs::read_to_string(&file).unwrap());
        for target in imported(&code) {
            if target == module || matches!(target.as_str(), "Error" | "Result" | "default_device")
            {
                continue;
            }
            match layers.get(&target) {
                Some(&layer) if layer < own => {}
                Some(&layer) => broken.push(format!(
                    "{} (layer {own}) imports crate::{target} (layer {layer})",
                    rel.display()
                )),
                None => broken.push(format!(
                    "{} imports crate::{target}, which docs/ARCHITECTURE.md does not place",
                    rel.display()
                )),
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "modules missing from docs/ARCHITECTURE.md's table: {unknown:?}"
    );
    assert!(
        broken.is_empty(),
        "imports against docs/ARCHITECTURE.md:\n{}",
        broken.join("\n")
    );
}

/// The checker sees through grouped imports and skips test modules.
#[test]
fn the_checker_reads_grouped_imports_and_skips_tests() {
    let code = library_code(
        "use crate::{data::Dataset, nn::Condition};\nfn f() { crate::io::save(); }\n\
         #[cfg(test)]\nmod tests {\n    use crate::pipeline::Stage;\n    fn g() {}\n}\nuse crate::process::X;\n",
    );
    assert_eq!(imported(&code), vec!["data", "nn", "io", "process"]);
}
