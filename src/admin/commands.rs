//! The admin subcommands (clap) and what they print.
//!
//! ```text
//! sichss subscriber add --imsi 460011100612345 --msisdn +8618612345678 --mnc-len 2 \
//!        --k 465b… --opc cd63… --service 001 --service 002
//! sichss subscriber show --imsi 460011100612345 [--json]
//! sichss subscriber list [--json]
//! sichss subscriber set --imsi 460011100612345 --barred true
//! sichss subscriber remove --imsi 460011100612345
//! sichss service subscribe --imsi 460011100612345 --sic 003 --name Video
//! sichss service unsubscribe --imsi 460011100612345 --sic 002
//! sichss service deregister --imsi 460011100612345 --sic 001
//! sichss service profile --imsi 460011100612345 --sic 001 profile.json
//! sichss import subscribers.jsonl      (- for stdin)
//! sichss export [subscribers.jsonl]    (stdout without a file)
//! ```

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::PathBuf;

use crate::api::form::{SchemeName, ServiceForm, SubscriberForm, SubscriberUpdate};
use crate::api::subscribers::ServiceReport;
use crate::api::view::{ServiceView, SubscriberView};
use crate::api::HssReport;
use crate::store::{Password, SecretHex, ServiceProfile};

use super::{AdminError, AdminGlobal};

/// The admin commands, each a client of the provisioning API.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Add, show, list, change and remove subscribers.
    #[command(subcommand)]
    Subscriber(SubscriberCommand),
    /// Subscribe, unsubscribe and de-register one service (SIC) of a subscriber.
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Import subscribers from JSON lines (the export format); each is inserted or replaced.
    Import {
        /// The file, or - for standard input.
        file: PathBuf,
    },
    /// Export every subscriber as JSON lines, WITH credentials (a backup: protect it).
    Export {
        /// The file to write; standard output without one.
        file: Option<PathBuf>,
    },
}

/// `sichss subscriber …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SubscriberCommand {
    /// Provision a subscriber; IMPIs, IMPUs and service names are derived.
    Add(AddArgs),
    /// Show a subscriber and the state of each service.
    Show {
        /// The IMSI.
        #[arg(long)]
        imsi: String,
        /// Print the API's subscriber view as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List every subscriber.
    List {
        /// Print the API's subscriber views as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Change top-level fields (only those given).
    Set(SetArgs),
    /// Remove a subscriber (registered services get an RTR first).
    Remove {
        /// The IMSI.
        #[arg(long)]
        imsi: String,
    },
}

/// Authentication scheme flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheme {
    /// IMS-AKA (Digest-AKAv1-MD5).
    Aka,
    /// SIP Digest.
    Digest,
}

impl From<Scheme> for SchemeName {
    fn from(s: Scheme) -> Self {
        match s {
            Scheme::Aka => SchemeName::Aka,
            Scheme::Digest => SchemeName::Digest,
        }
    }
}

/// `sichss subscriber add`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("home").required(true).args(["mnc_len", "home_domain"])))]
pub struct AddArgs {
    /// IMSI (6 to 15 digits).
    #[arg(long)]
    pub imsi: String,
    /// MSISDN (+ and digits); repeat for more. The first gives the default IMPUs.
    #[arg(long = "msisdn")]
    pub msisdns: Vec<String>,
    /// MNC length of the IMSI (2 or 3): the home domain is derived.
    #[arg(long)]
    pub mnc_len: Option<u8>,
    /// An explicit home domain instead of --mnc-len.
    #[arg(long)]
    pub home_domain: Option<String>,
    /// K, 32 hex digits.
    #[arg(long)]
    pub k: Option<String>,
    /// OPc, 32 hex digits.
    #[arg(long, conflicts_with = "op")]
    pub opc: Option<String>,
    /// OP, 32 hex digits (instead of --opc).
    #[arg(long)]
    pub op: Option<String>,
    /// AMF, 4 hex digits [API default: 8000].
    #[arg(long)]
    pub amf: Option<String>,
    /// SIP Digest password.
    #[arg(long)]
    pub password: Option<String>,
    /// SIP Digest HA1 (instead of --password).
    #[arg(long, conflicts_with = "password")]
    pub ha1: Option<String>,
    /// Scheme used when the S-CSCF asks for "Unknown" [default: aka with --k, else digest].
    #[arg(long, value_enum)]
    pub default_scheme: Option<Scheme>,
    /// A service: its SIC, optionally with a name (001, or 007:Video); repeat for more.
    #[arg(long = "service", value_name = "SIC[:NAME]")]
    pub services: Vec<String>,
    /// Also provision the plain TS 23.003 IMPI (a service without SIC).
    #[arg(long)]
    pub plain: bool,
    /// Provision the subscriber barred.
    #[arg(long)]
    pub barred: bool,
}

/// `sichss subscriber set`: only the flags given change.
#[derive(Debug, Clone, clap::Args)]
pub struct SetArgs {
    /// The IMSI.
    #[arg(long)]
    pub imsi: String,
    /// New MSISDNs (replaces the list; repeat for more).
    #[arg(long = "msisdn")]
    pub msisdns: Vec<String>,
    /// Barred or not.
    #[arg(long)]
    pub barred: Option<bool>,
    /// New default scheme.
    #[arg(long, value_enum)]
    pub default_scheme: Option<Scheme>,
    /// New K.
    #[arg(long)]
    pub k: Option<String>,
    /// New OPc.
    #[arg(long, conflicts_with = "op")]
    pub opc: Option<String>,
    /// New OP.
    #[arg(long)]
    pub op: Option<String>,
    /// New AMF.
    #[arg(long)]
    pub amf: Option<String>,
    /// New SQN.
    #[arg(long)]
    pub sqn: Option<u64>,
    /// New password.
    #[arg(long)]
    pub password: Option<String>,
    /// New HA1.
    #[arg(long, conflicts_with = "password")]
    pub ha1: Option<String>,
}

/// `sichss service …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ServiceCommand {
    /// Subscribe one service (SIC): adds its IMPI, touching no other service.
    Subscribe {
        /// The IMSI.
        #[arg(long)]
        imsi: String,
        /// The SIC (3 digits), or plain for the plain IMPI.
        #[arg(long)]
        sic: String,
        /// Service name [default: the SIC registry's].
        #[arg(long)]
        name: Option<String>,
        /// The IMPI [default: derived from IMSI, home domain and SIC].
        #[arg(long)]
        impi: Option<String>,
        /// An IMPU; repeat for more [default: sip: and tel: of the first MSISDN].
        #[arg(long = "impu")]
        impus: Vec<String>,
    },
    /// Unsubscribe one service (an RTR first if it is registered).
    Unsubscribe {
        /// The IMSI.
        #[arg(long)]
        imsi: String,
        /// The SIC, or plain.
        #[arg(long)]
        sic: String,
    },
    /// De-register one service at its S-CSCF (RTR), leaving it subscribed.
    Deregister {
        /// The IMSI.
        #[arg(long)]
        imsi: String,
        /// The SIC, or plain.
        #[arg(long)]
        sic: String,
    },
    /// Replace a service's profile from a JSON file (a PPR follows if it is registered).
    Profile {
        /// The IMSI.
        #[arg(long)]
        imsi: String,
        /// The SIC, or plain.
        #[arg(long)]
        sic: String,
        /// The profile as JSON ({"ifcs": [...], "barred_impus": [...]}); - for stdin.
        file: PathBuf,
    },
}

/// Runs an admin command, printing to standard output.
///
/// # Errors
/// [`AdminError`]; its Display is the message for the operator.
pub fn run(global: &AdminGlobal, cmd: AdminCommand) -> Result<(), AdminError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_with(global, cmd, &mut out)
}

/// Runs an admin command, printing to `out`.
///
/// # Errors
/// [`AdminError`].
pub fn run_with(
    global: &AdminGlobal,
    cmd: AdminCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let client = global.client()?;
    match cmd {
        AdminCommand::Subscriber(c) => subscriber(&client, c, out),
        AdminCommand::Service(c) => service(&client, c, out),
        AdminCommand::Import { file } => {
            let report = if file.as_os_str() == "-" {
                client.import(std::io::stdin().lock())?
            } else {
                let f = File::open(&file).map_err(|e| io_err(&file, e))?;
                client.import(BufReader::new(f))?
            };
            w(
                out,
                format_args!(
                    "imported {} subscribers ({} replaced)\n",
                    report.imported, report.replaced
                ),
            )
        }
        AdminCommand::Export { file } => match file {
            None => {
                client.export(out)?;
                Ok(())
            }
            Some(path) => {
                let mut f = File::create(&path).map_err(|e| io_err(&path, e))?;
                let n = client.export(&mut f)?;
                f.sync_all().map_err(|e| io_err(&path, e))?;
                w(
                    out,
                    format_args!(
                        "exported {n} subscribers to {} (with credentials: protect this file)\n",
                        path.display()
                    ),
                )
            }
        },
    }
}

fn subscriber(
    client: &super::Client,
    cmd: SubscriberCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match cmd {
        SubscriberCommand::Add(a) => {
            let form = add_form(a)?;
            let view = client.create_subscriber(&form)?;
            w(out, format_args!("added subscriber {}\n", view.imsi))?;
            print_services(out, &view.services)
        }
        SubscriberCommand::Show { imsi, json } => {
            let value = client.subscriber_json(&imsi, false)?;
            if json {
                return print_json(out, &value);
            }
            let view: SubscriberView =
                serde_json::from_value(value).map_err(|e| AdminError::Response {
                    message: format!(
                        "the API's subscriber view is not what this client expects: {e}"
                    ),
                })?;
            print_subscriber(out, &view)
        }
        SubscriberCommand::List { json } => {
            let all = client.list_all()?;
            if json {
                return print_json(out, &all);
            }
            for v in &all {
                let services: Vec<String> = v
                    .services
                    .iter()
                    .map(|s| format!("{}:{}({})", sic_label(&s.sic), s.name, s.state.as_str()))
                    .collect();
                w(
                    out,
                    format_args!(
                        "{}  {}  {}\n",
                        v.imsi,
                        if v.msisdns.is_empty() {
                            "-".to_owned()
                        } else {
                            v.msisdns.join(",")
                        },
                        services.join(" ")
                    ),
                )?;
            }
            Ok(())
        }
        SubscriberCommand::Set(s) => {
            let imsi = s.imsi.clone();
            let upd = SubscriberUpdate {
                msisdns: (!s.msisdns.is_empty()).then_some(s.msisdns),
                barred: s.barred,
                default_scheme: s.default_scheme.map(Into::into),
                k: s.k.map(SecretHex),
                opc: s.opc.map(SecretHex),
                op: s.op.map(SecretHex),
                amf: s.amf,
                sqn: s.sqn,
                password: s.password.map(Password),
                ha1: s.ha1.map(SecretHex),
                ..SubscriberUpdate::default()
            };
            if upd == (SubscriberUpdate::default()) {
                return Err(AdminError::Usage(
                    "nothing to change: give at least one of --msisdn, --barred, --default-scheme, --k, --opc, --op, --amf, --sqn, --password, --ha1".into(),
                ));
            }
            let view = client.update_subscriber(&imsi, &upd)?;
            w(out, format_args!("updated subscriber {}\n", view.imsi))
        }
        SubscriberCommand::Remove { imsi } => {
            let removed = client.remove_subscriber(&imsi)?;
            w(out, format_args!("removed subscriber {imsi}\n"))?;
            for ServiceReport { sic, report } in &removed.rtr {
                print_report(out, "RTR", sic, report)?;
            }
            Ok(())
        }
    }
}

fn service(
    client: &super::Client,
    cmd: ServiceCommand,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match cmd {
        ServiceCommand::Subscribe {
            imsi,
            sic,
            name,
            impi,
            impus,
        } => {
            let form = ServiceForm {
                sic: Some(sic),
                name,
                impi,
                impus,
                profile: None,
            };
            let v = client.subscribe(&imsi, &form)?;
            w(
                out,
                format_args!(
                    "subscribed service {} ({}) of {imsi}: impi {}, impus {}\n",
                    sic_label(&v.sic),
                    v.name,
                    v.impi,
                    v.impus.join(", ")
                ),
            )
        }
        ServiceCommand::Unsubscribe { imsi, sic } => {
            let r = client.unsubscribe(&imsi, &sic)?;
            w(
                out,
                format_args!("unsubscribed service {} of {imsi}\n", sic_label(&sic)),
            )?;
            print_report(out, "RTR", &sic, &r.rtr)
        }
        ServiceCommand::Deregister { imsi, sic } => {
            let r = client.deregister(&imsi, &sic)?;
            w(
                out,
                format_args!("de-registered service {} of {imsi}\n", sic_label(&sic)),
            )?;
            print_report(out, "RTR", &sic, &r.rtr)
        }
        ServiceCommand::Profile { imsi, sic, file } => {
            let text = if file.as_os_str() == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut s)
                    .map_err(|e| io_err(&file, e))?;
                s
            } else {
                std::fs::read_to_string(&file).map_err(|e| io_err(&file, e))?
            };
            let profile: ServiceProfile =
                serde_json::from_str(&text).map_err(|e| AdminError::Io {
                    path: file.display().to_string(),
                    message: format!("not a service profile: {e}"),
                })?;
            let r = client.set_profile(&imsi, &sic, &profile)?;
            w(
                out,
                format_args!(
                    "changed the profile of service {} of {imsi}\n",
                    sic_label(&sic)
                ),
            )?;
            print_report(out, "PPR", &sic, &r.ppr)
        }
    }
}

/// The provisioning form of `subscriber add`.
fn add_form(a: AddArgs) -> Result<SubscriberForm, AdminError> {
    let mut services = Vec::new();
    if a.plain {
        services.push(ServiceForm::default());
    }
    for s in &a.services {
        let (sic, name) = match s.split_once(':') {
            Some((sic, name)) => (sic.to_owned(), Some(name.to_owned())),
            None => (s.clone(), None),
        };
        services.push(ServiceForm {
            sic: Some(sic),
            name,
            ..ServiceForm::default()
        });
    }
    if services.is_empty() {
        return Err(AdminError::Usage(
            "no service: give --service SIC[:NAME] (e.g. --service 001 --service 002) and/or --plain for the plain TS 23.003 IMPI".into(),
        ));
    }
    Ok(SubscriberForm {
        imsi: a.imsi,
        msisdns: a.msisdns,
        mnc_len: a.mnc_len,
        home_domain: a.home_domain,
        k: a.k.map(SecretHex),
        opc: a.opc.map(SecretHex),
        op: a.op.map(SecretHex),
        amf: a.amf,
        sqn: None,
        password: a.password.map(Password),
        ha1: a.ha1.map(SecretHex),
        realm: None,
        default_scheme: a.default_scheme.map(Into::into),
        barred: a.barred,
        allowed_visited_networks: Vec::new(),
        services,
    })
}

fn print_subscriber(out: &mut dyn Write, v: &SubscriberView) -> Result<(), AdminError> {
    let yes = |b: bool| if b { "yes" } else { "no" };
    w(
        out,
        format_args!(
            "IMSI {}  MSISDN {}  home {}\nscheme {}  aka {}  digest {}  barred {}\n",
            v.imsi,
            if v.msisdns.is_empty() {
                "-".to_owned()
            } else {
                v.msisdns.join(",")
            },
            v.home_domain,
            v.default_scheme.as_str(),
            yes(v.aka),
            yes(v.digest),
            yes(v.barred)
        ),
    )?;
    print_services(out, &v.services)
}

/// One line per service: SIC, name, IMPI, state, S-CSCF.
fn print_services(out: &mut dyn Write, services: &[ServiceView]) -> Result<(), AdminError> {
    let rows: Vec<[String; 5]> = services
        .iter()
        .map(|s| {
            [
                sic_label(&s.sic).to_owned(),
                s.name.clone(),
                s.impi.clone(),
                s.state.as_str().to_owned(),
                s.scscf.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let head = ["SIC", "NAME", "IMPI", "STATE", "S-CSCF"].map(str::to_owned);
    let mut width = [0usize; 5];
    for r in std::iter::once(&head).chain(&rows) {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    for r in std::iter::once(&head).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3]
        );
        w(out, format_args!("{}\n", line.trim_end()))?;
    }
    Ok(())
}

fn print_report(
    out: &mut dyn Write,
    cmd: &str,
    sic: &str,
    r: &HssReport,
) -> Result<(), AdminError> {
    if !r.sent {
        return w(
            out,
            format_args!(
                "  no {cmd} sent for service {}: no S-CSCF holds it\n",
                sic_label(sic)
            ),
        );
    }
    w(
        out,
        format_args!(
            "  {cmd} for service {} to {}: {}\n",
            sic_label(sic),
            r.destination.as_deref().unwrap_or("-"),
            r.outcome()
        ),
    )
}

fn print_json<T: serde::Serialize>(out: &mut dyn Write, v: &T) -> Result<(), AdminError> {
    let text = serde_json::to_string_pretty(v).map_err(|e| AdminError::Response {
        message: e.to_string(),
    })?;
    w(out, format_args!("{text}\n"))
}

fn sic_label(sic: &str) -> &str {
    if sic.is_empty() {
        "plain"
    } else {
        sic
    }
}

fn w(out: &mut dyn Write, args: std::fmt::Arguments<'_>) -> Result<(), AdminError> {
    out.write_fmt(args).map_err(|e| AdminError::Io {
        path: "the output".into(),
        message: e.to_string(),
    })
}

fn io_err(path: &std::path::Path, e: std::io::Error) -> AdminError {
    AdminError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}
