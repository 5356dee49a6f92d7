//! Fixtures for the `tally` binary's tests: a real four-validator chain written as a genesis
//! file and a chain log, a way to run the binary, and a minimal fake node that serves
//! `GET /v1/log?from=H` over HTTP.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::thread;

use protocol::block::BlockContext;
use protocol::chain_log::{self, CertifiedBlock, LogHeader};
use protocol::consensus::message::precommit_signing_bytes;
use protocol::consensus::{CommitCertificate, CommitSignature};
use protocol::genesis::Allocation;
use protocol::{
    Decimals, Genesis, Ledger, SecretKey, SignedTransfer, Transfer, Validator, build_block,
};

/// Runs `tally` with `args` and returns what it did.
pub fn tally(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env_remove("TALLY_NODE")
        .output()
        .expect("the tally binary runs")
}

/// stdout as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf-8 stdout")
}

/// stderr as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf-8 stderr")
}

/// stdout parsed as one JSON value.
pub fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn validator_keys() -> Vec<SecretKey> {
    (1..=4).map(|i| SecretKey::from_seed(&[i; 32])).collect()
}

fn wallet(i: u8) -> SecretKey {
    SecretKey::from_seed(&[10 + i; 32])
}

/// Four validators (seeds 1..=4), three wallets of 1000.00 each, fee account from seed 99.
pub fn genesis() -> Genesis {
    let validators = validator_keys()
        .iter()
        .zip(["alpha", "beta", "gamma", "delta"])
        .map(|(key, name)| Validator {
            name: name.into(),
            key: key.public_key(),
        })
        .collect();
    let allocations = (1..=3)
        .map(|i| Allocation {
            account: wallet(i).public_key(),
            balance: 100_000,
        })
        .collect();
    Genesis {
        network: "tally-cli-test".into(),
        decimals: Decimals::DEFAULT,
        min_fee: 2,
        fee_account: SecretKey::from_seed(&[99; 32]).public_key(),
        max_supply: 1_000_000,
        max_block_transfers: 50,
        max_block_bytes: 100_000,
        validators,
        allocations,
    }
}

/// `blocks` certified blocks with 0 to 4 transfers each; `variant` changes timestamps, so
/// two variants are two different valid chains of the same network.
pub fn chain(blocks: u64, variant: u64) -> Vec<CertifiedBlock> {
    let genesis = genesis();
    let network = genesis.network_id();
    let keys = validator_keys();
    let mut ledger = Ledger::from_genesis(&genesis);
    let mut sequences = [0u64; 4];
    let mut chain: Vec<CertifiedBlock> = Vec::new();

    for height in 1..=blocks {
        let transfers: Vec<_> = (0..height % 5)
            .map(|k| {
                let from = 1 + (k % 3) as u8;
                let to = 1 + ((k + 1) % 3) as u8;
                sequences[from as usize] += 1;
                let body = Transfer::new(
                    network,
                    wallet(from).public_key(),
                    wallet(to).public_key(),
                    100 + k,
                    2,
                    sequences[from as usize],
                    format!("block {height}"),
                );
                let signed = SignedTransfer::sign(body, &wallet(from));
                signed.into_verified().expect("honest signature")
            })
            .collect();

        let parent = chain.last().map(|c| &c.block.header);
        let proposer = keys[(height % 4) as usize].public_key();
        let timestamp = 1_700_000_000_000 + height * 1_000 + variant;
        let context = BlockContext::after(parent, proposer, timestamp);
        let built = build_block(&ledger, &genesis, context, transfers);
        assert!(built.left_out.is_empty());
        ledger = built.ledger;

        let block_hash = built.block.hash();
        let bytes = precommit_signing_bytes(&network, height, 0, Some(block_hash));
        let signatures = keys[..3]
            .iter()
            .map(|key| CommitSignature {
                validator: key.public_key(),
                signature: key.sign(&bytes),
            })
            .collect();
        let certificate = CommitCertificate {
            height,
            round: 0,
            block_hash,
            signatures,
        };
        chain.push(CertifiedBlock {
            block: built.block,
            certificate,
        });
    }
    chain
}

/// The chain log of `blocks`, which start at height `first`.
pub fn log_bytes(blocks: &[CertifiedBlock], first: u64) -> Vec<u8> {
    let header = LogHeader {
        network_id: genesis().network_id(),
        first_height: first,
    };
    chain_log::encode_log(header, blocks)
}

/// Writes the genesis file into `dir` and returns its path as text.
pub fn write_genesis(dir: &Path) -> String {
    let path = dir.join("genesis.toml");
    std::fs::write(&path, genesis().to_toml()).expect("write genesis");
    path.display().to_string()
}

/// Serves `GET /v1/log?from=H` with the log of `blocks[H-1..]` on a free loopback port, in
/// a background thread that lives as long as the test process. Returns the base URL.
pub fn fake_node(blocks: Vec<CertifiedBlock>) -> String {
    fake_node_with(move |from| {
        let start = (from as usize).saturating_sub(1).min(blocks.len());
        log_bytes(&blocks[start..], from)
    })
}

/// Like [`fake_node`], with the body for each `from` given by `body`.
pub fn fake_node_with(body: impl Fn(u64) -> Vec<u8> + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("bound address"));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // Skip the headers up to the blank line.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }

            let from = request_line
                .split_whitespace()
                .nth(1)
                .and_then(|target| target.strip_prefix("/v1/log?from="))
                .and_then(|from| from.parse::<u64>().ok());
            let response = match from {
                Some(from) => {
                    let body = body(from);
                    let mut response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    response.extend_from_slice(&body);
                    response
                }
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = stream.write_all(&response);
        }
    });
    url
}
