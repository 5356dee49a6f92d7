//! A small blocking client for a node's wallet API (`docs/api.md`).
//!
//! Every answer is JSON. A 2xx answer is returned as a value; any other status becomes an
//! [`ApiError`] carrying the node's stable `code`, so a command can tell a refusal (the
//! node judged the request) from a node it could not reach.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use serde_json::Value;

/// How long to wait for a node to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a whole request may take; wallet requests are small.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read; a history page or a block is far smaller.
const MAX_BODY_BYTES: u64 = 16 << 20;

/// A refusal by the node: a non-2xx status with its JSON `{code, message}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The stable error code (`insufficient_funds`, `node_syncing`, ...).
    pub code: String,
    /// The node's explanation, for people.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// A node's API, at a base URL such as `http://127.0.0.1:7100`.
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the node at `base`.
    pub fn new(base: &str) -> Client {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_global(Some(REQUEST_TIMEOUT))
            .http_status_as_error(false)
            .build();
        Client {
            base: base.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new_with_config(config),
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path`: the JSON answer, or the node's refusal as an [`ApiError`] inside the error.
    pub fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .get(&url)
            .header("Accept", "application/json")
            .call()
            .with_context(|| format!("cannot reach node {}", self.base))?;
        read_answer(response, &url)
    }

    /// `POST path` with a JSON body: the status and JSON answer of a 2xx, or the refusal.
    pub fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let response = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .with_context(|| format!("cannot reach node {}", self.base))?;
        let status = response.status().as_u16();
        Ok((status, read_answer(response, &url)?))
    }
}

/// The JSON of a 2xx answer, or an [`ApiError`] built from the error body.
fn read_answer(mut response: ureq::http::Response<ureq::Body>, url: &str) -> anyhow::Result<Value> {
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_string()
        .with_context(|| format!("reading the answer of {url}"))?;
    let value: Option<Value> = serde_json::from_str(&text).ok();

    if (200..300).contains(&status) {
        return value
            .ok_or_else(|| anyhow!("{url} answered {status} with a body that is not JSON"));
    }
    let is_api_error = value
        .as_ref()
        .is_some_and(|v| v.get("code").is_some_and(Value::is_string));
    if !is_api_error {
        bail!("{url} answered {status} without a Tally error body: is it a Tally node's API?");
    }
    let field = |name: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Err(ApiError {
        status,
        code: field("code").unwrap_or_else(|| format!("http_{status}")),
        message: field("message").unwrap_or_else(|| text.chars().take(200).collect()),
    }
    .into())
}

/// The node's refusal inside `error`, if that is what it is.
pub fn api_error(error: &anyhow::Error) -> Option<&ApiError> {
    error.downcast_ref::<ApiError>()
}

/// A refusal by the node as a rejection (exit 1); anything else stays a setup failure.
pub fn refusal(error: anyhow::Error) -> crate::failure::Failure {
    match api_error(&error) {
        Some(api) => crate::failure::Failure::rejected(anyhow!("{api}")),
        None => error.into(),
    }
}

/// A JSON field that the API sends as a string (amounts, heights, ids).
pub fn text<'a>(value: &'a Value, field: &str) -> anyhow::Result<&'a str> {
    value
        .get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the node's answer has no text field `{field}`"))
}

/// A JSON field that the API sends as a decimal integer string (heights, sequences).
pub fn integer(value: &Value, field: &str) -> anyhow::Result<u64> {
    let raw = text(value, field)?;
    raw.parse()
        .map_err(|_| anyhow!("the node's `{field}` is not an integer: {raw:?}"))
}
