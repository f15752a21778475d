//! Nothing lost, nothing silent: arguments that used to panic or give silently wrong results are
//! refused with a message (non-zero exit, no panic); a run directory is not overwritten by
//! accident; SIGTERM saves like Ctrl-C; half-written temporary files are cleaned up.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn prism(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(args)
        .output()
        .expect("prism runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prism-reliab-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Fails with a message containing every one of `needles`, exit code 1 or 2, no panic.
fn refused(args: &[&str], needles: &[&str]) {
    let o = prism(args);
    let e = stderr(&o);
    assert!(
        matches!(o.status.code(), Some(1 | 2)),
        "{args:?} exited with {:?}: {e}",
        o.status.code()
    );
    assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
    for n in needles {
        assert!(e.contains(n), "{args:?}: no '{n}' in: {e}");
    }
}

/// The tiny Fashion-MNIST config of cli.rs, with `held_out` images held out.
fn tiny_config(dir: &Path, steps: u64, held_out: usize) -> PathBuf {
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

fn shipped() -> String {
    root()
        .join("checkpoints/fashion-mnist-cond/model.safetensors")
        .display()
        .to_string()
}

fn data() -> String {
    root()
        .join("data/fashion-mnist/t10k-images-idx3-ubyte.gz")
        .display()
        .to_string()
}

#[test]
fn eval_refuses_empty_or_non_finite_settings() {
    let (m, d) = (shipped(), data());
    let base = ["eval", "--checkpoint", &m, "--data", &d];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        base.iter().copied().chain(extra.iter().copied()).collect()
    };
    refused(&with(&["--num", "0"]), &["--num"]);
    refused(&with(&["--draws", "0"]), &["--draws"]);
    refused(
        &with(&["--metrics", "bpd", "--num", "2", "--logsnr-max", "nan"]),
        &["--logsnr-max"],
    );
    refused(
        &with(&["--metrics", "bpd", "--num", "2", "--logsnr-max", "1000"]),
        &["--logsnr-max", "λ(0)"],
    );
    refused(
        &with(&["--metrics", "swd", "--num", "2", "--guidance", "nan"]),
        &["--guidance"],
    );
}

#[test]
fn sample_refuses_bad_guidance_and_non_png_output() {
    let m = shipped();
    let dir = temp("sample");
    let png = dir.join("x.png").display().to_string();
    for g in ["nan", "inf"] {
        refused(
            &[
                "sample",
                "--checkpoint",
                &m,
                "--num",
                "1",
                "--steps",
                "1",
                "--guidance",
                g,
                "--out",
                &png,
            ],
            &["--guidance"],
        );
    }
    let jpg = dir.join("x.jpg").display().to_string();
    refused(
        &[
            "sample",
            "--checkpoint",
            &m,
            "--num",
            "1",
            "--steps",
            "1",
            "--out",
            &jpg,
        ],
        &["x.jpg", "PNG"],
    );
    assert!(!dir.join("x.jpg").exists() && !dir.join("x.png").exists());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn schedule_and_classifier_refuse_absurd_counts() {
    refused(&["schedule", "--points", "1000000000"], &["--points"]);
    let dir = temp("classifier");
    let (d, out) = (data(), dir.join("c.safetensors").display().to_string());
    refused(
        &[
            "classifier",
            "--data",
            &d,
            "--test",
            &d,
            "--epochs",
            "0",
            "--out",
            &out,
        ],
        &["--epochs"],
    );
    assert!(!dir.join("c.safetensors").exists());
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn train_does_not_overwrite_a_run_and_eval_needs_held_out_images() {
    let dir = temp("train");
    let cfg = tiny_config(&dir, 2, 0);
    let cfg = cfg.to_str().unwrap();
    let run = dir.join("run");
    let r = run.to_str().unwrap();
    let o = prism(&[
        "train",
        "--quiet",
        "--no-pictures",
        "--config",
        cfg,
        "--out",
        r,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // A killed write leaves a temporary file; the next start removes it.
    let stale = run.join(".train_state.safetensors.tmp-4242");
    std::fs::write(&stale, b"half a file").unwrap();
    let before = std::fs::read(run.join("model.safetensors")).unwrap();

    refused(
        &["train", "--quiet", "--config", cfg, "--out", r],
        &["already holds a run", "--resume", "--overwrite"],
    );
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        before
    );
    let other = dir.join("other").display().to_string();
    refused(
        &[
            "train", "--quiet", "--config", cfg, "--resume", r, "--out", &other,
        ],
        &["--resume", "--out"],
    );

    // The model has no held-out images: eval says so instead of measuring nothing.
    let model = run.join("model.safetensors").display().to_string();
    refused(
        &[
            "eval",
            "--checkpoint",
            &model,
            "--metrics",
            "mse",
            "--num",
            "4",
        ],
        &["held_out = 0"],
    );

    let o = prism(&[
        "train",
        "--quiet",
        "--no-pictures",
        "--config",
        cfg,
        "--resume",
        r,
        "--steps",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stale.exists(), "the stale temporary file is still there");
    assert!(
        stderr(&o).contains(".train_state.safetensors.tmp-4242"),
        "{}",
        stderr(&o)
    );
    let o = prism(&[
        "train",
        "--quiet",
        "--no-pictures",
        "--config",
        cfg,
        "--out",
        r,
        "--overwrite",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

/// SIGTERM (what `kill`, systemd and job schedulers send) saves and exits like Ctrl-C.
#[test]
fn sigterm_saves_like_ctrl_c() {
    let dir = temp("sigterm");
    let cfg = tiny_config(&dir, 100_000, 50);
    let run = dir.join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_prism"))
        .args([
            "train",
            "--quiet",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
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
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{e}");
    assert!(e.contains("--resume") && !e.contains("panicked"), "{e}");
    assert!(run.join("train_state.safetensors").exists());
    assert!(run.join("model.safetensors").exists());
    std::fs::remove_dir_all(dir).ok();
}

/// A negative number reaches the flag, whose check (or type) names it.
#[test]
fn negative_numbers_reach_their_flag() {
    let m = shipped();
    let dir = temp("negative");
    let png = dir.join("x.png").display().to_string();
    refused(
        &[
            "sample",
            "--checkpoint",
            &m,
            "--num",
            "1",
            "--steps",
            "1",
            "--guidance",
            "-1",
            "--out",
            &png,
        ],
        &["--guidance", "-1"],
    );
    refused(
        &["sample", "--checkpoint", &m, "--num", "-2", "--out", &png],
        &["--num", "-2"],
    );
    let cfg = root()
        .join("configs/fashion-mnist.toml")
        .display()
        .to_string();
    refused(
        &["train", "--config", &cfg, "--steps", "-5"],
        &["--steps", "-5"],
    );
    std::fs::remove_dir_all(dir).ok();
}
