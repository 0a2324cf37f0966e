use clap::Parser;
use shoal::config::{Cli, Config};

fn main() {
    let cli = Cli::parse();
    let config = match Config::from_cli(cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shoal: {e}");
            std::process::exit(64);
        }
    };
    let level = match config.verbosity {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = shoal::runtime::run(config) {
        eprintln!("shoal: {e}");
        std::process::exit(1);
    }
}
