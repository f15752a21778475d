//! Property test of the CLI's numeric flags: every command run with edge values (NaN, ±inf, 0,
//! negatives, overflowing integers, words) in its number flags exits 0, 1 (an error naming what is
//! wrong) or 2 (clap's usage error) — never a panic or a signal. A fixed seed and a bounded
//! number of cases (each case is a process); `PROPTEST_CASES=N` for a longer run
//! (`tools/fuzz.sh`).

mod common;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use common::{prism, root, stderr, temp_dir, tiny_config};

/// Numbers and non-numbers that break naive handling; 1 and 2 keep valid runs short.
const EDGE: [&str; 16] = [
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1",
    "2",
    "-0.0",
    "0.5",
    "1e308",
    "1e-320",
    "18446744073709551616",
    "4294967297",
    "9007199254740993",
    "abc",
    "",
];

fn settings(default: u32) -> Config {
    let mut c = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = default;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        c.rng_seed = RngSeed::Fixed(0xf1a9);
    }
    c.failure_persistence = None;
    c
}

fn shipped() -> String {
    root()
        .join("checkpoints/fashion-mnist-cond/model.safetensors")
        .display()
        .to_string()
}

proptest! {
    #![proptest_config(settings(40))]

    #[test]
    fn numeric_flags_never_panic(command in 0usize..5, values in prop::collection::vec(0usize..EDGE.len(), 5)) {
        let v = |i: usize| EDGE[values[i]].to_string();
        let dir = temp_dir(&format!("flags-{command}-{}", values.iter().map(|x| x.to_string()).collect::<String>()));
        let png = dir.join("x.png").display().to_string();
        let args: Vec<String> = match command {
            0 => vec!["schedule".into(), "--kind".into(), "shifted".into(), "--image-size".into(), v(0),
                      "--reference-size".into(), v(1), "--points".into(), v(2),
                      "--logsnr-min".into(), v(3), "--logsnr-max".into(), v(4)],
            1 => vec!["sample".into(), "--checkpoint".into(), shipped(), "--num".into(), v(0),
                      "--steps".into(), v(1), "--guidance".into(), v(2), "--seed".into(), v(3),
                      "--out".into(), png],
            2 => vec!["eval".into(), "--checkpoint".into(), shipped(), "--metrics".into(), "mse".into(),
                      "--num".into(), v(0), "--draws".into(), v(1), "--logsnr-max".into(), v(2),
                      "--seed".into(), v(3)],
            3 => {
                let cfg = tiny_config(&dir, 1, 0).display().to_string();
                // Not the huge step counts: they are valid, and would train for ever.
                let steps = ["0", "-1", "1", "nan", "abc", "", "18446744073709551616"][values[0] % 7];
                vec!["train".into(), "--quiet".into(), "--no-pictures".into(), "--config".into(), cfg,
                     "--steps".into(), steps.into(), "--out".into(), dir.join("run").display().to_string()]
            }
            _ => vec!["forward".into(), "--config".into(),
                      root().join("configs/fashion-mnist-cond.toml").display().to_string(),
                      "--image".into(), root().join("docs/fashion-mnist-cond-samples.png").display().to_string(),
                      "--t".into(), format!("{},{}", v(0), v(1)), "--seed".into(), v(2), "--out".into(), png],
        };
        let o = prism(&args);
        let e = stderr(&o);
        std::fs::remove_dir_all(&dir).ok();
        prop_assert!(!e.contains("panicked"), "{args:?} panicked: {e}");
        prop_assert!(matches!(o.status.code(), Some(0..=2)), "{args:?} exited with {:?}: {e}", o.status.code());
        if o.status.code() == Some(1) {
            prop_assert!(e.contains("error:"), "{args:?}: {e}");
        }
    }
}
