//! A blocking client of the provisioning API (ureq): one method per route, typed with the
//! API's own forms and views, errors as [`AdminError`].

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::api::form::{ServiceForm, SubscriberForm, SubscriberUpdate, PLAIN_PATH};
use crate::api::services::{Deregistered, ProfileChanged, Unsubscribed};
use crate::api::subscribers::{Imported, Removed, SubscriberPage, MAX_LIMIT};
use crate::api::view::{ServiceView, SubscriberView};
use crate::api::ErrorBody;
use crate::store::ServiceProfile;

use super::AdminError;

/// How long to wait for a TCP connection to the API.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client of one sichss provisioning API.
#[derive(Debug, Clone)]
pub struct Client {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`.
    api: String,
    /// Bearer token, if the server needs one.
    token: Option<String>,
    agent: ureq::Agent,
}

impl Client {
    /// A client of the API at `api` (e.g. `http://127.0.0.1:8080`, or `https://…`, whose
    /// certificate must then chain to a public root CA; see [`Client::with_ca_cert`]).
    pub fn new(api: &str, token: Option<&str>) -> Self {
        Self::with_agent(api, token, ureq::AgentBuilder::new())
    }

    /// A client that trusts the CA certificates of the PEM file `ca_cert` (instead of the
    /// public roots) for an `https://` API: a private CA, or a self-signed certificate.
    ///
    /// # Errors
    /// [`AdminError::Io`] when the file cannot be read or holds no CA certificate.
    pub fn with_ca_cert(
        api: &str,
        token: Option<&str>,
        ca_cert: Option<&Path>,
    ) -> Result<Self, AdminError> {
        let Some(ca) = ca_cert else {
            return Ok(Self::new(api, token));
        };
        let tls = crate::tls::client_config(ca, None).map_err(|e| AdminError::Io {
            path: ca.display().to_string(),
            message: format!("--ca-cert: {e}"),
        })?;
        let tls: Arc<rustls::ClientConfig> = tls;
        Ok(Self::with_agent(
            api,
            token,
            ureq::AgentBuilder::new().tls_config(tls),
        ))
    }

    fn with_agent(api: &str, token: Option<&str>, agent: ureq::AgentBuilder) -> Self {
        Client {
            api: api.trim_end_matches('/').to_owned(),
            token: token.filter(|t| !t.is_empty()).map(str::to_owned),
            agent: agent.timeout_connect(CONNECT_TIMEOUT).build(),
        }
    }

    /// The base URL.
    pub fn api(&self) -> &str {
        &self.api
    }

    fn request(&self, method: &str, path: &str) -> ureq::Request {
        let req = self.agent.request(method, &format!("{}{path}", self.api));
        match &self.token {
            Some(t) => req.set("Authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    /// Maps a ureq result to a response or an [`AdminError`].
    fn check(&self, r: Result<ureq::Response, ureq::Error>) -> Result<ureq::Response, AdminError> {
        match r {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(status, resp)) => {
                let text = resp.into_string().unwrap_or_default();
                let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
                    error: if text.trim().is_empty() {
                        format!("HTTP {status}")
                    } else {
                        text.trim().to_owned()
                    },
                    field: None,
                    fix: None,
                    line: None,
                    owner: None,
                    rtr: None,
                });
                Err(AdminError::Api {
                    status,
                    body: Box::new(body),
                })
            }
            Err(ureq::Error::Transport(t)) => {
                let message = t.to_string();
                if is_tls_failure(&message) {
                    return Err(AdminError::Unreachable {
                        api: self.api.clone(),
                        message: format!(
                            "{message} (TLS: if the API's certificate is from a private CA or \
                             self-signed, give that CA with --ca-cert FILE or SICHSS_CA_CERT; \
                             an http:// URL cannot reach an HTTPS API, use https://)"
                        ),
                    });
                }
                match t.kind() {
                    ureq::ErrorKind::ConnectionFailed => Err(AdminError::NotRunning {
                        api: self.api.clone(),
                    }),
                    _ => Err(AdminError::Unreachable {
                        api: self.api.clone(),
                        message,
                    }),
                }
            }
        }
    }

    fn json<T: DeserializeOwned>(resp: ureq::Response) -> Result<T, AdminError> {
        resp.into_json::<T>().map_err(|e| AdminError::Response {
            message: format!("the API's answer is not what this client expects: {e}"),
        })
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, AdminError> {
        Self::json(self.check(self.request("GET", path).call())?)
    }

    fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<T, AdminError> {
        Self::json(self.check(self.request(method, path).send_json(body))?)
    }

    fn call<T: DeserializeOwned>(&self, method: &str, path: &str) -> Result<T, AdminError> {
        Self::json(self.check(self.request(method, path).call())?)
    }

    /// `GET /health`.
    pub fn health(&self) -> Result<serde_json::Value, AdminError> {
        self.get("/health")
    }

    /// `POST /subscribers`.
    pub fn create_subscriber(&self, form: &SubscriberForm) -> Result<SubscriberView, AdminError> {
        self.send("POST", "/subscribers", form)
    }

    /// `GET /subscribers/{imsi}` as the API's JSON, exactly (with credentials if `secrets`).
    pub fn subscriber_json(
        &self,
        imsi: &str,
        secrets: bool,
    ) -> Result<serde_json::Value, AdminError> {
        let q = if secrets { "?secrets=true" } else { "" };
        self.get(&format!("/subscribers/{}{q}", seg(imsi)))
    }

    /// `GET /subscribers/{imsi}`.
    pub fn subscriber(&self, imsi: &str) -> Result<SubscriberView, AdminError> {
        self.get(&format!("/subscribers/{}", seg(imsi)))
    }

    /// `GET /subscribers?after=&limit=`: one page.
    pub fn list_page(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<SubscriberPage, AdminError> {
        let mut path = format!("/subscribers?limit={limit}");
        if let Some(a) = after {
            path.push_str(&format!("&after={}", seg(a)));
        }
        self.get(&path)
    }

    /// Every subscriber, page by page.
    pub fn list_all(&self) -> Result<Vec<SubscriberView>, AdminError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_page(after.as_deref(), MAX_LIMIT)?;
            out.extend(page.subscribers);
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// `PUT /subscribers/{imsi}`.
    pub fn update_subscriber(
        &self,
        imsi: &str,
        upd: &SubscriberUpdate,
    ) -> Result<SubscriberView, AdminError> {
        self.send("PUT", &format!("/subscribers/{}", seg(imsi)), upd)
    }

    /// `DELETE /subscribers/{imsi}`.
    pub fn remove_subscriber(&self, imsi: &str) -> Result<Removed, AdminError> {
        self.call("DELETE", &format!("/subscribers/{}", seg(imsi)))
    }

    /// `GET /subscribers/{imsi}/services`.
    pub fn services(&self, imsi: &str) -> Result<Vec<ServiceView>, AdminError> {
        self.get(&format!("/subscribers/{}/services", seg(imsi)))
    }

    /// `POST /subscribers/{imsi}/services`.
    pub fn subscribe(&self, imsi: &str, form: &ServiceForm) -> Result<ServiceView, AdminError> {
        self.send(
            "POST",
            &format!("/subscribers/{}/services", seg(imsi)),
            form,
        )
    }

    /// `DELETE /subscribers/{imsi}/services/{sic}`.
    pub fn unsubscribe(&self, imsi: &str, sic: &str) -> Result<Unsubscribed, AdminError> {
        self.call("DELETE", &service_path(imsi, sic, ""))
    }

    /// `POST /subscribers/{imsi}/services/{sic}/deregister`.
    pub fn deregister(&self, imsi: &str, sic: &str) -> Result<Deregistered, AdminError> {
        self.call("POST", &service_path(imsi, sic, "/deregister"))
    }

    /// `PUT /subscribers/{imsi}/services/{sic}/profile`.
    pub fn set_profile(
        &self,
        imsi: &str,
        sic: &str,
        profile: &ServiceProfile,
    ) -> Result<ProfileChanged, AdminError> {
        self.send("PUT", &service_path(imsi, sic, "/profile"), profile)
    }

    /// `POST /import` with JSON lines read from `body`.
    pub fn import(&self, body: impl Read) -> Result<Imported, AdminError> {
        let req = self
            .request("POST", "/import")
            .set("Content-Type", "application/x-ndjson");
        Self::json(self.check(req.send(body))?)
    }

    /// `GET /export`, copied to `out`; returns the number of lines.
    pub fn export(&self, out: &mut dyn Write) -> Result<u64, AdminError> {
        let resp = self.check(self.request("GET", "/export").call())?;
        let mut reader = resp.into_reader();
        let mut buf = [0u8; 64 * 1024];
        let mut lines = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| AdminError::Response {
                message: format!("reading the export failed: {e}"),
            })?;
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
            out.write_all(&buf[..n]).map_err(|e| AdminError::Io {
                path: "the output".into(),
                message: e.to_string(),
            })?;
        }
        Ok(lines)
    }

    /// `GET /metrics` (text).
    pub fn metrics(&self) -> Result<String, AdminError> {
        self.check(self.request("GET", "/metrics").call())?
            .into_string()
            .map_err(|e| AdminError::Response {
                message: e.to_string(),
            })
    }
}

/// Whether a transport error message is about TLS (certificate, handshake), as rustls and
/// ureq word them.
fn is_tls_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["certificate", "tls", "handshake", "unknownissuer", "alert"]
        .iter()
        .any(|w| m.contains(w))
}

/// `/subscribers/{imsi}/services/{sic}{rest}`, with the plain service as `plain`.
fn service_path(imsi: &str, sic: &str, rest: &str) -> String {
    let sic = if sic.is_empty() { PLAIN_PATH } else { sic };
    format!("/subscribers/{}/services/{}{rest}", seg(imsi), seg(sic))
}

/// Percent-encodes a path segment or query value (everything but RFC 3986 unreserved).
fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
