//! The load generator and the client over real TCP on loopback: small bench runs against
//! the null server (the HSS's peer layer with fixed answers) and against a real
//! `sichss serve` process; the client's pipelining and watchdog handling against the
//! server module. No timing assertions: only counts, results and orderings.

use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use sichss::app::{Application, PeerInfo};
use sichss::bench::null::{NullApp, NullServer};
use sichss::bench::{self, BenchArgs, Report, Scenario, DEFAULT_REALM};
use sichss::client::{Client, ClientConfig};
use sichss::codec::{codes, ExperimentalResultCode, Message};
use sichss::dict::Dictionary;
use sichss::peer::LocalIdentity;
use sichss::server::{Peers, Server, ServerConfig};

#[path = "common/serve.rs"]
mod serve_process;

fn loopback0() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// 2 connections × 4 in flight, 1 s, 50 subscribers, no progress lines.
fn small(to: SocketAddr, scenario: Scenario) -> BenchArgs {
    let mut a = BenchArgs::to(to.to_string());
    a.connections = 2;
    a.window = 4;
    a.subscribers = 50;
    a.duration = Some(Duration::from_secs(1));
    a.scenario = scenario;
    a.quiet = true;
    a.timeout = Duration::from_secs(10);
    a
}

/// Bounds every test: a hang fails instead of stalling CI.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("finished in time")
}

fn assert_sane(r: &Report, commands: &[&str]) {
    assert_eq!(r.errors_total, 0, "errors: {:?}", r.errors);
    assert!(r.errors.is_empty());
    assert!(r.requests > 0);
    let sum: u64 = r.commands.values().map(|c| c.count).sum();
    assert_eq!(sum, r.requests, "per-command counts add up");
    for name in commands {
        assert!(r.commands[*name].count > 0, "{name} was sent: {r:?}");
    }
    for (name, c) in &r.commands {
        let l = c.latency_us;
        assert!(
            l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max,
            "{name} percentiles ordered: {l:?}"
        );
    }
    let l = r.latency_us;
    assert!(l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999);
    assert!(r.requests_per_s > 0.0);
    assert!(r.elapsed_s >= 1.0);
    let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
    assert_eq!(v["schema"], "sichss-bench/1");
    assert_eq!(v["requests"], r.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_run_against_the_null_server_gets_only_correct_answers() {
    bounded(async {
        let null = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
        let r = bench::run(small(null.local_addr(), Scenario::Mixed))
            .await
            .unwrap();
        assert_sane(&r, &["UAR", "MAR", "SAR", "LIR"]);
        assert_eq!(r.mode, "load");
        assert_eq!(r.scenario, "mixed");
        let setup = r
            .setup
            .as_ref()
            .expect("mixed registers every service first");
        assert_eq!(setup.errors_total, 0);
        assert_eq!(setup.requests, 50 * 2 * 3, "UAR, MAR, SAR per service");
        let answered: u64 = null.app().answered().iter().sum();
        assert!(answered >= r.requests + setup.requests);
        assert_eq!(
            null.app().answered()[4],
            0,
            "no request the null app does not know"
        );
        null.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_run_drives_whole_registration_flows() {
    bounded(async {
        let null = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
        let r = bench::run(small(null.local_addr(), Scenario::Register))
            .await
            .unwrap();
        assert_sane(&r, &["UAR", "MAR", "SAR"]);
        assert_eq!(r.commands["LIR"].count, 0);
        assert!(r.registrations > 0);
        assert!(r.setup.is_none());
        // Every registration flow has one MAR; de-registrations have none.
        assert!(r.commands["MAR"].count >= r.registrations);
        null.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reregister_run_refreshes_and_locates_registered_services() {
    bounded(async {
        let null = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
        let r = bench::run(small(null.local_addr(), Scenario::Reregister))
            .await
            .unwrap();
        assert_sane(&r, &["SAR", "LIR"]);
        assert_eq!(
            r.commands["MAR"].count, 0,
            "registered in setup, not in the run"
        );
        assert_eq!(r.registrations, 0);
        null.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_run_sends_no_more_than_the_rate_allows() {
    bounded(async {
        let null = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
        let mut args = small(null.local_addr(), Scenario::Reregister);
        args.rate = Some(300);
        let r = bench::run(args).await.unwrap();
        assert_sane(&r, &["SAR", "LIR"]);
        assert_eq!(r.rate, Some(300));
        // One slot every 1/300 s from the start; the run ends with the flows under way.
        let bound = (300.0 * r.elapsed_s).ceil() as u64 + 1;
        assert!(r.requests <= bound, "{} requests > {bound}", r.requests);
        null.stop().await;
    })
    .await
}

/// The null application, except that every SAR gets 5001 DIAMETER_ERROR_USER_UNKNOWN.
struct WrongSar(NullApp);

impl Application for WrongSar {
    fn application_ids(&self) -> &[u32] {
        &[16777216]
    }

    async fn handle(&self, req: Message, peer: &PeerInfo) -> Message {
        if req.header.command == sichss::codec::CommandCode::SERVER_ASSIGNMENT {
            let mut a = Message::answer_to(&req);
            a.set_experimental(ExperimentalResultCode::DIAMETER_ERROR_USER_UNKNOWN);
            a.push(sichss::codec::Avp::enumerated(codes::AUTH_SESSION_STATE, 1));
            a.push(sichss::codec::Avp::identity(
                codes::ORIGIN_HOST,
                "wrong.test",
            ));
            a.push(sichss::codec::Avp::identity(
                codes::ORIGIN_REALM,
                DEFAULT_REALM,
            ));
            return a;
        }
        self.0.handle(req, peer).await
    }
}

async fn server<A: Application>(
    app: A,
    tw: Option<Duration>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut cfg = ServerConfig::new(LocalIdentity::new("hss.test", DEFAULT_REALM));
    cfg.listen = vec![loopback0()];
    if let Some(tw) = tw {
        cfg.watchdog_tw = tw;
    }
    let s = Server::bind(
        cfg,
        Arc::new(app),
        Arc::new(Dictionary::with_builtin()),
        Peers::new(),
    )
    .await
    .unwrap();
    let addr = s.local_addrs()[0];
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(s.serve(async move {
        let _ = rx.await;
    }));
    (addr, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_wrong_answers_by_command_and_result() {
    bounded(async {
        let (addr, _stop) = server(WrongSar(NullApp::new("hss.test", DEFAULT_REALM)), None).await;
        let r = bench::run(small(addr, Scenario::Register)).await.unwrap();
        assert!(r.errors_total > 0);
        assert_eq!(r.registrations, 0, "no flow completes without its SAA");
        assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
        assert_eq!(r.errors[0].command, "SAR");
        assert_eq!(r.errors[0].result, "exp 5001");
        assert_eq!(r.errors[0].count, r.errors_total);
        assert_eq!(r.commands["SAR"].count, r.errors_total, "every SAR counted");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_pipelines_many_requests_on_one_connection_to_the_server() {
    bounded(async {
        let null = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
        let c = Client::connect(
            null.local_addr(),
            ClientConfig::new("bench-pipe.test", DEFAULT_REALM),
        )
        .await
        .unwrap();
        assert_eq!(c.peer().0, sichss::bench::null::origin_host(DEFAULT_REALM));
        let pop = sichss::bench::flows::Population::new("001010000000000", 1).unwrap();
        let id = pop.identities(0).unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let c = c.clone();
            let r = sichss::bench::flows::Requests::new("bench-pipe.test", DEFAULT_REALM, i);
            let req = r.lir(&id.sip);
            tasks.push(tokio::spawn(async move {
                let sid = req.session_id().unwrap().to_owned();
                let a = c.request(req).await.unwrap();
                assert_eq!(a.session_id(), Some(sid.as_str()));
                assert_eq!(a.result_code().map(|r| r.0), Some(2001));
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(c.in_flight(), 0);
        assert_eq!(null.app().answered()[3], 200);
        c.close().await.unwrap();
        null.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_answers_the_servers_watchdog_so_an_idle_connection_stays_open() {
    bounded(async {
        // Tw = 200 ms: an unanswered DWR would close the connection after 400 ms.
        let tw = Duration::from_millis(200);
        let (addr, _stop) = server(NullApp::new("hss.test", DEFAULT_REALM), Some(tw)).await;
        let c = Client::connect(addr, ClientConfig::new("bench-idle.test", DEFAULT_REALM))
            .await
            .unwrap();
        tokio::time::sleep(tw * 6).await;
        assert!(!c.is_closed(), "the server kept the idle connection");
        let r = sichss::bench::flows::Requests::new("bench-idle.test", DEFAULT_REALM, 0);
        let a = c.request(r.lir("tel:+99010000000000")).await.unwrap();
        assert_eq!(a.result_code().map(|r| r.0), Some(2001));
        c.close().await.unwrap();
    })
    .await
}

/// A `sichss serve` process on ephemeral ports, killed on drop.
struct Serve {
    child: Child,
    diameter: SocketAddr,
    api: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_serve() -> Serve {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = serve_process::command();
    cmd.arg("--data")
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    let (child, ready) = serve_process::spawn(&mut cmd, Duration::from_secs(30), None);
    Serve {
        child,
        diameter: ready.diameter,
        api: ready.api,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_run_against_sichss_serve_gets_no_wrong_answer() {
    let hss = start_serve();
    bounded(async {
        let mut args = small(hss.diameter, Scenario::Mixed);
        args.subscribers = 20;
        args.provision_api = Some(format!("http://{}", hss.api));
        args.import_batch = 8;
        args.server_pid = Some(hss.child.id());
        let r = bench::run(args).await.unwrap();
        let p = r.provisioning.as_ref().expect("imported through the API");
        assert_eq!(p.subscribers, 20);
        assert_eq!(p.batches, 3);
        let setup = r.setup.as_ref().unwrap();
        assert_eq!(setup.errors_total, 0, "setup errors: {:?}", setup.errors);
        assert_sane(&r, &["SAR", "LIR"]);
        let s = r.server.as_ref().expect("the server's /proc figures");
        assert_eq!(s.pid, hss.child.id());
        assert!(s.rss_peak_kib >= s.rss_kib && s.rss_kib > 0);

        // A second run on the same store, registering from whatever state the first left.
        let mut args = small(hss.diameter, Scenario::Register);
        args.subscribers = 20;
        let r = bench::run(args).await.unwrap();
        assert_sane(&r, &["UAR", "MAR", "SAR"]);
        assert!(r.registrations > 0);
    })
    .await
}

/// `sichss bench …` as a user runs it, against a null server in this process.
fn bench_command(to: SocketAddr, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sichss"))
        .args(["bench", "--to", &to.to_string()])
        .args(["--connections", "2", "--window", "4", "--subscribers", "20"])
        .args([
            "--duration",
            "1s",
            "--scenario",
            "reregister",
            "--rate",
            "500",
        ])
        .args(["--json", "--quiet"])
        .args(extra)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_generator_runs_on_as_many_threads_as_asked_and_reports_them() {
    let null = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
    let to = null.local_addr();
    let (one, two) = tokio::task::spawn_blocking(move || {
        (
            bench_command(to, &["--threads", "1"]),
            bench_command(to, &["--threads", "2"]),
        )
    })
    .await
    .unwrap();
    for (out, threads) in [(one, 1), (two, 2)] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["client"]["threads"], threads);
        assert_eq!(v["errors_total"], 0, "{v}");
        assert!(v["commands"]["SAR"]["count"].as_u64().unwrap() > 0);
    }
    null.stop().await;
}

#[test]
fn a_thread_count_out_of_range_is_refused_naming_the_flag() {
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    for bad in ["0", "257", "many"] {
        let out = bench_command(to, &["--threads", bad]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--threads"), "{bad}: {err}");
        assert!(out.stdout.is_empty(), "no run: {bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_run_drives_the_null_server_and_the_hss_in_turns_and_gives_their_ratio() {
    let hss = start_serve();
    let null = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
    bounded(async {
        let mut args = small(hss.diameter, Scenario::Mixed);
        args.subscribers = 20;
        args.provision_api = Some(format!("http://{}", hss.api));
        args.import_batch = 20;
        args.duration = Some(Duration::from_millis(1500));
        args.slice = Duration::from_millis(500);
        args.baseline = Some(null.local_addr().to_string());
        let r = bench::run(args).await.unwrap();
        assert_sane(&r, &["SAR", "LIR"]);
        let b = r.baseline.as_ref().expect("the null server's figures");
        assert_eq!(b.target, null.local_addr().to_string());
        assert_eq!(b.errors_total, 0);
        assert!(b.requests > 0 && b.requests_per_s > 0.0);
        // Every answer the null server gave in its turns is counted there, not in the HSS's.
        let answered: u64 = null.app().answered().iter().sum();
        let setup = r.setup.as_ref().unwrap().requests;
        assert_eq!(
            answered,
            b.requests + setup,
            "setup on both, then its turns"
        );
        let ratio = r.requests_per_s / b.requests_per_s;
        assert!(
            (ratio - b.ratio).abs() < 0.01,
            "{ratio} against {}",
            b.ratio
        );
        // Three turns each of 500 ms: the HSS's share of the run is its own.
        assert!(r.elapsed_s >= 1.5, "{}", r.elapsed_s);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["baseline"]["requests"], b.requests);
        assert!(r.to_text().contains("HSS/null"));
    })
    .await;
    null.stop().await;
}

#[test]
fn a_baseline_cannot_be_paced_and_its_turns_must_last() {
    let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
    // `bench_command` paces at 500/s: --baseline conflicts with --rate.
    let out = bench_command(to, &["--baseline", "127.0.0.1:9"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--baseline") && err.contains("--rate"),
        "{err}"
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sichss"))
        .args(["bench", "--to", "127.0.0.1:9", "--baseline", "127.0.0.1:9"])
        .args(["--slice", "0s", "--quiet"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--slice"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_baseline_run_whose_hss_goes_away_still_ends_after_its_turns() {
    // Two null servers: the second stands in for an HSS that shuts down mid-run.
    let null = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
    let hss = NullServer::start(loopback0(), DEFAULT_REALM).await.unwrap();
    let mut args = small(hss.local_addr(), Scenario::Reregister);
    args.duration = Some(Duration::from_secs(2));
    args.slice = Duration::from_millis(250);
    args.baseline = Some(null.local_addr().to_string());
    let run = tokio::spawn(bench::run(args));
    tokio::time::sleep(Duration::from_millis(600)).await;
    hss.stop().await;
    let r = bounded(run).await.unwrap().unwrap();
    // The HSS's lanes found their connections closed, turn after turn, and the run went on
    // with the null server's turns until all were done.
    assert!(r.errors_total > 0, "closed connections are counted");
    assert!(
        r.errors.iter().all(|e| e.result == "connection closed"),
        "{:?}",
        r.errors
    );
    let b = r.baseline.as_ref().unwrap();
    assert_eq!(b.errors_total, 0);
    assert!(b.requests > 0);
    null.stop().await;
}
