//! `prism schedule`.

use anyhow::Result;
use prism::plot::{Series, line_plot};
use prism::schedule::{LogSnrSchedule, ScheduleConfig, ShiftClip};

use crate::args::{Clip, Format, ScheduleArgs, ScheduleKind};

fn config(a: &ScheduleArgs) -> ScheduleConfig {
    let clip = match a.clip {
        Clip::ClipThenShift => ShiftClip::ClipThenShift,
        Clip::ShiftedLimits => ShiftClip::ShiftedLimits,
    };
    let (logsnr_min, logsnr_max) = (a.logsnr_min, a.logsnr_max);
    match a.kind {
        ScheduleKind::Cosine => ScheduleConfig::Cosine {
            logsnr_min,
            logsnr_max,
        },
        ScheduleKind::Shifted => ScheduleConfig::Shifted {
            image_size: a.image_size,
            reference_size: a.reference_size,
            logsnr_min,
            logsnr_max,
            clip,
        },
        ScheduleKind::Interpolated => ScheduleConfig::Interpolated {
            image_size: a.image_size,
            low_reference: a.low_reference,
            high_reference: a.high_reference,
            logsnr_min,
            logsnr_max,
            clip,
        },
        ScheduleKind::Linear => ScheduleConfig::LinearBeta {
            beta_start: 1e-4,
            beta_end: 0.02,
            num_train_steps: 1000,
            logsnr_max,
        },
    }
}

/// The most points `prism schedule` prints.
const MAX_POINTS: usize = 100_000;

pub fn run(a: ScheduleArgs) -> Result<()> {
    if let Some(plot) = &a.plot {
        super::check_extension("--plot", plot, "png", "a PNG plot")?;
    }
    anyhow::ensure!(
        a.points >= 2,
        "--points must be at least 2 (t runs from 0 to 1 inclusive)"
    );
    anyhow::ensure!(
        a.points <= MAX_POINTS,
        "--points {} is more than {MAX_POINTS}; a table that long is not useful",
        a.points
    );
    let s = config(&a).build()?;
    let ts: Vec<f64> = (0..a.points)
        .map(|i| i as f64 / (a.points - 1) as f64)
        .collect();
    match a.format {
        Format::Csv => {
            println!("t,logsnr,alpha,sigma");
            for &t in &ts {
                println!("{t},{},{},{}", s.log_snr(t), s.alpha(t), s.sigma(t));
            }
        }
        Format::Table => {
            println!(
                "{:>8}  {:>12}  {:>12}  {:>12}",
                "t", "logSNR", "alpha", "sigma"
            );
            for &t in &ts {
                println!(
                    "{t:>8.4}  {:>12.6}  {:>12.6e}  {:>12.6e}",
                    s.log_snr(t),
                    s.alpha(t),
                    s.sigma(t)
                );
            }
        }
    }
    if let Some(path) = &a.plot {
        let dense: Vec<f64> = (0..=200).map(|i| i as f64 / 200.0).collect();
        let base = ScheduleConfig::Cosine {
            logsnr_min: a.logsnr_min,
            logsnr_max: a.logsnr_max,
        }
        .build()?;
        let mut series = vec![Series {
            label: format!("{:?}", a.kind).to_lowercase(),
            points: dense.iter().map(|&t| (t, s.log_snr(t))).collect(),
        }];
        if !matches!(a.kind, ScheduleKind::Cosine) {
            series.push(Series {
                label: "cosine".into(),
                points: dense.iter().map(|&t| (t, base.log_snr(t))).collect(),
            });
        }
        line_plot(path, "logSNR schedule", "t", "logSNR", &series, false)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
