//! Middleware around every route: CORS, per-client rate limiting, and JSON bodies for the
//! errors axum's router answers by itself (405).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ALLOW, CONTENT_TYPE, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::error::ApiError;

/// Clients tracked by the rate limiter; past this, idle ones are forgotten first.
const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Answers CORS preflights and adds `Access-Control-Allow-Origin` for allowed origins.
pub async fn cors(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(ORIGIN).cloned();
    let allowed = origin
        .as_ref()
        .and_then(|origin| allowed_origin(&state.config.cors_origins, origin));
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);

    let mut response = if preflight {
        let mut response = StatusCode::NO_CONTENT.into_response();
        if allowed.is_some() {
            let headers = response.headers_mut();
            headers.insert(
                ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST"),
            );
            headers.insert(
                ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, last-event-id"),
            );
            headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        }
        response
    } else {
        next.run(request).await
    };

    if let Some(allowed) = allowed {
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        headers.insert(VARY, HeaderValue::from_static("origin"));
    }
    response
}

/// The value of `Access-Control-Allow-Origin` for `origin`, if it is allowed.
fn allowed_origin(allowed: &[String], origin: &HeaderValue) -> Option<HeaderValue> {
    if allowed.iter().any(|entry| entry == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    let text = origin.to_str().ok()?;
    allowed
        .iter()
        .any(|entry| entry.eq_ignore_ascii_case(text))
        .then(|| origin.clone())
}

/// A token bucket per client address.
pub struct RateLimiter {
    per_second: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    /// `per_second` requests a second per client, with bursts of twice that; 0 turns it off.
    pub fn new(per_second: u32) -> RateLimiter {
        RateLimiter {
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client`; false when it has none left.
    pub fn allow(&self, client: IpAddr, now: Instant) -> bool {
        if self.per_second == 0 {
            return true;
        }
        let rate = f64::from(self.per_second);
        let burst = rate * 2.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());

        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&client) {
            // A bucket refilled to the brim is the same as no bucket.
            buckets.retain(|_, bucket| {
                now.saturating_duration_since(bucket.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.updated = now;
        if bucket.tokens < 1.0 {
            return false;
        }
        bucket.tokens -= 1.0;
        true
    }
}

/// Refuses a client over its rate with 429 `rate_limited`.
pub async fn rate_limit(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    if !state.limiter.allow(client, Instant::now()) {
        return ApiError::RateLimited(state.config.rate_limit_per_second).into_response();
    }
    next.run(request).await
}

/// Gives axum's own bodiless answers (405 from the router) the API's JSON error body.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let is_json = response.headers().contains_key(CONTENT_TYPE);
    if response.status() != StatusCode::METHOD_NOT_ALLOWED || is_json {
        return response;
    }
    let allow = response.headers().get(ALLOW).cloned();
    let mut replaced = ApiError::MethodNotAllowed.into_response();
    if let Some(allow) = allow {
        replaced.headers_mut().insert(ALLOW, allow);
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_refill_at_the_rate_and_cap_at_the_burst() {
        let limiter = RateLimiter::new(2);
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let other = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let start = Instant::now();

        for _ in 0..4 {
            assert!(limiter.allow(client, start));
        }
        assert!(!limiter.allow(client, start));
        assert!(limiter.allow(other, start), "clients have separate buckets");

        let later = start + Duration::from_millis(500);
        assert!(limiter.allow(client, later));
        assert!(!limiter.allow(client, later));

        let much_later = start + Duration::from_secs(60);
        for _ in 0..4 {
            assert!(limiter.allow(client, much_later));
        }
        assert!(!limiter.allow(client, much_later));
    }

    #[test]
    fn zero_turns_rate_limiting_off() {
        let limiter = RateLimiter::new(0);
        let now = Instant::now();
        assert!((0..1000).all(|_| limiter.allow(IpAddr::V4(Ipv4Addr::LOCALHOST), now)));
    }
}
