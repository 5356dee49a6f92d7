//! Verifying many transfer signatures at once, with the same outcome as one by one.
//!
//! ed25519 batch verification checks one random linear combination of all the signature
//! equations, which is about twice as fast as checking each. Its acceptance rules are looser
//! than `verify_strict` in places, so before batching we refuse, per signature, everything
//! strict verification refuses by inspection: a non-canonical S (S >= L), a non-canonical or
//! small-order R. Keys need no check here: a [`PublicKey`](crate::keys::PublicKey) is canonical
//! and not small-order by construction. If the batch fails we verify the remaining signatures
//! one by one with `verify_strict`, so each transfer's outcome is its strict outcome and does
//! not depend on which others it was grouped with, for every signature an honest signer can
//! make. One crafted case remains (a key or R with a torsion component); see the TODO in
//! [`verify_batch`].
//!
//! ed25519-dalek derives the batch coefficients from a transcript of the inputs, so the result
//! is deterministic and this module draws no randomness.

use ed25519_dalek::VerifyingKey;

use crate::keys::BadSignature;
use crate::transfer::{SignedTransfer, VerifiedTransfer};

/// The group order L, little-endian: a canonical S is strictly below it.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// Verifies every transfer's signature; the outcome at index `i` is that of `transfers[i]`.
///
/// Each outcome equals [`SignedTransfer::verify_signature`] on that transfer alone, except
/// for the crafted torsion case described in the TODO inside.
pub fn verify_batch(transfers: &[&SignedTransfer]) -> Vec<Result<(), BadSignature>> {
    let mut outcomes: Vec<Result<(), BadSignature>> =
        transfers.iter().map(|signed| precheck(signed)).collect();

    // Only the signatures that passed the precheck go into the batch.
    let candidates: Vec<usize> = (0..transfers.len())
        .filter(|&i| outcomes[i].is_ok())
        .collect();
    if candidates.is_empty() {
        return outcomes;
    }

    let messages: Vec<Vec<u8>> = candidates
        .iter()
        .map(|&i| transfers[i].signing_bytes())
        .collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let signatures: Vec<ed25519_dalek::Signature> = candidates
        .iter()
        .map(|&i| ed25519_dalek::Signature::from_bytes(&transfers[i].signature.0))
        .collect();
    let keys: Vec<VerifyingKey> = candidates
        .iter()
        .map(|&i| transfers[i].transfer.sender.verifying_key())
        .collect();

    // TODO: the prechecks do not make the batch exactly strict. A sender controls its own key
    // and R, and can give either a small torsion component without making it small-order.
    // `verify_strict` refuses such a signature, but the batch equation cancels the torsion
    // whenever the transcript-derived coefficient is a multiple of its order (1 time in 8),
    // and who picks the batch's contents (a proposer) can grind for that. Checking R and the
    // key for torsion before batching closes it, but costs a scalar multiplication each
    // (measured here: strict 90 us, batch 55-65 us, torsion check 53 us per signature), so
    // batching would no longer pay; the lasting fix is to move both single and batch
    // verification to the cofactored ZIP-215 rules, which agree by construction. The test
    // `crafted_torsion_in_r_passes_a_batch_that_strict_refuses` pins the gap.
    if ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok() {
        return outcomes;
    }

    // Some signature in the batch is bad: find out which, strictly and one by one.
    for (&i, message) in candidates.iter().zip(&messages) {
        outcomes[i] = transfers[i]
            .signature
            .verify(&transfers[i].transfer.sender, message);
    }
    outcomes
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

/// Refuses, without curve arithmetic beyond decompression, what `verify_strict` refuses on
/// sight: S not below L, R not a canonical encoding, R of small order.
fn precheck(signed: &SignedTransfer) -> Result<(), BadSignature> {
    let (r_bytes, s_bytes) = signed.signature.0.split_at(32);
    let s: [u8; 32] = s_bytes.try_into().expect("split at 32 of 64 bytes");
    if !is_below_group_order(&s) {
        return Err(BadSignature);
    }

    let r: [u8; 32] = r_bytes.try_into().expect("split at 32 of 64 bytes");
    let point = VerifyingKey::from_bytes(&r).map_err(|_| BadSignature)?;
    if point.to_edwards().compress().to_bytes() != r || point.is_weak() {
        return Err(BadSignature);
    }
    Ok(())
}

/// Compares little-endian `scalar` with L, from the most significant byte down.
fn is_below_group_order(scalar: &[u8; 32]) -> bool {
    for (byte, order) in scalar.iter().rev().zip(GROUP_ORDER.iter().rev()) {
        if byte != order {
            return byte < order;
        }
    }
    false
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

    /// A transfer from the key `a·B` whose R carries an order-8 torsion point: R' = r·B + T.
    /// S is computed honestly over R', so only the torsion stands between it and validity.
    fn torsion_signed(memo: &str) -> SignedTransfer {
        use curve25519_dalek::constants::EIGHT_TORSION;
        use curve25519_dalek::edwards::EdwardsPoint;
        use curve25519_dalek::scalar::Scalar;
        use sha2::{Digest, Sha512};

        let a = Scalar::from(0x5eed_u64);
        let r = Scalar::from(0x0a11ce_u64);
        let public = EdwardsPoint::mul_base(&a).compress().to_bytes();
        let sender = crate::keys::PublicKey::from_bytes(&public).expect("a·B is a valid key");
        let receiver = SecretKey::from_seed(&[9; 32]).public_key();
        let transfer = Transfer::new(Hash::digest(b"n"), sender, receiver, 5, 1, 1, memo);

        let big_r = (EdwardsPoint::mul_base(&r) + EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        let mut hasher = Sha512::new();
        hasher.update(big_r);
        hasher.update(public);
        hasher.update(transfer.signing_bytes());
        let k = Scalar::from_bytes_mod_order_wide(&hasher.finalize().into());
        let s = r + k * a;

        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&big_r);
        signature[32..].copy_from_slice(s.as_bytes());
        SignedTransfer {
            transfer,
            signature: crate::keys::Signature(signature),
        }
    }

    #[test]
    fn crafted_torsion_in_r_passes_a_batch_that_strict_refuses() {
        // This pins the known gap described in the TODO in `verify_batch`: when it is closed,
        // this test must change to expect `Err(BadSignature)` from the batch as well.
        let accepted = (0..64)
            .map(|i| torsion_signed(&format!("try {i}")))
            .find(|signed| {
                assert_eq!(
                    signed.verify_signature(),
                    Err(BadSignature),
                    "strict refuses it"
                );
                verify_batch(&[signed]) == vec![Ok(())]
            });
        assert!(
            accepted.is_some(),
            "about 1 memo in 8 makes the batch cancel the torsion"
        );
    }

    #[test]
    fn group_order_comparison_is_exact() {
        let mut below = GROUP_ORDER;
        below[0] -= 1;
        assert!(is_below_group_order(&below));
        assert!(!is_below_group_order(&GROUP_ORDER));
        assert!(is_below_group_order(&[0; 32]));
    }
}
