//! Provisioning the synthetic population before a run, through the HTTP provisioning API's
//! bulk import: `POST {api}/import` with one [`Subscriber`] per line in its JSON form (the
//! `store::jsonl` format), in batches. Batches are generated on a blocking thread while
//! the previous one is in flight, so the import rate measured is the server's.
//!
//! The HTTP client is a minimal HTTP/1.1 one (RFC 9112: one request per connection,
//! `Connection: close`, `Content-Length` body), enough for a loopback API; `https` is
//! refused.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::demo;
use crate::store::{AkaCredentials, AuthScheme, SecretHex, Service, ServiceProfile, Subscriber};

use super::flows::{Identities, Population, SICS};
use super::report::Provisioning;
use super::BenchError;

/// Longest wait for one POST /import (connection, request and response).
const POST_TIMEOUT: Duration = Duration::from_secs(300);
/// Largest response read (the API answers with a small JSON report).
const MAX_RESPONSE: usize = 1 << 20;

/// Service names of [`SICS`].
const SERVICE_NAMES: [&str; 2] = ["VoLTE", "RCS"];

/// The subscriber record of one member of the population: AKA credentials (the demo K
/// and OPc, TS 35.208 test set 1), SQN 0, and two services sharing the two IMPUs.
pub fn subscriber(id: &Identities) -> Subscriber {
    let mut services = BTreeMap::new();
    for (n, sic) in SICS.iter().enumerate() {
        services.insert(
            (*sic).to_owned(),
            Service {
                name: SERVICE_NAMES[n].to_owned(),
                impi: id.impis[n].clone(),
                impus: vec![id.sip.clone(), id.tel.clone()],
                profile: ServiceProfile::default(),
                registrations: BTreeMap::new(),
                auth_pending: None,
            }
            .into(),
        );
    }
    Subscriber {
        imsi: id.imsi.clone(),
        msisdns: vec![id.msisdn.clone()],
        home_domain: id.home.clone(),
        aka: Some(AkaCredentials {
            k: SecretHex(demo::K.to_owned()),
            opc: Some(SecretHex(demo::OPC.to_owned())),
            op: None,
            amf: demo::AMF.to_owned(),
            sqn: 0,
        }),
        digest: None,
        default_scheme: AuthScheme::DigestAkaV1Md5,
        barred: false,
        allowed_visited_networks: Vec::new(),
        services,
    }
}

/// JSON lines of subscribers `range` of `pop`.
fn batch(pop: &Population, range: std::ops::Range<u64>) -> Result<Vec<u8>, BenchError> {
    let mut out = Vec::with_capacity((range.end - range.start) as usize * 900);
    for i in range {
        let sub = subscriber(&pop.identities(i)?);
        serde_json::to_writer(&mut out, &sub).map_err(|e| BenchError::Provisioning {
            why: format!("serialising subscriber {}: {e}", sub.imsi),
        })?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Imports the whole population through `POST {api}/import`, `batch_size` subscribers a
/// request.
///
/// # Errors
/// [`BenchError::Provisioning`] when the API is unreachable, answers other than 2xx, or
/// takes longer than 300 s for one batch.
pub async fn provision(
    api: &str,
    token: Option<&str>,
    pop: &Population,
    batch_size: u64,
) -> Result<Provisioning, BenchError> {
    let url = HttpUrl::parse(api)?;
    let batch_size = batch_size.max(1);
    let started = Instant::now();
    let (tx, mut rx) = mpsc::channel::<Result<Vec<u8>, BenchError>>(2);
    let gen_pop = pop.clone();
    let generator = tokio::task::spawn_blocking(move || {
        let mut start = 0;
        while start < gen_pop.len() {
            let end = (start + batch_size).min(gen_pop.len());
            let b = batch(&gen_pop, start..end);
            let failed = b.is_err();
            if tx.blocking_send(b).is_err() || failed {
                return;
            }
            start = end;
        }
    });
    let mut batches = 0;
    while let Some(body) = rx.recv().await {
        let body = body?;
        let (status, text) = tokio::time::timeout(POST_TIMEOUT, url.post("/import", token, body))
            .await
            .map_err(|_| BenchError::Provisioning {
                why: format!("POST {api}/import took longer than {POST_TIMEOUT:?}"),
            })??;
        if !(200..300).contains(&status) {
            return Err(BenchError::Provisioning {
                why: format!(
                    "POST {api}/import answered {status}: {}",
                    text.chars().take(500).collect::<String>()
                ),
            });
        }
        batches += 1;
    }
    let _ = generator.await;
    let secs = started.elapsed().as_secs_f64();
    Ok(Provisioning {
        subscribers: pop.len(),
        batches,
        elapsed_s: (secs * 1000.0).round() / 1000.0,
        per_s: if secs > 0.0 {
            (pop.len() as f64 / secs).round()
        } else {
            0.0
        },
    })
}

/// `http://host:port[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// `host:port` to connect to.
    pub authority: String,
    /// Path prefix, without a trailing `/`.
    pub prefix: String,
}

impl HttpUrl {
    /// Parses an `http://` URL; the port defaults to 80.
    ///
    /// # Errors
    /// [`BenchError::Invalid`] for another scheme or an empty host.
    pub fn parse(url: &str) -> Result<Self, BenchError> {
        let invalid = |problem: String| BenchError::Invalid {
            setting: "--provision-api",
            problem,
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| invalid(format!("{url:?}: only http://host:port URLs are supported")))?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(invalid(format!("{url:?} has no host")));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(HttpUrl {
            authority,
            prefix: prefix.to_owned(),
        })
    }

    /// POSTs `body` as JSON lines to `path`; returns the status and the response body.
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(u16, String), BenchError> {
        let fail = |e: std::io::Error| BenchError::Provisioning {
            why: format!("POST http://{}{}{path}: {e}", self.authority, self.prefix),
        };
        let mut s = TcpStream::connect(&self.authority).await.map_err(fail)?;
        let mut head = format!(
            "POST {}{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.prefix,
            self.authority,
            body.len()
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).await.map_err(fail)?;
        s.write_all(&body).await.map_err(fail)?;
        let mut resp = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let n = s.read(&mut chunk).await.map_err(fail)?;
            if n == 0 {
                break;
            }
            resp.extend_from_slice(&chunk[..n]);
            if resp.len() > MAX_RESPONSE || response_complete(&resp) {
                break;
            }
        }
        parse_response(&resp).ok_or_else(|| BenchError::Provisioning {
            why: format!(
                "POST http://{}{}{path}: not an HTTP response: {:?}",
                self.authority,
                self.prefix,
                String::from_utf8_lossy(&resp[..resp.len().min(200)])
            ),
        })
    }
}

/// Whether `resp` holds the headers and a Content-Length body (or a chunked body's end).
fn response_complete(resp: &[u8]) -> bool {
    let Some(end) = find(resp, b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&resp[..end]).to_ascii_lowercase();
    let body = &resp[end + 4..];
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= len;
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

/// Status code and body text (chunk framing left in, which only error messages show).
fn parse_response(resp: &[u8]) -> Option<(u16, String)> {
    let end = find(resp, b"\r\n\r\n")?;
    let head = std::str::from_utf8(&resp[..end]).ok()?;
    let status = head
        .lines()
        .next()?
        .strip_prefix("HTTP/1.")?
        .get(2..5)?
        .parse()
        .ok()?;
    Some((
        status,
        String::from_utf8_lossy(&resp[end + 4..]).into_owned(),
    ))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_subscribers_pass_store_validation() {
        let pop = Population::new("001010000000000", 3).unwrap();
        for i in 0..3 {
            let sub = subscriber(&pop.identities(i).unwrap());
            sub.validate().unwrap();
            assert_eq!(sub.services.len(), 2);
            assert_eq!(sub.services["001"].impus, sub.services["002"].impus);
        }
    }

    #[test]
    fn batches_are_json_lines_of_subscribers() {
        let pop = Population::new("001010000000000", 5).unwrap();
        let b = batch(&pop, 1..4).unwrap();
        let lines: Vec<Subscriber> = String::from_utf8(b)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].imsi, "001010000000001");
    }

    #[test]
    fn parses_http_urls() {
        assert_eq!(
            HttpUrl::parse("http://127.0.0.1:8080").unwrap(),
            HttpUrl {
                authority: "127.0.0.1:8080".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            HttpUrl::parse("http://localhost/api/").unwrap(),
            HttpUrl {
                authority: "localhost:80".into(),
                prefix: "/api".into()
            }
        );
        assert!(HttpUrl::parse("https://127.0.0.1:8080").is_err());
        assert!(HttpUrl::parse("http://").is_err());
    }

    #[test]
    fn reads_status_and_knows_when_a_response_is_complete() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert!(response_complete(r));
        assert!(!response_complete(&r[..r.len() - 1]));
        assert_eq!(parse_response(r), Some((200, "{}".into())));
        let c =
            b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nbad\r\n0\r\n\r\n";
        assert!(response_complete(c));
        assert_eq!(parse_response(c).unwrap().0, 400);
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[tokio::test]
    async fn posts_json_lines_and_reports_the_rate() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut lines = 0;
            for _ in 0..2 {
                let (mut s, _) = l.accept().await.unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 65536];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    req.extend_from_slice(&buf[..n]);
                    let Some(end) = find(&req, b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&req[..end]).to_string();
                    assert!(head.starts_with("POST /import HTTP/1.1"), "{head}");
                    assert!(head.contains("Authorization: Bearer t0k"));
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    if req.len() >= end + 4 + len {
                        lines += req[end + 4..].iter().filter(|b| **b == b'\n').count();
                        break;
                    }
                }
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                    .await
                    .unwrap();
            }
            lines
        });
        let pop = Population::new("001010000000000", 7).unwrap();
        let p = provision(&format!("http://{addr}"), Some("t0k"), &pop, 4)
            .await
            .unwrap();
        assert_eq!(p.subscribers, 7);
        assert_eq!(p.batches, 2);
        assert_eq!(server.await.unwrap(), 7);
    }
}
