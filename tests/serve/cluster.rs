//! Two `sichss serve` nodes on one PostgreSQL database (skipped without
//! `SICHSS_TEST_PG_URL`, see tests/common/pg.rs): services registered through different
//! nodes, the same state reported by both, and HSS-initiated requests made on the node
//! the S-CSCF is not connected to.

use std::time::{Duration, Instant};

use sichss::client::IncomingRequest;
use sichss::codec::{codes, CommandCode, ResultCode};
use sichss::demo;
use sichss::store::postgres::PgLocation;

use super::pg;
use super::process::*;

/// Bounds the scenario in time.
async fn bounded<F: std::future::Future<Output = T>, T>(f: F) -> T {
    tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("scenario finished within 90 s")
}

/// Connections to `host` the nodes have published.
async fn published(url: &str, host: &str) -> i64 {
    let loc = PgLocation::parse(url).unwrap();
    let (client, conn) = loc.config().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client
        .query_one(
            "SELECT count(*) FROM peer_connections WHERE origin_host = $1",
            &[&host],
        )
        .await
        .unwrap()
        .get(0)
}

async fn wait_published(url: &str, host: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while published(url, host).await != want {
        assert!(
            Instant::now() < deadline,
            "the nodes never published {want} connection(s) to {host}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Answers the next request from the HSS with 2001 and returns it.
async fn answer_next(
    rx: &mut tokio::sync::mpsc::Receiver<IncomingRequest>,
) -> sichss::codec::Message {
    let req = rx.recv().await.expect("a request from the HSS");
    let seen = req.request.clone();
    let ans = req.answer_with(ResultCode::DIAMETER_SUCCESS);
    req.answer(ans).await.unwrap();
    seen
}

fn services(hss: &Hss) -> serde_json::Value {
    hss.get_json(&format!("/subscribers/{}", demo::IMSI_A))["services"].clone()
}

async fn api(method: &'static str, url: String) -> serde_json::Value {
    tokio::task::spawn_blocking(move || {
        let r = match method {
            "POST" => ureq::post(&url).call(),
            _ => ureq::delete(&url).call(),
        };
        match r {
            Ok(r) => r.into_json().unwrap(),
            Err(ureq::Error::Status(code, r)) => {
                panic!("{method} {url}: {code} {}", r.into_string().unwrap())
            }
            Err(e) => panic!("{method} {url}: {e}"),
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_per_service_state_and_forward_rtr_to_the_scscf_node() {
    let Some(url) = pg::fresh_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let one = Hss::start_on_store(
        &dir.path().join("node1"),
        &url,
        &["--origin-host", "hss1.ims.mnc001.mcc460.3gppnetwork.org"],
    );
    let two = Hss::start_on_store(
        &dir.path().join("node2"),
        &url,
        &["--origin-host", "hss2.ims.mnc001.mcc460.3gppnetwork.org"],
    );
    bounded(async {
        // The S-CSCF connects to both nodes.
        let (c1, mut rx1) = one.scscf().await;
        let (c2, _rx2) = two.scscf().await;

        // VoLTE registers through node 1, RCS through node 2.
        register(&c1, &demo::impi_a("001"), &sip_a(), 1).await;
        register(&c2, &demo::impi_a("002"), &sip_a(), 2).await;
        let (s1, s2) = (services(&one), services(&two));
        assert_eq!(s1, s2, "both nodes report the same services");
        let view = one.get_json(&format!("/subscribers/{}", demo::IMSI_A));
        assert_eq!(service_state(&view, "001"), "REGISTERED");
        assert_eq!(service_state(&view, "002"), "REGISTERED");

        // De-registering VoLTE on node 1 leaves RCS as it was, seen from either node.
        let a = c1
            .request(sar(&demo::impi_a("001"), &sip_a(), 5))
            .await
            .unwrap();
        assert_eq!(result(&a), ("rc", 2001));
        for hss in [&one, &two] {
            let view = hss.get_json(&format!("/subscribers/{}", demo::IMSI_A));
            assert_eq!(service_state(&view, "001"), "NOT_REGISTERED");
            assert_eq!(service_state(&view, "002"), "REGISTERED");
        }
        assert_eq!(services(&one), services(&two));
        // LIR through node 2 still finds the S-CSCF through RCS.
        let a = c2.request(lir(&sip_a())).await.unwrap();
        assert_eq!(a.str(codes::SERVER_NAME), Some(SCSCF));

        // The S-CSCF leaves node 2; it stays connected to node 1 only.
        wait_published(&url, SCSCF_HOST, 2).await;
        c2.close().await.unwrap();
        wait_published(&url, SCSCF_HOST, 1).await;

        // Administrative de-registration of RCS on node 2 reaches the S-CSCF through
        // node 1, and node 2 reports the RTA.
        let answerer = tokio::spawn(async move {
            let rtr = answer_next(&mut rx1).await;
            (rtr, rx1)
        });
        let body = api(
            "POST",
            two.url(&format!(
                "/subscribers/{}/services/002/deregister",
                demo::IMSI_A
            )),
        )
        .await;
        let (rtr, mut rx1) = answerer.await.unwrap();
        assert_eq!(rtr.header.command, CommandCode::REGISTRATION_TERMINATION);
        assert_eq!(
            rtr.str(codes::USER_NAME),
            Some(demo::impi_a("002").as_str())
        );
        assert_eq!(rtr.str(codes::DESTINATION_HOST), Some(SCSCF_HOST));
        assert_eq!(
            rtr.str(codes::ORIGIN_HOST),
            Some("hss2.ims.mnc001.mcc460.3gppnetwork.org"),
            "built by node 2"
        );
        assert_eq!(body["deregistered"], true, "{body}");
        assert_eq!(body["rtr"]["result_code"], 2001, "{body}");
        assert_eq!(body["rtr"]["destination"], SCSCF_HOST, "{body}");
        for hss in [&one, &two] {
            let view = hss.get_json(&format!("/subscribers/{}", demo::IMSI_A));
            assert_eq!(service_state(&view, "002"), "NOT_REGISTERED");
        }

        // A profile change made on node 2 while VoLTE is registered through node 1: PPR.
        register(&c1, &demo::impi_a("001"), &sip_a(), 1).await;
        let answerer = tokio::spawn(async move {
            let ppr = answer_next(&mut rx1).await;
            (ppr, rx1)
        });
        let url2 = two.url(&format!(
            "/subscribers/{}/services/001/profile",
            demo::IMSI_A
        ));
        let body: serde_json::Value = tokio::task::spawn_blocking(move || {
            ureq::put(&url2)
                .send_json(serde_json::json!({
                    "ifcs": [{"priority": 0, "application_server": {"server_name": "sip:as.example.com"}}],
                    "barred_impus": []
                }))
                .unwrap()
                .into_json()
                .unwrap()
        })
        .await
        .unwrap();
        let (ppr, mut rx1) = answerer.await.unwrap();
        assert_eq!(ppr.header.command, CommandCode::PUSH_PROFILE);
        assert_eq!(ppr.str(codes::USER_NAME), Some(demo::impi_a("001").as_str()));
        assert_eq!(body["ppr"]["result_code"], 2001, "{body}");

        // Unsubscribing VoLTE on node 2 while it is registered through node 1: RTR again.
        let answerer = tokio::spawn(async move { answer_next(&mut rx1).await });
        let body = api(
            "DELETE",
            two.url(&format!("/subscribers/{}/services/001", demo::IMSI_A)),
        )
        .await;
        let rtr = answerer.await.unwrap();
        assert_eq!(
            rtr.str(codes::USER_NAME),
            Some(demo::impi_a("001").as_str())
        );
        assert_eq!(body["rtr"]["result_code"], 2001, "{body}");
        for hss in [&one, &two] {
            let view = hss.get_json(&format!("/subscribers/{}", demo::IMSI_A));
            assert_eq!(service_state(&view, "001"), "ABSENT");
            assert_eq!(service_state(&view, "002"), "NOT_REGISTERED");
        }

        // With the S-CSCF gone from every node, node 2 says so instead of waiting.
        register(&c1, &demo::impi_a("002"), &sip_a(), 1).await;
        c1.close().await.unwrap();
        wait_published(&url, SCSCF_HOST, 0).await;
        let url2 = two.url(&format!(
            "/subscribers/{}/services/002/deregister",
            demo::IMSI_A
        ));
        let started = Instant::now();
        let (status, text) = tokio::task::spawn_blocking(move || match ureq::post(&url2).call() {
            Ok(r) => (r.status(), r.into_string().unwrap()),
            Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        })
        .await
        .unwrap();
        assert!(status >= 400, "{status} {text}");
        assert!(text.contains("any other sichss node"), "{text}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "answered without waiting"
        );
    })
    .await;
    let (log1, log2) = (one.stderr.clone(), two.stderr.clone());
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(one.stop().success(), "{}", read(&log1));
    assert!(two.stop().success(), "{}", read(&log2));
    // Both nodes left the cluster.
    assert_eq!(published(&url, SCSCF_HOST).await, 0);
}

/// Runs the `sichss` admin CLI against a node.
fn cli(hss: &Hss, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sichss"))
        .arg("--api")
        .arg(format!("http://{}", hss.api))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sichss {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moves_a_store_from_sled_to_postgres_and_back_with_export_and_import() {
    let Some(url) = pg::fresh_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).display().to_string();

    // A sled node with the demo subscribers, one of them registered.
    let sled = Hss::start(&dir.path().join("sled"), &[]);
    bounded(async {
        let (c, _rx) = sled.scscf().await;
        register(&c, &demo::impi_a("002"), &sip_a(), 1).await;
        c.close().await.unwrap();
    })
    .await;
    cli(&sled, &["export", &file("from-sled.jsonl")]);
    let before = sled.get_json(&format!("/subscribers/{}", demo::IMSI_A));
    assert!(sled.stop().success());

    // Into PostgreSQL: the same records, the same state, and it serves them.
    let pg_node = Hss::start_on_store(&dir.path().join("pg"), &url, &[]);
    cli(&pg_node, &["import", &file("from-sled.jsonl")]);
    cli(&pg_node, &["export", &file("from-pg.jsonl")]);
    let read = |n: &str| std::fs::read_to_string(dir.path().join(n)).unwrap();
    assert_eq!(read("from-sled.jsonl"), read("from-pg.jsonl"));
    let view = pg_node.get_json(&format!("/subscribers/{}", demo::IMSI_A));
    assert_eq!(view, before);
    assert_eq!(service_state(&view, "002"), "REGISTERED");
    bounded(async {
        let (c, _rx) = pg_node.scscf().await;
        let a = c.request(lir(&sip_a())).await.unwrap();
        assert_eq!(a.str(codes::SERVER_NAME), Some(SCSCF));
        c.close().await.unwrap();
    })
    .await;
    assert!(pg_node.stop().success());

    // And back into a new sled store.
    let back = Hss::start(&dir.path().join("back"), &[]);
    cli(&back, &["import", &file("from-pg.jsonl")]);
    cli(&back, &["export", &file("back.jsonl")]);
    assert_eq!(read("back.jsonl"), read("from-sled.jsonl"));
    assert!(back.stop().success());
}

/// `sichss serve` with these arguments must fail to start; returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = crate::serve_process::command()
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success(), "sichss serve {args:?} started");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn refuses_a_bad_or_unreachable_store_url_without_showing_the_password() {
    let e = refused(&["--store", "postgress://hss:s3cret@db.example.org/ims"]);
    assert!(e.contains("store.url"), "{e}");
    assert!(
        e.contains("sled:DIR") && e.contains("postgres://[user[:password]@]host"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");

    let e = refused(&[
        "--store",
        "postgres://hss:s3cret@127.0.0.1:1/ims?connect_timeout=2",
    ]);
    assert!(e.contains("postgres://hss:***@127.0.0.1:1/ims"), "{e}");
    assert!(e.contains("is the server up"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().display().to_string();
    let e = refused(&["--data", &data, "--store", "postgres://hss@127.0.0.1/ims"]);
    assert!(e.contains("not both"), "{e}");
}
