//! The `sichss` command line (clap): one variant per subcommand, each handled by its own
//! module. Errors go to stderr and name the field and the fix; the exit status is
//! non-zero on failure.

pub mod migrate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// sichss: a Diameter Cx HSS with per-service (SIC) IMS private identities.
#[derive(Parser)]
#[command(name = "sichss", version, about, propagate_version = true)]
pub struct Cli {
    /// Where the provisioning API is, for the admin commands.
    #[command(flatten)]
    pub admin: crate::admin::AdminGlobal,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Subcommand)]
pub enum Command {
    /// Run the HSS: Diameter Cx server and provisioning API.
    Serve(crate::serve::ServeArgs),
    /// Load generator: whole registration flows against an HSS, with a report.
    Bench(crate::bench::BenchArgs),
    /// Apply the PostgreSQL store's pending schema migrations (serve also does at start).
    Migrate(migrate::MigrateArgs),
    /// A test UE: registers one IMS service with its SIC-tagged IMPI over SIP/UDP.
    Ue(crate::ue::UeArgs),
    /// Provisioning: subscribers, services, import and export (a client of the API).
    #[command(flatten)]
    Admin(crate::admin::AdminCommand),
}

/// Parses the command line and runs the subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            init_tracing();
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("sichss: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(crate::serve::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("sichss serve: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench(args) => match runtime().and_then(|rt| {
            rt.block_on(crate::bench::main(args))
                .map_err(|e| format!("sichss bench: {e}"))
        }) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Migrate(args) => {
            init_tracing();
            match runtime().and_then(|rt| {
                rt.block_on(migrate::run(args))
                    .map_err(|e| format!("sichss migrate: {e}"))
            }) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Ue(args) => {
            init_tracing();
            match runtime().and_then(|rt| {
                rt.block_on(crate::ue::run(args))
                    .map_err(|e| format!("sichss ue: {e}"))
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Admin(cmd) => match crate::admin::run(&cli.admin, cmd) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sichss: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

/// A multi-threaded tokio runtime.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("sichss: cannot start the async runtime: {e}"))
}

/// Logs to stderr; the level comes from RUST_LOG (default info).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
