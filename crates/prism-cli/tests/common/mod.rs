//! Helpers shared by the CLI test binaries (`cli.rs`, `reliability.rs`): running `prism`, temporary
//! directories, a tiny training config on the bundled data, and stopping a training run with a
//! signal.

#![allow(dead_code)] // each test binary uses some of them

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `prism` binary with `args`.
pub fn prism<S: AsRef<OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(args)
        .output()
        .expect("prism runs")
}

/// Runs `prism` with the words of `line`, each `{}` replaced by the next of `args` (paths, which
/// may hold spaces).
pub fn cli(line: &str, args: &[&dyn AsRef<OsStr>]) -> Output {
    let mut args = args.iter();
    let words: Vec<&OsStr> = line
        .split_whitespace()
        .map(|w| match w {
            "{}" => args.next().expect("an argument per {}").as_ref(),
            w => OsStr::new(w),
        })
        .collect();
    assert!(
        args.next().is_none(),
        "more arguments than {{}} in {line:?}"
    );
    prism(&words)
}

/// Asserts that `o` failed cleanly (exit code 1, no panic) with `needle` in its message.
pub fn fails_with(o: &Output, needle: &str) {
    let e = stderr(o);
    assert!(
        o.status.code() == Some(1) && e.contains(needle) && !e.contains("panicked"),
        "{e}"
    );
}

/// The process's standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh temporary directory for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A tiny class-conditional config on the bundled data (300 images at 16×16, `held_out` of them
/// held out), for tests that really train; written to `dir/tiny.toml`.
pub fn tiny_config(dir: &Path, steps: u64, held_out: usize) -> PathBuf {
    let text = std::fs::read_to_string(root().join("configs/fashion-mnist-cond.toml"))
        .unwrap()
        .replace(
            "path = \"data/fashion-mnist/",
            &format!(
                "limit = 300\npath = \"{}/data/fashion-mnist/",
                root().display()
            ),
        )
        .replace("image_size = 32", "image_size = 16")
        .replace("fit = \"pad\"", "fit = \"resize\"")
        .replace("held_out = 1000", &format!("held_out = {held_out}"))
        .replace("base_channels = 32", "base_channels = 16")
        .replace("channel_mults = [1, 2, 2]", "channel_mults = [1, 2]")
        .replace("attention_levels = [2]", "attention_levels = [1]")
        .replace("head_channels = 32", "head_channels = 16")
        .replace("norm_groups = 8", "norm_groups = 4")
        .replace("steps = 800", &format!("steps = {steps}"))
        .replace("batch_size = 32", "batch_size = 4")
        .replace("log_every = 25", "log_every = 1")
        .replace("num = 50", "num = 4")
        .replace("steps = 25", "steps = 2");
    let path = dir.join("tiny.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `prism train` on `cfg` into `run`, waits for two logged steps, sends `signal` (`INT`,
/// `TERM`, …) and returns what the process printed. It must have exited with 130 and said how to
/// resume.
pub fn train_until_signal(cfg: &Path, run: &Path, signal: &str) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(["train", "--quiet", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(run)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = run.join("metrics.jsonl");
    let start = std::time::Instant::now();
    while std::fs::read_to_string(&metrics).map_or(0, |t| t.lines().count()) < 2 {
        assert!(start.elapsed().as_secs() < 120, "training did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{e}");
    assert!(e.contains("--resume") && !e.contains("panicked"), "{e}");
    out
}
