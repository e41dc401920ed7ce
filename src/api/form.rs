//! The provisioning forms: the JSON bodies of `POST /subscribers`, `PUT /subscribers/{imsi}`
//! and `POST /subscribers/{imsi}/services`, and how they become store records.
//!
//! A form says what an operator knows (IMSI, MSISDNs, MNC length, K/OPc, the SICs of the
//! services) and leaves the rest to be derived: the home domain (TS 23.003 §13.2), each
//! service's IMPI (`identity::derive_impi`: `<IMSI>@ims.sic<SIC>.<home>`, or the plain TS
//! 23.003 §13.3 IMPI for the plain service), its IMPUs (`sip:<MSISDN>@<home>` and
//! `tel:<MSISDN>` of the first MSISDN) and its name (from the SIC registry). Everything
//! given is normalised (`Impi::parse`, `Impu::parse`) and the resulting [`Subscriber`] is
//! validated before the store sees it, with field paths in the form's own terms (`k`,
//! `services[1].impus[0]`).
//!
//! Every form rejects unknown fields, so a misspelt field is an error naming it rather
//! than a silently ignored setting. Secrets are [`SecretHex`]/[`Password`], whose Debug
//! is redacted.

use serde::{Deserialize, Serialize};

use crate::identity::{self, HomeNetwork, Impi, ImpiKind, Impu, Imsi, Sic};
use crate::store::{
    AkaCredentials, AuthScheme, DigestCredentials, Password, SecretHex, Service, ServiceProfile,
    SicRegistry, StoreError, Subscriber, PLAIN_SIC,
};

use super::ApiError;

/// AMF used when the form gives none (TS 33.102 Annex H: separation bit set).
pub const DEFAULT_AMF: &str = "8000";
/// Name of the plain (SIC-less) service when the form gives none.
pub const PLAIN_NAME: &str = "IMS";
/// How the plain service is named in URL paths (its key is the empty string).
pub const PLAIN_PATH: &str = "plain";

/// An authentication scheme as a form names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemeName {
    /// IMS-AKA (Digest-AKAv1-MD5).
    #[serde(rename = "aka", alias = "Digest-AKAv1-MD5")]
    Aka,
    /// SIP Digest.
    #[serde(rename = "digest", alias = "SIP Digest", alias = "Digest-MD5")]
    Digest,
}

impl From<SchemeName> for AuthScheme {
    fn from(s: SchemeName) -> Self {
        match s {
            SchemeName::Aka => AuthScheme::DigestAkaV1Md5,
            SchemeName::Digest => AuthScheme::SipDigest,
        }
    }
}

/// The body of `POST /subscribers`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberForm {
    /// IMSI, 6 to 15 digits.
    pub imsi: String,
    /// MSISDNs, `+` and digits; the first one gives the default IMPUs.
    #[serde(default)]
    pub msisdns: Vec<String>,
    /// MNC length (2 or 3): the home domain is derived from the IMSI. Exclusive with
    /// `home_domain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mnc_len: Option<u8>,
    /// An explicit home domain. Exclusive with `mnc_len`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_domain: Option<String>,
    /// K, 32 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<SecretHex>,
    /// OPc, 32 hex digits (or `op`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opc: Option<SecretHex>,
    /// OP, 32 hex digits (or `opc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<SecretHex>,
    /// AMF, 4 hex digits; default [`DEFAULT_AMF`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amf: Option<String>,
    /// Initial SQN; default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqn: Option<u64>,
    /// SIP Digest password (or `ha1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    /// SIP Digest HA1, 32 hex digits (or `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1: Option<SecretHex>,
    /// Digest realm; default the home domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Scheme for "Unknown"; default `aka` when K is given, else `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_scheme: Option<SchemeName>,
    /// Barred subscriber.
    #[serde(default)]
    pub barred: bool,
    /// Visited networks allowed in UAR (empty: home only; `*`: any).
    #[serde(default)]
    pub allowed_visited_networks: Vec<String>,
    /// The services; at least one.
    #[serde(default)]
    pub services: Vec<ServiceForm>,
}

/// One service of a form, and the body of `POST /subscribers/{imsi}/services`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceForm {
    /// The SIC, 3 digits; empty, absent or `plain` for the plain TS 23.003 IMPI.
    #[serde(default)]
    pub sic: Option<String>,
    /// Service name; default the SIC registry's name (`IMS` for the plain service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The IMPI; default derived from the IMSI, home domain and SIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impi: Option<String>,
    /// The IMPUs; default `sip:<MSISDN>@<home>` and `tel:<MSISDN>` of the first MSISDN.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub impus: Vec<String>,
    /// The service profile; default empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<ServiceProfile>,
}

/// The body of `PUT /subscribers/{imsi}`: merge semantics. An absent field keeps its
/// value; a present one replaces it. Credentials merge into the existing ones: `opc`
/// replaces `op` and vice versa, `password` replaces `ha1` and vice versa; `"aka": false`
/// or `"digest": false` removes that credential set. Services and their IMPUs are not
/// changed here (use the service routes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberUpdate {
    /// New MSISDNs (replaces the list; IMPUs stay as they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msisdns: Option<Vec<String>>,
    /// Barred or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barred: Option<bool>,
    /// New list of allowed visited networks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_visited_networks: Option<Vec<String>>,
    /// New default scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_scheme: Option<SchemeName>,
    /// `false` removes the AKA credentials (`true` changes nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aka: Option<bool>,
    /// New K.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<SecretHex>,
    /// New OPc (drops OP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opc: Option<SecretHex>,
    /// New OP (drops OPc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<SecretHex>,
    /// New AMF.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amf: Option<String>,
    /// New SQN (resets the sequence; use with care).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sqn: Option<u64>,
    /// `false` removes the Digest credentials (`true` changes nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<bool>,
    /// New password (drops HA1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    /// New HA1 (drops the password).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1: Option<SecretHex>,
    /// New Digest realm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
}

/// Builds the subscriber a form describes, normalised and validated.
///
/// # Errors
/// [`ApiError::Invalid`] naming the form field at fault.
pub fn build_subscriber(form: SubscriberForm, sics: &SicRegistry) -> Result<Subscriber, ApiError> {
    let imsi = Imsi::parse(&form.imsi).map_err(|e| ApiError::identity("imsi", e))?;
    let home = match (form.mnc_len, &form.home_domain) {
        (Some(n), None) => identity::home_domain(&imsi, &HomeNetwork::MncLen(n))
            .map_err(|e| ApiError::identity("mnc_len", e))?,
        (None, Some(d)) => identity::home_domain(&imsi, &HomeNetwork::Domain(d.clone()))
            .map_err(|e| ApiError::identity("home_domain", e))?,
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "home_domain",
                "give mnc_len or home_domain, not both",
            ))
        }
        (None, None) => return Err(ApiError::Invalid {
            field: "mnc_len".into(),
            problem: "missing: the home domain is derived from the IMSI and the MNC length".into(),
            fix: Some(
                "give mnc_len (2 or 3 digits of the IMSI after the MCC) or an explicit home_domain"
                    .into(),
            ),
        }),
    };
    check_msisdns(&form.msisdns, "msisdns")?;

    let aka = match (form.k, form.opc, form.op) {
        (None, None, None) => {
            if form.amf.is_some() || form.sqn.is_some() {
                return Err(ApiError::invalid(
                    "k",
                    "missing: amf/sqn given without AKA credentials; give k and opc (or op)",
                ));
            }
            None
        }
        (None, _, _) => {
            return Err(ApiError::invalid(
                "k",
                "missing: opc/op given without k; give k (32 hex digits)",
            ))
        }
        (Some(k), opc, op) => Some(AkaCredentials {
            k,
            opc,
            op,
            amf: form.amf.unwrap_or_else(|| DEFAULT_AMF.to_owned()),
            sqn: form.sqn.unwrap_or(0),
        }),
    };
    let digest = match (form.password, form.ha1) {
        (None, None) => {
            if form.realm.is_some() {
                return Err(ApiError::invalid(
                    "password",
                    "missing: realm given without Digest credentials; give password or ha1",
                ));
            }
            None
        }
        (password, ha1) => Some(DigestCredentials {
            realm: form.realm.unwrap_or_else(|| home.clone()),
            password,
            ha1,
        }),
    };
    let default_scheme =
        match (form.default_scheme, &aka, &digest) {
            (Some(s), _, _) => s.into(),
            (None, Some(_), _) => AuthScheme::DigestAkaV1Md5,
            (None, None, Some(_)) => AuthScheme::SipDigest,
            (None, None, None) => return Err(ApiError::Invalid {
                field: "k".into(),
                problem: "missing: the subscriber has no credentials".into(),
                fix: Some(
                    "give k and opc (or op) for IMS-AKA, and/or password (or ha1) for SIP Digest"
                        .into(),
                ),
            }),
        };
    if form.services.is_empty() {
        return Err(ApiError::Invalid {
            field: "services".into(),
            problem: "must list at least one service".into(),
            fix: Some(
                r#"give "services": [{"sic": "001"}] (its IMPI and IMPUs are derived), or [{"sic": ""}] for a plain TS 23.003 IMPI"#
                    .into(),
            ),
        });
    }
    let mut sub = Subscriber {
        imsi: imsi.as_str().to_owned(),
        msisdns: form.msisdns,
        home_domain: home,
        aka,
        digest,
        default_scheme,
        barred: form.barred,
        allowed_visited_networks: form.allowed_visited_networks,
        services: Default::default(),
    };
    let mut order = Vec::new();
    for (i, sf) in form.services.into_iter().enumerate() {
        let path = format!("services[{i}]");
        let (sic, service) = build_service(&path, &sub, sf, sics)?;
        if sub.services.contains_key(&sic) {
            return Err(ApiError::invalid(
                format!("{path}.sic"),
                format!(
                    "SIC {} is listed twice; each service appears once",
                    super::sic_display(&sic)
                ),
            ));
        }
        order.push((sic.clone(), path));
        sub.services.insert(sic, service.into());
    }
    sub.validate()
        .map_err(|e| relabel(e, &order, FormKind::Subscriber))?;
    Ok(sub)
}

/// Builds one service of `sub` from a form; `path` prefixes field names in errors
/// (`services[0]`, or empty for the body of `POST …/services`). Returns its SIC key.
///
/// # Errors
/// [`ApiError::Invalid`] naming the field.
pub fn build_service(
    path: &str,
    sub: &Subscriber,
    sf: ServiceForm,
    sics: &SicRegistry,
) -> Result<(String, Service), ApiError> {
    let field = |f: &str| {
        if path.is_empty() {
            f.to_owned()
        } else {
            format!("{path}.{f}")
        }
    };
    let sic = parse_sic_key(sf.sic.as_deref().unwrap_or(PLAIN_SIC))
        .map_err(|e| ApiError::identity(field("sic"), e))?;
    let imsi = Imsi::parse(&sub.imsi).map_err(|e| ApiError::identity("imsi", e))?;
    let name = match sf.name {
        Some(n) if !n.trim().is_empty() => n,
        Some(_) => return Err(ApiError::invalid(field("name"), "must not be empty")),
        None if sic.is_empty() => PLAIN_NAME.to_owned(),
        None => match sics.name(&sic) {
            Some(n) => n.to_owned(),
            None => {
                return Err(ApiError::Invalid {
                    field: field("name"),
                    problem: format!("missing: SIC {sic} is not in the SIC registry"),
                    fix: Some(format!(
                        "give a name for SIC {sic}, or add it to [cx.sics] of the configuration"
                    )),
                })
            }
        },
    };
    let sic_typed = if sic.is_empty() {
        None
    } else {
        Some(Sic::parse(&sic).map_err(|e| ApiError::identity(field("sic"), e))?)
    };
    let impi = match sf.impi {
        Some(raw) => {
            let impi = Impi::parse(&raw).map_err(|e| ApiError::identity(field("impi"), e))?;
            if let ImpiKind::Sic {
                imsi: own,
                sic: tagged,
            } = impi.kind()
            {
                if own != &imsi {
                    return Err(ApiError::invalid(
                        field("impi"),
                        format!(
                            "{impi} carries IMSI {own}, not this subscriber's IMSI {imsi}; a SIC-tagged IMPI names its subscriber"
                        ),
                    ));
                }
                if tagged.as_str() != sic {
                    return Err(ApiError::invalid(
                        field("impi"),
                        format!(
                            "{impi} carries SIC {tagged}, but the service is SIC {}",
                            super::sic_display(&sic)
                        ),
                    ));
                }
            }
            impi
        }
        None => identity::derive_impi(
            &imsi,
            &HomeNetwork::Domain(sub.home_domain.clone()),
            sic_typed.as_ref(),
        )
        .map_err(|e| ApiError::identity(field("impi"), e))?,
    };
    let impus = if sf.impus.is_empty() {
        let Some(msisdn) = sub.msisdns.first() else {
            return Err(ApiError::Invalid {
                field: field("impus"),
                problem: "missing: the subscriber has no MSISDN to derive public identities from"
                    .into(),
                fix: Some("give impus (sip: or tel: URIs), or msisdns for the subscriber".into()),
            });
        };
        default_impus(msisdn, &sub.home_domain)
            .map_err(|e| ApiError::identity(field("impus"), e))?
    } else {
        let mut out = Vec::with_capacity(sf.impus.len());
        for (j, raw) in sf.impus.iter().enumerate() {
            let impu = Impu::parse(raw)
                .map_err(|e| ApiError::identity(field(&format!("impus[{j}]")), e))?;
            out.push(impu.as_str().to_owned());
        }
        out
    };
    Ok((
        sic,
        Service {
            name,
            impi: impi.as_str().to_owned(),
            impus,
            profile: sf.profile.unwrap_or_default(),
            registrations: Default::default(),
            auth_pending: None,
        },
    ))
}

/// `sip:<msisdn>@<home>` and `tel:<msisdn>`, normalised.
pub fn default_impus(msisdn: &str, home: &str) -> Result<Vec<String>, identity::IdentityError> {
    Ok(vec![
        Impu::parse(&format!("sip:{msisdn}@{home}"))?
            .as_str()
            .to_owned(),
        Impu::parse(&format!("tel:{msisdn}"))?.as_str().to_owned(),
    ])
}

/// The service key of a SIC as given in a form or a URL: `""` and `plain` are the plain
/// service, anything else must be 3 digits.
pub fn parse_sic_key(raw: &str) -> Result<String, identity::IdentityError> {
    let raw = raw.trim();
    if raw.is_empty() || raw.eq_ignore_ascii_case(PLAIN_PATH) {
        Ok(PLAIN_SIC.to_owned())
    } else {
        Sic::parse(raw).map(|s| s.as_str().to_owned())
    }
}

/// Applies an update form to `sub` (merge semantics, see [`SubscriberUpdate`]) and
/// validates the result; `sub` is left unchanged on error.
///
/// # Errors
/// [`ApiError::Invalid`] naming the form field.
pub fn apply_update(sub: &mut Subscriber, upd: SubscriberUpdate) -> Result<(), ApiError> {
    let mut new = sub.clone();
    if let Some(m) = upd.msisdns {
        check_msisdns(&m, "msisdns")?;
        new.msisdns = m;
    }
    if let Some(b) = upd.barred {
        new.barred = b;
    }
    if let Some(n) = upd.allowed_visited_networks {
        new.allowed_visited_networks = n;
    }
    if let Some(s) = upd.default_scheme {
        new.default_scheme = s.into();
    }
    let aka_given = upd.k.is_some()
        || upd.opc.is_some()
        || upd.op.is_some()
        || upd.amf.is_some()
        || upd.sqn.is_some();
    if upd.aka == Some(false) {
        if aka_given {
            return Err(ApiError::invalid(
                "aka",
                "false removes the AKA credentials; do not also give k, opc, op, amf or sqn",
            ));
        }
        new.aka = None;
    } else if aka_given {
        let mut aka = match new.aka.take() {
            Some(a) => a,
            None => AkaCredentials {
                k: upd.k.clone().ok_or_else(|| {
                    ApiError::invalid(
                        "k",
                        "missing: the subscriber has no AKA credentials yet; give k and opc (or op)",
                    )
                })?,
                opc: None,
                op: None,
                amf: DEFAULT_AMF.to_owned(),
                sqn: 0,
            },
        };
        if let Some(k) = upd.k {
            aka.k = k;
        }
        match (upd.opc, upd.op) {
            (Some(opc), None) => {
                aka.opc = Some(opc);
                aka.op = None;
            }
            (None, Some(op)) => {
                aka.op = Some(op);
                aka.opc = None;
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "op",
                    "give exactly one of opc and op, not both (OPc is derived from OP)",
                ))
            }
            (None, None) => {}
        }
        if let Some(amf) = upd.amf {
            aka.amf = amf;
        }
        if let Some(sqn) = upd.sqn {
            aka.sqn = sqn;
        }
        new.aka = Some(aka);
    }
    let digest_given = upd.password.is_some() || upd.ha1.is_some() || upd.realm.is_some();
    if upd.digest == Some(false) {
        if digest_given {
            return Err(ApiError::invalid(
                "digest",
                "false removes the Digest credentials; do not also give password, ha1 or realm",
            ));
        }
        new.digest = None;
    } else if digest_given {
        let mut d = new.digest.take().unwrap_or_else(|| DigestCredentials {
            realm: sub.home_domain.clone(),
            password: None,
            ha1: None,
        });
        match (upd.password, upd.ha1) {
            (Some(p), None) => {
                d.password = Some(p);
                d.ha1 = None;
            }
            (None, Some(h)) => {
                d.ha1 = Some(h);
                d.password = None;
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "ha1",
                    "give exactly one of password and ha1, not both",
                ))
            }
            (None, None) => {}
        }
        if let Some(r) = upd.realm {
            d.realm = r;
        }
        new.digest = Some(d);
    }
    new.validate()
        .map_err(|e| relabel(e, &[], FormKind::Subscriber))?;
    *sub = new;
    Ok(())
}

/// Which form a store validation error is relabelled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormKind {
    /// The subscriber forms: `aka.k` → `k`, `services.001` → `services[i]`.
    Subscriber,
    /// The body of `POST …/services`: `services.<sic>.impus[0]` → `impus[0]`.
    Service,
}

/// Turns the store's field paths into the form's (`aka.k` → `k`, `digest` → `password`,
/// `services.001.impi` → `services[0].impi` given the SIC order of the form).
pub(crate) fn relabel(e: StoreError, order: &[(String, String)], kind: FormKind) -> ApiError {
    let StoreError::Invalid { field, problem } = e else {
        return e.into();
    };
    let mut out = match field.as_str() {
        "aka" => "k".to_owned(),
        "digest" => "password".to_owned(),
        f => f
            .strip_prefix("aka.")
            .or_else(|| f.strip_prefix("digest."))
            .unwrap_or(f)
            .to_owned(),
    };
    for (sic, path) in order {
        let store_path = if sic.is_empty() {
            "services.\"\"".to_owned()
        } else {
            format!("services.{sic}")
        };
        if let Some(rest) = out.strip_prefix(&store_path) {
            if rest.is_empty() || rest.starts_with('.') {
                out = match kind {
                    FormKind::Subscriber => format!("{path}{rest}"),
                    FormKind::Service => rest.trim_start_matches('.').to_owned(),
                };
                break;
            }
        }
    }
    ApiError::from(StoreError::Invalid {
        field: out,
        problem,
    })
}

/// Each MSISDN must be `+` and 1 to 15 digits (E.164).
fn check_msisdns(msisdns: &[String], field: &str) -> Result<(), ApiError> {
    for (i, m) in msisdns.iter().enumerate() {
        let digits = m.strip_prefix('+').unwrap_or("");
        if !(1..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::invalid(
                format!("{field}[{i}]"),
                format!(
                    "must be + followed by 1 to 15 digits (E.164, e.g. +8618612345678), got {m:?}"
                ),
            ));
        }
    }
    Ok(())
}
