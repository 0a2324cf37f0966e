use clap::Parser;
use shoal::cli::Cli;

fn main() {
    let mut cli = Cli::parse();
    if let Some(mut cmd) = cli.command.take() {
        // `shoal --data-dir D cache list`: the top-level flag counts too.
        let admin = cmd.admin_mut();
        if admin.data_dir.is_none() {
            admin.data_dir = cli.data_dir.take();
        }
        std::process::exit(shoal::cli::run_subcommand(cmd));
    }
    let config = match cli.into_config() {
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
    if let (true, Some(cert), Some(key)) = (
        config.multi_tenant,
        &config.admin_tls_cert,
        &config.admin_tls_key,
    ) {
        let files = shoal::admin::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            ca: config.admin_tls_ca.clone(),
        };
        if let Err(e) = shoal::admin::install_tls(Some(&files)) {
            eprintln!("shoal: {e}");
            std::process::exit(64);
        }
    }
    if let Err(e) = shoal::runtime::run(config) {
        eprintln!("shoal: {e}");
        std::process::exit(1);
    }
}
