//! Every error the API answers: one variant per broken rule, each with a stable code.
//!
//! The body is always JSON `{"code": "...", "message": "..."}`. Codes are part of the API
//! (docs/api.md lists them) and never change meaning; messages are for people and may.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::backend::BackendError;

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON, or not the expected shape (wrong type, unknown or duplicate
    /// field, missing field).
    #[error("{0}")]
    MalformedJson(String),
    /// The JSON parses but is not a valid signed transfer.
    #[error("{0}")]
    InvalidTransfer(String),
    /// The transfer's signature does not verify.
    #[error("the signature does not verify under the sender's key")]
    BadSignature,
    /// The node refused the transfer (ledger or mempool rule), with the node's code.
    #[error("{message}")]
    Refused {
        /// Stable code from the node.
        code: String,
        /// For people.
        message: String,
    },
    /// A path or query parameter does not parse.
    #[error("{message}")]
    BadParameter {
        /// Stable code (`bad_id`, `bad_address`, `bad_height`, `bad_limit`, `bad_cursor`, …).
        code: &'static str,
        /// For people.
        message: String,
    },
    /// No route matches the path.
    #[error("no such endpoint")]
    NoRoute,
    /// The route exists but not for this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// The transfer id was never seen by this node.
    #[error("this node never saw that transfer")]
    UnknownTransfer,
    /// No block at that height.
    #[error("no block at that height")]
    UnknownBlock,
    /// The body is larger than the limit.
    #[error("the body is larger than {0} bytes")]
    BodyTooLarge(usize),
    /// The body did not arrive in time.
    #[error("the body did not arrive within {0} ms")]
    BodyTimeout(u128),
    /// The body was cut off or unreadable.
    #[error("the body could not be read")]
    BodyUnreadable,
    /// The content type is not `application/json`.
    #[error("the content type must be application/json")]
    UnsupportedMediaType,
    /// The mempool is full.
    #[error("{0}")]
    MempoolFull(String),
    /// The client sent more requests than its rate allows.
    #[error("too many requests: at most {0} per second")]
    RateLimited(u32),
    /// The node is catching up and would give a stale answer.
    #[error("the node is syncing; ask again when it has caught up")]
    Syncing,
    /// The node is stopping.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// The node's storage failed: the node's fault, never the client's.
    #[error("internal storage error")]
    Storage,
}

impl ApiError {
    /// The stable snake_case code.
    pub fn code(&self) -> &str {
        match self {
            ApiError::MalformedJson(_) => "malformed_json",
            ApiError::InvalidTransfer(_) => "invalid_transfer",
            ApiError::BadSignature => "bad_signature",
            ApiError::Refused { code, .. } => code,
            ApiError::BadParameter { code, .. } => code,
            ApiError::NoRoute => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::UnknownTransfer => "unknown_transfer",
            ApiError::UnknownBlock => "unknown_block",
            ApiError::BodyTooLarge(_) => "body_too_large",
            ApiError::BodyTimeout(_) => "body_timeout",
            ApiError::BodyUnreadable => "body_unreadable",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::MempoolFull(_) => "mempool_full",
            ApiError::RateLimited(_) => "rate_limited",
            ApiError::Syncing => "node_syncing",
            ApiError::ShuttingDown => "shutting_down",
            ApiError::Storage => "storage_error",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MalformedJson(_)
            | ApiError::InvalidTransfer(_)
            | ApiError::BadSignature
            | ApiError::Refused { .. }
            | ApiError::BadParameter { .. }
            | ApiError::BodyUnreadable => StatusCode::BAD_REQUEST,
            ApiError::NoRoute | ApiError::UnknownTransfer | ApiError::UnknownBlock => {
                StatusCode::NOT_FOUND
            }
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::MempoolFull(_) | ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Syncing | ApiError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A bad path or query parameter.
    pub fn parameter(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::BadParameter {
            code,
            message: message.into(),
        }
    }
}

impl From<BackendError> for ApiError {
    fn from(error: BackendError) -> ApiError {
        match error {
            BackendError::ShuttingDown => ApiError::ShuttingDown,
            BackendError::Storage(problem) => {
                tracing::error!(%problem, "api: storage read failed");
                ApiError::Storage
            }
            BackendError::NotInHistory => {
                ApiError::parameter("bad_cursor", "not a cursor from this account's history")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "code": self.code(), "message": self.to_string() });
        (self.status(), Json(body)).into_response()
    }
}
