//! The signature rule: when an ed25519 signature counts as valid in Tally, one at a time or
//! many at once, with the same answer either way.
//!
//! A signature (R, S) by key A on message M is valid when:
//!
//! 1. S is canonical: strictly below the group order L;
//! 2. R is the canonical encoding of a curve point that is not of small order;
//! 3. A is a valid [`PublicKey`] (canonical, not of small order: checked when it was built);
//! 4. `[8]([S]B - [k]A - R)` is the identity, where `k = SHA-512(R || A || M) mod L`.
//!
//! Rule 4 is the *cofactored* equation (as in ZIP-215). RFC 8032 allows either form; the
//! cofactorless one (`R == [S]B - [k]A`, what `verify_strict` checks) cannot be batched
//! exactly: a signer may give R or A a small torsion component, which a random linear
//! combination cancels about one time in eight, so a batch would sometimes accept what the
//! single check refuses, and a proposer could grind for that. With the cofactor on both sides
//! the single and the batch check agree except with probability about 2^-128, so whether a
//! transfer is valid never depends on how it was grouped, on which node checked it, or on
//! whether the auditor batched it. Every signature an honest RFC 8032 signer makes is valid
//! under both forms; the two differ only on crafted signatures with torsion components.
//!
//! Rules 1 and 2 refuse everything `verify_strict` refuses on sight (non-canonical S, small
//! order or non-canonical R), and rule 3 refuses weak and non-canonical keys.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

use crate::keys::{BadSignature, PublicKey, Signature};

/// The domain tag of the transcript that derives batch coefficients.
const BATCH_TRANSCRIPT_TAG: &[u8] = b"TALLY/ED25519-BATCH/V1";

/// One signature to check: who signed, the signature, and the exact signed bytes.
#[derive(Clone, Copy)]
pub struct SignedMessage<'a> {
    /// The signer.
    pub key: &'a PublicKey,
    /// The signature.
    pub signature: &'a Signature,
    /// The bytes that were signed.
    pub message: &'a [u8],
}

/// A signature whose encodings passed rules 1–3, ready for the equation of rule 4.
struct Parsed {
    r: EdwardsPoint,
    s: Scalar,
    a: EdwardsPoint,
    k_wide: [u8; 64],
}

/// Checks one signature under the rule in the module documentation.
pub fn verify_one(item: SignedMessage<'_>) -> Result<(), BadSignature> {
    let parsed = parse(item)?;
    let k = Scalar::from_bytes_mod_order_wide(&parsed.k_wide);

    // [S]B - [k]A - R, then clear any torsion component with the cofactor.
    let sb_minus_ka = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &-parsed.a, &parsed.s);
    if (sb_minus_ka - parsed.r).mul_by_cofactor().is_identity() {
        Ok(())
    } else {
        Err(BadSignature)
    }
}

/// Checks many signatures; the outcome at index `i` equals `verify_one(items[i])`.
///
/// All items whose encodings are valid go into one random linear combination; only if that
/// fails are they checked one by one to find the bad ones.
pub fn verify_many(items: &[SignedMessage<'_>]) -> Vec<Result<(), BadSignature>> {
    let parsed: Vec<Result<Parsed, BadSignature>> = items.iter().map(|&i| parse(i)).collect();
    let mut outcomes: Vec<Result<(), BadSignature>> = parsed
        .iter()
        .map(|p| p.as_ref().map(|_| ()).map_err(|e| *e))
        .collect();

    let candidates: Vec<(usize, &Parsed)> = parsed
        .iter()
        .enumerate()
        .filter_map(|(index, p)| p.as_ref().ok().map(|p| (index, p)))
        .collect();
    if candidates.len() <= 1 {
        for &(index, _) in &candidates {
            outcomes[index] = verify_one(items[index]);
        }
        return outcomes;
    }

    if combination_holds(&candidates.iter().map(|(_, p)| *p).collect::<Vec<_>>()) {
        return outcomes;
    }

    // Some signature is bad: find which, one by one.
    for &(index, _) in &candidates {
        outcomes[index] = verify_one(items[index]);
    }
    outcomes
}

/// Applies rules 1–3 and computes the challenge hash.
fn parse(item: SignedMessage<'_>) -> Result<Parsed, BadSignature> {
    let (r_bytes, s_bytes) = item.signature.0.split_at(32);
    let r_bytes: [u8; 32] = r_bytes.try_into().expect("split at 32 of 64 bytes");
    let s_bytes: [u8; 32] = s_bytes.try_into().expect("split at 32 of 64 bytes");

    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)).ok_or(BadSignature)?;

    let r = CompressedEdwardsY(r_bytes)
        .decompress()
        .ok_or(BadSignature)?;
    if r.compress().to_bytes() != r_bytes || r.is_small_order() {
        return Err(BadSignature);
    }

    let a = item.key.verifying_key().to_edwards();

    let mut hasher = Sha512::new();
    hasher.update(r_bytes);
    hasher.update(item.key.as_bytes());
    hasher.update(item.message);
    Ok(Parsed {
        r,
        s,
        a,
        k_wide: hasher.finalize().into(),
    })
}

/// Checks `[8]( sum z_i R_i + sum z_i k_i A_i - (sum z_i S_i) B ) == identity` with 128-bit
/// coefficients z_i derived from a hash of every input, so the result is deterministic and
/// no signer can choose the coefficients of its own signature.
fn combination_holds(batch: &[&Parsed]) -> bool {
    let mut transcript = Sha512::new();
    transcript.update(BATCH_TRANSCRIPT_TAG);
    transcript.update((batch.len() as u64).to_le_bytes());
    for parsed in batch {
        transcript.update(parsed.r.compress().as_bytes());
        transcript.update(parsed.a.compress().as_bytes());
        transcript.update(parsed.k_wide);
        transcript.update(parsed.s.as_bytes());
    }
    let seed: [u8; 64] = transcript.finalize().into();

    let mut base_coefficient = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(2 * batch.len() + 1);
    let mut points = Vec::with_capacity(2 * batch.len() + 1);
    for (index, parsed) in batch.iter().enumerate() {
        let z = coefficient(&seed, index);
        let k = Scalar::from_bytes_mod_order_wide(&parsed.k_wide);
        base_coefficient += z * parsed.s;
        scalars.push(z);
        points.push(parsed.r);
        scalars.push(z * k);
        points.push(parsed.a);
    }
    scalars.push(-base_coefficient);
    points.push(ED25519_BASEPOINT_POINT);

    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// The i-th 128-bit coefficient: the first 16 bytes of SHA-512(seed || i).
fn coefficient(seed: &[u8; 64], index: usize) -> Scalar {
    let digest = Sha512::new()
        .chain_update(seed)
        .chain_update((index as u64).to_le_bytes())
        .finalize();
    let mut wide = [0u8; 32];
    wide[..16].copy_from_slice(&digest[..16]);
    Scalar::from_bytes_mod_order(wide)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;
    use curve25519_dalek::constants::EIGHT_TORSION;

    fn item<'a>(
        key: &'a PublicKey,
        signature: &'a Signature,
        message: &'a [u8],
    ) -> SignedMessage<'a> {
        SignedMessage {
            key,
            signature,
            message,
        }
    }

    /// A signature by `a·B` whose R carries the order-8 torsion point: R' = r·B + T, with S
    /// computed honestly over R'. The cofactorless check refuses it; the cofactored accepts.
    fn torsion_signature(message: &[u8]) -> (PublicKey, Signature) {
        let a = Scalar::from(0x5eed_u64);
        let r = Scalar::from(0x0a11ce_u64);
        let public_bytes = EdwardsPoint::mul_base(&a).compress().to_bytes();
        let key = PublicKey::from_bytes(&public_bytes).expect("a·B is a valid key");

        let big_r = (EdwardsPoint::mul_base(&r) + EIGHT_TORSION[1])
            .compress()
            .to_bytes();
        let k = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(big_r)
                .chain_update(public_bytes)
                .chain_update(message)
                .finalize()
                .into(),
        );
        let s = r + k * a;

        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&big_r);
        signature[32..].copy_from_slice(s.as_bytes());
        (key, Signature(signature))
    }

    #[test]
    fn honest_signature_is_valid_one_and_many() {
        let secret = SecretKey::from_seed(&[1; 32]);
        let key = secret.public_key();
        let signature = secret.sign(b"m");
        assert_eq!(verify_one(item(&key, &signature, b"m")), Ok(()));
        assert_eq!(verify_one(item(&key, &signature, b"n")), Err(BadSignature));
        let both = [item(&key, &signature, b"m"), item(&key, &signature, b"n")];
        assert_eq!(verify_many(&both), vec![Ok(()), Err(BadSignature)]);
    }

    #[test]
    fn torsion_in_r_gets_the_same_answer_alone_and_in_every_batch() {
        let honest = SecretKey::from_seed(&[2; 32]);
        let honest_key = honest.public_key();
        let honest_signature = honest.sign(b"x");

        for attempt in 0..32u8 {
            let message = [attempt];
            let (key, signature) = torsion_signature(&message);
            let alone = verify_one(item(&key, &signature, &message));
            assert_eq!(
                alone,
                Ok(()),
                "the cofactored rule accepts a torsion-shifted R"
            );

            let batch = [
                item(&key, &signature, &message),
                item(&honest_key, &honest_signature, b"x"),
            ];
            assert_eq!(
                verify_many(&batch),
                vec![alone, Ok(())],
                "attempt {attempt}"
            );
        }
    }

    #[test]
    fn torsion_shifted_r_with_a_wrong_message_is_refused_in_every_batch() {
        let honest = SecretKey::from_seed(&[3; 32]);
        let honest_key = honest.public_key();
        let honest_signature = honest.sign(b"y");

        for attempt in 0..32u8 {
            let (key, signature) = torsion_signature(&[attempt]);
            let wrong = [attempt, 0];
            let batch = [
                item(&honest_key, &honest_signature, b"y"),
                item(&key, &signature, &wrong),
            ];
            assert_eq!(verify_many(&batch), vec![Ok(()), Err(BadSignature)]);
        }
    }
}
