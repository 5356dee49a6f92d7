//! Where a chain log comes from: a file, or a node's `GET /v1/log?from=H` over HTTP.
//!
//! Either way the caller gets a plain reader and streams it through the chain log decoder,
//! so memory stays bounded whatever the chain's length.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// How long to wait for a node to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait for a node to start answering; the body then streams for as long as the
/// chain takes.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// A chain log's origin.
#[derive(Clone, Debug)]
pub enum Source {
    /// A log file written by `tally log export`.
    File(PathBuf),
    /// A node's API base URL, such as `http://127.0.0.1:7100`.
    Node(String),
}

impl Source {
    /// How the source is named in output.
    pub fn label(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Node(url) => url.clone(),
        }
    }
}

/// An open log stream.
pub struct Opened {
    /// The log's bytes.
    pub reader: Box<dyn Read>,
    /// The total length when known (a file's size), for the progress bar.
    pub len: Option<u64>,
}

/// Opens the log from height `from` (a file always starts where it was exported from).
pub fn open(source: &Source, from: u64) -> anyhow::Result<Opened> {
    match source {
        Source::File(path) => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            let metadata = file
                .metadata()
                .with_context(|| format!("reading {}", path.display()))?;
            if !metadata.is_file() {
                anyhow::bail!("{} is not a file", path.display());
            }
            let len = Some(metadata.len());
            Ok(Opened {
                reader: Box::new(file),
                len,
            })
        }
        Source::Node(url) => {
            let reader = get(&log_url(url, from))?;
            Ok(Opened { reader, len: None })
        }
    }
}

/// The URL of a node's log from height `from`.
pub fn log_url(node: &str, from: u64) -> String {
    format!("{}/v1/log?from={from}", node.trim_end_matches('/'))
}

/// Starts a GET and returns the body as a stream; any status but 2xx is an error.
///
/// TODO: plain HTTP only (ureq is built without TLS to keep the build small); add the
/// `rustls` feature once nodes are reached over HTTPS.
fn get(url: &str) -> anyhow::Result<Box<dyn Read>> {
    let config = ureq::Agent::config_builder()
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let response = agent
        .get(url)
        .header("Accept", "application/octet-stream")
        .call()
        .with_context(|| format!("GET {url}"))?;
    Ok(Box::new(response.into_body().into_reader()))
}
