//! The genesis: the rules and starting state every validator of one network agrees on.
//!
//! Operators share it as a TOML file (amounts as decimal strings, keys as `tly1…` addresses).
//! Loading parses and validates it and reports the first problem found. Its canonical binary
//! form is [`GENESIS_DOMAIN_TAG`] followed by the postcard encoding of [`Genesis`]; the
//! network id is the SHA-256 of those bytes, and every transfer carries it, so a transfer
//! signed for one network is refused by every other.
//!
//! ```toml
//! network = "tally-devnet"
//! decimals = 2
//! min_fee = "0.01"
//! fee_account = "tly1…"
//! max_supply = "1000000.00"
//! max_block_transfers = 1000
//! max_block_bytes = 1048576
//!
//! [[validators]]          # in proposer rotation order
//! name = "alpha"
//! key = "tly1…"
//!
//! [[allocations]]
//! account = "tly1…"
//! balance = "250.00"
//! ```

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::amount::{AmountError, Decimals, format_amount, parse_amount};
use crate::block::MAX_HEADER_BYTES;
use crate::encoding;
use crate::hash::Hash;
use crate::keys::{KeyError, PublicKey};
use crate::transfer::MAX_SIGNED_TRANSFER_BYTES;

/// The bytes the hashed form of a genesis starts with.
pub const GENESIS_DOMAIN_TAG: &[u8] = b"TALLY/GENESIS/V1";

/// The most validators a network may have.
pub const MAX_VALIDATORS: usize = 100;

/// The most bytes in a network or validator name.
pub const NAME_MAX_BYTES: usize = 64;

/// The smallest `max_block_bytes` that still lets a block hold the largest transfer.
pub const MIN_BLOCK_BYTES: u32 = (MAX_HEADER_BYTES + 1 + MAX_SIGNED_TRANSFER_BYTES) as u32;

/// A validator: one vote in consensus and one turn in the proposer rotation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// A human name for logs and dashboards, 1 to 64 bytes, unique in the genesis.
    pub name: String,
    /// The validator's signing key; also its libp2p identity.
    pub key: PublicKey,
}

/// An account's starting balance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// The account.
    pub account: PublicKey,
    /// Its starting balance in units; positive.
    pub balance: u64,
}

/// A validated genesis, with amounts in units.
///
/// Field order is the order of the canonical encoding; changing it changes every network id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The network's human name, 1 to 64 bytes.
    pub network: String,
    /// Decimal places of one coin.
    pub decimals: Decimals,
    /// The least fee a transfer may carry, in units.
    pub min_fee: u64,
    /// The account that receives every fee. It exists from genesis on, even at zero.
    pub fee_account: PublicKey,
    /// The cap on the total supply, in units; the allocations sum to at most this.
    pub max_supply: u64,
    /// The most transfers one block may hold; at least 1.
    pub max_block_transfers: u32,
    /// The most bytes the encoding of one block may take; at least [`MIN_BLOCK_BYTES`].
    pub max_block_bytes: u32,
    /// Validators in proposer rotation order: 1 to 100, distinct keys and names.
    pub validators: Vec<Validator>,
    /// Starting balances: distinct accounts, positive balances, total within the cap.
    pub allocations: Vec<Allocation>,
}

/// The first problem found in a genesis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// The text is not TOML of the genesis shape (missing or unknown field, wrong type).
    #[error("genesis is not valid TOML of the expected shape: {0}")]
    Toml(String),
    /// The network name is empty or longer than 64 bytes.
    #[error("network name must be 1 to {NAME_MAX_BYTES} bytes")]
    BadNetworkName,
    /// `decimals` is outside 0..=8.
    #[error("decimals must be between 0 and 8, got {0}")]
    BadDecimals(u8),
    /// An amount field does not parse.
    #[error("{field}: {error}")]
    BadAmount {
        /// Where the amount is, such as `max_supply` or `allocations[2].balance`.
        field: String,
        /// What is wrong with it.
        error: AmountError,
    },
    /// A key field does not parse.
    #[error("{field}: {error}")]
    BadKey {
        /// Where the key is, such as `fee_account` or `validators[0].key`.
        field: String,
        /// What is wrong with it.
        error: KeyError,
    },
    /// The supply cap is zero.
    #[error("max_supply must be positive")]
    ZeroMaxSupply,
    /// The minimum fee is above the supply cap.
    #[error("min_fee is above max_supply")]
    MinFeeAboveMaxSupply,
    /// Blocks could hold no transfer.
    #[error("max_block_transfers must be at least 1")]
    ZeroMaxBlockTransfers,
    /// Blocks could not hold the largest valid transfer.
    #[error("max_block_bytes must be at least {MIN_BLOCK_BYTES}, got {0}")]
    MaxBlockBytesTooSmall(u32),
    /// There is no validator.
    #[error("at least one validator is required")]
    NoValidators,
    /// There are more than 100 validators.
    #[error("at most {MAX_VALIDATORS} validators are allowed, got {0}")]
    TooManyValidators(usize),
    /// A validator name is empty or longer than 64 bytes.
    #[error("validators[{0}].name must be 1 to {NAME_MAX_BYTES} bytes")]
    BadValidatorName(usize),
    /// Two validators share a key.
    #[error("validator key {0} appears twice")]
    DuplicateValidatorKey(PublicKey),
    /// Two validators share a name.
    #[error("validator name {0:?} appears twice")]
    DuplicateValidatorName(String),
    /// Two allocations name the same account.
    #[error("account {0} is allocated twice")]
    DuplicateAllocation(PublicKey),
    /// An allocation of zero.
    #[error("allocation to {0} must be positive")]
    ZeroAllocation(PublicKey),
    /// The allocations add up to more than the supply cap.
    #[error("allocations add up to more than max_supply {max_supply}")]
    SupplyAboveMaximum {
        /// The cap, at the network's decimals.
        max_supply: String,
    },
}

/// The TOML shape: amounts as decimal strings and keys as addresses, parsed only once
/// `decimals` is known.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GenesisFile {
    network: String,
    #[serde(default = "default_decimals")]
    decimals: u8,
    min_fee: String,
    fee_account: String,
    max_supply: String,
    max_block_transfers: u32,
    max_block_bytes: u32,
    validators: Vec<ValidatorFile>,
    #[serde(default)]
    allocations: Vec<AllocationFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidatorFile {
    name: String,
    key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AllocationFile {
    account: String,
    balance: String,
}

fn default_decimals() -> u8 {
    Decimals::DEFAULT.get()
}

impl Genesis {
    /// Parses and validates a genesis file.
    pub fn from_toml(text: &str) -> Result<Genesis, GenesisError> {
        let file: GenesisFile =
            toml::from_str(text).map_err(|error| GenesisError::Toml(error.to_string()))?;
        let genesis = Genesis::from_file(file)?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// The TOML text of this genesis; [`Genesis::from_toml`] reads it back unchanged.
    pub fn to_toml(&self) -> String {
        let file = GenesisFile {
            network: self.network.clone(),
            decimals: self.decimals.get(),
            min_fee: format_amount(self.min_fee, self.decimals),
            fee_account: self.fee_account.to_address(),
            max_supply: format_amount(self.max_supply, self.decimals),
            max_block_transfers: self.max_block_transfers,
            max_block_bytes: self.max_block_bytes,
            validators: self
                .validators
                .iter()
                .map(|v| ValidatorFile {
                    name: v.name.clone(),
                    key: v.key.to_address(),
                })
                .collect(),
            allocations: self
                .allocations
                .iter()
                .map(|a| AllocationFile {
                    account: a.account.to_address(),
                    balance: format_amount(a.balance, self.decimals),
                })
                .collect(),
        };
        toml::to_string(&file).expect("a genesis always has a TOML form")
    }

    /// Checks every rule on an already-built genesis and reports the first one broken.
    pub fn validate(&self) -> Result<(), GenesisError> {
        check_name(&self.network).ok_or(GenesisError::BadNetworkName)?;
        if self.max_supply == 0 {
            return Err(GenesisError::ZeroMaxSupply);
        }
        if self.min_fee > self.max_supply {
            return Err(GenesisError::MinFeeAboveMaxSupply);
        }
        if self.max_block_transfers == 0 {
            return Err(GenesisError::ZeroMaxBlockTransfers);
        }
        if self.max_block_bytes < MIN_BLOCK_BYTES {
            return Err(GenesisError::MaxBlockBytesTooSmall(self.max_block_bytes));
        }
        self.validate_validators()?;
        self.validate_allocations()
    }

    /// The canonical bytes: the domain tag, then the postcard encoding of this genesis.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut bytes = GENESIS_DOMAIN_TAG.to_vec();
        bytes.extend_from_slice(&encoding::encode(self));
        bytes
    }

    /// The network id: SHA-256 of the canonical bytes.
    pub fn network_id(&self) -> Hash {
        Hash::digest(&self.canonical_bytes())
    }

    /// The sum of all allocations: the supply, which every later state conserves.
    ///
    /// # Panics
    ///
    /// If the allocations overflow a `u64`, which [`Genesis::validate`] refuses: call it only
    /// on a validated genesis, such as one from [`Genesis::from_toml`].
    pub fn total_supply(&self) -> u64 {
        self.allocations
            .iter()
            .map(|a| a.balance)
            .try_fold(0u64, u64::checked_add)
            .expect("a validated genesis total fits within max_supply")
    }

    /// The position of `key` in the validator list, if it is a validator.
    pub fn validator_index(&self, key: &PublicKey) -> Option<usize> {
        self.validators.iter().position(|v| v.key == *key)
    }

    fn from_file(file: GenesisFile) -> Result<Genesis, GenesisError> {
        let decimals =
            Decimals::new(file.decimals).map_err(|_| GenesisError::BadDecimals(file.decimals))?;
        let amount = |field: &str, text: &str, max: u64| {
            parse_amount(text, decimals, max).map_err(|error| GenesisError::BadAmount {
                field: field.to_string(),
                error,
            })
        };

        let max_supply = amount("max_supply", &file.max_supply, u64::MAX)?;
        // Caps are checked by `validate`, so that a text file and a built value report the
        // same error for the same problem.
        let min_fee = amount("min_fee", &file.min_fee, u64::MAX)?;
        let fee_account = parse_key("fee_account", &file.fee_account)?;

        let validators = file
            .validators
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let key = parse_key(&format!("validators[{i}].key"), &v.key)?;
                Ok(Validator {
                    name: v.name.clone(),
                    key,
                })
            })
            .collect::<Result<Vec<_>, GenesisError>>()?;

        let allocations = file
            .allocations
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let account = parse_key(&format!("allocations[{i}].account"), &a.account)?;
                // Zero parses here so that `validate` reports it as `ZeroAllocation`.
                let balance = amount(&format!("allocations[{i}].balance"), &a.balance, u64::MAX)?;
                Ok(Allocation { account, balance })
            })
            .collect::<Result<Vec<_>, GenesisError>>()?;

        Ok(Genesis {
            network: file.network,
            decimals,
            min_fee,
            fee_account,
            max_supply,
            max_block_transfers: file.max_block_transfers,
            max_block_bytes: file.max_block_bytes,
            validators,
            allocations,
        })
    }

    fn validate_validators(&self) -> Result<(), GenesisError> {
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        if self.validators.len() > MAX_VALIDATORS {
            return Err(GenesisError::TooManyValidators(self.validators.len()));
        }

        let mut keys = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (index, validator) in self.validators.iter().enumerate() {
            check_name(&validator.name).ok_or(GenesisError::BadValidatorName(index))?;
            if !keys.insert(validator.key) {
                return Err(GenesisError::DuplicateValidatorKey(validator.key));
            }
            if !names.insert(validator.name.as_str()) {
                return Err(GenesisError::DuplicateValidatorName(validator.name.clone()));
            }
        }
        Ok(())
    }

    fn validate_allocations(&self) -> Result<(), GenesisError> {
        let mut accounts = BTreeSet::new();
        let mut total = 0u64;
        for allocation in &self.allocations {
            if !accounts.insert(allocation.account) {
                return Err(GenesisError::DuplicateAllocation(allocation.account));
            }
            if allocation.balance == 0 {
                return Err(GenesisError::ZeroAllocation(allocation.account));
            }
            total = total
                .checked_add(allocation.balance)
                .filter(|&sum| sum <= self.max_supply)
                .ok_or_else(|| GenesisError::SupplyAboveMaximum {
                    max_supply: format_amount(self.max_supply, self.decimals),
                })?;
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Option<()> {
    (!name.is_empty() && name.len() <= NAME_MAX_BYTES).then_some(())
}

fn parse_key(field: &str, text: &str) -> Result<PublicKey, GenesisError> {
    PublicKey::from_address(text).map_err(|error| GenesisError::BadKey {
        field: field.to_string(),
        error,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::keys::SecretKey;

    pub(crate) fn key(seed: u8) -> PublicKey {
        SecretKey::from_seed(&[seed; 32]).public_key()
    }

    pub(crate) fn sample() -> Genesis {
        Genesis {
            network: "tally-test".into(),
            decimals: Decimals::DEFAULT,
            min_fee: 1,
            fee_account: key(200),
            max_supply: 1_000_000,
            max_block_transfers: 100,
            max_block_bytes: 100_000,
            validators: vec![
                Validator {
                    name: "alpha".into(),
                    key: key(101),
                },
                Validator {
                    name: "beta".into(),
                    key: key(102),
                },
            ],
            allocations: vec![
                Allocation {
                    account: key(1),
                    balance: 10_000,
                },
                Allocation {
                    account: key(2),
                    balance: 500,
                },
            ],
        }
    }

    #[test]
    fn toml_round_trips() {
        let genesis = sample();
        assert_eq!(genesis.validate(), Ok(()));
        let text = genesis.to_toml();
        assert!(text.contains("max_supply = \"10000.00\""), "{text}");
        assert_eq!(Genesis::from_toml(&text), Ok(genesis));
    }

    #[test]
    fn network_id_depends_on_every_rule() {
        let genesis = sample();
        let mut other = sample();
        other.min_fee = 2;
        assert_ne!(genesis.network_id(), other.network_id());
        let mut reordered = sample();
        reordered.validators.reverse();
        assert_ne!(genesis.network_id(), reordered.network_id());
        assert_eq!(genesis.network_id(), sample().network_id());
    }

    #[test]
    fn each_broken_rule_is_reported() {
        type Case = (fn(&mut Genesis), GenesisError);
        let cases: Vec<Case> = vec![
            (|g| g.network.clear(), GenesisError::BadNetworkName),
            (|g| g.max_supply = 0, GenesisError::ZeroMaxSupply),
            (
                |g| g.min_fee = 2_000_000,
                GenesisError::MinFeeAboveMaxSupply,
            ),
            (
                |g| g.max_block_transfers = 0,
                GenesisError::ZeroMaxBlockTransfers,
            ),
            (
                |g| g.max_block_bytes = 10,
                GenesisError::MaxBlockBytesTooSmall(10),
            ),
            (|g| g.validators.clear(), GenesisError::NoValidators),
            (
                |g| g.validators[1].name = "".into(),
                GenesisError::BadValidatorName(1),
            ),
            (
                |g| g.validators[1].key = key(101),
                GenesisError::DuplicateValidatorKey(key(101)),
            ),
            (
                |g| g.validators[1].name = "alpha".into(),
                GenesisError::DuplicateValidatorName("alpha".into()),
            ),
            (
                |g| g.allocations[1].account = key(1),
                GenesisError::DuplicateAllocation(key(1)),
            ),
            (
                |g| g.allocations[1].balance = 0,
                GenesisError::ZeroAllocation(key(2)),
            ),
            (
                |g| g.allocations[1].balance = 990_001,
                GenesisError::SupplyAboveMaximum {
                    max_supply: "10000.00".into(),
                },
            ),
        ];
        for (break_rule, expected) in cases {
            let mut genesis = sample();
            break_rule(&mut genesis);
            assert_eq!(genesis.validate(), Err(expected.clone()));
            assert_eq!(Genesis::from_toml(&genesis.to_toml()), Err(expected));
        }
    }

    #[test]
    fn too_many_validators_are_refused() {
        let mut genesis = sample();
        genesis.validators = (0..=100u8)
            .map(|i| Validator {
                name: format!("v{i}"),
                key: key(i.wrapping_add(1)),
            })
            .collect();
        assert_eq!(
            genesis.validate(),
            Err(GenesisError::TooManyValidators(101))
        );
    }

    #[test]
    fn text_level_problems_name_their_field() {
        let text = sample().to_toml();

        let bad_decimals = text.replace("decimals = 2", "decimals = 9");
        assert_eq!(
            Genesis::from_toml(&bad_decimals),
            Err(GenesisError::BadDecimals(9))
        );

        let bad_fee = text.replace("min_fee = \"0.01\"", "min_fee = \"0.001\"");
        assert_eq!(
            Genesis::from_toml(&bad_fee),
            Err(GenesisError::BadAmount {
                field: "min_fee".into(),
                error: AmountError::TooManyDecimals { max: 2, got: 3 }
            })
        );

        let address = key(101).to_address();
        let typo = text.replace(&address, &address.replace("tly1", "tlx1"));
        assert!(matches!(
            Genesis::from_toml(&typo),
            Err(GenesisError::BadKey { field, .. }) if field == "validators[0].key"
        ));

        let unknown = format!("{text}\nsurprise = 1\n");
        assert!(matches!(
            Genesis::from_toml(&unknown),
            Err(GenesisError::Toml(_))
        ));
    }

    #[test]
    fn decimals_default_to_two() {
        let text = sample().to_toml().replace("decimals = 2\n", "");
        assert_eq!(
            Genesis::from_toml(&text).map(|g| g.decimals),
            Ok(Decimals::DEFAULT)
        );
    }
}
