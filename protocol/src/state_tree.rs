//! The state tree: a sparse Merkle tree over every account, and proofs of one account.
//!
//! Logically it is a binary tree of depth 256 whose leaf positions are SHA-256(public key),
//! read bit by bit from the most significant bit of the first byte (0 = left). As in Diem's
//! Jellyfish design, a subtree holding exactly one account is replaced by that account's leaf,
//! and an empty subtree hashes to 32 zero bytes:
//!
//! ```text
//! leaf  = SHA-256(0x00 || SHA-256(public key) || balance as u64 BE || next_sequence as u64 BE)
//! node  = SHA-256(0x01 || left || right)
//! empty = 00…00 (32 bytes)
//! ```
//!
//! The root therefore depends only on the set of accounts, never on the order they were
//! written in. In memory the tree is path-compressed: a branch is stored only where two
//! accounts' keys first differ, and the single-child levels above it are hashed on the fly.
//! With keys from SHA-256 the depth is about log2(accounts), so an update costs O(log n)
//! hashes. Nodes are shared (`Arc`) and never mutated, so cloning a tree is O(1) and a block
//! can be tried on a clone and thrown away.
//!
//! A node stores the tree's leaves (the accounts) with every block and rebuilds the inner
//! nodes at start with [`StateTree::from_accounts`], bottom-up in O(n) hashes. An inner node
//! is named by its [`NodePosition`] (its depth and the key bits leading to it); accounts are
//! never removed, so a position, once it holds a branch, holds one for good.
//!
//! We evaluated the `jmt` crate first and did not use it: its current release pins `sha2`
//! and `digest` 0.10 (a second copy next to the 0.11 that ed25519-dalek 3 brings), pulls in
//! `tracing`, `anyhow` and `borsh`, and is built around versioned node storage with its own
//! reader and writer traits. The hashing here is small enough to specify in
//! `docs/protocol.md` for independent auditors.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::keys::PublicKey;
use crate::ledger::Account;

/// The first byte of a leaf's hashed bytes.
pub const LEAF_TAG: u8 = 0x00;

/// The first byte of an inner node's hashed bytes.
pub const NODE_TAG: u8 = 0x01;

/// The hash of an empty subtree.
pub const EMPTY_HASH: Hash = Hash::ZERO;

/// Key bits, and so the most levels a proof can have.
const KEY_BITS: usize = 256;

/// An account's position in the tree: SHA-256 of its public key.
pub fn account_key(owner: &PublicKey) -> Hash {
    Hash::digest(owner.as_bytes())
}

/// The hash of the leaf for the account at `key`.
pub fn leaf_hash(key: &Hash, account: &Account) -> Hash {
    Hash::digest_parts(&[
        &[LEAF_TAG],
        key.as_bytes(),
        &account.balance.to_be_bytes(),
        &account.next_sequence.to_be_bytes(),
    ])
}

/// The hash of an inner node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Hash::digest_parts(&[&[NODE_TAG], left.as_bytes(), right.as_bytes()])
}

/// Bit `index` of `key`, counting from the most significant bit of byte 0; `true` = right.
fn bit(key: &Hash, index: usize) -> bool {
    (key.0[index / 8] >> (7 - index % 8)) & 1 == 1
}

/// The index of the first bit where `a` and `b` differ, or `None` if they are equal.
fn first_difference(a: &Hash, b: &Hash) -> Option<usize> {
    a.0.iter()
        .zip(&b.0)
        .position(|(x, y)| x != y)
        .map(|byte| byte * 8 + (a.0[byte] ^ b.0[byte]).leading_zeros() as usize)
}

/// Where an inner node sits: the depth where its two subtrees' keys first differ, and the
/// key bits above that depth (the bits from `depth` on are zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodePosition {
    /// A key of the subtree with every bit from `depth` on cleared.
    pub prefix: Hash,
    /// The depth of the split, 0 to 255.
    pub depth: u8,
}

impl NodePosition {
    /// The stored form: the 32 prefix bytes, then the depth byte. Byte order is
    /// [`NodePosition`] order.
    pub fn to_bytes(&self) -> [u8; 33] {
        let mut bytes = [0u8; 33];
        bytes[..32].copy_from_slice(self.prefix.as_bytes());
        bytes[32] = self.depth;
        bytes
    }

    /// Parses [`NodePosition::to_bytes`]; `None` for the wrong length or a prefix with bits
    /// set at or below its depth.
    pub fn from_bytes(bytes: &[u8]) -> Option<NodePosition> {
        let bytes: &[u8; 33] = bytes.try_into().ok()?;
        let prefix = Hash(bytes[..32].try_into().expect("32 bytes"));
        let position = NodePosition::of(&prefix, usize::from(bytes[32]));
        (position.prefix == prefix).then_some(position)
    }

    fn of(key: &Hash, depth: usize) -> NodePosition {
        let mut prefix = *key;
        for (index, byte) in prefix.0.iter_mut().enumerate() {
            let kept = depth.saturating_sub(index * 8).min(8);
            *byte &= (0xff_u16 << (8 - kept)) as u8;
        }
        let depth = u8::try_from(depth).expect("a split is above the 256th bit");
        NodePosition { prefix, depth }
    }
}

/// The sparse Merkle tree of all accounts. Cloning is O(1).
#[derive(Clone, Default)]
pub struct StateTree {
    root: Option<Node>,
    len: usize,
}

#[derive(Clone)]
enum Node {
    Leaf(Arc<Leaf>),
    Branch(Arc<Branch>),
}

struct Leaf {
    key: Hash,
    owner: PublicKey,
    account: Account,
    hash: Hash,
}

/// Two non-empty subtrees whose keys first differ at bit `split`.
struct Branch {
    split: usize,
    /// A key from this subtree; its first `split` bits are the whole subtree's prefix.
    key: Hash,
    left: Node,
    right: Node,
    /// The node hash at depth `split`, before the single-child levels above it.
    hash: Hash,
}

impl Node {
    fn key(&self) -> &Hash {
        match self {
            Node::Leaf(leaf) => &leaf.key,
            Node::Branch(branch) => &branch.key,
        }
    }

    /// The hash of this subtree seen from a position at `depth`.
    fn hash_at(&self, depth: usize) -> Hash {
        match self {
            // A lone leaf floats up: its hash is the same at every depth.
            Node::Leaf(leaf) => leaf.hash,
            Node::Branch(branch) => {
                let mut hash = branch.hash;
                for level in (depth..branch.split).rev() {
                    hash = if bit(&branch.key, level) {
                        node_hash(&EMPTY_HASH, &hash)
                    } else {
                        node_hash(&hash, &EMPTY_HASH)
                    };
                }
                hash
            }
        }
    }
}

impl Branch {
    fn node(split: usize, key: Hash, left: Node, right: Node) -> Node {
        let hash = node_hash(&left.hash_at(split + 1), &right.hash_at(split + 1));
        Node::Branch(Arc::new(Branch {
            split,
            key,
            left,
            right,
            hash,
        }))
    }

    /// A branch over two subtrees whose keys first differ at `split`.
    fn join(split: usize, a: Node, b: Node) -> Node {
        let key = *a.key();
        if bit(a.key(), split) {
            Branch::node(split, key, b, a)
        } else {
            Branch::node(split, key, a, b)
        }
    }
}

impl StateTree {
    /// An empty tree.
    pub fn new() -> StateTree {
        StateTree::default()
    }

    /// The number of accounts.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no account at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root hash; [`EMPTY_HASH`] for an empty tree.
    pub fn root(&self) -> Hash {
        self.root
            .as_ref()
            .map_or(EMPTY_HASH, |node| node.hash_at(0))
    }

    /// The account of `owner`, if it was ever written.
    pub fn get(&self, owner: &PublicKey) -> Option<Account> {
        let key = account_key(owner);
        let mut node = self.root.as_ref()?;
        loop {
            match node {
                Node::Leaf(leaf) => return (leaf.key == key).then_some(leaf.account),
                Node::Branch(branch) => {
                    node = if bit(&key, branch.split) {
                        &branch.right
                    } else {
                        &branch.left
                    };
                }
            }
        }
    }

    /// Writes `owner`'s account, creating its leaf if it is new.
    pub fn insert(&mut self, owner: PublicKey, account: Account) {
        let key = account_key(&owner);
        let leaf = Node::Leaf(Arc::new(Leaf {
            key,
            owner,
            account,
            hash: leaf_hash(&key, &account),
        }));

        let (root, added) = match &self.root {
            None => (leaf, true),
            Some(root) => insert_into(root, leaf),
        };
        self.root = Some(root);
        if added {
            self.len += 1;
        }
    }

    /// Writes many accounts at once, as [`StateTree::insert`] would one after another (an
    /// owner listed twice ends with its later value), but hashing each inner node on the
    /// changed paths once, not once per account: a block's writes share the upper levels.
    pub fn insert_many(&mut self, accounts: impl IntoIterator<Item = (PublicKey, Account)>) {
        let mut leaves: Vec<Node> = accounts
            .into_iter()
            .map(|(owner, account)| {
                let key = account_key(&owner);
                let hash = leaf_hash(&key, &account);
                Node::Leaf(Arc::new(Leaf {
                    key,
                    owner,
                    account,
                    hash,
                }))
            })
            .collect();
        if leaves.is_empty() {
            return;
        }
        // A stable sort keeps an owner's values in input order; the last of each run wins.
        leaves.sort_by(|a, b| a.key().cmp(b.key()));
        leaves.reverse();
        leaves.dedup_by(|later, earlier| later.key() == earlier.key());
        leaves.reverse();

        let (root, added) = match &self.root {
            None => (build_sorted(&leaves), leaves.len()),
            Some(root) => merge_sorted(root, &leaves),
        };
        self.root = Some(root);
        self.len += added;
    }

    /// Every account, in the order of their keys.
    pub fn iter(&self) -> impl Iterator<Item = (PublicKey, Account)> + '_ {
        let mut stack: Vec<&Node> = self.root.iter().collect();
        std::iter::from_fn(move || {
            while let Some(node) = stack.pop() {
                match node {
                    Node::Leaf(leaf) => return Some((leaf.owner, leaf.account)),
                    Node::Branch(branch) => {
                        stack.push(&branch.right);
                        stack.push(&branch.left);
                    }
                }
            }
            None
        })
    }

    /// Builds the tree over `accounts` bottom-up, hashing each node once. Gives the same
    /// tree as inserting them one by one; `Err` names an account listed twice.
    pub fn from_accounts(
        accounts: impl IntoIterator<Item = (PublicKey, Account)>,
    ) -> Result<StateTree, PublicKey> {
        let mut leaves: Vec<Node> = accounts
            .into_iter()
            .map(|(owner, account)| {
                let key = account_key(&owner);
                Node::Leaf(Arc::new(Leaf {
                    key,
                    owner,
                    account,
                    hash: leaf_hash(&key, &account),
                }))
            })
            .collect();
        leaves.sort_by(|a, b| a.key().cmp(b.key()));
        if let Some(pair) = leaves
            .windows(2)
            .find(|pair| pair[0].key() == pair[1].key())
        {
            let Node::Leaf(leaf) = &pair[1] else {
                unreachable!("only leaves here")
            };
            return Err(leaf.owner);
        }
        let len = leaves.len();
        let root = (!leaves.is_empty()).then(|| build_sorted(&leaves));
        Ok(StateTree { root, len })
    }

    /// Every inner node's position and hash, in position order.
    pub fn inner_nodes(&self) -> Vec<(NodePosition, Hash)> {
        let mut nodes = Vec::new();
        if let Some(root) = &self.root {
            collect_inner(root, &mut nodes);
        }
        nodes.sort_unstable();
        nodes
    }

    /// A proof of `owner`'s account (or of its absence) against [`StateTree::root`].
    pub fn prove(&self, owner: &PublicKey) -> StateProof {
        let key = account_key(owner);
        let mut siblings = Vec::new();
        let mut depth = 0;
        let mut next = self.root.as_ref();

        while let Some(node) = next {
            let branch = match node {
                Node::Leaf(leaf) => {
                    let leaf = ProofLeaf {
                        key: leaf.key,
                        account: leaf.account,
                    };
                    return StateProof {
                        siblings,
                        leaf: Some(leaf),
                    };
                }
                Node::Branch(branch) => branch,
            };

            // Walk the single-child levels above the branch; leaving the shared prefix means
            // the key's position there is empty.
            for level in depth..branch.split {
                if bit(&key, level) != bit(&branch.key, level) {
                    siblings.push(node.hash_at(level + 1));
                    return StateProof {
                        siblings,
                        leaf: None,
                    };
                }
                siblings.push(EMPTY_HASH);
            }

            let (toward, away) = if bit(&key, branch.split) {
                (&branch.right, &branch.left)
            } else {
                (&branch.left, &branch.right)
            };
            siblings.push(away.hash_at(branch.split + 1));
            depth = branch.split + 1;
            next = Some(toward);
        }
        StateProof {
            siblings,
            leaf: None,
        }
    }
}

impl fmt::Debug for StateTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateTree")
            .field("accounts", &self.len)
            .field("root", &self.root())
            .finish()
    }
}

/// Inserts `leaf` below `node`; returns the new subtree and whether an account was added.
fn insert_into(node: &Node, leaf: Node) -> (Node, bool) {
    match node {
        Node::Leaf(existing) => match first_difference(&existing.key, leaf.key()) {
            None => (leaf, false),
            Some(split) => (Branch::join(split, node.clone(), leaf), true),
        },
        Node::Branch(branch) => match first_difference(&branch.key, leaf.key()) {
            // The new key leaves this subtree's prefix: a new branch goes above it.
            Some(split) if split < branch.split => (Branch::join(split, node.clone(), leaf), true),
            _ => {
                let go_right = bit(leaf.key(), branch.split);
                let child = if go_right {
                    &branch.right
                } else {
                    &branch.left
                };
                let (child, added) = insert_into(child, leaf);
                let (left, right) = if go_right {
                    (branch.left.clone(), child)
                } else {
                    (child, branch.right.clone())
                };
                (Branch::node(branch.split, branch.key, left, right), added)
            }
        },
    }
}

/// Writes `leaves` (sorted by key, distinct, not empty) below `node`; returns the new subtree
/// and the number of accounts added.
fn merge_sorted(node: &Node, leaves: &[Node]) -> (Node, usize) {
    if let [leaf] = leaves {
        let (node, added) = insert_into(node, leaf.clone());
        return (node, usize::from(added));
    }
    let branch = match node {
        Node::Leaf(existing) => return merge_leaf(node, &existing.key, leaves),
        Node::Branch(branch) => branch,
    };
    let (first, last) = (leaves[0].key(), leaves[leaves.len() - 1].key());
    let inside = |key: &Hash| first_difference(&branch.key, key).is_none_or(|d| d >= branch.split);

    // Keys with this subtree's prefix form one run of the sorted leaves, so when the first
    // and the last have it, every leaf has it and the branch keeps its place.
    if inside(first) && inside(last) {
        let middle = leaves.partition_point(|leaf| !bit(leaf.key(), branch.split));
        let (left_leaves, right_leaves) = leaves.split_at(middle);
        let (left, left_added) = merge_side(&branch.left, left_leaves);
        let (right, right_added) = merge_side(&branch.right, right_leaves);
        let node = Branch::node(branch.split, branch.key, left, right);
        return (node, left_added + right_added);
    }

    // Some leaves leave the prefix: a new branch goes above this one, where the keys of the
    // leaves and of this subtree first differ.
    let split = [
        first_difference(&branch.key, first),
        first_difference(&branch.key, last),
        first_difference(first, last),
    ]
    .into_iter()
    .flatten()
    .min()
    .expect("a leaf outside the prefix differs from the branch's key");
    let middle = leaves.partition_point(|leaf| !bit(leaf.key(), split));
    let (left_leaves, right_leaves) = leaves.split_at(middle);
    let (ours, theirs) = if bit(&branch.key, split) {
        (right_leaves, left_leaves)
    } else {
        (left_leaves, right_leaves)
    };
    let (merged, added) = merge_side(node, ours);
    let other = build_sorted(theirs);
    let node = if bit(&branch.key, split) {
        Branch::node(split, branch.key, other, merged)
    } else {
        Branch::node(split, branch.key, merged, other)
    };
    (node, added + theirs.len())
}

/// [`merge_sorted`], leaving `node` as it is when no leaf goes below it.
fn merge_side(node: &Node, leaves: &[Node]) -> (Node, usize) {
    if leaves.is_empty() {
        (node.clone(), 0)
    } else {
        merge_sorted(node, leaves)
    }
}

/// Writes `leaves` over the lone leaf `node` at `key`: the subtree over both, in which a leaf
/// with the same key replaces it.
fn merge_leaf(node: &Node, key: &Hash, leaves: &[Node]) -> (Node, usize) {
    match leaves.binary_search_by(|leaf| leaf.key().cmp(key)) {
        Ok(_) => (build_sorted(leaves), leaves.len() - 1),
        Err(position) => {
            let mut all = Vec::with_capacity(leaves.len() + 1);
            all.extend_from_slice(&leaves[..position]);
            all.push(node.clone());
            all.extend_from_slice(&leaves[position..]);
            (build_sorted(&all), leaves.len())
        }
    }
}

/// The subtree over `leaves`, sorted by key, distinct and not empty.
fn build_sorted(leaves: &[Node]) -> Node {
    let (first, last) = (&leaves[0], &leaves[leaves.len() - 1]);
    let Some(split) = first_difference(first.key(), last.key()) else {
        return first.clone();
    };
    let middle = leaves.partition_point(|leaf| !bit(leaf.key(), split));
    let left = build_sorted(&leaves[..middle]);
    let right = build_sorted(&leaves[middle..]);
    Branch::node(split, *first.key(), left, right)
}

/// Pushes the inner nodes under `node`.
fn collect_inner(node: &Node, out: &mut Vec<(NodePosition, Hash)>) {
    if let Node::Branch(branch) = node {
        out.push((NodePosition::of(&branch.key, branch.split), branch.hash));
        collect_inner(&branch.left, out);
        collect_inner(&branch.right, out);
    }
}

/// The leaf found where a proof's path ends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofLeaf {
    /// The leaf's key: SHA-256 of its owner's public key.
    pub key: Hash,
    /// The leaf's account.
    pub account: Account,
}

/// A proof that an account has a given (balance, next sequence) under a state root.
///
/// An account that was never written has balance 0 and next sequence 1; its proof shows that
/// its position is empty or held by another account's leaf.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateProof {
    /// Sibling hashes from the root down: `siblings[i]` is the sibling at depth `i`.
    pub siblings: Vec<Hash>,
    /// The leaf where the path ends, or `None` if it ends in an empty subtree.
    pub leaf: Option<ProofLeaf>,
}

/// Why a state proof does not prove the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    /// More siblings than key bits, or an end leaf that could not sit on this key's path.
    #[error("state proof is malformed")]
    Malformed,
    /// The proof shows the account absent, but the claim is not the fresh account.
    #[error("state proof shows the account absent, so it is the fresh account")]
    AccountAbsent,
    /// The hashes do not lead to the root.
    #[error("state proof does not match the state root")]
    RootMismatch,
}

impl StateProof {
    /// The account this proof claims for `owner`: the end leaf's if it is `owner`'s, else the
    /// fresh account. Call [`StateProof::verify`] before trusting it.
    pub fn claimed_account(&self, owner: &PublicKey) -> Account {
        let key = account_key(owner);
        match &self.leaf {
            Some(leaf) if leaf.key == key => leaf.account,
            _ => Account::default(),
        }
    }

    /// Checks that under `root`, `owner`'s account is exactly `account`.
    pub fn verify(
        &self,
        root: &Hash,
        owner: &PublicKey,
        account: &Account,
    ) -> Result<(), StateProofError> {
        let key = account_key(owner);
        let depth = self.siblings.len();
        if depth > KEY_BITS {
            return Err(StateProofError::Malformed);
        }

        let mut hash = match &self.leaf {
            Some(leaf) if leaf.key == key => leaf_hash(&key, account),
            other => {
                if *account != Account::default() {
                    return Err(StateProofError::AccountAbsent);
                }
                match other {
                    None => EMPTY_HASH,
                    Some(leaf) => {
                        // Another account's leaf ends the path: it must share the path's bits.
                        let shared = first_difference(&leaf.key, &key).unwrap_or(KEY_BITS);
                        if shared < depth {
                            return Err(StateProofError::Malformed);
                        }
                        leaf_hash(&leaf.key, &leaf.account)
                    }
                }
            }
        };

        for (level, sibling) in self.siblings.iter().enumerate().rev() {
            hash = if bit(&key, level) {
                node_hash(sibling, &hash)
            } else {
                node_hash(&hash, sibling)
            };
        }

        if hash != *root {
            return Err(StateProofError::RootMismatch);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::keys::SecretKey;

    fn owner(seed: u32) -> PublicKey {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&seed.to_le_bytes());
        SecretKey::from_seed(&bytes).public_key()
    }

    fn account(balance: u64) -> Account {
        Account {
            balance,
            next_sequence: balance % 7 + 1,
        }
    }

    /// The root by the definition, with no compression: for reference only.
    fn reference_root(leaves: &[(Hash, Account)], depth: usize) -> Hash {
        match leaves {
            [] => EMPTY_HASH,
            [(key, account)] => leaf_hash(key, account),
            _ => {
                let (left, right): (Vec<_>, Vec<_>) =
                    leaves.iter().partition(|(key, _)| !bit(key, depth));
                node_hash(
                    &reference_root(&left, depth + 1),
                    &reference_root(&right, depth + 1),
                )
            }
        }
    }

    #[test]
    fn empty_tree_has_the_empty_root() {
        let tree = StateTree::new();
        assert_eq!(tree.root(), EMPTY_HASH);
        let proof = tree.prove(&owner(1));
        assert_eq!(
            proof.verify(&EMPTY_HASH, &owner(1), &Account::default()),
            Ok(())
        );
    }

    #[test]
    fn root_matches_the_uncompressed_definition() {
        let mut tree = StateTree::new();
        let mut leaves = BTreeMap::new();
        for seed in 0..200 {
            tree.insert(owner(seed), account(u64::from(seed)));
            leaves.insert(account_key(&owner(seed)), account(u64::from(seed)));
            if seed % 37 == 0 {
                let list: Vec<_> = leaves.iter().map(|(k, a)| (*k, *a)).collect();
                assert_eq!(tree.root(), reference_root(&list, 0), "after {seed}");
            }
        }
        assert_eq!(tree.len(), 200);
    }

    #[test]
    fn root_does_not_depend_on_insertion_order() {
        let mut forward = StateTree::new();
        let mut backward = StateTree::new();
        for seed in 0..64 {
            forward.insert(owner(seed), account(u64::from(seed)));
            backward.insert(owner(63 - seed), account(u64::from(63 - seed)));
        }
        assert_eq!(forward.root(), backward.root());

        // Overwriting with the same value changes nothing; with another value it does.
        let before = forward.root();
        forward.insert(owner(5), account(5));
        assert_eq!(forward.root(), before);
        forward.insert(owner(5), account(6));
        assert_ne!(forward.root(), before);
        assert_eq!(forward.len(), 64);
    }

    #[test]
    fn proofs_verify_for_present_and_absent_accounts() {
        let mut tree = StateTree::new();
        for seed in 0..100 {
            tree.insert(owner(seed), account(u64::from(seed) + 1));
        }
        let root = tree.root();

        for seed in 0..100 {
            let proof = tree.prove(&owner(seed));
            let real = account(u64::from(seed) + 1);
            assert_eq!(proof.claimed_account(&owner(seed)), real);
            assert_eq!(proof.verify(&root, &owner(seed), &real), Ok(()));
            assert_eq!(
                proof.verify(&root, &owner(seed), &account(999)),
                Err(StateProofError::RootMismatch)
            );
        }

        for seed in 100..150 {
            let proof = tree.prove(&owner(seed));
            assert_eq!(
                proof.verify(&root, &owner(seed), &Account::default()),
                Ok(())
            );
            assert_eq!(
                proof.verify(&root, &owner(seed), &account(3)),
                Err(StateProofError::AccountAbsent)
            );
        }
    }

    #[test]
    fn a_proof_for_one_account_does_not_prove_another() {
        let mut tree = StateTree::new();
        for seed in 0..20 {
            tree.insert(owner(seed), account(u64::from(seed) + 1));
        }
        let proof = tree.prove(&owner(3));
        let verdict = proof.verify(&tree.root(), &owner(4), &account(4));
        assert!(verdict.is_err());
    }

    #[test]
    fn clones_are_independent() {
        let mut tree = StateTree::new();
        tree.insert(owner(1), account(1));
        let snapshot = tree.clone();
        tree.insert(owner(2), account(2));
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot.get(&owner(2)), None);
        assert_eq!(tree.get(&owner(2)), Some(account(2)));
    }

    #[test]
    fn bulk_build_equals_one_by_one_inserts() {
        let accounts: Vec<_> = (0..300)
            .map(|s| (owner(s), account(u64::from(s))))
            .collect();
        let mut inserted = StateTree::new();
        for (owner, account) in &accounts {
            inserted.insert(*owner, *account);
        }
        let built = StateTree::from_accounts(accounts.iter().rev().copied()).unwrap();
        assert_eq!(built.root(), inserted.root());
        assert_eq!(built.len(), 300);
        assert_eq!(built.inner_nodes(), inserted.inner_nodes());
        // n leaves, n - 1 branches.
        assert_eq!(built.inner_nodes().len(), 299);

        assert_eq!(StateTree::from_accounts([]).unwrap().root(), EMPTY_HASH);
        let one = StateTree::from_accounts([(owner(1), account(1))]).unwrap();
        assert_eq!(one.root(), leaf_hash(&account_key(&owner(1)), &account(1)));
        assert!(one.inner_nodes().is_empty());

        let twice = [
            (owner(1), account(1)),
            (owner(2), account(2)),
            (owner(1), account(3)),
        ];
        assert_eq!(StateTree::from_accounts(twice).unwrap_err(), owner(1));
    }

    #[test]
    fn many_at_once_equals_one_by_one_inserts() {
        let mut one_by_one = StateTree::new();
        let mut at_once = StateTree::new();
        // Batches that land in an empty tree, beside existing leaves, above and below
        // existing branches, and rewrite existing accounts, with owners listed twice.
        let batches: [Vec<u32>; 6] = [
            vec![1],
            vec![2, 3, 1],
            (10..60).collect(),
            (0..200).step_by(7).chain([5, 5, 61]).collect(),
            (300..310).collect(),
            (0..400).rev().step_by(3).collect(),
        ];
        for (round, batch) in batches.iter().enumerate() {
            let writes: Vec<_> = batch
                .iter()
                .enumerate()
                .map(|(i, &s)| (owner(s), account(u64::from(s) * 10 + (round + i) as u64)))
                .collect();
            for (owner, account) in &writes {
                one_by_one.insert(*owner, *account);
            }
            at_once.insert_many(writes.iter().copied());
            assert_eq!(at_once.root(), one_by_one.root(), "batch {round}");
            assert_eq!(at_once.len(), one_by_one.len(), "batch {round}");
            assert_eq!(at_once.inner_nodes(), one_by_one.inner_nodes());
            assert!(at_once.iter().eq(one_by_one.iter()));
        }
        at_once.insert_many([]);
        assert_eq!(at_once.root(), one_by_one.root());
    }

    #[test]
    fn node_positions_round_trip_and_reject_stray_bits() {
        let key = account_key(&owner(9));
        for depth in [0usize, 1, 7, 8, 9, 200, 255] {
            let position = NodePosition::of(&key, depth);
            assert_eq!(
                NodePosition::from_bytes(&position.to_bytes()),
                Some(position)
            );
        }
        let position = NodePosition::of(&key, 3);
        assert_eq!(position.prefix.0[0], key.0[0] & 0b1110_0000);
        assert_eq!(&position.prefix.0[1..], &[0u8; 31]);
        let mut bytes = position.to_bytes();
        bytes[31] = 1;
        assert_eq!(NodePosition::from_bytes(&bytes), None);
        assert_eq!(NodePosition::from_bytes(&bytes[..32]), None);
    }

    #[test]
    fn iteration_visits_every_account_in_key_order() {
        let mut tree = StateTree::new();
        for seed in 0..50 {
            tree.insert(owner(seed), account(u64::from(seed)));
        }
        let keys: Vec<Hash> = tree.iter().map(|(o, _)| account_key(&o)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 50);
    }
}
