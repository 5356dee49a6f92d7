//! The simulator's stand-in for a ledger block, and the validity rule its verdicts apply.

use protocol::Hash;
use protocol::consensus::{ConsensusValue, Height, Round};
use serde::{Deserialize, Serialize};

/// A block with just enough in it to tell blocks apart and to be judged valid or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimBlock {
    /// The height it was built for.
    pub height: Height,
    /// The hash of the block committed at the height before (zero for height 1).
    pub parent: Hash,
    /// The genesis position of the validator that built it. A re-proposed block keeps it.
    pub proposer: u16,
    /// The round it was first proposed in. A re-proposed block keeps it.
    pub round: Round,
    /// Virtual time it was built at, in milliseconds. A re-proposed block keeps it.
    pub timestamp_ms: u64,
    /// Random content, so two blocks built for the same slot differ.
    pub payload: u64,
    /// False for a block a Byzantine proposer deliberately made invalid.
    pub well_formed: bool,
}

impl ConsensusValue for SimBlock {
    fn hash(&self) -> Hash {
        let bytes = postcard::to_stdvec(self).expect("encoding a block into a Vec cannot fail");
        Hash::digest(&bytes)
    }
}

impl SimBlock {
    /// The verdict a node at `height` with chain tip `parent` gives this block.
    ///
    /// It deliberately does not compare `proposer`, `round` or `timestamp_ms` with the
    /// current round: a block re-proposed from an earlier round keeps its original ones.
    pub fn is_valid(&self, height: Height, parent: Hash, validators: usize) -> bool {
        self.well_formed
            && self.height == height
            && self.parent == parent
            && usize::from(self.proposer) < validators
    }
}
