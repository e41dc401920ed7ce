//! Service routes: the services of one subscriber, each keyed by its SIC (`plain` in a
//! path for the plain IMPI). Subscribing and unsubscribing touch exactly one service: the
//! siblings' entries, registrations included, are left as they were (the patent's point:
//! services come and go independently).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::cx::{ppr, rtr};
use crate::store::{ServiceProfile, Subscriber, SubscriberStore};

use super::form::{build_service, parse_sic_key, relabel, FormKind, ServiceForm, PLAIN_PATH};
use super::view::ServiceView;
use super::{sic_display, ApiError, ApiState, HssReport, JsonBody};

type St<S> = State<Arc<ApiState<S>>>;

/// Answer of `DELETE /subscribers/{imsi}/services/{sic}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unsubscribed {
    /// Always true: the service is gone from the HSS whatever the RTA said.
    pub removed: bool,
    /// The RTR (`sent: false` when no S-CSCF held the service).
    pub rtr: HssReport,
}

/// Answer of `PUT /subscribers/{imsi}/services/{sic}/profile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileChanged {
    /// The service after the change.
    pub service: ServiceView,
    /// The PPR (`sent: false` when no S-CSCF holds the service).
    pub ppr: HssReport,
}

/// Answer of `POST /subscribers/{imsi}/services/{sic}/deregister`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deregistered {
    /// True: the S-CSCF accepted and the service is NOT_REGISTERED.
    pub deregistered: bool,
    /// The RTR.
    pub rtr: HssReport,
}

/// The service key of a path segment.
fn key(raw: &str) -> Result<String, ApiError> {
    parse_sic_key(raw).map_err(|e| ApiError::Invalid {
        field: "sic".into(),
        problem: e.to_string(),
        fix: Some(format!(
            "use the 3-digit SIC (e.g. 001), or {PLAIN_PATH} for the plain IMPI"
        )),
    })
}

async fn subscriber<S: SubscriberStore>(
    st: &ApiState<S>,
    imsi: &str,
) -> Result<Subscriber, ApiError> {
    st.store
        .get(imsi)
        .await?
        .ok_or_else(|| ApiError::no_subscriber(imsi))
}

/// `GET /subscribers/{imsi}/services`.
pub async fn list<S: SubscriberStore>(
    State(st): St<S>,
    Path(imsi): Path<String>,
) -> Result<Json<Vec<ServiceView>>, ApiError> {
    let sub = subscriber(&st, &imsi).await?;
    Ok(Json(
        sub.services
            .iter()
            .map(|(sic, s)| ServiceView::of(sic, s))
            .collect(),
    ))
}

/// `GET /subscribers/{imsi}/services/{sic}`.
pub async fn show<S: SubscriberStore>(
    State(st): St<S>,
    Path((imsi, sic)): Path<(String, String)>,
) -> Result<Json<ServiceView>, ApiError> {
    let sic = key(&sic)?;
    let sub = subscriber(&st, &imsi).await?;
    let svc = sub
        .services
        .get(&sic)
        .ok_or_else(|| ApiError::no_service(&imsi, &sic))?;
    Ok(Json(ServiceView::of(&sic, svc)))
}

/// `POST /subscribers/{imsi}/services`: adds exactly one service.
pub async fn subscribe<S: SubscriberStore>(
    State(st): St<S>,
    Path(imsi): Path<String>,
    JsonBody(form): JsonBody<ServiceForm>,
) -> Result<impl IntoResponse, ApiError> {
    let sub = subscriber(&st, &imsi).await?;
    let wanted = parse_sic_key(form.sic.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::identity("sic", e))?;
    let exists = |sic: &str| {
        ApiError::Conflict {
        message: format!(
            "subscriber {imsi} has service {} already",
            sic_display(sic)
        ),
        field: Some("sic".into()),
        fix: format!(
            "change its profile with PUT /subscribers/{imsi}/services/{}/profile, or unsubscribe it first",
            path_sic(sic)
        ),
        owner: None,
    }
    };
    if sub.services.contains_key(&wanted) {
        return Err(exists(&wanted));
    }
    let (sic, svc) = build_service("", &sub, form, &st.cx.config.sics)?;
    if let Some(owner) = st.store.find_by_impi(&svc.impi).await? {
        if owner.imsi != sub.imsi {
            return Err(ApiError::Invalid {
                field: "impi".into(),
                problem: format!("{} belongs to subscriber {}", svc.impi, owner.imsi),
                fix: Some("give this subscriber's own IMPI, or leave impi out to derive it".into()),
            });
        }
    }
    let order = vec![(sic.clone(), String::new())];
    let added = svc.clone();
    let key = sic.clone();
    let result = st
        .store
        .update(&imsi, move |s| {
            if s.services.contains_key(&key) {
                return Err(exists(&key));
            }
            let mut new = s.clone();
            new.services.insert(key, added.into());
            new.validate()
                .map_err(|e| relabel(e, &order, FormKind::Service))?;
            *s = new;
            Ok(())
        })
        .await?;
    result?;
    tracing::info!(imsi = %imsi, sic = %sic, impi = %svc.impi, "service subscribed");
    let location = format!("/subscribers/{imsi}/services/{}", path_sic(&sic));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(ServiceView::of(&sic, &svc)),
    ))
}

/// How a SIC key appears in a path.
fn path_sic(sic: &str) -> &str {
    if sic.is_empty() {
        PLAIN_PATH
    } else {
        sic
    }
}

/// `DELETE /subscribers/{imsi}/services/{sic}`: RTR (PERMANENT_TERMINATION) if the service
/// is held by an S-CSCF, then removal whatever the RTA.
pub async fn unsubscribe<S: SubscriberStore>(
    State(st): St<S>,
    Path((imsi, sic)): Path<(String, String)>,
) -> Result<Json<Unsubscribed>, ApiError> {
    let sic = key(&sic)?;
    let sub = subscriber(&st, &imsi).await?;
    if !sub.services.contains_key(&sic) {
        return Err(ApiError::no_service(&imsi, &sic));
    }
    if sub.services.len() == 1 {
        return Err(ApiError::Conflict {
            message: format!(
                "service {} is the only service of subscriber {imsi}; a subscriber needs at least one",
                sic_display(&sic)
            ),
            field: Some("sic".into()),
            fix: format!("remove the subscriber instead (DELETE /subscribers/{imsi})"),
            owner: None,
        });
    }
    let report = match rtr::build(
        &st.cx.config,
        &sub,
        &sic,
        rtr::reason::PERMANENT_TERMINATION,
        "service unsubscribed",
    ) {
        Some((to, req)) => st.send_hss("RTR", &imsi, &sic, to, req).await,
        None => HssReport::not_sent(),
    };
    let key = sic.clone();
    st.store
        .update(&imsi, move |s| {
            s.services.remove(&key);
        })
        .await?;
    tracing::info!(imsi = %imsi, sic = %sic, rtr = %report.outcome(), "service unsubscribed");
    Ok(Json(Unsubscribed {
        removed: true,
        rtr: report,
    }))
}

/// `PUT /subscribers/{imsi}/services/{sic}/profile`: replaces the profile, then pushes it
/// with a PPR if an S-CSCF holds the service.
pub async fn set_profile<S: SubscriberStore>(
    State(st): St<S>,
    Path((imsi, sic)): Path<(String, String)>,
    JsonBody(profile): JsonBody<ServiceProfile>,
) -> Result<Json<ProfileChanged>, ApiError> {
    let sic = key(&sic)?;
    let key = sic.clone();
    let (imsi2, key2) = (imsi.clone(), sic.clone());
    let sub = st
        .store
        .update(&imsi, move |s| {
            let mut new = s.clone();
            let svc = new
                .services
                .get_mut(&key)
                .ok_or_else(|| ApiError::no_service(&imsi2, &key2))?;
            svc.profile = profile;
            let order = vec![(key, String::new())];
            new.validate()
                .map_err(|e| relabel(e, &order, FormKind::Service))?;
            *s = new;
            Ok::<_, ApiError>(s.clone())
        })
        .await??;
    let report = match ppr::build(&st.cx.config, &sub, &sic) {
        Some((to, req)) => st.send_hss("PPR", &imsi, &sic, to, req).await,
        None => HssReport::not_sent(),
    };
    tracing::info!(imsi = %imsi, sic = %sic, ppr = %report.outcome(), "service profile changed");
    Ok(Json(ProfileChanged {
        service: ServiceView::of(&sic, &sub.services[&sic]),
        ppr: report,
    }))
}

/// `POST /subscribers/{imsi}/services/{sic}/deregister`: administrative de-registration,
/// an RTR with PERMANENT_TERMINATION (TS 29.228 §6.1.3) for this service only; on an
/// accepting RTA the service's pairs become NOT_REGISTERED, siblings untouched.
pub async fn deregister<S: SubscriberStore>(
    State(st): St<S>,
    Path((imsi, sic)): Path<(String, String)>,
) -> Result<Json<Deregistered>, ApiError> {
    let sic = key(&sic)?;
    let sub = subscriber(&st, &imsi).await?;
    if !sub.services.contains_key(&sic) {
        return Err(ApiError::no_service(&imsi, &sic));
    }
    let Some((to, req)) = rtr::build(
        &st.cx.config,
        &sub,
        &sic,
        rtr::reason::PERMANENT_TERMINATION,
        "administrative de-registration",
    ) else {
        return Err(ApiError::Conflict {
            message: format!(
                "service {} of subscriber {imsi} is not registered",
                sic_display(&sic)
            ),
            field: Some("sic".into()),
            fix: "nothing to do: no S-CSCF holds this service".into(),
            owner: None,
        });
    };
    let report = st.send_hss("RTR", &imsi, &sic, to, req).await;
    if !report.accepted() {
        return Err(ApiError::Upstream {
            message: format!(
                "the S-CSCF {} did not accept the RTR ({}); service {} of subscriber {imsi} stays registered",
                report.destination.as_deref().unwrap_or("-"),
                report.outcome(),
                sic_display(&sic)
            ),
            report,
        });
    }
    let key = sic.clone();
    st.store
        .update(&imsi, move |s| rtr::apply_accepted(s, &key))
        .await?;
    tracing::info!(imsi = %imsi, sic = %sic, "service de-registered by the operator");
    Ok(Json(Deregistered {
        deregistered: true,
        rtr: report,
    }))
}
