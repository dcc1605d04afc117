//! A lock-free, seedable RNG for picks: SplitMix64 whose state advances by
//! one atomic `fetch_add`, so concurrent picks never wait on each other.
//! Two threads never see the same state, hence never the same number.

use std::sync::atomic::{AtomicU64, Ordering};

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

#[derive(Debug)]
pub(crate) struct SplitMix {
    state: AtomicU64,
}

impl SplitMix {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix {
            state: AtomicU64::new(seed),
        }
    }

    pub(crate) fn next_u64(&self) -> u64 {
        let mut z = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2^-32
    /// for any endpoint count we will see). `n` must be non-zero.
    pub(crate) fn below(&self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Two distinct indices in `0..n`, in random order. `n` must be >= 2.
    pub(crate) fn two_distinct(&self, n: usize) -> (usize, usize) {
        let a = self.below(n);
        let mut b = self.below(n - 1);
        if b >= a {
            b += 1;
        }
        (a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_distinct_never_repeats_and_covers_all_pairs() {
        let rng = SplitMix::new(42);
        let mut seen = [[0u32; 3]; 3];
        for _ in 0..3000 {
            let (a, b) = rng.two_distinct(3);
            assert_ne!(a, b, "the two choices are distinct");
            seen[a][b] += 1;
        }
        for (a, row) in seen.iter().enumerate() {
            for (b, n) in row.iter().enumerate() {
                if a != b {
                    assert!(
                        *n > 350,
                        "every ordered pair is drawn about 1/6 of the time"
                    );
                }
            }
        }
    }
}
