//! Data-parallel training on MPI (the `mpi` feature; CI runs it): `mpirun -np 2 prism train` with
//! two ranks of batch B/2 gives the weights of one process with batch B up to the order of the
//! floating-point sums, and resumes exactly, from its own checkpoint and from one process's.
//! Needs `mpirun` (Debian: openmpi-bin).

#![cfg(feature = "mpi")]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use common::{stderr, temp_dir, tiny_config};

/// Runs `prism train --quiet --no-pictures --config CFG ARGS…` as `ranks` MPI processes (one:
/// without mpirun).
fn train(ranks: usize, cfg: &Path, args: &[&str]) -> Output {
    let prism = env!("CARGO_BIN_EXE_prism");
    let mut cmd = if ranks == 1 {
        Command::new(prism)
    } else {
        let mut c = Command::new("mpirun");
        // As root (CI, containers) Open MPI needs these; --oversubscribe allows more ranks
        // than cores; vader's single-copy mechanism needs ptrace, which containers forbid.
        c.args(["--allow-run-as-root", "--oversubscribe", "-np"])
            .arg(ranks.to_string())
            .args(["--mca", "btl_vader_single_copy_mechanism", "none"])
            .arg(prism);
        c
    };
    let out = cmd
        .args(["train", "--quiet", "--no-pictures", "--config"])
        .arg(cfg)
        .args(args)
        .output()
        .expect("mpirun runs (install openmpi-bin)");
    assert!(out.status.success(), "{ranks} ranks: {}", stderr(&out));
    out
}

/// Every tensor of a safetensors file as `f32` values.
fn tensors(path: &Path) -> BTreeMap<String, Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let v = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, v)
        })
        .collect()
}

/// The largest absolute difference between the online weights (`model.*`) of two training
/// states, and the largest weight.
fn weight_difference(a: &Path, b: &Path) -> (f32, f32) {
    let (a, b) = (tensors(a), tensors(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    let (mut diff, mut max) = (0f32, 0f32);
    for (k, va) in a.iter().filter(|(k, _)| k.starts_with("model.")) {
        for (x, y) in va.iter().zip(&b[k]) {
            diff = diff.max((x - y).abs());
            max = max.max(x.abs());
        }
    }
    (diff, max)
}

#[test]
fn two_ranks_match_one_process_and_resume_exactly() {
    let dir = temp_dir("mpi");
    // Batch 4: two ranks of 2 images each. The tiny U-Net has no dropout, so the only
    // difference from one process is the order of the sums.
    let cfg = tiny_config(&dir, 4, 0);
    let state = |run: &str| dir.join(run).join("train_state.safetensors");
    let out = |run: &str| dir.join(run).display().to_string();

    let one = train(1, &cfg, &["--out", &out("one")]);
    assert!(stderr(&one).contains("done"), "{}", stderr(&one));
    let two = train(2, &cfg, &["--out", &out("two")]);
    let e = stderr(&two);
    // Rank 0 alone reports and writes.
    assert_eq!(e.matches("prism train:").count(), 1, "{e}");
    assert!(e.contains("2 processes of batch 2"), "{e}");
    let (diff, max) = weight_difference(&state("one"), &state("two"));
    eprintln!(
        "1 process (batch 4) vs 2 ranks (batch 2 each), 4 steps: max |Δw| = {diff:e} (max |w| = {max})"
    );
    assert!(diff < 1e-4 * max.max(1.0), "{diff}");
    let lines = std::fs::read_to_string(dir.join("two/metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 4, "{lines}");

    // Two ranks stopped after 2 steps and resumed: bit-for-bit the uninterrupted two-rank run.
    train(2, &cfg, &["--out", &out("half"), "--steps", "2"]);
    train(2, &cfg, &["--resume", &out("half"), "--steps", "4"]);
    assert_eq!(tensors(&state("half")), tensors(&state("two")));

    // Two ranks resume a checkpoint of one process.
    train(1, &cfg, &["--out", &out("mixed"), "--steps", "2"]);
    train(2, &cfg, &["--resume", &out("mixed"), "--steps", "4"]);
    let (diff, _) = weight_difference(&state("mixed"), &state("one"));
    assert!(diff < 1e-4 * max.max(1.0), "{diff}");

    // A batch the ranks cannot share equally is refused by name.
    let odd = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("batch_size = 4", "batch_size = 3");
    let odd_cfg = dir.join("odd.toml");
    std::fs::write(&odd_cfg, odd).unwrap();
    let o = Command::new("mpirun")
        .args(["--allow-run-as-root", "--oversubscribe", "-np", "2"])
        .args(["--mca", "btl_vader_single_copy_mechanism", "none"])
        .arg(env!("CARGO_BIN_EXE_prism"))
        .args(["train", "--quiet", "--no-pictures", "--config"])
        .arg(&odd_cfg)
        .arg("--out")
        .arg(dir.join("odd"))
        .output()
        .unwrap();
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("train.batch_size = 3") && !e.contains("panicked"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).ok();
}
