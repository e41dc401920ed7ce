//! Domain types of the subscriber store: the IMS subscription, its services keyed by SIC,
//! and the registration state of each (IMPI, IMPU) pair (TS 29.228 §6.1, §6.5; cx-spec §4.0).
//!
//! These are plain serde types: the JSON-lines export format is their serde form, and every
//! backend stores them as it likes. Identities are kept as normalised strings (the Cx layer
//! normalises with `identity::Impi`/`Impu` before it looks anything up).
//!
//! Must not depend on: sled, tokio, the codec or the Cx layer.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch.
pub type Timestamp = u64;

/// Current time as a [`Timestamp`].
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A value shared between copies of a record until one of them changes it
/// (copy-on-write): cloning is a reference count, and the first mutable access of a
/// copy (through `DerefMut`) copies the value if another copy still shares it.
///
/// Every Cx update works on a copy of the subscriber (the stored one stays as it was until
/// the write succeeds); with services and S-CSCF assignments shared, that copy does not
/// duplicate the services the request leaves alone. Serde, `Debug` and equality see the
/// value, as if it were a `T`.
#[derive(Clone, PartialEq, Eq)]
pub struct Shared<T>(std::sync::Arc<T>);

impl<T> Shared<T> {
    /// Shares `value`.
    pub fn new(value: T) -> Self {
        Shared(std::sync::Arc::new(value))
    }

    /// Whether `a` and `b` are the same shared value (not merely equal ones).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        std::sync::Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T> From<T> for Shared<T> {
    fn from(value: T) -> Self {
        Shared::new(value)
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Shared<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Shared::new)
    }
}

/// A 16-octet secret (K, OP, OPc) in hex. Debug and the log never show it; serde does,
/// since export/import must carry it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHex(pub String);

impl fmt::Debug for SecretHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A password; never printed by Debug.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Password(pub String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// IMS-AKA credentials of the USIM/ISIM (TS 33.102 §6.3, TS 35.206).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AkaCredentials {
    /// K, 32 hex digits.
    pub k: SecretHex,
    /// OPc, 32 hex digits (either this or `op`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opc: Option<SecretHex>,
    /// OP, 32 hex digits (OPc is then computed from K and OP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<SecretHex>,
    /// AMF, 4 hex digits (e.g. "8000").
    pub amf: String,
    /// SQN_HE: the last sequence number handed out (48 bits). Shared by all services of
    /// the subscriber, since they share one USIM and K.
    pub sqn: u64,
}

/// SIP Digest credentials (RFC 2617; TS 29.228 SIP Digest scheme).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestCredentials {
    /// Digest realm (usually the home domain).
    pub realm: String,
    /// The password, from which HA1 is computed per IMPI; either this or `ha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Password>,
    /// A pre-computed HA1 (lower-case hex), valid for one IMPI only: used when the
    /// subscription has a single IMPI or when the operator provisions HA1 per service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1: Option<SecretHex>,
}

/// Authentication schemes a subscriber may use (TS 29.229 §6.3.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthScheme {
    /// "Digest-AKAv1-MD5" (IMS-AKA, RFC 3310).
    #[serde(rename = "Digest-AKAv1-MD5")]
    DigestAkaV1Md5,
    /// "SIP Digest" (TS 29.228), also requested by Kamailio as "Digest-MD5".
    #[serde(rename = "SIP Digest")]
    SipDigest,
}

impl AuthScheme {
    /// The SIP-Authentication-Scheme string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DigestAkaV1Md5 => "Digest-AKAv1-MD5",
            Self::SipDigest => "SIP Digest",
        }
    }
}

/// Registration state of one (IMPI, IMPU) pair (TS 29.228 §6.1; FHoSS IMPU_user_state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RegState {
    /// No S-CSCF holds this pair.
    #[default]
    NotRegistered,
    /// Registered by the UE through this IMPI.
    Registered,
    /// An S-CSCF holds the profile for unregistered services (SAR UNREGISTERED_USER, or a
    /// *_STORE_SERVER_NAME de-registration).
    Unregistered,
}

impl RegState {
    /// The state as written in the record and shown by the admin CLI (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotRegistered => "NOT_REGISTERED",
            Self::Registered => "REGISTERED",
            Self::Unregistered => "UNREGISTERED",
        }
    }
}

/// The S-CSCF serving an identity: its SIP Server-Name plus the Diameter host to route
/// RTR/PPR to (cx-spec §2.1: keep both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScscfAssignment {
    /// SIP URI from Server-Name, returned in UAA/LIA.
    pub server_name: String,
    /// Diameter Origin-Host of the S-CSCF's SAR/MAR (Destination-Host of RTR/PPR).
    pub origin_host: String,
    /// Diameter Origin-Realm of the S-CSCF.
    pub origin_realm: String,
}

/// State of one (IMPI, IMPU) pair of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Registration {
    /// Registration state.
    pub state: RegState,
    /// The S-CSCF holding the pair (REGISTERED/UNREGISTERED), kept as the last one otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scscf: Option<Shared<ScscfAssignment>>,
    /// When the state last changed.
    pub since: Timestamp,
}

/// An Application Server of an initial filter criterion (TS 29.228 Annex B).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationServer {
    /// SIP URI of the AS.
    pub server_name: String,
    /// 0 SESSION_CONTINUED, 1 SESSION_TERMINATED.
    #[serde(default)]
    pub default_handling: u8,
    /// Optional service info passed to the AS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_info: Option<String>,
}

/// One Service Point Trigger (TS 29.228 Annex B.2.2); exactly one condition field is set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Spt {
    /// ConditionNegated.
    #[serde(default)]
    pub negated: bool,
    /// Group number(s): SPTs sharing a group form one term.
    #[serde(default)]
    pub group: Vec<u32>,
    /// RequestURI condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri: Option<String>,
    /// Method condition, e.g. "INVITE".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// SIPHeader condition: (header, optional content regexp).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sip_header: Option<(String, Option<String>)>,
    /// SessionCase: 0 ORIGINATING, 1 TERMINATING_REGISTERED, 2 TERMINATING_UNREGISTERED,
    /// 3 ORIGINATING_UNREGISTERED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_case: Option<u8>,
    /// SessionDescription condition: (line, optional content).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_description: Option<(String, Option<String>)>,
}

/// A trigger point: CNF or DNF over SPTs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TriggerPoint {
    /// ConditionTypeCNF (true = CNF, false = DNF).
    #[serde(default)]
    pub cnf: bool,
    /// The SPTs.
    pub spts: Vec<Spt>,
}

/// An initial filter criterion (TS 29.228 Annex B.2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitialFilterCriteria {
    /// Priority (lower first).
    pub priority: u32,
    /// Trigger point; absent = unconditional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerPoint>,
    /// The application server.
    pub application_server: ApplicationServer,
    /// ProfilePartIndicator: 0 REGISTERED, 1 UNREGISTERED; absent = both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_part_indicator: Option<u8>,
}

/// The service profile of one service: what the S-CSCF receives in User-Data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServiceProfile {
    /// Initial filter criteria.
    #[serde(default)]
    pub ifcs: Vec<InitialFilterCriteria>,
    /// SubscribedMediaProfileId in CoreNetworkServicesAuthorization, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_profile_id: Option<u32>,
    /// IMPUs of this service that are barred (BarringIndication = 1).
    #[serde(default)]
    pub barred_impus: Vec<String>,
}

/// One IMS service of a subscriber, keyed by its SIC (the plain IMPI of a legacy
/// subscriber is the service with key [`PLAIN_SIC`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Service name, e.g. "VoLTE".
    pub name: String,
    /// The service's private identity (normalised).
    pub impi: String,
    /// Public identities (normalised sip:/tel: keys); may be shared with sibling services.
    /// The first one is the default public identity.
    pub impus: Vec<String>,
    /// The service profile.
    #[serde(default)]
    pub profile: ServiceProfile,
    /// Registration state per IMPU of this service's IMPI; an IMPU absent here is
    /// NOT_REGISTERED.
    #[serde(default)]
    pub registrations: BTreeMap<String, Registration>,
    /// Authentication pending (set by MAR, cleared by SAR), with the S-CSCF that asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_pending: Option<Shared<ScscfAssignment>>,
}

/// Key of the service that holds a plain (SIC-less) IMPI.
pub const PLAIN_SIC: &str = "";

/// An IMS subscription (TS 29.228 §6.1; IMSU in FHoSS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscriber {
    /// IMSI; the subscriber's key.
    pub imsi: String,
    /// MSISDNs (E.164 with +).
    #[serde(default)]
    pub msisdns: Vec<String>,
    /// Home network domain, e.g. ims.mnc001.mcc460.3gppnetwork.org.
    pub home_domain: String,
    /// IMS-AKA credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aka: Option<AkaCredentials>,
    /// SIP Digest credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestCredentials>,
    /// Scheme used when the S-CSCF asks for "Unknown".
    pub default_scheme: AuthScheme,
    /// Barred: UAR answers 5003 AUTHORIZATION_REJECTED.
    #[serde(default)]
    pub barred: bool,
    /// Visited networks allowed in UAR; empty means the home network only, `*` any.
    #[serde(default)]
    pub allowed_visited_networks: Vec<String>,
    /// Services keyed by SIC ("001", "002", …; [`PLAIN_SIC`] for a plain IMPI).
    pub services: BTreeMap<String, Shared<Service>>,
}

impl Subscriber {
    /// The service whose IMPI is `impi` (exact, normalised), with its SIC.
    pub fn service_by_impi(&self, impi: &str) -> Option<(&str, &Service)> {
        self.services
            .iter()
            .find(|(_, s)| s.impi == impi)
            .map(|(k, s)| (k.as_str(), &**s))
    }

    /// Mutable access to the service whose IMPI is `impi`.
    pub fn service_by_impi_mut(&mut self, impi: &str) -> Option<(&str, &mut Service)> {
        self.services
            .iter_mut()
            .find(|(_, s)| s.impi == impi)
            .map(|(k, s)| (k.as_str(), &mut **s))
    }

    /// Whether any service lists `impu`.
    pub fn has_impu(&self, impu: &str) -> bool {
        self.services
            .values()
            .any(|s| s.impus.iter().any(|i| i == impu))
    }

    /// The IMPU's state across all IMPIs: REGISTERED while any IMPI holds it registered,
    /// else UNREGISTERED if any holds it unregistered, else NOT_REGISTERED (cx-spec §4.0).
    pub fn impu_state(&self, impu: &str) -> RegState {
        let mut st = RegState::NotRegistered;
        for s in self.services.values() {
            if let Some(r) = s.registrations.get(impu) {
                match r.state {
                    RegState::Registered => return RegState::Registered,
                    RegState::Unregistered => st = RegState::Unregistered,
                    RegState::NotRegistered => {}
                }
            }
        }
        st
    }

    /// The S-CSCF assigned to the subscription: held by any REGISTERED or UNREGISTERED pair.
    pub fn assigned_scscf(&self) -> Option<&ScscfAssignment> {
        let held = |want: RegState| {
            self.services.values().find_map(|s| {
                s.registrations
                    .values()
                    .find(|r| r.state == want)
                    .and_then(|r| r.scscf.as_deref())
            })
        };
        held(RegState::Registered).or_else(|| held(RegState::Unregistered))
    }

    /// Every IMPI of the subscription, in SIC order.
    pub fn impis(&self) -> impl Iterator<Item = &str> {
        self.services.values().map(|s| s.impi.as_str())
    }
}

/// The Service Identification Codes an operator has assigned, SIC → service name
/// (e.g. "001" → "VoLTE"). Pure data: configuration fills it, the Cx layer and the
/// provisioning interface consult it. Serialises as a plain map (`{"001": "VoLTE", …}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SicRegistry {
    entries: BTreeMap<String, String>,
}

impl Default for SicRegistry {
    /// The two codes of the reference deployment: "001" VoLTE and "002" RCS.
    fn default() -> Self {
        let mut entries = BTreeMap::new();
        entries.insert("001".to_owned(), "VoLTE".to_owned());
        entries.insert("002".to_owned(), "RCS".to_owned());
        Self { entries }
    }
}

impl SicRegistry {
    /// A registry with no codes at all.
    pub fn empty() -> Self {
        Self {
            entries: BTreeMap::new(),
        }
    }

    /// The service name registered for `sic`, if any.
    pub fn name(&self, sic: &str) -> Option<&str> {
        self.entries.get(sic).map(String::as_str)
    }

    /// Registers (or renames) `sic` as `name`; returns the previous name.
    pub fn insert(&mut self, sic: impl Into<String>, name: impl Into<String>) -> Option<String> {
        self.entries.insert(sic.into(), name.into())
    }

    /// Every (SIC, name) pair, in SIC order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of registered codes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no code is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Test records of the store's unit tests.
#[cfg(test)]
impl Subscriber {
    /// A subscriber of `imsi` in network 001/01 with nothing optional set and no services.
    pub(crate) fn bare(imsi: &str) -> Subscriber {
        Subscriber {
            imsi: imsi.into(),
            msisdns: vec![],
            home_domain: "ims.mnc001.mcc001.3gppnetwork.org".into(),
            aka: None,
            digest: None,
            default_scheme: AuthScheme::DigestAkaV1Md5,
            barred: false,
            allowed_visited_networks: vec![],
            services: Default::default(),
        }
    }
}

#[cfg(test)]
mod sic_registry_tests {
    use super::*;

    #[test]
    fn default_has_volte_and_rcs() {
        let r = SicRegistry::default();
        assert_eq!(r.name("001"), Some("VoLTE"));
        assert_eq!(r.name("002"), Some("RCS"));
        assert_eq!(r.name("003"), None);
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn serialises_as_a_plain_map_and_inserts() {
        let mut r: SicRegistry = serde_json::from_str(r#"{"007":"Video"}"#).unwrap();
        assert_eq!(r.name("007"), Some("Video"));
        assert_eq!(r.insert("008", "MCPTT"), None);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![("007", "Video"), ("008", "MCPTT")]
        );
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"007":"Video","008":"MCPTT"}"#
        );
    }
}
