//! The `prism` binary as a user meets it: outputs, and clear errors (non-zero exit, no panic).
//!
//! Over 400 lines on purpose: one file is one test binary, and every test here spawns the same
//! `prism` build through the helpers at the top; splitting it would only add link time.

mod common;

use std::process::Output;

use common::{cli, fails_with, root, stderr, temp_dir, tiny_config, train_until_signal};

#[test]
fn schedule_csv_has_header_and_inclusive_range() {
    let o = cli(
        "schedule --kind shifted --image-size 256 --points 5 --format csv",
        &[],
    );
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
    let o = cli(
        "schedule --kind interpolated --image-size 512 --plot {}",
        &[&out],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    std::fs::remove_file(out).ok();
}

#[test]
fn bad_inputs_fail_cleanly_with_names() {
    let o = cli("sample --checkpoint no/such/model.safetensors", &[]);
    fails_with(&o, "no/such/model.safetensors");

    let o = cli("sample --checkpoint x --sampler lms", &[]);
    assert!(
        stderr(&o).contains("unknown sampler 'lms'"),
        "{}",
        stderr(&o)
    );

    let cfg = std::env::temp_dir().join(format!("prism-bad-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(root().join("configs/fashion-mnist.toml"))
        .unwrap()
        .replace("[train]", "[train]\nbatchsize = 3");
    std::fs::write(&cfg, text).unwrap();
    let o = cli("train --config {}", &[&cfg]);
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("batchsize") && e.contains(cfg.to_str().unwrap()),
        "{e}"
    );
    std::fs::remove_file(cfg).ok();

    let o = std::process::Command::new(env!("CARGO_BIN_EXE_prism"))
        .args(["schedule", "--points", "3"])
        .env("BURN_DEVICE", "nosuchgpu")
        .output()
        .unwrap();
    fails_with(&o, "BURN_DEVICE=nosuchgpu names no backend");
    assert!(stderr(&o).contains("flex"), "{}", stderr(&o));

    let o = cli("schedule --points 1", &[]);
    assert!(
        !o.status.success() && stderr(&o).contains("--points"),
        "{}",
        stderr(&o)
    );
}

/// The samplers and spacings of k-diffusion and diffusers through the binary on the shipped
/// checkpoint (a few images, a few steps), the device named on stderr, and the spacing flags'
/// numbers refused with the flag named.
#[test]
fn new_samplers_and_spacings_sample_the_shipped_checkpoint() {
    let dir = temp_dir("new-samplers");
    let model = root().join("checkpoints/fashion-mnist-cond/model.safetensors");
    let out = dir.join("grid.png");
    for flags in [
        "--sampler euler",
        "--sampler heun --spacing karras --rho 5",
        "--sampler dpmpp-2m-sde --spacing logsnr",
        "--sampler dpmpp-3m-sde --sigma-min 0.01 --sigma-max 80",
        "--sampler unipc --spacing time",
    ] {
        let line = format!("sample --checkpoint {{}} --num 2 --steps 5 {flags} --out {{}}");
        let o = cli(&line, &[&model, &out]);
        let e = stderr(&o);
        assert!(o.status.success(), "{flags}: {e}");
        assert!(e.contains("prism: device") && e.contains("Flex"), "{e}");
        let name = flags.split_whitespace().nth(1).unwrap();
        assert!(e.contains(name), "{e}");
        assert!(std::fs::metadata(&out).unwrap().len() > 0);
        std::fs::remove_file(&out).ok();
    }
    for (flags, needle) in [
        ("--sampler heun --spacing karras --rho 0", "--rho"),
        ("--sampler heun --spacing logsnr --rho 7", "--rho"),
        ("--sampler heun --spacing linearish", "unknown spacing"),
        ("--sampler unipc --sigma-min 2 --sigma-max 1", "--sigma-min"),
        ("--sampler unipc --sigma-max 1e9", "--sigma-max"),
        ("--sampler ddim --sigma-min 0.01", "do not apply to 'ddim'"),
    ] {
        let line = format!("sample --checkpoint {{}} --num 2 --steps 5 {flags} --out {{}}");
        fails_with(&cli(&line, &[&model, &out]), needle);
    }
    std::fs::remove_dir_all(dir).ok();
}

/// `prism forward` of `dir/in.png` with the shipped `preset` into `dir/strip.png`; asserts success.
fn forward(dir: &std::path::Path, preset: &str, flags: &str) -> (Output, std::path::PathBuf) {
    let strip = dir.join("strip.png");
    let o = cli(
        &format!("forward --config {{}} --image {{}} {flags} --out {{}}"),
        &[
            &root().join("configs").join(preset),
            &dir.join("in.png"),
            &strip,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    (o, strip)
}

#[test]
fn forward_strip_is_written() {
    let dir = temp_dir("fwd");
    let img = dir.join("in.png");
    image::RgbImage::from_fn(40, 30, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 8) as u8, 128])
    })
    .save(&img)
    .unwrap();
    let (_, strip) = forward(&dir, "fashion-mnist.toml", "");
    let strip = image::open(strip).unwrap();
    // five 32-pixel panels with 2-pixel borders
    assert_eq!((strip.width(), strip.height()), (5 * 34 + 2, 36));
    std::fs::remove_dir_all(dir).ok();
}

/// Ctrl-C (SIGINT) stops after the current step, saves, exits with 130; `--resume` then finishes.
#[test]
fn ctrl_c_saves_and_resume_finishes() {
    let dir = temp_dir("ctrlc");
    let cfg = tiny_config(&dir, 100_000, 50);
    let run = dir.join("run");
    train_until_signal(&cfg, &run, "INT");
    let state = run.join("train_state.safetensors");
    let st = safetensors::SafeTensors::read_metadata(&std::fs::read(&state).unwrap())
        .unwrap()
        .1;
    let step: u64 = st.metadata().as_ref().unwrap()["step"].parse().unwrap();
    assert!(step >= 2);

    let o = cli(
        "train --quiet --config {} --resume {} --steps {}",
        &[&cfg, &run, &(step + 2).to_string()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("samples.png").exists() && run.join("loss.png").exists());
    std::fs::remove_dir_all(dir).ok();
}

/// `prism eval` with the feature metrics on the shipped checkpoint and classifier, as a user runs
/// it: every figure comes with its real-vs-real floor, and 3-step samples are measurably worse than
/// real held-out images under every metric.
#[test]
fn eval_feature_metrics_on_the_shipped_checkpoint() {
    let json = std::env::temp_dir().join(format!("prism-eval-{}.json", std::process::id()));
    let model = root().join("checkpoints/fashion-mnist-cond/model.safetensors");
    let classifier = root().join("checkpoints/fashion-mnist-classifier/classifier.safetensors");
    let data = root().join("data/fashion-mnist/t10k-images-idx3-ubyte.gz");
    let o = cli(
        "eval --checkpoint {} --data {} --metrics swd,kid,fid,pr --features {} --num 40 --steps 2 --kid-subsets 10 --kid-subset-size 20 --json {}",
        &[&model, &data, &classifier, &json],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    for label in ["SWD", "KID", "FID", "precision / recall", "real vs real"] {
        assert!(out.contains(label), "no '{label}' in:\n{out}");
    }
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).ok();
    assert_eq!(r["num"], 40);
    assert_eq!(r["samples"]["steps"], 2);
    assert_eq!(r["features"]["dim"], 128);
    let f = |v: &serde_json::Value| v.as_f64().expect("a number");
    assert!(f(&r["fid"]["value"]) > f(&r["fid"]["real_vs_real"]), "{r}");
    assert!(
        f(&r["kid"]["mean"]) > f(&r["kid"]["real_vs_real"]["mean"]),
        "{r}"
    );
    assert!(
        f(&r["swd"]["mean"]) > f(&r["swd"]["real_vs_real"]["mean"]),
        "{r}"
    );
    for key in ["precision", "recall"] {
        let v = f(&r["precision_recall"][key]);
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    assert!(
        r["kid"]["subsets"] == 10 && r["kid"]["subset_size"] == 20,
        "{r}"
    );
}

/// `--metrics acc`: the shipped classifier sorts the shipped class-conditional model's samples
/// into the classes they were drawn for far above chance (10 %), and sorts real held-out images
/// at about its recorded test accuracy (90.8 %); a missing classifier is named.
#[test]
fn eval_class_accuracy_of_guided_samples() {
    let json = std::env::temp_dir().join(format!("prism-eval-acc-{}.json", std::process::id()));
    let model = root().join("checkpoints/fashion-mnist-cond/model.safetensors");
    let classifier = root().join("checkpoints/fashion-mnist-classifier/classifier.safetensors");
    let data = root().join("data/fashion-mnist/t10k-images-idx3-ubyte.gz");
    let o = cli(
        "eval --checkpoint {} --data {} --metrics acc --classifier {} --num 40 --steps 10 --json {}",
        &[&model, &data, &classifier, &json],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).ok();
    let acc = &r["class_accuracy"];
    let f = |v: &serde_json::Value| v.as_f64().expect("a number");
    assert!(f(&acc["accuracy"]) > 0.5, "{r}");
    assert!(f(&acc["real_held_out"]) > 0.8, "{r}");
    assert_eq!(acc["per_class"].as_array().unwrap().len(), 10);
    let o = cli(
        "eval --checkpoint {} --metrics acc --num 4 --steps 2",
        &[&model],
    );
    fails_with(&o, "--metrics acc needs --classifier FILE");
}

/// `--mse-logsnr` measures the denoising error at the given noise levels (what compares models
/// trained with different schedules): the JSON records the logSNR of each row, the error falls
/// as the logSNR rises, and a level outside the schedule is refused with the flag's name.
#[test]
fn eval_mse_at_given_logsnr() {
    let json = std::env::temp_dir().join(format!("prism-eval-mse-{}.json", std::process::id()));
    let model = root().join("checkpoints/fashion-mnist-cond/model.safetensors");
    let data = root().join("data/fashion-mnist/t10k-images-idx3-ubyte.gz");
    let eval = |levels: &str| {
        cli(
            "eval --checkpoint {} --data {} --metrics mse --num 32 {} --json {}",
            &[&model, &data, &format!("--mse-logsnr={levels}"), &json],
        )
    };
    let o = eval("4,0,-4");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("logSNR"));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).ok();
    let rows = r["denoise_mse"].as_array().expect("rows");
    let f = |v: &serde_json::Value| v.as_f64().expect("a number");
    for (row, want) in rows.iter().zip([4.0, 0.0, -4.0]) {
        assert!((f(&row["logsnr"]) - want).abs() < 1e-6, "{row}");
    }
    assert!(f(&rows[0]["mse_model"]) < f(&rows[1]["mse_model"]), "{r}");
    assert!(f(&rows[1]["mse_model"]) < f(&rows[2]["mse_model"]), "{r}");

    let o = eval("40");
    fails_with(&o, "--mse-logsnr");
}

#[test]
fn eval_feature_metrics_need_a_feature_network() {
    let model = root().join("checkpoints/fashion-mnist-cond/model.safetensors");
    let o = cli("eval --checkpoint {} --metrics kid", &[&model]);
    fails_with(&o, "--features");
    let o = cli(
        "eval --checkpoint {} --metrics fid --features {}",
        &[&model, &model],
    );
    fails_with(&o, "feature network");
}

/// The blurring process through the binary: training, sampling with the config's sampler and
/// with DPM-Solver++, refusal of bits/dim, and the forward strip without noise.
#[test]
fn blurring_model_trains_samples_and_refuses_what_it_lacks() {
    let dir = temp_dir("blur");
    let gaussian = tiny_config(&dir, 2, 50);
    let text = std::fs::read_to_string(&gaussian)
        .unwrap()
        .replace(
            "kind = \"gaussian\"\nschedule = { kind = \"cosine\", logsnr_min = -15.0, logsnr_max = 15.0 }",
            "kind = \"blurring\"\nblur_sigma_max = 4.0",
        )
        .replace("parameterization = \"v\"", "parameterization = \"eps\"")
        .replace("sampler = \"dpmpp-2m\"", "sampler = \"ddpm\"");
    assert!(text.contains("blurring") && text.contains("\"ddpm\""));
    let cfg = dir.join("blur.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    let o = cli("train --quiet --config {} --out {}", &[&cfg, &run]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = run.join("model.safetensors");
    let model = model.to_str().unwrap();

    let out = dir.join("s.png");
    let o = cli(
        "sample --checkpoint {} --num 2 --steps 3 --out {}",
        &[&model, &out],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("ddpm (time spacing) with 3 steps"),
        "{}",
        stderr(&o)
    );
    assert!(out.exists());

    // DDIM and DPM-Solver++ run in the process's DCT basis.
    let o = cli(
        "sample --checkpoint {} --num 2 --steps 3 --sampler dpmpp-2m --out {}",
        &[&model, &out],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("dpmpp-2m (logsnr spacing) with 3 steps"),
        "{}",
        stderr(&o)
    );

    let o = cli("eval --checkpoint {} --metrics mse,bpd --num 4", &[&model]);
    let e = stderr(&o);
    assert!(!o.status.success() && !e.contains("panicked"), "{e}");
    assert!(
        e.contains("bits/dim is implemented for the Gaussian process only")
            && e.contains("blurring"),
        "{e}"
    );
    let o = cli("eval --checkpoint {} --num 4 --steps 2", &[&model]);
    // The default metrics leave bits/dim out for a blurring model.
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("MSE") && out.contains("SWD") && !out.contains("bits/dim"),
        "{out}"
    );

    let img = dir.join("in.png");
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x + y) * 4) as u8]))
        .save(&img)
        .unwrap();
    let (o, strip) = forward(&dir, "fashion-mnist-blur.toml", "--no-noise");
    assert!(
        stderr(&o).contains("blur σ_B = 20.000 px"),
        "{}",
        stderr(&o)
    );
    assert_eq!(image::open(&strip).unwrap().width(), 5 * 34 + 2);
    std::fs::remove_dir_all(dir).ok();
}

/// `prism bench` times both steps and reports the peak; `train --no-pictures` writes no grid.
#[test]
fn bench_reports_steps_and_memory_and_training_can_skip_pictures() {
    let dir = temp_dir("bench");
    let config = tiny_config(&dir, 2, 50);
    let o = cli(
        "bench --config {} --batch 2 --train-steps 2 --sample-steps 2",
        &[&config],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}{out}", stderr(&o));
    assert!(out.contains("parameters: "), "{out}");
    assert!(
        out.contains("sampling (") && out.contains("training (batch 2"),
        "{out}"
    );
    if cfg!(target_os = "linux") {
        assert!(
            out.contains("peak resident") && out.contains(" GiB"),
            "{out}"
        );
    }
    let o = cli("bench --config {} --train-steps 0", &[&config]);
    assert!(!o.status.success() && stderr(&o).contains("--train-steps"));

    let run = dir.join("run");
    let o = cli(
        "train --config {} --out {} --quiet --no-pictures",
        &[&config, &run],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("model.safetensors").exists());
    assert!(!run.join("samples.png").exists());
    std::fs::remove_dir_all(&dir).ok();
}

/// The Laplacian process through the binary: training (three resolutions, one shared network, then
/// one network per resolution), `prism sample` with every sampler and `prism eval` unchanged on
/// its checkpoints, the trajectory picture and the errors around the switches, and the forward
/// strip whose late panels are upsampled low-resolution states, with its band rows.
#[test]
fn laplacian_model_trains_samples_and_evaluates() {
    let dir = temp_dir("laplacian");
    let gaussian = tiny_config(&dir, 2, 50);
    let text = std::fs::read_to_string(&gaussian)
        .unwrap()
        .replace(
            "kind = \"gaussian\"\n",
            "kind = \"laplacian\"\nlevels = 3\nswitch_times = [0.35, 0.65]\nimage_size = 16\n",
        )
        .replace(
            "sampler = \"dpmpp-2m\"\nsteps = 2\n",
            "sampler = \"dpmpp-2m\"\nsteps = 3\n",
        );
    assert!(text.contains("laplacian"));
    let cfg = dir.join("laplacian.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    let o = cli("train --quiet --config {} --out {}", &[&cfg, &run]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = run.join("model.safetensors");
    let model = model.to_str().unwrap();
    let out = dir.join("s.png");
    for sampler in ["ddpm", "ddim", "dpmpp-2m"] {
        let o = cli(
            &format!("sample --checkpoint {{}} --num 2 --steps 4 --sampler {sampler} --out {{}}"),
            &[&model, &out],
        );
        assert!(o.status.success(), "{sampler}: {}", stderr(&o));
        let png = image::open(&out).unwrap();
        assert!(png.width() >= 2 * 16, "{sampler}: {}", png.width());
    }
    let o = cli("eval --checkpoint {} --num 4 --steps 3", &[&model]);
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert!(
        printed.contains("MSE") && printed.contains("SWD"),
        "{printed}"
    );

    // One network per resolution: trains, samples (with the trajectory picture across both
    // switches) and evaluates unchanged, including the errors around the switches.
    let per_res = dir.join("per-resolution.toml");
    std::fs::write(
        &per_res,
        std::fs::read_to_string(&cfg).unwrap().replace(
            "parameterization = \"v\"\n",
            "parameterization = \"v\"\nnetworks = \"per_resolution\"\n",
        ),
    )
    .unwrap();
    let run = dir.join("run-per-resolution");
    let o = cli("train --quiet --config {} --out {}", &[&per_res, &run]);
    assert!(o.status.success(), "{}", stderr(&o));
    let model = run.join("model.safetensors");
    let trajectory = dir.join("trajectory.png");
    let o = cli(
        "sample --checkpoint {} --num 2 --steps 9 --sampler ddpm --out {} --trajectory {} --trajectory-frames 8",
        &[&model, &out, &trajectory],
    );
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    // 9 evaluations, 3 per segment: the first and last, and both sides of the two switches.
    assert!(e.contains("trajectory column 7: evaluation 9/9"), "{e}");
    assert!(e.contains("state 4²") && e.contains("state 16²"), "{e}");
    let picture = image::open(&trajectory).unwrap();
    assert_eq!(
        (picture.width(), picture.height()),
        (8 * 18 + 2, 2 * 18 + 2)
    );
    let o = cli(
        "eval --checkpoint {} --num 4 --metrics mse,switch --switch-delta 0.02",
        &[&model],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let printed = String::from_utf8_lossy(&o.stdout);
    assert!(
        printed.contains("16²→8²") && printed.contains("8²→4²"),
        "{printed}"
    );
    let o = cli(
        "eval --checkpoint {} --num 4 --metrics switch --switch-delta 0.1",
        &[&model],
    );
    fails_with(&o, "reaches the next switch");

    let img = dir.join("in.png");
    image::GrayImage::from_fn(28, 28, |x, y| image::Luma([((x * y) % 256) as u8]))
        .save(&img)
        .unwrap();
    let (o, strip) = forward(&dir, "fashion-mnist-laplacian.toml", "--t 0,0.3,0.5,0.8,1");
    let e = stderr(&o);
    assert!(e.contains("state 32²") && e.contains("state 8²"), "{e}");
    assert_eq!(image::open(&strip).unwrap().width(), 5 * 34 + 2);
    // --bands: three band rows above the strip.
    let (o, strip) = forward(
        &dir,
        "fashion-mnist-laplacian.toml",
        "--t 0,0.3,0.5,0.8,1 --bands",
    );
    assert!(stderr(&o).contains("3 band(s)"), "{}", stderr(&o));
    let strip = image::open(&strip).unwrap();
    assert_eq!((strip.width(), strip.height()), (5 * 34 + 2, 4 * 34 + 2));
    std::fs::remove_dir_all(dir).ok();
}

/// `prism inpaint` fills the white region of the mask and keeps every other pixel of the input
/// exactly; a mask or image of the wrong size and a model that does not inpaint are refused.
#[test]
fn inpaint_keeps_the_known_region_exactly() {
    let dir = temp_dir("inpaint");
    let text = std::fs::read_to_string(tiny_config(&dir, 2, 50))
        .unwrap()
        .replace("[process]", "[stage]\nkind = \"inpaint\"\n\n[process]")
        .replace(
            "channels = 1\nbase_channels",
            "channels = 1\ncond_channels = 2\nbase_channels",
        )
        .replace("num_classes = 10\n", "")
        .replace("guidance = 1.5", "guidance = 1.0");
    let cfg = dir.join("inpaint.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    let o = cli(
        "train --quiet --no-pictures --config {} --out {}",
        &[&cfg, &run],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let model = run.join("model.safetensors");

    let (img, mask, out) = (
        dir.join("in.png"),
        dir.join("mask.png"),
        dir.join("out.png"),
    );
    let input = image::GrayImage::from_fn(16, 16, |x, y| image::Luma([(x * 13 + y * 3) as u8]));
    input.save(&img).unwrap();
    let hole = |x: u32, y: u32| (4..10).contains(&x) && (6..12).contains(&y);
    image::GrayImage::from_fn(16, 16, |x, y| {
        image::Luma([if hole(x, y) { 255 } else { 0 }])
    })
    .save(&mask)
    .unwrap();
    let o = cli(
        "inpaint --checkpoint {} --image {} --mask {} --steps 3 --out {}",
        &[&model, &img, &mask, &out],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let filled = image::open(&out).unwrap().to_luma8();
    assert_eq!(filled.dimensions(), (16, 16));
    assert_only_the_hole_changed(&filled, &input, hole);

    let small = dir.join("small.png");
    image::GrayImage::new(8, 8).save(&small).unwrap();
    let o = cli(
        "inpaint --checkpoint {} --image {} --mask {} --out {}",
        &[&model, &img, &small, &out],
    );
    fails_with(&o, "give a mask of the image's size");
    let o = cli(
        "inpaint --checkpoint {} --image {} --mask {} --out {}",
        &[&model, &small, &small, &out],
    );
    fails_with(&o, "this model fills 16×16 images");
    let o = cli(
        "sample --checkpoint {} --num 1 --steps 1 --out {}",
        &[&model, &dir.join("samples.png")],
    );
    fails_with(&o, "is an inpainting model");
    std::fs::remove_dir_all(dir).ok();
}

/// Every pixel of `filled` outside `hole` is `input`'s, bit for bit, and some pixel inside differs.
fn assert_only_the_hole_changed<P>(
    filled: &image::ImageBuffer<P, Vec<u8>>,
    input: &image::ImageBuffer<P, Vec<u8>>,
    hole: impl Fn(u32, u32) -> bool,
) where
    P: image::Pixel<Subpixel = u8> + PartialEq + std::fmt::Debug,
{
    let mut changed = 0;
    for (x, y, p) in filled.enumerate_pixels() {
        if hole(x, y) {
            changed += usize::from(p != input.get_pixel(x, y));
        } else {
            assert_eq!(p, input.get_pixel(x, y), "known pixel ({x}, {y})");
        }
    }
    assert!(changed > 0, "the hole is filled");
}

/// `prism inpaint` with a latent inpainting model (LDM's concat conditioning in the latent space
/// of the tiny SD-configured diffusers VAE, f = 8; trained for two steps with latents encoded on
/// the fly): the output keeps every known pixel of the RGB input exactly and fills the hole.
#[test]
fn inpaint_in_a_latent_space_keeps_the_known_region_exactly() {
    let dir = temp_dir("inpaint-latent");
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 0..8u32 {
        image::RgbImage::from_fn(32, 32, |x, y| {
            image::Rgb([(x * 8) as u8, (y * 8) as u8, (i * 30) as u8])
        })
        .save(imgs.join(format!("{i}.png")))
        .unwrap();
    }
    let vae = root().join("crates/prism/tests/data/sd_vae_tiny");
    let text = format!(
        r#"name = "latent-inpaint"
[data]
path = "{}"
image_size = 32
channels = 3
held_out = 2
[space]
kind = "latent"
autoencoder = "{}"
latents = "on_the_fly"
[stage]
kind = "inpaint"
[model]
parameterization = "v"
[model.unet]
channels = 4
cond_channels = 5
base_channels = 16
channel_mults = [1, 2]
res_blocks = 1
head_channels = 16
norm_groups = 4
[train]
steps = 2
batch_size = 3
lr = 1e-3
log_every = 1
[sample]
steps = 2
num = 2
clip_x0 = false
"#,
        imgs.display(),
        vae.display()
    );
    let cfg = dir.join("inpaint.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    let o = cli(
        "train --quiet --no-pictures --config {} --out {}",
        &[&cfg, &run],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let (img, mask, out) = (
        dir.join("in.png"),
        dir.join("mask.png"),
        dir.join("out.png"),
    );
    let input = image::RgbImage::from_fn(32, 32, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
    });
    input.save(&img).unwrap();
    let hole = |x: u32, y: u32| (5..19).contains(&x) && (9..27).contains(&y);
    image::GrayImage::from_fn(32, 32, |x, y| {
        image::Luma([if hole(x, y) { 255 } else { 0 }])
    })
    .save(&mask)
    .unwrap();
    let o = cli(
        "inpaint --checkpoint {} --image {} --mask {} --steps 3 --out {}",
        &[&run.join("model.safetensors"), &img, &mask, &out],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let filled = image::open(&out).unwrap().to_rgb8();
    assert_eq!(filled.dimensions(), (32, 32));
    assert_only_the_hole_changed(&filled, &input, hole);
    std::fs::remove_dir_all(dir).ok();
}

/// `prism upscale` with a super-resolution stage (2×, trained for two steps): a 13×10 image
/// becomes 26×20, and at 4× (two passes) 52×40, in 8² tiles; every flag is checked with a
/// message that names it.
#[test]
fn upscale_writes_the_scaled_image_and_checks_its_flags() {
    let dir = temp_dir("upscale");
    let base = tiny_config(&dir, 2, 50);
    let text = std::fs::read_to_string(&base)
        .unwrap()
        .replace(
            "[process]",
            "[stage]\nkind = \"super_resolution\"\nfactor = 2\nnoise_aug_max = 0.3\nnoise_aug = 0.1\n\n[process]",
        )
        .replace(
            "num_classes = 10",
            "cond_channels = 1\ncond_noise_level = true",
        )
        .replace("guidance = 1.5", "guidance = 1.0");
    let cfg = dir.join("sr.toml");
    std::fs::write(&cfg, text).unwrap();
    let run = dir.join("run");
    let o = cli(
        "train --quiet --no-pictures --config {} --out {}",
        &[&cfg, &run],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let model = run.join("model.safetensors");
    let img = dir.join("in.png");
    image::GrayImage::from_fn(13, 10, |x, y| image::Luma([((x * 17 + y * 9) % 256) as u8]))
        .save(&img)
        .unwrap();
    let out = dir.join("up.png");
    let dims = |p: &std::path::Path| {
        let i = image::open(p).unwrap();
        (i.width(), i.height())
    };
    let up = |flags: &str, out: &std::path::Path| {
        cli(
            &format!("upscale --checkpoint {{}} --image {{}} --out {{}} --steps 2 {flags}"),
            &[&model, &img, &out],
        )
    };
    let o = up("--scale 2 --tile 8 --overlap 4", &out);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(dims(&out), (26, 20));
    let jpg = dir.join("up.jpg");
    let o = up("--scale 4 --tile 8 --overlap 2", &jpg);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 times"), "{}", stderr(&o));
    assert_eq!(dims(&jpg), (52, 40));

    fails_with(
        &up("--scale 3", &out),
        "--scale 3 must be the stage's factor 2",
    );
    fails_with(&up("--scale 2", &dir.join("up.gif")), "--out");
    fails_with(&up("--scale 2 --noise-aug 0.5", &out), "--noise-aug = 0.5");
    fails_with(&up("--scale 2 --tile 8 --overlap 8", &out), "overlap");
    let o = cli(
        "upscale --checkpoint {} --image {} --out {} --scale 2 --steps 0",
        &[&model, &img, &out],
    );
    fails_with(&o, "--steps");
    let o = cli(
        "upscale --checkpoint {} --image {} --scale 2 --out {}",
        &[&model, &dir.join("missing.png"), &out],
    );
    fails_with(&o, "missing.png");
    let plain = dir.join("plain");
    let o = cli(
        "train --quiet --no-pictures --config {} --out {}",
        &[&base, &plain],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = cli(
        "upscale --checkpoint {} --image {} --scale 2 --out {}",
        &[&plain.join("model.safetensors"), &img, &out],
    );
    fails_with(&o, "base model");
    std::fs::remove_dir_all(dir).ok();
}

/// `prism reconstruct` takes a diffusers VAE folder (the tiny SD-configured golden one): with
/// `--data` and `--image-size` it writes the grid; without them, or with a size the factor does not
/// divide, it says what to pass.
#[test]
fn reconstruct_takes_a_diffusers_vae() {
    let dir = temp_dir("reconstruct-sdvae");
    let vae = root().join("crates/prism/tests/data/sd_vae_tiny");
    let imgs = dir.join("imgs");
    std::fs::create_dir_all(&imgs).unwrap();
    for i in 0..2u32 {
        image::RgbImage::from_fn(40, 40, |x, y| {
            image::Rgb([(x * 6) as u8, (y * 6) as u8, (i * 100) as u8])
        })
        .save(imgs.join(format!("{i}.png")))
        .unwrap();
    }
    let grid = dir.join("grid.png");
    let o = cli(
        "reconstruct --checkpoint {} --data {} --image-size 32 --num 2 --out {}",
        &[&vae, &imgs, &grid],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 images, mean |x − x̂|"),
        "{}",
        stderr(&o)
    );
    image::open(&grid).unwrap();
    let o = cli("reconstruct --checkpoint {} --out {}", &[&vae, &grid]);
    fails_with(
        &o,
        "is a diffusers VAE, with no training data of its own: pass --data and --image-size",
    );
    let o = cli(
        "reconstruct --checkpoint {} --data {} --image-size 36 --out {}",
        &[&vae, &imgs, &grid],
    );
    fails_with(
        &o,
        "--image-size must be a positive multiple of the autoencoder's factor 8, got 36",
    );
    std::fs::remove_dir_all(&dir).ok();
}
