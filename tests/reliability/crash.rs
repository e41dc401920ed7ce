//! Crash durability: `sichss serve` is killed with SIGKILL at a random moment while lanes
//! of S-CSCF traffic register and de-register services (MAR then SAR REGISTRATION, SAR
//! USER_DEREGISTRATION) as fast as the server answers. After each kill the store is opened
//! (the process is gone) and every service must be exactly as its last acknowledged SAR
//! left it (state and S-CSCF), or as the SAR in flight at the kill would have left it; the
//! stored SQN must be at least every SQN an acknowledged MAA carried. After each restart
//! every MAA's SQN (derived at the UE side from the AUTN with K/OPc, as tests/cx/mar.rs
//! does) must be above every SQN acknowledged before, and no SQN may ever repeat.
//!
//! Rounds: `SICHSS_CRASH_ROUNDS` (default 5); seed of the kill moments:
//! `SICHSS_CRASH_SEED` (default: random, printed).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use sichss::auth::{self, Key128, Milenage};
use sichss::bench::flows::{Identities, Requests, SICS};
use sichss::client::Client;
use sichss::codec::{codes, Avp, Message};
use sichss::demo;
use sichss::store::sled::SledStore;
use sichss::store::{RegState, SubscriberStore};

use super::common::*;

/// Registration of one service as the driver knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reg {
    NotRegistered,
    /// Registered, held by this S-CSCF (Server-Name).
    Registered(String),
}

#[derive(Debug, Clone)]
struct ServiceTruth {
    /// As the last acknowledged SAR left it.
    acked: Reg,
    /// What the SAR in flight would make it (sent, no answer yet).
    pending: Option<Reg>,
}

/// One subscriber as the driver knows it; owned by one lane at a time.
#[derive(Debug, Clone)]
struct Member {
    imsi: String,
    ids: Identities,
    services: [ServiceTruth; 2],
    /// Every SQN an acknowledged MAA carried (all rounds).
    sqns: Vec<u64>,
    /// Highest SEQ acknowledged before the current server start.
    seq_floor: Option<u64>,
    next_service: usize,
}

#[derive(Debug, Default)]
struct Tally {
    sar_acked: u64,
    maa_acked: u64,
    /// MAAs checked against SQNs from before a restart.
    sqn_after_restart: u64,
    /// An MAA whose SQN repeats one handed out before, or is not above the floor.
    sqn_violations: Vec<String>,
    /// Answers other than the expected success.
    wrong: Vec<String>,
}

fn usim() -> Milenage {
    Milenage::with_opc(
        &Key128::from_hex("K", demo::K).unwrap(),
        &Key128::from_hex("OPc", demo::OPC).unwrap(),
    )
}

/// The SQN of an MAA's first vector, as the UE derives it from the AUTN.
fn sqn_of(maa: &Message) -> Option<u64> {
    let item = maa.find(codes::SIP_AUTH_DATA_ITEM)?;
    let sa = item.find(codes::SIP_AUTHENTICATE).and_then(Avp::as_bytes)?;
    let rand: [u8; 16] = sa.get(..16)?.try_into().ok()?;
    let autn: [u8; 16] = sa.get(16..32)?.try_into().ok()?;
    let (sqn, _, _, _) = auth::ue_check_autn(&usim(), &rand, &autn).ok()?;
    Some(sqn)
}

fn with_server_name(mut m: Message, name: &str) -> Message {
    for a in &mut m.avps {
        if a.is(codes::SERVER_NAME) {
            *a = Avp::utf8(codes::SERVER_NAME, name);
        }
    }
    m
}

fn rc(a: &Message) -> Option<u32> {
    a.result_code().map(|r| r.0)
}

/// Drives `members` until `stop` or until the connection fails; returns them updated.
async fn lane(
    client: Client,
    mut members: Vec<Member>,
    lane_no: usize,
    round: usize,
    stop: Arc<AtomicBool>,
) -> (Vec<Member>, Tally) {
    let mut t = Tally::default();
    let req = Requests::new(&client.config().origin_host, REALM, lane_no);
    let mut k = 0u64;
    'run: while !stop.load(Ordering::Relaxed) {
        for m in members.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                break 'run;
            }
            let s = m.next_service;
            m.next_service = 1 - s;
            match m.services[s].acked.clone() {
                Reg::Registered(name) => {
                    let sar = with_server_name(req.sar_deregistration(&m.ids, s), &name);
                    m.services[s].pending = Some(Reg::NotRegistered);
                    match client.request(sar).await {
                        Ok(a) if rc(&a) == Some(2001) => {
                            m.services[s] = ServiceTruth {
                                acked: Reg::NotRegistered,
                                pending: None,
                            };
                            t.sar_acked += 1;
                        }
                        Ok(a) => {
                            t.wrong
                                .push(format!("SAR dereg {}: {:?}", m.imsi, a.result_code()));
                            m.services[s].pending = None;
                        }
                        Err(_) => break 'run,
                    }
                }
                Reg::NotRegistered => {
                    // Both services of a subscriber are held by one S-CSCF at a time.
                    let name = match &m.services[1 - s].acked {
                        Reg::Registered(n) => n.clone(),
                        Reg::NotRegistered => {
                            k += 1;
                            format!("sip:scscf-{round}-{lane_no}-{k}.crash.invalid:6060")
                        }
                    };
                    let mar = with_server_name(req.mar(&m.ids, s), &name);
                    match client.request(mar).await {
                        Ok(a) if rc(&a) == Some(2001) => {
                            t.maa_acked += 1;
                            match sqn_of(&a) {
                                Some(sqn) => {
                                    if m.sqns.contains(&sqn) {
                                        t.sqn_violations.push(format!(
                                            "{}: SQN {sqn:#x} handed out twice",
                                            m.imsi
                                        ));
                                    }
                                    if let Some(floor) = m.seq_floor.take() {
                                        t.sqn_after_restart += 1;
                                        if auth::sqn::seq(sqn) <= floor {
                                            t.sqn_violations.push(format!(
                                                "{}: SQN {sqn:#x} after restart is not above SEQ {floor}",
                                                m.imsi
                                            ));
                                        }
                                    }
                                    m.sqns.push(sqn);
                                }
                                None => t.wrong.push(format!("MAA {}: no valid AUTN", m.imsi)),
                            }
                        }
                        Ok(a) => {
                            t.wrong
                                .push(format!("MAR {}: {:?}", m.imsi, a.result_code()));
                            continue;
                        }
                        Err(_) => break 'run,
                    }
                    let sar = with_server_name(req.sar_registration(&m.ids, s), &name);
                    m.services[s].pending = Some(Reg::Registered(name.clone()));
                    match client.request(sar).await {
                        Ok(a) if rc(&a) == Some(2001) => {
                            m.services[s] = ServiceTruth {
                                acked: Reg::Registered(name),
                                pending: None,
                            };
                            t.sar_acked += 1;
                        }
                        Ok(a) => {
                            t.wrong
                                .push(format!("SAR reg {}: {:?}", m.imsi, a.result_code()));
                            m.services[s].pending = None;
                        }
                        Err(_) => break 'run,
                    }
                }
            }
        }
    }
    (members, t)
}

/// What the store holds for one service's SIP IMPU.
fn stored_reg(sub: &sichss::store::Subscriber, s: usize, impu: &str) -> Result<Reg, String> {
    let svc = sub
        .services
        .get(SICS[s])
        .ok_or_else(|| format!("service {} missing", SICS[s]))?;
    let reg = svc
        .registrations
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(impu))
        .map(|(_, r)| r);
    match reg {
        None => Ok(Reg::NotRegistered),
        Some(r) => match r.state {
            RegState::NotRegistered => Ok(Reg::NotRegistered),
            RegState::Registered => Ok(Reg::Registered(
                r.scscf
                    .as_ref()
                    .map(|a| a.server_name.clone())
                    .unwrap_or_default(),
            )),
            RegState::Unregistered => Err("UNREGISTERED".into()),
        },
    }
}

#[derive(Debug, Default)]
struct Verified {
    services_checked: u64,
    in_flight_applied: u64,
    lost: Vec<String>,
    sqn_lost: Vec<String>,
}

/// Opens the store of the dead server and checks every member against what was
/// acknowledged; afterwards the members hold the store's (verified) state.
async fn verify(data: &std::path::Path, members: &mut [Member]) -> Verified {
    let store = SledStore::open(data).expect("the store opens after SIGKILL");
    let mut v = Verified::default();
    for m in members.iter_mut() {
        let sub = store.get(&m.imsi).await.unwrap().expect("subscriber kept");
        for (s, truth) in m.services.iter_mut().enumerate() {
            v.services_checked += 1;
            match stored_reg(&sub, s, &m.ids.sip) {
                Ok(got) if got == truth.acked => {}
                Ok(got) if truth.pending.as_ref() == Some(&got) => v.in_flight_applied += 1,
                got => v.lost.push(format!(
                    "{} service {}: stored {got:?}, acknowledged {:?} (in flight {:?})",
                    m.imsi, SICS[s], truth.acked, truth.pending
                )),
            }
            if let Ok(got) = stored_reg(&sub, s, &m.ids.sip) {
                *truth = ServiceTruth {
                    acked: got,
                    pending: None,
                };
            }
        }
        let stored_sqn = sub.aka.as_ref().map_or(0, |a| a.sqn);
        if let Some(max) = m.sqns.iter().map(|&q| auth::sqn::seq(q)).max() {
            if auth::sqn::seq(stored_sqn) < max {
                v.sqn_lost.push(format!(
                    "{}: stored SQN SEQ {} below acknowledged SEQ {max}",
                    m.imsi,
                    auth::sqn::seq(stored_sqn)
                ));
            }
            m.seq_floor = Some(max);
        }
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_registrations_and_sqns_survive_sigkill() {
    let _heavy = heavy().await;
    let rounds: usize = env_or("SICHSS_CRASH_ROUNDS", 5);
    let seed: u64 = env_or("SICHSS_CRASH_SEED", rand::random::<u64>());
    let members_n: u64 = env_or("SICHSS_CRASH_SUBSCRIBERS", 64);
    let lanes_n: usize = 16;
    let conns_n: usize = 4;
    println!("crash: rounds={rounds} seed={seed} (SICHSS_CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pop = populate(&data, members_n).await;
    let mut members: Vec<Member> = (0..members_n)
        .map(|i| {
            let ids = ids(&pop, i);
            Member {
                imsi: ids.imsi.clone(),
                ids,
                services: std::array::from_fn(|_| ServiceTruth {
                    acked: Reg::NotRegistered,
                    pending: None,
                }),
                sqns: Vec::new(),
                seq_floor: None,
                next_service: 0,
            }
        })
        .collect();

    let mut total = Tally::default();
    let mut checked = 0u64;
    let mut in_flight_applied = 0u64;
    let mut lost = Vec::new();
    let mut sqn_lost = Vec::new();
    let mut seen_sqns: HashSet<(String, u64)> = HashSet::new();
    bounded(60 + 30 * rounds as u64, async {
        for round in 0..=rounds {
            let mut hss = Serve::start(&data, "");
            let mut clients = Vec::new();
            for c in 0..conns_n {
                clients.push(hss.client(&format!("scscf{c}.crash.test")).await);
            }
            let stop = Arc::new(AtomicBool::new(false));
            // Hand each lane its members (member i goes to lane i mod lanes).
            let mut per_lane: Vec<Vec<Member>> = vec![Vec::new(); lanes_n];
            for (i, m) in members.drain(..).enumerate() {
                per_lane[i % lanes_n].push(m);
            }
            let mut tasks = Vec::new();
            for (l, ms) in per_lane.into_iter().enumerate() {
                tasks.push(tokio::spawn(lane(
                    clients[l % conns_n].clone(),
                    ms,
                    l,
                    round,
                    Arc::clone(&stop),
                )));
            }
            if round < rounds {
                let after = Duration::from_millis(rng.gen_range(200..1200));
                tokio::time::sleep(after).await;
                hss.kill();
            } else {
                // The last start only checks SQNs after the last restart: one MAR each.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                stop.store(true, Ordering::Relaxed);
            }
            let mut round_tally = Tally::default();
            for t in tasks {
                let (ms, tally) = t.await.unwrap();
                members.extend(ms);
                round_tally.sar_acked += tally.sar_acked;
                round_tally.maa_acked += tally.maa_acked;
                round_tally.sqn_after_restart += tally.sqn_after_restart;
                round_tally.sqn_violations.extend(tally.sqn_violations);
                round_tally.wrong.extend(tally.wrong);
            }
            members.sort_by(|a, b| a.imsi.cmp(&b.imsi));
            for c in &clients {
                let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
            }
            hss.kill();
            let v = verify(&data, &mut members).await;
            println!(
                "crash round {round}: SAR acked {}, MAA acked {}, MAA checked after restart {}, \
                 services checked {}, in-flight SAR applied {}, lost {}, SQN lost {}, SQN repeats/regressions {}",
                round_tally.sar_acked,
                round_tally.maa_acked,
                round_tally.sqn_after_restart,
                v.services_checked,
                v.in_flight_applied,
                v.lost.len(),
                v.sqn_lost.len(),
                round_tally.sqn_violations.len()
            );
            total.sar_acked += round_tally.sar_acked;
            total.maa_acked += round_tally.maa_acked;
            total.sqn_after_restart += round_tally.sqn_after_restart;
            total.sqn_violations.extend(round_tally.sqn_violations);
            total.wrong.extend(round_tally.wrong);
            checked += v.services_checked;
            in_flight_applied += v.in_flight_applied;
            lost.extend(v.lost);
            sqn_lost.extend(v.sqn_lost);
        }
    })
    .await;
    for m in &members {
        for &q in &m.sqns {
            assert!(
                seen_sqns.insert((m.imsi.clone(), q)),
                "SQN {q:#x} of {} handed out twice",
                m.imsi
            );
        }
    }
    println!(
        "crash total: kills {rounds}, SAR acked {}, MAA acked {}, SQNs checked after a restart {}, \
         service states checked {checked}, in-flight SARs found applied {in_flight_applied}, \
         lost {}, SQN lost {}, SQN repeats/regressions {}, wrong answers {}",
        total.sar_acked,
        total.maa_acked,
        total.sqn_after_restart,
        lost.len(),
        sqn_lost.len(),
        total.sqn_violations.len(),
        total.wrong.len()
    );
    assert!(total.sar_acked > 0 && total.maa_acked > 0, "no traffic");
    assert!(
        total.sqn_after_restart > 0,
        "no MAR was checked after a restart"
    );
    assert!(
        lost.is_empty(),
        "acknowledged registrations lost: {lost:#?}"
    );
    assert!(sqn_lost.is_empty(), "acknowledged SQNs lost: {sqn_lost:#?}");
    assert!(
        total.sqn_violations.is_empty(),
        "SQNs repeated: {:#?}",
        total.sqn_violations
    );
    assert!(total.wrong.is_empty(), "wrong answers: {:#?}", total.wrong);
}
