//! Parsing of dictionary files (TOML) into [`Dictionary`].
//!
//! ```toml
//! [[vendor]]
//! id = 10415
//! name = "3GPP"
//!
//! [[application]]
//! id = 16777216
//! name = "3GPP Cx"
//!
//! [[result]]              # vendor 0: Result-Code; 10415: Experimental-Result-Code
//! vendor = 10415
//! code = 2001
//! name = "DIAMETER_FIRST_REGISTRATION"
//!
//! [[avp]]
//! name = "Server-Assignment-Type"
//! code = 614
//! vendor = 10415          # default 0
//! type = "Enumerated"
//! m = "must"              # must | may | must-not
//! enum = { NO_ASSIGNMENT = 0, REGISTRATION = 1 }
//!
//! [[avp]]
//! name = "Experimental-Result"
//! code = 297
//! type = "Grouped"
//! m = "must"
//! members = ["{ Vendor-Id }", "{ Experimental-Result-Code }"]
//!
//! [[command]]
//! name = "User-Authorization"
//! code = 300
//! application = 16777216
//! request_abbrev = "UAR"
//! answer_abbrev = "UAA"
//! proxiable = true
//! request = ["< Session-Id >", "{ Origin-Host }", "*[ AVP ]"]
//! answer = ["< Session-Id >", "{ Origin-Host }", "*[ AVP ]"]
//! ```
//!
//! Grammar lines follow RFC 6733 §3.2: `<x>` fixed, `{x}` required, `[x]` optional, with an
//! optional `min*max` qualifier before the bracket.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{AvpDef, AvpType, CommandDef, Dictionary, FlagRule, Rule};

/// Why a dictionary file was refused. Names the entry and the field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DictError {
    /// Not valid TOML, or a field of the wrong shape.
    #[error("dictionary file is not valid: {0}")]
    Syntax(#[from] toml::de::Error),
    /// `type = "…"` names no RFC 6733 data format.
    #[error("AVP {name}: unknown type {ty:?} (expected one of OctetString, UTF8String, DiameterIdentity, DiameterURI, Integer32, Integer64, Unsigned32, Unsigned64, Enumerated, Address, Time, Grouped)")]
    UnknownType {
        /// AVP name.
        name: String,
        /// The type as written.
        ty: String,
    },
    /// `m = "…"` is not must, may or must-not.
    #[error("AVP {name}: m = {m:?} must be \"must\", \"may\" or \"must-not\"")]
    BadFlagRule {
        /// AVP name.
        name: String,
        /// The rule as written.
        m: String,
    },
    /// A grammar line could not be parsed.
    #[error("{owner}: grammar line {line:?} is not of the form <X>, {{X}}, [X] or min*max{{X}}")]
    BadRule {
        /// Command or AVP that holds the line.
        owner: String,
        /// The line as written.
        line: String,
    },
    /// A grammar line names an AVP that no loaded file defines.
    #[error("{owner}: grammar names AVP {name:?}, which no dictionary defines (define it first, or load its file earlier)")]
    UnknownAvpInRule {
        /// Command or AVP that holds the line.
        owner: String,
        /// The AVP name.
        name: String,
    },
    /// Members on a non-Grouped AVP, or an enum on a non-Enumerated one.
    #[error("AVP {name}: {what}")]
    Inconsistent {
        /// AVP name.
        name: String,
        /// What is wrong.
        what: &'static str,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    vendor: Vec<VendorEntry>,
    #[serde(default)]
    application: Vec<AppEntry>,
    #[serde(default)]
    result: Vec<ResultEntry>,
    #[serde(default)]
    avp: Vec<AvpEntry>,
    #[serde(default)]
    command: Vec<CommandEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorEntry {
    id: u32,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEntry {
    id: u32,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultEntry {
    #[serde(default)]
    vendor: u32,
    code: u32,
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AvpEntry {
    name: String,
    code: u32,
    #[serde(default)]
    vendor: u32,
    #[serde(rename = "type")]
    ty: String,
    m: String,
    #[serde(default, rename = "enum")]
    enums: BTreeMap<String, i32>,
    #[serde(default)]
    members: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandEntry {
    name: String,
    code: u32,
    #[serde(default)]
    application: u32,
    request_abbrev: String,
    answer_abbrev: String,
    #[serde(default)]
    proxiable: bool,
    request: Vec<String>,
    answer: Vec<String>,
}

/// Parses one grammar line such as `"1*{ Host-IP-Address }"`.
pub(crate) fn parse_rule(owner: &str, line: &str) -> Result<Rule, DictError> {
    let bad = || DictError::BadRule {
        owner: owner.to_string(),
        line: line.to_string(),
    };
    let s = line.trim();
    let open = s.find(['<', '{', '[']).ok_or_else(bad)?;
    let (qual, rest) = s.split_at(open);
    let (close, fixed, required) = match rest.as_bytes()[0] {
        b'<' => ('>', true, true),
        b'{' => ('}', false, true),
        _ => (']', false, false),
    };
    let inner = rest[1..].strip_suffix(close).ok_or_else(bad)?.trim();
    if inner.is_empty() || inner.contains([' ', '<', '{', '[']) {
        return Err(bad());
    }
    let (mut min, mut max) = if required { (1, Some(1)) } else { (0, Some(1)) };
    let qual = qual.trim();
    if !qual.is_empty() {
        let (lo, hi) = qual.split_once('*').ok_or_else(bad)?;
        min = if lo.is_empty() {
            if required {
                1
            } else {
                0
            }
        } else {
            lo.parse().map_err(|_| bad())?
        };
        max = if hi.is_empty() {
            None
        } else {
            Some(hi.parse().map_err(|_| bad())?)
        };
    }
    Ok(Rule {
        name: inner.to_string(),
        key: None,
        min,
        max,
        fixed,
    })
}

impl Dictionary {
    /// Adds the definitions of one dictionary file. Later definitions of the same
    /// (code, vendor) replace earlier ones, so an operator file can correct a built-in entry.
    ///
    /// # Errors
    /// [`DictError`] naming the entry and field at fault; the dictionary is left unchanged.
    pub fn load_str(&mut self, text: &str) -> Result<(), DictError> {
        let file: File = toml::from_str(text)?;
        let mut next = self.clone();
        for v in file.vendor {
            next.vendors.insert(v.id, v.name);
        }
        for a in file.application {
            next.applications.insert(a.id, a.name);
        }
        for r in file.result {
            next.results.insert((r.vendor, r.code), r.name);
        }
        for a in file.avp {
            let ty = AvpType::from_name(&a.ty).ok_or_else(|| DictError::UnknownType {
                name: a.name.clone(),
                ty: a.ty.clone(),
            })?;
            let m = match a.m.as_str() {
                "must" => FlagRule::Must,
                "may" => FlagRule::May,
                "must-not" => FlagRule::MustNot,
                _ => {
                    return Err(DictError::BadFlagRule {
                        name: a.name,
                        m: a.m,
                    })
                }
            };
            if !a.members.is_empty() && ty != AvpType::Grouped {
                return Err(DictError::Inconsistent {
                    name: a.name,
                    what: "members are only allowed on a Grouped AVP",
                });
            }
            if !a.enums.is_empty() && ty != AvpType::Enumerated {
                return Err(DictError::Inconsistent {
                    name: a.name,
                    what: "enum values are only allowed on an Enumerated AVP",
                });
            }
            let members = a
                .members
                .iter()
                .map(|l| parse_rule(&a.name, l))
                .collect::<Result<Vec<_>, _>>()?;
            let mut enums: Vec<(i32, String)> = a.enums.into_iter().map(|(k, v)| (v, k)).collect();
            enums.sort();
            let key = (a.code, a.vendor);
            if let Some(old) = next.avps.get(&key) {
                next.by_name.remove(&old.name);
            }
            next.by_name.insert(a.name.clone(), key);
            next.avps.insert(
                key,
                AvpDef {
                    code: a.code,
                    vendor: a.vendor,
                    name: a.name,
                    ty,
                    m,
                    enums,
                    members,
                },
            );
        }
        for c in file.command {
            let request = c
                .request
                .iter()
                .map(|l| parse_rule(&c.name, l))
                .collect::<Result<Vec<_>, _>>()?;
            let answer = c
                .answer
                .iter()
                .map(|l| parse_rule(&c.name, l))
                .collect::<Result<Vec<_>, _>>()?;
            next.commands.insert(
                (c.code, c.application),
                CommandDef {
                    code: c.code,
                    application: c.application,
                    name: c.name,
                    request_abbrev: c.request_abbrev,
                    answer_abbrev: c.answer_abbrev,
                    proxiable: c.proxiable,
                    request,
                    answer,
                },
            );
        }
        next.resolve_rules()?;
        *self = next;
        Ok(())
    }

    fn resolve_rules(&mut self) -> Result<(), DictError> {
        let by_name = self.by_name.clone();
        let resolve = |owner: &str, rules: &mut Vec<Rule>| -> Result<(), DictError> {
            for r in rules.iter_mut() {
                if r.name == "AVP" {
                    r.key = None;
                    continue;
                }
                r.key = Some(
                    *by_name
                        .get(&r.name)
                        .ok_or_else(|| DictError::UnknownAvpInRule {
                            owner: owner.to_string(),
                            name: r.name.clone(),
                        })?,
                );
            }
            Ok(())
        };
        for def in self.avps.values_mut() {
            let owner = def.name.clone();
            resolve(&owner, &mut def.members)?;
        }
        for cmd in self.commands.values_mut() {
            let owner = cmd.name.clone();
            resolve(&owner, &mut cmd.request)?;
            resolve(&owner, &mut cmd.answer)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grammar_lines() {
        let cases = [
            ("< Session-Id >", 1, Some(1), true),
            ("{ Origin-Host }", 1, Some(1), false),
            ("[ Destination-Host ]", 0, Some(1), false),
            ("*[ Public-Identity ]", 0, None, false),
            ("1*{ Host-IP-Address }", 1, None, false),
            ("*{ Host-IP-Address }", 1, None, false),
            ("0*2[ Route-Record ]", 0, Some(2), false),
        ];
        for (line, min, max, fixed) in cases {
            let r = parse_rule("t", line).unwrap();
            assert_eq!((r.min, r.max, r.fixed), (min, max, fixed), "{line}");
        }
    }

    #[test]
    fn rejects_malformed_grammar_lines() {
        for line in ["Session-Id", "{ Origin-Host", "x*{ A }", "{ }", "{ A B }"] {
            assert!(parse_rule("t", line).is_err(), "{line}");
        }
    }
}
