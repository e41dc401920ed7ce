//! End-to-end scenarios against a running `sichss serve`.

use std::process::Command;
use std::time::Duration;

use sichss::codec::{codes, Avp, CommandCode, ResultCode};
use sichss::demo;

use super::process::*;

/// Bounds every scenario in time.
async fn bounded<F: std::future::Future<Output = T>, T>(f: F) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("scenario finished within 60 s")
}

#[tokio::test]
async fn registers_both_services_over_tcp_and_reports_them_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start(&dir.path().join("data"), &[]);
    bounded(async {
        let (c, _rx) = hss.scscf().await;
        register(&c, &demo::impi_a("001"), &sip_a(), 1).await;
        register(&c, &demo::impi_a("002"), &sip_a(), 2).await;
        let view = hss.get_json(&format!("/subscribers/{}", demo::IMSI_A));
        assert_eq!(service_state(&view, "001"), "REGISTERED");
        assert_eq!(service_state(&view, "002"), "REGISTERED");
        let scscf = view["services"][0]["scscf"].as_str().unwrap();
        assert_eq!(scscf, SCSCF);
        let text = view.to_string();
        for secret in [demo::K, demo::OPC, demo::PASSWORD] {
            assert!(!text.contains(secret), "the view leaks a secret");
        }
        // De-register VoLTE: RCS stays, the shared IMPU is still routed.
        let a = c
            .request(sar(&demo::impi_a("001"), &sip_a(), 5))
            .await
            .unwrap();
        assert_eq!(result(&a), ("rc", 2001));
        let view = hss.get_json(&format!("/subscribers/{}", demo::IMSI_A));
        assert_eq!(service_state(&view, "001"), "NOT_REGISTERED");
        assert_eq!(service_state(&view, "002"), "REGISTERED");
        let a = c.request(lir(&sip_a())).await.unwrap();
        assert_eq!(a.str(codes::SERVER_NAME), Some(SCSCF));
        c.close().await.unwrap();
    })
    .await;
    let metrics = ureq::get(&hss.url("/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains("sichss_cx_requests_total{command=\"SAR\""),
        "{metrics}"
    );
    assert!(hss.stop().success());
}

#[tokio::test]
async fn unsubscribing_a_registered_service_sends_rtr_for_that_service_only() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start(&dir.path().join("data"), &[]);
    bounded(async {
        let (c, mut rx) = hss.scscf().await;
        register(&c, &demo::impi_a("001"), &sip_a(), 1).await;
        register(&c, &demo::impi_a("002"), &sip_a(), 2).await;
        // The S-CSCF side: answer the RTR with 2001 and keep it for inspection.
        let seen = tokio::spawn(async move {
            let req = rx.recv().await.expect("an RTR arrives");
            let rtr = req.request.clone();
            let ans = req.answer_with(ResultCode::DIAMETER_SUCCESS);
            req.answer(ans).await.unwrap();
            rtr
        });
        let url = hss.url(&format!("/subscribers/{}/services/002", demo::IMSI_A));
        let body: serde_json::Value = tokio::task::spawn_blocking(move || {
            ureq::delete(&url).call().unwrap().into_json().unwrap()
        })
        .await
        .unwrap();
        let rtr = seen.await.unwrap();
        assert_eq!(rtr.header.command, CommandCode::REGISTRATION_TERMINATION);
        assert!(rtr.header.is_request() && rtr.header.is_proxiable());
        assert_eq!(
            rtr.str(codes::USER_NAME),
            Some(demo::impi_a("002").as_str())
        );
        assert_eq!(rtr.str(codes::DESTINATION_HOST), Some(SCSCF_HOST));
        let impus: Vec<&str> = rtr
            .find_all(codes::PUBLIC_IDENTITY)
            .filter_map(Avp::as_str)
            .collect();
        assert!(impus.contains(&sip_a().as_str()), "{impus:?}");
        let reason = rtr
            .find(codes::DEREGISTRATION_REASON)
            .and_then(|d| d.find(codes::REASON_CODE))
            .and_then(Avp::as_i32);
        assert_eq!(reason, Some(0), "PERMANENT_TERMINATION");
        assert_eq!(body["rtr"]["result_code"], 2001, "{body}");

        let view = hss.get_json(&format!("/subscribers/{}", demo::IMSI_A));
        assert_eq!(service_state(&view, "002"), "ABSENT");
        assert_eq!(service_state(&view, "001"), "REGISTERED", "VoLTE untouched");
        // The RCS IMPI is now an unsubscribed SIC.
        let a = c
            .request(uar(&demo::impi_a("002"), &sip_a(), 0))
            .await
            .unwrap();
        assert_eq!(result(&a), ("exp", 5001));
    })
    .await;
    assert!(hss.stop().success());
}

#[tokio::test]
async fn registered_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hss = Hss::start(&data, &[]);
    bounded(async {
        let (c, _rx) = hss.scscf().await;
        register(&c, &demo::impi_a("002"), &sip_a(), 1).await;
        c.close().await.unwrap();
    })
    .await;
    assert!(hss.stop().success());
    let hss = Hss::start(&data, &[]);
    let view = hss.get_json(&format!("/subscribers/{}", demo::IMSI_A));
    assert_eq!(service_state(&view, "002"), "REGISTERED");
    assert_eq!(service_state(&view, "001"), "NOT_REGISTERED");
    bounded(async {
        let (c, _rx) = hss.scscf().await;
        let a = c.request(lir(&sip_a())).await.unwrap();
        assert_eq!(a.str(codes::SERVER_NAME), Some(SCSCF));
    })
    .await;
    assert!(hss.stop().success());
}

#[tokio::test]
async fn answers_pipelined_requests_from_several_connections() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start(&dir.path().join("data"), &[]);
    bounded(async {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let (c, _rx) = hss.scscf().await;
            tasks.push(tokio::spawn(async move {
                let mut inflight = Vec::new();
                for i in 0..50 {
                    let c = c.clone();
                    let sic = if i % 2 == 0 { "001" } else { "002" };
                    inflight.push(tokio::spawn(async move {
                        c.request(uar(&demo::impi_a(sic), &sip_a(), 0))
                            .await
                            .unwrap()
                    }));
                }
                for t in inflight {
                    let a = t.await.unwrap();
                    assert_eq!(result(&a), ("exp", 2001));
                }
                c.close().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    assert!(hss.stop().success());
}

#[tokio::test]
async fn refuses_a_second_server_on_the_same_store_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hss = Hss::start(&data, &[]);
    let out = crate::serve_process::command()
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot open the store") && err.contains("--data"),
        "{err}"
    );
    assert!(hss.stop().success());
}

#[tokio::test]
async fn refuses_api_beyond_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sichss"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
            "--data",
        ])
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--admin-token"), "{err}");
}

#[tokio::test]
async fn tshark_dissects_every_message_the_server_sent() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start(&dir.path().join("data"), &[]);
    let cap = Capture::start(dir.path(), hss.diameter.port());
    bounded(async {
        let (c, mut rx) = hss.scscf().await;
        register(&c, &demo::impi_a("001"), &sip_a(), 1).await;
        register(&c, &demo::impi_a("002"), &sip_a(), 2).await;
        c.request(lir(&sip_a())).await.unwrap();
        c.request(uar("nobody@example.org", &sip_a(), 0))
            .await
            .unwrap();
        c.watchdog().await.unwrap();
        let answerer = tokio::spawn(async move {
            let req = rx.recv().await.unwrap();
            let a = req.answer_with(ResultCode::DIAMETER_SUCCESS);
            req.answer(a).await.unwrap();
        });
        let url = hss.url(&format!(
            "/subscribers/{}/services/001/deregister",
            demo::IMSI_A
        ));
        tokio::task::spawn_blocking(move || ureq::post(&url).call().unwrap())
            .await
            .unwrap();
        answerer.await.unwrap();
        c.close().await.unwrap();
    })
    .await;
    let file = cap.stop();
    let port = hss.diameter.port();
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(&file)
        .args(["-d", &format!("tcp.port=={port},diameter")])
        .args(["-Y", &format!("tcp.srcport == {port} && diameter")])
        .args([
            "-T",
            "fields",
            "-e",
            "diameter.cmd.code",
            "-e",
            "diameter.flags.request",
            "-e",
            "_ws.expert.severity",
            "-e",
            "_ws.malformed",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    // CEA, UAA×2, MAA×2, SAA×2, LIA, UAA, DWA, RTR, DPA at least.
    if lines.len() < 12 {
        let all = Command::new("tshark")
            .arg("-r")
            .arg(&file)
            .args(["-d", &format!("tcp.port=={port},diameter")])
            .output()
            .unwrap();
        panic!(
            "too few server messages dissected:\n{text}\n{}\nall frames:\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&all.stdout)
        );
    }
    for l in &lines {
        let cols: Vec<&str> = l.split('\t').collect();
        let severity = cols.get(2).copied().unwrap_or("");
        let malformed = cols.get(3).copied().unwrap_or("");
        assert!(malformed.is_empty(), "malformed: {l}");
        // Expert severities: 0x00200000 note and below are informational; warning is 0x00600000.
        for s in severity.split(',').filter(|s| !s.is_empty()) {
            let v = match s.strip_prefix("0x") {
                Some(h) => u32::from_str_radix(h, 16).unwrap(),
                None => s.parse::<u32>().unwrap(),
            };
            assert!(v < 0x0060_0000, "expert warning or error in {l}");
        }
    }
    let codes: Vec<&str> = lines.iter().filter_map(|l| l.split('\t').next()).collect();
    for want in ["257", "300", "301", "302", "303", "304", "280", "282"] {
        assert!(
            codes.iter().any(|c| c.split(',').any(|x| x == want)),
            "no command {want} from the server: {codes:?}"
        );
    }
    assert!(hss.stop().success());
}

/// Runs the `sichss` CLI against the test server.
fn cli(hss: &Hss, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_sichss"))
        .arg("--api")
        .arg(format!("http://{}", hss.api))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn cli_provisions_shows_and_removes_services_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start(&dir.path().join("data"), &[]);
    let imsi = "460011100699999";
    let out = cli(
        &hss,
        &[
            "subscriber",
            "add",
            "--imsi",
            imsi,
            "--msisdn",
            "+8618699999999",
            "--mnc-len",
            "2",
            "--k",
            demo::K,
            "--opc",
            demo::OPC,
            "--password",
            "secret-pw",
            "--service",
            "001",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let combined = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [demo::K, demo::OPC, "secret-pw"] {
        assert!(!combined.contains(secret), "the CLI printed a secret");
    }
    let out = cli(
        &hss,
        &["service", "subscribe", "--imsi", imsi, "--sic", "002"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = cli(&hss, &["subscriber", "show", "--imsi", imsi, "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let services = v["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    for s in services {
        for field in ["sic", "name", "impi", "impus", "state", "scscf"] {
            assert!(s.get(field).is_some(), "service entry lacks {field}: {s}");
        }
        assert_eq!(s["state"], "NOT_REGISTERED");
    }
    assert_eq!(services[0]["name"], "VoLTE");
    assert_eq!(services[1]["name"], "RCS");
    assert_eq!(
        services[1]["impi"],
        "460011100699999@ims.sic002.mnc001.mcc460.3gppnetwork.org"
    );

    let out = cli(
        &hss,
        &["service", "unsubscribe", "--imsi", imsi, "--sic", "002"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = hss.get_json(&format!("/subscribers/{imsi}"));
    assert_eq!(service_state(&v, "001"), "NOT_REGISTERED");
    assert_eq!(service_state(&v, "002"), "ABSENT");

    let out = cli(&hss, &["subscriber", "remove", "--imsi", imsi]);
    assert!(out.status.success());
    let out = cli(&hss, &["subscriber", "show", "--imsi", imsi]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(imsi));
    assert!(hss.stop().success());
}

#[tokio::test]
async fn cli_errors_name_the_field_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start(&dir.path().join("data"), &[]);
    let out = cli(
        &hss,
        &[
            "subscriber",
            "add",
            "--imsi",
            "46001abc",
            "--msisdn",
            "+861",
            "--mnc-len",
            "2",
            "--password",
            "p",
            "--service",
            "001",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.to_lowercase().contains("imsi") && err.contains("digits"),
        "{err}"
    );

    let out = cli(
        &hss,
        &[
            "subscriber",
            "add",
            "--imsi",
            "460011100688888",
            "--msisdn",
            "+8618688888888",
            "--mnc-len",
            "2",
            "--k",
            "1234",
            "--opc",
            demo::OPC,
            "--service",
            "001",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains('k') && err.contains("32 hex"), "{err}");

    let out = cli(
        &hss,
        &[
            "service",
            "subscribe",
            "--imsi",
            demo::IMSI_A,
            "--sic",
            "01",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 digits"), "{err}");
    assert!(hss.stop().success());

    // With the server stopped, the CLI says so plainly.
    let out = Command::new(env!("CARGO_BIN_EXE_sichss"))
        .args(["--api", "http://127.0.0.1:9", "subscriber", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not running") && err.contains("sichss serve"),
        "{err}"
    );
}
