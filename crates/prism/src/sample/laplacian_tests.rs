//! Laplacian sampler tests: with the analytic optimal denoiser for Gaussian data (every pixel
//! i.i.d. `N(M, S²)`), full trajectories of DDPM, DDIM and DPM-Solver++ across the resolution
//! switches reproduce the data's mean, variance and the absence of correlation between pixels
//! (inside and across the 2×2 blocks a wrong switch would couple).
//!
//! The deterministic samplers need many steps here: right after a switch the new band's logSNR
//! rises from −∞ (`d_k ∝ (t_k − t)²`), and large per-band steps lose variance in that band. Measured
//! with this test's setup (std of the samples, target 0.5): DDIM 40/100/400 steps 0.450/0.478/0.496,
//! DPM-Solver++(2M) 40/100/200 steps 0.385/0.475/0.492 (blocky at 40: neighbour correlation 0.2),
//! DDPM 300 steps 0.486. So the test runs them at 400 and 200 steps (docs/laplacian.md).

use burn::tensor::{Device, Tensor};

use super::{Sampling, sample};
use crate::denoiser::FnDenoiser;
use crate::golden_data::cosine;
use crate::process::{
    DiffusionProcess, LaplacianProcess, LaplacianSettings, Level, Prediction, coef,
};
use crate::sample::SamplerKind;
use crate::tensor::{normal, to_vec};

/// Runs `kind` for `steps` evaluations from the prior sample `z1` to outputs of shape `out`.
fn run(
    process: &dyn DiffusionProcess,
    denoiser: &dyn crate::denoiser::Denoise,
    kind: SamplerKind,
    steps: usize,
    z1: Tensor<4>,
    out: [usize; 4],
    rng: &mut dyn rand::RngCore,
) -> crate::Result<Tensor<4>> {
    let s = Sampling {
        process,
        denoiser,
        kind,
        steps,
        spacing: super::Spacing::default(),
        clip_x0: false,
    };
    sample(&s, z1, out, rng, &mut |_, _| {})
}

const M: f64 = 0.3;
const S: f64 = 0.5;

fn laplacian() -> LaplacianProcess {
    LaplacianProcess::new(
        cosine(-15.0, 15.0),
        &LaplacianSettings {
            levels: 3,
            switch_times: vec![0.3, 0.6],
            fade_starts: Some(vec![0.0, 0.15]),
            image_size: 8,
            stage_weights: None,
        },
    )
    .unwrap()
}

/// The optimal denoiser at any level: the state at level j holds `downʲ(x)`, whose pixels are
/// i.i.d. `N(M, S²/4ʲ)`; in the process's orthonormal basis the coordinates stay independent with
/// that variance and mean `to_basis(M·1)`, so per coordinate
/// `x̂ = μ + α v/(α² v + σ²) (u − α μ)`, `v = S²/4ʲ`.
fn analytic(p: &LaplacianProcess) -> FnDenoiser<impl Fn(Tensor<4>, Level) -> Prediction + '_> {
    FnDenoiser(move |z: Tensor<4>, l: Level| {
        let shape = z.dims();
        let device = z.device();
        let j = p.level_of_side(shape[2]).unwrap();
        let v = S * S / 4f64.powi(j as i32);
        let d = p.diagonal(l, shape).unwrap();
        let gain = coef(
            d.map(|c| c.alpha * v / (c.alpha * c.alpha * v + c.sigma * c.sigma)),
            &device,
        );
        let alpha = coef(d.map(|c| c.alpha), &device);
        let sigma = coef(d.map(|c| c.sigma), &device);
        let mu = p.to_basis(Tensor::ones(shape, &device) * M).unwrap();
        let u = p.to_basis(z).unwrap();
        let x = mu.clone() + gain.mul(u.clone() - alpha.mul(mu));
        let eps = sigma.div(u - alpha.mul(x.clone()));
        Prediction {
            x0_hat: p.to_state(x, shape).unwrap(),
            eps_hat: p.to_state(eps, shape).unwrap(),
        }
    })
}

/// Mean, standard deviation, and the correlations of pixel (0, 0) with (0, 1) (same 2×2 block),
/// (1, 1) (same block) and (0, 2) (next block), over samples and pixels.
fn statistics(v: &[f32], n: usize, side: usize) -> (f64, f64, [f64; 3]) {
    let all = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / all;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / all;
    let at = |i: usize, r: usize, c: usize| f64::from(v[i * side * side + r * side + c]) - mean;
    let corr = |r: usize, c: usize| {
        (0..n).map(|i| at(i, 0, 0) * at(i, r, c)).sum::<f64>() / n as f64 / var
    };
    (mean, var.sqrt(), [corr(0, 1), corr(1, 1), corr(0, 2)])
}

#[test]
fn trajectories_across_switches_reproduce_gaussian_data() {
    let device = Device::flex();
    let p = laplacian();
    let mut rng = crate::golden_data::seeded(21).1;
    let n = 2000;
    let out = [n, 1, 8, 8];
    for (kind, steps) in [
        (SamplerKind::Ddpm, 300),
        (SamplerKind::Ddim { eta: 0.0 }, 400),
        (SamplerKind::DpmPp2m, 200),
    ] {
        let z1 = p.prior(out, &mut rng, &device);
        assert_eq!(z1.dims(), [n, 1, 2, 2]);
        let x = run(&p, &analytic(&p), kind, steps, z1, out, &mut rng).unwrap();
        assert_eq!(x.dims(), out);
        let (mean, std, corr) = statistics(&to_vec(x), n, 8);
        assert!((mean - M).abs() < 0.01, "{kind}: mean {mean}");
        assert!((std - S).abs() < 0.015, "{kind}: std {std}");
        for c in corr {
            // 5 standard errors of a correlation over n samples.
            assert!(
                c.abs() < 5.0 / (n as f64).sqrt(),
                "{kind}: correlations {corr:?}"
            );
        }
    }
}

/// Without the fresh high-frequency noise of the switch the samples come out blocky: the test
/// above can fail.
#[test]
fn a_switch_without_fresh_noise_is_caught() {
    #[derive(Debug)]
    struct NoFresh(LaplacianProcess);
    impl DiffusionProcess for NoFresh {
        fn kind(&self) -> &'static str {
            "laplacian-without-fresh-noise"
        }
        fn describe(&self) -> String {
            String::new()
        }
        fn schedule(&self) -> &crate::schedule::Schedule {
            self.0.schedule()
        }
        fn state_shape(&self, out: [usize; 4], t: f64) -> [usize; 4] {
            self.0.state_shape(out, t)
        }
        fn switch_times(&self) -> Vec<f64> {
            self.0.switch_times()
        }
        fn switch(
            &self,
            z: Tensor<4>,
            t: f64,
            out: [usize; 4],
            _rng: &mut dyn rand::RngCore,
        ) -> crate::Result<Tensor<4>> {
            let k = self.0.level_of_side(z.dims()[2])?;
            let xi = Tensor::zeros(self.0.state_shape(out, t), &z.device());
            self.0.switch_with(z, t, k, xi)
        }
        fn corrupt(&self, x0: Tensor<4>, t: &[f64], e: Tensor<4>) -> crate::Result<Tensor<4>> {
            self.0.corrupt(x0, t, e)
        }
        fn ancestral_step(&self, a: crate::process::AncestralStep) -> crate::Result<Tensor<4>> {
            self.0.ancestral_step(a)
        }
        fn finish(&self, z0: Tensor<4>) -> crate::Result<Tensor<4>> {
            self.0.finish(z0)
        }
        fn diagonal(&self, l: Level, s: [usize; 4]) -> Option<crate::process::Diagonal> {
            self.0.diagonal(l, s)
        }
        fn to_basis(&self, z: Tensor<4>) -> crate::Result<Tensor<4>> {
            self.0.to_basis(z)
        }
        fn to_state(&self, u: Tensor<4>, s: [usize; 4]) -> crate::Result<Tensor<4>> {
            self.0.to_state(u, s)
        }
    }
    let device = Device::flex();
    let p = laplacian();
    let broken = NoFresh(laplacian());
    let mut rng = crate::golden_data::seeded(22).1;
    let n = 3000;
    let z1 = normal([n, 1, 2, 2], &mut rng, &device);
    let kind = SamplerKind::Ddim { eta: 0.0 };
    let x = run(
        &broken,
        &analytic(&p),
        kind,
        100,
        z1,
        [n, 1, 8, 8],
        &mut rng,
    )
    .unwrap();
    let (_, _, corr) = statistics(&to_vec(x), n, 8);
    assert!(corr[0] > 10.0 / (n as f64).sqrt(), "{corr:?}");
}

/// A recorded trajectory: one frame per evaluation, the states' side rising 2 → 4 → 8 at the
/// switches with the recorded times decreasing, recording leaves the samples unchanged, and the
/// picture shows the first and last frames and both sides of each switch.
#[test]
fn recorded_trajectory_crosses_the_switches() {
    use super::{Recording, pick_frames, trajectory_strip};
    let device = Device::flex();
    let p = laplacian();
    let out = [3, 1, 8, 8];
    let denoiser = analytic(&p);
    let draw = |d: &dyn crate::denoiser::Denoise| {
        let mut rng = crate::golden_data::seeded(5).1;
        let z1 = p.prior(out, &mut rng, &device);
        to_vec(run(&p, d, SamplerKind::Ddpm, 12, z1, out, &mut rng).unwrap())
    };
    let plain = draw(&denoiser);
    let recording = Recording::new(&denoiser);
    assert_eq!(draw(&recording), plain);
    let frames = recording.into_frames();
    assert_eq!(frames.len(), 12);
    let sides: Vec<usize> = frames.iter().map(|f| f.z.dims()[2]).collect();
    assert!(sides.windows(2).all(|w| w[0] <= w[1]), "{sides:?}");
    assert_eq!((sides[0], sides[11]), (2, 8));
    assert!(sides.contains(&4));
    assert!(frames.windows(2).all(|w| w[0].level.t > w[1].level.t));
    assert!(
        frames
            .iter()
            .all(|f| f.z.dims()[0] == 1 && f.x0_hat.dims() == f.z.dims())
    );
    let switches: Vec<usize> = (0..11).filter(|&i| sides[i] != sides[i + 1]).collect();
    assert_eq!(switches.len(), 2);
    let picked = pick_frames(&frames, 8);
    assert_eq!(picked.len(), 8);
    assert!(picked.windows(2).all(|w| w[0] < w[1]));
    for i in [
        0,
        11,
        switches[0],
        switches[0] + 1,
        switches[1],
        switches[1] + 1,
    ] {
        assert!(picked.contains(&i), "{i} not in {picked:?}");
    }
    assert_eq!(pick_frames(&frames, 40).len(), 12);
    let strip = trajectory_strip(&frames, &picked, 8).unwrap();
    assert_eq!(strip.dims(), [16, 1, 8, 8]);
    // The first column's state is the 2² prior sample, upsampled by 4 (nearest).
    let first = to_vec(strip.narrow(0, 0, 1));
    let prior = to_vec(frames[0].z.clone());
    assert_eq!(first[0], prior[0]);
    assert_eq!(first[3 * 8 + 3], prior[0]);
    assert_eq!(first[4], prior[1]);
    assert!(trajectory_strip(&frames, &picked, 6).is_err());
}
