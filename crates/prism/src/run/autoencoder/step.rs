//! One training step of the first-stage autoencoder (formula sheet §5) on the generic trainer,
//! with two modules updated alternately: the autoencoder (with the KL loss's learned log-variance),
//! then the PatchGAN discriminator on the same batch's reconstructions (from `disc_start` on).
//!
//! 1. `x̂ = D(z)`, `z` a posterior draw (KL) or the straight-through codes (VQ).
//! 2. The NLL and its gradient `∂NLL/∂x̂` (LPIPS evaluated once, on a detached copy of `x̂`).
//! 3. From `disc_start`: `g = L_G(D_φ(x̂))` and `∂g/∂x̂`; the adaptive weight
//!    `λ = clamp(‖∇_{W_L} NLL‖ / (‖∇_{W_L} g‖ + 10⁻⁴), 0, 10⁴) · disc_weight` from the last layer.
//! 4. One backward pass of `Σ x̂ ⊙ sg(∂NLL/∂x̂ + λ·factor·∂g/∂x̂)` plus the regulariser and
//!    log-variance terms: the exact gradient of `L_G` (the loss's value is logged as `loss`).
//!    VQ with EMA updates or dead-code restarts: the codebook's maintenance
//!    ([`VectorQuantizer::maintain`](crate::nn::autoencoder::VectorQuantizer::maintain)) on this
//!    batch's latents, after the update; `codes_restarted` is logged.
//! 5. From `disc_start`: the discriminator's loss on `x` and `sg(x̂)`, and its update.
//!
//! Unlike taming (which decodes again for the discriminator's step after the autoencoder's
//! update), the discriminator sees this step's reconstructions: one decoder pass per step.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::config::AeConfig;
use crate::Result;
use crate::data::Dataset;
use crate::nn::autoencoder::{Autoencoder, CodebookUsage, Regularizer};
use crate::nn::{Lpips, NLayerDiscriminator};
use crate::objective::autoencoder::{adaptive_weight, last_layer_grad, norm, output_grad};
use crate::tensor::scalar;
use crate::train::{Handle, Metrics, Step};

/// The step's random stream of the codebook's dead-code restarts (stream 0: data and posterior
/// draws).
const RESTART_STREAM: u64 = 1;

/// The autoencoder and the KL loss's learned log-variance, trained together.
#[derive(Module, Debug)]
pub struct AeTrainee {
    /// The network.
    pub ae: Autoencoder,
    /// `logvar` of the NLL (a learned scalar, `[1]`; unused by a VQ autoencoder).
    pub logvar: Param<Tensor<1>>,
}

/// The autoencoder method's step: see the module docs.
pub struct AeStep<'a> {
    pub(super) cfg: &'a AeConfig,
    pub(super) train_set: Dataset,
    pub(super) lpips: Option<Lpips>,
    pub(super) generator: Handle<AeTrainee>,
    pub(super) discriminator: Handle<NLayerDiscriminator>,
    pub(super) device: Device,
}

impl AeStep<'_> {
    pub(super) fn step_metrics(&self, s: &mut Step<'_>) -> Result<Metrics> {
        let (cfg, loss_cfg) = (self.cfg, &self.cfg.loss);
        let b = cfg.train.batch_size;
        let mut rng = s.rng(0);
        let indices = self
            .train_set
            .indices_at(cfg.train.seed, s.index() * b as u64, b);
        let x = self
            .train_set
            .try_batch(&indices, &mut rng, &self.device)?
            .images;
        let [_, c, h, w] = x.dims();
        let numel = (b * c * h * w) as f64;
        let gan = loss_cfg.gan.as_ref().filter(|g| s.index() >= g.start);
        let kl = matches!(cfg.autoencoder.regularizer, Regularizer::Kl);

        // 1.
        let trainee = s.module(&self.generator);
        let pass = trainee.ae.forward_train(x.clone(), &mut rng)?;
        // 2.
        let lpips = self.lpips.as_ref();
        let (rec_sum, d_rec) = output_grad(pass.x_hat.clone(), |xh| {
            Ok(loss_cfg.reconstruction(x.clone(), xh, lpips)?.sum())
        })?;
        let lv = scalar(trainee.logvar.val());
        let (nll, nll_scale) = if kl {
            let s = (-lv).exp() / b as f64;
            (rec_sum * s + lv * numel / b as f64, s)
        } else {
            (rec_sum / numel, 1.0 / numel)
        };
        let d_nll = d_rec * nll_scale;
        // 3.
        let mut metrics = Metrics::new();
        let mut d_total = d_nll.clone();
        let mut adversarial = 0.0;
        if let Some(g) = gan {
            let disc = s.module(&self.discriminator);
            let (g_loss, d_g) = output_grad(pass.x_hat.clone(), |xh| {
                Ok(g.loss.generator(disc.forward(xh)))
            })?;
            let last = trainee.ae.decoder().last_layer();
            let nll_norm = norm(last_layer_grad(last, pass.last_input.clone(), d_nll));
            let g_norm = norm(last_layer_grad(last, pass.last_input.clone(), d_g.clone()));
            let lambda = adaptive_weight(nll_norm, g_norm, g.weight)?;
            d_total = d_total + d_g * (lambda * g.factor);
            adversarial = lambda * g.factor * g_loss;
            metrics.insert("g_loss".into(), g_loss);
            metrics.insert("d_weight".into(), lambda);
        }
        // 4.
        let reg = scalar(pass.reg_loss.clone());
        let mut surrogate = (pass.x_hat.clone() * d_total.detach()).sum();
        let loss = if kl {
            let lv_t = trainee.logvar.val();
            surrogate = surrogate
                + pass.reg_loss * loss_cfg.kl_weight
                + (lv_t.clone().neg().exp() * rec_sum + lv_t * numel) / b as f64;
            metrics.insert("kl".into(), reg);
            metrics.insert("logvar".into(), lv);
            nll + loss_cfg.kl_weight * reg + adversarial
        } else {
            surrogate = surrogate + pass.reg_loss * loss_cfg.codebook_weight;
            metrics.insert("vq_loss".into(), reg);
            nll + loss_cfg.codebook_weight * reg + adversarial
        };
        if let (Some(idx), Some(q)) = (&pass.indices, trainee.ae.quantizer()) {
            let u = CodebookUsage::of(idx, q.n_embed());
            metrics.insert("codebook_usage".into(), u.usage);
            metrics.insert("perplexity".into(), u.perplexity);
        }
        let hint = "lower train.lr or loss.gan.weight";
        let loss = s.finite("loss", loss, hint)?;
        let grads = surrogate.backward();
        let grad_norm = s.update(&self.generator, &grads)?;
        // 4b. The codebook's moving averages and restarts, after the optimiser's update.
        let update = (s.module(&self.generator).ae.quantizer()).and_then(|q| q.update());
        if let (Some(u), Some(z), Some(idx)) = (update, pass.unquantized, &pass.indices) {
            let mut rng = s.rng(RESTART_STREAM);
            let mut restarted = 0;
            s.map_module(&self.generator, |t| AeTrainee {
                ae: t.ae.map_quantizer(|q| {
                    let (q, n) = q.maintain(z, idx, &mut rng);
                    restarted = n;
                    q
                }),
                ..t
            });
            if u.dead_code_threshold > 0.0 {
                metrics.insert("codes_restarted".into(), restarted as f64);
            }
        }
        metrics.insert("loss".into(), loss);
        metrics.insert("nll".into(), nll);
        metrics.insert("rec".into(), rec_sum / numel);
        metrics.insert("grad_norm".into(), grad_norm);
        // 5.
        if let Some(g) = gan {
            let disc = s.module(&self.discriminator);
            let real = disc.forward(x);
            let fake = disc.forward(pass.x_hat.detach());
            let (r, f) = (scalar(real.clone().mean()), scalar(fake.clone().mean()));
            let d_loss = g.loss.discriminator(real, fake) * g.factor;
            let value = s.finite("d_loss", scalar(d_loss.clone()), hint)?;
            let grads = d_loss.backward();
            s.update(&self.discriminator, &grads)?;
            metrics.insert("d_loss".into(), value);
            metrics.insert("logits_real".into(), r);
            metrics.insert("logits_fake".into(), f);
        }
        Ok(metrics)
    }
}
