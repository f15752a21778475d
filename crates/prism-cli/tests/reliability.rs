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

/// The step in a checkpoint's metadata.
fn step_of(path: &std::path::Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    meta.metadata().as_ref().unwrap()["step"].clone()
}

/// A file-size limit (`ulimit -f`: SIGXFSZ, then EFBIG) stops training with a message naming
/// the file; the previous checkpoint stays byte for byte and no temporary file is left. A full
/// disk (ENOSPC) or a read-only directory (EPERM) take the same path: the write's error names
/// the file, and the atomic rename never happened.
#[test]
fn a_file_size_limit_names_the_file_and_keeps_the_checkpoint() {
    let dir = temp("xfsz");
    let cfg = tiny_config(&dir, 2, 0);
    let run = dir.join("run");
    let o = cli(
        "train --quiet --no-pictures --config {} --out {}",
        &[&cfg, &run],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let files = ["train_state.safetensors", "model.safetensors"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect();
    // 64 KiB: the metrics fit, the training state (over 1 MiB) does not.
    let o = std::process::Command::new("bash")
        .arg("-c")
        .arg("ulimit -f 64 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_prism"))
        .args([
            "train",
            "--quiet",
            "--no-pictures",
            "--steps",
            "4",
            "--config",
        ])
        .arg(&cfg)
        .arg("--resume")
        .arg(&run)
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("train_state.safetensors")
            && e.contains("File too large")
            && !e.contains("panicked"),
        "{e}"
    );
    for (f, b) in files.iter().zip(&before) {
        assert_eq!(&std::fs::read(run.join(f)).unwrap(), b, "{f} changed");
    }
    let left: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(dir).ok();
}

/// Model and training state are one pair: a process killed between writing the state and the
/// model leaves the model a checkpoint behind; the next resume notices and rewrites it from the
/// state.
#[test]
fn a_model_left_behind_its_training_state_is_rewritten_on_resume() {
    let dir = temp("pair");
    let cfg = tiny_config(&dir, 2, 0);
    let run = dir.join("run");
    let (state, model) = (
        run.join("train_state.safetensors"),
        run.join("model.safetensors"),
    );
    let o = cli(
        "train --quiet --no-pictures --config {} --out {}",
        &[&cfg, &run],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let old_model = std::fs::read(&model).unwrap();
    let o = cli(
        "train --quiet --no-pictures --config {} --resume {} --steps 4",
        &[&cfg, &run],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // The kill: the state of step 4 beside the model of step 2.
    std::fs::write(&model, &old_model).unwrap();
    assert_eq!((step_of(&state), step_of(&model)), ("4".into(), "2".into()));
    let o = cli(
        "train --quiet --no-pictures --config {} --resume {} --steps 4",
        &[&cfg, &run],
    );
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("is at step 2 but the training state is at step 4"),
        "{e}"
    );
    assert_eq!(step_of(&model), "4");
    // A missing model is rewritten too.
    std::fs::remove_file(&model).unwrap();
    let o = cli(
        "train --quiet --no-pictures --config {} --resume {} --steps 4",
        &[&cfg, &run],
    );
    assert!(
        o.status.success() && stderr(&o).contains("rewriting it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(step_of(&model), "4");
    std::fs::remove_dir_all(dir).ok();
}

/// Every command that writes a file checks its extension before any work.
#[test]
fn every_output_file_is_checked_for_its_extension() {
    let dir = temp("ext");
    let bad = |name: &str| dir.join(name).display().to_string();
    let cfg = root()
        .join("configs/fashion-mnist-cond.toml")
        .display()
        .to_string();
    refused(
        &["schedule", "--plot", &bad("s.jpg")],
        &["--plot", "s.jpg", ".png"],
    );
    refused(
        &[
            "forward",
            "--config",
            &cfg,
            "--image",
            &bad("in.png"),
            "--out",
            &bad("f.txt"),
        ],
        &["--out", "f.txt", ".png"],
    );
    refused(
        &["eval", "--checkpoint", &shipped(), "--json", &bad("e.txt")],
        &["--json", "e.txt", ".json"],
    );
    refused(
        &[
            "classifier",
            "--data",
            &data(),
            "--test",
            &data(),
            "--out",
            &bad("c.bin"),
        ],
        &["--out", "c.bin", ".safetensors"],
    );
    std::fs::remove_dir_all(dir).ok();
}

/// Every tensor of a safetensors file, as bytes.
fn tensor_bytes(path: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(k, v)| (k, v.data().to_vec()))
        .collect()
}

/// `kill -9` at random moments (starting, training, between and inside the checkpoint writes),
/// each time resumed, ends with the weights, EMA and optimiser state of the uninterrupted run,
/// bit for bit. CI kills 3 times; `tools/kill9_resume.sh` (PRISM_KILL9_ROUNDS=N) many more.
#[test]
fn kill_9_at_random_points_and_resume_gives_the_same_weights() {
    let rounds: u32 = std::env::var("PRISM_KILL9_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("PRISM_KILL9_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    let dir = temp("kill9");
    let cfg = tiny_config(&dir, 12, 0);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("checkpoint_every = 250", "checkpoint_every = 2");
    std::fs::write(&cfg, text).unwrap();
    let reference = dir.join("reference");
    let started = std::time::Instant::now();
    let o = cli(
        "train --quiet --no-pictures --config {} --out {}",
        &[&cfg, &reference],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // Kill times are fractions of the uninterrupted run's own duration, so that they fall inside
    // a run on a fast machine as on a loaded one.
    let whole_ms = started.elapsed().as_millis().max(50) as u64;
    let run = dir.join("run");
    let state = run.join("train_state.safetensors");
    // A small generator for the kill times (SplitMix64).
    let mut x = seed;
    let mut next = move || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let (mut kills, mut attempts) = (0u32, 0u32);
    loop {
        attempts += 1;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_prism"));
        cmd.args(["train", "--quiet", "--no-pictures", "--config"])
            .arg(&cfg);
        if state.exists() {
            cmd.arg("--resume").arg(&run);
        } else {
            cmd.arg("--out").arg(&run).arg("--overwrite");
        }
        let mut child = cmd
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        if kills < rounds {
            // Somewhere in 5–85 % of a whole run: start-up, steps, checkpoint writes.
            let ms = whole_ms / 20 + next() % (whole_ms * 4 / 5);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                continue;
            }
        }
        let out = child.wait_with_output().unwrap();
        let e = stderr(&out);
        assert!(out.status.success() && !e.contains("panicked"), "{e}");
        break;
    }
    eprintln!("{kills} kills, {attempts} starts");
    assert!(kills >= 1, "the run finished before the first kill");
    let want = reference.join("train_state.safetensors");
    assert_eq!(tensor_bytes(&state), tensor_bytes(&want));
    assert_eq!(
        tensor_bytes(&run.join("model.safetensors")),
        tensor_bytes(&reference.join("model.safetensors"))
    );
    assert_eq!(step_of(&state), "12");
    std::fs::remove_dir_all(dir).ok();
}

/// Writes an IDX images file of `n` images of `r`×`c` pixels and, if given, its labels beside it.
fn write_idx(dir: &std::path::Path, n: u32, r: u32, c: u32, labels: Option<&[u8]>) -> String {
    let images = dir.join("x-images-idx3-ubyte");
    let mut b = vec![0, 0, 8, 3];
    for d in [n, r, c] {
        b.extend(d.to_be_bytes());
    }
    b.extend((0..n * r * c).map(|i| (i * 37) as u8));
    std::fs::write(&images, b).unwrap();
    if let Some(l) = labels {
        let mut b = vec![0, 0, 8, 1];
        b.extend((l.len() as u32).to_be_bytes());
        b.extend(l);
        std::fs::write(dir.join("x-labels-idx1-ubyte"), b).unwrap();
    }
    images.display().to_string()
}

/// Data checks cover every split before training: held-out labels beyond `num_classes`, images of
/// 0×0 pixels; an absurd batch size is refused before anything is allocated.
#[test]
fn data_checks_cover_every_split_and_absurd_batches() {
    let dir = temp("datachk");
    let cfg = tiny_config(&dir, 1, 2);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let with = |path: &str, extra: &str| {
        let t: String = text
            .lines()
            .map(|l| {
                if l.starts_with("path = ") {
                    format!("path = \"{path}\"")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let p = dir.join("c.toml");
        std::fs::write(&p, t.replace("batch_size = 4", extra)).unwrap();
        p.display().to_string()
    };
    let run = dir.join("run").display().to_string();
    // 20 images of classes 0–9; the last two, held out, of class 12.
    let labels: Vec<u8> = (0..20).map(|i| if i >= 18 { 12 } else { i % 10 }).collect();
    let images = write_idx(&dir, 20, 8, 8, Some(&labels));
    let c = with(&images, "batch_size = 4");
    refused(
        &["train", "--quiet", "--config", &c, "--out", &run],
        &["13 classes", "held-out", "num_classes = 10"],
    );
    write_idx(&dir, 20, 0, 0, Some(&labels));
    refused(
        &["train", "--quiet", "--config", &c, "--out", &run],
        &["x-images-idx3-ubyte", "0×0 pixels"],
    );
    let images = write_idx(&dir, 20, 8, 8, Some(&[0; 20]));
    let c = with(&images, "batch_size = 1000000000000");
    refused(
        &["train", "--quiet", "--config", &c, "--out", &run],
        &["train.batch_size = 1000000000000", "GiB"],
    );
    assert!(!dir.join("run/model.safetensors").exists());
    std::fs::remove_dir_all(dir).ok();
}
