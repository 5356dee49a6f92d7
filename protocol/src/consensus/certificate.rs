//! Commit certificates: the proof, checkable by anyone holding the genesis file, that a
//! quorum of validators precommitted a block.
//!
//! A certificate is stored with every block and served to syncing nodes and auditors, so it
//! has one canonical byte form: [`CommitCertificate::from_bytes`] rejects trailing bytes and
//! any encoding that does not re-encode to the same bytes. [`CommitCertificate::verify`] is
//! the single check used by the state machine, the node, block sync and the auditor.

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::keys::{PublicKey, Signature};
use crate::verification::{SignedMessage, verify_many};

use super::message::precommit_signing_bytes;
use super::validators::ValidatorSet;
use super::{Height, Round};

/// One validator's precommit signature inside a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitSignature {
    /// The validator that precommitted.
    pub validator: PublicKey,
    /// Its signature over the precommit bytes for the certificate's (height, round, block).
    pub signature: Signature,
}

/// A quorum of precommit signatures for one block at one height and round.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitCertificate {
    /// The committed height.
    pub height: Height,
    /// The round whose precommits committed the block.
    pub round: Round,
    /// The committed block's hash.
    pub block_hash: Hash,
    /// Precommit signatures from distinct validators, in genesis order when built by the
    /// state machine (verification accepts any order).
    pub signatures: Vec<CommitSignature>,
}

/// Why a certificate does not prove a commit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// A signer is not a genesis validator.
    #[error("signer {0} is not a validator")]
    UnknownSigner(PublicKey),
    /// A validator signs twice, which would let one vote count as two.
    #[error("validator {0} signs more than once")]
    DuplicateSigner(PublicKey),
    /// Fewer distinct validators than a quorum.
    #[error("{got} distinct signers, a quorum is {needed}")]
    TooFewSigners {
        /// Distinct validators that signed.
        got: usize,
        /// The quorum.
        needed: usize,
    },
    /// A signature is not over this certificate's precommit bytes: it signs another block,
    /// height, round or network, or it is forged. Ed25519 cannot tell these apart.
    #[error("the signature of {0} is not over this certificate's precommit")]
    SignatureMismatch(PublicKey),
}

/// Why bytes are not a canonical certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateDecodeError {
    /// The bytes do not parse as a certificate.
    #[error("malformed certificate bytes: {0}")]
    Malformed(String),
    /// Bytes are left over after the certificate.
    #[error("{0} bytes after the end of the certificate")]
    TrailingBytes(usize),
    /// The bytes parse but are not the canonical encoding (an over-long integer, say), so
    /// two byte strings would stand for one certificate.
    #[error("the certificate is not canonically encoded")]
    NonCanonical,
}

impl CommitCertificate {
    /// Checks that distinct genesis validators, at least a quorum of them, signed precommits
    /// for exactly this (network, height, round, block).
    pub fn verify(
        &self,
        network_id: &Hash,
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        // Membership, duplicates and count first: they are cheap and catch most garbage.
        let mut signed = vec![false; validators.len()];
        for entry in &self.signatures {
            let position = validators
                .position(&entry.validator)
                .ok_or(CertificateError::UnknownSigner(entry.validator))?;
            if std::mem::replace(&mut signed[position], true) {
                return Err(CertificateError::DuplicateSigner(entry.validator));
            }
        }

        let needed = validators.quorum();
        if self.signatures.len() < needed {
            let got = self.signatures.len();
            return Err(CertificateError::TooFewSigners { got, needed });
        }

        // One batch for all signatures: `verify_many` gives each signature exactly the
        // answer of the one-by-one check (see `crate::verification`), so the first failure
        // named is the same as a loop would name.
        let bytes =
            precommit_signing_bytes(network_id, self.height, self.round, Some(self.block_hash));
        let items: Vec<SignedMessage<'_>> = self
            .signatures
            .iter()
            .map(|entry| SignedMessage {
                key: &entry.validator,
                signature: &entry.signature,
                message: &bytes,
            })
            .collect();
        let outcomes = verify_many(&items);
        match self
            .signatures
            .iter()
            .zip(outcomes)
            .find(|(_, o)| o.is_err())
        {
            Some((entry, _)) => Err(CertificateError::SignatureMismatch(entry.validator)),
            None => Ok(()),
        }
    }

    /// The canonical bytes (postcard).
    pub fn to_bytes(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("encoding a certificate into a Vec cannot fail")
    }

    /// Parses canonical bytes; see [`CertificateDecodeError`] for what is rejected.
    pub fn from_bytes(bytes: &[u8]) -> Result<CommitCertificate, CertificateDecodeError> {
        let (certificate, rest): (CommitCertificate, _) = postcard::take_from_bytes(bytes)
            .map_err(|error| CertificateDecodeError::Malformed(error.to_string()))?;
        if !rest.is_empty() {
            return Err(CertificateDecodeError::TrailingBytes(rest.len()));
        }
        if certificate.to_bytes() != bytes {
            return Err(CertificateDecodeError::NonCanonical);
        }
        Ok(certificate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::test_support::validators_and_keys;
    use crate::keys::SecretKey;

    const NETWORK: Hash = Hash([7; 32]);
    const BLOCK: Hash = Hash([3; 32]);

    fn certificate(keys: &[SecretKey], height: Height, round: Round) -> CommitCertificate {
        let bytes = precommit_signing_bytes(&NETWORK, height, round, Some(BLOCK));
        let signatures = keys
            .iter()
            .map(|key| CommitSignature {
                validator: key.public_key(),
                signature: key.sign(&bytes),
            })
            .collect();
        CommitCertificate {
            height,
            round,
            block_hash: BLOCK,
            signatures,
        }
    }

    #[test]
    fn a_quorum_of_distinct_precommits_verifies() {
        let (validators, keys) = validators_and_keys(4);
        assert_eq!(
            certificate(&keys[..3], 5, 2).verify(&NETWORK, &validators),
            Ok(())
        );
    }

    #[test]
    fn too_few_signers_is_its_own_error() {
        let (validators, keys) = validators_and_keys(4);
        assert_eq!(
            certificate(&keys[..2], 5, 2).verify(&NETWORK, &validators),
            Err(CertificateError::TooFewSigners { got: 2, needed: 3 })
        );
    }

    #[test]
    fn a_duplicate_signer_is_caught_even_when_the_count_looks_like_a_quorum() {
        let (validators, keys) = validators_and_keys(4);
        let mut cert = certificate(&keys[..2], 5, 2);
        cert.signatures.push(cert.signatures[0]);
        assert_eq!(
            cert.verify(&NETWORK, &validators),
            Err(CertificateError::DuplicateSigner(keys[0].public_key()))
        );
    }

    #[test]
    fn a_signer_outside_the_set_is_caught() {
        let (validators, mut keys) = validators_and_keys(4);
        keys[2] = SecretKey::from_seed(&[99; 32]);
        assert_eq!(
            certificate(&keys[..3], 5, 2).verify(&NETWORK, &validators),
            Err(CertificateError::UnknownSigner(keys[2].public_key()))
        );
    }

    #[test]
    fn signatures_over_another_block_height_round_or_network_are_caught() {
        let (validators, keys) = validators_and_keys(4);
        let good = certificate(&keys[..3], 5, 2);
        let first = keys[0].public_key();

        let mut other_block = good.clone();
        other_block.block_hash = Hash([4; 32]);
        let mut other_height = good.clone();
        other_height.height = 6;
        let mut other_round = good.clone();
        other_round.round = 3;
        for cert in [other_block, other_height, other_round] {
            let expected = Err(CertificateError::SignatureMismatch(first));
            assert_eq!(cert.verify(&NETWORK, &validators), expected);
        }
        assert_eq!(
            good.verify(&Hash([8; 32]), &validators),
            Err(CertificateError::SignatureMismatch(first))
        );
    }

    #[test]
    fn one_forged_signature_among_good_ones_is_named_as_the_loop_would() {
        let (validators, keys) = validators_and_keys(7);
        let good = certificate(&keys[..6], 9, 1);
        assert_eq!(good.verify(&NETWORK, &validators), Ok(()));

        // A flipped bit in the 4th signature's S, then also in the 2nd: the batch fails and
        // the first bad signature in certificate order is the one named.
        let mut forged = good.clone();
        forged.signatures[3].signature.0[40] ^= 1;
        assert_eq!(
            forged.verify(&NETWORK, &validators),
            Err(CertificateError::SignatureMismatch(keys[3].public_key()))
        );
        forged.signatures[1].signature.0[5] ^= 1;
        assert_eq!(
            forged.verify(&NETWORK, &validators),
            Err(CertificateError::SignatureMismatch(keys[1].public_key()))
        );

        // Two valid signatures swapped between validators: each is valid, just not by its
        // named signer.
        let mut swapped = good.clone();
        let first = swapped.signatures[0].signature;
        swapped.signatures[0].signature = swapped.signatures[2].signature;
        swapped.signatures[2].signature = first;
        assert_eq!(
            swapped.verify(&NETWORK, &validators),
            Err(CertificateError::SignatureMismatch(keys[0].public_key()))
        );
    }

    #[test]
    fn canonical_bytes_round_trip_and_variants_are_rejected() {
        let (_, keys) = validators_and_keys(4);
        let cert = certificate(&keys[..3], 300, 2);
        let bytes = cert.to_bytes();
        assert_eq!(CommitCertificate::from_bytes(&bytes), Ok(cert));

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            CommitCertificate::from_bytes(&trailing),
            Err(CertificateDecodeError::TrailingBytes(1))
        );

        // Height 300 is the varint [0xac, 0x02]; [0xac, 0x82, 0x00] is an over-long form of
        // the same number that a lenient decoder might accept.
        assert_eq!(&bytes[..2], &[0xac, 0x02]);
        let mut overlong = vec![0xac, 0x82, 0x00];
        overlong.extend_from_slice(&bytes[2..]);
        assert!(matches!(
            CommitCertificate::from_bytes(&overlong),
            Err(CertificateDecodeError::NonCanonical | CertificateDecodeError::Malformed(_))
        ));
        assert!(matches!(
            CommitCertificate::from_bytes(&bytes[..bytes.len() - 1]),
            Err(CertificateDecodeError::Malformed(_))
        ));
    }
}
