//! IMSI, SIC and the private identity (IMPI): parsing and classification.
//!
//! See the [module documentation](super) for the accepted forms.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use super::IdentityError;

/// Shortest IMSI accepted: MCC (3) + a 3-digit MNC, so that both MNC lengths can be read.
const IMSI_MIN: usize = 6;
/// Longest IMSI (TS 23.003 §2.2: "not more than 15 digits").
const IMSI_MAX: usize = 15;

/// An International Mobile Subscriber Identity: `MCC ‖ MNC ‖ MSIN`, 6 to 15 decimal digits
/// (TS 23.003 §2.2).
///
/// The IMSI does not say how long its MNC is (2 or 3 digits); that comes from
/// configuration, see [`HomeNetwork`](super::HomeNetwork).
///
/// Held inline (no allocation): the digits, then zeros. Zero sorts below every digit, so
/// the derived order is the text's.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Imsi {
    digits: [u8; IMSI_MAX],
    len: u8,
}

impl Imsi {
    /// Parses an IMSI: 6 to 15 ASCII decimal digits, nothing else (no spaces, no sign).
    ///
    /// # Errors
    /// [`IdentityError::Imsi`] for any other text.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        if (IMSI_MIN..=IMSI_MAX).contains(&s.len()) && all_digits(s) {
            Ok(Self::from_digits(s))
        } else {
            Err(IdentityError::Imsi { imsi: s.to_owned() })
        }
    }

    /// `s`, already checked: 6 to 15 ASCII digits.
    fn from_digits(s: &str) -> Self {
        let mut digits = [0; IMSI_MAX];
        digits[..s.len()].copy_from_slice(s.as_bytes());
        Imsi {
            digits,
            len: s.len() as u8,
        }
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        // ASCII digits only, as `parse` checked.
        std::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or_default()
    }

    /// The Mobile Country Code: the first 3 digits (TS 23.003 §2.2).
    pub fn mcc(&self) -> &str {
        &self.as_str()[..3]
    }

    /// The MNC digits for an MNC of `len` digits (2 or 3), as they appear in the IMSI.
    pub(super) fn mnc(&self, len: usize) -> &str {
        &self.as_str()[3..3 + len]
    }
}

impl fmt::Debug for Imsi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Imsi").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Imsi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Imsi {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A Service Identification Code (CN103701828A): exactly 3 decimal digits naming one IMS
/// service of a phone, e.g. `001` for VoLTE and `002` for RCS.
///
/// Carried in the IMPI's domain as a `sic<SIC>` label (`…@ims.sic001.mnc001.mcc460.…`).
///
/// Held inline: the three digits.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sic([u8; 3]);

impl Sic {
    /// Parses a SIC: exactly 3 ASCII decimal digits (leading zeros are significant).
    ///
    /// # Errors
    /// [`IdentityError::Sic`] for any other text.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        if s.len() == 3 && all_digits(s) {
            Ok(Self::from_digits(s))
        } else {
            Err(IdentityError::Sic { sic: s.to_owned() })
        }
    }

    /// `s`, already checked: 3 ASCII digits.
    fn from_digits(s: &str) -> Self {
        let mut d = [b'0'; 3];
        d.copy_from_slice(&s.as_bytes()[..3]);
        Sic(d)
    }

    /// The 3 digits.
    pub fn as_str(&self) -> &str {
        // ASCII digits only, as `parse` checked.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The domain label that carries this SIC: `sic` followed by the digits.
    pub(super) fn label(&self) -> String {
        format!("sic{}", self.as_str())
    }
}

impl fmt::Debug for Sic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Sic").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Sic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sic {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// What a private identity turned out to be once parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ImpiKind {
    /// An IMSI user part with a SIC label in the domain: one service of one subscriber
    /// (`<IMSI>@ims.sic<SIC>.mnc<MNC>.mcc<MCC>.3gppnetwork.org`, or `<IMSI>@ims.sic<SIC>.<home>`
    /// / `<IMSI>@sic<SIC>.<home>` with an explicit home domain).
    Sic {
        /// The subscriber's IMSI (the user part).
        imsi: Imsi,
        /// The service.
        sic: Sic,
    },
    /// A TS 23.003 §13.3 IMPI derived from the IMSI, without a SIC:
    /// `<IMSI>@ims.mnc<MNC>.mcc<MCC>.3gppnetwork.org`.
    Imsi {
        /// The subscriber's IMSI (the user part).
        imsi: Imsi,
    },
    /// Any other `user@domain` (a provisioned NAI, RFC 7542), including an IMSI user part
    /// on a non-3GPP domain without a SIC label.
    Other,
}

/// An IMS private user identity (IMPI): an NAI `user@domain` (RFC 7542, TS 23.003 §13.3),
/// possibly carrying a SIC.
///
/// The stored text is normalised: the domain is lower-cased, the user part is kept as
/// written (NAI user parts are case-sensitive). Equality, ordering and hashing use that
/// normalised text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Impi {
    /// `user@domain`, domain lower-cased.
    full: String,
    /// Byte index of the `@` in `full`.
    at: usize,
    /// The classification, a function of `full`.
    kind: ImpiKind,
}

impl Impi {
    /// Parses and classifies a private identity.
    ///
    /// Rules, in order:
    /// 1. no whitespace or control characters; exactly one `@`; non-empty user and domain;
    ///    every domain label a hostname label (letters, digits, hyphen; 1–63 characters;
    ///    no hyphen at either end; no empty label, so no trailing dot);
    /// 2. a user part that is not all digits gives [`ImpiKind::Other`], whatever the domain
    ///    holds: a `sicNNN` label then stays an ordinary part of the domain;
    /// 3. with an all-digit user part and a TS 23.003 IMS domain (first label `ims`, ending
    ///    in `mcc….3gppnetwork.org`), the domain must be exactly
    ///    `ims.[sicNNN.]mncNNN.mccNNN.3gppnetwork.org`, the user part an IMSI, the MCC its
    ///    first 3 digits and the MNC its digits 4–5 (zero-padded) or 4–6:
    ///    [`ImpiKind::Sic`] or [`ImpiKind::Imsi`];
    /// 4. with an all-digit user part and any other domain that starts with `sicN…` or
    ///    `ims.sicN…` (explicit home domain), the SIC must be 3 digits and the user part an
    ///    IMSI: [`ImpiKind::Sic`];
    /// 5. anything else is [`ImpiKind::Other`].
    ///
    /// # Errors
    /// The [`IdentityError`] naming the first part found wrong.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        match Self::parse_3gpp(s) {
            Some(impi) => Ok(impi),
            None => Self::parse_full(s),
        }
    }

    /// [`Impi::parse`] without its one-pass reading of the usual forms.
    pub(super) fn parse_full(s: &str) -> Result<Self, IdentityError> {
        check_chars(s)?;
        let count = s.bytes().filter(|&b| b == b'@').count();
        if count != 1 {
            return Err(IdentityError::AtSign {
                impi: s.to_owned(),
                count,
            });
        }
        let (user, domain) = s.split_once('@').unwrap_or((s, ""));
        if user.is_empty() {
            return Err(IdentityError::EmptyUser { impi: s.to_owned() });
        }
        if domain.is_empty() {
            return Err(IdentityError::EmptyDomain { impi: s.to_owned() });
        }
        // Usually lower-case already: then no copy is made to look at it.
        let lower: std::borrow::Cow<'_, str> = if domain.bytes().any(|b| b.is_ascii_uppercase()) {
            domain.to_ascii_lowercase().into()
        } else {
            domain.into()
        };
        let labels = domain_labels(&lower, domain)?;
        let kind = classify(user, &labels, domain)?;
        let mut full = String::with_capacity(user.len() + 1 + lower.len());
        full.push_str(user);
        full.push('@');
        full.push_str(&lower);
        Ok(Self {
            full,
            at: user.len(),
            kind,
        })
    }

    /// The common case of [`Impi::parse`], read in one pass: exactly
    /// `<IMSI>@ims.[sic<SIC>.]mnc<MNC>.mcc<MCC>.3gppnetwork.org`, lower-case, with the MCC
    /// and MNC of the IMSI (rule 3). `None` for anything else, which `parse` then reads in
    /// full; when `Some`, it is what `parse` gives.
    pub(super) fn parse_3gpp(s: &str) -> Option<Self> {
        fn three<'a>(s: &'a str, prefix: &str) -> Option<(&'a str, usize)> {
            let d = s.strip_prefix(prefix)?.get(..3)?;
            all_digits(d).then_some((d, prefix.len() + 3))
        }
        let at = s.find('@')?;
        let (user, domain) = (&s[..at], &s[at + 1..]);
        if !(IMSI_MIN..=IMSI_MAX).contains(&user.len()) || !all_digits(user) {
            return None;
        }
        let mut rest = domain.strip_prefix("ims.")?;
        let sic = match three(rest, "sic") {
            Some((d, n)) => {
                rest = rest[n..].strip_prefix('.')?;
                Some(d)
            }
            None => None,
        };
        let (mnc, n) = three(rest, "mnc")?;
        rest = rest[n..].strip_prefix('.')?;
        let (mcc, n) = three(rest, "mcc")?;
        if &rest[n..] != ".3gppnetwork.org" || &user[..3] != mcc {
            return None;
        }
        if mnc.strip_prefix('0') != Some(&user[3..5]) && mnc != &user[3..6] {
            return None;
        }
        let imsi = Imsi::from_digits(user);
        Some(Self {
            full: s.to_owned(),
            at,
            kind: match sic {
                Some(d) => ImpiKind::Sic {
                    imsi,
                    sic: Sic::from_digits(d),
                },
                None => ImpiKind::Imsi { imsi },
            },
        })
    }

    /// The normalised text and the classification, taken apart.
    pub fn into_parts(self) -> (String, ImpiKind) {
        (self.full, self.kind)
    }

    /// The normalised identity: `user@domain` with the domain lower-cased.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// `s` parsed, if it is a SIC IMPI ([`ImpiKind::Sic`]); `None` for anything else,
    /// decided without parsing when the user part is not all digits (rule 2).
    pub fn parse_sic(s: &str) -> Option<Self> {
        let user = s.split('@').next().unwrap_or_default();
        if user.is_empty() || !user.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Self::parse(s)
            .ok()
            .filter(|i| matches!(i.kind, ImpiKind::Sic { .. }))
    }

    /// What the identity is: SIC-carrying, plain IMSI-derived, or other.
    pub fn kind(&self) -> &ImpiKind {
        &self.kind
    }

    /// The IMSI, for [`ImpiKind::Sic`] and [`ImpiKind::Imsi`].
    pub fn imsi(&self) -> Option<&Imsi> {
        match &self.kind {
            ImpiKind::Sic { imsi, .. } | ImpiKind::Imsi { imsi } => Some(imsi),
            ImpiKind::Other => None,
        }
    }

    /// The SIC, for [`ImpiKind::Sic`].
    pub fn sic(&self) -> Option<&Sic> {
        match &self.kind {
            ImpiKind::Sic { sic, .. } => Some(sic),
            _ => None,
        }
    }

    /// The user part, as written.
    pub fn user(&self) -> &str {
        &self.full[..self.at]
    }

    /// The domain as written (lower-cased), SIC label included.
    pub fn domain(&self) -> &str {
        &self.full[self.at + 1..]
    }

    /// The home domain: [`domain`](Self::domain) with the SIC label removed. The domain
    /// itself when there is no SIC.
    pub fn home_domain(&self) -> String {
        let domain = self.domain();
        let Some(sic) = self.sic() else {
            return domain.to_owned();
        };
        let label = sic.label();
        let mut labels: Vec<&str> = domain.split('.').collect();
        // `classify` looks at position 0 first, then at position 1 behind `ims`.
        let pos = if labels[0] == label { 0 } else { 1 };
        labels.remove(pos);
        labels.join(".")
    }

    /// The subscriber key: this identity as it would be without a SIC
    /// (`<IMSI>@<home domain>`). The identity itself when it has no SIC.
    ///
    /// With a TS 23.003 domain the result is [`ImpiKind::Imsi`]; with an explicit home
    /// domain it is [`ImpiKind::Other`], exactly what [`Impi::parse`] gives for that text.
    pub fn without_sic(&self) -> Impi {
        let ImpiKind::Sic { imsi, .. } = &self.kind else {
            return self.clone();
        };
        let home = self.home_domain();
        let kind = if is_ims_3gpp(&home.split('.').collect::<Vec<_>>()) {
            ImpiKind::Imsi { imsi: imsi.clone() }
        } else {
            ImpiKind::Other
        };
        Impi {
            full: format!("{}@{home}", self.user()),
            at: self.at,
            kind,
        }
    }
}

impl PartialOrd for Impi {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Impi {
    /// Orders by the normalised text; consistent with `Eq` since the other fields derive
    /// from it.
    fn cmp(&self, other: &Self) -> Ordering {
        self.full.cmp(&other.full)
    }
}

impl fmt::Display for Impi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl FromStr for Impi {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Rule 2–5 of [`Impi::parse`]. `labels` are lower-cased and valid; `domain` is as given.
fn classify(user: &str, labels: &[&str], domain: &str) -> Result<ImpiKind, IdentityError> {
    if !all_digits(user) {
        return Ok(ImpiKind::Other);
    }
    if is_ims_3gpp(labels) {
        return classify_3gpp(user, labels, domain);
    }
    let sic_pos = if labels.len() >= 2 && sic_digits(labels[0]).is_some() {
        0
    } else if labels[0] == "ims" && labels.len() >= 2 && sic_digits(labels[1]).is_some() {
        1
    } else {
        return Ok(ImpiKind::Other);
    };
    let sic = parse_sic_label(labels[sic_pos], domain)?;
    let mut home = labels.to_vec();
    home.remove(sic_pos);
    if let Some(extra) = leading_sic_label(&home) {
        return Err(IdentityError::ExtraSicLabel {
            domain: domain.to_owned(),
            label: extra.to_owned(),
        });
    }
    if is_ims_3gpp(&home) {
        // `sicNNN.ims.mnc….3gppnetwork.org`: the SIC is in the wrong place.
        return Err(IdentityError::ImsDomain {
            domain: domain.to_owned(),
        });
    }
    Ok(ImpiKind::Sic {
        imsi: Imsi::parse(user)?,
        sic,
    })
}

/// Rule 3 of [`Impi::parse`]: `ims.[sicNNN.]mncNNN.mccNNN.3gppnetwork.org`.
fn classify_3gpp(user: &str, labels: &[&str], domain: &str) -> Result<ImpiKind, IdentityError> {
    let n = labels.len();
    let shape_err = || IdentityError::ImsDomain {
        domain: domain.to_owned(),
    };
    let sic = match n {
        5 => None,
        6 if labels[1].starts_with("sic") => Some(parse_sic_label(labels[1], domain)?),
        _ => return Err(shape_err()),
    };
    let mnc = three_digits(labels[n - 4], "mnc").ok_or_else(|| IdentityError::MncLabel {
        domain: domain.to_owned(),
        label: labels[n - 4].to_owned(),
    })?;
    let mcc = three_digits(labels[n - 3], "mcc").ok_or_else(|| IdentityError::MccLabel {
        domain: domain.to_owned(),
        label: labels[n - 3].to_owned(),
    })?;
    let imsi = Imsi::parse(user)?;
    if imsi.mcc() != mcc {
        return Err(IdentityError::MccMismatch {
            imsi: user.to_owned(),
            imsi_mcc: imsi.mcc().to_owned(),
            domain: domain.to_owned(),
            domain_mcc: mcc.to_owned(),
        });
    }
    let two_digit = imsi.mnc(2);
    let three_digit = imsi.mnc(3);
    let is_two_digit = mnc.strip_prefix('0') == Some(two_digit);
    if !is_two_digit && mnc != three_digit {
        return Err(IdentityError::MncMismatch {
            imsi: user.to_owned(),
            domain: domain.to_owned(),
            domain_mnc: mnc.to_owned(),
            two_digit: format!("0{two_digit}"),
            three_digit: three_digit.to_owned(),
        });
    }
    Ok(match sic {
        Some(sic) => ImpiKind::Sic { imsi, sic },
        None => ImpiKind::Imsi { imsi },
    })
}

/// Whether lower-cased `labels` look like a TS 23.003 §13.2 IMS home domain (possibly with
/// a SIC): first label `ims`, ending in `mcc….3gppnetwork.org`. The exact shape is checked
/// by [`classify_3gpp`], so that a near miss is an error rather than [`ImpiKind::Other`].
pub(super) fn is_ims_3gpp(labels: &[&str]) -> bool {
    let n = labels.len();
    n >= 4
        && labels[0] == "ims"
        && labels[n - 2] == "3gppnetwork"
        && labels[n - 1] == "org"
        && labels[n - 3].starts_with("mcc")
}

/// The SIC label a home domain would be mistaken for: `sicN…` first, or `ims.sicN…`.
pub(super) fn leading_sic_label<'a>(labels: &[&'a str]) -> Option<&'a str> {
    match labels {
        [first, ..] if sic_digits(first).is_some() => Some(first),
        ["ims", second, ..] if sic_digits(second).is_some() => Some(second),
        _ => None,
    }
}

/// `Some(digits)` when `label` is `sic` followed by one or more digits.
fn sic_digits(label: &str) -> Option<&str> {
    label
        .strip_prefix("sic")
        .filter(|d| !d.is_empty() && all_digits(d))
}

/// Parses a `sic…` label that must be `sic` followed by exactly 3 digits.
fn parse_sic_label(label: &str, domain: &str) -> Result<Sic, IdentityError> {
    three_digits(label, "sic")
        .map(Sic::from_digits)
        .ok_or_else(|| IdentityError::SicLabel {
            domain: domain.to_owned(),
            label: label.to_owned(),
        })
}

/// `Some(digits)` when `label` is `prefix` followed by exactly 3 digits.
fn three_digits<'a>(label: &'a str, prefix: &str) -> Option<&'a str> {
    label
        .strip_prefix(prefix)
        .filter(|d| d.len() == 3 && all_digits(d))
}

/// Splits a lower-cased domain into labels, each a valid hostname label (RFC 1123 §2.1).
/// `original` is the domain as given, for the error.
pub(super) fn domain_labels<'a>(
    lower: &'a str,
    original: &str,
) -> Result<Vec<&'a str>, IdentityError> {
    // Split by hand on the byte: `str::split` costs more than the checks for a short domain.
    let mut labels = Vec::with_capacity(8);
    let mut start = 0;
    for (i, b) in lower.bytes().enumerate() {
        if b == b'.' {
            labels.push(&lower[start..i]);
            start = i + 1;
        }
    }
    labels.push(&lower[start..]);
    for label in &labels {
        if !is_hostname_label(label) {
            return Err(IdentityError::Label {
                domain: original.to_owned(),
                label: (*label).to_owned(),
            });
        }
    }
    Ok(labels)
}

/// Letters, digits and hyphens, 1 to 63 characters, no hyphen at either end.
pub(super) fn is_hostname_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Refuses whitespace and control characters anywhere in an identity.
pub(super) fn check_chars(s: &str) -> Result<(), IdentityError> {
    // The usual identity is printable ASCII: one pass over the bytes decides.
    if s.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    match s.chars().find(|c| c.is_whitespace() || c.is_control()) {
        Some(ch) => Err(IdentityError::Character {
            identity: s.to_owned(),
            ch,
        }),
        None => Ok(()),
    }
}

/// Non-empty and all ASCII decimal digits.
pub(super) fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}
