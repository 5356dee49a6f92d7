//! The HTTP server (axum): the minimal API this issue needs, which the wallet API extends.
//!
//! - `GET /v1/status`: the node's state (height, block hash, state root, role, peers, …).
//! - `POST /v1/transfers`: a signed transfer in its JSON form (see `protocol::transfer`).
//!   `202 {"id", "status": "accepted"}`; `200 {"id", "status": "duplicate", "current": …}`
//!   for one already known; `400 {code, message}` for a bad transfer; `429 mempool_full`.
//! - `GET /v1/transfers/{id}`: `pending`, `committed` (height, position), `superseded` (by),
//!   `rejected` (code), or 404.
//! - `GET /v1/blocks/{height}`: the committed header and its transfer ids.
//!
//! Every error is JSON `{code, message}`. Signatures are checked here, off the core task,
//! through the shared [`SignatureCache`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use protocol::transfer::TransferJson;
use protocol::{Block, Genesis, Hash, VerifiedTransfer};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::core::{CoreInput, SharedStatus, SubmitOutcome, TransferStatus};
use crate::mempool::FinalStatus;
use crate::sigcache::SignatureCache;
use crate::storage::Storage;

/// Largest request body accepted: a signed transfer in JSON is well under 2 KiB.
const BODY_LIMIT_BYTES: usize = 16 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The genesis (decimals, network id).
    pub genesis: Arc<Genesis>,
    /// The core's input channel.
    pub core: mpsc::Sender<CoreInput>,
    /// The status snapshot.
    pub status: SharedStatus,
    /// The database, for reads.
    pub storage: Storage,
    /// Signature verdicts.
    pub signatures: Arc<SignatureCache>,
}

/// The router with every route.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/transfers", post(submit))
        .route("/v1/transfers/{id}", get(transfer_status))
        .route("/v1/blocks/{height}", get(block))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such endpoint") })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state)
}

/// A JSON error response.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({ "code": code, "message": message }))).into_response()
}

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "the node is shutting down",
    )
}

async fn status(State(state): State<ApiState>) -> Response {
    let snapshot = state
        .status
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    Json(snapshot).into_response()
}

async fn submit(State(state): State<ApiState>, body: axum::body::Bytes) -> Response {
    let json: TransferJson = match serde_json::from_slice(&body) {
        Ok(json) => json,
        Err(problem) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                &problem.to_string(),
            );
        }
    };
    let signed = match json.to_signed(state.genesis.decimals) {
        Ok(signed) => signed,
        Err(problem) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_transfer",
                &problem.to_string(),
            );
        }
    };

    let id = signed.id();
    let encoded = signed.encode();
    let valid = state
        .signatures
        .check(&encoded, || signed.verify_signature().is_ok());
    if !valid {
        let message = "the signature does not verify under the sender's key";
        return error(StatusCode::BAD_REQUEST, "bad_signature", message);
    }
    let transfer = VerifiedTransfer::assume_verified(signed);

    let (reply, answer) = oneshot::channel();
    if state
        .core
        .send(CoreInput::Submit { transfer, reply })
        .await
        .is_err()
    {
        return unavailable();
    }
    let Ok(outcome) = answer.await else {
        return unavailable();
    };

    match outcome {
        SubmitOutcome::Accepted => {
            let body = json!({ "id": id, "status": "accepted" });
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        SubmitOutcome::Duplicate(current) => {
            let body = json!({ "id": id, "status": "duplicate", "current": status_json(&current) });
            (StatusCode::OK, Json(body)).into_response()
        }
        SubmitOutcome::Rejected { code, message } => {
            let status = if code == "mempool_full" {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::BAD_REQUEST
            };
            error(status, &code, &message)
        }
    }
}

async fn transfer_status(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<Hash>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_id",
            "a transfer id is 64 lowercase hex",
        );
    };
    let (reply, answer) = oneshot::channel();
    if state
        .core
        .send(CoreInput::Status { id, reply })
        .await
        .is_err()
    {
        return unavailable();
    }
    match answer.await {
        Ok(TransferStatus::Unknown) => error(
            StatusCode::NOT_FOUND,
            "unknown_transfer",
            "this node never saw that transfer",
        ),
        Ok(current) => {
            let mut body = status_json(&current);
            body["id"] = json!(id);
            Json(body).into_response()
        }
        Err(_) => unavailable(),
    }
}

fn status_json(status: &TransferStatus) -> Value {
    match status {
        TransferStatus::Pending => json!({ "status": "pending" }),
        TransferStatus::Committed { height, position } => {
            json!({ "status": "committed", "height": height.to_string(), "position": position })
        }
        TransferStatus::Final(FinalStatus::Superseded { by }) => {
            json!({ "status": "superseded", "by": by })
        }
        TransferStatus::Final(FinalStatus::Rejected { code }) => {
            json!({ "status": "rejected", "code": code })
        }
        TransferStatus::Unknown => json!({ "status": "unknown" }),
    }
}

async fn block(State(state): State<ApiState>, Path(height): Path<String>) -> Response {
    let Ok(height) = height.parse::<u64>() else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_height",
            "a height is a decimal integer",
        );
    };
    let bytes = match state.storage.block(height) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "unknown_block",
                "no block at that height",
            );
        }
        Err(problem) => {
            tracing::error!(%problem, "reading a block failed");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_error",
                "cannot read block",
            );
        }
    };
    let Ok(block) = Block::decode(&bytes) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage_error",
            "stored block is corrupt",
        );
    };

    let header = &block.header;
    let ids: Vec<Hash> = block
        .transfers
        .iter()
        .map(|transfer| transfer.id())
        .collect();
    Json(json!({
        "height": header.height.to_string(),
        "hash": block.hash(),
        "parent": header.parent,
        "proposer": header.proposer,
        "timestamp_ms": header.timestamp_ms.to_string(),
        "transfers_root": header.transfers_root,
        "state_root": header.state_root,
        "transfers": ids,
    }))
    .into_response()
}
