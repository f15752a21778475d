//! Nothing lost, nothing silent: arguments that used to panic or give silently wrong results are
//! refused with a message (non-zero exit, no panic); a run directory is not overwritten by
//! accident; SIGTERM saves like Ctrl-C; half-written temporary files are cleaned up.

mod common;

use common::{cli, prism, root, stderr, temp_dir as temp, tiny_config, train_until_signal};

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

/// `prism sample --checkpoint M --num 1 --steps 1 --out OUT` followed by `extra`.
fn one_sample<'a>(m: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "sample",
        "--checkpoint",
        m,
        "--num",
        "1",
        "--steps",
        "1",
        "--out",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn sample_refuses_bad_guidance_and_non_png_output() {
    let m = shipped();
    let dir = temp("sample");
    let png = dir.join("x.png").display().to_string();
    for g in ["nan", "inf"] {
        refused(&one_sample(&m, &png, &["--guidance", g]), &["--guidance"]);
    }
    let jpg = dir.join("x.jpg").display().to_string();
    refused(&one_sample(&m, &jpg, &[]), &["x.jpg", "PNG"]);
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
    let o = cli(
        "train --quiet --no-pictures --config {} --out {}",
        &[&cfg, &r],
    );
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
    let o = cli(
        "train --quiet --no-pictures --config {} --out {} --overwrite",
        &[&cfg, &r],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_dir_all(dir).ok();
}

/// SIGTERM (what `kill`, systemd and job schedulers send) saves and exits like Ctrl-C.
#[test]
fn sigterm_saves_like_ctrl_c() {
    let dir = temp("sigterm");
    let cfg = tiny_config(&dir, 100_000, 50);
    let run = dir.join("run");
    train_until_signal(&cfg, &run, "TERM");
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
        &one_sample(&m, &png, &["--guidance", "-1"]),
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
