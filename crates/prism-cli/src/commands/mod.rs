//! One module per subcommand; `run` dispatches.

mod bench;
mod classifier;
mod eval;
mod forward;
mod sample;
mod schedule;
mod train;
mod upscale;

use anyhow::Result;

use crate::args::{Cli, Command};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => train::run(a),
        Command::Sample(a) => sample::run(a),
        Command::Schedule(a) => schedule::run(a),
        Command::Forward(a) => forward::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Classifier(a) => classifier::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Upscale(a) => upscale::run(a),
    }
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
