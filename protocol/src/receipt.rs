//! Payment receipts: what a merchant keeps to prove, offline and trusting no node, that a
//! transfer was committed.
//!
//! A [`Receipt`] holds the signed transfer, the header of the block that holds it, the Merkle
//! path from the transfer to the header's transfers root, and the block's commit
//! certificate. [`Receipt::verify`] checks it against the genesis alone, in this order:
//!
//! 1. the transfer's signature verifies under its sender's key;
//! 2. the transfer and the header are for the genesis's network;
//! 3. the path leads from the transfer's wire bytes to the header's transfers root;
//! 4. the certificate names this header's height and hash;
//! 5. the certificate carries a quorum of genesis validators' precommit signatures.
//!
//! [`ReceiptJson`] is the text form the wallet API serves: the transfer in its JSON form, and
//! the header and certificate as hex of their canonical bytes (the bytes are what is hashed
//! and signed; decoded fields alongside them are for display only).

use serde::{Deserialize, Serialize};

use crate::amount::Decimals;
use crate::block::{Block, BlockHeader};
use crate::consensus::{CertificateError, CommitCertificate, ValidatorSet, ValidatorSetError};
use crate::genesis::Genesis;
use crate::hash::Hash;
use crate::merkle::{InclusionError, InclusionProof, transfer_leaves};
use crate::transfer::{SignedTransfer, TransferJson, TransferJsonError, parse_integer};

/// Everything needed to check one committed transfer against the genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The signed transfer.
    pub transfer: SignedTransfer,
    /// The header of the block that holds it.
    pub header: BlockHeader,
    /// The path from the transfer's leaf to `header.transfers_root`.
    pub proof: InclusionProof,
    /// The block's commit certificate.
    pub certificate: CommitCertificate,
}

/// Why a receipt does not prove a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The transfer's signature does not verify.
    #[error("the transfer's signature does not verify")]
    BadSignature,
    /// The transfer is signed for another network than the genesis's.
    #[error("the transfer is for network {0}, not the genesis's")]
    TransferNetwork(Hash),
    /// The header belongs to another network than the genesis's.
    #[error("the block header is for network {0}, not the genesis's")]
    HeaderNetwork(Hash),
    /// The Merkle path does not lead from the transfer to the header's transfers root.
    #[error("the transfer is not in the block: {0}")]
    NotInBlock(#[from] InclusionError),
    /// The certificate is for another height than the header's.
    #[error("the certificate is for height {certificate}, the header for {header}")]
    HeightMismatch {
        /// The certificate's height.
        certificate: u64,
        /// The header's height.
        header: u64,
    },
    /// The certificate commits another block than this header.
    #[error("the certificate commits block {certificate}, not this header's {header}")]
    BlockMismatch {
        /// The hash the certificate signs.
        certificate: Hash,
        /// This header's hash.
        header: Hash,
    },
    /// The certificate's signatures do not make a quorum of genesis validators.
    #[error("the certificate does not prove a commit: {0}")]
    Certificate(#[from] CertificateError),
    /// The genesis's validator list cannot form a validator set.
    #[error("the genesis validators are not a valid set: {0}")]
    Validators(#[from] ValidatorSetError),
}

impl Receipt {
    /// The receipt for the transfer at `position` in `block`, or `None` if there is none.
    pub fn build(
        block: &Block,
        position: usize,
        certificate: CommitCertificate,
    ) -> Option<Receipt> {
        let transfer = block.transfers.get(position)?.clone();
        let proof = InclusionProof::build(&transfer_leaves(&block.transfers), position)?;
        Some(Receipt {
            transfer,
            header: block.header.clone(),
            proof,
            certificate,
        })
    }

    /// Checks the receipt against `genesis`; see the module documentation for the steps.
    pub fn verify(&self, genesis: &Genesis) -> Result<(), ReceiptError> {
        let network_id = genesis.network_id();

        self.transfer
            .verify_signature()
            .map_err(|_| ReceiptError::BadSignature)?;

        if self.transfer.transfer.network_id != network_id {
            return Err(ReceiptError::TransferNetwork(
                self.transfer.transfer.network_id,
            ));
        }
        if self.header.network_id != network_id {
            return Err(ReceiptError::HeaderNetwork(self.header.network_id));
        }

        self.proof
            .verify(&self.transfer.encode(), &self.header.transfers_root)?;

        if self.certificate.height != self.header.height {
            return Err(ReceiptError::HeightMismatch {
                certificate: self.certificate.height,
                header: self.header.height,
            });
        }
        let header_hash = self.header.hash();
        if self.certificate.block_hash != header_hash {
            return Err(ReceiptError::BlockMismatch {
                certificate: self.certificate.block_hash,
                header: header_hash,
            });
        }

        let validators =
            ValidatorSet::new(genesis.validators.iter().map(|entry| entry.key).collect())?;
        self.certificate.verify(&network_id, &validators)?;
        Ok(())
    }

    /// The JSON form at the network's `decimals`.
    pub fn to_json(&self, decimals: Decimals) -> ReceiptJson {
        ReceiptJson {
            transfer: TransferJson::from_signed(&self.transfer, decimals),
            header: hex::encode(self.header.encode()),
            proof: ProofJson {
                index: self.proof.index.to_string(),
                size: self.proof.size.to_string(),
                path: self.proof.path.iter().map(Hash::to_hex).collect(),
            },
            certificate: hex::encode(self.certificate.to_bytes()),
        }
    }
}

/// The JSON form of a [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptJson {
    /// The transfer in its JSON form (docs/protocol.md §7).
    pub transfer: TransferJson,
    /// Lowercase hex of the header's canonical bytes; the block hash is their SHA-256.
    pub header: String,
    /// The Merkle path.
    pub proof: ProofJson,
    /// Lowercase hex of the certificate's canonical bytes.
    pub certificate: String,
}

/// The JSON form of an [`InclusionProof`]: integers as decimal strings, hashes as hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofJson {
    /// The transfer's position in the block, from 0.
    pub index: String,
    /// The number of transfers in the block.
    pub size: String,
    /// Sibling hashes from the leaf up to the root.
    pub path: Vec<String>,
}

/// Why a [`ReceiptJson`] does not parse into a [`Receipt`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptJsonError {
    /// The transfer's JSON form is invalid.
    #[error("transfer: {0}")]
    Transfer(#[from] TransferJsonError),
    /// The header is not hex of a canonical header.
    #[error("header is not hex of a canonical block header")]
    Header,
    /// An index or size is not a decimal integer.
    #[error("proof index and size must be decimal integer strings")]
    ProofNumber,
    /// A path entry is not a hash.
    #[error("proof path entries must be 64 lowercase hex characters")]
    ProofPath,
    /// The certificate is not hex of a canonical certificate.
    #[error("certificate is not hex of a canonical commit certificate")]
    Certificate,
}

impl ReceiptJson {
    /// Parses the JSON form back into a receipt (which still has to be verified).
    pub fn to_receipt(&self, decimals: Decimals) -> Result<Receipt, ReceiptJsonError> {
        let transfer = self.transfer.to_signed(decimals)?;

        let header_bytes = hex::decode(&self.header).map_err(|_| ReceiptJsonError::Header)?;
        let header = BlockHeader::decode(&header_bytes).map_err(|_| ReceiptJsonError::Header)?;

        let number = |text: &str| parse_integer(text).ok_or(ReceiptJsonError::ProofNumber);
        let path = self
            .proof
            .path
            .iter()
            .map(|entry| {
                entry
                    .parse::<Hash>()
                    .map_err(|_| ReceiptJsonError::ProofPath)
            })
            .collect::<Result<Vec<Hash>, _>>()?;
        let proof = InclusionProof {
            index: number(&self.proof.index)?,
            size: number(&self.proof.size)?,
            path,
        };

        let certificate_bytes =
            hex::decode(&self.certificate).map_err(|_| ReceiptJsonError::Certificate)?;
        let certificate = CommitCertificate::from_bytes(&certificate_bytes)
            .map_err(|_| ReceiptJsonError::Certificate)?;

        Ok(Receipt {
            transfer,
            header,
            proof,
            certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockContext, build_block};
    use crate::consensus::CommitSignature;
    use crate::consensus::message::precommit_signing_bytes;
    use crate::genesis::tests::{key, sample};
    use crate::keys::SecretKey;
    use crate::ledger::Ledger;
    use crate::transfer::{Transfer, VerifiedTransfer};

    fn transfer(network: Hash, from: u8, to: u8, amount: u64, seq: u64) -> VerifiedTransfer {
        let sender = SecretKey::from_seed(&[from; 32]);
        let body = Transfer::new(network, sender.public_key(), key(to), amount, 1, seq, "pay");
        SignedTransfer::sign(body, &sender)
            .into_verified()
            .expect("good signature")
    }

    /// A block of three transfers and a certificate signed by both sample validators.
    fn committed() -> (Genesis, Block, CommitCertificate) {
        let genesis = sample();
        let ledger = Ledger::from_genesis(&genesis);
        let net = ledger.network_id();
        let candidates = vec![
            transfer(net, 1, 3, 100, 1),
            transfer(net, 1, 4, 200, 2),
            transfer(net, 2, 3, 50, 1),
        ];
        let context = BlockContext::after(None, genesis.validators[0].key, 1_000);
        let block = build_block(&ledger, &genesis, context, candidates).block;
        assert_eq!(block.transfers.len(), 3);

        let bytes = precommit_signing_bytes(&net, block.header.height, 0, Some(block.hash()));
        let signatures = [101u8, 102]
            .iter()
            .map(|seed| {
                let secret = SecretKey::from_seed(&[*seed; 32]);
                CommitSignature {
                    validator: secret.public_key(),
                    signature: secret.sign(&bytes),
                }
            })
            .collect();
        let certificate = CommitCertificate {
            height: block.header.height,
            round: 0,
            block_hash: block.hash(),
            signatures,
        };
        (genesis, block, certificate)
    }

    #[test]
    fn every_transfer_of_a_certified_block_has_a_valid_receipt() {
        let (genesis, block, certificate) = committed();

        for position in 0..block.transfers.len() {
            let receipt = Receipt::build(&block, position, certificate.clone()).expect("exists");
            assert_eq!(receipt.verify(&genesis), Ok(()));

            let json = receipt.to_json(genesis.decimals);
            let text = serde_json::to_string(&json).expect("serializes");
            let parsed: ReceiptJson = serde_json::from_str(&text).expect("parses");
            assert_eq!(parsed.to_receipt(genesis.decimals), Ok(receipt));
        }
        assert_eq!(Receipt::build(&block, 3, certificate), None);
    }

    #[test]
    fn a_flipped_byte_anywhere_is_rejected() {
        let (genesis, block, certificate) = committed();
        let receipt = Receipt::build(&block, 1, certificate).expect("exists");

        let mut transfer = receipt.clone();
        transfer.transfer.transfer.amount += 1;
        assert_eq!(transfer.verify(&genesis), Err(ReceiptError::BadSignature));

        let mut path = receipt.clone();
        path.proof.path[0].0[7] ^= 1;
        assert_eq!(
            path.verify(&genesis),
            Err(ReceiptError::NotInBlock(InclusionError::RootMismatch))
        );

        let mut header = receipt.clone();
        header.header.state_root.0[0] ^= 1;
        assert!(matches!(
            header.verify(&genesis),
            Err(ReceiptError::BlockMismatch { .. })
        ));

        let mut signature = receipt.clone();
        signature.certificate.signatures[1].signature.0[3] ^= 1;
        assert!(matches!(
            signature.verify(&genesis),
            Err(ReceiptError::Certificate(
                CertificateError::SignatureMismatch(_)
            ))
        ));

        let mut other = receipt;
        other.certificate.signatures.pop();
        assert!(matches!(
            other.verify(&genesis),
            Err(ReceiptError::Certificate(
                CertificateError::TooFewSigners { .. }
            ))
        ));
    }

    #[test]
    fn the_json_form_refuses_garbage() {
        let (genesis, block, certificate) = committed();
        let receipt = Receipt::build(&block, 0, certificate).expect("exists");
        let json = receipt.to_json(genesis.decimals);

        let mut header = json.clone();
        header.header.push_str("00");
        assert_eq!(
            header.to_receipt(genesis.decimals),
            Err(ReceiptJsonError::Header)
        );

        let mut index = json.clone();
        index.proof.index = "01".into();
        assert_eq!(
            index.to_receipt(genesis.decimals),
            Err(ReceiptJsonError::ProofNumber)
        );

        let mut certificate = json;
        certificate.certificate.truncate(10);
        assert_eq!(
            certificate.to_receipt(genesis.decimals),
            Err(ReceiptJsonError::Certificate)
        );
    }
}
