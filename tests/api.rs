//! Provisioning API tests: the API on 127.0.0.1:0 over a temporary sled store, driven
//! through the admin client (blocking ureq) as the CLI drives it, with a fake S-CSCF that
//! answers RTR/PPR with 2001 (or never answers) and records what it received.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use sichss::admin::{self, AdminCommand, AdminError, AdminGlobal, Client, SubscriberCommand};
use sichss::api::form::{ServiceForm, SubscriberForm, SubscriberUpdate};
use sichss::api::{self, ApiState, HssRequests, Metrics};
use sichss::codec::{codes, CommandCode, Message, ResultCode};
use sichss::cx::{CxApp, CxConfig};
use sichss::demo;
use sichss::store::sled::SledStore;
use sichss::store::{
    now, Password, RegState, Registration, ScscfAssignment, SecretHex, ServiceProfile,
    SubscriberStore,
};

const SCSCF_NAME: &str = "sip:scscf.ims.mnc001.mcc460.3gppnetwork.org:6060";
const SCSCF_HOST: &str = "scscf.ims.mnc001.mcc460.3gppnetwork.org";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answer every request with Result-Code 2001.
    Accept,
    /// Never answer (the server's timeout reports an error).
    Timeout,
}

/// A fake peer table: records each request and answers as `mode` says.
struct FakeScscf {
    mode: Mode,
    received: Mutex<Vec<(String, Message)>>,
}

impl HssRequests for FakeScscf {
    fn send<'a>(
        &'a self,
        origin_host: &'a str,
        req: Message,
    ) -> Pin<Box<dyn Future<Output = Result<Message, String>> + Send + 'a>> {
        Box::pin(async move {
            self.received
                .lock()
                .unwrap()
                .push((origin_host.to_owned(), req.clone()));
            match self.mode {
                Mode::Accept => {
                    let mut a = Message::answer_to(&req);
                    a.set_result(ResultCode(2001));
                    Ok(a)
                }
                Mode::Timeout => Err(format!("no answer from {origin_host} within 5000 ms")),
            }
        })
    }
}

/// A running API with its store and fake S-CSCF. Dropping it stops the server.
struct Server {
    rt: tokio::runtime::Runtime,
    store: Arc<SledStore>,
    fake: Arc<FakeScscf>,
    api: String,
    client: Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn start(token: Option<&str>, mode: Mode) -> Server {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = Arc::new(SledStore::open_temporary().unwrap());
    let fake = Arc::new(FakeScscf {
        mode,
        received: Mutex::new(Vec::new()),
    });
    let cx = CxApp::new(store.clone(), CxConfig::default());
    let state = ApiState::new(
        cx,
        fake.clone(),
        Arc::new(Metrics::new()),
        token.map(str::to_owned),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(api::serve(listener, state, async {
        let _ = stopped.await;
    }));
    Server {
        client: Client::new(&api, token),
        rt,
        store,
        fake,
        api,
        _stop: stop,
    }
}

impl Server {
    fn received(&self) -> Vec<(String, Message)> {
        self.fake.received.lock().unwrap().clone()
    }

    fn sub(&self, imsi: &str) -> sichss::store::Subscriber {
        self.rt
            .block_on(self.store.get(imsi))
            .unwrap()
            .expect("subscriber exists")
    }

    /// Marks every IMPU of service `sic` REGISTERED at the fake S-CSCF, as a SAR would.
    fn register(&self, imsi: &str, sic: &str) {
        let sic = sic.to_owned();
        self.rt
            .block_on(self.store.update(imsi, move |s| {
                let svc = s.services.get_mut(&sic).unwrap();
                for impu in svc.impus.clone() {
                    svc.registrations.insert(
                        impu,
                        Registration {
                            state: RegState::Registered,
                            scscf: Some(
                                ScscfAssignment {
                                    server_name: SCSCF_NAME.into(),
                                    origin_host: SCSCF_HOST.into(),
                                    origin_realm: demo::HOME_DOMAIN.into(),
                                }
                                .into(),
                            ),
                            since: now(),
                        },
                    );
                }
            }))
            .unwrap();
    }

    fn global(&self) -> AdminGlobal {
        AdminGlobal {
            api: self.api.clone(),
            token: None,
            ca_cert: None,
        }
    }

    /// Runs an admin command and returns what it printed.
    fn cli(&self, cmd: AdminCommand) -> Result<String, AdminError> {
        let mut out = Vec::new();
        admin::run_with(&self.global(), cmd, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }
}

/// The provisioning form of the patent's subscriber A (VoLTE 001, RCS 002).
fn form_a() -> SubscriberForm {
    SubscriberForm {
        imsi: demo::IMSI_A.into(),
        msisdns: vec![demo::MSISDN_A.into()],
        mnc_len: Some(2),
        k: Some(SecretHex(demo::K.into())),
        opc: Some(SecretHex(demo::OPC.into())),
        password: Some(Password(demo::PASSWORD.into())),
        services: vec![sic("001"), sic("002")],
        ..SubscriberForm::default()
    }
}

fn sic(s: &str) -> ServiceForm {
    ServiceForm {
        sic: Some(s.into()),
        ..ServiceForm::default()
    }
}

/// The API's error body of a failed call.
fn api_err(e: AdminError) -> (u16, api::ErrorBody) {
    match e {
        AdminError::Api { status, body } => (status, *body),
        other => panic!("expected an API error, got {other}"),
    }
}

fn reason_code(m: &Message) -> (i32, Option<String>) {
    let dr = m
        .find(codes::DEREGISTRATION_REASON)
        .expect("Deregistration-Reason");
    (
        dr.find(codes::REASON_CODE)
            .and_then(|a| a.as_i32())
            .unwrap(),
        dr.find(codes::REASON_INFO)
            .and_then(|a| a.as_str())
            .map(str::to_owned),
    )
}

fn impus_of(m: &Message) -> BTreeSet<String> {
    m.find_all(codes::PUBLIC_IDENTITY)
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_form_derives_the_patents_subscriber() {
    let s = start(None, Mode::Accept);
    let view = s.client.create_subscriber(&form_a()).unwrap();
    assert_eq!(s.sub(demo::IMSI_A), demo::subscriber_a());
    assert_eq!(view.home_domain, demo::HOME_DOMAIN);
    let names: Vec<_> = view
        .services
        .iter()
        .map(|v| (v.sic.as_str(), v.name.as_str(), v.impi.clone()))
        .collect();
    assert_eq!(
        names,
        vec![
            ("001", "VoLTE", demo::impi_a("001")),
            ("002", "RCS", demo::impi_a("002"))
        ]
    );
    assert!(view.aka && view.digest);
}

#[test]
fn a_plain_service_gets_the_ts23003_impi() {
    let s = start(None, Mode::Accept);
    let mut form = form_a();
    form.imsi = demo::IMSI_B.into();
    form.msisdns = vec![demo::MSISDN_B.into()];
    form.services = vec![ServiceForm::default()];
    s.client.create_subscriber(&form).unwrap();
    assert_eq!(s.sub(demo::IMSI_B), demo::subscriber_b());
    let svc = s.client.services(demo::IMSI_B).unwrap();
    assert_eq!(svc[0].sic, "");
    assert_eq!(svc[0].impi, demo::impi_b());
}

#[test]
fn creates_reads_updates_lists_and_deletes() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    let (status, body) = api_err(s.client.create_subscriber(&form_a()).unwrap_err());
    assert_eq!(status, 409);
    assert_eq!(body.field.as_deref(), Some("imsi"));

    let v = s.client.subscriber(demo::IMSI_A).unwrap();
    assert_eq!(v.services.len(), 2);
    assert!(v
        .services
        .iter()
        .all(|x| x.state == RegState::NotRegistered && x.scscf.is_none()));
    assert_eq!(v.services[0].impus, demo::impus(demo::MSISDN_A));

    let upd = SubscriberUpdate {
        barred: Some(true),
        msisdns: Some(vec!["+8618612345679".into()]),
        ..SubscriberUpdate::default()
    };
    let v = s.client.update_subscriber(demo::IMSI_A, &upd).unwrap();
    assert!(v.barred);
    assert_eq!(v.msisdns, vec!["+8618612345679"]);
    // IMPUs are the services', not changed by a new MSISDN.
    assert_eq!(v.services[0].impus, demo::impus(demo::MSISDN_A));
    let stored = s.sub(demo::IMSI_A);
    assert_eq!(
        stored.aka,
        demo::subscriber_a().aka,
        "credentials untouched"
    );

    let mut form = form_a();
    form.imsi = demo::IMSI_B.into();
    form.msisdns = vec![demo::MSISDN_B.into()];
    s.client.create_subscriber(&form).unwrap();
    let all = s.client.list_all().unwrap();
    assert_eq!(
        all.iter().map(|v| v.imsi.as_str()).collect::<Vec<_>>(),
        vec![demo::IMSI_B, demo::IMSI_A]
    );
    let page = s.client.list_page(None, 1).unwrap();
    assert_eq!(page.subscribers.len(), 1);
    assert_eq!(page.next.as_deref(), Some(demo::IMSI_B));
    let page = s.client.list_page(Some(demo::IMSI_B), 1).unwrap();
    assert_eq!(page.subscribers[0].imsi, demo::IMSI_A);

    let removed = s.client.remove_subscriber(demo::IMSI_A).unwrap();
    assert!(removed.removed);
    assert!(removed.rtr.is_empty(), "nothing registered, no RTR");
    assert!(s.received().is_empty());
    let (status, body) = api_err(s.client.subscriber(demo::IMSI_A).unwrap_err());
    assert_eq!(status, 404);
    assert!(body.error.contains(demo::IMSI_A), "{}", body.error);
    let (status, _) = api_err(s.client.remove_subscriber(demo::IMSI_A).unwrap_err());
    assert_eq!(status, 404);
}

#[test]
fn update_merges_credentials() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    let op = "00112233445566778899aabbccddeeff";
    let upd = SubscriberUpdate {
        op: Some(SecretHex(op.into())),
        ..SubscriberUpdate::default()
    };
    s.client.update_subscriber(demo::IMSI_A, &upd).unwrap();
    let aka = s.sub(demo::IMSI_A).aka.unwrap();
    assert_eq!(aka.op, Some(SecretHex(op.into())));
    assert_eq!(aka.opc, None, "op replaces opc");
    assert_eq!(aka.k.0, demo::K, "k kept");

    // Removing AKA while it is the default scheme is refused, naming the field.
    let upd = SubscriberUpdate {
        aka: Some(false),
        ..SubscriberUpdate::default()
    };
    let (status, body) = api_err(s.client.update_subscriber(demo::IMSI_A, &upd).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(body.field.as_deref(), Some("k"), "{body:?}");
    let upd = SubscriberUpdate {
        aka: Some(false),
        default_scheme: Some(sichss::api::form::SchemeName::Digest),
        ..SubscriberUpdate::default()
    };
    let v = s.client.update_subscriber(demo::IMSI_A, &upd).unwrap();
    assert!(!v.aka && v.digest);
}

#[test]
fn subscribing_a_sic_adds_exactly_that_service() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    s.register(demo::IMSI_A, "001");
    let before = s.sub(demo::IMSI_A);
    let v = s
        .client
        .subscribe(
            demo::IMSI_A,
            &ServiceForm {
                sic: Some("003".into()),
                name: Some("Video".into()),
                ..ServiceForm::default()
            },
        )
        .unwrap();
    assert_eq!(
        v.impi,
        "460011100612345@ims.sic003.mnc001.mcc460.3gppnetwork.org"
    );
    assert_eq!(v.impus, demo::impus(demo::MSISDN_A));
    assert_eq!(v.state, RegState::NotRegistered);
    let after = s.sub(demo::IMSI_A);
    assert_eq!(after.services.len(), 3);
    for sic in ["001", "002"] {
        assert_eq!(
            serde_json::to_vec(&before.services[sic]).unwrap(),
            serde_json::to_vec(&after.services[sic]).unwrap(),
            "sibling {sic} changed"
        );
    }
    let mut rest = after.clone();
    rest.services.remove("003");
    assert_eq!(rest, before, "nothing else changed");
    assert!(s.received().is_empty());

    // The same SIC again: 409.
    let (status, body) = api_err(s.client.subscribe(demo::IMSI_A, &sic("003")).unwrap_err());
    assert_eq!(status, 409);
    assert_eq!(body.field.as_deref(), Some("sic"));
    // A SIC the registry does not know needs a name.
    let (status, body) = api_err(s.client.subscribe(demo::IMSI_A, &sic("007")).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(body.field.as_deref(), Some("name"));
    assert!(body.error.contains("SIC 007"), "{}", body.error);
}

#[test]
fn subscribing_another_subscribers_impi_is_refused() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    let mut form = form_a();
    form.imsi = demo::IMSI_B.into();
    form.msisdns = vec![demo::MSISDN_B.into()];
    form.services = vec![ServiceForm::default()];
    s.client.create_subscriber(&form).unwrap();
    // B's plain IMPI offered as a service of A.
    let (status, body) = api_err(
        s.client
            .subscribe(
                demo::IMSI_A,
                &ServiceForm {
                    sic: Some("".into()),
                    impi: Some(demo::impi_b()),
                    ..ServiceForm::default()
                },
            )
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert_eq!(body.field.as_deref(), Some("impi"));
    assert!(body.error.contains(demo::IMSI_B), "{}", body.error);
    // A SIC-tagged IMPI of another IMSI is refused before the store is asked.
    let (status, body) = api_err(
        s.client
            .subscribe(
                demo::IMSI_B,
                &ServiceForm {
                    sic: Some("001".into()),
                    impi: Some(demo::impi_a("001")),
                    ..ServiceForm::default()
                },
            )
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert_eq!(body.field.as_deref(), Some("impi"));
    // An IMPU of another subscriber: the store's identity conflict, 409 naming the owner.
    let (status, body) = api_err(
        s.client
            .subscribe(
                demo::IMSI_B,
                &ServiceForm {
                    sic: Some("001".into()),
                    impus: vec![format!("tel:{}", demo::MSISDN_A)],
                    ..ServiceForm::default()
                },
            )
            .unwrap_err(),
    );
    assert_eq!(status, 409);
    assert_eq!(body.owner.as_deref(), Some(demo::IMSI_A));
}

#[test]
fn unsubscribing_a_registered_service_sends_an_rtr_for_it_alone() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    s.register(demo::IMSI_A, "001");
    s.register(demo::IMSI_A, "002");
    let before = s.sub(demo::IMSI_A);
    let r = s.client.unsubscribe(demo::IMSI_A, "002").unwrap();
    assert!(r.removed);
    assert!(r.rtr.sent);
    assert_eq!(r.rtr.destination.as_deref(), Some(SCSCF_HOST));
    assert_eq!(r.rtr.result_code, Some(2001));

    let got = s.received();
    assert_eq!(got.len(), 1);
    let (host, rtr) = &got[0];
    assert_eq!(host, SCSCF_HOST);
    assert_eq!(rtr.header.command, CommandCode::REGISTRATION_TERMINATION);
    assert!(rtr.header.is_request());
    assert_eq!(
        rtr.str(codes::USER_NAME),
        Some(demo::impi_a("002").as_str())
    );
    assert_eq!(
        impus_of(rtr),
        demo::impus(demo::MSISDN_A).into_iter().collect()
    );
    assert_eq!(rtr.str(codes::DESTINATION_HOST), Some(SCSCF_HOST));
    assert_eq!(
        reason_code(rtr),
        (0, Some("service unsubscribed".to_owned())),
        "PERMANENT_TERMINATION"
    );

    let after = s.sub(demo::IMSI_A);
    assert!(!after.services.contains_key("002"));
    assert_eq!(
        serde_json::to_vec(&after.services["001"]).unwrap(),
        serde_json::to_vec(&before.services["001"]).unwrap(),
        "the registered sibling is as it was"
    );
    let v = s.client.subscriber(demo::IMSI_A).unwrap();
    assert_eq!(v.services[0].state, RegState::Registered);
    assert_eq!(v.services[0].scscf.as_deref(), Some(SCSCF_NAME));
}

#[test]
fn unsubscribing_removes_the_service_even_when_the_rtr_gets_no_answer() {
    let s = start(None, Mode::Timeout);
    s.client.create_subscriber(&form_a()).unwrap();
    s.register(demo::IMSI_A, "002");
    let r = s.client.unsubscribe(demo::IMSI_A, "002").unwrap();
    assert!(r.removed && r.rtr.sent);
    assert_eq!(r.rtr.result_code, None);
    assert!(r.rtr.error.as_deref().unwrap().contains("no answer"));
    assert!(!s.sub(demo::IMSI_A).services.contains_key("002"));
    let metrics = s.client.metrics().unwrap();
    assert!(
        metrics.contains("sichss_hss_requests_total{command=\"RTR\",outcome=\"no_answer\"} 1"),
        "{metrics}"
    );
}

#[test]
fn unsubscribing_an_idle_service_sends_nothing_and_the_last_one_is_kept() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    let r = s.client.unsubscribe(demo::IMSI_A, "002").unwrap();
    assert!(r.removed && !r.rtr.sent);
    assert!(s.received().is_empty());
    let (status, body) = api_err(s.client.unsubscribe(demo::IMSI_A, "001").unwrap_err());
    assert_eq!(status, 409);
    assert!(body.fix.unwrap().contains("DELETE /subscribers/"));
    let (status, _) = api_err(s.client.unsubscribe(demo::IMSI_A, "002").unwrap_err());
    assert_eq!(status, 404);
    let (status, body) = api_err(s.client.unsubscribe(demo::IMSI_A, "1").unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(body.field.as_deref(), Some("sic"));
}

#[test]
fn admin_deregistration_sends_an_rtr_and_clears_only_that_service() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    s.register(demo::IMSI_A, "001");
    s.register(demo::IMSI_A, "002");
    let before = s.sub(demo::IMSI_A);
    let r = s.client.deregister(demo::IMSI_A, "001").unwrap();
    assert!(r.deregistered);
    assert_eq!(r.rtr.result_code, Some(2001));
    let got = s.received();
    assert_eq!(got.len(), 1);
    let rtr = &got[0].1;
    assert_eq!(
        rtr.str(codes::USER_NAME),
        Some(demo::impi_a("001").as_str())
    );
    assert_eq!(
        reason_code(rtr),
        (0, Some("administrative de-registration".to_owned()))
    );

    let after = s.sub(demo::IMSI_A);
    assert!(after.services["001"]
        .registrations
        .values()
        .all(|r| r.state == RegState::NotRegistered && r.scscf.is_none()));
    assert_eq!(after.services["002"], before.services["002"]);
    let v = s.client.subscriber(demo::IMSI_A).unwrap();
    assert_eq!(v.service("001").unwrap().state, RegState::NotRegistered);
    assert_eq!(v.service("002").unwrap().state, RegState::Registered);
    // The shared IMPU stays registered through RCS.
    assert_eq!(
        after.impu_state(&demo::impus(demo::MSISDN_A)[0]),
        RegState::Registered
    );

    // Nothing holds 001 any more.
    let (status, body) = api_err(s.client.deregister(demo::IMSI_A, "001").unwrap_err());
    assert_eq!(status, 409);
    assert!(body.error.contains("not registered"), "{}", body.error);
}

#[test]
fn admin_deregistration_without_an_answer_is_502_and_keeps_the_state() {
    let s = start(None, Mode::Timeout);
    s.client.create_subscriber(&form_a()).unwrap();
    s.register(demo::IMSI_A, "001");
    let before = s.sub(demo::IMSI_A);
    let (status, body) = api_err(s.client.deregister(demo::IMSI_A, "001").unwrap_err());
    assert_eq!(status, 502);
    let rtr = body.rtr.expect("the report");
    assert!(rtr.sent && rtr.error.is_some());
    assert_eq!(s.sub(demo::IMSI_A), before);
}

#[test]
fn a_profile_change_of_a_registered_service_is_pushed_with_a_ppr() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    let profile: ServiceProfile = serde_json::from_value(serde_json::json!({
        "ifcs": [{"priority": 0, "application_server": {"server_name": "sip:as.example.com"}}],
        "barred_impus": []
    }))
    .unwrap();
    // Not registered: stored, nothing sent.
    let r = s.client.set_profile(demo::IMSI_A, "002", &profile).unwrap();
    assert!(!r.ppr.sent);
    assert!(s.received().is_empty());

    s.register(demo::IMSI_A, "001");
    let r = s.client.set_profile(demo::IMSI_A, "001", &profile).unwrap();
    assert!(r.ppr.sent);
    assert_eq!(r.ppr.result_code, Some(2001));
    assert_eq!(r.service.profile, profile);
    let got = s.received();
    assert_eq!(got.len(), 1);
    let ppr = &got[0].1;
    assert_eq!(ppr.header.command, CommandCode::PUSH_PROFILE);
    assert_eq!(
        ppr.str(codes::USER_NAME),
        Some(demo::impi_a("001").as_str())
    );
    let xml = String::from_utf8(
        ppr.find(codes::USER_DATA)
            .and_then(|a| a.as_bytes())
            .expect("User-Data")
            .to_vec(),
    )
    .unwrap();
    assert!(xml.contains("sip:as.example.com"), "{xml}");
    assert_eq!(s.sub(demo::IMSI_A).services["001"].profile, profile);

    // A barred IMPU that is not the service's own: the field is named.
    let bad: ServiceProfile =
        serde_json::from_value(serde_json::json!({"barred_impus": ["sip:nobody@example.com"]}))
            .unwrap();
    let (status, body) = api_err(s.client.set_profile(demo::IMSI_A, "001", &bad).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(body.field.as_deref(), Some("profile.barred_impus[0]"));
}

#[test]
fn removing_a_registered_subscriber_sends_an_rtr_per_registered_service() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    s.register(demo::IMSI_A, "002");
    let r = s.client.remove_subscriber(demo::IMSI_A).unwrap();
    assert_eq!(r.rtr.len(), 1);
    assert_eq!(r.rtr[0].sic, "002");
    assert_eq!(r.rtr[0].report.result_code, Some(2001));
    let got = s.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].1.str(codes::USER_NAME),
        Some(demo::impi_a("002").as_str())
    );
    assert_eq!(reason_code(&got[0].1).0, 0);
    assert!(s.rt.block_on(s.store.get(demo::IMSI_A)).unwrap().is_none());
}

#[test]
fn views_never_show_secrets_unless_asked() {
    let s = start(None, Mode::Accept);
    let created = serde_json::to_string(&s.client.create_subscriber(&form_a()).unwrap()).unwrap();
    let shown = s
        .client
        .subscriber_json(demo::IMSI_A, false)
        .unwrap()
        .to_string();
    let listed = serde_json::to_string(&s.client.list_all().unwrap()).unwrap();
    let services = serde_json::to_string(&s.client.services(demo::IMSI_A).unwrap()).unwrap();
    let cli = s
        .cli(AdminCommand::Subscriber(SubscriberCommand::Show {
            imsi: demo::IMSI_A.into(),
            json: true,
        }))
        .unwrap();
    for text in [&created, &shown, &listed, &services, &cli] {
        for secret in [demo::K, demo::OPC, demo::PASSWORD] {
            assert!(!text.contains(secret), "secret in {text}");
        }
    }
    let v = s.client.subscriber_json(demo::IMSI_A, false).unwrap();
    assert_eq!(v["aka"], true);
    assert_eq!(v["digest"], true);
    assert!(v.get("secrets").is_none());

    let with = s.client.subscriber_json(demo::IMSI_A, true).unwrap();
    assert_eq!(with["secrets"]["aka"]["k"], demo::K);
    assert_eq!(with["secrets"]["aka"]["opc"], demo::OPC);
    assert_eq!(with["secrets"]["digest"]["password"], demo::PASSWORD);

    // Errors about a secret do not quote it.
    let mut form = form_a();
    form.k = Some(SecretHex("465b5ce8b199b49faa5f0a2ee238a6bX".into()));
    let (_, body) = api_err(s.client.create_subscriber(&form).unwrap_err());
    assert_eq!(body.field.as_deref(), Some("k"));
    assert!(
        !serde_json::to_string(&body).unwrap().contains("'X'"),
        "{body:?}"
    );
}

#[test]
fn the_token_is_required_when_configured_and_health_is_open() {
    let s = start(Some("s3cret"), Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    assert_eq!(
        s.client.subscriber(demo::IMSI_A).unwrap().imsi,
        demo::IMSI_A
    );

    let anonymous = Client::new(&s.api, None);
    assert_eq!(anonymous.health().unwrap()["status"], "ok");
    let (status, body) = api_err(anonymous.subscriber(demo::IMSI_A).unwrap_err());
    assert_eq!(status, 401);
    assert_eq!(body.field.as_deref(), Some("Authorization"));
    assert!(body.fix.unwrap().contains("Bearer"));
    let wrong = Client::new(&s.api, Some("guess"));
    let (status, _) = api_err(wrong.list_all().unwrap_err());
    assert_eq!(status, 401);
    for path in ["/metrics", "/openapi.json", "/export"] {
        let r = ureq::get(&format!("{}{path}", s.api)).call();
        assert!(
            matches!(r, Err(ureq::Error::Status(401, _))),
            "{path} without a token"
        );
    }
    let r = ureq::get(&format!("{}/metrics", s.api))
        .set("Authorization", "Bearer s3cret")
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    assert!(api::check_listen("127.0.0.1:8080".parse().unwrap(), None).is_ok());
    assert!(api::check_listen("[::1]:8080".parse().unwrap(), None).is_ok());
    assert!(api::check_listen("0.0.0.0:8080".parse().unwrap(), Some("t")).is_ok());
    let e = api::check_listen("0.0.0.0:8080".parse().unwrap(), None).unwrap_err();
    assert!(e.contains("--admin-token (or SICHSS_ADMIN_TOKEN) is required when --admin-listen is not a loopback address"), "{e}");
}

/// Every `.route("…", get(…).post(…))` of `api::router`, read from its source.
fn router_routes() -> BTreeSet<(String, String)> {
    let src =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/api/mod.rs")).unwrap();
    let start = src.find("pub fn router").expect("router fn");
    let body = &src[start..];
    let body = &body[..body.find("\n}\n").expect("end of router")];
    let mut out = BTreeSet::new();
    let mut rest = body;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        // The call's text up to its balanced closing parenthesis.
        let mut depth = 1;
        let mut end = 0;
        for (j, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let call = &rest[..end];
        let q1 = call.find('"').unwrap();
        let q2 = q1 + 1 + call[q1 + 1..].find('"').unwrap();
        let path = &call[q1 + 1..q2];
        let after = &call[q2..];
        for m in ["get", "post", "put", "delete", "patch"] {
            let pat = format!("{m}(");
            let mut k = 0;
            while let Some(p) = after[k..].find(&pat) {
                let at = k + p;
                let prev = after[..at].chars().last().unwrap_or(' ');
                if !(prev.is_alphanumeric() || prev == '_' || prev == ':') {
                    out.insert((m.to_owned(), path.to_owned()));
                }
                k = at + pat.len();
            }
        }
    }
    out
}

#[test]
fn openapi_describes_every_route_of_the_router() {
    let routes = router_routes();
    assert_eq!(routes.len(), 16, "{routes:?}");
    let doc: serde_json::Value = serde_json::from_str(api::OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    assert_eq!(routes, documented);

    // And it is what the server serves.
    let s = start(None, Mode::Accept);
    let served: serde_json::Value = ureq::get(&format!("{}/openapi.json", s.api))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(served, doc);
    // Every documented route is routed (no 404 "no route", no 405).
    for (method, path) in &documented {
        let url = format!(
            "{}{}",
            s.api,
            path.replace("{imsi}", demo::IMSI_A).replace("{sic}", "001")
        );
        let r = ureq::request(&method.to_uppercase(), &url)
            .set("Content-Type", "application/json")
            .send_string("{}");
        let (status, text) = match r {
            Ok(r) => (r.status(), String::new()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap()),
            Err(e) => panic!("{method} {path}: {e}"),
        };
        assert_ne!(status, 405, "{method} {path}");
        assert!(!text.contains("no route"), "{method} {path}: {text}");
    }
    let r = ureq::get(&format!("{}/nope", s.api)).call();
    match r {
        Err(ureq::Error::Status(404, r)) => {
            assert!(r.into_string().unwrap().contains("no route GET /nope"))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn metrics_expose_the_counters() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    s.register(demo::IMSI_A, "001");
    s.client.deregister(demo::IMSI_A, "001").unwrap();
    let text = s.client.metrics().unwrap();
    for needle in [
        "# TYPE sichss_cx_requests_total counter",
        "# TYPE sichss_cx_request_duration_seconds histogram",
        "# TYPE sichss_diameter_peers gauge",
        "# TYPE sichss_store_flushes_total counter",
        "# TYPE sichss_store_flushed_changes_total counter",
        "sichss_hss_requests_total{command=\"RTR\",outcome=\"2001\"} 1",
    ] {
        assert!(text.contains(needle), "{needle} missing from\n{text}");
    }
    let flushes: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("sichss_store_flushes_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(flushes >= 1, "{text}");
}

#[test]
fn import_names_the_bad_line() {
    let s = start(None, Mode::Accept);
    let good = serde_json::to_string(&demo::subscriber_a()).unwrap();
    let mut bad = demo::subscriber_b();
    bad.aka.as_mut().unwrap().k = SecretHex("00".into());
    let bad = serde_json::to_string(&bad).unwrap();
    let body = format!("{good}\n\n{bad}\n");
    let (status, b) = api_err(s.client.import(body.as_bytes()).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(b.line, Some(3));
    assert_eq!(b.field.as_deref(), Some("aka.k"));
    assert!(b.error.starts_with("line 3:"), "{}", b.error);
    // The line before it was imported.
    assert!(s.rt.block_on(s.store.get(demo::IMSI_A)).unwrap().is_some());

    let (status, b) = api_err(
        s.client
            .import(r#"{"imsi": "460011100600001", "home_domain": 7}"#.as_bytes())
            .unwrap_err(),
    );
    assert_eq!(status, 400);
    assert_eq!(b.line, Some(1));
    assert_eq!(b.field.as_deref(), Some("home_domain"));
}

#[test]
fn export_then_import_round_trips() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    s.register(demo::IMSI_A, "001");
    let mut form = form_a();
    form.imsi = demo::IMSI_B.into();
    form.msisdns = vec![demo::MSISDN_B.into()];
    form.services = vec![ServiceForm::default()];
    s.client.create_subscriber(&form).unwrap();
    let mut dump = Vec::new();
    assert_eq!(s.client.export(&mut dump).unwrap(), 2);
    let text = String::from_utf8(dump.clone()).unwrap();
    assert!(
        text.contains(demo::K),
        "the export is a backup, with credentials"
    );

    let other = start(None, Mode::Accept);
    let r = other.client.import(dump.as_slice()).unwrap();
    assert_eq!((r.imported, r.replaced), (2, 0));
    for imsi in [demo::IMSI_A, demo::IMSI_B] {
        assert_eq!(other.sub(imsi), s.sub(imsi));
    }
    let r = other.client.import(dump.as_slice()).unwrap();
    assert_eq!((r.imported, r.replaced), (2, 2));

    // Through the CLI commands, with a file.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("subs.jsonl");
    let out = s
        .cli(AdminCommand::Export {
            file: Some(file.clone()),
        })
        .unwrap();
    assert!(out.contains("exported 2 subscribers"), "{out}");
    let third = start(None, Mode::Accept);
    let out = third.cli(AdminCommand::Import { file }).unwrap();
    assert_eq!(out, "imported 2 subscribers (0 replaced)\n");
}

#[test]
fn every_validation_error_names_its_field() {
    let s = start(None, Mode::Accept);
    type Change = Box<dyn Fn(&mut SubscriberForm)>;
    let cases: Vec<(&str, Change, &str)> = vec![
        ("imsi", Box::new(|f| f.imsi = "46001x".into()), "IMSI"),
        (
            "k",
            Box::new(|f| f.k = Some(SecretHex("465b".into()))),
            "32 hex digits",
        ),
        (
            "opc",
            Box::new(|f| f.opc = Some(SecretHex("cd".into()))),
            "32 hex digits",
        ),
        (
            "amf",
            Box::new(|f| f.amf = Some("80".into())),
            "4 hex digits",
        ),
        (
            "services[1].sic",
            Box::new(|f| f.services[1].sic = Some("02".into())),
            "3 digits",
        ),
        (
            "services[0].sic",
            Box::new(|f| f.services[0].sic = Some("abc".into())),
            "3 digits",
        ),
        (
            "services[1].sic",
            Box::new(|f| f.services[1].sic = Some("001".into())),
            "twice",
        ),
        (
            "msisdns[0]",
            Box::new(|f| f.msisdns = vec!["8618612345678".into()]),
            "E.164",
        ),
        ("mnc_len", Box::new(|f| f.mnc_len = None), "mnc_len"),
        ("mnc_len", Box::new(|f| f.mnc_len = Some(4)), "2 or 3"),
        (
            "home_domain",
            Box::new(|f| f.home_domain = Some("x".into())),
            "not both",
        ),
        ("services", Box::new(|f| f.services.clear()), "at least one"),
        (
            "services[0].impus[0]",
            Box::new(|f| f.services[0].impus = vec!["mailto:a@b".into()]),
            "sip:",
        ),
        (
            "services[0].impi",
            Box::new(|f| f.services[0].impi = Some("no-at-sign".into())),
            "@",
        ),
        (
            "op",
            Box::new(|f| f.op = Some(SecretHex(demo::OPC.into()))),
            "not both",
        ),
    ];
    for (field, change, words) in cases {
        let mut form = form_a();
        change(&mut form);
        let (status, body) = api_err(s.client.create_subscriber(&form).unwrap_err());
        assert_eq!(status, 400, "{field}: {body:?}");
        assert_eq!(body.field.as_deref(), Some(field), "{body:?}");
        assert!(body.error.starts_with(&format!("{field}: ")), "{body:?}");
        assert!(body.error.contains(words), "{field}: {}", body.error);
        assert!(body.fix.is_some(), "{field}: no fix");
    }
    // Bad JSON: serde's message names the field.
    for (json, field, words) in [
        (
            r#"{"imsi": 460011100612345}"#,
            Some("imsi"),
            "expected a string",
        ),
        (
            r#"{"imsi": "460011100612345", "kk": "00"}"#,
            Some("kk"),
            "unknown field `kk`",
        ),
        (
            r#"{"imsi": "460011100612345", "services": [{"sic": 1}]}"#,
            Some("services[0].sic"),
            "invalid type",
        ),
        (
            r#"{"imsi": "460011100612345", "default_scheme": "md5"}"#,
            Some("default_scheme"),
            "`aka`",
        ),
        (r#"{"msisdns": []}"#, None, "missing field `imsi`"),
        (r#"{"imsi": "#, Some("imsi"), "EOF"),
    ] {
        let r = ureq::post(&format!("{}/subscribers", s.api))
            .set("Content-Type", "application/json")
            .send_string(json);
        let Err(ureq::Error::Status(400, resp)) = r else {
            panic!("{json}: {r:?}")
        };
        let body: api::ErrorBody = resp.into_json().unwrap();
        assert_eq!(body.field.as_deref(), field, "{json}: {body:?}");
        assert!(body.error.contains(words), "{json}: {}", body.error);
    }
    // Query parameters too.
    let (status, body) = api_err(s.client.list_page(None, 0).unwrap_err());
    assert_eq!(status, 400);
    assert_eq!(body.field.as_deref(), Some("limit"));
}

#[test]
fn the_cli_shows_one_line_per_service() {
    let s = start(None, Mode::Accept);
    let out = s
        .cli(AdminCommand::Subscriber(SubscriberCommand::Add(parse_add(
            &[
                "--imsi",
                demo::IMSI_A,
                "--msisdn",
                demo::MSISDN_A,
                "--mnc-len",
                "2",
                "--k",
                demo::K,
                "--opc",
                demo::OPC,
                "--service",
                "001",
                "--service",
                "002:Chat",
            ],
        ))))
        .unwrap();
    assert!(
        out.starts_with("added subscriber 460011100612345\n"),
        "{out}"
    );
    s.register(demo::IMSI_A, "001");
    let out = s
        .cli(AdminCommand::Subscriber(SubscriberCommand::Show {
            imsi: demo::IMSI_A.into(),
            json: false,
        }))
        .unwrap();
    let volte = out.lines().find(|l| l.starts_with("001")).expect(&out);
    for part in ["VoLTE", &demo::impi_a("001"), "REGISTERED", SCSCF_NAME] {
        assert!(volte.contains(part), "{part} not in {volte:?}");
    }
    let chat = out.lines().find(|l| l.starts_with("002")).expect(&out);
    for part in ["Chat", &demo::impi_a("002"), "NOT_REGISTERED"] {
        assert!(chat.contains(part), "{part} not in {chat:?}");
    }
    // --json prints the API's view exactly.
    let json = s
        .cli(AdminCommand::Subscriber(SubscriberCommand::Show {
            imsi: demo::IMSI_A.into(),
            json: true,
        }))
        .unwrap();
    let printed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        printed,
        s.client.subscriber_json(demo::IMSI_A, false).unwrap()
    );
    for key in ["sic", "name", "impi", "impus", "state", "scscf"] {
        assert!(printed["services"][0].get(key).is_some(), "{key}");
    }
    assert_eq!(printed["services"][0]["state"], "REGISTERED");

    let out = s
        .cli(AdminCommand::Service(admin::ServiceCommand::Deregister {
            imsi: demo::IMSI_A.into(),
            sic: "001".into(),
        }))
        .unwrap();
    assert!(out.contains("de-registered service 001"), "{out}");
    assert!(out.contains("Result-Code 2001"), "{out}");
    let out = s
        .cli(AdminCommand::Subscriber(SubscriberCommand::List {
            json: false,
        }))
        .unwrap();
    assert!(
        out.contains("001:VoLTE(NOT_REGISTERED) 002:Chat(NOT_REGISTERED)"),
        "{out}"
    );

    // An API error reaches the operator with its field and fix.
    let e = s
        .cli(AdminCommand::Service(admin::ServiceCommand::Subscribe {
            imsi: demo::IMSI_A.into(),
            sic: "001".into(),
            name: None,
            impi: None,
            impus: vec![],
        }))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("(HTTP 409)") && e.contains("field: sic") && e.contains("fix: "),
        "{e}"
    );
    // A missing service flag is caught before the API is asked.
    let e = s
        .cli(AdminCommand::Subscriber(SubscriberCommand::Add(parse_add(
            &["--imsi", demo::IMSI_B, "--mnc-len", "2", "--password", "x"],
        ))))
        .unwrap_err();
    assert!(matches!(e, AdminError::Usage(_)), "{e}");
    assert!(e.to_string().contains("--service"), "{e}");
}

/// Parses `subscriber add` flags as clap would.
fn parse_add(args: &[&str]) -> admin::commands::AddArgs {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: AdminCommand,
    }
    let argv = ["sichss", "subscriber", "add"].iter().chain(args);
    match Cli::try_parse_from(argv).unwrap().cmd {
        AdminCommand::Subscriber(SubscriberCommand::Add(a)) => a,
        _ => unreachable!(),
    }
}

#[test]
fn the_cli_says_when_sichss_is_not_running() {
    // A port that was just free: bind, note it, release it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let global = AdminGlobal {
        api: format!("http://127.0.0.1:{port}"),
        token: None,
        ca_cert: None,
    };
    let mut out = Vec::new();
    let e = admin::run_with(
        &global,
        AdminCommand::Subscriber(SubscriberCommand::List { json: false }),
        &mut out,
    )
    .unwrap_err();
    assert!(matches!(e, AdminError::NotRunning { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("sichss is not running at http://127.0.0.1:{port}: start it with `sichss serve` or set --api/SICHSS_API")
    );
}

/// A SAR as Kamailio's S-CSCF sends it (TS 29.229 §6.1.3).
fn sar(impi: &str, impu: &str, sat: i32) -> Message {
    use sichss::codec::{ApplicationId, Avp, VENDOR_3GPP};
    Message::request(
        CommandCode::SERVER_ASSIGNMENT,
        ApplicationId::CX,
        true,
        7,
        7,
    )
    .with(Avp::utf8(codes::SESSION_ID, format!("{SCSCF_HOST};1;7")))
    .with(Avp::grouped(
        codes::VENDOR_SPECIFIC_APPLICATION_ID,
        vec![
            Avp::u32(codes::VENDOR_ID, VENDOR_3GPP),
            Avp::u32(codes::AUTH_APPLICATION_ID, 16777216),
        ],
    ))
    .with(Avp::enumerated(codes::AUTH_SESSION_STATE, 1))
    .with(Avp::identity(codes::ORIGIN_HOST, SCSCF_HOST))
    .with(Avp::identity(codes::ORIGIN_REALM, demo::HOME_DOMAIN))
    .with(Avp::identity(codes::DESTINATION_REALM, demo::HOME_DOMAIN))
    .with(Avp::utf8(codes::PUBLIC_IDENTITY, impu))
    .with(Avp::utf8(codes::SERVER_NAME, SCSCF_NAME))
    .with(Avp::utf8(codes::USER_NAME, impi))
    .with(Avp::enumerated(codes::SERVER_ASSIGNMENT_TYPE, sat))
    .with(Avp::enumerated(codes::USER_DATA_ALREADY_AVAILABLE, 0))
}

#[test]
fn a_service_registered_by_sar_is_shown_and_deregistered_alone() {
    let s = start(None, Mode::Accept);
    s.client.create_subscriber(&form_a()).unwrap();
    let cx = CxApp::new(s.store.clone(), CxConfig::default());
    let sip = &demo::impus(demo::MSISDN_A)[0];
    let saa = s.rt.block_on(cx.handle(&sar(&demo::impi_a("001"), sip, 1)));
    assert_eq!(saa.result_code(), Some(ResultCode(2001)));

    let v = s.client.subscriber(demo::IMSI_A).unwrap();
    let volte = v.service("001").unwrap();
    assert_eq!(volte.state, RegState::Registered);
    assert_eq!(volte.scscf.as_deref(), Some(SCSCF_NAME));
    assert_eq!(v.service("002").unwrap().state, RegState::NotRegistered);

    let r = s.client.deregister(demo::IMSI_A, "001").unwrap();
    assert!(r.deregistered);
    let got = s.received();
    assert_eq!(got[0].0, SCSCF_HOST, "sent to the SAR's Origin-Host");
    assert_eq!(
        got[0].1.str(codes::USER_NAME),
        Some(demo::impi_a("001").as_str())
    );
    let v = s.client.subscriber(demo::IMSI_A).unwrap();
    assert!(v
        .services
        .iter()
        .all(|x| x.state == RegState::NotRegistered));
}
