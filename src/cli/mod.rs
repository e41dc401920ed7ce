//! The `sichss` command line (clap derive): one variant per subcommand, each handled by its
//! own module.
//!
//! The offline commands (`impi`, `decode`) have a `pub fn run(args, out) -> Result<(),
//! CliError>` that writes to `out`; `serve`, `bench`, `ue` and the admin commands
//! (`subscriber`, `service`, `import`, `export`) and `replay` live in their own modules. To add a
//! subcommand: a module, a variant of [`Command`], and one arm in [`run`].
//!
//! Errors go to stderr as `sichss: <message>`, and every message names the argument at fault
//! and the form expected; the exit status is then 1 (2 for a usage error found by clap).

pub mod decode;
pub mod impi;
pub mod migrate;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::identity::IdentityError;
use crate::log;
use crate::pcap::PcapError;

/// `sichss`: a Diameter Cx HSS with per-service (SIC) IMS private identities.
#[derive(Parser)]
#[command(name = "sichss", version, about, propagate_version = true)]
pub struct Cli {
    /// Where the provisioning API is, for the admin commands.
    #[command(flatten)]
    pub admin: crate::admin::AdminGlobal,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, one variant each.
#[derive(Subcommand)]
pub enum Command {
    /// Run the HSS: Diameter Cx server and provisioning API.
    Serve(crate::serve::ServeArgs),
    /// Derive or parse an IMS private identity (IMPI) with a Service Identification Code.
    #[command(subcommand)]
    Impi(impi::ImpiCommand),
    /// Print every Diameter message of a pcap/pcapng capture or of a hex string as a tree.
    Decode(decode::DecodeArgs),
    /// Load generator: whole registration flows against an HSS, with a report.
    Bench(crate::bench::BenchArgs),
    /// Replay the Cx requests of a capture against an HSS and compare each answer with
    /// the recorded one.
    Replay(crate::replay::ReplayArgs),
    /// Apply the PostgreSQL store's pending schema migrations (serve also does at start).
    Migrate(migrate::MigrateArgs),
    /// A test UE: registers one IMS service with its SIC-tagged IMPI over SIP/UDP.
    Ue(crate::ue::UeArgs),
    /// Provisioning: subscribers, services, import and export (a client of the API).
    #[command(flatten)]
    Admin(crate::admin::AdminCommand),
}

/// Why an offline subcommand failed. Each message names the argument at fault and what to
/// give instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// An identity argument was refused.
    #[error("{arg}: {source}")]
    Identity {
        /// The argument, as on the command line (`--imsi`, `IMPI`, …).
        arg: &'static str,
        /// Why (boxed: identity errors quote their input and are large).
        source: Box<IdentityError>,
    },
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A capture file could not be parsed.
    #[error("{}: {source}", path.display())]
    Capture {
        /// The path given.
        path: PathBuf,
        /// Why.
        source: PcapError,
    },
    /// The `--hex` argument is not a hex string of whole Diameter messages.
    #[error("--hex: {0}")]
    Hex(String),
    /// Some messages were shown with a decode error.
    #[error(
        "{failed} of {total} Diameter messages could not be decoded (shown above with the reason)"
    )]
    Undecodable {
        /// Messages that failed.
        failed: usize,
        /// Messages in the input.
        total: usize,
    },
    /// Writing to stdout failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] io::Error),
    /// A long-running command (serve, bench, ue, admin) failed; the message says why.
    #[error("{0}")]
    Command(String),
}

impl CliError {
    /// An identity error attributed to the argument `arg`.
    pub fn identity(arg: &'static str, e: IdentityError) -> Self {
        Self::Identity {
            arg,
            source: Box::new(e),
        }
    }
}

/// Runs one parsed command, writing the output of the offline commands to `out`.
///
/// # Errors
/// The subcommand's [`CliError`].
pub fn dispatch(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let fail = |prefix: &str, e: &dyn std::fmt::Display| CliError::Command(format!("{prefix}{e}"));
    match cli.command {
        Command::Impi(c) => impi::run(&c, out),
        Command::Decode(a) => decode::run(&a, out),
        Command::Serve(args) => {
            init_tracing();
            runtime()?
                .block_on(crate::serve::run(args))
                .map_err(|e| fail("serve: ", &e))
        }
        Command::Bench(args) => runtime_with(args.threads.map(usize::from))?
            .block_on(crate::bench::main(args))
            .map(|_| ())
            .map_err(|e| fail("bench: ", &e)),
        Command::Replay(args) => {
            let json = args.json;
            let report = runtime()?
                .block_on(crate::replay::run(args))
                .map_err(|e| fail("replay: ", &e))?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &report)
                    .map_err(|e| CliError::Output(e.into()))?;
                writeln!(out)?;
            } else {
                writeln!(out, "{report}")?;
            }
            if report.ok() {
                Ok(())
            } else {
                Err(CliError::Command(format!(
                    "replay: {} of {} answers differ from the capture, {} failed",
                    report.count(crate::replay::Status::Mismatch),
                    report.entries.len(),
                    report.count(crate::replay::Status::Failed)
                )))
            }
        }
        Command::Migrate(args) => {
            init_tracing();
            let line = runtime()?
                .block_on(migrate::run(args))
                .map_err(|e| fail("migrate: ", &e))?;
            writeln!(out, "{line}")?;
            Ok(())
        }
        Command::Ue(args) => {
            init_tracing();
            runtime()?
                .block_on(crate::ue::run(args))
                .map_err(|e| fail("ue: ", &e))
        }
        Command::Admin(cmd) => crate::admin::run(&cli.admin, cmd).map_err(|e| fail("", &e)),
    }
}

/// The `sichss` binary: parses the command line, runs it, reports errors on stderr.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = dispatch(cli, &mut out).and_then(|()| Ok(out.flush()?));
    // The log's last lines before the error message, if any.
    log::finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `sichss decode big.pcap | head`: the reader left; not an error worth reporting.
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sichss: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A multi-threaded tokio runtime.
fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    runtime_with(None)
}

/// A multi-threaded tokio runtime with `workers` threads (tokio's default when `None`: one
/// per CPU, or `TOKIO_WORKER_THREADS`).
fn runtime_with(workers: Option<usize>) -> Result<tokio::runtime::Runtime, CliError> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        b.worker_threads(n);
    }
    b.enable_all()
        .build()
        .map_err(|e| CliError::Command(format!("cannot start the async runtime: {e}")))
}

/// Logs to stderr, through [`log`]'s buffer; the level comes from RUST_LOG (default info).
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colours = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(log::Clock)
        .fmt_fields(log::Fields)
        .with_ansi(colours);
    match log::buffered_stderr() {
        Some(writer) => {
            let installed = builder.with_writer(writer.clone()).try_init().is_ok();
            if installed && !colours {
                // The Cx layer's line per request may skip tracing's formatter.
                log::allow_direct(&writer);
            }
        }
        None => {
            let _ = builder.with_writer(std::io::stderr).try_init();
        }
    };
}
