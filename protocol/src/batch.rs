//! Verifying many transfer signatures at once, with the same outcome as one by one.
//!
//! A batch checks one random linear combination of all the signature equations, about one and
//! a half times as fast as checking each on this kind of machine. The signature rule in
//! [`crate::verification`] is chosen so that the combination and the single check agree: each
//! transfer's outcome is its single-check outcome, whatever it was grouped with. If the
//! combination fails, the batch's signatures are checked one by one to find the bad ones.
//!
//! The coefficients come from a hash of every input, so the result is deterministic and this
//! module draws no randomness.

use crate::keys::BadSignature;
use crate::transfer::{SignedTransfer, VerifiedTransfer};
use crate::verification::{SignedMessage, verify_many};

/// Verifies every transfer's signature; the outcome at index `i` is exactly that of
/// [`SignedTransfer::verify_signature`] on `transfers[i]` alone.
pub fn verify_batch(transfers: &[&SignedTransfer]) -> Vec<Result<(), BadSignature>> {
    let messages: Vec<Vec<u8>> = transfers.iter().map(|t| t.signing_bytes()).collect();
    let items: Vec<SignedMessage<'_>> = transfers
        .iter()
        .zip(&messages)
        .map(|(signed, message)| SignedMessage {
            key: &signed.transfer.sender,
            signature: &signed.signature,
            message,
        })
        .collect();
    verify_many(&items)
}

/// Verifies every transfer and wraps the good ones as [`VerifiedTransfer`], in input order.
/// A caller that wants to report the bad ones takes their ids first.
pub fn verify_all(transfers: Vec<SignedTransfer>) -> Vec<Result<VerifiedTransfer, BadSignature>> {
    let refs: Vec<&SignedTransfer> = transfers.iter().collect();
    let outcomes = verify_batch(&refs);

    transfers
        .into_iter()
        .zip(outcomes)
        .map(|(signed, outcome)| outcome.map(|()| VerifiedTransfer::assume_verified(signed)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash;
    use crate::keys::SecretKey;
    use crate::transfer::Transfer;

    fn signed(seed: u8, sequence: u64) -> SignedTransfer {
        let sender = SecretKey::from_seed(&[seed; 32]);
        let receiver = SecretKey::from_seed(&[seed.wrapping_add(100); 32]).public_key();
        let transfer = Transfer::new(
            Hash::digest(b"n"),
            sender.public_key(),
            receiver,
            5,
            1,
            sequence,
            "",
        );
        SignedTransfer::sign(transfer, &sender)
    }

    /// The group order L, little-endian.
    const GROUP_ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10,
    ];

    /// Adds L to S (little-endian), giving the same scalar mod L in a non-canonical form.
    fn add_group_order(signature: &mut [u8; 64]) {
        let mut carry = 0u16;
        for (byte, order) in signature[32..].iter_mut().zip(GROUP_ORDER) {
            let sum = u16::from(*byte) + u16::from(order) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
    }

    #[test]
    fn good_batch_accepts_everything() {
        let transfers: Vec<SignedTransfer> = (1..=8).map(|i| signed(i, 1)).collect();
        let refs: Vec<&SignedTransfer> = transfers.iter().collect();
        assert!(verify_batch(&refs).iter().all(Result::is_ok));
    }

    #[test]
    fn one_bad_signature_is_pinned_to_its_transfer() {
        let mut transfers: Vec<SignedTransfer> = (1..=6).map(|i| signed(i, 1)).collect();
        transfers[3].transfer.amount += 1;
        let refs: Vec<&SignedTransfer> = transfers.iter().collect();
        let outcomes = verify_batch(&refs);
        for (i, outcome) in outcomes.iter().enumerate() {
            assert_eq!(outcome.is_ok(), i != 3, "index {i}");
        }
    }

    #[test]
    fn s_plus_group_order_is_refused_in_and_out_of_batches() {
        let mut bad = signed(4, 1);
        add_group_order(&mut bad.signature.0);
        assert_eq!(bad.verify_signature(), Err(BadSignature));

        let good = signed(5, 1);
        assert_eq!(
            verify_batch(&[&good, &bad]),
            vec![Ok(()), Err(BadSignature)]
        );
        assert_eq!(verify_batch(&[&bad]), vec![Err(BadSignature)]);
    }

    #[test]
    fn small_order_r_is_refused() {
        let mut bad = signed(6, 1);
        let mut identity = [0u8; 32];
        identity[0] = 1;
        bad.signature.0[..32].copy_from_slice(&identity);
        assert_eq!(
            verify_batch(&[&bad, &signed(7, 1)]),
            vec![Err(BadSignature), Ok(())]
        );
    }

    #[test]
    fn outcome_does_not_depend_on_grouping() {
        let mut transfers: Vec<SignedTransfer> = (1..=9).map(|i| signed(i, 2)).collect();
        transfers[1].signature.0[40] ^= 4;
        add_group_order(&mut transfers[5].signature.0);
        transfers[7].transfer.memo = "changed".into();

        let alone: Vec<Result<(), BadSignature>> = transfers
            .iter()
            .map(SignedTransfer::verify_signature)
            .collect();
        for size in 1..=transfers.len() {
            let grouped: Vec<Result<(), BadSignature>> = transfers
                .chunks(size)
                .flat_map(|chunk| verify_batch(&chunk.iter().collect::<Vec<_>>()))
                .collect();
            assert_eq!(grouped, alone, "chunks of {size}");
        }
    }

    #[test]
    fn torsion_in_r_gets_the_same_answer_in_every_grouping() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::edwards::EdwardsPoint;
        use curve25519_dalek::scalar::Scalar;
        use sha2::{Digest, Sha512};

        // R' = r·B + T with T of order 8 and S computed over R': only the torsion differs
        // from an honest signature. Any grouping must agree with the single check.
        let a = Scalar::from(0x5eed_u64);
        let public = EdwardsPoint::mul_base(&a).compress().to_bytes();
        let sender = crate::keys::PublicKey::from_bytes(&public).expect("a·B is a valid key");
        let receiver = SecretKey::from_seed(&[9; 32]).public_key();
        let mut transfers: Vec<SignedTransfer> = (1..=8).map(|i| signed(i, 1)).collect();
        for attempt in 0..16u64 {
            let transfer =
                Transfer::new(Hash::digest(b"n"), sender, receiver, 5, 1, attempt + 1, "");
            let r = Scalar::from(attempt + 7);
            let big_r = (EdwardsPoint::mul_base(&r) + EIGHT_TORSION[1])
                .compress()
                .to_bytes();
            let hram = Sha512::new()
                .chain_update(big_r)
                .chain_update(public)
                .chain_update(transfer.signing_bytes())
                .finalize();
            let s = r + Scalar::from_bytes_mod_order_wide(&hram.into()) * a;
            let mut signature = [0u8; 64];
            signature[..32].copy_from_slice(&big_r);
            signature[32..].copy_from_slice(s.as_bytes());
            transfers.push(SignedTransfer {
                transfer,
                signature: crate::keys::Signature(signature),
            });
        }

        let alone: Vec<Result<(), BadSignature>> = transfers
            .iter()
            .map(SignedTransfer::verify_signature)
            .collect();
        for size in 1..=transfers.len() {
            let grouped: Vec<Result<(), BadSignature>> = transfers
                .chunks(size)
                .flat_map(|chunk| verify_batch(&chunk.iter().collect::<Vec<_>>()))
                .collect();
            assert_eq!(grouped, alone, "chunks of {size}");
        }
    }
}
