//! `prism eval --metrics switch`: the held-out denoising error just before and just after each
//! resolution switch of a Laplacian model ([`prism::eval::switch_mse`]), printed as a table and
//! returned for the JSON report.

use anyhow::Result;
use serde_json::json;

/// Measures and prints the errors around every switch; the rows as JSON.
#[allow(clippy::too_many_arguments)]
pub fn run(
    model: &prism::denoiser::DiffusionModel,
    process: &dyn prism::process::DiffusionProcess,
    input: &prism::denoiser::ModelInput,
    held_out: &prism::data::Dataset,
    delta: f64,
    n: usize,
    seed: u64,
    device: &burn::tensor::Device,
) -> Result<serde_json::Value> {
    let rows = prism::eval::switch_mse(model, process, input, held_out, delta, n, seed, device)
        .map_err(|e| anyhow::anyhow!("--metrics switch: {e}"))?;
    println!(
        "denoising error around the switches at t_k − 3δ, t_k − δ, t_k + δ, t_k + 3δ (δ = {delta}); \
         excess = step across the switch − the step the slopes on both sides predict, ± its standard error"
    );
    for (name, what) in [
        ("full", "||x − up(x̂)||² on the image"),
        ("coarse", "||down(x) − down(x̂)||² at the lower side"),
    ] {
        println!("{name}: {what}");
        println!(
            "{:>6}  {:>9}  {:>9}  {:>9}  {:>9}  {:>9}  {:>22}",
            "t_k", "sides", "−3δ", "−δ", "+δ", "+3δ", "excess"
        );
        for r in &rows {
            let (e, (x, se)) = if name == "full" {
                (r.full, r.full_excess)
            } else {
                (r.coarse, r.coarse_excess)
            };
            println!(
                "{:>6.3}  {:>9}  {:>9.5}  {:>9.5}  {:>9.5}  {:>9.5}  {:>+11.5} ± {:<8.5}",
                r.t,
                format!("{}²→{}²", r.sides.0, r.sides.1),
                e[0],
                e[1],
                e[2],
                e[3],
                x,
                se
            );
        }
    }
    Ok(rows
        .iter()
        .map(|r| {
            json!({"t": r.t, "delta": delta, "offsets": [-3.0 * delta, -delta, delta, 3.0 * delta],
                   "side_before": r.sides.0, "side_after": r.sides.1,
                   "full": r.full, "full_excess": r.full_excess.0, "full_excess_se": r.full_excess.1,
                   "coarse": r.coarse, "coarse_excess": r.coarse_excess.0, "coarse_excess_se": r.coarse_excess.1})
        })
        .collect())
}
