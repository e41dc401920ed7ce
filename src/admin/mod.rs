//! The admin CLI: `sichss subscriber …`, `sichss service …`, `sichss import`, `sichss
//! export`, a client of the provisioning API ([`crate::api`]) over HTTP or HTTPS
//! (`--ca-cert` / SICHSS_CA_CERT to trust a private CA).
//!
//! The root CLI flattens [`AdminGlobal`] and the [`AdminCommand`] variants into its own
//! subcommands and calls [`run`]. Everything goes through the running server (there is
//! no offline mode: sled is single-process), so a stopped server is reported as such,
//! with the command to start it.
//!
//! - [`client`]: the blocking HTTP client (ureq), one method per route.
//! - [`commands`]: the clap commands and their output.

pub mod client;
pub mod commands;

use std::fmt;

use crate::api::ErrorBody;

pub use client::Client;
pub use commands::{run, run_with, AdminCommand, ServiceCommand, SubscriberCommand};

/// Where the API is and how to authenticate: global flags of the admin commands.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminGlobal {
    /// URL of the sichss provisioning API.
    #[arg(
        long,
        env = "SICHSS_API",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub api: String,
    /// Bearer token of the API (the server's --admin-token).
    #[arg(long, env = "SICHSS_TOKEN", global = true, hide_env_values = true)]
    pub token: Option<String>,
    /// PEM file of the CA to trust for an https:// API (a private CA or a self-signed
    /// certificate) instead of the public roots.
    #[arg(long, env = "SICHSS_CA_CERT", global = true)]
    pub ca_cert: Option<std::path::PathBuf>,
}

impl AdminGlobal {
    /// A client for these settings.
    ///
    /// # Errors
    /// [`AdminError::Io`] when `--ca-cert` cannot be read.
    pub fn client(&self) -> Result<Client, AdminError> {
        Client::with_ca_cert(&self.api, self.token.as_deref(), self.ca_cert.as_deref())
    }
}

/// Why an admin command failed. Display gives the whole message for the operator.
#[derive(Debug)]
#[non_exhaustive]
pub enum AdminError {
    /// Nothing listens at the API address.
    NotRunning {
        /// The API URL.
        api: String,
    },
    /// The API could not be reached for another reason (DNS, TLS, timeout).
    Unreachable {
        /// The API URL.
        api: String,
        /// Why.
        message: String,
    },
    /// The API refused the request.
    Api {
        /// HTTP status.
        status: u16,
        /// The API's error body.
        body: Box<ErrorBody>,
    },
    /// The API's answer could not be read.
    Response {
        /// Why.
        message: String,
    },
    /// The command line is incomplete or contradictory.
    Usage(String),
    /// A local file could not be read or written.
    Io {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdminError::NotRunning { api } => write!(
                f,
                "sichss is not running at {api}: start it with `sichss serve` or set --api/SICHSS_API"
            ),
            AdminError::Unreachable { api, message } => {
                write!(f, "cannot reach sichss at {api}: {message}")
            }
            AdminError::Api { status, body } => {
                write!(f, "{} (HTTP {status})", body.error)?;
                if let Some(field) = &body.field {
                    write!(f, "\n  field: {field}")?;
                }
                if let Some(line) = body.line {
                    write!(f, "\n  line: {line}")?;
                }
                if let Some(fix) = &body.fix {
                    if !body.error.contains(fix.as_str()) {
                        write!(f, "\n  fix: {fix}")?;
                    }
                }
                if let Some(rtr) = &body.rtr {
                    write!(
                        f,
                        "\n  rtr: to {} -> {}",
                        rtr.destination.as_deref().unwrap_or("-"),
                        rtr.outcome()
                    )?;
                }
                Ok(())
            }
            AdminError::Response { message } => write!(f, "{message}"),
            AdminError::Usage(m) => write!(f, "{m}"),
            AdminError::Io { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for AdminError {}
