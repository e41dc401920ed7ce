//! Encryption at rest of K, OPc, OP and passwords (`--secrets-key-file`,
//! SICHSS_SECRETS_KEY), against a running `sichss serve`: what reaches the disk and the
//! export, what Cx still computes, and how a wrong or missing key is refused.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use sichss::demo;

use super::process::*;

/// TS 35.208 test set 2: a K provisioned through the API in these tests.
const K2: &str = "0396eb317b6d1c36f19c1c84cd6ffd16";
const OPC2: &str = "53c15671c60a4b731c55b4a441c0bde2";
/// A K set later by an update.
const K3: &str = "fec86ba6eb707ed08905757b1bb44b8f";
const IMSI2: &str = "460011100600777";

async fn bounded<F: std::future::Future<Output = T>, T>(f: F) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("scenario finished within 60 s")
}

fn write_key(path: &Path, bytes: [u8; 32]) {
    std::fs::write(path, format!("{}\n", hex::encode(bytes))).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// Every file under `dir`, concatenated.
fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).unwrap());
        }
    }
    out
}

/// The bytes of every subscriber record of the (stopped) sled store in `dir`.
fn decompressed_records(dir: &Path) -> Vec<u8> {
    let db = sled::open(dir).unwrap();
    let mut out = Vec::new();
    for kv in db.open_tree("subscribers").unwrap().iter() {
        out.extend(sichss::store::sled::record_bytes(&kv.unwrap().1).unwrap());
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

/// `sichss serve` that is expected to refuse to start; returns its stderr.
fn refused(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> String {
    let out = crate::serve_process::command()
        .arg("--data")
        .arg(data)
        .args(extra)
        .env_remove("SICHSS_SECRETS_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(!out.status.success(), "sichss should have refused to start");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn http(hss: &Hss, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let req = ureq::request(method, &hss.url(path));
    let r = match body {
        Some(b) => req.set("Content-Type", "application/json").send_string(b),
        None => req.call(),
    };
    match r {
        Ok(resp) => (resp.status(), resp.into_string().unwrap()),
        Err(ureq::Error::Status(s, resp)) => (s, resp.into_string().unwrap()),
        Err(e) => panic!("{method} {path}: {e}"),
    }
}

#[tokio::test]
async fn secrets_are_ciphertext_on_disk_and_in_the_export_and_cx_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_file = dir.path().join("secrets.key");
    let key = [0x5a; 32];
    write_key(&key_file, key);
    let key_arg = ["--secrets-key-file", key_file.to_str().unwrap()];

    let hss = Hss::start(&data, &key_arg);
    bounded(async {
        let (c, _rx) = hss.scscf().await;
        mar_verifies(&c).await;
        c.close().await.unwrap();
    })
    .await;
    // Provisioning and updating through the API encrypt too.
    let form = serde_json::json!({
        "imsi": IMSI2, "mnc_len": 2, "msisdns": ["+8618600000777"],
        "k": K2, "opc": OPC2, "password": "a-second-password",
        "services": [{"sic": "001"}],
    });
    let (s, body) = http(&hss, "POST", "/subscribers", Some(&form.to_string()));
    assert_eq!(s, 201, "{body}");
    let (s, body) = http(
        &hss,
        "PUT",
        &format!("/subscribers/{IMSI2}"),
        Some(&serde_json::json!({ "k": K3 }).to_string()),
    );
    assert_eq!(s, 200, "{body}");
    // The operator who asks for secrets gets plaintext.
    let view = hss.get_json(&format!("/subscribers/{}?secrets=true", demo::IMSI_A));
    assert_eq!(view["secrets"]["aka"]["k"], demo::K, "{view}");
    let view = hss.get_json(&format!("/subscribers/{IMSI2}?secrets=true"));
    assert_eq!(view["secrets"]["aka"]["k"], K3, "{view}");

    // The export holds ciphertext only.
    let (s, export) = http(&hss, "GET", "/export", None);
    assert_eq!(s, 200);
    assert_eq!(export.lines().count(), 3);
    assert!(export.contains("\"k\":\"enc:v1:"), "{export}");
    for secret in [
        demo::K,
        demo::OPC,
        demo::PASSWORD,
        K2,
        OPC2,
        K3,
        "a-second-password",
    ] {
        assert!(
            !contains(export.as_bytes(), secret),
            "the export holds {secret}"
        );
    }

    // Import accepts the ciphertext export (same key) and plaintext, which it encrypts.
    let (s, body) = http(&hss, "DELETE", &format!("/subscribers/{IMSI2}"), None);
    assert_eq!(s, 200, "{body}");
    let (s, body) = http(&hss, "POST", "/import", Some(&export));
    assert_eq!(s, 200, "{body}");
    let view = hss.get_json(&format!("/subscribers/{IMSI2}?secrets=true"));
    assert_eq!(view["secrets"]["aka"]["k"], K3, "{view}");
    let plain = serde_json::to_string(&demo::subscriber_b()).unwrap();
    assert!(plain.contains(demo::K));
    let (s, body) = http(&hss, "POST", "/import", Some(&plain));
    assert_eq!(s, 200, "{body}");
    let (_, export2) = http(&hss, "GET", "/export", None);
    assert!(!contains(export2.as_bytes(), demo::K));
    bounded(async {
        let (c, _rx) = hss.scscf().await;
        mar_verifies(&c).await;
        c.close().await.unwrap();
    })
    .await;
    assert!(hss.stop().success());

    // On disk: no plaintext secret, in the files as they are (sled's, the journal) nor in
    // the records decompressed (sled keeps them LZ4-compressed), which are searched in
    // clear JSON.
    let mut disk = all_bytes(&data);
    disk.extend(decompressed_records(&data));
    assert!(
        contains(&disk, &demo::impi_a("001")),
        "the records are searched as clear JSON, so the search would find plaintext"
    );
    for secret in [
        demo::K,
        demo::OPC,
        demo::PASSWORD,
        K2,
        OPC2,
        K3,
        "a-second-password",
    ] {
        assert!(!contains(&disk, secret), "the sled files hold {secret}");
    }

    // Another key: refused at start, naming the fix.
    let other = dir.path().join("other.key");
    write_key(&other, [0x11; 32]);
    let e = refused(&data, &["--secrets-key-file", other.to_str().unwrap()], &[]);
    assert!(
        e.contains("secrets key does not match the store")
            && e.contains("give the key the store was written with")
            && e.contains("--secrets-key-file"),
        "{e}"
    );
    // No key: refused too.
    let e = refused(&data, &[], &[]);
    assert!(
        e.contains("no secrets key is configured") && e.contains("SICHSS_SECRETS_KEY"),
        "{e}"
    );
    // A malformed key names where it came from.
    let e = refused(&data, &[], &[("SICHSS_SECRETS_KEY", "not-a-key")]);
    assert!(
        e.contains("SICHSS_SECRETS_KEY") && e.contains("32 octets"),
        "{e}"
    );
    // The right key in base64 through the environment: Cx goes on (SQN continues).
    let b64 = base64::engine::general_purpose::STANDARD.encode(key);
    let hss = Hss::start_with(&data, &[], &[("SICHSS_SECRETS_KEY", &b64)]);
    bounded(async {
        let (c, _rx) = hss.scscf().await;
        mar_verifies(&c).await;
        c.close().await.unwrap();
    })
    .await;
    assert!(hss.stop().success());

    // A server with another key refuses the ciphertext export, naming the field.
    let hss = Hss::start(
        &dir.path().join("data2"),
        &["--secrets-key-file", other.to_str().unwrap()],
    );
    let (s, body) = http(&hss, "POST", "/import", Some(&export));
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("aka.k") && body.contains("key"), "{body}");
    drop(hss);
    // And a server without a key refuses it too.
    let hss = Hss::start(&dir.path().join("data3"), &[]);
    let (s, body) = http(&hss, "POST", "/import", Some(&export));
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("no secrets key"), "{body}");
}
