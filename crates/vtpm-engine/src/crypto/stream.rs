//! The deterministic byte stream that primary keys are derived from
//! (docs/primary-keys.md). It is part of vtpm's compatibility contract:
//! the same seed and template must give the same key forever, so nothing
//! here may change.
//!
//! Block `i` (i = 1, 2, …) is
//! `HMAC_nameAlg(seed, [i]_32 || label || 0x00 || contextU || contextV || [0]_32)`:
//! KDFa's counter-mode construction (Part 1 §11.4.10.2) with the length
//! field set to 0, which KDFa itself never uses, marking an unbounded
//! stream. The stream is the concatenation of the blocks.

use super::hash::HashAlg;
use zeroize::{Zeroize, Zeroizing};

/// An unbounded KDFa-style byte stream.
pub struct KdfStream {
    alg: HashAlg,
    key: Zeroizing<Vec<u8>>,
    prefix_label: Vec<u8>,
    context: Zeroizing<Vec<u8>>,
    counter: u32,
    block: Zeroizing<Vec<u8>>,
    pos: usize,
}

impl std::fmt::Debug for KdfStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KdfStream")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl KdfStream {
    /// The stream for `key` (a primary seed), `label` (written with one
    /// terminating zero octet), `context_u` and `context_v`.
    pub fn new(alg: HashAlg, key: &[u8], label: &[u8], context_u: &[u8], context_v: &[u8]) -> Self {
        let mut prefix_label = label.strip_suffix(&[0]).unwrap_or(label).to_vec();
        prefix_label.push(0);
        let mut context = Zeroizing::new(Vec::with_capacity(context_u.len() + context_v.len() + 4));
        context.extend_from_slice(context_u);
        context.extend_from_slice(context_v);
        context.extend_from_slice(&0u32.to_be_bytes());
        KdfStream {
            alg,
            key: Zeroizing::new(key.to_vec()),
            prefix_label,
            context,
            counter: 0,
            block: Zeroizing::new(Vec::new()),
            pos: 0,
        }
    }

    /// Fills `out` with the next bytes of the stream.
    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out.iter_mut() {
            if self.pos >= self.block.len() {
                self.counter = self.counter.wrapping_add(1);
                let mut next = self.alg.hmac(
                    &self.key,
                    &[
                        &self.counter.to_be_bytes(),
                        &self.prefix_label,
                        &self.context,
                    ],
                );
                self.block.zeroize();
                self.block = Zeroizing::new(std::mem::take(&mut next));
                self.pos = 0;
            }
            *b = self.block.get(self.pos).copied().unwrap_or(0);
            self.pos += 1;
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Zeroizing<Vec<u8>> {
        let mut v = Zeroizing::new(vec![0u8; n]);
        self.fill(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::self_test::hex;

    /// The stream equals the HMAC blocks computed directly from the
    /// definition, whatever the read sizes.
    #[test]
    fn stream_is_the_concatenated_blocks() {
        let block = |i: u32| {
            HashAlg::Sha256.hmac(
                b"seed",
                &[&i.to_be_bytes(), b"L\0", b"U", b"V", &[0, 0, 0, 0]],
            )
        };
        let expected: Vec<u8> = [block(1), block(2), block(3)].concat();
        let mut s = KdfStream::new(HashAlg::Sha256, b"seed", b"L", b"U", b"V");
        let mut got = Vec::new();
        for n in [1usize, 7, 30, 40, 18] {
            got.extend_from_slice(&s.take(n));
        }
        assert_eq!(got, expected[..96]);
        // Pinned: HMAC-SHA256("seed", 00000001 || "L\0" || "U" || "V" || 00000000).
        assert_eq!(
            hex(&block(1)),
            hex(&KdfStream::new(HashAlg::Sha256, b"seed", b"L\0", b"U", b"V").take(32))
        );
    }
}
