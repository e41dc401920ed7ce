//! Secrets never leave through the log, the API's error bodies or /metrics; the Diameter
//! allowlist and the API token are enforced on every path; the log's line per Cx request
//! reads as documented and no peer can forge one. Against a running `sichss serve --demo`.

use std::time::Duration;

use sichss::client::{Client, ClientConfig, ClientError};
use sichss::cx::requests::CscfRequests;
use sichss::demo;

use super::pki::Pki;
use super::process::*;

async fn bounded<F: std::future::Future<Output = T>, T>(f: F) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("scenario finished within 60 s")
}

/// (status, body) of a request, with an optional bearer token and JSON body.
fn call(url: &str, method: &str, token: Option<&str>, body: Option<&str>) -> (u16, String) {
    let mut req = ureq::request(method, url);
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let r = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap_or_default()),
        Err(ureq::Error::Status(s, resp)) => (s, resp.into_string().unwrap_or_default()),
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// Where each demo secret must not appear (hex compared case-insensitively).
fn assert_no_secret(what: &str, text: &str) {
    let lower = text.to_ascii_lowercase();
    for secret in [demo::K, demo::OPC] {
        assert!(
            !lower.contains(secret),
            "{what} contains a demo key ({secret})"
        );
    }
    assert!(
        !text.contains(demo::PASSWORD),
        "{what} contains the demo password"
    );
}

#[tokio::test]
async fn secrets_never_reach_the_debug_log_the_error_bodies_or_the_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start_with(&dir.path().join("data"), &[], &[("RUST_LOG", "debug")]);
    let scscf = CscfRequests::new(SCSCF_HOST, REALM);
    bounded(async {
        let (c, _rx) = hss.scscf().await;
        // A whole registration (UAR, MAR with AKA, SAR), then MARs of the Digest schemes,
        // whose answers carry HA1 or, for Kamailio's Digest-MD5, the password itself.
        register(&c, &demo::impi_a("001"), &sip_a(), 1).await;
        for scheme in ["SIP Digest", "Digest-MD5", "Digest-AKAv1-MD5"] {
            let a = c
                .request(scscf.mar(&demo::impi_a("002"), &sip_a(), SCSCF, scheme, 2, None))
                .await
                .unwrap();
            assert_eq!(result(&a), ("rc", 2001), "{scheme}");
        }
        c.watchdog().await.unwrap();
        c.close().await.unwrap();
    })
    .await;

    // An export (a backup: its body carries the secrets by design, but the log must not).
    let (s, export) = call(&hss.url("/export"), "GET", None, None);
    assert_eq!(s, 200);
    assert!(
        export.contains(demo::K),
        "no key configured: plaintext backup"
    );
    let (s, _) = call(
        &hss.url(&format!("/subscribers/{}?secrets=true", demo::IMSI_A)),
        "GET",
        None,
        None,
    );
    assert_eq!(s, 200);

    // Provisioning errors that carry the secrets, each refused.
    let k_bad = format!("{}zz", demo::K);
    let opc_bad = format!("{}0", demo::OPC);
    let base = |extra: serde_json::Value| {
        let mut f = serde_json::json!({"imsi": "460011100600999", "mnc_len": 2,
            "msisdns": ["+8618600000999"], "services": [{"sic": "001"}]});
        for (k, v) in extra.as_object().unwrap() {
            f[k] = v.clone();
        }
        f.to_string()
    };
    let upper_bad = format!("{}G", demo::K.to_uppercase());
    let non_hex = format!("{}g", &demo::K[..31]);
    // (form, the field the error must name)
    let forms = [
        (
            base(serde_json::json!({"k": k_bad, "opc": demo::OPC, "password": demo::PASSWORD})),
            "k",
        ),
        (
            base(serde_json::json!({"k": demo::K, "opc": opc_bad})),
            "opc",
        ),
        (
            base(serde_json::json!({"k": demo::K, "opc": demo::OPC, "op": demo::OPC})),
            "op",
        ),
        (
            base(serde_json::json!({"password": demo::PASSWORD, "ha1": k_bad})),
            "ha1",
        ),
        (
            base(serde_json::json!({"k": upper_bad, "opc": demo::OPC})),
            "k",
        ),
        (
            base(serde_json::json!({"k": non_hex, "opc": demo::OPC})),
            "k",
        ),
        (
            base(
                serde_json::json!({"k": demo::K, "opc": demo::OPC, "ha1": format!("{}x", demo::OPC)}),
            ),
            "ha1",
        ),
    ];
    let mut bodies = Vec::new();
    for (f, field) in &forms {
        let (s, body) = call(&hss.url("/subscribers"), "POST", None, Some(f));
        assert_eq!(s, 400, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["field"], *field, "{body}");
        bodies.push(body);
    }
    let put = |body: serde_json::Value| {
        call(
            &hss.url(&format!("/subscribers/{}", demo::IMSI_A)),
            "PUT",
            None,
            Some(&body.to_string()),
        )
    };
    for (upd, field) in [
        (serde_json::json!({"k": k_bad}), "k"),
        (serde_json::json!({"opc": opc_bad}), "opc"),
        (
            serde_json::json!({"password": demo::PASSWORD, "ha1": demo::OPC}),
            "ha1",
        ),
    ] {
        let (s, body) = put(upd);
        assert_eq!(s, 400, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["field"], field, "{body}");
        bodies.push(body);
    }
    // An import line with a bad K, and one that is not JSON after the secrets.
    let mut bad = demo::subscriber_b();
    bad.aka.as_mut().unwrap().k.0 = k_bad.clone();
    let line = serde_json::to_string(&bad).unwrap();
    let (s, body) = call(&hss.url("/import"), "POST", None, Some(&line));
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("aka.k"), "{body}");
    bodies.push(body);
    let (s, body) = call(
        &hss.url("/import"),
        "POST",
        None,
        Some(&line[..line.len() - 3]),
    );
    assert_eq!(s, 400, "{body}");
    bodies.push(body);

    let (s, metrics) = call(&hss.url("/metrics"), "GET", None, None);
    assert_eq!(s, 200);
    assert!(metrics.contains("sichss_cx_requests_total"), "{metrics}");
    assert!(hss.stop().success());
    let log = std::fs::read_to_string(dir.path().join("data.stderr.log")).unwrap();
    assert!(
        log.contains("DEBUG") && log.contains("cmd=303"),
        "the log ran at debug level and shows the MARs"
    );
    assert_no_secret("the debug log", &log);
    for (i, b) in bodies.iter().enumerate() {
        assert_no_secret(&format!("error body {i} ({b})"), b);
    }
    assert_no_secret("/metrics", &metrics);
}

/// Whether `line` is `<RFC 3339 time with µs>Z  INFO sichss::cx: cx <rest>`; `<rest>` then.
fn cx_line(line: &str) -> Option<&str> {
    let (time, rest) = line.split_once("Z  INFO sichss::cx: cx ")?;
    let b = time.as_bytes();
    let shape = b.len() == 26
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        });
    shape.then_some(rest)
}

#[tokio::test]
async fn every_cx_request_is_logged_on_one_line_with_its_command_identity_result_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let hss = Hss::start(&dir.path().join("data"), &[]);
    let impi = demo::impi_a("001");
    let unsubscribed = demo::impi_a("009");
    let forged = format!("{impi}\n2026-11-27T00:00:00.000000Z  INFO sichss::cx: cx cmd=SAR");
    bounded(async {
        let (c, _rx) = hss.scscf().await;
        register(&c, &impi, &sip_a(), 1).await;
        let a = c.request(uar(&unsubscribed, &sip_a(), 0)).await.unwrap();
        assert_eq!(result(&a), ("exp", 5001));
        let a = c.request(uar(&forged, &sip_a(), 0)).await.unwrap();
        assert_ne!(result(&a), ("exp", 2001));
        c.close().await.unwrap();
    })
    .await;
    assert!(hss.stop().success());
    let log = std::fs::read_to_string(dir.path().join("data.stderr.log")).unwrap();
    let lines: Vec<&str> = log.lines().filter_map(cx_line).collect();
    assert_eq!(lines.len(), 5, "UAR, MAR, SAR and two UARs refused:\n{log}");
    for (line, cmd, user, result) in [
        (lines[0], "UAR", impi.as_str(), "2001"),
        (lines[1], "MAR", &impi, "2001"),
        (lines[2], "SAR", &impi, "2001"),
        (lines[3], "UAR", &unsubscribed, "5001"),
    ] {
        let start = format!("cmd={cmd} user={user} result={result} micros=");
        let rest = line
            .strip_prefix(&start)
            .unwrap_or_else(|| panic!("{line}"));
        let micros = rest.split(' ').next().unwrap();
        assert!(micros.parse::<u64>().is_ok(), "{line}");
        // A refusal says why; a success says nothing more.
        assert_eq!(rest.contains(" error="), result != "2001", "{line}");
    }
    // The forged identity is quoted and escaped on its own line; no second line starts
    // with its text.
    let escaped = format!("user={forged:?} ");
    assert!(
        lines[4].starts_with("cmd=UAR ") && lines[4].contains(&escaped),
        "{}",
        lines[4]
    );
    assert!(!log.contains("\n2026-11-27T00:00:00.000000Z"), "{log}");
}

#[tokio::test]
async fn the_allowlist_refuses_a_loopback_peer_with_another_origin_host_over_tcp_and_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(&dir.path().join("pki"));
    let config = dir.path().join("sichss.toml");
    std::fs::write(
        &config,
        "[[diameter.peers]]\norigin_host = \"scscf.other.example.org\"\n",
    )
    .unwrap();
    let mut args = vec!["--config".to_owned(), config.display().to_string()];
    args.extend(pki.server_args());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let hss = Hss::start(&dir.path().join("data"), &args);
    let tls_addr = hss.diameter_tls.unwrap();
    bounded(async {
        let cfg = |host: &str, tls: bool| {
            let mut c = ClientConfig::new(host, REALM);
            if tls {
                c.tls = Some(pki.diameter(&pki.ca, None, "localhost"));
            }
            c
        };
        for (addr, tls) in [(hss.diameter, false), (tls_addr, true)] {
            match Client::connect(addr, cfg(SCSCF_HOST, tls)).await {
                Err(ClientError::CapabilitiesRefused { result_code, .. }) => {
                    assert_eq!(result_code, 3010, "DIAMETER_UNKNOWN_PEER (tls: {tls})")
                }
                other => panic!("expected 3010 (tls: {tls}), got {other:?}"),
            }
            let c = Client::connect(addr, cfg("scscf.other.example.org", tls))
                .await
                .expect("the allowed Origin-Host is admitted");
            c.close().await.unwrap();
        }
    })
    .await;
    assert!(hss.log().contains("CER refused"), "{}", hss.log());
}

#[test]
fn with_a_token_every_api_route_but_health_answers_401_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let token = "t0ken-for-the-test";
    let hss = Hss::start(&dir.path().join("data"), &["--admin-token", token]);
    let (s, doc) = call(&hss.url("/openapi.json"), "GET", Some(token), None);
    assert_eq!(s, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let paths = doc["paths"].as_object().expect("OpenAPI paths");
    let mut checked = 0;
    for (path, ops) in paths {
        let url = hss.url(&path.replace("{imsi}", demo::IMSI_A).replace("{sic}", "001"));
        for method in ["get", "post", "put", "delete", "patch"] {
            if ops.get(method).is_none() {
                continue;
            }
            let m = method.to_uppercase();
            let body = (m != "GET" && m != "DELETE").then_some("{}");
            for given in [None, Some("wrong"), Some("")] {
                let (s, b) = call(&url, &m, given, body);
                if path == "/health" {
                    assert_eq!(s, 200, "{m} {path}: {b}");
                } else {
                    assert_eq!(s, 401, "{m} {path} with token {given:?}: {b}");
                    assert!(!b.contains(token));
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 16, "every documented operation: {checked}");
    // Nothing was changed by the refused requests.
    let (s, _) = call(
        &hss.url(&format!("/subscribers/{}", demo::IMSI_A)),
        "GET",
        Some(token),
        None,
    );
    assert_eq!(s, 200);
    assert!(!hss.log().contains(token), "the token is not logged");
}
