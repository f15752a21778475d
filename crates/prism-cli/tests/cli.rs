//! The `prism` binary as a user meets it: outputs, and clear errors (non-zero exit, no panic).

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

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn schedule_csv_has_header_and_inclusive_range() {
    let o = prism(&[
        "schedule",
        "--kind",
        "shifted",
        "--image-size",
        "256",
        "--points",
        "5",
        "--format",
        "csv",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8(o.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "t,logsnr,alpha,sigma");
    assert_eq!(lines.len(), 6);
    let first: Vec<f64> = lines[1].split(',').map(|v| v.parse().unwrap()).collect();
    let last: Vec<f64> = lines[5].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!((first[0], last[0]), (0.0, 1.0));
    // clip-then-shift: λ(0) = 15 + 2 log(64/256)
    assert!(
        (first[1] - (15.0 + 2.0 * (0.25f64).ln())).abs() < 1e-9,
        "{}",
        lines[1]
    );
}

#[test]
fn schedule_plot_writes_a_png() {
    let out = std::env::temp_dir().join(format!("prism-sched-{}.png", std::process::id()));
    let o = prism(&[
        "schedule",
        "--kind",
        "interpolated",
        "--image-size",
        "512",
        "--plot",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    std::fs::remove_file(out).ok();
}

#[test]
fn bad_inputs_fail_cleanly_with_names() {
    let o = prism(&["sample", "--checkpoint", "no/such/model.safetensors"]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("no/such/model.safetensors") && !e.contains("panicked"),
        "{e}"
    );

    let o = prism(&["sample", "--checkpoint", "x", "--sampler", "euler"]);
    assert!(
        stderr(&o).contains("unknown sampler 'euler'"),
        "{}",
        stderr(&o)
    );

    let cfg = std::env::temp_dir().join(format!("prism-bad-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(root().join("configs/fashion-mnist.toml"))
        .unwrap()
        .replace("[train]", "[train]\nbatchsize = 3");
    std::fs::write(&cfg, text).unwrap();
    let o = prism(&["train", "--config", cfg.to_str().unwrap()]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("batchsize") && e.contains(cfg.to_str().unwrap()),
        "{e}"
    );
    std::fs::remove_file(cfg).ok();

    let o = prism(&["schedule", "--points", "1"]);
    assert!(
        !o.status.success() && stderr(&o).contains("--points"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn forward_strip_is_written() {
    let dir = std::env::temp_dir().join(format!("prism-fwd-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("in.png");
    image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 128])
    })
    .save(&img)
    .unwrap();
    let out = dir.join("strip.png");
    let cfg = root().join("configs/fashion-mnist.toml");
    let o = prism(&[
        "forward",
        "--config",
        cfg.to_str().unwrap(),
        "--image",
        img.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let strip = image::open(&out).unwrap();
    // five 32-pixel panels with 2-pixel borders
    assert_eq!((strip.width(), strip.height()), (5 * 34 + 2, 36));
    std::fs::remove_dir_all(dir).ok();
}
