//! `sichss impi derive` and `sichss impi parse`: the SIC-carrying private identities of
//! CN103701828A, derived from an IMSI (TS 23.003 §13.3 plus the `sic<SIC>` label) or taken
//! apart.
//!
//! ```text
//! $ sichss impi derive --imsi 460011100612345 --sic 001 --mnc-len 2
//! 460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org
//! $ sichss impi parse 460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org
//! impi            460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org
//! kind            sic
//! imsi            460011100612345
//! sic             001
//! home domain     ims.mnc001.mcc460.3gppnetwork.org
//! subscriber key  460011100612345@ims.mnc001.mcc460.3gppnetwork.org
//! ```

use std::io::Write;

use clap::{ArgGroup, Args, Subcommand};
use serde::Serialize;

use super::CliError;
use crate::identity::{derive_impi, HomeNetwork, IdentityError, Impi, ImpiKind, Imsi, Sic};

/// `sichss impi …`.
#[derive(Debug, Subcommand)]
pub enum ImpiCommand {
    /// Derive the IMPI of an IMSI for one service:
    /// `<IMSI>@ims.sic<SIC>.mnc<MNC>.mcc<MCC>.3gppnetwork.org` (without --sic, the plain
    /// TS 23.003 IMPI).
    Derive(DeriveArgs),
    /// Take an IMPI apart: IMSI, SIC, home domain, subscriber key (the IMPI without its
    /// SIC) and kind.
    Parse(ParseArgs),
}

/// `sichss impi derive`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("home").required(true).args(["mnc_len", "home_domain"])))]
pub struct DeriveArgs {
    /// The subscriber's IMSI: 6 to 15 decimal digits.
    #[arg(long)]
    pub imsi: String,
    /// The Service Identification Code: exactly 3 digits (e.g. 001 VoLTE, 002 RCS).
    #[arg(long)]
    pub sic: Option<String>,
    /// How many digits of the IMSI after the MCC are the MNC: 2 or 3.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub mnc_len: Option<u8>,
    /// An explicit home domain instead of ims.mncNNN.mccNNN.3gppnetwork.org.
    #[arg(long)]
    pub home_domain: Option<String>,
    /// Print the full description as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// `sichss impi parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The private identity, user@domain.
    #[arg(value_name = "IMPI")]
    pub impi: String,
    /// Print one JSON object instead of aligned text.
    #[arg(long)]
    pub json: bool,
}

/// What `impi parse` prints (and `impi derive --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImpiReport {
    /// The normalised IMPI (domain lower-cased).
    pub impi: String,
    /// `sic`, `imsi` (TS 23.003 IMSI-derived, no SIC) or `other`.
    pub kind: &'static str,
    /// The IMSI, when the user part is one.
    pub imsi: Option<String>,
    /// The SIC, when the identity carries one.
    pub sic: Option<String>,
    /// The domain without the SIC label.
    pub home_domain: String,
    /// The identity without its SIC: the key the HSS finds the subscriber by.
    pub subscriber_key: String,
}

impl ImpiReport {
    /// Describes `impi`.
    pub fn new(impi: &Impi) -> Self {
        Self {
            impi: impi.to_string(),
            kind: match impi.kind() {
                ImpiKind::Sic { .. } => "sic",
                ImpiKind::Imsi { .. } => "imsi",
                ImpiKind::Other => "other",
            },
            imsi: impi.imsi().map(ToString::to_string),
            sic: impi.sic().map(ToString::to_string),
            home_domain: impi.home_domain(),
            subscriber_key: impi.without_sic().to_string(),
        }
    }

    fn write_text(&self, out: &mut dyn Write) -> std::io::Result<()> {
        let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
        writeln!(out, "impi            {}", self.impi)?;
        writeln!(out, "kind            {}", self.kind)?;
        writeln!(out, "imsi            {}", dash(&self.imsi))?;
        writeln!(out, "sic             {}", dash(&self.sic))?;
        writeln!(out, "home domain     {}", self.home_domain)?;
        writeln!(out, "subscriber key  {}", self.subscriber_key)
    }
}

/// Runs `sichss impi …`.
///
/// # Errors
/// [`CliError::Identity`] naming the argument at fault.
pub fn run(cmd: &ImpiCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        ImpiCommand::Derive(a) => {
            let impi = derive(a)?;
            if a.json {
                writeln!(out, "{}", json(&ImpiReport::new(&impi)))?;
            } else {
                writeln!(out, "{impi}")?;
            }
        }
        ImpiCommand::Parse(a) => {
            let impi = Impi::parse(&a.impi).map_err(|e| CliError::identity("IMPI", e))?;
            let report = ImpiReport::new(&impi);
            if a.json {
                writeln!(out, "{}", json(&report))?;
            } else {
                report.write_text(out)?;
            }
        }
    }
    Ok(())
}

/// The IMPI `derive` asks for, with errors attributed to the argument that caused them.
///
/// # Errors
/// [`CliError::Identity`] naming `--imsi`, `--sic`, `--mnc-len` or `--home-domain`.
pub fn derive(a: &DeriveArgs) -> Result<Impi, CliError> {
    let imsi = Imsi::parse(&a.imsi).map_err(|e| CliError::identity("--imsi", e))?;
    let sic = a
        .sic
        .as_deref()
        .map(Sic::parse)
        .transpose()
        .map_err(|e| CliError::identity("--sic", e))?;
    let net = match (&a.home_domain, a.mnc_len) {
        (Some(d), _) => HomeNetwork::Domain(d.clone()),
        (None, Some(len)) => HomeNetwork::MncLen(len),
        // clap's group makes one of the two required; 2 is the common case.
        (None, None) => HomeNetwork::MncLen(2),
    };
    derive_impi(&imsi, &net, sic.as_ref()).map_err(|e| {
        let arg = match e {
            IdentityError::MncLength { .. } => "--mnc-len",
            _ => "--home-domain",
        };
        CliError::identity(arg, e)
    })
}

fn json(report: &ImpiReport) -> String {
    // Serialising a struct of strings cannot fail.
    serde_json::to_string(report).unwrap_or_default()
}
