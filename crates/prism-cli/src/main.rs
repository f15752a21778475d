//! `prism`: train, sample and inspect diffusion models from the command line.

mod args;
mod commands;

use clap::{CommandFactory, FromArgMatches};

fn main() {
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
