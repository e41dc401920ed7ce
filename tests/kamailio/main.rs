//! End-to-end: sichss behind real Kamailio 5.6 CSCFs (issue 5).
//!
//! Each test starts its own network ([`net::Net`]): `sichss serve --demo` on ports chosen
//! for the run (HSS, API; the S-CSCF's port is the HSS's `--default-scscf`), a tshark
//! capture of the Diameter port, and the I-CSCF + S-CSCF of `harness/kamailio/run`
//! (`--tc 5`, own `--dir`); phones are `sichss ue` processes (`--json`, read line by
//! line); the HSS's view is `sichss subscriber show --json`; the Diameter exchange is read
//! back from the capture ([`wire`]). Every wait is bounded; everything is stopped in
//! `Drop`, and on failure the run directory (logs, capture) is kept and printed.
//!
//! Kamailio is required: without it these tests FAIL (run `./scripts/test`, which
//! installs it). They run one at a time: under `cargo nextest` through the `kamailio`
//! test group (`.config/nextest.toml`, max-threads = 1), under `cargo test` through a
//! process-wide mutex held by each `Net`.
//!
//! The scenarios and what Kamailio does are written out in tests/kamailio/README.md and
//! in the main README ("Kamailio and two IMPIs sharing one IMPU").

mod net;
mod wire;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use net::{
    find, free_udp, service_state, Net, Who, A_RCS, A_SIC_003, A_VOLTE, B, C_RCS, C_VOLTE,
    SCSCF_HOST,
};
use wire::{
    answer, answered, any_answered, listing, requests, sar_answered, Cx, CER, LIR, MAR, RTR, SAR,
    UAR,
};

/// How long a MESSAGE may take to reach a phone.
const DELIVERY: Duration = Duration::from_secs(5);

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// Whether a LIR for `impu` has been answered.
fn lir_answered(msgs: &[Cx], impu: &str) -> bool {
    msgs.iter().any(|m| {
        m.request && m.command == LIR && m.public_ids == [impu] && answer(msgs, m).is_some()
    })
}

/// Whether both CSCFs' CERs have been answered.
fn both_cers_answered(msgs: &[Cx]) -> bool {
    ["icscf", "scscf"].iter().all(|h| {
        let origin = format!("{h}.{}", net::REALM);
        msgs.iter().any(|m| {
            m.request
                && m.command == CER
                && m.origin_host.as_deref() == Some(origin.as_str())
                && answer(msgs, m).is_some()
        })
    })
}

/// The one request of `command` for `impi` in `msgs`, and its answer.
fn exchange<'a>(msgs: &'a [Cx], command: u32, impi: &str) -> (&'a Cx, &'a Cx) {
    let reqs = requests(msgs, command, impi);
    assert!(
        !reqs.is_empty(),
        "no {command} request for {impi} in:\n{}",
        listing(msgs)
    );
    let req = reqs[reqs.len() - 1];
    let ans =
        answer(msgs, req).unwrap_or_else(|| panic!("no answer to {req:?} in:\n{}", listing(msgs)));
    (req, ans)
}

/// The registration exchange of one service: UAR → UAA `uaa`, MAR (scheme) → MAA 2001,
/// SAR `sat` → SAA 2001, all naming `impi`.
fn assert_registration(msgs: &[Cx], who: &Who, uaa: u32, scheme: &str, sat: i32) {
    let impi = who.impi();
    let (uar, ua) = exchange(msgs, UAR, &impi);
    assert_eq!(uar.uat.unwrap_or(0), 0, "{uar:?}");
    assert_eq!(ua.experimental, Some(uaa), "UAA for {impi}: {ua:?}");
    let (mar, ma) = exchange(msgs, MAR, &impi);
    assert_eq!(mar.scheme.as_deref(), Some(scheme), "{mar:?}");
    assert_eq!(ma.result_code, Some(2001), "{ma:?}");
    assert_eq!(
        ma.user_name.as_deref(),
        Some(impi.as_str()),
        "MAA echoes User-Name"
    );
    let sars = requests(msgs, SAR, &impi);
    assert_eq!(sars.len(), 1, "one SAR for {impi}:\n{}", listing(msgs));
    assert_eq!(sars[0].sat, Some(sat), "{:?}", sars[0]);
    assert_eq!(answer(msgs, sars[0]).unwrap().result_code, Some(2001));
}

// ---------------------------------------------------------------------------------------
// Scenarios 1 and 2: VoLTE and RCS of subscriber A (shared IMPU) register together, VoLTE
// leaves, RCS stays and receives a MESSAGE routed by LIR.

fn shared_impu(auth: &str, scheme: &str) {
    let net = Net::start(auth);
    let (lv, lr) = (free_udp(), free_udp());

    // VoLTE registers (one-shot: the UE exits, its contact stays at the S-CSCF).
    let v = net.register(&A_VOLTE, lv);
    assert_eq!(v["impi"], A_VOLTE.impi());
    assert_eq!(
        set(&strings(&v["associated"])),
        set(&[A_VOLTE.impu(), A_VOLTE.tel()]),
        "{v}"
    );
    assert_eq!(
        strings(&v["service_route"]),
        [format!("sip:orig@{};lr", net.scscf())]
    );
    // RCS registers and stays, listening for MESSAGEs.
    let mut rcs = net.hold(&A_RCS, lr);

    let view = net.show(A_VOLTE.imsi);
    for sic in ["001", "002"] {
        assert_eq!(service_state(&view, sic), "REGISTERED", "{sic}: {view:#}");
    }
    for s in view["services"].as_array().unwrap() {
        assert_eq!(s["scscf"], net.scscf_uri(), "{s}");
    }
    let cx = net.cx_wait(0, "RCS's SAA", |m| answered(m, SAR, &A_RCS.impi()));
    // VoLTE first: a first registration (UAA 2001, SAR REGISTRATION).
    assert_registration(&cx, &A_VOLTE, 2001, scheme, 1);
    // RCS on the already registered IMPU: UAA 2002 and SAR RE_REGISTRATION (kamailio.md §12),
    // which sichss takes as the first registration of the (RCS IMPI, IMPU) pair.
    assert_registration(&cx, &A_RCS, 2002, scheme, 2);

    // VoLTE de-registers: UAR type 1 and MAR reach the HSS, no SAR (RCS holds the IMPU).
    let mark = cx.len();
    let d = net.deregister(&A_VOLTE, lv);
    assert_eq!(d["impi"], A_VOLTE.impi());
    let volte = A_VOLTE.impi();
    let after = net.cx_wait(mark, "VoLTE's UAR type 1 and MAA", |m| {
        requests(m, UAR, &volte).iter().any(|u| u.uat == Some(1)) && answered(m, MAR, &volte)
    });
    let uars = requests(&after, UAR, &volte);
    assert!(
        uars.iter().any(|u| u.uat == Some(1)),
        "UAR User-Authorization-Type 1 for VoLTE:\n{}",
        listing(&after)
    );
    assert!(
        !requests(&after, MAR, &volte).is_empty(),
        "MAR for VoLTE's de-REGISTER:\n{}",
        listing(&after)
    );
    let view = net.show(A_VOLTE.imsi);
    assert_eq!(service_state(&view, "002"), "REGISTERED", "{view:#}");
    // No SAR means the HSS cannot know VoLTE left: its state is not asserted (README).
    eprintln!(
        "shared IMPU, after VoLTE's de-REGISTER the HSS shows VoLTE {}",
        service_state(&view, "001")
    );

    // A MESSAGE to RCS's public identity: LIR → LIA with the S-CSCF → RCS's contact.
    let body = format!("hello RCS ({auth})");
    let status = net.message(&A_RCS.impu(), &body, &net.icscf());
    assert_eq!(status, 200, "MESSAGE to {}", A_RCS.impu());
    assert!(rcs.received(&body, DELIVERY), "RCS got {:?}", rcs.seen);
    let after = net.cx_wait(mark, "the LIA", |m| any_answered(m, LIR));
    // Everything VoLTE's de-REGISTER caused is in the file before the LIR: no SAR.
    assert!(
        requests(&after, SAR, &volte).is_empty(),
        "Kamailio sent a SAR for VoLTE's de-REGISTER on a shared IMPU (README: it does not):\n{}",
        listing(&after)
    );
    let mark = mark + after.len();
    let lir = after
        .iter()
        .find(|m| m.request && m.command == LIR)
        .unwrap_or_else(|| panic!("no LIR:\n{}", listing(&after)));
    assert_eq!(lir.public_ids, [A_RCS.impu()]);
    let lia = answer(&after, lir).unwrap();
    assert_eq!(lia.result_code, Some(2001), "{lia:?}");
    assert_eq!(lia.server_name.as_deref(), Some(net.scscf_uri().as_str()));

    // RCS leaves last: one SAR USER_DEREGISTRATION with the RCS IMPI.
    rcs.deregister();
    let after = net.cx_wait(mark, "RCS's SAR 5", |m| sar_answered(m, &A_RCS.impi(), 5));
    let sars = requests(&after, SAR, &A_RCS.impi());
    assert_eq!(sars.len(), 1, "{}", listing(&after));
    assert_eq!(sars[0].sat, Some(5));
    assert_eq!(net.state(A_RCS.imsi, "002"), "NOT_REGISTERED");
}

#[test]
fn shared_impu_volte_and_rcs_with_aka() {
    shared_impu("aka", "Digest-AKAv1-MD5");
}

#[test]
fn shared_impu_volte_and_rcs_with_sip_digest() {
    shared_impu("digest", "SIP Digest");
}

// ---------------------------------------------------------------------------------------
// Scenario 3: one IMPU per service; every REGISTER and de-REGISTER reaches the HSS.

#[test]
fn distinct_impu_per_service_registers_and_deregisters_independently() {
    let net = Net::start("aka");
    net.provision_c();
    let (lv, lr) = (free_udp(), free_udp());
    let volte = net.hold(&C_VOLTE, lv);
    let mut rcs = net.hold(&C_RCS, lr);
    let reg = |p: &net::Phone| find(&p.seen, "registered").unwrap();
    assert_eq!(
        set(&strings(&reg(&volte)["associated"])),
        set(&[C_VOLTE.impu(), C_VOLTE.tel()])
    );
    assert_eq!(
        set(&strings(&reg(&rcs)["associated"])),
        set(&[C_RCS.impu(), C_RCS.tel()])
    );
    let cx = net.cx_wait(0, "both SAAs", |m| {
        answered(m, SAR, &C_VOLTE.impi()) && answered(m, SAR, &C_RCS.impi())
    });
    // Each service is the first registration of its own IMPU: SAR 1 each. RCS's UAA is
    // 2002 with VoLTE's Server-Name: another identity of the subscription already holds an
    // S-CSCF, and the subscriber keeps one S-CSCF (TS 29.228 §6.1.1.1).
    assert_registration(&cx, &C_VOLTE, 2001, "Digest-AKAv1-MD5", 1);
    assert_registration(&cx, &C_RCS, 2002, "Digest-AKAv1-MD5", 1);
    assert_eq!(
        requests(&cx, SAR, &C_RCS.impi())[0].public_ids,
        [C_RCS.impu()]
    );
    let states = |net: &Net| {
        let v = net.show(C_VOLTE.imsi);
        (service_state(&v, "001"), service_state(&v, "002"))
    };
    assert_eq!(states(&net), ("REGISTERED".into(), "REGISTERED".into()));

    // VoLTE de-registers: SAR 5 with the VoLTE IMPI; RCS untouched.
    let mark = cx.len();
    volte.deregister();
    let after = net.cx_wait(mark, "VoLTE's SAR 5", |m| {
        sar_answered(m, &C_VOLTE.impi(), 5)
    });
    let mark = mark + after.len();
    let sars = requests(&after, SAR, &C_VOLTE.impi());
    assert_eq!(sars.len(), 1, "{}", listing(&after));
    assert_eq!(sars[0].sat, Some(5));
    assert!(requests(&after, SAR, &C_RCS.impi()).is_empty());
    assert_eq!(states(&net), ("NOT_REGISTERED".into(), "REGISTERED".into()));
    // RCS is still reachable; VoLTE's IMPU is not registered any more (LIA → 480).
    assert_eq!(net.message(&C_RCS.impu(), "to RCS", &net.icscf()), 200);
    assert!(rcs.received("to RCS", DELIVERY));
    let s = net.message(&C_VOLTE.impu(), "to VoLTE", &net.icscf());
    assert!(s >= 400, "MESSAGE to de-registered VoLTE: {s}");

    // And the other way round: VoLTE back, RCS leaves.
    let mut volte = net.hold(&C_VOLTE, free_udp());
    assert_eq!(states(&net), ("REGISTERED".into(), "REGISTERED".into()));
    let after = net.cx_wait(mark, "VoLTE's new SAA", |m| {
        answered(m, SAR, &C_VOLTE.impi())
    });
    let mark = mark + after.len();
    rcs.deregister();
    let after = net.cx_wait(mark, "RCS's SAR 5", |m| sar_answered(m, &C_RCS.impi(), 5));
    let sars = requests(&after, SAR, &C_RCS.impi());
    assert_eq!(sars.len(), 1, "{}", listing(&after));
    assert_eq!(sars[0].sat, Some(5));
    assert!(requests(&after, SAR, &C_VOLTE.impi()).is_empty());
    assert_eq!(states(&net), ("REGISTERED".into(), "NOT_REGISTERED".into()));
    assert_eq!(net.message(&C_VOLTE.impu(), "to VoLTE", &net.icscf()), 200);
    assert!(volte.received("to VoLTE", DELIVERY));
    volte.deregister();
    assert_eq!(
        states(&net),
        ("NOT_REGISTERED".into(), "NOT_REGISTERED".into())
    );
}

// ---------------------------------------------------------------------------------------
// Scenario 4: RCS is unsubscribed while registered → RTR.

/// Unsubscribes `rcs` through the API and checks the RTR on the wire: User-Name = RCS's
/// IMPI, Public-Identity = exactly `impus`, to the S-CSCF, answered 2001.
/// Returns how many messages the capture holds after the RTA.
/// With `cli`, through `sichss service unsubscribe` (its report line), else through the
/// API (`DELETE …/services/002`, its JSON).
fn unsubscribe_with_rtr(net: &Net, rcs: &Who, impus: &[String], cli: bool) -> usize {
    let mark = net
        .cx_wait(0, "RCS's SAA", |m| answered(m, SAR, &rcs.impi()))
        .len();
    if cli {
        let out = net.admin(&["service", "unsubscribe", "--imsi", rcs.imsi, "--sic", "002"]);
        assert!(
            out.contains(&format!(
                "RTR for service 002 to {SCSCF_HOST}: Result-Code 2001"
            )),
            "sichss service unsubscribe printed:\n{out}"
        );
    } else {
        let r = net.unsubscribe(rcs.imsi, "002");
        assert_eq!(r["removed"], true, "{r}");
        assert_eq!(r["rtr"]["sent"], true, "{r}");
        assert_eq!(r["rtr"]["destination"], SCSCF_HOST, "{r}");
        assert_eq!(r["rtr"]["result_code"], 2001, "rtr result: {r}");
    }
    let after = net.cx_wait(mark, "the RTA", |m| any_answered(m, RTR));
    let rtrs: Vec<&Cx> = after
        .iter()
        .filter(|m| m.request && m.command == RTR)
        .collect();
    assert_eq!(rtrs.len(), 1, "{}", listing(&after));
    let rtr = rtrs[0];
    assert!(!rtr.to_hss, "the RTR goes from the HSS to the S-CSCF");
    assert_eq!(rtr.user_name.as_deref(), Some(rcs.impi().as_str()));
    assert_eq!(set(&rtr.public_ids), set(impus), "{rtr:?}");
    assert_eq!(rtr.destination_host.as_deref(), Some(SCSCF_HOST));
    let rta = answer(&after, rtr).unwrap_or_else(|| panic!("no RTA:\n{}", listing(&after)));
    assert_eq!(rta.result_code, Some(2001));
    assert_eq!(rta.origin_host.as_deref(), Some(SCSCF_HOST));
    mark + after.len()
}

#[test]
fn unsubscribe_rcs_with_distinct_impu_sends_rtr_for_rcs_only() {
    let net = Net::start("aka");
    net.provision_c();
    let mut volte = net.hold(&C_VOLTE, free_udp());
    let mut rcs = net.hold(&C_RCS, free_udp());

    let mark = unsubscribe_with_rtr(&net, &C_RCS, &[C_RCS.impu(), C_RCS.tel()], false);
    let view = net.show(C_VOLTE.imsi);
    assert_eq!(service_state(&view, "002"), "ABSENT", "{view:#}");
    assert_eq!(service_state(&view, "001"), "REGISTERED", "{view:#}");

    // VoLTE's contact and state stay.
    assert_eq!(net.message(&C_VOLTE.impu(), "to VoLTE", &net.icscf()), 200);
    assert!(volte.received("to VoLTE", DELIVERY));
    // RCS's IMPU is unknown to the HSS now: the I-CSCF's LIR gets 5001 → 604.
    assert_eq!(net.message(&C_RCS.impu(), "to RCS", &net.icscf()), 604);
    let after = net.cx_wait(mark, "the LIA for RCS", |m| lir_answered(m, &C_RCS.impu()));
    let lir = after
        .iter()
        .find(|m| m.request && m.command == LIR && m.public_ids == [C_RCS.impu()])
        .unwrap();
    assert_eq!(answer(&after, lir).unwrap().experimental, Some(5001));
    assert!(!rcs.received("to RCS", Duration::from_secs(1)));

    // What the S-CSCF did with RCS's contact (measured, README): Kamailio 5.6.3 answers
    // the RTR 2001 but keeps the contact; a MESSAGE sent to the S-CSCF directly still
    // reaches the unsubscribed RCS phone until its registration expires.
    let contacts = net.scscf_contacts(&C_RCS.impu());
    let direct = net.message(&C_RCS.impu(), "direct to RCS", &net.scscf());
    let delivered = rcs.received("direct to RCS", DELIVERY);
    eprintln!(
        "distinct IMPU, after the RTR: S-CSCF lists {contacts:?} for RCS; direct MESSAGE \
         {direct}, delivered to RCS: {delivered}"
    );
    assert!(
        direct == 200 && delivered && contacts.len() == 1,
        "Kamailio's RTR handling differs from what the README documents for 5.6.3 \
         (contact kept): direct MESSAGE {direct}, delivered {delivered}, contacts \
         {contacts:?}; re-measure and update the README section"
    );
    // The HSS refuses the unsubscribed service from now on.
    let e = net.register_fails(&C_RCS, free_udp());
    assert_eq!(e["status"], 403, "{e}");
    drop(rcs); // its de-REGISTER would get 403 too
    volte.deregister();
}

/// RCS unsubscribed on the shared IMPU, with VoLTE registered first (`volte_first`) or
/// second. Kamailio 5.6.3 (measured, README): the RTR is answered 2001, both contacts stay
/// listed, and MESSAGEs to the IMPU then reach only the contact registered SECOND, whichever
/// service that is. sichss's own state: RCS gone, VoLTE REGISTERED.
fn shared_impu_rtr(volte_first: bool) {
    let net = Net::start("aka");
    let (mut volte, mut rcs) = if volte_first {
        let v = net.hold(&A_VOLTE, free_udp());
        (v, net.hold(&A_RCS, free_udp()))
    } else {
        let r = net.hold(&A_RCS, free_udp());
        (net.hold(&A_VOLTE, free_udp()), r)
    };
    // Both registered on the shared IMPU: a MESSAGE is forked to both contacts.
    assert_eq!(net.message(&A_RCS.impu(), "before", &net.icscf()), 200);
    assert!(rcs.received("before", DELIVERY));
    assert!(volte.received("before", DELIVERY));

    let _ = unsubscribe_with_rtr(&net, &A_RCS, &[A_RCS.impu(), A_RCS.tel()], true);
    let view = net.show(A_VOLTE.imsi);
    assert_eq!(service_state(&view, "002"), "ABSENT", "{view:#}");
    // sichss's own VoLTE state is untouched by RCS's RTR.
    assert_eq!(service_state(&view, "001"), "REGISTERED", "{view:#}");

    let contacts = net.scscf_contacts(&A_VOLTE.impu());
    assert_eq!(net.message(&A_VOLTE.impu(), "after", &net.icscf()), 200);
    let to_rcs = rcs.received("after", DELIVERY);
    let to_volte = volte.received("after", Duration::from_secs(2));
    let order = if volte_first {
        "VoLTE first"
    } else {
        "RCS first"
    };
    eprintln!(
        "shared IMPU ({order}), after the RTR for RCS: S-CSCF lists {contacts:?}; MESSAGE \
         delivered to RCS: {to_rcs}, to VoLTE: {to_volte}"
    );
    // The contact registered second keeps receiving, the first no longer does.
    let (want_rcs, want_volte) = (volte_first, !volte_first);
    assert!(
        to_rcs == want_rcs && to_volte == want_volte && contacts.len() == 2,
        "Kamailio's RTR handling on a shared IMPU ({order}) differs from what the README \
         documents for 5.6.3 (only the contact registered second is reached): RCS {to_rcs}, \
         VoLTE {to_volte}, contacts {contacts:?}; re-measure and update the README section"
    );
    // The HSS refuses the unsubscribed service from now on.
    let e = net.register_fails(&A_RCS, free_udp());
    assert_eq!(e["status"], 403, "{e}");
    drop(rcs);
    // VoLTE re-registers and so is reachable again; then de-registers.
    let mut volte2 = net.hold(&A_VOLTE, free_udp());
    assert_eq!(net.message(&A_VOLTE.impu(), "again", &net.icscf()), 200);
    assert!(volte2.received("again", DELIVERY));
    assert_eq!(net.state(A_VOLTE.imsi, "001"), "REGISTERED");
    volte2.deregister();
    drop(volte);
}

#[test]
fn unsubscribe_rcs_with_shared_impu_keeps_volte_registered() {
    shared_impu_rtr(true);
}

#[test]
fn unsubscribe_rcs_with_shared_impu_rcs_registered_first() {
    shared_impu_rtr(false);
}

// ---------------------------------------------------------------------------------------
// Scenario 5: an unsubscribed SIC is refused; the legacy subscriber uses its plain IMPI.

#[test]
fn unsubscribed_sic_gets_403_and_legacy_subscriber_registers_with_plain_impi() {
    let net = Net::start("aka");
    let e = net.register_fails(&A_SIC_003, free_udp());
    assert_eq!(e["status"], 403, "{e}");
    assert!(
        e["reason"].as_str().unwrap().contains("User Unknown"),
        "{e}"
    );
    let sic3 = A_SIC_003.impi();
    let cx = net.cx_wait(0, "the UAA for SIC 003", |m| answered(m, UAR, &sic3));
    let (_, uaa) = exchange(&cx, UAR, &sic3);
    assert_eq!(uaa.experimental, Some(5001), "DIAMETER_ERROR_USER_UNKNOWN");

    let lb = free_udp();
    let r = net.register(&B, lb);
    assert_eq!(
        r["impi"],
        "460011100600001@ims.mnc001.mcc460.3gppnetwork.org"
    );
    let cx = net.cx_wait(0, "B's SAA", |m| answered(m, SAR, &B.impi()));
    // Nothing but the UAR for SIC 003: no MAR, no SAR.
    assert!(requests(&cx, MAR, &sic3).is_empty() && requests(&cx, SAR, &sic3).is_empty());
    assert_registration(&cx, &B, 2001, "Digest-AKAv1-MD5", 1);
    assert_eq!(net.state(B.imsi, ""), "REGISTERED");
    let mark = cx.len();
    net.deregister(&B, lb);
    let after = net.cx_wait(mark, "B's SAR 5", |m| sar_answered(m, &B.impi(), 5));
    let sars = requests(&after, SAR, &B.impi());
    assert_eq!(sars.len(), 1, "{}", listing(&after));
    assert_eq!(sars[0].sat, Some(5));
    assert_eq!(net.state(B.imsi, ""), "NOT_REGISTERED");
}

// ---------------------------------------------------------------------------------------
// Scenario 6: restarts.

#[test]
fn kamailio_restart_reconnects_and_registration_works_again() {
    let mut net = Net::start("aka");
    let lv = free_udp();
    net.register(&A_VOLTE, lv);
    let mark = net
        .cx_wait(0, "VoLTE's SAA", |m| answered(m, SAR, &A_VOLTE.impi()))
        .len();
    net.stop_kamailio();
    let t0 = Instant::now();
    net.start_kamailio(); // exit 0 only once both CSCFs are connected again
    eprintln!("Kamailio restarted and reconnected in {:?}", t0.elapsed());
    let after = net.cx_wait(mark, "both CEAs", both_cers_answered);
    for host in ["icscf", "scscf"] {
        let origin = format!("{host}.{}", net::REALM);
        let cer = after
            .iter()
            .find(|m| m.request && m.command == CER && m.origin_host.as_deref() == Some(&origin))
            .unwrap_or_else(|| panic!("no new CER from {origin}"));
        assert_eq!(answer(&after, cer).unwrap().result_code, Some(2001));
    }
    // The S-CSCF lost its bindings; the HSS still has VoLTE registered: UAA 2002, then a
    // new SAR and 200.
    let mark = mark + after.len();
    net.register(&A_VOLTE, lv);
    let after = net.cx_wait(mark, "VoLTE's SAA", |m| answered(m, SAR, &A_VOLTE.impi()));
    let (_, uaa) = exchange(&after, UAR, &A_VOLTE.impi());
    assert_eq!(uaa.experimental, Some(2002), "{uaa:?}");
    let (sar, saa) = exchange(&after, SAR, &A_VOLTE.impi());
    assert_eq!(saa.result_code, Some(2001), "{sar:?} → {saa:?}");
    assert_eq!(net.state(A_VOLTE.imsi, "001"), "REGISTERED");
    net.deregister(&A_VOLTE, lv);
}

#[test]
fn sichss_restart_keeps_registered_state_and_the_cscfs_reconnect() {
    let mut net = Net::start("aka");
    let sqn = net.dir.join("usim.sqn");
    let sqn_arg = sqn.to_str().unwrap().to_owned();
    let lv = free_udp();
    let v = net.register_with(&A_VOLTE, lv, &["--sqn-file", &sqn_arg]);
    assert_eq!(v["impi"], A_VOLTE.impi());
    let mut rcs = net.hold(&A_RCS, free_udp());
    let before = net.show(A_VOLTE.imsi);

    let mark = net
        .cx_wait(0, "RCS's SAA", |m| answered(m, SAR, &A_RCS.impi()))
        .len();
    net.stop_hss();
    net.start_hss();
    let took = net.wait_cscfs_connected(Duration::from_secs(60));
    eprintln!("both CSCFs reconnected {took:?} after sichss restarted (--tc 5)");
    let after = net.cx_wait(mark, "both CEAs", both_cers_answered);
    let cers = after
        .iter()
        .filter(|m| m.request && m.command == CER)
        .count();
    assert_eq!(cers, 2, "a CER from each CSCF:\n{}", listing(&after));

    // The registered state survived, same S-CSCF.
    let view = net.show(A_VOLTE.imsi);
    for sic in ["001", "002"] {
        assert_eq!(service_state(&view, sic), "REGISTERED", "{view:#}");
    }
    assert_eq!(view["services"], before["services"]);
    // LIR is answered from the kept state; the MESSAGE reaches RCS.
    assert_eq!(
        net.message(&A_RCS.impu(), "after restart", &net.icscf()),
        200
    );
    assert!(rcs.received("after restart", DELIVERY));
    // AKA continues: the HSS's SQN was persisted, the USIM (same SQN file) needs no resync.
    let (s, ev) = net.register_events(&A_VOLTE, lv, &["--sqn-file", &sqn_arg]);
    assert!(s, "{ev:?}");
    assert!(find(&ev, "resync").is_none(), "no resync expected: {ev:?}");
    assert!(find(&ev, "registered").is_some(), "{ev:?}");
    rcs.deregister();
    net.deregister(&A_VOLTE, lv);
}
