//! U-Net training step (forward, MSE loss, backward, AdamW, as in the PyTorch peer) and one sampling step (forward without
//! autodiff), at the Fashion-MNIST preset's size and at the 7.3 M-parameter `bench` size.
//! `tools/bench_torch.py` measures the same architectures in PyTorch; see BENCHMARKS.md.
//!
//! Run: `cargo bench --profile release -p prism --bench unet` (the release profile shares the
//! test build; the default `bench` profile would rebuild every dependency).

use burn::module::Module;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prism::denoiser::ModelConfig;
use prism::nn::Condition;
use prism::nn::UNetConfig;
use prism::objective::{LossInputs, Weighting};
use prism::process::{DiffusionProcess, GaussianProcess, NoiseLevels, Parameterization};
use prism::tensor::normal;
use prism::train::{AdamW, AdamWConfig};
use rand::SeedableRng;

struct Case {
    name: &'static str,
    unet: UNetConfig,
    batch: usize,
    size: usize,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "fmnist/b32/32x32",
            unet: UNetConfig::fmnist(),
            batch: 32,
            size: 32,
        },
        Case {
            name: "bench/b16/32x32",
            unet: UNetConfig::bench(),
            batch: 16,
            size: 32,
        },
    ]
}

fn unet(c: &mut Criterion) {
    let mut group = c.benchmark_group("unet");
    group.sample_size(10);
    for case in cases() {
        let cfg = ModelConfig::with_unet(Parameterization::V, case.unet.clone());
        let device = prism::default_device().autodiff();
        let mut model = cfg.init(&device).unwrap();
        let mut opt = AdamW::new(AdamWConfig::default());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let shape = [case.batch, 1, case.size, case.size];
        let cond = Condition::labels(Some(burn::tensor::Tensor::<1, burn::tensor::Int>::zeros(
            [case.batch],
            &device,
        )));
        group.throughput(Throughput::Elements(case.batch as u64));
        group.bench_function(format!("train_step/f32/{}", case.name), |b| {
            b.iter(|| {
                let x0 = normal(shape, &mut rng, &device);
                let eps = normal(shape, &mut rng, &device);
                let levels = NoiseLevels::new(vec![0.5; case.batch], &device);
                let z = x0.clone() * levels.alpha.clone() + eps.clone() * levels.sigma.clone();
                let raw = model.raw(z.clone(), &levels.log_snr, &cond).unwrap();
                let dl = vec![-1.0; case.batch];
                let p = Parameterization::V;
                let loss = Weighting::Mse.loss(LossInputs {
                    target: p.target(x0, eps.clone(), &levels),
                    eps_hat: p.prediction(raw.clone(), z, &levels).eps_hat,
                    raw,
                    eps,
                    log_snr: &levels.log_snr,
                    dlog_snr_dt: &dl,
                });
                let grads = loss.backward();
                let (m, _) = opt.update(model.clone(), &grads, 1e-4, None);
                model = m;
            })
        });
        let plain = prism::default_device();
        let eval_model = model.valid();
        let cond = Condition::labels(Some(burn::tensor::Tensor::<1, burn::tensor::Int>::zeros(
            [case.batch],
            &plain,
        )));
        let process =
            GaussianProcess::new(prism::schedule::ScheduleConfig::default().build().unwrap());
        group.bench_function(format!("sample_step/f32/{}", case.name), |b| {
            b.iter(|| {
                let z = normal(shape, &mut rng, &plain);
                let levels = vec![process.level_at_log_snr(0.5); case.batch];
                let out = eval_model
                    .predict(&process, z, &levels, &cond)
                    .unwrap()
                    .x0_hat;
                prism::tensor::to_vec(out.sum())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, unet);
criterion_main!(benches);
