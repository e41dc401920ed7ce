//! IMS identities: the IMSI, the Service Identification Code (SIC), private identities
//! (IMPI) and public identities (IMPU), parsed, derived and normalised.
//!
//! # Per-service private identities (CN103701828A)
//!
//! Each IMS service of a phone registers with its own IMPI, made from the TS 23.003 §13.3
//! IMSI-derived IMPI by adding a `sic<SIC>` label right after `ims`:
//!
//! ```text
//! <IMSI>@ims.sic<SIC>.mnc<MNC>.mcc<MCC>.3gppnetwork.org
//! 460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org    VoLTE (SIC 001)
//! 460011100612345@ims.sic002.mnc001.mcc460.3gppnetwork.org    RCS   (SIC 002)
//! ```
//!
//! The HSS strips the SIC ([`Impi::without_sic`]) to find the subscriber, and keeps the
//! registration state per IMPI, so services register and de-register independently.
//!
//! # What is accepted
//!
//! - **Home network domain** (TS 23.003 §13.2): `ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org`, the
//!   MNC always written with 3 digits (a 2-digit MNC gets a leading `0`). The IMSI does not
//!   say how long its MNC is, so [`HomeNetwork`] gives that length, or an explicit domain.
//! - **IMPI** (TS 23.003 §13.3; an NAI, RFC 7542): the plain IMSI-derived form, the SIC
//!   form above, the SIC form on an explicit home domain (`<IMSI>@ims.sic002.example.com`
//!   or `<IMSI>@sic002.example.com`), and any other provisioned `user@domain`. See
//!   [`Impi::parse`] for the exact rules. A `sicNNN` label only means a SIC when the user
//!   part is all digits: in `alice@sic001.example.com` it is an ordinary domain label.
//! - **Temporary IMPU** (TS 23.003 §13.4): `sip:<IMSI>@<home domain>`, never with a SIC
//!   ([`temporary_impu`]).
//! - **IMPU**: a SIP or SIPS URI (RFC 3261 §19.1) or a tel URI (RFC 3966), reduced to a
//!   lookup key ([`Impu`]).
//!
//! Pure: no tokio, no sled, no IO. Must not depend on any other sichss module.

mod error;
mod impi;
mod impu;
#[cfg(test)]
mod tests;

pub use error::IdentityError;
pub use impi::{Impi, ImpiKind, Imsi, Sic};
pub use impu::{Impu, ImpuScheme};

/// How the home network domain of an IMSI is known.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HomeNetwork {
    /// Derive it from the IMSI (TS 23.003 §13.2), with this MNC length: 2 or 3 digits.
    /// The length comes from configuration (USIM EF_AD for a UE; the operator's PLMN list
    /// for the network), never from the IMSI itself.
    MncLen(u8),
    /// An explicit home domain, e.g. `ims.example.com`. Lower-cased on use; it must be a
    /// valid domain name and carry no SIC label.
    Domain(String),
}

/// The home network domain of `imsi` (TS 23.003 §13.2), lower-cased.
///
/// `MncLen(2)` with IMSI `460011100612345` gives `ims.mnc001.mcc460.3gppnetwork.org`;
/// `MncLen(3)` with `310260123456789` gives `ims.mnc260.mcc310.3gppnetwork.org`; an explicit
/// domain is returned lower-cased.
///
/// # Errors
/// [`IdentityError::MncLength`] for an MNC length other than 2 or 3;
/// [`IdentityError::Label`] for an explicit domain that is not a valid domain name;
/// [`IdentityError::ExtraSicLabel`] for an explicit domain that starts with a SIC label
/// (`sicN…` or `ims.sicN…`), since SIC IMPIs on it could not be told apart.
pub fn home_domain(imsi: &Imsi, net: &HomeNetwork) -> Result<String, IdentityError> {
    match net {
        HomeNetwork::MncLen(len @ (2 | 3)) => Ok(format!(
            "ims.mnc{:0>3}.mcc{}.3gppnetwork.org",
            imsi.mnc(usize::from(*len)),
            imsi.mcc()
        )),
        HomeNetwork::MncLen(len) => Err(IdentityError::MncLength { len: *len }),
        HomeNetwork::Domain(domain) => {
            impi::check_chars(domain)?;
            let lower = domain.to_ascii_lowercase();
            let labels = impi::domain_labels(&lower, domain)?;
            if let Some(label) = impi::leading_sic_label(&labels) {
                return Err(IdentityError::ExtraSicLabel {
                    domain: domain.clone(),
                    label: label.to_owned(),
                });
            }
            Ok(lower)
        }
    }
}

/// Derives the private identity of `imsi`, for one service when `sic` is given.
///
/// ```text
/// 460011100612345, MncLen(2), SIC 001 → 460011100612345@ims.sic001.mnc001.mcc460.3gppnetwork.org
/// 460011100612345, MncLen(2), no SIC  → 460011100612345@ims.mnc001.mcc460.3gppnetwork.org
/// <IMSI>, Domain("ims.example.com"), SIC 002 → <IMSI>@ims.sic002.example.com
/// <IMSI>, Domain("example.com"),     SIC 002 → <IMSI>@sic002.example.com
/// ```
///
/// The SIC label goes right after a leading `ims` label, otherwise first. The result is
/// built as text and then run through [`Impi::parse`], so what is derived always parses
/// back to the same value. Without a SIC on an explicit non-3GPP domain the result is
/// [`ImpiKind::Other`], as parsing that text gives.
///
/// # Errors
/// Those of [`home_domain`], and those of [`Impi::parse`] when an explicit 3GPP domain does
/// not match the IMSI (MCC or MNC mismatch).
pub fn derive_impi(
    imsi: &Imsi,
    net: &HomeNetwork,
    sic: Option<&Sic>,
) -> Result<Impi, IdentityError> {
    let home = home_domain(imsi, net)?;
    let domain = match sic {
        None => home,
        Some(sic) => match home.strip_prefix("ims.") {
            Some(rest) => format!("ims.{}.{rest}", sic.label()),
            None => format!("{}.{home}", sic.label()),
        },
    };
    Impi::parse(&format!("{imsi}@{domain}"))
}

/// The temporary public identity of `imsi` (TS 23.003 §13.4): `sip:<IMSI>@<home domain>`.
/// It never carries a SIC; the HSS provisions it barred (BarringIndication=1) in the
/// implicit registration set.
///
/// # Errors
/// Those of [`home_domain`].
pub fn temporary_impu(imsi: &Imsi, net: &HomeNetwork) -> Result<Impu, IdentityError> {
    let home = home_domain(imsi, net)?;
    Impu::parse(&format!("sip:{imsi}@{home}"))
}
