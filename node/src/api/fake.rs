//! An in-memory node behind [`NodeApi`] for the handlers' unit tests: a real ledger, real
//! blocks and real certificates signed by the fake's validators, no sled, no network.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use protocol::block::BlockContext;
use protocol::chain_log::CertifiedBlock;
use protocol::consensus::message::precommit_signing_bytes;
use protocol::consensus::{CommitCertificate, CommitSignature};
use protocol::genesis::Allocation;
use protocol::{
    Decimals, Genesis, Hash, Ledger, PublicKey, SecretKey, SignedTransfer, Transfer, Validator,
    VerifiedTransfer, build_block,
};
use tokio::sync::watch;

use super::backend::{
    AccountState, BackendError, Evidence, Location, NodeApi, NodeStatus, RawBlock, SubmitOutcome,
    TransferState,
};

/// Accounts funded at genesis: seeds 1..=USERS.
pub const USERS: u8 = 4;

/// The fake node.
pub struct FakeNode {
    genesis: Genesis,
    validators: Vec<SecretKey>,
    state: Mutex<State>,
    heads: watch::Sender<u64>,
    /// Whether the fake claims to be syncing.
    pub syncing: Mutex<bool>,
    /// Mempool capacity.
    pub mempool_max: usize,
}

struct State {
    ledger: Ledger,
    blocks: Vec<CertifiedBlock>,
    pending: Vec<VerifiedTransfer>,
    committed: BTreeMap<Hash, Location>,
}

/// A user's secret key.
pub fn user(seed: u8) -> SecretKey {
    SecretKey::from_seed(&[seed; 32])
}

impl FakeNode {
    /// A network of three validators and [`USERS`] funded users, no blocks yet.
    pub fn new() -> FakeNode {
        let validators: Vec<SecretKey> = (101..104).map(user).collect();
        let genesis = Genesis {
            network: "tally-api-test".into(),
            decimals: Decimals::DEFAULT,
            min_fee: 1,
            fee_account: user(200).public_key(),
            max_supply: 100_000_000,
            max_block_transfers: 1000,
            max_block_bytes: 1_000_000,
            validators: validators
                .iter()
                .enumerate()
                .map(|(index, key)| Validator {
                    name: format!("v{index}"),
                    key: key.public_key(),
                })
                .collect(),
            allocations: (1..=USERS)
                .map(|seed| Allocation {
                    account: user(seed).public_key(),
                    balance: 1_000_000,
                })
                .collect(),
        };
        let ledger = Ledger::from_genesis(&genesis);
        FakeNode {
            genesis,
            validators,
            state: Mutex::new(State {
                ledger,
                blocks: Vec::new(),
                pending: Vec::new(),
                committed: BTreeMap::new(),
            }),
            heads: watch::channel(0).0,
            syncing: Mutex::new(false),
            mempool_max: 1000,
        }
    }

    /// A transfer signed by user `from` for this network.
    pub fn transfer(&self, from: u8, to: u8, units: u64, sequence: u64) -> SignedTransfer {
        let sender = user(from);
        let body = Transfer::new(
            self.genesis.network_id(),
            sender.public_key(),
            user(to).public_key(),
            units,
            1,
            sequence,
            "",
        );
        SignedTransfer::sign(body, &sender)
    }

    /// Commits every pending transfer that applies as one certified block.
    pub fn commit(&self) -> u64 {
        let mut state = self.lock();
        let parent = state
            .blocks
            .last()
            .map(|certified| certified.block.header.clone());
        let height = parent.as_ref().map_or(1, |header| header.height + 1);
        let timestamp = 1_000 * height;
        let context =
            BlockContext::after(parent.as_ref(), self.validators[0].public_key(), timestamp);
        let pending = std::mem::take(&mut state.pending);
        let built = build_block(&state.ledger, &self.genesis, context, pending);

        let block = built.block;
        let network_id = self.genesis.network_id();
        let bytes = precommit_signing_bytes(&network_id, height, 0, Some(block.hash()));
        let signatures = self
            .validators
            .iter()
            .map(|key| CommitSignature {
                validator: key.public_key(),
                signature: key.sign(&bytes),
            })
            .collect();
        let certificate = CommitCertificate {
            height,
            round: 0,
            block_hash: block.hash(),
            signatures,
        };
        for (position, transfer) in block.transfers.iter().enumerate() {
            let location = Location {
                height,
                position: position as u32,
            };
            state.committed.insert(transfer.id(), location);
        }
        state.ledger = built.ledger;
        state.blocks.push(CertifiedBlock { block, certificate });
        drop(state);

        self.heads.send_replace(height);
        height
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("no test panics while holding the lock")
    }
}

impl NodeApi for FakeNode {
    fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    fn status(&self) -> NodeStatus {
        let state = self.lock();
        let head = state.blocks.last();
        NodeStatus {
            network_id: self.genesis.network_id(),
            role: "full",
            address: user(100).public_key(),
            height: state.blocks.len().to_string(),
            block_hash: head.map_or(Hash::ZERO, |certified| certified.block.hash()),
            state_root: state.ledger.state_root(),
            round: 0,
            mempool_size: state.pending.len(),
            peers: 3,
            syncing: *self.syncing.lock().expect("unpoisoned"),
        }
    }

    fn submit(
        &self,
        transfer: SignedTransfer,
    ) -> BoxFuture<'_, Result<SubmitOutcome, BackendError>> {
        Box::pin(async move {
            let mut state = self.lock();
            let id = transfer.id();
            if let Some(location) = state.committed.get(&id) {
                return Ok(SubmitOutcome::Duplicate(TransferState::Committed(
                    *location,
                )));
            }
            if state.pending.iter().any(|pending| pending.id() == id) {
                return Ok(SubmitOutcome::Duplicate(TransferState::Pending));
            }
            let Ok(verified) = transfer.into_verified() else {
                return Ok(SubmitOutcome::Rejected {
                    code: "bad_signature".into(),
                    message: "the signature does not verify".into(),
                });
            };
            if state.pending.len() >= self.mempool_max {
                return Ok(SubmitOutcome::Rejected {
                    code: "mempool_full".into(),
                    message: "the mempool is full".into(),
                });
            }
            if verified.transfer.network_id != self.genesis.network_id() {
                return Ok(SubmitOutcome::Rejected {
                    code: "wrong_network".into(),
                    message: "signed for another network".into(),
                });
            }
            state.pending.push(verified);
            Ok(SubmitOutcome::Accepted)
        })
    }

    fn transfer(&self, id: Hash) -> BoxFuture<'_, Result<TransferState, BackendError>> {
        Box::pin(async move {
            let state = self.lock();
            if let Some(location) = state.committed.get(&id) {
                return Ok(TransferState::Committed(*location));
            }
            if state.pending.iter().any(|pending| pending.id() == id) {
                return Ok(TransferState::Pending);
            }
            Ok(TransferState::Unknown)
        })
    }

    fn account(&self, account: PublicKey) -> BoxFuture<'_, Result<AccountState, BackendError>> {
        Box::pin(async move {
            let state = self.lock();
            let committed = state.ledger.account(&account);
            let pending = state
                .pending
                .iter()
                .filter(|transfer| transfer.transfer.sender == account)
                .count() as u64;
            Ok(AccountState {
                balance: committed.balance,
                next_sequence: committed.next_sequence,
                next_sequence_pending: committed.next_sequence + pending,
                height: state.blocks.len() as u64,
            })
        })
    }

    fn history(
        &self,
        account: &PublicKey,
        before: Option<Location>,
        limit: usize,
    ) -> Result<Vec<Location>, BackendError> {
        let state = self.lock();
        if let Some(before) = before {
            let transfer = before
                .height
                .checked_sub(1)
                .and_then(|index| state.blocks.get(index as usize))
                .and_then(|certified| certified.block.transfers.get(before.position as usize))
                .ok_or(BackendError::NotInHistory)?;
            let body = &transfer.transfer;
            if body.sender != *account && body.receiver != *account {
                return Err(BackendError::NotInHistory);
            }
        }
        let mut entries = Vec::new();
        for certified in state.blocks.iter().rev() {
            let height = certified.block.header.height;
            for (position, transfer) in certified.block.transfers.iter().enumerate().rev() {
                let location = Location {
                    height,
                    position: position as u32,
                };
                let body = &transfer.transfer;
                let mine = body.sender == *account || body.receiver == *account;
                if mine && before.is_none_or(|before| location < before) {
                    entries.push(location);
                }
            }
        }
        entries.truncate(limit);
        Ok(entries)
    }

    fn block(&self, height: u64) -> Result<Option<CertifiedBlock>, BackendError> {
        let index = height
            .checked_sub(1)
            .and_then(|index| usize::try_from(index).ok());
        Ok(index.and_then(|index| self.lock().blocks.get(index).cloned()))
    }

    fn raw_block(&self, height: u64) -> Result<Option<RawBlock>, BackendError> {
        Ok(self
            .block(height)?
            .map(|certified| (certified.block.encode(), certified.certificate.to_bytes())))
    }

    fn heads(&self) -> watch::Receiver<u64> {
        self.heads.subscribe()
    }

    fn evidence(&self) -> Vec<Evidence> {
        Vec::new()
    }
}

impl FakeNode {
    /// The network id.
    pub fn genesis_id(&self) -> Hash {
        self.genesis.network_id()
    }

    /// Puts a transfer in the mempool without going through HTTP.
    pub fn submit_now(&self, transfer: SignedTransfer) {
        let verified = transfer.into_verified().expect("test transfers are signed");
        self.lock().pending.push(verified);
    }

    /// The sequence number of a committed transfer, by id text.
    pub fn sequence_of(&self, id: &str) -> u64 {
        let state = self.lock();
        let id: Hash = id.parse().expect("an id");
        let location = state.committed[&id];
        let block = &state.blocks[location.height as usize - 1].block;
        block.transfers[location.position as usize]
            .transfer
            .sequence
    }
}
