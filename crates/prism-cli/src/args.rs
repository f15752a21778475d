//! Command-line arguments (clap types only; resolved into library settings in `commands`).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Diffusion models for images: train, sample, inspect.
#[derive(Debug, Parser)]
#[command(name = "prism", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a model from a config file (writes checkpoints, metrics, grids and plots to a run directory).
    Train(TrainArgs),
    /// Draw samples from a trained model into a grid PNG.
    Sample(SampleArgs),
    /// Print (and plot) a noise schedule: t, logSNR, alpha, sigma.
    Schedule(ScheduleArgs),
    /// Fill the masked region of an image with an inpainting model (white mask pixels = fill).
    Inpaint(InpaintArgs),
    /// Picture of the forward process: one image corrupted at several times.
    Forward(ForwardArgs),
    /// Evaluate a trained model: denoising error, bits/dim, SWD, KID, FID, precision/recall.
    Eval(EvalArgs),
    /// Train the feature classifier that KID/FID/precision-recall use on a labelled data set.
    Classifier(ClassifierArgs),
    /// Reconstruct images with a trained autoencoder: a grid with the inputs above their reconstructions.
    Reconstruct(ReconstructArgs),
    /// Time a config's training and sampling steps and report peak memory (random images; no data).
    Bench(BenchArgs),
    /// Upscale your own image with a super-resolution stage, in overlapping tiles.
    Upscale(UpscaleArgs),
}

#[derive(Debug, clap::Args)]
pub struct UpscaleArgs {
    /// A super-resolution stage (a run's model.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The image to upscale (PNG, JPEG or WebP; transparency composited on the stage's
    /// data.background).
    #[arg(long)]
    pub image: PathBuf,
    /// Total upscaling: the stage's factor, or a power of it (the stage runs that many times).
    #[arg(long)]
    pub scale: usize,
    /// Output image (.png, .jpg or .jpeg).
    #[arg(long)]
    pub out: PathBuf,
    /// Network evaluations per pass (default: the stage's sample.steps).
    #[arg(long)]
    pub steps: Option<usize>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Noise augmentation time of the condition, in [0, stage.noise_aug_max] (default: the
    /// stage's stage.noise_aug).
    #[arg(long)]
    pub noise_aug: Option<f64>,
    /// Tile side in output pixels; memory grows with its square.
    #[arg(long, default_value_t = 256)]
    pub tile: usize,
    /// Least overlap of neighbouring tiles in output pixels.
    #[arg(long, default_value_t = 32)]
    pub overlap: usize,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Experiment config (TOML), e.g. configs/simple-512.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Training batch size (default: the config's train.batch_size).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Training steps to time (the first is reported apart, as warm-up).
    #[arg(long, default_value_t = 3)]
    pub train_steps: usize,
    /// Sampling steps to time.
    #[arg(long, default_value_t = 3)]
    pub sample_steps: usize,
    /// Images sampled at once.
    #[arg(long, default_value_t = 1)]
    pub sample_batch: usize,
    /// Seed of the weights, images and noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Experiment config (TOML), e.g. configs/fashion-mnist-cond.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Override the data path of the config.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run directory (default: runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Resume the run in this directory (its train_state.safetensors).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Start over in a run directory that already holds a run (its checkpoints are replaced).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Override train.steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Write no sample grids or loss plot (the end-of-training grid of `sample.num` images takes
    /// minutes at 512² on a CPU); sample afterwards with `prism sample`.
    #[arg(long)]
    pub no_pictures: bool,
}

/// How to sample, beside the number of steps (`sample` and `eval`).
#[derive(Debug, clap::Args)]
pub struct SamplingArgs {
    /// Sampler: ddpm, ddim, ddim:ETA, dpmpp-2m, euler, heun, dpmpp-2m-sde, dpmpp-3m-sde or
    /// unipc (default: the model config's sample.sampler).
    #[arg(long)]
    pub sampler: Option<String>,
    /// Noise-level spacing: karras, logsnr or time (default: the sampler's own; Karras ρ = 7 for
    /// euler, heun, dpmpp-*-sde and unipc, logsnr for dpmpp-2m, time for ddpm/ddim).
    #[arg(long)]
    pub spacing: Option<String>,
    /// The Karras spacing's exponent ρ (with --spacing karras; default 7).
    #[arg(long)]
    pub rho: Option<f64>,
    /// Lowest noise level σ̄ = σ/α = e^(−λ/2) of the grid before the final step to σ = 0
    /// (default: the schedule's at t = 0).
    #[arg(long)]
    pub sigma_min: Option<f64>,
    /// Highest noise level σ̄ = e^(−λ/2), where sampling starts (default: the schedule's at t = 1).
    #[arg(long)]
    pub sigma_max: Option<f64>,
    /// Classifier-free guidance weight (1 = none; class-conditional models only; default: the
    /// model config's sample.guidance).
    #[arg(long)]
    pub guidance: Option<f64>,
    /// Guide only at noise levels with logSNR in [LO, HI] (the guidance interval of
    /// Kynkäänniemi et al. 2024, e.g. --guidance-interval=-3.4,2.6; default: the model config's
    /// sample.guidance_interval, or everywhere); the conditional model alone elsewhere.
    #[arg(long, allow_hyphen_values = true)]
    pub guidance_interval: Option<prism::denoiser::GuidanceInterval>,
    /// Do not clip x̂ to [-1, 1] while sampling.
    #[arg(long)]
    pub no_clip: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("model").required(true).args(["checkpoint", "pipeline"])))]
pub struct SampleArgs {
    /// A model file (a run's model.safetensors); a super-resolution stage runs the stages below
    /// it first (its stage.base, recursively).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// A pipeline file: [[stage]] entries with `checkpoint` (and optionally `steps`, `sampler`,
    /// `guidance`), the base model first.
    #[arg(long)]
    pub pipeline: Option<PathBuf>,
    /// Number of images.
    #[arg(long, default_value_t = 64)]
    pub num: usize,
    /// Network evaluations.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Class to draw (class-conditional models; default: cycle through all classes).
    #[arg(long)]
    pub class: Option<usize>,
    /// Context sequences for a model whose cross-attention reads them: a safetensors file with
    /// one tensor `context` of shape [N, L, D], one row per image (N = --num).
    #[arg(long)]
    pub context: Option<PathBuf>,
    /// Seed of the prior noise and sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Columns of the grid (default: number of classes, or square).
    #[arg(long)]
    pub cols: Option<usize>,
    /// Output PNG (a grid of all images).
    #[arg(long, default_value = "samples.png")]
    pub out: PathBuf,
    /// Also write each image as its own PNG in this folder (000000.png, 000001.png, …), the input
    /// of `prism eval --samples` and of clean-fid, torch-fidelity and pytorch-fid.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Also write the images as an .npz: arr_0, uint8 [N, H, W, 3] (OpenAI's evaluator layout).
    #[arg(long)]
    pub npz: Option<PathBuf>,
    /// Also write the first image's sampling trajectory as a PNG (of the last stage, in pixel
    /// space): one column per shown network evaluation, the state z_t above and the model's x̂
    /// below, lower-resolution states upsampled (nearest); the evaluations on both sides of each
    /// resolution switch are always shown. The level of each column is printed.
    #[arg(long)]
    pub trajectory: Option<PathBuf>,
    /// Columns of the trajectory picture (at least the first, the last and those around the
    /// switches).
    #[arg(long, default_value_t = 12, requires = "trajectory")]
    pub trajectory_frames: usize,
}

#[derive(Debug, clap::Args)]
pub struct InpaintArgs {
    /// An inpainting model (a run's model.safetensors trained with [stage] kind = "inpaint").
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The image (PNG or JPEG) at the model's size; transparent pixels are composited on black.
    #[arg(long)]
    pub image: PathBuf,
    /// The mask (PNG), the image's size: white (grey level ≥ 128) = fill, black = keep.
    #[arg(long)]
    pub mask: PathBuf,
    /// Output PNG: the image with the masked region filled (the rest is the input, exactly);
    /// with --num above 1, a grid of the fills.
    #[arg(long, default_value = "inpainted.png")]
    pub out: PathBuf,
    /// Number of fills to draw.
    #[arg(long, default_value_t = 1)]
    pub num: usize,
    /// Network evaluations.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Class to draw (class-conditional inpainting models).
    #[arg(long)]
    pub class: Option<usize>,
    /// Seed of the prior noise and sampler.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScheduleKind {
    Cosine,
    Shifted,
    Interpolated,
    Linear,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Clip {
    ClipThenShift,
    ShiftedLimits,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// Schedule kind.
    #[arg(long, value_enum, default_value = "cosine")]
    pub kind: ScheduleKind,
    /// Image side d (shifted, interpolated).
    #[arg(long, default_value_t = 64)]
    pub image_size: usize,
    /// Reference side r (shifted; default 64).
    #[arg(long, default_value_t = 64)]
    pub reference_size: usize,
    /// Low reference for the interpolated schedule (followed near t = 1).
    #[arg(long, default_value_t = 32)]
    pub low_reference: usize,
    /// High reference for the interpolated schedule (followed near t = 0).
    #[arg(long, default_value_t = 256)]
    pub high_reference: usize,
    /// How clipping combines with the shift.
    #[arg(long, value_enum, default_value = "clip-then-shift")]
    pub clip: Clip,
    /// Lower logSNR clip.
    #[arg(long, default_value_t = -15.0, allow_hyphen_values = true)]
    pub logsnr_min: f64,
    /// Upper logSNR clip.
    #[arg(long, default_value_t = 15.0, allow_hyphen_values = true)]
    pub logsnr_max: f64,
    /// Number of points, t from 0 to 1 inclusive.
    #[arg(long, default_value_t = 11)]
    pub points: usize,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Also plot logSNR(t) (with the plain cosine for comparison) to this PNG.
    #[arg(long)]
    pub plot: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// Experiment config whose process (and image size and channels) to show.
    #[arg(long)]
    pub config: PathBuf,
    /// The image (PNG or JPEG).
    #[arg(long)]
    pub image: PathBuf,
    /// Comma-separated times in [0, 1].
    #[arg(long, default_value = "0,0.25,0.5,0.75,1")]
    pub t: String,
    /// Seed of the noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Leave the noise out: show only the signal part `E[z_t | x]` (for the blurring process, the
    /// blur alone).
    #[arg(long)]
    pub no_noise: bool,
    /// Above the strip, one row per frequency band of the process (Laplacian: finest first) with
    /// the band's signal `α_k(t) · band` at full resolution, each row scaled by its own largest
    /// value so that a band's fading shows as its contrast falling to grey.
    #[arg(long)]
    pub bands: bool,
    /// Output PNG (a strip, one panel per time).
    #[arg(long, default_value = "forward.png")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ReconstructArgs {
    /// The autoencoder: its run directory or its model.safetensors.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// A folder of images (PNG, JPEG or WebP) or an IDX file (default: the held-out images of the
    /// data the autoencoder was trained on).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Images in the grid.
    #[arg(long, default_value_t = 16)]
    pub num: usize,
    /// The side images are resized and cropped to (default: the autoencoder's training size;
    /// needed for a diffusers VAE, e.g. 256 or 512 for Stable Diffusion's).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Output PNG.
    #[arg(long, default_value = "reconstructions.png")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A model file (a run's model.safetensors): evaluate it against its held-out images. An
    /// autoencoder's file (or run directory) is scored on its reconstructions of them (l1, psnr,
    /// ssim, lpips, fid = rFID). Without it, evaluate image sets from anywhere with
    /// --samples/--reference or --pairs.
    #[arg(long, conflicts_with_all = ["samples", "reference", "pairs"])]
    pub checkpoint: Option<PathBuf>,
    /// Generated images to score against --reference: a folder of PNG/JPEG files or an .npz
    /// whose arr_0 holds uint8 images [N, H, W, C] (e.g. from `prism sample --out-dir/--npz`, or
    /// any other tool's samples).
    #[arg(long, requires = "reference")]
    pub samples: Option<PathBuf>,
    /// Reference images (folder or .npz with arr_0), or reference statistics (.npz with mu and
    /// sigma, as clean-fid/pytorch-fid write them and --save-stats writes; feats too for KID
    /// and precision/recall).
    #[arg(long)]
    pub reference: Option<PathBuf>,
    /// Write the reference's feature statistics (mu, sigma, feats) to this .npz for reuse.
    #[arg(long, requires = "reference")]
    pub save_stats: Option<PathBuf>,
    /// Paired metrics (psnr, ssim, lpips) between two folders of images matched by sorted file
    /// name: the reference first, then the images to score (e.g. high-resolution originals and
    /// super-resolved outputs).
    #[arg(long, num_args = 2, value_names = ["REFERENCE_DIR", "IMAGES_DIR"], conflicts_with_all = ["samples", "reference"])]
    pub pairs: Option<Vec<PathBuf>>,
    /// LPIPS weights for --metrics lpips.
    #[arg(long)]
    pub lpips: Option<PathBuf>,
    /// How images reach the Inception (clean-fid's modes): clean (PIL bicubic; the default for
    /// the standard weights), legacy_tensorflow (TF1 bilinear, the original TF FID), pytorch_fid.
    #[arg(long)]
    pub inception_mode: Option<String>,
    /// Data to evaluate on (default: the held-out split of the model's own data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Comma-separated metrics: mse (held-out denoising error), switch (the denoising error just
    /// before and after each resolution switch, see --switch-delta), bpd (bits/dim), swd (multi-scale
    /// sliced Wasserstein distance of generated samples), kid, fid, pr (precision/recall, k = 3) on
    /// the features of --features, acc (class-conditional models: the share of samples that
    /// --classifier assigns to the class they were drawn for, beside its accuracy on the held-out
    /// images). Sample metrics print the real-vs-real floor beside them.
    /// Default: mse,bpd,swd (mse,swd for a blurring model, which has no bits/dim); for
    /// --samples/--reference swd,fid,kid,pr (swd needs images on both sides); for --pairs
    /// psnr,ssim (lpips on request). For an autoencoder: l1 (mean |x − x̂|), psnr, ssim, lpips,
    /// fid (rFID: images against their reconstructions, on --features); default l1,psnr,ssim.
    #[arg(long)]
    pub metrics: Option<String>,
    /// Feature network for kid/fid/pr: the standard FID Inception (tools/fetch_inception.sh writes
    /// data/inception/inception-2015-12-05.safetensors), a classifier from `prism classifier` (the
    /// Fashion-MNIST one ships as checkpoints/fashion-mnist-classifier/classifier.safetensors), or
    /// pytorch-fid's Inception state dict as safetensors.
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// A classifier from `prism classifier` for --metrics acc: the fraction of class-conditional
    /// samples it assigns to the class they were drawn for (the Fashion-MNIST one ships as
    /// checkpoints/fashion-mnist-classifier/classifier.safetensors).
    #[arg(long)]
    pub classifier: Option<PathBuf>,
    /// KID subsets (torch-fidelity's convention: 100 subsets drawn without replacement).
    #[arg(long, default_value_t = 100)]
    pub kid_subsets: usize,
    /// Images per KID subset, clamped to N (torch-fidelity: 1000). With subsets of all N images
    /// every subset is the same and the spread is 0; take N/2 or less to see it.
    #[arg(long, default_value_t = 1000)]
    pub kid_subset_size: usize,
    /// Held-out images to use (and samples to generate for swd).
    #[arg(long, default_value_t = 500)]
    pub num: usize,
    /// Sampling steps for generated metrics.
    #[arg(long, default_value_t = 25)]
    pub steps: usize,
    /// How generated metrics sample.
    #[command(flatten)]
    pub sampling: SamplingArgs,
    /// Comma-separated logSNR values at which to measure the denoising error (mse) instead of
    /// the default times t = 0.1, 0.25, 0.5, 0.75, 0.9: compares models trained with different
    /// schedules at equal noise levels, e.g. --mse-logsnr=4,2,0,-2,-4
    #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
    pub mse_logsnr: Option<Vec<f64>>,
    /// For --metrics switch (a process whose state changes resolution): the held-out denoising
    /// error at t_k ∓ DELTA and t_k ∓ 3·DELTA around each switch time t_k, on the same images and
    /// noise, and how much the step across the switch exceeds what the slopes on both sides
    /// predict.
    #[arg(long, default_value_t = 0.01)]
    pub switch_delta: f64,
    /// Monte Carlo logSNR draws per image for bits/dim.
    #[arg(long, default_value_t = 32)]
    pub draws: usize,
    /// LogSNR of the bits/dim decoder (the ELBO's end point; at most the schedule's λ(0)).
    #[arg(long, default_value_t = 12.0, allow_hyphen_values = true)]
    pub logsnr_max: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct ClassifierArgs {
    /// Labelled training images (IDX with its labels file beside it), e.g. the 60k Fashion-MNIST
    /// training set from `tools/fetch_data.sh fashion-mnist`.
    #[arg(long)]
    pub data: PathBuf,
    /// Labelled test images.
    #[arg(long)]
    pub test: PathBuf,
    /// Output file.
    #[arg(
        long,
        default_value = "checkpoints/fashion-mnist-classifier/classifier.safetensors"
    )]
    pub out: PathBuf,
    /// Side length the images are padded (or resized) to; match the diffusion model's data.
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// 1 (grey) or 3 (RGB).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Passes over the training set.
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch_size: usize,
    /// Peak learning rate (warm-up then cosine decay).
    #[arg(long, default_value_t = 2e-3)]
    pub lr: f64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}
