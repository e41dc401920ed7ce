//! What the API shows of a subscriber: identities, services and registration state, and
//! whether credentials exist, but never the credentials themselves (K, OPc, OP,
//! password, HA1). Only `GET /subscribers/{imsi}?secrets=true` adds them, under
//! `secrets`, and `GET /export` (the backup) carries them.

use serde::{Deserialize, Serialize};

use crate::store::{
    AkaCredentials, AuthScheme, DigestCredentials, RegState, Service, ServiceProfile, Subscriber,
    Timestamp,
};

/// A subscriber as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberView {
    /// IMSI.
    pub imsi: String,
    /// MSISDNs.
    pub msisdns: Vec<String>,
    /// Home network domain.
    pub home_domain: String,
    /// Scheme used when the S-CSCF asks for "Unknown".
    pub default_scheme: AuthScheme,
    /// Barred.
    pub barred: bool,
    /// Visited networks allowed in UAR.
    pub allowed_visited_networks: Vec<String>,
    /// Whether IMS-AKA credentials are provisioned.
    pub aka: bool,
    /// Whether SIP Digest credentials are provisioned.
    pub digest: bool,
    /// The services, in SIC order (the plain service first).
    pub services: Vec<ServiceView>,
    /// The credentials, only with `?secrets=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Secrets>,
}

/// The credentials of a subscriber, in their store (export) form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// IMS-AKA credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aka: Option<AkaCredentials>,
    /// SIP Digest credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<DigestCredentials>,
}

/// One service as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceView {
    /// The SIC (`""` for the plain service; `plain` in URL paths).
    pub sic: String,
    /// Service name.
    pub name: String,
    /// The service's IMPI.
    pub impi: String,
    /// Its IMPUs, the default one first.
    pub impus: Vec<String>,
    /// REGISTERED if any pair of its IMPI is registered, else UNREGISTERED if any is
    /// held unregistered, else NOT_REGISTERED.
    pub state: RegState,
    /// Server-Name of the S-CSCF holding it, if any.
    pub scscf: Option<String>,
    /// State per IMPU.
    pub pairs: Vec<PairView>,
    /// The service profile.
    pub profile: ServiceProfile,
}

/// One (IMPI, IMPU) pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairView {
    /// The IMPU.
    pub impu: String,
    /// Its state for this service's IMPI.
    pub state: RegState,
    /// Server-Name of the S-CSCF holding it, if any.
    pub scscf: Option<String>,
    /// When the state last changed (Unix seconds); null if never registered.
    pub since: Option<Timestamp>,
}

impl SubscriberView {
    /// The view of `sub`, with its credentials when `secrets`.
    pub fn of(sub: &Subscriber, secrets: bool) -> Self {
        SubscriberView {
            imsi: sub.imsi.clone(),
            msisdns: sub.msisdns.clone(),
            home_domain: sub.home_domain.clone(),
            default_scheme: sub.default_scheme,
            barred: sub.barred,
            allowed_visited_networks: sub.allowed_visited_networks.clone(),
            aka: sub.aka.is_some(),
            digest: sub.digest.is_some(),
            services: sub
                .services
                .iter()
                .map(|(sic, s)| ServiceView::of(sic, s))
                .collect(),
            secrets: secrets.then(|| Secrets {
                aka: sub.aka.clone(),
                digest: sub.digest.clone(),
            }),
        }
    }

    /// The service with this SIC.
    pub fn service(&self, sic: &str) -> Option<&ServiceView> {
        self.services.iter().find(|s| s.sic == sic)
    }
}

impl ServiceView {
    /// The view of service `sic`.
    pub fn of(sic: &str, s: &Service) -> Self {
        let mut pairs: Vec<PairView> = s
            .impus
            .iter()
            .map(|impu| pair(impu, s.registrations.get(impu)))
            .collect();
        // A registration kept for an IMPU no longer listed is still state the S-CSCF has.
        for (impu, r) in &s.registrations {
            if !s.impus.contains(impu) {
                pairs.push(pair(impu, Some(r)));
            }
        }
        let held = |want: RegState| {
            pairs
                .iter()
                .find(|p| p.state == want)
                .map(|p| p.scscf.clone())
        };
        let (state, scscf) = match held(RegState::Registered) {
            Some(sc) => (RegState::Registered, sc),
            None => match held(RegState::Unregistered) {
                Some(sc) => (RegState::Unregistered, sc),
                None => (RegState::NotRegistered, None),
            },
        };
        ServiceView {
            sic: sic.to_owned(),
            name: s.name.clone(),
            impi: s.impi.clone(),
            impus: s.impus.clone(),
            state,
            scscf,
            pairs,
            profile: s.profile.clone(),
        }
    }
}

fn pair(impu: &str, r: Option<&crate::store::Registration>) -> PairView {
    PairView {
        impu: impu.to_owned(),
        state: r.map(|r| r.state).unwrap_or_default(),
        scscf: r
            .filter(|r| r.state != RegState::NotRegistered)
            .and_then(|r| r.scscf.as_ref())
            .map(|s| s.server_name.clone()),
        since: r.map(|r| r.since),
    }
}
