//! The Diameter dictionary: AVP and command definitions loaded from data files.
//!
//! The built-in files under `dictionaries/` (RFC 6733 base, TS 29.229 Cx, RFC 4740 Digest,
//! vendor AVPs seen from real peers) are compiled into the binary with `include_str!`; an
//! operator can add more files at run time with [`Dictionary::load_str`].
//!
//! The dictionary drives three things in the codec: the data type used to decode an AVP's
//! value, the display names in `sichss decode`, and the M-bit rule (an unknown AVP with the
//! M bit set is answered with 5001 DIAMETER_AVP_UNSUPPORTED, RFC 6733 §4.1).
//!
//! Must not depend on: tokio, sled, the network or the store.

mod load;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use crate::FastMap;
use std::sync::OnceLock;

pub use load::DictError;

/// RFC 6733 §4.2–§4.3 data formats (Float32/Float64 are not used by Cx and decode as raw).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AvpType {
    /// RFC 6733 §4.2 OctetString.
    OctetString,
    /// RFC 6733 §4.3.1 UTF8String.
    Utf8String,
    /// RFC 6733 §4.3.1 DiameterIdentity (FQDN, ASCII).
    DiameterIdentity,
    /// RFC 6733 §4.3.1 DiameterURI.
    DiameterUri,
    /// RFC 6733 §4.2 Integer32.
    Integer32,
    /// RFC 6733 §4.2 Integer64.
    Integer64,
    /// RFC 6733 §4.2 Unsigned32.
    Unsigned32,
    /// RFC 6733 §4.2 Unsigned64.
    Unsigned64,
    /// RFC 6733 §4.3.1 Enumerated (Integer32 on the wire).
    Enumerated,
    /// RFC 6733 §4.3.1 Address (2-octet family then the address).
    Address,
    /// RFC 6733 §4.3.1 Time (NTP seconds, 4 octets).
    Time,
    /// RFC 6733 §4.4 Grouped.
    Grouped,
}

impl AvpType {
    /// Parses the type names used in the dictionary files (`"UTF8String"`, `"Grouped"`, …).
    pub fn from_name(s: &str) -> Option<Self> {
        Some(match s {
            "OctetString" => Self::OctetString,
            "UTF8String" => Self::Utf8String,
            "DiameterIdentity" => Self::DiameterIdentity,
            "DiameterURI" => Self::DiameterUri,
            "Integer32" => Self::Integer32,
            "Integer64" => Self::Integer64,
            "Unsigned32" => Self::Unsigned32,
            "Unsigned64" => Self::Unsigned64,
            "Enumerated" => Self::Enumerated,
            "Address" => Self::Address,
            "Time" => Self::Time,
            "Grouped" => Self::Grouped,
            _ => return None,
        })
    }

    /// The smallest valid value length in octets, used for zero-filled Failed-AVP examples
    /// (RFC 6733 §7.5).
    pub fn min_len(self) -> usize {
        match self {
            Self::Integer32 | Self::Unsigned32 | Self::Enumerated | Self::Time => 4,
            Self::Integer64 | Self::Unsigned64 => 8,
            Self::Address => 6,
            _ => 0,
        }
    }
}

/// How the M bit of an AVP must be set (RFC 6733 §4.5 flag rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagRule {
    /// The bit must be set.
    Must,
    /// The bit may be set or clear.
    May,
    /// The bit must be clear.
    MustNot,
}

/// One AVP definition, identified by (code, vendor).
#[derive(Debug, Clone, PartialEq)]
pub struct AvpDef {
    /// AVP code.
    pub code: u32,
    /// Vendor-Id; 0 for IETF AVPs (V bit clear).
    pub vendor: u32,
    /// Name as printed, e.g. `"Public-Identity"`.
    pub name: String,
    /// Data type.
    pub ty: AvpType,
    /// M-bit rule.
    pub m: FlagRule,
    /// Enumerated values (value → name), empty for other types.
    pub enums: Vec<(i32, String)>,
    /// For Grouped AVPs: the member grammar.
    pub members: Vec<Rule>,
}

impl AvpDef {
    /// Name of an enumerated value, if defined.
    pub fn enum_name(&self, v: i32) -> Option<&str> {
        self.enums
            .iter()
            .find(|(n, _)| *n == v)
            .map(|(_, s)| s.as_str())
    }
}

/// One line of a command or grouped-AVP grammar (RFC 6733 §3.2 CCF).
///
/// ```text
/// < Session-Id >        fixed, min 1 max 1
/// { Origin-Host }       required, min 1 max 1
/// [ Destination-Host ]  optional, min 0 max 1
/// *[ Public-Identity ]  optional, any number
/// 1*{ Host-IP-Address } required, at least one
/// *[ AVP ]              any other AVP is allowed
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// AVP name (as in the dictionary), or `"AVP"` for the wildcard.
    pub name: String,
    /// (code, vendor) resolved at load time; `None` for the `AVP` wildcard.
    pub key: Option<(u32, u32)>,
    /// Minimum occurrences.
    pub min: u32,
    /// Maximum occurrences; `None` = unbounded.
    pub max: Option<u32>,
    /// `< … >`: must be the first AVP (only Session-Id in practice).
    pub fixed: bool,
}

/// A command definition (request and answer grammars).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandDef {
    /// Command code.
    pub code: u32,
    /// Application-Id the command belongs to (0 for base).
    pub application: u32,
    /// Long name, e.g. `"User-Authorization"`.
    pub name: String,
    /// Request abbreviation, e.g. `"UAR"`.
    pub request_abbrev: String,
    /// Answer abbreviation, e.g. `"UAA"`.
    pub answer_abbrev: String,
    /// Whether the P bit is set on this command (`PXY`).
    pub proxiable: bool,
    /// Request grammar.
    pub request: Vec<Rule>,
    /// Answer grammar.
    pub answer: Vec<Rule>,
}

/// Diameter dictionary: AVPs by (code, vendor) and by name, commands by (code, application).
#[derive(Debug, Clone, Default)]
pub struct Dictionary {
    avps: FastMap<(u32, u32), AvpDef>,
    by_name: HashMap<String, (u32, u32)>,
    commands: FastMap<(u32, u32), CommandDef>,
    applications: HashMap<u32, String>,
    vendors: HashMap<u32, String>,
    /// Result-Code and Experimental-Result-Code names: (vendor, code) → name (vendor 0 = base).
    results: HashMap<(u32, u32), String>,
}

/// The built-in dictionary files, in load order.
pub const BUILTIN_FILES: &[(&str, &str)] = &[
    ("base.toml", include_str!("../../dictionaries/base.toml")),
    (
        "digest.toml",
        include_str!("../../dictionaries/digest.toml"),
    ),
    ("cx.toml", include_str!("../../dictionaries/cx.toml")),
    (
        "vendor.toml",
        include_str!("../../dictionaries/vendor.toml"),
    ),
];

impl Dictionary {
    /// The dictionary compiled into the binary, built once.
    ///
    /// # Panics
    /// If a built-in file is invalid; the `builtin_dictionary_loads` test guards this.
    pub fn builtin() -> &'static Dictionary {
        static DICT: OnceLock<Dictionary> = OnceLock::new();
        DICT.get_or_init(|| {
            let mut d = Dictionary::default();
            for (name, text) in BUILTIN_FILES {
                if let Err(e) = d.load_str(text) {
                    panic!("built-in dictionary {name} is invalid: {e}");
                }
            }
            d
        })
    }

    /// A copy of the built-in dictionary, to extend with operator files.
    pub fn with_builtin() -> Dictionary {
        Self::builtin().clone()
    }

    /// Looks an AVP up by (code, vendor).
    pub fn avp(&self, code: u32, vendor: u32) -> Option<&AvpDef> {
        self.avps.get(&(code, vendor))
    }

    /// Looks an AVP up by name.
    pub fn avp_by_name(&self, name: &str) -> Option<&AvpDef> {
        self.by_name.get(name).and_then(|k| self.avps.get(k))
    }

    /// Looks a command up by (code, application). Base commands (CER, DWR, DPR) are found
    /// for any application id.
    pub fn command(&self, code: u32, application: u32) -> Option<&CommandDef> {
        self.commands
            .get(&(code, application))
            .or_else(|| self.commands.get(&(code, 0)))
    }

    /// Name of an application id.
    pub fn application_name(&self, id: u32) -> Option<&str> {
        self.applications.get(&id).map(String::as_str)
    }

    /// Name of a vendor id.
    pub fn vendor_name(&self, id: u32) -> Option<&str> {
        self.vendors.get(&id).map(String::as_str)
    }

    /// Name of a result code: `vendor` 0 for Result-Code, 10415 for 3GPP Experimental-Result-Code.
    pub fn result_name(&self, vendor: u32, code: u32) -> Option<&str> {
        self.results.get(&(vendor, code)).map(String::as_str)
    }

    /// Number of AVP definitions.
    pub fn avp_count(&self) -> usize {
        self.avps.len()
    }

    /// All AVP definitions (unordered).
    pub fn avps(&self) -> impl Iterator<Item = &AvpDef> {
        self.avps.values()
    }

    /// All command definitions (unordered).
    pub fn commands(&self) -> impl Iterator<Item = &CommandDef> {
        self.commands.values()
    }
}
