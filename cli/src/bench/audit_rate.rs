//! The auditor's speed: `tally audit`'s own streaming code (`crate::stream`) over the chain
//! log the federation produced, exported from a node's `GET /v1/log`.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use protocol::{Auditor, Genesis};
use serde::Serialize;

use super::client;
use super::stats;
use crate::progress::Progress;
use crate::stream;

/// What the audit of the federation's log measured.
#[derive(Debug, Clone, Serialize)]
pub struct AuditFigures {
    /// Blocks verified.
    pub blocks: u64,
    /// Transfers verified and replayed.
    pub transfers: u64,
    /// Bytes of the log.
    pub log_bytes: u64,
    /// Seconds the audit took.
    pub seconds: f64,
    /// Transfers verified a second.
    pub transfers_per_second: f64,
}

/// Downloads the whole chain log from the node at `api` into `path`.
pub fn export(api: &str, path: &Path) -> anyhow::Result<u64> {
    let url = format!("http://{api}/v1/log?from=1");
    let response = client::agent()
        .get(&url)
        .call()
        .with_context(|| format!("GET {url}"))?;
    let mut file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut body = response.into_body().into_reader();
    std::io::copy(&mut body, &mut file).with_context(|| format!("downloading {url}"))
}

/// Audits the log at `path` against `genesis`; a log that fails the audit is an error.
pub fn measure(genesis: &Genesis, path: &Path) -> anyhow::Result<AuditFigures> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let log_bytes = file.metadata().map_or(0, |metadata| metadata.len());
    let mut reader = BufReader::new(file);
    let mut auditor = Auditor::new(genesis).context("the bench genesis")?;
    let progress = Progress::new(Some(log_bytes), "audit");

    let started = Instant::now();
    let outcome = stream::audit(&mut reader, &mut auditor, &progress);
    let seconds = started.elapsed().as_secs_f64();
    progress.finish();
    if let Some(failure) = outcome.failure {
        bail!("the federation's log failed its audit: {failure:?}");
    }
    let summary = outcome.summary;
    Ok(AuditFigures {
        blocks: summary.blocks,
        transfers: summary.transfers,
        log_bytes,
        seconds,
        transfers_per_second: stats::rate(summary.transfers, seconds),
    })
}
