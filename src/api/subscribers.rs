//! Subscriber routes: create, list, show, update, remove, and the JSON-lines import and
//! export.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::cx::rtr;
use crate::store::jsonl::{export_jsonl, import_jsonl};
use crate::store::SubscriberStore;

use super::form::{apply_update, build_subscriber, SubscriberForm, SubscriberUpdate};
use super::view::SubscriberView;
use super::{ApiError, ApiState, HssReport, JsonBody};

/// Page size of `GET /subscribers` when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// Largest `limit` of `GET /subscribers`.
pub const MAX_LIMIT: usize = 1000;

type St<S> = State<Arc<ApiState<S>>>;

/// Query of `GET /subscribers`.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// List IMSIs after this one (exclusive).
    pub after: Option<String>,
    /// Page size, 1 to [`MAX_LIMIT`].
    pub limit: Option<String>,
}

/// A page of `GET /subscribers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberPage {
    /// The subscribers, in IMSI order.
    pub subscribers: Vec<SubscriberView>,
    /// Pass as `after` for the next page; null on the last page.
    pub next: Option<String>,
}

/// Query of `GET /subscribers/{imsi}`.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    /// `true` to include the credentials.
    pub secrets: Option<String>,
}

/// An RTR sent for one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// The service's SIC.
    pub sic: String,
    /// What happened.
    #[serde(flatten)]
    pub report: HssReport,
}

/// Answer of `DELETE /subscribers/{imsi}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// Always true (the subscriber is gone).
    pub removed: bool,
    /// One RTR per service an S-CSCF held, in SIC order.
    pub rtr: Vec<ServiceReport>,
}

/// Answer of `POST /import`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// Subscribers written.
    pub imported: u64,
    /// Of those, how many replaced an existing one.
    pub replaced: u64,
}

/// `POST /subscribers`.
pub async fn create<S: SubscriberStore>(
    State(st): St<S>,
    JsonBody(form): JsonBody<SubscriberForm>,
) -> Result<impl IntoResponse, ApiError> {
    let sub = build_subscriber(form, &st.cx.config.sics)?;
    st.store.create(sub.clone()).await?;
    tracing::info!(imsi = %sub.imsi, services = sub.services.len(), "subscriber created");
    let location = format!("/subscribers/{}", sub.imsi);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(SubscriberView::of(&sub, false)),
    ))
}

/// `GET /subscribers?after=&limit=`.
pub async fn list<S: SubscriberStore>(
    State(st): St<S>,
    Query(q): Query<ListQuery>,
) -> Result<Json<SubscriberPage>, ApiError> {
    let limit = match q.limit.as_deref() {
        None | Some("") => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("must be a number from 1 to {MAX_LIMIT}, got {l:?}"),
                ))
            }
        },
    };
    let after = q.after.as_deref().filter(|a| !a.is_empty());
    let page = st.store.list(after, limit).await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|s| s.imsi.clone()))
        .flatten();
    Ok(Json(SubscriberPage {
        subscribers: page.iter().map(|s| SubscriberView::of(s, false)).collect(),
        next,
    }))
}

/// `GET /subscribers/{imsi}[?secrets=true]`.
pub async fn show<S: SubscriberStore>(
    State(st): St<S>,
    Path(imsi): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Json<SubscriberView>, ApiError> {
    let secrets = match q.secrets.as_deref() {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "secrets",
                format!("must be true or false, got {other:?}"),
            ))
        }
    };
    let sub = st
        .store
        .get(&imsi)
        .await?
        .ok_or_else(|| ApiError::no_subscriber(&imsi))?;
    if secrets {
        tracing::info!(imsi = %sub.imsi, "credentials read through the provisioning API");
    }
    Ok(Json(SubscriberView::of(&sub, secrets)))
}

/// `PUT /subscribers/{imsi}`: merge (see [`SubscriberUpdate`]).
pub async fn update<S: SubscriberStore>(
    State(st): St<S>,
    Path(imsi): Path<String>,
    JsonBody(upd): JsonBody<SubscriberUpdate>,
) -> Result<Json<SubscriberView>, ApiError> {
    let fields = changed_fields(&upd);
    let sub = st
        .store
        .update(&imsi, move |s| apply_update(s, upd).map(|()| s.clone()))
        .await??;
    tracing::info!(imsi = %sub.imsi, fields = %fields, "subscriber updated");
    Ok(Json(SubscriberView::of(&sub, false)))
}

/// Names of the fields an update sets, for the log (never their values).
fn changed_fields(upd: &SubscriberUpdate) -> String {
    match serde_json::to_value(upd) {
        Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect::<Vec<_>>().join(","),
        _ => String::new(),
    }
}

/// `DELETE /subscribers/{imsi}`: an RTR with PERMANENT_TERMINATION for each service an
/// S-CSCF holds, then removal whatever the answers.
pub async fn remove<S: SubscriberStore>(
    State(st): St<S>,
    Path(imsi): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    let sub = st
        .store
        .get(&imsi)
        .await?
        .ok_or_else(|| ApiError::no_subscriber(&imsi))?;
    let mut reports = Vec::new();
    for sic in sub.services.keys() {
        if let Some((to, req)) = rtr::build(
            &st.cx.config,
            &sub,
            sic,
            rtr::reason::PERMANENT_TERMINATION,
            "subscription removed",
        ) {
            let report = st.send_hss("RTR", &imsi, sic, to, req).await;
            reports.push(ServiceReport {
                sic: sic.clone(),
                report,
            });
        }
    }
    st.store
        .delete(&imsi)
        .await?
        .ok_or_else(|| ApiError::no_subscriber(&imsi))?;
    tracing::info!(imsi = %imsi, rtr = reports.len(), "subscriber removed");
    Ok(Json(Removed {
        removed: true,
        rtr: reports,
    }))
}

/// `POST /import`: JSON lines in the export format, insert-or-replace.
pub async fn import<S: SubscriberStore>(
    State(st): St<S>,
    body: Bytes,
) -> Result<Json<Imported>, ApiError> {
    let report = import_jsonl(&*st.store, body.as_ref()).await?;
    tracing::info!(
        imported = report.imported,
        replaced = report.replaced,
        "subscribers imported"
    );
    Ok(Json(Imported {
        imported: report.imported,
        replaced: report.replaced,
    }))
}

/// `GET /export`: every subscriber as a JSON line, with credentials (a backup).
pub async fn export<S: SubscriberStore>(State(st): St<S>) -> Result<impl IntoResponse, ApiError> {
    let mut out = Vec::new();
    let n = export_jsonl(&*st.store, &mut out).await?;
    tracing::info!(
        subscribers = n,
        "subscribers exported (with credentials) through the provisioning API"
    );
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], out))
}
