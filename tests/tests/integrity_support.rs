//! Shared helpers of the integrity tests (`integrity_*.rs`, included with `#[path]`; compiled on
//! its own it holds no test). It brings the reliability tests' helpers along as `support`.
#![allow(dead_code)]

#[path = "reliability_support.rs"]
pub mod support;

use support::Audit;

/// An audit in a few lines (counts and the first few of each list).
pub fn summary(a: &Audit) -> String {
    fn few<T: std::fmt::Debug>(v: &[T]) -> String {
        format!("{} {:?}", v.len(), &v[..v.len().min(3)])
    }
    format!(
        "duplicates {}; unknown to records {}; disagreements {}; several active {}; enviando {}; orphan drafts {}",
        few(&a.duplicates),
        few(&a.unknown_to_records),
        few(&a.disagreements),
        few(&a.multiple_active),
        few(&a.enviando),
        a.orphan_drafts
    )
}

/// A list in one line: its length and its first few items.
pub fn few<T: std::fmt::Debug>(v: &[T]) -> String {
    format!("{} {:?}", v.len(), &v[..v.len().min(5)])
}

/// A tiny seeded generator (splitmix64), so kill points are reproducible.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi.saturating_sub(lo) + 1)
    }
}
