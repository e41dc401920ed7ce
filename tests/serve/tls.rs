//! Diameter over TLS (RFC 6733 §13) and HTTPS for the provisioning API, against a running
//! `sichss serve` with a PKI generated in the test ([`super::pki`]).

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use sichss::admin::{self, AdminCommand, AdminError, AdminGlobal, SubscriberCommand};
use sichss::client::{Client, ClientConfig, ClientError, ClientTls};
use sichss::demo;

use super::pki::{Pki, CLIENT_SUBJECT};
use super::process::*;

/// Bounds every scenario in time.
async fn bounded<F: std::future::Future<Output = T>, T>(f: F) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("scenario finished within 60 s")
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

async fn connect(addr: SocketAddr, tls: Option<ClientTls>) -> Result<Client, ClientError> {
    let mut cfg = ClientConfig::new(SCSCF_HOST, REALM);
    cfg.tls = tls;
    cfg.connect_timeout = Duration::from_secs(10);
    Client::connect(addr, cfg).await
}

#[tokio::test]
async fn cer_cea_and_mar_over_tls_with_plain_tcp_alongside() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let hss = Hss::start(&dir.path().join("data"), &args(&pki.server_args()));
    let tls_addr = hss.diameter_tls.expect("the ready line has diameter_tls=");
    assert_ne!(tls_addr, hss.diameter);
    bounded(async {
        // By DNS name and by IP address: the certificate carries both.
        for name in ["localhost", "127.0.0.1"] {
            let c = connect(tls_addr, Some(pki.diameter(&pki.ca, None, name)))
                .await
                .unwrap_or_else(|e| panic!("CER/CEA over TLS checking {name}: {e}"));
            assert_eq!(c.peer().0, "hss.ims.mnc001.mcc460.3gppnetwork.org");
            mar_verifies(&c).await;
            assert_eq!(c.watchdog().await.unwrap().0, 2001);
            c.close().await.unwrap();
        }
        // Plain TCP still works, on its own port.
        let c = connect(hss.diameter, None).await.expect("CER/CEA over TCP");
        mar_verifies(&c).await;
        c.close().await.unwrap();
        // TLS bytes are not Diameter: speaking plain Diameter to the TLS port fails.
        assert!(connect(tls_addr, None).await.is_err());
    })
    .await;
    let log = hss.log();
    assert!(
        log.contains("transport=\"tls\"") || log.contains("transport=tls"),
        "{log}"
    );
    assert!(hss.stop().success());
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_server_certificate_fails() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let hss = Hss::start(&dir.path().join("data"), &args(&pki.server_args()));
    let tls_addr = hss.diameter_tls.unwrap();
    bounded(async {
        // Another CA.
        let e = connect(
            tls_addr,
            Some(pki.diameter(&pki.other_ca, None, "localhost")),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ClientError::Tls { .. }), "{e}");
        assert!(e.to_string().contains("certificate"), "{e}");
        // The right CA, but a name the certificate does not carry.
        let e = connect(
            tls_addr,
            Some(pki.diameter(&pki.ca, None, "hss.example.org")),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ClientError::Tls { .. }), "{e}");
        // The server is unharmed.
        let c = connect(tls_addr, Some(pki.diameter(&pki.ca, None, "localhost")))
            .await
            .unwrap();
        c.close().await.unwrap();
    })
    .await;
    let log = hss.log();
    assert!(log.contains("TLS handshake failed"), "{log}");
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_or_from_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let mut a = pki.server_args();
    a.push("--tls-client-ca".into());
    a.push(pki.ca.display().to_string());
    let hss = Hss::start(&dir.path().join("data"), &args(&a));
    let tls_addr = hss.diameter_tls.unwrap();
    bounded(async {
        // No client certificate: with TLS 1.3 the refusal arrives after the client's side
        // of the handshake, so it shows at the CER at the latest.
        assert!(
            connect(tls_addr, Some(pki.diameter(&pki.ca, None, "localhost")))
                .await
                .is_err()
        );
        // A certificate from another CA.
        let other = Some((
            pki.other_client_cert.as_path(),
            pki.other_client_key.as_path(),
        ));
        assert!(
            connect(tls_addr, Some(pki.diameter(&pki.ca, other, "localhost")))
                .await
                .is_err()
        );
        // The right certificate: admitted, and the allowlist (loopback) still passes it.
        let good = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
        let c = connect(tls_addr, Some(pki.diameter(&pki.ca, good, "localhost")))
            .await
            .expect("mutual TLS with a certificate from the client CA");
        mar_verifies(&c).await;
        c.close().await.unwrap();
    })
    .await;
    let log = hss.log();
    assert!(
        log.matches("TLS handshake failed").count() >= 2,
        "both refusals are logged: {log}"
    );
    assert!(
        log.contains(CLIENT_SUBJECT),
        "the client certificate's subject is logged: {log}"
    );
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let config = dir.path().join("sichss.toml");
    std::fs::write(
        &config,
        format!(
            "[diameter.tls]\nlisten = [\"127.0.0.1:0\"]\ncert = {:?}\nkey = {:?}\nhandshake_timeout_ms = 300\n",
            pki.server_cert, pki.server_key
        ),
    )
    .unwrap();
    let hss = Hss::start(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let tls_addr = hss.diameter_tls.expect("TLS from the config file");
    let mut s = std::net::TcpStream::connect(tls_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    // Closed by the server (EOF, or a reset), well before the read timeout.
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() < Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        hss.log().contains("TLS handshake timed out"),
        "{}",
        hss.log()
    );
}

#[tokio::test]
async fn https_api_serves_health_and_subscribers_to_clients_trusting_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let hss = Hss::start(&dir.path().join("data"), &args(&pki.api_args()));
    assert_eq!(hss.api_scheme, "https");
    let https = format!("https://localhost:{}", hss.api.port());

    // ureq with the CA.
    let agent = ureq::AgentBuilder::new()
        .tls_config(pki.client_config(&pki.ca, None))
        .build();
    let health: serde_json::Value = agent
        .get(&format!("{https}/health"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    let view: serde_json::Value = agent
        .get(&format!("{https}/subscribers/{}", demo::IMSI_A))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(view["imsi"], demo::IMSI_A);

    // The admin CLI's client, with --ca-cert.
    let client = admin::Client::with_ca_cert(&https, None, Some(&pki.ca)).unwrap();
    assert_eq!(client.health().unwrap()["status"], "ok");
    assert_eq!(client.subscriber(demo::IMSI_A).unwrap().imsi, demo::IMSI_A);
    let global = AdminGlobal {
        api: https.clone(),
        token: None,
        ca_cert: Some(pki.ca.clone()),
    };
    let mut out = Vec::new();
    admin::run_with(
        &global,
        AdminCommand::Subscriber(SubscriberCommand::List { json: false }),
        &mut out,
    )
    .unwrap();
    assert!(String::from_utf8(out).unwrap().contains(demo::IMSI_A));

    // Without the CA: refused, and the message says how to fix it.
    let e = admin::Client::new(&https, None).health().unwrap_err();
    assert!(matches!(e, AdminError::Unreachable { .. }), "{e}");
    assert!(e.to_string().contains("--ca-cert"), "{e}");
    // Trusting another CA: refused too.
    let e = admin::Client::with_ca_cert(&https, None, Some(&pki.other_ca))
        .unwrap()
        .health()
        .unwrap_err();
    assert!(e.to_string().contains("--ca-cert"), "{e}");
    // Plain HTTP to the HTTPS port gets no answer.
    assert!(admin::Client::new(&format!("http://{}", hss.api), None)
        .health()
        .is_err());
    // A missing CA file is named.
    let e =
        admin::Client::with_ca_cert(&https, None, Some(&dir.path().join("nope.pem"))).unwrap_err();
    assert!(e.to_string().contains("nope.pem"), "{e}");
    assert!(hss.stop().success(), "graceful stop of the HTTPS API");
}

#[test]
fn unusable_tls_files_stop_the_start_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let run = |extra: &[&str]| {
        let out = crate::serve_process::command()
            .arg("--data")
            .arg(dir.path().join("data"))
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.path().join("missing.pem");
    let e = run(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        missing.to_str().unwrap(),
        "--tls-key",
        pki.server_key.to_str().unwrap(),
    ]);
    assert!(e.contains("missing.pem") && e.contains("--tls-cert"), "{e}");
    // A key that is not the certificate's.
    let e = run(&[
        "--tls-listen",
        "127.0.0.1:0",
        "--tls-cert",
        pki.server_cert.to_str().unwrap(),
        "--tls-key",
        pki.client_key.to_str().unwrap(),
    ]);
    assert!(e.contains("key"), "{e}");
    // A certificate where the key should be.
    let e = run(&[
        "--admin-tls-cert",
        pki.server_cert.to_str().unwrap(),
        "--admin-tls-key",
        pki.server_cert.to_str().unwrap(),
    ]);
    assert!(
        e.contains("private key") && e.contains("--admin-tls-key"),
        "{e}"
    );
    // Only half of the API's pair.
    let e = run(&["--admin-tls-cert", pki.server_cert.to_str().unwrap()]);
    assert!(e.contains("admin.tls"), "{e}");
}
