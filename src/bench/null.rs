//! The null application: the ceiling the HSS is measured against. It answers every Cx
//! request with a fixed, correct-looking answer touching no store: Session-Id echoed,
//! Vendor-Specific-Application-Id, Auth-Session-State, Origin-Host, Origin-Realm, the
//! result the bench expects, and the AVPs each answer grammar asks for, sized like the
//! HSS's own (TS 29.229 §6.1):
//!
//! | request | answer |
//! |---|---|
//! | UAR (REGISTRATION) | Experimental-Result 2001 DIAMETER_FIRST_REGISTRATION, Server-Capabilities |
//! | UAR (DE_REGISTRATION) | Result-Code 2001, Server-Name |
//! | MAR | Result-Code 2001, User-Name, Public-Identity, one fixed Digest-AKAv1-MD5 vector |
//! | SAR | Result-Code 2001, User-Name; User-Data (a fixed profile) when User-Data-Already-Available is 0 and the type registers |
//! | LIR | Result-Code 2001, Server-Name |
//! | other | Result-Code 5012 DIAMETER_UNABLE_TO_COMPLY |
//!
//! Served on the same peer layer as the HSS (`crate::server`), so the difference between
//! the two is the Cx application and the store.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::watch;

use crate::codec::{codes, Avp, CommandCode, ExperimentalResultCode, Message, ResultCode};
use crate::store::{Service, ServiceProfile};

use crate::dict::Dictionary;
use crate::peer::LocalIdentity;
use crate::server::{Peers, Server, ServerConfig};

use super::flows::SCSCF_NAME;
use super::report::{CommandStats, ErrorCount, COMMANDS, SCHEMA};
use super::{BenchArgs, BenchError, Report};

/// A fixed Cx answerer.
#[derive(Debug)]
pub struct NullApp {
    origin_host: String,
    origin_realm: String,
    /// The IMSSubscription document of a two-IMPU service, built once.
    user_data: Vec<u8>,
    /// One AKA vector's SIP-Auth-Data-Item, built once.
    auth_item: Avp,
    /// Requests answered, per command (UAR, MAR, SAR, LIR, other).
    answered: [AtomicU64; 5],
}

impl NullApp {
    /// A null application answering as `origin_host` in `origin_realm`.
    pub fn new(origin_host: &str, origin_realm: &str) -> Self {
        let service = Service {
            name: "VoLTE".into(),
            impi: "001010000000000@ims.sic001.mnc001.mcc001.3gppnetwork.org".into(),
            impus: vec![
                "sip:+99010000000000@ims.mnc001.mcc001.3gppnetwork.org".into(),
                "tel:+99010000000000".into(),
            ],
            profile: ServiceProfile::default(),
            registrations: Default::default(),
            auth_pending: None,
        };
        let user_data =
            crate::cx::user_data::subscription_xml(&service.impi, &service, None).into_bytes();
        let auth_item = Avp::grouped(
            codes::SIP_AUTH_DATA_ITEM,
            vec![
                Avp::u32(codes::SIP_ITEM_NUMBER, 1),
                Avp::utf8(codes::SIP_AUTHENTICATION_SCHEME, "Digest-AKAv1-MD5"),
                Avp::octets(codes::SIP_AUTHENTICATE, vec![0x5a; 32]),
                Avp::octets(codes::SIP_AUTHORIZATION, vec![0xa5; 8]),
                Avp::octets(codes::CONFIDENTIALITY_KEY, vec![0x3c; 16]),
                Avp::octets(codes::INTEGRITY_KEY, vec![0xc3; 16]),
            ],
        );
        NullApp {
            origin_host: origin_host.to_owned(),
            origin_realm: origin_realm.to_owned(),
            user_data,
            auth_item,
            answered: Default::default(),
        }
    }

    /// Requests answered so far, per command: UAR, MAR, SAR, LIR, other.
    pub fn answered(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.answered[i].load(Ordering::Relaxed))
    }

    fn count(&self, i: usize) {
        self.answered[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The answer to `req`.
    pub fn answer(&self, req: &Message) -> Message {
        let mut a = Message::answer_to(req);
        a.push(crate::cx::vsai());
        let body: Vec<Avp>;
        match req.header.command {
            CommandCode::USER_AUTHORIZATION => {
                self.count(0);
                if req.u32(codes::USER_AUTHORIZATION_TYPE) == Some(1) {
                    a.set_result(ResultCode::DIAMETER_SUCCESS);
                    body = vec![Avp::utf8(codes::SERVER_NAME, SCSCF_NAME)];
                } else {
                    a.set_experimental(ExperimentalResultCode::DIAMETER_FIRST_REGISTRATION);
                    body = vec![Avp::grouped(
                        codes::SERVER_CAPABILITIES,
                        vec![Avp::utf8(codes::SERVER_NAME, SCSCF_NAME)],
                    )];
                }
            }
            CommandCode::MULTIMEDIA_AUTH => {
                self.count(1);
                a.set_result(ResultCode::DIAMETER_SUCCESS);
                let mut b = Vec::with_capacity(4);
                if let Some(u) = req.find(codes::USER_NAME) {
                    b.push(u.clone());
                }
                if let Some(p) = req.find(codes::PUBLIC_IDENTITY) {
                    b.push(p.clone());
                }
                b.push(Avp::u32(codes::SIP_NUMBER_AUTH_ITEMS, 1));
                b.push(self.auth_item.clone());
                body = b;
            }
            CommandCode::SERVER_ASSIGNMENT => {
                self.count(2);
                a.set_result(ResultCode::DIAMETER_SUCCESS);
                let mut b = Vec::with_capacity(2);
                if let Some(u) = req.find(codes::USER_NAME) {
                    b.push(u.clone());
                }
                let sat = req.u32(codes::SERVER_ASSIGNMENT_TYPE).unwrap_or(0);
                let udaa = req.u32(codes::USER_DATA_ALREADY_AVAILABLE).unwrap_or(0);
                if udaa == 0 && matches!(sat, 1..=3) {
                    b.push(Avp::octets(codes::USER_DATA, self.user_data.clone()));
                }
                body = b;
            }
            CommandCode::LOCATION_INFO => {
                self.count(3);
                a.set_result(ResultCode::DIAMETER_SUCCESS);
                body = vec![Avp::utf8(codes::SERVER_NAME, SCSCF_NAME)];
            }
            _ => {
                self.count(4);
                a.set_result(ResultCode::DIAMETER_UNABLE_TO_COMPLY);
                body = Vec::new();
            }
        }
        a.push(Avp::enumerated(codes::AUTH_SESSION_STATE, 1));
        a.push(Avp::identity(codes::ORIGIN_HOST, &self.origin_host));
        a.push(Avp::identity(codes::ORIGIN_REALM, &self.origin_realm));
        a.avps.extend(body);
        a.finish_answer(req);
        a
    }
}

impl crate::app::Application for NullApp {
    fn application_ids(&self) -> &[u32] {
        &[crate::cx::CX_APPLICATION_ID]
    }

    async fn handle(&self, req: Message, _peer: &crate::app::PeerInfo) -> Message {
        self.answer(&req)
    }
}

/// Origin-Host of the null server: `null.<realm>`.
pub fn origin_host(realm: &str) -> String {
    format!("null.{realm}")
}

/// A running null server: the Diameter server of `crate::server` (the HSS's peer layer,
/// with its default settings: loopback peers, 256 requests in flight per connection)
/// around a [`NullApp`].
pub struct NullServer {
    addrs: Vec<SocketAddr>,
    app: Arc<NullApp>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl NullServer {
    /// Binds `addr` (port 0 picks one) and starts serving, as `null.<realm>` in `realm`.
    ///
    /// # Errors
    /// [`BenchError::NullServer`] when `addr` cannot be bound.
    pub async fn start(addr: SocketAddr, realm: &str) -> Result<NullServer, BenchError> {
        let host = origin_host(realm);
        let app = Arc::new(NullApp::new(&host, realm));
        let mut cfg = ServerConfig::new(LocalIdentity::new(&host, realm));
        cfg.listen = vec![addr];
        let server = Server::bind(
            cfg,
            Arc::clone(&app),
            Arc::new(Dictionary::with_builtin()),
            Peers::new(),
        )
        .await
        .map_err(|source| BenchError::NullServer { addr, source })?;
        let addrs = server.local_addrs();
        let (stop, mut rx) = watch::channel(false);
        let task = tokio::spawn(server.serve(async move {
            let _ = rx.wait_for(|v| *v).await;
        }));
        Ok(NullServer {
            addrs,
            app,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// The application (its counters).
    pub fn app(&self) -> &NullApp {
        &self.app
    }

    /// Stops: DPR to every connected peer, requests in flight finished.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// `sichss bench --null-server ADDR`: serves the null application on `addr` until
/// `--duration` elapses or Ctrl-C, printing `sichss null server listening diameter=ADDR`
/// on stdout once bound; then reports what it answered (no latencies: those are the
/// client's to measure).
///
/// # Errors
/// [`BenchError::NullServer`] when `addr` cannot be bound.
pub async fn serve(addr: SocketAddr, args: &BenchArgs) -> Result<Report, BenchError> {
    let server = NullServer::start(addr, &args.realm).await?;
    let bound = server.local_addr();
    println!("sichss null server listening diameter={bound}");
    let started = Instant::now();
    match args.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    let elapsed = started.elapsed();
    let answered = server.app().answered();
    server.stop().await;
    let secs = elapsed.as_secs_f64();
    let per_s = |n: u64| {
        if secs > 0.0 {
            (n as f64 / secs * 10.0).round() / 10.0
        } else {
            0.0
        }
    };
    let mut report = Report {
        schema: SCHEMA,
        mode: "null-server",
        target: bound.to_string(),
        duration_s: args.duration.map_or(0.0, |d| d.as_secs_f64()),
        elapsed_s: (secs * 1000.0).round() / 1000.0,
        ..Report::default()
    };
    for (i, name) in COMMANDS.iter().enumerate() {
        report.commands.insert(
            (*name).to_owned(),
            CommandStats {
                count: answered[i],
                per_s: per_s(answered[i]),
                ..CommandStats::default()
            },
        );
    }
    report.requests = answered.iter().sum();
    report.requests_per_s = per_s(report.requests);
    if answered[4] > 0 {
        report.errors_total = answered[4];
        report.errors.push(ErrorCount {
            command: "other".into(),
            result: "rc 5012".into(),
            count: answered[4],
        });
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::super::flows::{check, Expect, Population, Requests};
    use super::*;

    #[test]
    fn answers_every_bench_step_as_the_bench_expects_and_obeys_the_grammar() {
        let dict = crate::dict::Dictionary::builtin();
        let app = NullApp::new("null.test", "test");
        let id = Population::new("001010000000000", 1)
            .unwrap()
            .identities(0)
            .unwrap();
        let r = Requests::new("bench-0.test", "test", 0);
        let steps = [
            (r.uar(&id, 0, false), Expect::UaaRegistration),
            (r.mar(&id, 0), Expect::Maa),
            (r.sar_registration(&id, 0), Expect::SaaWithProfile),
            (r.sar_reregistration(&id, 0), Expect::Saa),
            (r.lir(&id.sip), Expect::Lia),
            (r.uar(&id, 0, true), Expect::UaaDeregistration),
            (r.sar_deregistration(&id, 0), Expect::Saa),
        ];
        for (req, expect) in steps {
            let a = app.answer(&req);
            let a = crate::codec::decode_message(&a.encode(), dict).unwrap();
            crate::codec::validate(&a, dict)
                .unwrap_or_else(|e| panic!("{:?}: {e}", req.header.command));
            assert_eq!(a.session_id(), req.session_id());
            assert_eq!(check(expect, &a), Ok(()), "{:?}", req.header.command);
        }
        assert_eq!(app.answered(), [2, 1, 3, 1, 0]);
    }
}
