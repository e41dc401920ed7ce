//! Errors of the provisioning API, each mapped to an HTTP status and a JSON body:
//!
//! ```text
//! {"error": "imsi: must be 6 to 15 decimal digits …", "field": "imsi", "fix": "…"}
//! ```
//!
//! `field` names the request field at fault (a path such as `services[0].sic` or
//! `aka.k`), and `fix` says what to do. Messages never quote a secret: validation of K,
//! OPc, OP and HA1 reports lengths and the offending character's position class only (the
//! store's checks are written that way), and a request body is never echoed.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use crate::identity::IdentityError;
use crate::store::jsonl::{ImportError, ImportErrorKind};
use crate::store::StoreError;

use super::HssReport;

/// The JSON body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong, naming the field when there is one.
    pub error: String,
    /// The request field at fault, e.g. `imsi`, `k`, `services[0].sic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// For an import: the 1-based line at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// For an identity conflict: the IMSI that owns the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// For a failed HSS-initiated request: what was sent and what came back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtr: Option<HssReport>,
}

/// Why a provisioning request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A field of the request is wrong (400).
    #[error("{field}: {problem}")]
    Invalid {
        /// The field path.
        field: String,
        /// What is wrong and what is expected.
        problem: String,
        /// What to do, when it says more than `problem`.
        fix: Option<String>,
    },
    /// The body is not JSON of the expected shape (400); serde's message names the field.
    #[error("{message}")]
    BadJson {
        /// Where serde stopped (`services[0].sic`), if not at the top.
        field: Option<String>,
        /// serde's message.
        message: String,
    },
    /// A line of an import is wrong (400).
    #[error("line {line}: {message}")]
    Import {
        /// 1-based line number.
        line: u64,
        /// Field path inside the line's record, if known.
        field: Option<String>,
        /// What is wrong.
        message: String,
        /// Subscribers imported before the line.
        imported_before: u64,
    },
    /// No or a wrong bearer token (401).
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// The subscriber or service does not exist (404).
    #[error("{what}")]
    NotFound {
        /// What was not found.
        what: String,
        /// What to do.
        fix: String,
    },
    /// The request conflicts with the current state (409).
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// The field at fault, if any.
        field: Option<String>,
        /// What to do.
        fix: String,
        /// The owner of a conflicting identity.
        owner: Option<String>,
    },
    /// The S-CSCF did not accept an HSS-initiated request, or did not answer (502).
    #[error("{message}")]
    Upstream {
        /// What failed.
        message: String,
        /// What was sent and what came back.
        report: HssReport,
    },
    /// No such route (404), distinct from a missing subscriber.
    #[error("no route {method} {path}")]
    NoRoute {
        /// The method.
        method: String,
        /// The path.
        path: String,
    },
    /// The store failed (500).
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 400 naming `field`, with `problem` as the fix.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ApiError::Invalid {
            field: field.into(),
            problem: problem.into(),
            fix: None,
        }
    }

    /// A 400 for an identity (IMSI, SIC, IMPI, IMPU, domain) given in `field`.
    pub fn identity(field: impl Into<String>, e: IdentityError) -> Self {
        ApiError::invalid(field, e.to_string())
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid { .. } | ApiError::BadJson { .. } | ApiError::Import { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound { .. } | ApiError::NoRoute { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody {
        let mut b = ErrorBody {
            error: self.to_string(),
            field: None,
            fix: None,
            line: None,
            owner: None,
            rtr: None,
        };
        match self {
            ApiError::Invalid {
                field,
                problem,
                fix,
            } => {
                b.field = Some(field.clone());
                b.fix = Some(fix.clone().unwrap_or_else(|| problem.clone()));
            }
            ApiError::BadJson { field, .. } => {
                b.field = field.clone();
                b.fix =
                    Some("send a JSON body of the documented shape (GET /openapi.json)".to_owned());
            }
            ApiError::Import {
                line,
                field,
                imported_before,
                ..
            } => {
                b.line = Some(*line);
                b.field = field.clone();
                b.fix = Some(format!(
                    "correct line {line} and import again from it (the {imported_before} \
                     subscribers before it were imported; import replaces, so repeating them is harmless)"
                ));
            }
            ApiError::Unauthorized => {
                b.field = Some("Authorization".to_owned());
                b.fix = Some(
                    "send `Authorization: Bearer <token>` with the --admin-token of sichss serve \
                     (the CLI reads it from --token or SICHSS_TOKEN)"
                        .to_owned(),
                );
            }
            ApiError::NotFound { fix, .. } => b.fix = Some(fix.clone()),
            ApiError::Conflict {
                field, fix, owner, ..
            } => {
                b.field = field.clone();
                b.fix = Some(fix.clone());
                b.owner = owner.clone();
            }
            ApiError::Upstream { report, .. } => {
                b.fix = Some(
                    "check that the S-CSCF is connected (GET /metrics, sichss_diameter_peers) and retry"
                        .to_owned(),
                );
                b.rtr = Some(report.clone());
            }
            ApiError::NoRoute { .. } => {
                b.fix = Some("see GET /openapi.json for the routes".to_owned());
            }
            ApiError::Internal(_) => {
                b.fix = Some("see the sichss log".to_owned());
            }
        }
        b
    }

    /// 404 for a subscriber.
    pub fn no_subscriber(imsi: &str) -> Self {
        ApiError::NotFound {
            what: format!("no subscriber with IMSI {imsi}"),
            fix: "check the IMSI (GET /subscribers lists them) or create it with POST /subscribers"
                .to_owned(),
        }
    }

    /// 404 for a service of a subscriber.
    pub fn no_service(imsi: &str, sic: &str) -> Self {
        ApiError::NotFound {
            what: format!(
                "subscriber {imsi} has no service {}",
                super::sic_display(sic)
            ),
            fix: format!(
                "GET /subscribers/{imsi}/services lists its services; POST one to subscribe it"
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { imsi } => ApiError::no_subscriber(&imsi),
            StoreError::AlreadyExists { imsi } => ApiError::Conflict {
                message: format!("a subscriber with IMSI {imsi} exists already"),
                field: Some("imsi".to_owned()),
                fix: format!(
                    "update it with PUT /subscribers/{imsi}, or remove it first with DELETE /subscribers/{imsi}"
                ),
                owner: Some(imsi),
            },
            StoreError::IdentityConflict { identity, owner } => ApiError::Conflict {
                message: format!("identity {identity} already belongs to subscriber {owner}"),
                field: None,
                fix: format!(
                    "use another identity, or remove {identity} from subscriber {owner} first"
                ),
                owner: Some(owner),
            },
            StoreError::Invalid { field, problem } => ApiError::Invalid {
                problem: redact(&field, problem),
                field,
                fix: None,
            },
            other => {
                tracing::error!(error = %other, "store failed");
                ApiError::Internal(other.to_string())
            }
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        let imported_before = e.imported_before.imported;
        let (field, message) = match &e.kind {
            ImportErrorKind::Parse { path, error } => (
                Some(path.clone()),
                format!("not a subscriber record at {path}: {error}"),
            ),
            ImportErrorKind::Store(StoreError::Invalid { field, problem }) => (
                Some(field.clone()),
                format!("{field}: {}", redact(field, problem.clone())),
            ),
            ImportErrorKind::Store(other) => (None, other.to_string()),
            ImportErrorKind::Read(io) => (None, format!("cannot read the body: {io}")),
        };
        ApiError::Import {
            line: e.line,
            field,
            message,
            imported_before,
        }
    }
}

/// Whether `field` holds a secret (K, OPc, OP, password, HA1).
pub(crate) fn is_secret_field(field: &str) -> bool {
    let last = field.rsplit('.').next().unwrap_or(field);
    matches!(last, "k" | "opc" | "op" | "password" | "ha1")
}

/// The store's problem text for a secret field, without the offending character it quotes.
fn redact(field: &str, problem: String) -> String {
    match problem.find("found non-hex character") {
        Some(at) if is_secret_field(field) => {
            format!("{}found a non-hex character", &problem[..at])
        }
        _ => problem,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(self.body())).into_response()
    }
}
