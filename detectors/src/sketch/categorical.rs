//! Counts per category with a cardinality cap.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::Sketch;
use crate::error::{Error, Result};

/// The bucket that counts categories beyond the cap.
pub const OTHER_CATEGORY: &str = "__other__";

/// Counts per category, holding at most `max_categories` distinct names;
/// further names are counted in [`OTHER_CATEGORY`], so memory stays bounded
/// whatever the input's cardinality.
///
/// Seed the reference's categories with [`CategoryCounts::with_categories`] so
/// that every shard tracks the same names and partial counts merge exactly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "CategoryCountsState", into = "CategoryCountsState")]
pub struct CategoryCounts {
    max_categories: usize,
    /// Name → slot. foldhash instead of SipHash: a lookup per categorical
    /// value is on the hot path. Its resistance to keys chosen to collide is
    /// weaker (a per-process random seed, no cryptographic guarantee), and
    /// what collisions could cost is bounded: the map never holds more than
    /// `max_categories` names.
    index: HashMap<Box<str>, u32, foldhash::fast::RandomState>,
    names: Vec<Box<str>>,
    counts: Vec<u64>,
    other: u64,
    total: u64,
    /// The first `seeded` names were given by [`CategoryCounts::with_categories`]
    /// (a reference's): they stay tracked even when their count is zero.
    seeded: usize,
}

/// Serialized form: names with their counts in slot order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CategoryCountsState {
    max_categories: usize,
    /// In slot order: seeded names first, then the rest in arrival order.
    categories: Vec<(String, u64)>,
    other: u64,
    /// How many of `categories` are seeded.
    #[serde(default, skip_serializing_if = "is_zero")]
    seeded: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl CategoryCounts {
    /// Empty counts with a cap of `max_categories` distinct names.
    pub fn new(max_categories: usize) -> Self {
        Self { max_categories, index: HashMap::default(), names: Vec::new(), counts: Vec::new(), other: 0, total: 0, seeded: 0 }
    }

    /// Empty counts that track `names` first (up to the cap).
    pub fn with_categories<'a>(max_categories: usize, names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut c = Self::new(max_categories);
        for n in names {
            c.slot(n);
        }
        c.seeded = c.names.len();
        c
    }

    /// The most bytes counts holding `names` distinct names of `name_bytes`
    /// bytes each can take: each name is kept twice (in name order and in the
    /// index), vectors at twice their length, and the index's table (a key,
    /// a value and a control byte per slot) at up to 8/7 of its entries
    /// rounded up to a power of two, plus a group of control bytes.
    pub fn max_size_bytes(names: usize, name_bytes: usize) -> usize {
        let slots = names.saturating_mul(8).div_ceil(7).max(4).next_power_of_two();
        let vectors = names.max(4).saturating_mul(2);
        std::mem::size_of::<Self>()
            + names.saturating_mul(2 * name_bytes)
            + vectors.saturating_mul(std::mem::size_of::<Box<str>>() + 8)
            + slots.saturating_mul(std::mem::size_of::<(Box<str>, u32)>() + 1)
            + 16
    }

    /// The cap on distinct names.
    pub fn max_categories(&self) -> usize {
        self.max_categories
    }

    /// What a window capped at `max_categories` names shows: the seeded
    /// names (the reference's), then the most frequent other names (ties in
    /// name order) up to `max_categories` in all; the rest count in
    /// `__other__`. So which names a window shows depends on the window's
    /// counts and the reference alone, not on the order values arrived in
    /// or on what earlier windows held. `None` when nothing needs to move
    /// (then `self` is its own view).
    pub fn limited(&self, max_categories: usize) -> Option<Self> {
        let room = max_categories.saturating_sub(self.seeded);
        let mut others: Vec<(&str, u64)> =
            self.names[self.seeded..].iter().zip(&self.counts[self.seeded..]).filter(|(_, &c)| c > 0).map(|(n, &c)| (&**n, c)).collect();
        if others.len() <= room {
            return None;
        }
        others.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let mut view = Self::new(max_categories.max(self.seeded));
        for (name, &c) in self.names[..self.seeded].iter().zip(&self.counts) {
            view.slot(name);
            view.add(name, c);
        }
        view.seeded = self.seeded;
        for &(name, c) in &others[..room] {
            view.add(name, c);
        }
        let rest: u64 = others[room..].iter().map(|e| e.1).sum::<u64>() + self.other;
        view.other += rest;
        view.total += rest;
        Some(view)
    }

    /// Forgets names beyond the seeded ones whose count is zero (after
    /// [`Sketch::unmerge`] of a pane that held them), so they no longer take
    /// a slot under the cap.
    pub fn drop_empty(&mut self) {
        if self.counts[self.seeded..].iter().all(|&c| c > 0) {
            return;
        }
        let mut kept = 0;
        for i in 0..self.names.len() {
            if i < self.seeded || self.counts[i] > 0 {
                self.names.swap(kept, i);
                self.counts.swap(kept, i);
                kept += 1;
            }
        }
        self.names.truncate(kept);
        self.counts.truncate(kept);
        self.index.clear();
        for (i, n) in self.names.iter().enumerate() {
            self.index.insert(n.clone(), i as u32);
        }
    }

    /// The slot of a name, inserting it while under the cap.
    #[inline]
    fn slot(&mut self, name: &str) -> Option<usize> {
        if let Some(&i) = self.index.get(name) {
            return Some(i as usize);
        }
        if self.names.len() >= self.max_categories || name == OTHER_CATEGORY {
            return None;
        }
        let i = self.names.len();
        self.names.push(name.into());
        self.counts.push(0);
        self.index.insert(name.into(), i as u32);
        Some(i)
    }

    fn add(&mut self, name: &str, n: u64) {
        match self.slot(name) {
            Some(i) => self.counts[i] += n,
            None => self.other += n,
        }
        self.total += n;
    }

    /// Count of one category (`__other__` gives the overflow count).
    pub fn get(&self, name: &str) -> u64 {
        if name == OTHER_CATEGORY {
            return self.other;
        }
        self.index.get(name).map_or(0, |&i| self.counts[i as usize])
    }

    /// Count of values beyond the cap.
    pub fn other(&self) -> u64 {
        self.other
    }

    /// Distinct names tracked (not counting `__other__`).
    pub fn distinct(&self) -> usize {
        self.names.len()
    }

    /// (name, count) for tracked names with a non-zero count and
    /// `__other__` when non-zero, in name order.
    pub fn entries(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.names.iter().zip(&self.counts).filter(|(_, &c)| c > 0).map(|(n, &c)| (&**n, c)).collect();
        if self.other > 0 {
            v.push((OTHER_CATEGORY, self.other));
        }
        v.sort_unstable_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Counts of `self` and `other` aligned over the sorted union of their
    /// non-empty categories: (names, self counts, other counts).
    pub fn aligned<'a>(&'a self, other: &'a Self) -> (Vec<&'a str>, Vec<u64>, Vec<u64>) {
        let (a, b) = (self.entries(), other.entries());
        let mut names = Vec::with_capacity(a.len().max(b.len()));
        let (mut ca, mut cb) = (Vec::with_capacity(names.capacity()), Vec::with_capacity(names.capacity()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let ord = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.0.cmp(y.0),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    names.push(a[i].0);
                    ca.push(a[i].1);
                    cb.push(0);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    names.push(b[j].0);
                    ca.push(0);
                    cb.push(b[j].1);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    names.push(a[i].0);
                    ca.push(a[i].1);
                    cb.push(b[j].1);
                    i += 1;
                    j += 1;
                }
            }
        }
        (names, ca, cb)
    }
}

impl PartialEq for CategoryCounts {
    fn eq(&self, other: &Self) -> bool {
        self.max_categories == other.max_categories && self.other == other.other && self.entries() == other.entries()
    }
}

impl Sketch for CategoryCounts {
    type Item<'a> = &'a str;
    const KIND: &'static str = "category_counts";
    const VERSION: u32 = 1;

    #[inline]
    fn update(&mut self, name: &str) {
        self.add(name, 1);
    }

    fn retract(&mut self, name: &str) -> Result<()> {
        let slot = if name == OTHER_CATEGORY { None } else { self.index.get(name).map(|&i| i as usize) };
        let count = match slot {
            Some(i) => &mut self.counts[i],
            None => &mut self.other,
        };
        *count = count.checked_sub(1).ok_or(Error::NotHeld { kind: Self::KIND })?;
        self.total -= 1;
        Ok(())
    }

    fn merge(&mut self, other: &Self) -> Result<()> {
        if self.max_categories != other.max_categories {
            return Err(Error::Incompatible { reason: "category counts have different caps" });
        }
        for (name, &c) in other.names.iter().zip(&other.counts) {
            if c > 0 {
                self.add(name, c);
            }
        }
        self.other += other.other;
        self.total += other.other;
        Ok(())
    }

    fn unmerge(&mut self, other: &Self) -> Result<()> {
        if self.max_categories != other.max_categories {
            return Err(Error::Incompatible { reason: "category counts have different caps" });
        }
        let not_held = Error::NotHeld { kind: Self::KIND };
        // Names the other admitted may sit in our `__other__` (cap reached).
        let mut from_other = other.other;
        for (name, &c) in other.names.iter().zip(&other.counts) {
            match self.index.get(&**name) {
                Some(&i) => {
                    let have = &mut self.counts[i as usize];
                    *have = have.checked_sub(c).ok_or(not_held.clone())?;
                }
                None => from_other += c,
            }
        }
        self.other = self.other.checked_sub(from_other).ok_or(not_held)?;
        self.total -= other.total;
        Ok(())
    }

    fn count(&self) -> u64 {
        self.total
    }

    fn size_bytes(&self) -> usize {
        let names: usize = self.names.iter().map(|n| n.len()).sum();
        std::mem::size_of::<Self>()
            + 2 * names
            + self.names.capacity() * std::mem::size_of::<Box<str>>()
            + self.counts.capacity() * 8
            // hashbrown: one key, one value and one control byte per slot.
            + self.index.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1)
    }

    fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.other = 0;
        self.total = 0;
    }

    fn validate(&self) -> Result<()> {
        if self.names.len() > self.max_categories {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "more categories than the cap" });
        }
        Ok(())
    }
}

impl From<CategoryCounts> for CategoryCountsState {
    fn from(c: CategoryCounts) -> Self {
        // Slot order: a restored sketch gives names the same slots, so merges
        // (which add a cap's worth of names in slot order) and sums over the
        // slots go exactly as they would have.
        let categories = c.names.iter().zip(&c.counts).map(|(n, &k)| (n.to_string(), k)).collect();
        Self { max_categories: c.max_categories, categories, other: c.other, seeded: c.seeded }
    }
}

impl TryFrom<CategoryCountsState> for CategoryCounts {
    type Error = Error;
    fn try_from(s: CategoryCountsState) -> Result<Self> {
        if s.categories.len() > s.max_categories {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "more categories than the cap" });
        }
        if s.seeded > s.categories.len() {
            return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "more seeded categories than categories" });
        }
        let mut c = Self::new(s.max_categories);
        for (name, count) in &s.categories {
            if name == OTHER_CATEGORY || c.index.contains_key(name.as_str()) {
                return Err(Error::CorruptSnapshot { kind: Self::KIND, reason: "duplicate or reserved category name" });
            }
            c.add(name, *count);
        }
        c.other = s.other;
        c.total += s.other;
        c.seeded = s.seeded;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_size_bytes_bounds_full_counts() {
        for names in [0usize, 1, 7, 100, 1_000, 5_000] {
            let mut counts = CategoryCounts::new(names);
            for i in 0..names * 3 {
                counts.update(&format!("name-{:06}", i % names.max(1)));
            }
            let bound = CategoryCounts::max_size_bytes(names, 11);
            assert!(counts.size_bytes() <= bound, "{names}: {} > {bound}", counts.size_bytes());
        }
    }
}
