//! `prism`: train, sample and inspect diffusion models from the command line.

mod args;
mod commands;

use clap::Parser;

fn main() {
    let cli = args::Cli::parse();
    if let Err(err) = commands::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(match err.downcast_ref::<prism::Error>() {
            Some(prism::Error::Interrupted { .. }) => 130,
            _ => 1,
        });
    }
}
