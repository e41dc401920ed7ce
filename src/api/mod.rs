//! The provisioning API: HTTP/JSON over axum, for operators and the `sichss` admin CLI.
//!
//! # Routes
//!
//! | method and path | what |
//! |---|---|
//! | `GET /health` | `{"status":"ok"}`; never needs the token |
//! | `POST /subscribers` | create from a [`form::SubscriberForm`] (201, the view) |
//! | `GET /subscribers?after=&limit=` | a page of views, `next` to continue |
//! | `GET /subscribers/{imsi}[?secrets=true]` | the [`view::SubscriberView`]; credentials only with `secrets=true` |
//! | `PUT /subscribers/{imsi}` | merge a [`form::SubscriberUpdate`] |
//! | `DELETE /subscribers/{imsi}` | RTR (PERMANENT_TERMINATION) for each registered service, then remove |
//! | `GET /subscribers/{imsi}/services` | the service views |
//! | `POST /subscribers/{imsi}/services` | subscribe one SIC ([`form::ServiceForm`]) |
//! | `GET /subscribers/{imsi}/services/{sic}` | one service view |
//! | `DELETE /subscribers/{imsi}/services/{sic}` | unsubscribe: RTR if registered, then remove |
//! | `PUT /subscribers/{imsi}/services/{sic}/profile` | replace the profile; PPR if registered |
//! | `POST /subscribers/{imsi}/services/{sic}/deregister` | administrative de-registration (RTR) |
//! | `POST /import` | JSON lines (the export format), insert-or-replace |
//! | `GET /export` | JSON lines of every subscriber, **with credentials** (a backup; as `enc:v1:` ciphertext when encryption at rest is on, see [`crate::store::secrets`]) |
//! | `GET /openapi.json` | the OpenAPI 3.0 description (`src/api/openapi.json`) |
//! | `GET /metrics` | Prometheus text ([`metrics`]) |
//!
//! In paths the plain (SIC-less) service is `plain`; in JSON its SIC is `""`.
//!
//! # Security
//!
//! With a token configured, every route but `/health` needs `Authorization: Bearer
//! <token>`. [`check_listen`] is the rule the composition root applies: no token, loopback
//! only. Credentials never appear in views, errors, logs or metrics; only
//! `?secrets=true` and `/export` return them. [`serve_tls`] serves the same router over
//! HTTPS.
//!
//! # HSS-initiated requests
//!
//! RTR and PPR are built by [`crate::cx::rtr`] and [`crate::cx::ppr`] for one service and
//! sent through [`HssRequests`], which the server implements with its peer table (and
//! bounds with its request timeout). Each is reported in the response as an
//! [`HssReport`] and counted in `sichss_hss_requests_total`.
//!
//! Must not depend on: sled (only the `SubscriberStore` trait), the Diameter server (only
//! [`HssRequests`]).

pub mod error;
pub mod form;
pub mod metrics;
pub mod services;
pub mod subscribers;
pub mod view;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::Message;
use crate::cx::CxApp;
use crate::store::{ScscfAssignment, SubscriberStore};

pub use error::{ApiError, ErrorBody};
pub use metrics::Metrics;

/// The OpenAPI 3.0 description served at `/openapi.json`.
pub const OPENAPI: &str = include_str!("openapi.json");

/// Largest `POST /import` body (bytes); other bodies keep axum's 2 MB default.
pub const IMPORT_LIMIT: usize = 1 << 30;

/// Sends an HSS-initiated request (RTR, PPR) to the S-CSCF with this Diameter Origin-Host
/// and returns its answer. Implemented by the server's peer registry; tests implement it
/// with a fake. The implementation bounds the wait (the server's request timeout) and
/// reports a timeout or a missing connection as `Err`.
pub trait HssRequests: Send + Sync + 'static {
    /// Sends `req` to `origin_host` and waits for the answer.
    fn send<'a>(
        &'a self,
        origin_host: &'a str,
        req: Message,
    ) -> Pin<Box<dyn Future<Output = Result<Message, String>> + Send + 'a>>;
}

/// What happened to one HSS-initiated request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HssReport {
    /// Whether a request was sent (false: no S-CSCF held the service).
    pub sent: bool,
    /// The S-CSCF's Diameter Origin-Host it went to.
    pub destination: Option<String>,
    /// The answer's Result-Code (or Experimental-Result-Code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_code: Option<u32>,
    /// Why there is no answer (timeout, no connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl HssReport {
    /// Nothing was sent: no S-CSCF holds the service.
    pub fn not_sent() -> Self {
        HssReport {
            sent: false,
            destination: None,
            result_code: None,
            error: None,
        }
    }

    /// Whether the S-CSCF answered with a success (2xxx) result.
    pub fn accepted(&self) -> bool {
        self.result_code.is_some_and(|c| (2000..3000).contains(&c))
    }

    /// The result as text for messages: `2001`, or the error.
    pub fn outcome(&self) -> String {
        match (&self.result_code, &self.error) {
            (Some(c), _) => format!("Result-Code {c}"),
            (None, Some(e)) => e.clone(),
            (None, None) => "not sent".to_owned(),
        }
    }
}

/// What the API handlers share.
pub struct ApiState<S> {
    /// The subscriber store (the same one the Cx application uses).
    pub store: Arc<S>,
    /// The Cx application: its configuration (Origin-Host, SIC registry) builds RTR/PPR.
    pub cx: CxApp<S>,
    /// Sends RTR and PPR to S-CSCFs.
    pub requests: Arc<dyn HssRequests>,
    /// Process metrics, rendered at `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Bearer token required on every route but `/health`, when set.
    pub token: Option<String>,
}

impl<S: SubscriberStore> ApiState<S> {
    /// State over the Cx application's store.
    pub fn new(
        cx: CxApp<S>,
        requests: Arc<dyn HssRequests>,
        metrics: Arc<Metrics>,
        token: Option<String>,
    ) -> Self {
        ApiState {
            store: cx.store.clone(),
            cx,
            requests,
            metrics,
            token,
        }
    }

    /// Sends an HSS-initiated request to `to`, logs and counts it, and reports the answer.
    pub(crate) async fn send_hss(
        &self,
        command: &'static str,
        imsi: &str,
        sic: &str,
        to: ScscfAssignment,
        req: Message,
    ) -> HssReport {
        let result = self.requests.send(&to.origin_host, req).await;
        let mut report = HssReport {
            sent: true,
            destination: Some(to.origin_host.clone()),
            result_code: None,
            error: None,
        };
        match result {
            Ok(answer) => {
                let code = answer
                    .result_code()
                    .map(|c| c.0)
                    .or_else(|| answer.experimental_result().map(|e| e.0));
                match code {
                    Some(c) => report.result_code = Some(c),
                    None => report.error = Some("the answer has no Result-Code".to_owned()),
                }
            }
            Err(e) => report.error = Some(e),
        }
        let outcome = report
            .result_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "no_answer".to_owned());
        self.metrics.record_hss_request(command, &outcome);
        tracing::info!(
            cmd = command,
            imsi,
            sic,
            destination = %to.origin_host,
            outcome = %report.outcome(),
            "hss-initiated request"
        );
        report
    }
}

/// The router of every route, over `state`.
pub fn router<S: SubscriberStore>(state: ApiState<S>) -> Router {
    let token = state.token.clone().filter(|t| !t.trim().is_empty());
    let state = Arc::new(state);
    let mut api = Router::new()
        .route(
            "/subscribers",
            get(subscribers::list::<S>).post(subscribers::create::<S>),
        )
        .route(
            "/subscribers/{imsi}",
            get(subscribers::show::<S>)
                .put(subscribers::update::<S>)
                .delete(subscribers::remove::<S>),
        )
        .route(
            "/subscribers/{imsi}/services",
            get(services::list::<S>).post(services::subscribe::<S>),
        )
        .route(
            "/subscribers/{imsi}/services/{sic}",
            get(services::show::<S>).delete(services::unsubscribe::<S>),
        )
        .route(
            "/subscribers/{imsi}/services/{sic}/profile",
            put(services::set_profile::<S>),
        )
        .route(
            "/subscribers/{imsi}/services/{sic}/deregister",
            post(services::deregister::<S>),
        )
        .route(
            "/import",
            post(subscribers::import::<S>).layer(DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .route("/export", get(subscribers::export::<S>))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(render_metrics::<S>))
        .with_state(state);
    if let Some(t) = token {
        api = api.route_layer(middleware::from_fn_with_state(
            Arc::<str>::from(t),
            require_token,
        ));
    }
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(no_route)
}

/// Serves the API on `listener` until `shutdown` completes (then finishes the requests
/// in flight).
///
/// # Errors
/// The listener's I/O error.
pub async fn serve<S: SubscriberStore>(
    listener: tokio::net::TcpListener,
    state: ApiState<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, token = state.token.is_some(), "provisioning API listening");
    }
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// How long an HTTPS client may take to send its request headers.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the API over HTTPS (HTTP/1.1 over TLS, with `tls` from
/// [`crate::tls::server_config`]) on `listener` until `shutdown` completes; then stops
/// accepting and finishes the requests in flight, as [`serve`] does.
///
/// Each connection's TLS handshake runs in its own task, bounded by
/// [`crate::tls::DEFAULT_HANDSHAKE_TIMEOUT`]; a failed handshake is logged and the connection
/// closed. Request headers must arrive within 30 s.
///
/// # Errors
/// None at present (accept errors are logged and retried); kept for symmetry with [`serve`].
pub async fn serve_tls<S: SubscriberStore>(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: ApiState<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, token = state.token.is_some(), "provisioning API listening (HTTPS)");
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let app = router(state);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "provisioning API: accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let timeout = crate::tls::DEFAULT_HANDSHAKE_TIMEOUT;
            let Some(tls) = crate::tls::accept(&acceptor, tcp, peer, timeout, "api").await else {
                return;
            };
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(peer_addr = %peer, error = %e, "provisioning API: connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The listening rule: without a token the API may only listen on a loopback address.
///
/// # Errors
/// A message naming the flag that fixes it.
pub fn check_listen(addr: SocketAddr, token: Option<&str>) -> Result<(), String> {
    let loopback = match addr.ip() {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    if loopback || token.is_some_and(|t| !t.trim().is_empty()) {
        Ok(())
    } else {
        Err(format!(
            "--admin-token (or SICHSS_ADMIN_TOKEN) is required when --admin-listen is not a \
             loopback address (got {addr})"
        ))
    }
}

/// How a SIC key reads in messages: `001`, or `"" (plain)`.
pub(crate) fn sic_display(sic: &str) -> String {
    if sic.is_empty() {
        "\"\" (plain)".to_owned()
    } else {
        sic.to_owned()
    }
}

/// A JSON body whose errors are [`ApiError::BadJson`] naming the field (serde's path).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, St: Send + Sync> FromRequest<St> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &St) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadJson {
                field: None,
                message: e.body_text(),
            })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ApiError::BadJson {
                    field: None,
                    message: format!("invalid JSON body: {inner}"),
                }
            } else {
                ApiError::BadJson {
                    message: format!("{path}: {inner}"),
                    field: Some(path),
                }
            }
        })?;
        de.end().map_err(|e| ApiError::BadJson {
            field: None,
            message: format!("invalid JSON body: {e}"),
        })?;
        Ok(JsonBody(value))
    }
}

async fn require_token(State(token): State<Arc<str>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, t) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| t.trim())
        });
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => next.run(req).await,
        _ => {
            tracing::warn!(path = %req.uri().path(), "provisioning API: missing or wrong bearer token");
            ApiError::Unauthorized.into_response()
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

async fn render_metrics<S: SubscriberStore>(
    State(st): State<Arc<ApiState<S>>>,
) -> impl IntoResponse {
    st.metrics.set_store_stats(st.store.stats());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_needs_no_token_anything_else_does() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let lo6: SocketAddr = "[::1]:8080".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        let public: SocketAddr = "10.1.2.3:8080".parse().unwrap();
        assert!(check_listen(lo, None).is_ok());
        assert!(check_listen(lo6, None).is_ok());
        assert!(check_listen(any, Some("s3cret")).is_ok());
        for addr in [any, public] {
            let e = check_listen(addr, None).unwrap_err();
            assert!(e.contains("--admin-token (or SICHSS_ADMIN_TOKEN) is required when --admin-listen is not a loopback address"), "{e}");
            assert!(check_listen(addr, Some("  ")).is_err());
        }
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
