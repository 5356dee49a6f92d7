//! The wallet HTTP API (axum): submit, status, balances, history, receipts, live events,
//! the chain log and metrics. docs/api.md is the reference for wallet developers.
//!
//! - [`backend`]: [`NodeApi`], the narrow interface through which handlers reach the node.
//! - [`handlers`]: one function per endpoint; [`views`]: the JSON shapes they answer.
//! - [`events`]: server-sent events with per-client bounded buffers and resume.
//! - [`error`]: every error and its stable code; [`extract`]: body and query extractors
//!   that answer in those errors; [`cursor`]: history pagination.
//! - [`layers`]: CORS, rate limiting, JSON for axum's own 405; [`metrics`]: Prometheus.
//! - [`live`]: [`NodeApi`] over the running node (storage, core task, status snapshot).
//!
//! Routes are built by [`router`]; the node serves them with [`serve`].

pub mod backend;
pub mod cursor;
pub mod error;
pub mod events;
pub mod extract;
pub mod handlers;
pub mod layers;
pub mod live;
pub mod metrics;
pub mod views;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use tokio::net::TcpListener;

pub use backend::NodeApi;
use events::EventLimits;
use layers::RateLimiter;
use metrics::Metrics;

/// The API's limits and switches.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The largest request body accepted; a signed transfer in JSON is under 1 KiB.
    pub body_limit_bytes: usize,
    /// How long a client may take to send a whole request body.
    pub body_timeout: Duration,
    /// Origins allowed to call the API from a browser; `*` allows any.
    pub cors_origins: Vec<String>,
    /// Requests a second per client address (bursts of twice that); 0 is unlimited.
    pub rate_limit_per_second: u32,
    /// Per-client event stream bounds.
    pub events: EventLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit_bytes: 8 * 1024,
            body_timeout: Duration::from_secs(10),
            cors_origins: Vec::new(),
            rate_limit_per_second: 0,
            events: EventLimits {
                buffer: 1024,
                slow_client: Duration::from_secs(10),
            },
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct ApiState {
    /// The node.
    pub node: Arc<dyn NodeApi>,
    /// Limits and switches.
    pub config: Arc<ApiConfig>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The per-client rate limiter.
    pub limiter: Arc<RateLimiter>,
}

impl ApiState {
    /// State for `node` under `config`, with fresh metrics.
    pub fn new(node: Arc<dyn NodeApi>, config: ApiConfig) -> ApiState {
        ApiState {
            node,
            limiter: Arc::new(RateLimiter::new(config.rate_limit_per_second)),
            config: Arc::new(config),
            metrics: Arc::new(Metrics::new()),
        }
    }
}

/// Every route, with its middleware.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/status", get(handlers::status))
        .route("/v1/health", get(handlers::health))
        .route("/v1/genesis", get(handlers::genesis))
        .route("/v1/transfers", post(handlers::submit))
        .route("/v1/transfers/{id}", get(handlers::transfer))
        .route("/v1/accounts/{address}", get(handlers::account))
        .route("/v1/accounts/{address}/transfers", get(handlers::history))
        .route("/v1/blocks/latest", get(handlers::latest_block))
        .route("/v1/blocks/{height}", get(handlers::block))
        .route("/v1/log", get(handlers::log))
        .route("/v1/events", get(events::events))
        .route("/v1/evidence", get(handlers::evidence))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::no_route)
        .layer(from_fn(layers::json_errors))
        .layer(from_fn_with_state(state.clone(), layers::rate_limit))
        .layer(from_fn_with_state(state.clone(), layers::cors))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` resolves, and feeds the commit metrics.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(watch_commits(state.node.clone(), state.metrics.clone()));
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Records every new committed block in the metrics until the node stops.
pub async fn watch_commits(node: Arc<dyn NodeApi>, metrics: Arc<Metrics>) {
    let mut heads = node.heads();
    let mut recorded = *heads.borrow_and_update();
    while heads.changed().await.is_ok() {
        let head = *heads.borrow_and_update();
        for height in recorded + 1..=head {
            if let Ok(Some(certified)) = node.block(height) {
                metrics.record_block(&certified.block, Instant::now(), unix_ms());
            }
        }
        recorded = head;
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| since.as_millis() as u64)
        .unwrap_or(0)
}
