//! One function per endpoint: parse, ask the node, shape the answer.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use protocol::chain_log::{CertifiedBlock, Encoder, LogHeader};
use protocol::transfer::{TransferJson, parse_integer};
use protocol::{Hash, PublicKey};
use serde_json::json;

use super::ApiState;
use super::backend::{SubmitOutcome, TransferState};
use super::cursor;
use super::error::ApiError;
use super::extract::{JsonBody, Params};
use super::views;

/// Blocks read from storage per chunk of the log stream.
const LOG_CHUNK_BLOCKS: u64 = 16;

/// `GET /v1/status`.
pub async fn status(State(state): State<ApiState>) -> Response {
    Json(state.node.status()).into_response()
}

/// `GET /v1/health`: 200 while the node answers and is not syncing, 503 while it is.
pub async fn health(State(state): State<ApiState>) -> Response {
    let status = state.node.status();
    let code = if status.syncing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = json!({ "ok": !status.syncing, "height": status.height, "syncing": status.syncing });
    (code, Json(body)).into_response()
}

/// `GET /v1/genesis`.
pub async fn genesis(State(state): State<ApiState>) -> Response {
    let genesis = state.node.genesis();
    Json(json!({
        "network_id": genesis.network_id(),
        "network": genesis.network,
        "decimals": genesis.decimals.get(),
        "min_fee": protocol::format_amount(genesis.min_fee, genesis.decimals),
        "genesis_toml": genesis.to_toml(),
    }))
    .into_response()
}

/// `POST /v1/transfers`.
pub async fn submit(
    State(state): State<ApiState>,
    JsonBody(json): JsonBody<TransferJson>,
) -> Result<Response, ApiError> {
    refuse_while_syncing(&state)?;
    let decimals = state.node.genesis().decimals;
    let signed = json
        .to_signed(decimals)
        .map_err(|error| ApiError::InvalidTransfer(error.to_string()))?;
    let id = signed.id();

    let outcome = state.node.submit(signed).await?;

    match outcome {
        SubmitOutcome::Accepted => {
            state.metrics.submitted(id, Instant::now());
            let body = json!({ "id": id, "status": "accepted" });
            Ok((StatusCode::ACCEPTED, Json(body)).into_response())
        }
        SubmitOutcome::Duplicate(current) => {
            let body = json!({
                "id": id,
                "status": "duplicate",
                "current": views::transfer_state(&id, &current),
            });
            Ok((StatusCode::OK, Json(body)).into_response())
        }
        SubmitOutcome::Rejected { code, message } => {
            state.metrics.rejected(&code);
            if code == "bad_signature" {
                return Err(ApiError::BadSignature);
            }
            if code == "mempool_full" {
                return Err(ApiError::MempoolFull(message));
            }
            Err(ApiError::Refused { code, message })
        }
    }
}

/// `GET /v1/transfers/{id}`.
pub async fn transfer(
    State(state): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_text(id)?;
    let id: Hash = id
        .parse()
        .map_err(|_| ApiError::parameter("bad_id", "a transfer id is 64 lowercase hex"))?;

    let current = state.node.transfer(id).await?;

    match current {
        TransferState::Unknown => Err(ApiError::UnknownTransfer),
        TransferState::Committed(location) => {
            let certified = state
                .node
                .block(location.height)?
                .ok_or(ApiError::Storage)?;
            let decimals = state.node.genesis().decimals;
            let body =
                views::committed(&id, location, &certified, decimals).ok_or(ApiError::Storage)?;
            Ok(Json(body).into_response())
        }
        other => Ok(Json(views::transfer_state(&id, &other)).into_response()),
    }
}

/// `GET /v1/accounts/{address}`.
pub async fn account(
    State(state): State<ApiState>,
    address: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let address = parse_address(&path_text(address)?)?;
    refuse_while_syncing(&state)?;

    let account = state.node.account(address).await?;

    let decimals = state.node.genesis().decimals;
    Ok(Json(views::account(&address, &account, decimals)).into_response())
}

/// `GET /v1/accounts/{address}/transfers?limit=N&cursor=C`.
pub async fn history(
    State(state): State<ApiState>,
    address: Result<Path<String>, PathRejection>,
    params: Params,
) -> Result<Response, ApiError> {
    let address = parse_address(&path_text(address)?)?;
    let limit = cursor::limit(params.get("limit"))
        .map_err(|message| ApiError::parameter("bad_limit", message))?;
    let before = match params.get("cursor") {
        None => None,
        Some(text) => Some(
            cursor::decode(text)
                .ok_or_else(|| ApiError::parameter("bad_cursor", "not a cursor from this API"))?,
        ),
    };
    refuse_while_syncing(&state)?;

    let entries = state.node.history(&address, before, limit)?;

    // Entries of one page often share blocks; read each block once.
    let mut blocks: HashMap<u64, CertifiedBlock> = HashMap::new();
    let decimals = state.node.genesis().decimals;
    let mut page = Vec::with_capacity(entries.len());
    for location in &entries {
        let certified = match blocks.entry(location.height) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let read = state.node.block(location.height)?;
                entry.insert(read.ok_or(ApiError::Storage)?)
            }
        };
        let transfer = certified
            .block
            .transfers
            .get(location.position as usize)
            .filter(|transfer| {
                transfer.transfer.sender == address || transfer.transfer.receiver == address
            })
            .ok_or(ApiError::Storage)?;
        page.push(views::history_entry(
            &address, *location, transfer, decimals,
        ));
    }

    let next = (entries.len() == limit)
        .then(|| entries.last().map(|location| cursor::encode(*location)))
        .flatten();
    Ok(Json(json!({ "transfers": page, "next_cursor": next })).into_response())
}

/// `GET /v1/blocks/latest`.
pub async fn latest_block(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let height = *state.node.heads().borrow();
    block_at(&state, height)
}

/// `GET /v1/blocks/{height}`.
pub async fn block(
    State(state): State<ApiState>,
    height: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let height = parse_integer(&path_text(height)?)
        .ok_or_else(|| ApiError::parameter("bad_height", "a height is a decimal integer"))?;
    block_at(&state, height)
}

fn block_at(state: &ApiState, height: u64) -> Result<Response, ApiError> {
    let certified = state.node.block(height)?.ok_or(ApiError::UnknownBlock)?;
    let decimals = state.node.genesis().decimals;
    Ok(Json(views::block(&certified, decimals)).into_response())
}

/// `GET /v1/log?from=H`: the chain log (docs/log-format.md) from height H (default 1) to the
/// head at the time of the request, streamed a few blocks at a time.
pub async fn log(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let from = match params.get("from") {
        None => 1,
        Some(text) => parse_integer(text)
            .filter(|height| *height >= 1)
            .ok_or_else(|| ApiError::parameter("bad_height", "from must be a height from 1"))?,
    };
    let head = *state.node.heads().borrow();
    if from > head.saturating_add(1) {
        return Err(ApiError::UnknownBlock);
    }

    let network_id = state.node.genesis().network_id();
    let (encoder, header) = Encoder::start(LogHeader {
        network_id,
        first_height: from,
    });
    let first = futures::stream::iter([Ok::<_, std::io::Error>(header)]);
    let records = futures::stream::unfold((Some(encoder), from), move |(encoder, next)| {
        let node = state.node.clone();
        async move {
            let mut encoder = encoder?;
            if next > head {
                return Some((Ok(encoder.finish()), (None, next)));
            }
            let last = head.min(next + LOG_CHUNK_BLOCKS - 1);
            let mut chunk = Vec::new();
            for height in next..=last {
                let raw = node.raw_block(height).ok().flatten();
                let Some((block, certificate)) = raw else {
                    // A read failing mid-stream cannot become an HTTP error any more; cut
                    // the stream without its end record, which no reader accepts.
                    tracing::error!(height, "api: log stream cut: block unreadable");
                    let error = std::io::Error::other("block unreadable");
                    return Some((Err(error), (None, next)));
                };
                let hash = match protocol::Block::decode(&block) {
                    Ok(decoded) => decoded.hash(),
                    Err(_) => {
                        let error = std::io::Error::other("stored block corrupt");
                        return Some((Err(error), (None, next)));
                    }
                };
                chunk.extend(encoder.raw_block(hash, &block, &certificate));
            }
            Some((Ok(chunk), (Some(encoder), last + 1)))
        }
    });
    let body = Body::from_stream(futures::StreamExt::chain(first, records));
    Ok(([(CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

/// `GET /v1/evidence`.
pub async fn evidence(State(state): State<ApiState>) -> Response {
    Json(json!({ "evidence": state.node.evidence() })).into_response()
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let text = state
        .metrics
        .render(&state.node.status(), state.node.evidence_seen());
    let content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    ([(CONTENT_TYPE, content_type)], text).into_response()
}

/// 404 for any path no route matches.
pub async fn no_route() -> ApiError {
    ApiError::NoRoute
}

/// 405 for a known path with another method.
pub async fn wrong_method() -> ApiError {
    ApiError::MethodNotAllowed
}

fn refuse_while_syncing(state: &ApiState) -> Result<(), ApiError> {
    if state.node.status().syncing {
        return Err(ApiError::Syncing);
    }
    Ok(())
}

fn path_text(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    path.map(|Path(text)| text)
        .map_err(|_| ApiError::parameter("bad_path", "the path does not decode as UTF-8"))
}

/// Accepts the `tly1…` address or the key's 64 lowercase hex characters.
pub(super) fn parse_address(text: &str) -> Result<PublicKey, ApiError> {
    let parsed = if text.starts_with("tly1") {
        PublicKey::from_address(text)
    } else {
        PublicKey::from_hex(text)
    };
    parsed.map_err(|error| ApiError::parameter("bad_address", format!("{text}: {error}")))
}
