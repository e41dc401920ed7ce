//! A test UE: registers one IMS service of a phone with its own SIC-tagged private
//! identity, over SIP/UDP, against real CSCFs (Kamailio's I-CSCF and S-CSCF) in front of
//! this HSS.
//!
//! Each service of a phone (VoLTE SIC 001, RCS SIC 002; patent CN103701828A) registers with
//! `<IMSI>@ims.sic<SIC>.mnc<MNC>.mcc<MCC>.3gppnetwork.org` as its IMPI and the shared
//! `sip:<MSISDN>@<home domain>` as its IMPU, so services register and de-register
//! independently. The UE does what a phone does (TS 24.229 §5.1.1; RFC 3261 §10):
//!
//! 1. REGISTER `sip:<home>` with To/From = IMPU, Contact = its UDP address, a Call-ID kept
//!    for the dialog, and the 3GPP initial `Authorization: Digest username="<IMPI>",
//!    realm="<home>", nonce="", uri="sip:<home>", response=""` (TS 24.229 §5.1.1.2.1), from
//!    which Kamailio takes the IMPI (kamailio.md §3);
//! 2. answers the 401: AKAv1-MD5 (RFC 3310) with RES from Milenage after checking AUTN and
//!    the SQN, or AUTS when the SQN is stale (RFC 3310 §3.4); MD5 (RFC 2617) with the
//!    password; qop=auth or none;
//! 3. reports the 200 OK (P-Associated-URI, Service-Route, Contact expiry), refreshes
//!    before expiry (TS 24.229 §5.1.1.4.1), answers MESSAGEs on its contact, and
//!    de-registers with Expires 0 (TS 24.229 §5.1.1.6).
//!
//! # Layout
//! - [`sip`]: SIP message builder and parser (no IO).
//! - [`digest`]: challenges, Authorization, the USIM's SQN and AUTS (no IO but the SQN file).
//! - [`agent`]: [`Ue`] over a tokio UDP socket; [`UeEvent`].
//! - [`error`]: [`UeError`], [`SipError`].
//! - this file: the `sichss ue` arguments ([`UeArgs`]) and [`run`].
//!
//! Library use (as the Kamailio end-to-end tests do):
//! ```no_run
//! # async fn f() -> Result<(), sichss::ue::UeError> {
//! use sichss::identity::{HomeNetwork, Imsi, Sic};
//! use sichss::ue::{Credentials, Ue, UeConfig};
//! let imsi = Imsi::parse("460011100612345")?;
//! let sic = Sic::parse("002")?;
//! let mut cfg = UeConfig::for_service(&imsi, Some(&sic), &HomeNetwork::MncLen(2),
//!     "+8618612345678", "127.0.0.1:4060".parse().unwrap())?;
//! cfg.credentials = Credentials { aka: None, password: Some("sichss-demo".into()) };
//! let mut rcs = Ue::bind(cfg).await?;
//! let reg = rcs.register().await?;
//! println!("{:?}", reg.associated);
//! rcs.deregister().await?;
//! # Ok(()) }
//! ```
//!
//! Never prints K, OPc, OP, the password or RES. Depends on `auth`, `identity`, tokio's UDP
//! and signals; nothing of the HSS itself.
#![warn(missing_docs)]

pub mod agent;
pub mod digest;
pub mod error;
pub mod sip;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ArgGroup;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::Instant;

pub use agent::{refresh_delay, Registration, Timers, Ue, UeConfig, UeEvent};
pub use digest::{Credentials, Usim};
pub use error::{SipError, UeError};

use crate::auth::{Key128, Milenage};
use crate::identity::{HomeNetwork, Imsi, Sic};

/// `sichss ue …`: run a test UE (one service of a phone).
#[derive(clap::Args)]
pub struct UeArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UeCommand,
}

/// The `sichss ue` actions.
#[derive(clap::Subcommand)]
pub enum UeCommand {
    /// Register one service (IMPI with its SIC) and print the 200 OK; with --hold or
    /// --listen-messages stay registered (refreshing) and de-register at the end or on
    /// Ctrl-C / SIGTERM.
    Register(RegisterArgs),
    /// De-register one service: REGISTER with Expires 0 from the same --local address as
    /// the registration (its contact), authenticated again.
    Deregister(DeregisterArgs),
    /// Send a MESSAGE (RFC 3428) to a public identity through the I-CSCF (LIR path).
    Message(MessageArgs),
}

/// Who the UE is: the identities a phone derives from its ISIM.
#[derive(clap::Args, Clone)]
#[command(group(ArgGroup::new("home").required(true).args(["mnc_len", "home_domain"])))]
pub struct IdentityArgs {
    /// IMSI, e.g. 460011100612345.
    #[arg(long)]
    pub imsi: String,
    /// Service Identification Code (3 digits, e.g. 001 VoLTE, 002 RCS); omit for the plain
    /// TS 23.003 IMPI of a legacy subscriber.
    #[arg(long)]
    pub sic: Option<String>,
    /// Length of the MNC in the IMSI (2 or 3): home domain ims.mncXXX.mccYYY.3gppnetwork.org.
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub mnc_len: Option<u8>,
    /// Explicit home domain instead of the IMSI-derived one.
    #[arg(long)]
    pub home_domain: Option<String>,
    /// MSISDN: the public identity is sip:<MSISDN>@<home domain>.
    #[arg(long, required_unless_present = "impu")]
    pub msisdn: Option<String>,
    /// Public identity to register instead of sip:<MSISDN>@<home domain>.
    #[arg(long)]
    pub impu: Option<String>,
}

/// The UE's secrets. Values may come from the environment so they stay out of `ps`.
#[derive(clap::Args, Clone)]
#[command(group(ArgGroup::new("secret").required(true).multiple(true).args(["k", "password"])))]
pub struct CredentialArgs {
    /// K, 32 hex digits (AKAv1-MD5); needs --opc or --op.
    #[arg(long, env = "SICHSS_UE_K", hide_env_values = true)]
    pub k: Option<String>,
    /// OPc, 32 hex digits.
    #[arg(
        long,
        env = "SICHSS_UE_OPC",
        hide_env_values = true,
        conflicts_with = "op"
    )]
    pub opc: Option<String>,
    /// OP, 32 hex digits (OPc is computed from it).
    #[arg(long, env = "SICHSS_UE_OP", hide_env_values = true)]
    pub op: Option<String>,
    /// SIP Digest password (MD5 challenges).
    #[arg(long, env = "SICHSS_UE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// File keeping the USIM's SQN_MS between runs (shared by the services of one IMSI);
    /// without it the USIM starts at 0 in memory.
    #[arg(long)]
    pub sqn_file: Option<PathBuf>,
}

/// Where the UE sends and listens, and how it reports.
#[derive(clap::Args, Clone)]
pub struct NetArgs {
    /// The P-CSCF, here the I-CSCF (harness/kamailio: 127.0.0.1:4060).
    #[arg(long, default_value = "127.0.0.1:4060")]
    pub pcscf: SocketAddr,
    /// Local UDP address; the port is the contact (0 = any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub local: SocketAddr,
    /// Seconds to wait for a final response (RFC 3261 Timer F).
    #[arg(long, default_value_t = 32)]
    pub timeout: u64,
    /// Print one JSON object per event instead of human lines.
    #[arg(long)]
    pub json: bool,
}

/// `sichss ue register`.
#[derive(clap::Args, Clone)]
pub struct RegisterArgs {
    /// Identities.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Secrets.
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// Network.
    #[command(flatten)]
    pub net: NetArgs,
    /// Expires asked for, in seconds.
    #[arg(long, default_value_t = 600)]
    pub expires: u32,
    /// Stay registered this many seconds (refreshing before expiry), then de-register.
    #[arg(long)]
    pub hold: Option<u64>,
    /// Print every MESSAGE received on the contact (they are answered 200 anyway); without
    /// --hold, stay until Ctrl-C / SIGTERM.
    #[arg(long)]
    pub listen_messages: bool,
}

/// `sichss ue deregister`.
#[derive(clap::Args, Clone)]
pub struct DeregisterArgs {
    /// Identities.
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Secrets.
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// Network; --local must be the address the registration used.
    #[command(flatten)]
    pub net: NetArgs,
}

/// `sichss ue message`.
#[derive(clap::Args, Clone)]
pub struct MessageArgs {
    /// Request-URI, the public identity to reach, e.g. sip:+8618612345678@ims.mnc001.mcc460.3gppnetwork.org.
    #[arg(long)]
    pub to: String,
    /// From URI.
    #[arg(long, default_value = "sip:sichss-ue@127.0.0.1")]
    pub from: String,
    /// Message text.
    #[arg(long, default_value = "")]
    pub body: String,
    /// Content-Type of the body.
    #[arg(long, default_value = "text/plain")]
    pub content_type: String,
    /// Network.
    #[command(flatten)]
    pub net: NetArgs,
}

/// Builds the UE configuration from the command line.
///
/// # Errors
/// [`UeError::Identity`], [`UeError::Key`], [`UeError::Usage`] (K without OPc/OP),
/// [`UeError::SqnFile`].
pub fn config(
    identity: &IdentityArgs,
    credentials: &CredentialArgs,
    net: &NetArgs,
) -> Result<UeConfig, UeError> {
    let imsi = Imsi::parse(identity.imsi.trim())?;
    let sic = identity.sic.as_deref().map(Sic::parse).transpose()?;
    let home = match (&identity.home_domain, identity.mnc_len) {
        (Some(d), _) => HomeNetwork::Domain(d.clone()),
        (None, Some(len)) => HomeNetwork::MncLen(len),
        (None, None) => {
            return Err(UeError::Usage {
                what: "give --mnc-len 2|3 or --home-domain".into(),
            })
        }
    };
    let msisdn = identity.msisdn.as_deref().unwrap_or("");
    let mut cfg = UeConfig::for_service(&imsi, sic.as_ref(), &home, msisdn, net.pcscf)?;
    if let Some(impu) = &identity.impu {
        cfg.impu = impu.clone();
    } else if msisdn.is_empty() {
        return Err(UeError::Usage {
            what: "give --msisdn or --impu".into(),
        });
    }
    cfg.local = net.local;
    cfg.timers.timeout = Duration::from_secs(net.timeout.max(1));
    cfg.credentials = credentials_from(credentials)?;
    if let Some(path) = &credentials.sqn_file {
        cfg.usim = Usim::load(path)?;
    }
    Ok(cfg)
}

fn credentials_from(c: &CredentialArgs) -> Result<Credentials, UeError> {
    let aka = match (&c.k, &c.opc, &c.op) {
        (None, None, None) => None,
        (Some(k), Some(opc), _) => Some(Milenage::with_opc(
            &Key128::from_hex("K", k).map_err(UeError::Key)?,
            &Key128::from_hex("OPc", opc).map_err(UeError::Key)?,
        )),
        (Some(k), None, Some(op)) => Some(Milenage::with_op(
            &Key128::from_hex("K", k).map_err(UeError::Key)?,
            &Key128::from_hex("OP", op).map_err(UeError::Key)?,
        )),
        (Some(_), None, None) => {
            return Err(UeError::Usage {
                what: "--k needs --opc or --op".into(),
            })
        }
        (None, _, _) => {
            return Err(UeError::Usage {
                what: "--opc/--op need --k".into(),
            })
        }
    };
    Ok(Credentials {
        aka,
        password: c.password.clone(),
    })
}

/// How events are printed: human lines or one JSON object per line.
#[derive(Debug, Clone, Copy)]
struct Output {
    json: bool,
}

impl Output {
    fn emit(self, ev: &UeEvent) {
        if self.json {
            match serde_json::to_string(ev) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("cannot encode event: {e}"),
            }
        } else {
            println!("{ev}");
        }
    }

    fn flush(self, ue: &mut Ue, show_messages: bool) {
        for ev in ue.drain_events() {
            if show_messages || !matches!(ev, UeEvent::Message { .. }) {
                self.emit(&ev);
            }
        }
    }

    /// Reports a failure as an event in JSON mode (human mode leaves it to the caller, which
    /// prints the returned error).
    fn error(self, impi: Option<&str>, e: &UeError) {
        if self.json {
            self.emit(&UeEvent::Error {
                impi: impi.map(str::to_owned),
                status: e.status(),
                reason: e.to_string(),
            });
        }
    }
}

/// Runs `sichss ue …`. Events go to stdout (human lines or `--json`).
///
/// # Errors
/// Any [`UeError`]; the caller exits non-zero (e.g. [`UeError::Rejected`] with 403 for an
/// unsubscribed SIC).
pub async fn run(args: UeArgs) -> Result<(), UeError> {
    match args.command {
        UeCommand::Register(a) => {
            let out = Output { json: a.net.json };
            let mut cfg = match config(&a.identity, &a.credentials, &a.net) {
                Ok(c) => c,
                Err(e) => {
                    out.error(None, &e);
                    return Err(e);
                }
            };
            cfg.expires = a.expires;
            let impi = cfg.impi.clone();
            let hold = a.hold.map(Duration::from_secs);
            let stay = hold.is_some() || a.listen_messages;
            let r = register_and_hold(cfg, out, stay.then_some(hold), a.listen_messages).await;
            if let Err(e) = &r {
                out.error(Some(&impi), e);
            }
            r
        }
        UeCommand::Deregister(a) => {
            let out = Output { json: a.net.json };
            let cfg = match config(&a.identity, &a.credentials, &a.net) {
                Ok(c) => c,
                Err(e) => {
                    out.error(None, &e);
                    return Err(e);
                }
            };
            let impi = cfg.impi.clone();
            let r = async {
                let mut ue = Ue::bind(cfg).await?;
                let r = ue.deregister().await;
                out.flush(&mut ue, false);
                r
            }
            .await;
            if let Err(e) = &r {
                out.error(Some(&impi), e);
            }
            r
        }
        UeCommand::Message(a) => {
            let out = Output { json: a.net.json };
            let r = send_message(&a, out).await;
            if let Err(e) = &r {
                out.error(None, e);
            }
            r
        }
    }
}

async fn send_message(a: &MessageArgs, out: Output) -> Result<(), UeError> {
    let cfg = UeConfig {
        impi: String::new(),
        impu: a.from.clone(),
        home_domain: String::new(),
        pcscf: a.net.pcscf,
        local: a.net.local,
        expires: 0,
        credentials: Credentials::default(),
        usim: Usim::new(0),
        timers: Timers {
            timeout: Duration::from_secs(a.net.timeout.max(1)),
            ..Timers::default()
        },
    };
    let mut ue = Ue::bind(cfg).await?;
    let (status, reason) = ue
        .send_message(&a.from, &a.to, &a.content_type, &a.body)
        .await?;
    out.flush(&mut ue, false);
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(UeError::Rejected {
            method: "MESSAGE".into(),
            impu: a.to.clone(),
            status,
            reason,
        })
    }
}

/// Registers; with `stay = Some(hold)` keeps the registration fresh until `hold` passes
/// (forever when `None`) or SIGINT/SIGTERM arrives, printing events, then de-registers.
async fn register_and_hold(
    cfg: UeConfig,
    out: Output,
    stay: Option<Option<Duration>>,
    show_messages: bool,
) -> Result<(), UeError> {
    let mut ue = Ue::bind(cfg).await?;
    let first = ue.register().await;
    out.flush(&mut ue, show_messages);
    let reg = first?;
    let Some(hold) = stay else {
        return Ok(());
    };
    let io = |source| UeError::Io {
        peer: SocketAddr::from(([127, 0, 0, 1], 0)),
        source,
    };
    let mut sigint = signal(SignalKind::interrupt()).map_err(io)?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(io)?;
    let end = hold.map(|h| Instant::now() + h);
    let mut refresh_at = Instant::now() + refresh_delay(reg.expires);
    loop {
        let wake = end.map_or(refresh_at, |e| e.min(refresh_at));
        tokio::select! {
            _ = sigint.recv() => break,
            _ = sigterm.recv() => break,
            () = tokio::time::sleep_until(wake) => {
                if end.is_some_and(|e| Instant::now() >= e) {
                    break;
                }
                let r = ue.register().await;
                out.flush(&mut ue, show_messages);
                refresh_at = Instant::now() + refresh_delay(r?.expires);
            }
            ev = ue.next_event(None) => {
                if let Some(ev) = ev? {
                    if show_messages || !matches!(ev, UeEvent::Message { .. }) {
                        out.emit(&ev);
                    }
                }
            }
        }
    }
    let r = ue.deregister().await;
    out.flush(&mut ue, show_messages);
    r
}
