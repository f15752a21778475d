//! One module per subcommand; `run` dispatches.

mod bench;
mod classifier;
mod eval;
mod eval_autoencoder;
mod eval_sets;
mod eval_switch;
mod forward;
mod inpaint;
mod reconstruct;
mod sample;
mod schedule;
mod train;
mod upscale;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    prism::check_device_override()?;
    if !matches!(cli.command, Command::Schedule(_)) {
        // Which backend computes: the CPU (`Flex`) or a GPU compiled in with `wgpu` / `cuda`.
        eprintln!(
            "prism: device {}",
            prism::describe_device(&prism::default_device())
        );
    }
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Schedule(a) => schedule::run(a),
        Command::Forward(a) => forward::run(a),
        Command::Inpaint(a) => inpaint::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Classifier(a) => classifier::run(a),
        Command::Reconstruct(a) => reconstruct::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Upscale(a) => upscale::run(a),
    }
}

/// The most sampling steps `prism sample` and `prism eval` take (DDPM uses 1,000).
pub const MAX_STEPS: usize = 100_000;
/// The most images `prism sample` draws in one call (they are held in memory together).
pub const MAX_SAMPLES: usize = 65_536;
/// The most Monte-Carlo draws of `prism eval`'s bits/dim.
pub const MAX_DRAWS: usize = 100_000;

/// Refuses `value` of `flag` outside `1..=max`, naming the flag.
pub fn check_count(flag: &str, value: usize, max: usize) -> Result<()> {
    anyhow::ensure!(value > 0, "{flag} must be positive");
    anyhow::ensure!(value <= max, "{flag} {value} is more than {max}");
    Ok(())
}

/// Refuses an output file `path` (given to `flag`) whose extension is not `ext`, before any work:
/// `prism <command>` writes `what` there.
pub fn check_extension(flag: &str, path: &std::path::Path, ext: &str, what: &str) -> Result<()> {
    let has = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    anyhow::ensure!(
        has.eq_ignore_ascii_case(ext),
        "{flag} {}: this writes {what}; give a file ending in .{ext}",
        path.display()
    );
    Ok(())
}

/// A progress bar for `len` units of work, hidden when stderr is not a terminal.
pub fn progress(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} [{{elapsed}} < {{eta}}]"
        ))
        .expect("valid template"),
    );
    bar
}

/// Runs `request` with a progress bar.
pub fn generate_with_progress(
    model: &prism::denoiser::DiffusionModel,
    process: &dyn prism::process::DiffusionProcess,
    request: &prism::sample::Generate,
    device: &burn::tensor::Device,
) -> Result<burn::tensor::Tensor<4>> {
    let bar = progress(request.steps as u64, "sampling");
    let images = prism::sample::generate(model, process, request, device, &mut |i, _| {
        bar.set_position(i as u64)
    })?;
    bar.finish_and_clear();
    Ok(images)
}

/// The sampler `--sampler` names (none: the model config's), after checking `--guidance`.
pub fn requested_sampler(
    s: &crate::args::SamplingArgs,
) -> Result<Option<prism::sample::SamplerKind>> {
    if let Some(g) = s.guidance {
        prism::config::check_guidance("--guidance", g)?;
    }
    Ok(s.sampler.as_deref().map(str::parse).transpose()?)
}

/// The spacing `--spacing`, `--rho`, `--sigma-min` and `--sigma-max` ask for, checked.
pub fn requested_spacing(s: &crate::args::SamplingArgs) -> Result<prism::sample::Spacing> {
    Ok(prism::sample::Spacing::parse(
        s.spacing.as_deref(),
        s.rho,
        s.sigma_min,
        s.sigma_max,
    )?)
}
