//! Request extractors that answer every failure with the API's JSON errors.
//!
//! axum's own extractors answer rejections in plain text; these read the body and the query
//! themselves so that a wallet always gets `{code, message}`. The body extractor also
//! enforces the content type, the size limit and a deadline for the whole body, so a client
//! that trickles bytes or never finishes cannot hold a connection's handler forever.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use futures::StreamExt;
use serde::de::DeserializeOwned;

use super::ApiState;
use super::error::ApiError;

/// A JSON body of type `T`, read under the configured size limit and deadline.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<ApiState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, ApiError> {
        check_content_type(request.headers().get(CONTENT_TYPE))?;

        let limit = state.config.body_limit_bytes;
        let deadline = state.config.body_timeout;
        let bytes = tokio::time::timeout(deadline, read_limited(request.into_body(), limit))
            .await
            .map_err(|_| ApiError::BodyTimeout(deadline.as_millis()))??;

        // serde reads a struct from a JSON array of its fields in order too; every body this
        // API takes is an object, and only the object form is documented.
        let first = bytes.iter().find(|byte| !byte.is_ascii_whitespace());
        if first.is_some_and(|byte| *byte != b'{') {
            return Err(ApiError::MalformedJson(
                "the body must be a JSON object".to_string(),
            ));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|error| ApiError::MalformedJson(error.to_string()))
    }
}

/// Accepts `application/json`, with or without parameters such as a charset.
fn check_content_type(value: Option<&axum::http::HeaderValue>) -> Result<(), ApiError> {
    let text = value
        .and_then(|value| value.to_str().ok())
        .ok_or(ApiError::UnsupportedMediaType)?;
    let essence = text.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType)
    }
}

/// Reads the body, stopping as soon as it passes `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| ApiError::BodyUnreadable)?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::BodyTooLarge(limit));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The query string's parameters; a repeated name is refused rather than guessed at.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        // The form decoder replaces bad escapes and invalid UTF-8 instead of refusing them.
        if !query_is_well_formed(parts.uri.query().unwrap_or_default()) {
            return Err(ApiError::parameter(
                "bad_query",
                "the query string does not parse",
            ));
        }
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map_err(|_| ApiError::parameter("bad_query", "the query string does not parse"))?;

        let mut params = HashMap::new();
        for (name, value) in pairs {
            if params.contains_key(&name) {
                let message = format!("query parameter {name} is given more than once");
                return Err(ApiError::parameter("bad_query", message));
            }
            params.insert(name, value);
        }
        Ok(Params(params))
    }
}

/// Whether every `%` starts a two-digit hex escape and every name and value decodes to UTF-8.
fn query_is_well_formed(query: &str) -> bool {
    query
        .split('&')
        .flat_map(|pair| pair.split('='))
        .all(|part| {
            let bytes = part.as_bytes();
            let mut decoded = Vec::with_capacity(bytes.len());
            let mut index = 0;
            while index < bytes.len() {
                if bytes[index] == b'%' {
                    let hex = bytes.get(index + 1..index + 3).and_then(|pair| {
                        std::str::from_utf8(pair)
                            .ok()
                            .and_then(|text| u8::from_str_radix(text, 16).ok())
                    });
                    let Some(byte) = hex else {
                        return false;
                    };
                    decoded.push(byte);
                    index += 3;
                } else {
                    decoded.push(bytes[index]);
                    index += 1;
                }
            }
            String::from_utf8(decoded).is_ok()
        })
}

impl Params {
    /// The parameter, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

#[cfg(test)]
mod query_tests {
    use super::query_is_well_formed;

    #[test]
    fn bad_escapes_and_invalid_utf8_do_not_parse() {
        assert!(query_is_well_formed(""));
        assert!(query_is_well_formed("limit=5&cursor=00ab"));
        assert!(query_is_well_formed("account=tly1%71"));
        assert!(query_is_well_formed("memo=%C3%A9"));
        assert!(!query_is_well_formed("%zz"));
        assert!(!query_is_well_formed("a=%ff"));
        assert!(!query_is_well_formed("a=%4"));
        assert!(!query_is_well_formed("a=%"));
    }
}
