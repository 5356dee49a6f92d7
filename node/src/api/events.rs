//! `GET /v1/events`: server-sent events of committed transfers, resumable, with a bounded
//! buffer per client.
//!
//! Each event is one committed transfer, with id `H-P` (height and position in the block).
//! A client starts at the head (only new commits), at `?from=H` (every transfer from height
//! H on), or after the id in its `Last-Event-ID` header (what a browser's `EventSource`
//! sends on reconnecting), and may narrow to one account with `?account=ADDRESS`. Events are
//! read from the committed blocks in storage, so replay and live delivery are one code path
//! and a reconnecting wallet misses nothing.
//!
//! Each client has its own task feeding a channel of [`EventLimits::buffer`] events. When
//! the buffer stays full for [`EventLimits::slow_client`] the client is too far behind: the
//! task stops, the client receives what is buffered, then an `error` event
//! (`client_too_slow`), and the stream ends. It can reconnect with its last event id.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Sse;
use axum::response::sse::{Event, KeepAlive};
use futures::Stream;
use protocol::transfer::{TransferJson, parse_integer};
use protocol::{PublicKey, SignedTransfer};
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use super::ApiState;
use super::backend::{Location, NodeApi};
use super::error::ApiError;
use super::extract::Params;

/// Per-client bounds of the event stream.
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    /// Events buffered for one client.
    pub buffer: usize,
    /// How long the buffer may stay full before the client is cut off.
    pub slow_client: Duration,
}

/// One event on its way to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// A committed transfer: its `H-P` id and its JSON.
    Transfer {
        /// `height-position`.
        id: String,
        /// The event's data.
        data: String,
    },
    /// The stream ends with this error.
    Error {
        /// Stable code.
        code: &'static str,
        /// For people.
        message: String,
    },
}

/// `GET /v1/events`.
pub async fn events(
    State(state): State<ApiState>,
    headers: HeaderMap,
    params: Params,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let account = match params.get("account") {
        None => None,
        Some(text) => Some(super::handlers::parse_address(text)?),
    };
    let start = start(&state, &headers, &params)?;

    let receiver = spawn_feed(state.node.clone(), start, account, state.config.events);

    let stream = futures::StreamExt::map(receiver, |outgoing| Ok(to_event(outgoing)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Where the stream starts: after `Last-Event-ID`, at `from`, or after the head.
fn start(state: &ApiState, headers: &HeaderMap, params: &Params) -> Result<Location, ApiError> {
    if let Some(value) = headers.get("last-event-id") {
        let last = value
            .to_str()
            .ok()
            .and_then(parse_event_id)
            .ok_or_else(|| {
                ApiError::parameter("bad_event_id", "Last-Event-ID must be HEIGHT-POSITION")
            })?;
        return Ok(Location {
            height: last.height,
            position: last.position.saturating_add(1),
        });
    }
    if let Some(text) = params.get("from") {
        let height = parse_integer(text)
            .filter(|height| *height >= 1)
            .ok_or_else(|| ApiError::parameter("bad_height", "from must be a height from 1"))?;
        return Ok(Location {
            height,
            position: 0,
        });
    }
    let head = *state.node.heads().borrow();
    Ok(Location {
        height: head + 1,
        position: 0,
    })
}

/// Parses an event id `HEIGHT-POSITION`.
pub fn parse_event_id(text: &str) -> Option<Location> {
    let (height, position) = text.split_once('-')?;
    Some(Location {
        height: parse_integer(height)?,
        position: u32::try_from(parse_integer(position)?).ok()?,
    })
}

fn to_event(outgoing: Outgoing) -> Event {
    match outgoing {
        Outgoing::Transfer { id, data } => Event::default().event("transfer").id(id).data(data),
        Outgoing::Error { code, message } => Event::default()
            .event("error")
            .data(json!({ "code": code, "message": message }).to_string()),
    }
}

/// Starts the client's feed task; the stream yields its events, then any closing error.
pub fn spawn_feed(
    node: Arc<dyn NodeApi>,
    start: Location,
    account: Option<PublicKey>,
    limits: EventLimits,
) -> impl Stream<Item = Outgoing> + Send + 'static {
    let (sender, receiver) = mpsc::channel(limits.buffer.max(1));
    let (closing, closed) = oneshot::channel();
    tokio::spawn(async move {
        let error = feed(node, start, account, &sender, limits.slow_client).await;
        if let Some(error) = error {
            // The sender is dropped on return, so the stream drains the buffer and then
            // reads this error: nothing buffered is skipped.
            let _ = closing.send(error);
        }
    });

    futures::stream::unfold(
        (Some(receiver), Some(closed)),
        |(receiver, closed)| async move {
            if let Some(mut receiver) = receiver
                && let Some(outgoing) = receiver.recv().await
            {
                return Some((outgoing, (Some(receiver), closed)));
            }
            let error = closed?.await.ok()?;
            Some((error, (None, None)))
        },
    )
}

/// Sends every matching transfer from `start` on, following the head; returns the error to
/// close with, or `None` when the client left or the node stopped.
async fn feed(
    node: Arc<dyn NodeApi>,
    start: Location,
    account: Option<PublicKey>,
    sender: &mpsc::Sender<Outgoing>,
    slow_client: Duration,
) -> Option<Outgoing> {
    let mut heads = node.heads();
    let mut next = start;
    loop {
        let head = *heads.borrow_and_update();

        while next.height <= head {
            let certified = match node.block(next.height) {
                Ok(Some(certified)) => certified,
                _ => {
                    let message = format!("block {} cannot be read", next.height);
                    return Some(Outgoing::Error {
                        code: "storage_error",
                        message,
                    });
                }
            };
            let block_hash = certified.block.hash();
            let transfers = certified.block.transfers.iter().enumerate();
            for (position, transfer) in transfers.skip(next.position as usize) {
                if !concerns(transfer, account.as_ref()) {
                    continue;
                }
                let location = Location {
                    height: next.height,
                    position: position as u32,
                };
                let decimals = node.genesis().decimals;
                let outgoing = transfer_event(location, block_hash, transfer, decimals);
                match sender.send_timeout(outgoing, slow_client).await {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                        let message = format!(
                            "more than the buffer's events waited over {} ms; reconnect with \
                             Last-Event-ID to resume",
                            slow_client.as_millis()
                        );
                        return Some(Outgoing::Error {
                            code: "client_too_slow",
                            message,
                        });
                    }
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return None,
                }
            }
            next = Location {
                height: next.height + 1,
                position: 0,
            };
        }

        tokio::select! {
            changed = heads.changed() => {
                if changed.is_err() {
                    return None;
                }
            }
            () = sender.closed() => return None,
        }
    }
}

fn concerns(transfer: &SignedTransfer, account: Option<&PublicKey>) -> bool {
    let body = &transfer.transfer;
    account.is_none_or(|account| body.sender == *account || body.receiver == *account)
}

fn transfer_event(
    location: Location,
    block_hash: protocol::Hash,
    transfer: &SignedTransfer,
    decimals: protocol::Decimals,
) -> Outgoing {
    let data = json!({
        "height": location.height.to_string(),
        "position": location.position.to_string(),
        "block_hash": block_hash,
        "transfer": TransferJson::from_signed(transfer, decimals),
    });
    Outgoing::Transfer {
        id: format!("{}-{}", location.height, location.position),
        data: data.to_string(),
    }
}
