//! A federation on this machine: validator processes of the real `tally` binary on
//! 127.0.0.1 (real libp2p, sled and HTTP), a genesis written by the bench funding every
//! bench account, load phases against all of their APIs, then the chain log exported, the
//! nodes stopped (each flushes), their disk use measured and the log audited.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use protocol::{Genesis, PublicKey};
use serde::Serialize;

use super::audit_rate::{self, AuditFigures};
use super::disk;
use super::events::{self, Tracker};
use super::fixtures::{self, Accounts};
use super::load::Offer;
use super::node::Node;
use super::phase::{self, PhaseFigures};
use super::sampler::Sampler;
use super::stats;
use super::ui::Stage;

/// How long the federation may take to commit its first block.
const FIRST_BLOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// What to run.
pub struct Plan {
    /// Validators.
    pub validators: usize,
    /// Length of each phase's offering window.
    pub window: Duration,
    /// Fixed offered rates, one phase each, after the as-fast-as-accepted phase.
    pub rates: Vec<u64>,
    /// Whether to run the as-fast-as-accepted phase.
    pub max_phase: bool,
    /// Transfers to prepare for the as-fast-as-accepted phase.
    pub max_phase_transfers: usize,
}

/// Everything the federation run measured.
#[derive(Debug, Clone, Serialize)]
pub struct FederationFigures {
    /// Validator processes.
    pub validators: usize,
    /// Funded accounts in the genesis.
    pub accounts: usize,
    /// The phases, in the order run.
    pub phases: Vec<PhaseFigures>,
    /// Height of the chain at the end.
    pub height: u64,
    /// Each node's database size after it stopped (and flushed), bytes.
    pub disk_bytes: Vec<u64>,
    /// The mean of `disk_bytes` over the transfers in the chain.
    pub disk_bytes_per_transfer: f64,
    /// The audit of the chain log exported from the first node.
    pub audit: AuditFigures,
}

/// Runs the federation under `root` (which must not exist yet).
pub fn run(
    root: &Path,
    accounts: &Accounts,
    plan: &Plan,
    stage: &Stage,
) -> anyhow::Result<FederationFigures> {
    let exe = std::env::current_exe().context("finding the tally binary")?;
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;

    stage.say("federation: initialising the validators");
    let mut nodes = Vec::with_capacity(plan.validators);
    for index in 0..plan.validators {
        let dir = root.join(format!("node{index}"));
        let log = root.join(format!("node{index}.log"));
        nodes.push(Node::init(&exe, &dir, &log)?);
    }
    let keys: Vec<PublicKey> = nodes.iter().map(|node| node.address).collect();
    let genesis = fixtures::genesis(&keys, accounts);
    let genesis_path = root.join("genesis.toml");
    std::fs::write(&genesis_path, genesis.to_toml()).context("writing the genesis")?;

    stage.say("federation: starting the validators");
    start_all(&exe, &genesis_path, &mut nodes)?;
    wait_for_first_block(&nodes)?;

    let epoch = Instant::now();
    let tracker = Arc::new(Tracker::new(epoch, nodes.len()));
    for (index, node) in nodes.iter().enumerate() {
        events::follow(tracker.clone(), index, node.api.clone());
    }
    let pids = nodes
        .iter()
        .map(|node| node.pid().unwrap_or_default())
        .collect();
    let sampler = Sampler::start(epoch, pids);

    let phases = run_phases(&genesis, accounts, plan, &nodes, &tracker, &sampler, stage)?;
    tracker.stop();
    drop(sampler);

    stage.say("federation: exporting the chain log");
    let height = height(&nodes[0].api)?;
    let log_path = root.join("chain.log");
    audit_rate::export(&nodes[0].api, &log_path)?;

    stage.say("federation: stopping the validators");
    for node in &mut nodes {
        node.stop();
    }
    let disk_bytes: Vec<u64> = nodes.iter().map(|node| disk::size(&node.db())).collect();

    stage.say("audit: verifying the federation's chain log");
    let audit = audit_rate::measure(&genesis, &log_path)?;
    let mean_disk = disk_bytes.iter().sum::<u64>() as f64 / disk_bytes.len().max(1) as f64;
    Ok(FederationFigures {
        validators: plan.validators,
        accounts: accounts.len(),
        phases,
        height,
        disk_bytes,
        disk_bytes_per_transfer: stats::ratio(mean_disk, audit.transfers as f64),
        audit,
    })
}

/// Starts every node, each dialling the ones started before it.
fn start_all(exe: &Path, genesis: &Path, nodes: &mut [Node]) -> anyhow::Result<()> {
    for index in 0..nodes.len() {
        let bootstrap: Vec<String> = nodes[..index]
            .iter()
            .flat_map(|node| node.p2p.iter().cloned())
            .collect();
        nodes[index].start(exe, genesis, &bootstrap)?;
    }
    Ok(())
}

/// Waits until every node has committed a block: the federation is connected and live.
fn wait_for_first_block(nodes: &[Node]) -> anyhow::Result<()> {
    let deadline = Instant::now() + FIRST_BLOCK_TIMEOUT;
    for node in nodes {
        while height(&node.api).unwrap_or(0) < 1 {
            if Instant::now() > deadline {
                bail!(
                    "the federation committed no block within {FIRST_BLOCK_TIMEOUT:?}; see {}",
                    node.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// The as-fast-as-accepted phase (unless skipped), then one phase per offered rate. Each
/// phase's transfers are signed just before it, from the sequences the previous phases left:
/// an account with a transfer accepted but never committed sits out the later phases, since
/// its next sequence is in doubt.
fn run_phases(
    genesis: &Genesis,
    accounts: &Accounts,
    plan: &Plan,
    nodes: &[Node],
    tracker: &Tracker,
    sampler: &Sampler,
    stage: &Stage,
) -> anyhow::Result<Vec<PhaseFigures>> {
    let mut offers = Vec::new();
    if plan.max_phase {
        offers.push((Offer::AsFastAsAccepted, plan.max_phase_transfers));
    }
    for rate in &plan.rates {
        let count = stats::offered(*rate, plan.window.as_secs());
        offers.push((
            Offer::PerSecond(*rate),
            usize::try_from(count).context("transfer count")?,
        ));
    }

    let mut next_sequence: Vec<Option<u64>> = vec![Some(1); accounts.len()];
    let mut figures = Vec::with_capacity(offers.len());
    for (offer, count) in offers {
        let name = match offer {
            Offer::AsFastAsAccepted => "as fast as accepted".to_string(),
            Offer::PerSecond(rate) => format!("{rate}/s offered"),
        };
        stage.say(&format!("federation: signing {count} transfers for {name}"));
        let before = next_sequence.clone();
        let planned = fixtures::plan(genesis.network_id(), accounts, &mut next_sequence, count);

        stage.say(&format!("federation: {name}, {} s", plan.window.as_secs()));
        let federation = phase::Running {
            nodes,
            tracker,
            sampler,
            decimals: genesis.decimals,
        };
        let phase = phase::run(&federation, name, offer, plan.window, &planned);

        // Sequences for the next phase: after the last committed transfer of each sender.
        next_sequence = before;
        let committed = phase_outcomes(&phase, &planned, tracker);
        for (planned, outcome) in planned.iter().zip(committed) {
            let slot = &mut next_sequence[planned.sender];
            match outcome {
                Outcome::Committed => {
                    if let Some(next) = slot {
                        *next = (*next).max(planned.signed.transfer.sequence + 1);
                    }
                }
                Outcome::InDoubt => *slot = None,
                Outcome::NotAccepted => {}
            }
        }
        figures.push(phase);
    }
    Ok(figures)
}

enum Outcome {
    Committed,
    InDoubt,
    NotAccepted,
}

/// What became of each planned transfer of the phase just run.
fn phase_outcomes(
    phase: &PhaseFigures,
    planned: &[fixtures::Planned],
    tracker: &Tracker,
) -> Vec<Outcome> {
    let book = tracker.book().expect("a phase opened its book");
    (0..planned.len())
        .map(|index| {
            if book.is_committed(index) {
                Outcome::Committed
            } else if phase.submissions.accepted_flags[index] {
                Outcome::InDoubt
            } else {
                Outcome::NotAccepted
            }
        })
        .collect()
}

/// The committed height the node at `api` (`127.0.0.1:PORT`) reports.
fn height(api: &str) -> anyhow::Result<u64> {
    let status = crate::client::Client::new(&format!("http://{api}")).get("/v1/status")?;
    crate::client::integer(&status, "height")
}
