//! The synthetic population and the Cx flows the load generator drives: requests built by
//! [`crate::cx::requests`], as Kamailio's I-CSCF and S-CSCF send them, and the answer
//! each step must get (TS 29.228 §6.1, §6.3; TS 29.229 §6.1).
//!
//! | step | request | expected answer |
//! |---|---|---|
//! | I-CSCF registration check | UAR (User-Authorization-Type absent = REGISTRATION) | Experimental-Result 2001 or 2002 |
//! | S-CSCF authentication | MAR (Digest-AKAv1-MD5, 1 item) | Result-Code 2001 with a SIP-Auth-Data-Item carrying SIP-Authenticate |
//! | S-CSCF registration | SAR REGISTRATION (User-Data-Already-Available 0) | Result-Code 2001 with User-Data |
//! | S-CSCF refresh | SAR RE_REGISTRATION (User-Data-Already-Available 1) | Result-Code 2001 |
//! | I-CSCF terminating lookup | LIR (the sip: or tel: IMPU, alternately) | Result-Code 2001 with Server-Name |
//! | I-CSCF de-registration check | UAR User-Authorization-Type DE_REGISTRATION | Result-Code 2001 |
//! | S-CSCF de-registration | SAR USER_DEREGISTRATION | Result-Code 2001 |
//!
//! Must not depend on: the server, the store backends (requests and answers only).

use crate::codec::{codes, Message};
use crate::cx::requests::CscfRequests;
use crate::identity::{derive_impi, home_domain, HomeNetwork, Imsi, Sic};

use super::BenchError;

/// Server-Name every S-CSCF of the bench sends (one S-CSCF for the whole population, so
/// no SAR is refused with IDENTITY_ALREADY_REGISTERED).
pub const SCSCF_NAME: &str = "sip:scscf.bench.invalid:6060";

/// SICs of the two services of every synthetic subscriber.
pub const SICS: [&str; 2] = ["001", "002"];

/// User-Authorization-Type DE_REGISTRATION (TS 29.229 §6.3.24).
const UAT_DE_REGISTRATION: u32 = 1;
/// Server-Assignment-Type values (TS 29.229 §6.3.15).
const SAT_REGISTRATION: i32 = 1;
const SAT_RE_REGISTRATION: i32 = 2;
const SAT_USER_DEREGISTRATION: i32 = 5;

/// The IMSIs, MSISDNs and identities of the synthetic population: subscriber `i` has
/// IMSI `base + i` (same number of digits), MSISDN `+99` followed by the IMSI without
/// its MCC (country code 99x is spare in E.164, so it never names a real line), and two
/// services, SIC 001 and 002, with IMPIs derived from the IMSI (MNC of 2 digits) sharing
/// the IMPUs `sip:<MSISDN>@<home domain>` and `tel:<MSISDN>`.
#[derive(Debug, Clone)]
pub struct Population {
    base: u64,
    width: usize,
    count: u64,
}

impl Population {
    /// The population of `count` subscribers from `imsi_base`.
    ///
    /// # Errors
    /// [`BenchError::Invalid`] when the base is not an IMSI of 6 to 15 digits or the last
    /// IMSI would need more digits.
    pub fn new(imsi_base: &str, count: u64) -> Result<Self, BenchError> {
        let invalid = |problem: String| BenchError::Invalid {
            setting: "--imsi-base",
            problem,
        };
        if !(6..=15).contains(&imsi_base.len()) || !imsi_base.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!(
                "{imsi_base:?} is not an IMSI of 6 to 15 digits"
            )));
        }
        let base: u64 = imsi_base
            .parse()
            .map_err(|e| invalid(format!("{imsi_base:?}: {e}")))?;
        let width = imsi_base.len();
        let last = base.saturating_add(count.saturating_sub(1));
        if count > 0 && last.to_string().len() > width {
            return Err(invalid(format!(
                "{count} subscribers from {imsi_base} run past {width} digits"
            )));
        }
        Ok(Population { base, width, count })
    }

    /// Number of subscribers.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the population is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// IMSI of subscriber `i`.
    pub fn imsi(&self, i: u64) -> String {
        format!("{:0width$}", self.base + i, width = self.width)
    }

    /// The identities of subscriber `i`.
    ///
    /// # Errors
    /// [`BenchError::Invalid`] when the IMSI does not derive an IMPI (e.g. a bad MCC).
    pub fn identities(&self, i: u64) -> Result<Identities, BenchError> {
        let imsi_s = self.imsi(i);
        let bad = |e: crate::identity::IdentityError| BenchError::Invalid {
            setting: "--imsi-base",
            problem: format!("IMSI {imsi_s}: {e}"),
        };
        let imsi = Imsi::parse(&imsi_s).map_err(bad)?;
        let net = HomeNetwork::MncLen(2);
        let home = home_domain(&imsi, &net).map_err(bad)?;
        let mut impis = Vec::with_capacity(SICS.len());
        for sic in SICS {
            let sic = Sic::parse(sic).map_err(bad)?;
            impis.push(
                derive_impi(&imsi, &net, Some(&sic))
                    .map_err(bad)?
                    .as_str()
                    .to_owned(),
            );
        }
        let msisdn = format!("+99{}", &imsi_s[3..]);
        Ok(Identities {
            sip: format!("sip:{msisdn}@{home}"),
            tel: format!("tel:{msisdn}"),
            imsi: imsi_s,
            msisdn,
            home,
            impis,
        })
    }
}

/// The identities of one synthetic subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identities {
    /// IMSI.
    pub imsi: String,
    /// MSISDN (E.164 with `+`).
    pub msisdn: String,
    /// Home network domain (TS 23.003 §13.2).
    pub home: String,
    /// IMPI of each service, in the order of [`SICS`].
    pub impis: Vec<String>,
    /// The shared SIP IMPU.
    pub sip: String,
    /// The shared tel IMPU.
    pub tel: String,
}

/// Builds requests as one bench connection's I-CSCF/S-CSCF sends them: the messages of
/// [`CscfRequests`] for a member of the population, from its home network, with
/// [`SCSCF_NAME`] as Server-Name.
#[derive(Debug)]
pub struct Requests {
    cscf: CscfRequests,
}

impl Requests {
    /// A builder for `origin_host` in `realm`; `lane` keeps Session-Ids unique.
    pub fn new(origin_host: &str, realm: &str, lane: usize) -> Self {
        Requests {
            cscf: CscfRequests::with_session_high(origin_host, realm, lane as u64),
        }
    }

    /// UAR (TS 29.229 §6.1.1); User-Authorization-Type only when not REGISTRATION.
    pub fn uar(&self, id: &Identities, service: usize, deregistration: bool) -> Message {
        let uat = if deregistration {
            UAT_DE_REGISTRATION
        } else {
            0
        };
        self.cscf
            .uar_visited(&id.impis[service], &id.sip, uat, &id.home)
    }

    /// MAR for one Digest-AKAv1-MD5 vector (TS 29.229 §6.1.7).
    pub fn mar(&self, id: &Identities, service: usize) -> Message {
        self.cscf.mar(
            &id.impis[service],
            &id.sip,
            SCSCF_NAME,
            "Digest-AKAv1-MD5",
            1,
            None,
        )
    }

    /// SAR (TS 29.229 §6.1.3) with this Server-Assignment-Type.
    fn sar(&self, id: &Identities, service: usize, sat: i32, udaa: i32) -> Message {
        self.cscf
            .sar(Some(&id.impis[service]), &[&id.sip], SCSCF_NAME, sat, udaa)
    }

    /// SAR REGISTRATION asking for the profile.
    pub fn sar_registration(&self, id: &Identities, service: usize) -> Message {
        self.sar(id, service, SAT_REGISTRATION, 0)
    }

    /// SAR RE_REGISTRATION with the profile already at the S-CSCF.
    pub fn sar_reregistration(&self, id: &Identities, service: usize) -> Message {
        self.sar(id, service, SAT_RE_REGISTRATION, 1)
    }

    /// SAR USER_DEREGISTRATION.
    pub fn sar_deregistration(&self, id: &Identities, service: usize) -> Message {
        self.sar(id, service, SAT_USER_DEREGISTRATION, 0)
    }

    /// LIR for `impu` (TS 29.229 §6.1.5).
    pub fn lir(&self, impu: &str) -> Message {
        self.cscf.lir(impu)
    }
}

/// Which answer a step expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// UAA for a registration: Experimental-Result 2001 or 2002.
    UaaRegistration,
    /// UAA for a de-registration: Result-Code 2001.
    UaaDeregistration,
    /// MAA: Result-Code 2001 and an item with SIP-Authenticate.
    Maa,
    /// SAA with the profile: Result-Code 2001 and User-Data.
    SaaWithProfile,
    /// SAA: Result-Code 2001.
    Saa,
    /// LIA: Result-Code 2001 and Server-Name.
    Lia,
}

/// Checks an answer against what the step expects; `Err` names what came instead, as
/// the report shows it (`rc 5012`, `exp 5001`, `rc 2001 without User-Data`, `no result`).
pub fn check(expect: Expect, a: &Message) -> Result<(), String> {
    let rc = a.result_code().map(|r| r.0);
    let exp = a.experimental_result().map(|e| e.0);
    let got = || match (rc, exp) {
        (Some(r), _) => format!("rc {r}"),
        (None, Some(e)) => format!("exp {e}"),
        (None, None) => "no result".to_owned(),
    };
    let missing = |what: &str| Err(format!("{} without {what}", got()));
    match expect {
        Expect::UaaRegistration => match (rc, exp) {
            (None, Some(2001 | 2002)) => Ok(()),
            _ => Err(got()),
        },
        Expect::UaaDeregistration | Expect::Saa => match rc {
            Some(2001) => Ok(()),
            _ => Err(got()),
        },
        Expect::Maa => match rc {
            Some(2001) => {
                let has_vector = a
                    .find(codes::SIP_AUTH_DATA_ITEM)
                    .and_then(|i| i.find(codes::SIP_AUTHENTICATE))
                    .is_some();
                if has_vector {
                    Ok(())
                } else {
                    missing("an authentication vector")
                }
            }
            _ => Err(got()),
        },
        Expect::SaaWithProfile => match rc {
            Some(2001) if a.find(codes::USER_DATA).is_some() => Ok(()),
            Some(2001) => missing("User-Data"),
            _ => Err(got()),
        },
        Expect::Lia => match rc {
            Some(2001) if a.find(codes::SERVER_NAME).is_some() => Ok(()),
            Some(2001) => missing("Server-Name"),
            _ => Err(got()),
        },
    }
}

/// What a lane does next with one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// UAR → MAR → SAR REGISTRATION.
    Register,
    /// SAR RE_REGISTRATION.
    Refresh,
    /// LIR on the service's IMPU.
    Locate,
    /// UAR DE_REGISTRATION → SAR USER_DEREGISTRATION.
    Deregister,
}

/// A small, fast, seeded generator (xorshift64*): the mix is reproducible per lane.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed` (0 is mapped to a fixed non-zero state).
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    /// A number in 0..100.
    pub fn percent(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32 % 100
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ApplicationId, CommandCode, ExperimentalResultCode, ResultCode};

    #[test]
    fn derives_identities_like_the_demo_subscriber() {
        let p = Population::new("460011100612345", 2).unwrap();
        let id = p.identities(0).unwrap();
        assert_eq!(id.imsi, "460011100612345");
        assert_eq!(id.impis[0], crate::demo::impi_a("001"));
        assert_eq!(id.impis[1], crate::demo::impi_a("002"));
        assert_eq!(id.home, crate::demo::HOME_DOMAIN);
        assert_eq!(id.msisdn, "+99011100612345");
        assert_eq!(p.identities(1).unwrap().imsi, "460011100612346");
    }

    #[test]
    fn keeps_leading_zeros_of_the_imsi_base() {
        let p = Population::new("001010000000000", 10).unwrap();
        assert_eq!(p.imsi(9), "001010000000009");
        let id = p.identities(9).unwrap();
        assert_eq!(
            id.impis[0],
            "001010000000009@ims.sic001.mnc001.mcc001.3gppnetwork.org"
        );
        assert_eq!(
            id.sip,
            "sip:+99010000000009@ims.mnc001.mcc001.3gppnetwork.org"
        );
    }

    #[test]
    fn refuses_a_population_that_overflows_the_imsi() {
        assert!(Population::new("999999999999999", 2).is_err());
        assert!(Population::new("12345", 1).is_err());
        assert!(Population::new("00101x000000000", 1).is_err());
    }

    #[test]
    fn requests_obey_the_cx_grammar() {
        let dict = crate::dict::Dictionary::builtin();
        let id = Population::new("001010000000000", 1)
            .unwrap()
            .identities(0)
            .unwrap();
        let r = Requests::new("bench-0.example", "example", 0);
        for m in [
            r.uar(&id, 0, false),
            r.uar(&id, 1, true),
            r.mar(&id, 0),
            r.sar_registration(&id, 0),
            r.sar_reregistration(&id, 1),
            r.sar_deregistration(&id, 0),
            r.lir(&id.tel),
        ] {
            let m = crate::codec::decode_message(&m.encode(), dict).unwrap();
            crate::codec::validate(&m, dict)
                .unwrap_or_else(|e| panic!("{:?}: {e}", m.header.command));
        }
    }

    #[test]
    fn check_names_the_result_that_came_instead() {
        let req = Message::request(
            CommandCode::SERVER_ASSIGNMENT,
            ApplicationId::CX,
            true,
            1,
            1,
        );
        let mut a = Message::answer_to(&req);
        a.set_experimental(ExperimentalResultCode::DIAMETER_ERROR_USER_UNKNOWN);
        assert_eq!(check(Expect::Saa, &a), Err("exp 5001".into()));
        let mut a = Message::answer_to(&req);
        a.set_result(ResultCode::DIAMETER_SUCCESS);
        assert_eq!(check(Expect::Saa, &a), Ok(()));
        assert_eq!(
            check(Expect::SaaWithProfile, &a),
            Err("rc 2001 without User-Data".into())
        );
        assert_eq!(check(Expect::UaaRegistration, &a), Err("rc 2001".into()));
        let a = Message::answer_to(&req);
        assert_eq!(check(Expect::Lia, &a), Err("no result".into()));
    }

    #[test]
    fn rng_percent_stays_below_100_and_spreads() {
        let mut r = Rng::new(7);
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            let p = r.percent();
            assert!(p < 100);
            buckets[(p / 10) as usize] += 1;
        }
        assert!(buckets.iter().all(|b| *b > 800), "{buckets:?}");
    }
}
