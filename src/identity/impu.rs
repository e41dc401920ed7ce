//! The public identity (IMPU): a SIP URI (RFC 3261 §19.1) or a tel URI (RFC 3966),
//! reduced to the key under which the HSS stores it.

use std::cmp::Ordering;
use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use super::impi::{all_digits, check_chars, is_hostname_label};
use super::IdentityError;

/// RFC 3966 §5.1.1 visual separators, dropped from tel numbers.
const VISUAL_SEPARATORS: [char; 4] = ['-', '.', '(', ')'];

/// The URI scheme of a public identity, after normalisation (`sips:` becomes `sip:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImpuScheme {
    /// `sip:` or `sips:` (RFC 3261 §19.1).
    Sip,
    /// `tel:` (RFC 3966).
    Tel,
}

impl ImpuScheme {
    /// The scheme as it appears in the key: `"sip"` or `"tel"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sip => "sip",
            Self::Tel => "tel",
        }
    }
}

impl fmt::Display for ImpuScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An IMS public user identity (IMPU, TS 23.003 §13.4; TS 23.228 §4.3.3): a SIP URI or a
/// tel URI, held as its normalised lookup key.
///
/// Normalisation (the key, [`as_str`](Self::as_str)):
/// - the scheme is lower-cased and `sips` becomes `sip` (one subscriber, one key);
/// - SIP: URI parameters (`;user=phone`, `;transport=…`) and headers (`?…`) are dropped,
///   the host is lower-cased (an IPv6 reference is written in its canonical form), the
///   user part is kept as written, and the scheme's default port (5060 for `sip`, 5061 for
///   `sips`) is dropped; other ports stay;
/// - tel: the visual separators `-` `.` `(` `)` are removed and the parameters dropped.
///   A global number is `+` and digits; a local number is digits, `*` and `#`, with or
///   without a `phone-context` (left out of the key: a deployment has one context, so
///   local numbers do not collide; real CSCFs send local numbers without one).
///
/// Percent-escapes in the user part are not decoded, and `sip:+…;user=phone` and
/// `tel:+…` stay two keys: the HSS stores each IMPU as provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Impu {
    /// The normalised key.
    key: String,
    /// The scheme after normalisation.
    scheme: ImpuScheme,
    /// SIP user part (None for `sip:host`), or the tel number without separators.
    user: Option<String>,
    /// The lower-cased SIP host, without port; None for tel.
    host: Option<String>,
}

impl Impu {
    /// Parses a public identity (`sip:`, `sips:` or `tel:`, scheme case-insensitive).
    ///
    /// # Errors
    /// The [`IdentityError`] naming the first part found wrong: the scheme, an empty or
    /// invalid host or port, an empty SIP user part, a password, a tel number that is not
    /// `+digits`, or a local tel number without `phone-context`.
    pub fn parse(s: &str) -> Result<Self, IdentityError> {
        check_chars(s)?;
        let scheme_err = || IdentityError::Scheme { impu: s.to_owned() };
        let (scheme, rest) = s.split_once(':').ok_or_else(scheme_err)?;
        if scheme.eq_ignore_ascii_case("sip") {
            parse_sip(s, rest, 5060)
        } else if scheme.eq_ignore_ascii_case("sips") {
            parse_sip(s, rest, 5061)
        } else if scheme.eq_ignore_ascii_case("tel") {
            parse_tel(s, rest)
        } else {
            Err(scheme_err())
        }
    }

    /// The normalised lookup key of `s`: exactly [`Impu::parse`]`(s)?.as_str()`, built
    /// without the parts a lookup does not need. An identity already in its key form
    /// (`sip:user@host` with a lower-case host and no port or parameters, or
    /// `tel:+digits`), which is what CSCFs send, is checked in one pass over its bytes.
    ///
    /// # Errors
    /// As [`Impu::parse`].
    pub fn normalize(s: &str) -> Result<String, IdentityError> {
        if is_key_form(s) {
            return Ok(s.to_owned());
        }
        Self::parse(s).map(|i| i.key)
    }

    /// The normalised lookup key, e.g. `sip:alice@example.com` or `tel:+8613800138000`.
    pub fn as_str(&self) -> &str {
        &self.key
    }

    /// `Sip` (also for `sips:` input) or `Tel`.
    pub fn scheme(&self) -> ImpuScheme {
        self.scheme
    }

    /// The SIP user part as written (None for a host-only SIP URI such as a PSI
    /// `sip:conference.example.com`), or the tel number without visual separators.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The lower-cased SIP host without port; None for a tel URI.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }
}

impl PartialOrd for Impu {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Impu {
    /// Orders by the key; consistent with `Eq` since the other fields derive from it.
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}

impl fmt::Display for Impu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key)
    }
}

impl FromStr for Impu {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Whether `s` is a public identity that is its own key: `tel:+` and digits, or `sip:`,
/// a user part (printable ASCII, no `:`), `@` and a host of lower-case hostname labels with
/// no port, parameters or headers. Anything else (including every error) is left to
/// [`Impu::parse`].
fn is_key_form(s: &str) -> bool {
    let b = s.as_bytes();
    if let Some(digits) = b.strip_prefix(b"tel:+") {
        return !digits.is_empty() && digits.iter().all(u8::is_ascii_digit);
    }
    let Some(rest) = b.strip_prefix(b"sip:") else {
        return false;
    };
    let Some(at) = rest.iter().rposition(|&c| c == b'@') else {
        return false;
    };
    let (user, host) = (&rest[..at], &rest[at + 1..]);
    !user.is_empty()
        && user.iter().all(|&c| c.is_ascii_graphic() && c != b':')
        && host.split(|&c| c == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
                && label[0] != b'-'
                && label[label.len() - 1] != b'-'
        })
}

/// `rest` is everything after `sip:`/`sips:`; `default_port` is dropped from the key.
fn parse_sip(s: &str, rest: &str, default_port: u16) -> Result<Impu, IdentityError> {
    // Neither uri-parameters nor headers may hold an unescaped '@' (RFC 3261 §25.1), but the
    // user part may hold ';' and '?': so split userinfo off at the last '@' first.
    let (user, hostpart) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    if let Some(user) = user {
        if user.is_empty() {
            return Err(IdentityError::EmptySipUser { impu: s.to_owned() });
        }
        if user.contains(':') {
            return Err(IdentityError::Password { impu: s.to_owned() });
        }
    }
    let hostport = hostpart.split([';', '?']).next().unwrap_or_default();
    let (host, port) = split_hostport(s, hostport)?;
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n != 0 && all_digits(p) => (n != default_port).then_some(n),
            _ => {
                return Err(IdentityError::Port {
                    impu: s.to_owned(),
                    port: p.to_owned(),
                })
            }
        },
    };
    let mut key = String::from("sip:");
    if let Some(user) = user {
        key.push_str(user);
        key.push('@');
    }
    key.push_str(&host);
    if let Some(port) = port {
        key.push_str(&format!(":{port}"));
    }
    Ok(Impu {
        key,
        scheme: ImpuScheme::Sip,
        user: user.map(str::to_owned),
        host: Some(host),
    })
}

/// Splits `host[:port]` and validates the host; returns the normalised host.
fn split_hostport<'a>(
    s: &str,
    hostport: &'a str,
) -> Result<(String, Option<&'a str>), IdentityError> {
    if hostport.is_empty() {
        return Err(IdentityError::EmptyHost { impu: s.to_owned() });
    }
    let host_err = |host: &str| IdentityError::Host {
        impu: s.to_owned(),
        host: host.to_owned(),
    };
    if let Some(inner) = hostport.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or_else(|| host_err(hostport))?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| host_err(hostport))?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| host_err(hostport))?),
        };
        return Ok((format!("[{addr}]"), port));
    }
    let (host, port) = match hostport.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (hostport, None),
    };
    if host.is_empty() {
        return Err(IdentityError::EmptyHost { impu: s.to_owned() });
    }
    let lower = host.to_ascii_lowercase();
    if !lower.split('.').all(is_hostname_label) {
        return Err(host_err(host));
    }
    Ok((lower, port))
}

/// `rest` is everything after `tel:`.
fn parse_tel(s: &str, rest: &str) -> Result<Impu, IdentityError> {
    let rest = rest.split('?').next().unwrap_or_default();
    let mut parts = rest.split(';');
    let written = parts.next().unwrap_or_default();
    let number: String = written
        .chars()
        .filter(|c| !VISUAL_SEPARATORS.contains(c))
        .collect();
    if let Some(digits) = number.strip_prefix('+') {
        if !all_digits(digits) {
            return Err(IdentityError::GlobalNumber { impu: s.to_owned() });
        }
    } else {
        let local_ok = number.bytes().any(|b| b.is_ascii_digit())
            && number
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'*' || b == b'#');
        if !local_ok {
            return Err(IdentityError::LocalNumber { impu: s.to_owned() });
        }
        // RFC 3966 asks a local number for a phone-context, but real I-CSCFs send local
        // tel URIs without one (open5gs' VoLTE capture: `tel:0198765432100`); accepted,
        // since a deployment has one numbering context. An empty one is still an error.
        let empty_context = parts.any(|p| {
            p.split_once('=').is_some_and(|(name, value)| {
                name.eq_ignore_ascii_case("phone-context") && value.is_empty()
            })
        });
        if empty_context {
            return Err(IdentityError::PhoneContext { impu: s.to_owned() });
        }
    }
    let mut key = String::with_capacity(4 + number.len());
    key.push_str("tel:");
    key.push_str(&number);
    Ok(Impu {
        key,
        scheme: ImpuScheme::Tel,
        user: Some(number),
        host: None,
    })
}
