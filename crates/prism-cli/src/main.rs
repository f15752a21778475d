//! `prism`: train, sample and inspect diffusion models from the command line.

mod args;
mod commands;

use clap::{CommandFactory, FromArgMatches};

fn main() {
    // A write past the file-size limit (`ulimit -f`) raises SIGXFSZ, whose default action kills
    // the process without a word. With a handler installed the write fails with EFBIG instead,
    // and the error names the file (the previous checkpoint stays: writes are atomic renames).
    if let Err(e) = signal_hook::flag::register(
        signal_hook::consts::SIGXFSZ,
        std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    ) {
        eprintln!(
            "warning: cannot catch SIGXFSZ ({e}); a file-size limit would end prism silently"
        );
    }
    // `--flag -1` gives the number -1 to the flag (which then checks its range) instead of an
    // "unexpected argument '-1'" that hides which flag was meant.
    let command = args::Cli::command().mut_subcommands(|s| s.allow_negative_numbers(true));
    let cli = args::Cli::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    if let Err(err) = commands::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(match err.downcast_ref::<prism::Error>() {
            Some(prism::Error::Interrupted { .. }) => 130,
            _ => 1,
        });
    }
}
