//! The `sichss` command line (clap derive): the composition root, the only place that wires
//! concrete types together.
//!
//! One module per subcommand, each with its clap `Args` (or `Subcommand`) type and a
//! `pub fn run(args, out) -> Result<(), CliError>` that writes its output to `out`. To add a
//! subcommand: a module, a variant of [`Command`], and one arm in [`dispatch`].
//!
//! Errors go to stderr as `sichss: <message>`, and every message names the argument at fault
//! and the form expected; the exit status is then 1 (2 for a usage error found by clap).

pub mod decode;
pub mod impi;
#[cfg(test)]
mod tests;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::identity::IdentityError;
use crate::pcap::PcapError;

/// `sichss`: a Diameter Cx HSS with per-service (SIC) IMS private identities.
#[derive(Debug, Parser)]
#[command(name = "sichss", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands, one variant each.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Derive or parse an IMS private identity (IMPI) with a Service Identification Code.
    #[command(subcommand)]
    Impi(impi::ImpiCommand),
    /// Print every Diameter message of a pcap/pcapng capture or of a hex string as a tree.
    Decode(decode::DecodeArgs),
}

/// Why a subcommand failed. Each message names the argument at fault and what to give
/// instead.
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

/// Runs one parsed command, writing its output to `out`.
///
/// # Errors
/// The subcommand's [`CliError`].
pub fn dispatch(command: Command, out: &mut dyn Write) -> Result<(), CliError> {
    match command {
        Command::Impi(c) => impi::run(&c, out),
        Command::Decode(a) => decode::run(&a, out),
    }
}

/// The `sichss` binary: parses the command line, runs it, reports errors on stderr.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let result = dispatch(cli.command, &mut out).and_then(|()| Ok(out.flush()?));
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
