//! The JSON shapes the API answers with, built from protocol types.
//!
//! Amounts are decimal strings at the network's decimals; heights, sequences and positions
//! are decimal strings; keys are `tly1…` addresses except inside the transfer JSON form,
//! which docs/protocol.md §7 fixes (hex keys); hashes are 64 lowercase hex characters.

use protocol::chain_log::CertifiedBlock;
use protocol::receipt::Receipt;
use protocol::transfer::TransferJson;
use protocol::{Decimals, Hash, PublicKey, SignedTransfer, format_amount};
use serde_json::{Value, json};

use super::backend::{AccountState, Location, TransferState};

/// A transfer's state, without the receipt.
pub fn transfer_state(id: &Hash, state: &TransferState) -> Value {
    match state {
        TransferState::Pending => json!({ "id": id, "status": "pending" }),
        TransferState::Committed(location) => json!({
            "id": id,
            "status": "committed",
            "height": location.height.to_string(),
            "position": location.position.to_string(),
        }),
        TransferState::Superseded { by } => json!({ "id": id, "status": "superseded", "by": by }),
        TransferState::Rejected { code } => json!({ "id": id, "status": "rejected", "code": code }),
        TransferState::Unknown => json!({ "id": id, "status": "unknown" }),
    }
}

/// A committed transfer's state with its block hash and receipt.
pub fn committed(
    id: &Hash,
    location: Location,
    certified: &CertifiedBlock,
    decimals: Decimals,
) -> Option<Value> {
    let receipt = Receipt::build(
        &certified.block,
        location.position as usize,
        certified.certificate.clone(),
    )?;
    Some(json!({
        "id": id,
        "status": "committed",
        "height": location.height.to_string(),
        "position": location.position.to_string(),
        "block_hash": certified.block.hash(),
        "receipt": receipt.to_json(decimals),
    }))
}

/// An account's balance and sequences.
pub fn account(address: &PublicKey, state: &AccountState, decimals: Decimals) -> Value {
    json!({
        "address": address,
        "key": hex::encode(address.as_bytes()),
        "balance": format_amount(state.balance, decimals),
        "next_sequence": state.next_sequence.to_string(),
        "next_sequence_pending": state.next_sequence_pending.to_string(),
        "height": state.height.to_string(),
    })
}

/// One history entry as seen from `account`.
pub fn history_entry(
    account: &PublicKey,
    location: Location,
    transfer: &SignedTransfer,
    decimals: Decimals,
) -> Value {
    let body = &transfer.transfer;
    let direction = match (body.sender == *account, body.receiver == *account) {
        (true, true) => "self",
        (true, false) => "sent",
        _ => "received",
    };
    json!({
        "height": location.height.to_string(),
        "position": location.position.to_string(),
        "direction": direction,
        "transfer": TransferJson::from_signed(transfer, decimals),
    })
}

/// A block with its header fields, transfers and certificate.
pub fn block(certified: &CertifiedBlock, decimals: Decimals) -> Value {
    let header = &certified.block.header;
    let certificate = &certified.certificate;
    let transfers: Vec<TransferJson> = certified
        .block
        .transfers
        .iter()
        .map(|transfer| TransferJson::from_signed(transfer, decimals))
        .collect();
    let signatures: Vec<Value> = certificate
        .signatures
        .iter()
        .map(|entry| json!({ "validator": entry.validator, "signature": entry.signature }))
        .collect();
    json!({
        "height": header.height.to_string(),
        "hash": certified.block.hash(),
        "header": {
            "version": header.version,
            "network_id": header.network_id,
            "height": header.height.to_string(),
            "parent": header.parent,
            "proposer": header.proposer,
            "timestamp_ms": header.timestamp_ms.to_string(),
            "transfers_root": header.transfers_root,
            "state_root": header.state_root,
            "bytes": hex::encode(header.encode()),
        },
        "transfers": transfers,
        "certificate": {
            "height": certificate.height.to_string(),
            "round": certificate.round,
            "block_hash": certificate.block_hash,
            "signatures": signatures,
            "bytes": hex::encode(certificate.to_bytes()),
        },
    })
}
