//! The transfers root: an RFC 6962 Merkle tree over a block's signed transfers.
//!
//! Leaves are the full wire bytes of each signed transfer, in block order. As in RFC 6962
//! (Certificate Transparency), leaf and node hashes are domain-separated and the last leaf is
//! never duplicated, so no two different lists of transfers share a root:
//!
//! ```text
//! MTH({})      = SHA-256()                      (the empty string)
//! MTH({d0})    = SHA-256(0x00 || d0)
//! MTH(D[0:n])  = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
//!                where k is the largest power of two smaller than n
//! ```
//!
//! An [`InclusionProof`] shows that one transfer is in a block with log2(n) hashes; its check
//! is the algorithm of RFC 9162, section 2.1.3.2.

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::keys::Signature;
use crate::transfer::{SignedTransfer, TRANSFER_DOMAIN_TAG};

/// The first byte of a leaf's hashed bytes.
pub const LEAF_TAG: u8 = 0x00;

/// The first byte of an inner node's hashed bytes.
pub const NODE_TAG: u8 = 0x01;

/// The hash of a leaf holding `data`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Hash::digest_parts(&[&[LEAF_TAG], data])
}

/// The hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::digest_parts(&[&[NODE_TAG], left.as_bytes(), right.as_bytes()])
}

/// The root over already-hashed leaves.
pub fn root_of_leaves(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Hash::digest(b""),
        [leaf] => *leaf,
        _ => {
            let k = split_point(leaves.len());
            node_hash(&root_of_leaves(&leaves[..k]), &root_of_leaves(&leaves[k..]))
        }
    }
}

/// The transfers root of a block: leaves are each transfer's wire bytes.
pub fn transfers_root(transfers: &[SignedTransfer]) -> Hash {
    root_of_leaves(&transfer_leaves(transfers))
}

/// The leaf hashes of `transfers`, in order.
pub fn transfer_leaves(transfers: &[SignedTransfer]) -> Vec<Hash> {
    transfers
        .iter()
        .map(|signed| leaf_hash(&signed.encode()))
        .collect()
}

/// The leaf of one signed transfer from its signing bytes (the domain tag, then the body),
/// for a caller that already holds them: the wire bytes are the body, then the signature.
pub fn transfer_leaf(signing_bytes: &[u8], signature: &Signature) -> Hash {
    let body = &signing_bytes[TRANSFER_DOMAIN_TAG.len()..];
    Hash::digest_parts(&[&[LEAF_TAG], body, &signature.0])
}

/// The largest power of two strictly smaller than `n` (n >= 2).
fn split_point(n: usize) -> usize {
    // For n >= 2 the next power of two is at least n, so half of it is below n.
    n.next_power_of_two() / 2
}

/// A proof that one leaf is at `index` in a tree of `size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    /// The leaf's position, from 0.
    pub index: u64,
    /// The number of leaves in the tree.
    pub size: u64,
    /// Sibling subtree hashes from the leaf up to the root.
    pub path: Vec<Hash>,
}

/// Why an inclusion proof does not prove inclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InclusionError {
    /// The index is not below the size, or the path has the wrong length.
    #[error("inclusion proof is malformed")]
    Malformed,
    /// The path does not lead to the root.
    #[error("inclusion proof does not match the root")]
    RootMismatch,
}

impl InclusionProof {
    /// The proof for the leaf at `index`, or `None` if there is no such leaf.
    pub fn build(leaves: &[Hash], index: usize) -> Option<InclusionProof> {
        if index >= leaves.len() {
            return None;
        }
        let mut path = Vec::new();
        collect_path(leaves, index, &mut path);
        Some(InclusionProof {
            index: index as u64,
            size: leaves.len() as u64,
            path,
        })
    }

    /// Checks that `leaf_data` (a transfer's wire bytes) is at this proof's index under `root`.
    pub fn verify(&self, leaf_data: &[u8], root: &Hash) -> Result<(), InclusionError> {
        self.verify_leaf_hash(&leaf_hash(leaf_data), root)
    }

    /// Checks that the leaf hashing to `leaf` is at this proof's index under `root`.
    pub fn verify_leaf_hash(&self, leaf: &Hash, root: &Hash) -> Result<(), InclusionError> {
        if self.index >= self.size {
            return Err(InclusionError::Malformed);
        }

        let mut index = self.index;
        let mut last = self.size - 1;
        let mut hash = *leaf;
        for sibling in &self.path {
            if last == 0 {
                return Err(InclusionError::Malformed);
            }
            if index & 1 == 1 || index == last {
                hash = node_hash(sibling, &hash);
                // A right-most node with no right sibling moves up without hashing.
                while index & 1 == 0 && index != 0 {
                    index >>= 1;
                    last >>= 1;
                }
            } else {
                hash = node_hash(&hash, sibling);
            }
            index >>= 1;
            last >>= 1;
        }

        if last != 0 {
            return Err(InclusionError::Malformed);
        }
        if hash != *root {
            return Err(InclusionError::RootMismatch);
        }
        Ok(())
    }
}

/// RFC 6962's PATH(m, D[n]), bottom-up.
fn collect_path(leaves: &[Hash], index: usize, path: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    if index < k {
        collect_path(&leaves[..k], index, path);
        path.push(root_of_leaves(&leaves[k..]));
    } else {
        collect_path(&leaves[k..], index - k, path);
        path.push(root_of_leaves(&leaves[..k]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn a_transfer_leaf_from_its_signing_bytes_is_its_wire_leaf() {
        use crate::keys::SecretKey;
        use crate::transfer::Transfer;

        let sender = SecretKey::from_seed(&[4; 32]);
        let receiver = SecretKey::from_seed(&[5; 32]).public_key();
        let body = Transfer::new(Hash::ZERO, sender.public_key(), receiver, 9, 1, 3, "rent");
        let signed = SignedTransfer::sign(body, &sender);
        assert_eq!(
            transfer_leaf(&signed.signing_bytes(), &signed.signature),
            leaf_hash(&signed.encode())
        );
    }

    #[test]
    fn small_trees_match_the_definition() {
        assert_eq!(root_of_leaves(&[]), Hash::digest(b""));
        let l = leaves(3);
        assert_eq!(root_of_leaves(&l[..1]), l[0]);
        assert_eq!(
            root_of_leaves(&l),
            node_hash(&node_hash(&l[0], &l[1]), &l[2])
        );
    }

    #[test]
    fn the_last_leaf_is_never_duplicated() {
        let l = leaves(3);
        let duplicated = [l[0], l[1], l[2], l[2]];
        assert_ne!(root_of_leaves(&l), root_of_leaves(&duplicated));
    }

    #[test]
    fn leaf_and_node_hashes_are_separated() {
        let l = leaves(2);
        let mut node_bytes = l[0].0.to_vec();
        node_bytes.extend_from_slice(&l[1].0);
        assert_ne!(leaf_hash(&node_bytes), root_of_leaves(&l));
    }

    #[test]
    fn every_leaf_of_every_size_has_a_valid_proof() {
        for size in 1..=33 {
            let l = leaves(size);
            let root = root_of_leaves(&l);
            for index in 0..size {
                let proof = InclusionProof::build(&l, index).expect("index in range");
                assert_eq!(
                    proof.verify_leaf_hash(&l[index], &root),
                    Ok(()),
                    "{index}/{size}"
                );

                let other = l[(index + 1) % size];
                if size > 1 {
                    assert!(
                        proof.verify_leaf_hash(&other, &root).is_err(),
                        "{index}/{size}"
                    );
                }
            }
            assert_eq!(InclusionProof::build(&l, size), None);
        }
    }

    #[test]
    fn tampered_proofs_fail() {
        let l = leaves(10);
        let root = root_of_leaves(&l);
        let proof = InclusionProof::build(&l, 6).expect("in range");

        let mut moved = proof.clone();
        moved.index = 7;
        assert!(moved.verify_leaf_hash(&l[6], &root).is_err());

        let mut short = proof.clone();
        short.path.pop();
        assert!(short.verify_leaf_hash(&l[6], &root).is_err());

        let mut out_of_range = proof;
        out_of_range.index = 10;
        assert_eq!(
            out_of_range.verify_leaf_hash(&l[6], &root),
            Err(InclusionError::Malformed)
        );
    }
}
