//! Window assignment and panes: which pane an event belongs to (count or
//! event time), the watermark and lateness, and the ring of completed panes
//! whose merge is the running window.
//!
//! A window of `panes` panes slides by one pane. Count windows: pane `k`
//! holds the model's windowed events `k·slide .. (k+1)·slide`. Event-time
//! windows: pane `k` holds the events with time in `[k·slide, (k+1)·slide)`;
//! the watermark is the largest event time seen minus the allowed lateness,
//! a pane is complete once its end is at or before the watermark, and an
//! event for a pane that is complete (or before the first pane still open)
//! is late. [`Panes`] is generic over what a pane holds ([`PaneData`]), so
//! its rules are tested here on plain numbers.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::events::WindowBounds;
use crate::config::WindowSpec;
use crate::{Error, Result};

/// What a pane holds: sketches that merge into the running window and
/// unmerge out of it when the pane leaves.
pub(crate) trait PaneData: Clone {
    /// Adds `other` into `self`.
    fn merge(&mut self, other: &Self) -> Result<()>;
    /// Removes `other` (merged before) from `self`.
    fn unmerge(&mut self, other: &Self) -> Result<()>;
    /// Whether merging dropped data, so that unmerging would be inexact:
    /// then the window is rebuilt from its panes instead.
    fn incomplete(&self) -> bool;
    /// Bytes held.
    fn size_bytes(&self) -> usize;
}

/// Panes kept for reuse: one leaves the window for each that enters, so
/// two cover the steady state.
pub(crate) const MAX_SPARE_PANES: usize = 2;

/// Where an event goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Into this pane.
    Pane(i64),
    /// Event time behind the watermark, or before the first pane still
    /// open: dropped and counted.
    Late,
    /// An event-time window and no timestamp: dropped and counted.
    MissingTimestamp,
}

/// One pane: what it holds and where it lies.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Pane<C> {
    pub(crate) id: i64,
    pub(crate) data: C,
    pub(crate) count: u64,
    pub(crate) min_ts: Option<i64>,
    pub(crate) max_ts: Option<i64>,
    /// Count windows: the index of its first event.
    pub(crate) first_index: Option<u64>,
    /// The model version of its last event that had one.
    pub(crate) last_version: Option<String>,
}

impl<C> Pane<C> {
    fn new(id: i64, data: C) -> Self {
        Self { id, data, count: 0, min_ts: None, max_ts: None, first_index: None, last_version: None }
    }
}

/// A pane has just entered the window: what [`Panes::complete_through`]
/// shows for each.
pub(crate) struct Entered<'a, C> {
    /// The pane's id.
    pub(crate) pane: i64,
    /// Its end in event time: a time pane's end, a count pane's latest event.
    pub(crate) pane_end_ms: Option<i64>,
    /// Whether the window holds its full number of panes.
    pub(crate) full: bool,
    /// When the pane was completed (before it was merged).
    pub(crate) closed_at: Instant,
    /// The window's bounds.
    pub(crate) bounds: WindowBounds,
    /// The window's panes, oldest first.
    pub(crate) ring: &'a VecDeque<Pane<C>>,
    /// The window: the merge of `ring`.
    pub(crate) window: &'a mut C,
}

impl<C> Entered<'_, C> {
    /// The model version of the window's newest event that had one.
    pub(crate) fn version(&self) -> Option<&str> {
        self.ring.iter().rev().find_map(|p| p.last_version.as_deref())
    }
}

/// Panes of one model's window: open ones taking events, the ring of
/// completed ones, and their merge.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Panes<C> {
    spec: WindowSpec,
    /// Panes taking events, by id (event-time windows have several at once).
    open: BTreeMap<i64, Pane<C>>,
    /// Completed panes in the window, oldest first.
    ring: VecDeque<Pane<C>>,
    /// The merge of `ring`.
    running: Option<C>,
    /// Panes that left the window, kept for reuse (at most
    /// [`MAX_SPARE_PANES`]): an allocation cache, not state.
    #[serde(skip)]
    spare: Vec<C>,
    /// The id after the last completed pane.
    next_pane: Option<i64>,
    /// Count windows: events taken so far.
    windowed: u64,
    /// Event-time windows: the largest event time taken.
    max_ts: Option<i64>,
}

impl<C: PaneData> Panes<C> {
    /// No panes yet.
    pub(crate) fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            open: BTreeMap::new(),
            ring: VecDeque::new(),
            running: None,
            spare: Vec::new(),
            next_pane: None,
            windowed: 0,
            max_ts: None,
        }
    }

    /// The window's shape.
    pub(crate) fn spec(&self) -> WindowSpec {
        self.spec
    }

    fn panes_per_window(&self) -> u64 {
        match self.spec {
            WindowSpec::Count { panes, .. } | WindowSpec::Time { panes, .. } => panes,
        }
    }

    /// Where an event with time `ts` goes (nothing changes yet).
    pub(crate) fn place(&self, ts: Option<i64>) -> Place {
        match self.spec {
            WindowSpec::Count { slide, .. } => Place::Pane((self.windowed / slide) as i64),
            WindowSpec::Time { slide_ms, lateness_ms, .. } => {
                let Some(t) = ts else { return Place::MissingTimestamp };
                let id = t.div_euclid(slide_ms as i64);
                let watermark = self.max_ts.map(|m| m.saturating_sub(lateness_ms as i64));
                let pane_end = (id + 1).saturating_mul(slide_ms as i64);
                if watermark.is_some_and(|w| pane_end <= w) || self.next_pane.is_some_and(|n| id < n) {
                    Place::Late
                } else {
                    Place::Pane(id)
                }
            }
        }
    }

    /// Takes an event placed in pane `id`: counts it and moves the
    /// watermark. Returns the last pane now complete, if any: the caller
    /// adds what it holds of pane `id` (and of every earlier pane it holds)
    /// first, then calls [`Panes::complete_through`].
    pub(crate) fn admit(&mut self, id: i64, ts: Option<i64>) -> Option<i64> {
        match self.spec {
            WindowSpec::Count { slide, .. } => {
                self.windowed += 1;
                self.windowed.is_multiple_of(slide).then_some(id)
            }
            WindowSpec::Time { slide_ms, lateness_ms, .. } => {
                let t = ts.unwrap_or_default();
                self.max_ts = Some(self.max_ts.map_or(t, |m| m.max(t)));
                let watermark = self.max_ts.unwrap_or(t).saturating_sub(lateness_ms as i64);
                // Panes whose end is at or before the watermark are complete.
                let last_closed = watermark.div_euclid(slide_ms as i64) - 1;
                let first_open = self.open.keys().next().copied().map_or(id, |f| f.min(id));
                (first_open <= last_closed).then_some(last_closed)
            }
        }
    }

    /// Adds `rows` admitted events to pane `id` (opening it with
    /// `fresh(spare)` — a pane that left the window, for reuse, or `None` —
    /// when it is new): `fill` adds them to what the pane holds; `ts` are
    /// their times, `last_version` the model version of the last with one.
    pub(crate) fn add(
        &mut self,
        id: i64,
        rows: usize,
        ts: impl IntoIterator<Item = i64>,
        last_version: Option<&str>,
        fresh: &mut dyn FnMut(Option<C>) -> Result<C>,
        fill: impl FnOnce(&mut C),
    ) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        if !self.open.contains_key(&id) {
            let data = fresh(self.spare.pop())?;
            self.open.insert(id, Pane::new(id, data));
        }
        let first_index = match self.spec {
            WindowSpec::Count { .. } => Some(self.windowed - rows as u64),
            WindowSpec::Time { .. } => None,
        };
        let pane = self.open.get_mut(&id).ok_or_else(|| Error::Internal("pane vanished".into()))?;
        fill(&mut pane.data);
        pane.count += rows as u64;
        for t in ts {
            pane.min_ts = Some(pane.min_ts.map_or(t, |m| m.min(t)));
            pane.max_ts = Some(pane.max_ts.map_or(t, |m| m.max(t)));
        }
        if pane.first_index.is_none() {
            pane.first_index = first_index;
        }
        if let Some(v) = last_version {
            if pane.last_version.as_deref() != Some(v) {
                pane.last_version = Some(v.to_owned());
            }
        }
        Ok(())
    }

    /// Completes every open pane with id ≤ `last`, in order: each enters the
    /// window (the oldest leaves), and `entered` sees the window after it.
    pub(crate) fn complete_through(
        &mut self,
        last: i64,
        fresh: &mut dyn FnMut(Option<C>) -> Result<C>,
        entered: &mut dyn FnMut(Entered<'_, C>) -> Result<()>,
    ) -> Result<()> {
        let panes = self.panes_per_window() as i64;
        while let Some((&id, _)) = self.open.iter().next() {
            if id > last {
                break;
            }
            let pane = self.open.remove(&id).ok_or_else(|| Error::Internal("pane vanished".into()))?;
            // Time windows: panes without events still occupy their slot, so
            // every window holding events is evaluated as it slides out of
            // the old panes and into the new one. Across a gap longer than
            // the window, the windows in between hold only empty panes: the
            // ring is emptied and refilled with the empty panes just before
            // `id` instead of sliding through all of them.
            let first = self.next_pane.unwrap_or(id);
            let flush_end = id.min(first.saturating_add(panes - 1));
            for gap in first..flush_end {
                self.push_empty(gap, fresh, entered)?;
            }
            let refill_start = id.saturating_sub(panes - 1).max(flush_end);
            if refill_start > flush_end {
                while let Some(old) = self.ring.pop_front() {
                    self.recycle(old);
                }
                self.running = None;
            }
            for gap in refill_start..id {
                self.push_empty(gap, fresh, entered)?;
            }
            self.push(pane, entered)?;
            self.next_pane = Some(id + 1);
        }
        Ok(())
    }

    /// End of bounded input: the last pane to complete. Event-time windows
    /// complete every open pane (the watermark moves to +∞); count windows
    /// keep an incomplete last pane out of the window.
    pub(crate) fn end_of_input(&self) -> Option<i64> {
        match self.spec {
            WindowSpec::Time { .. } => self.open.keys().next_back().copied(),
            WindowSpec::Count { .. } => None,
        }
    }

    fn recycle(&mut self, pane: Pane<C>) {
        if self.spare.len() < MAX_SPARE_PANES {
            self.spare.push(pane.data);
        }
    }

    fn push_empty(
        &mut self,
        id: i64,
        fresh: &mut dyn FnMut(Option<C>) -> Result<C>,
        entered: &mut dyn FnMut(Entered<'_, C>) -> Result<()>,
    ) -> Result<()> {
        let data = fresh(self.spare.pop())?;
        self.push(Pane::new(id, data), entered)
    }

    fn push(&mut self, pane: Pane<C>, entered: &mut dyn FnMut(Entered<'_, C>) -> Result<()>) -> Result<()> {
        let closed_at = Instant::now();
        // The oldest pane leaves before the new one enters, so the window
        // never holds more than its size (the exact store's capacity).
        let full = self.ring.len() as u64 >= self.panes_per_window();
        if self.running.as_ref().is_some_and(PaneData::incomplete) {
            // A window larger than the exact store dropped raw values, so it
            // cannot unmerge exactly: rebuild it from its panes (the store then
            // fills up to its capacity again and KS uses the bounded sketch).
            if full {
                if let Some(old) = self.ring.pop_front() {
                    self.recycle(old);
                }
            }
            self.ring.push_back(pane);
            // The old window goes first: at most one window in memory.
            self.running = None;
            let mut panes = self.ring.iter();
            let first = panes.next().ok_or_else(|| Error::Internal("empty window".into()))?;
            let mut running = first.data.clone();
            for p in panes {
                running.merge(&p.data)?;
            }
            self.running = Some(running);
        } else {
            if full {
                if let (Some(old), Some(running)) = (self.ring.pop_front(), self.running.as_mut()) {
                    running.unmerge(&old.data)?;
                    self.recycle(old);
                }
            }
            match &mut self.running {
                Some(running) => running.merge(&pane.data)?,
                None => self.running = Some(pane.data.clone()),
            }
            self.ring.push_back(pane);
        }
        let full = self.ring.len() as u64 == self.panes_per_window();
        let bounds = self.bounds();
        let last = self.ring.back().ok_or_else(|| Error::Internal("pane vanished".into()))?;
        let pane_end_ms = match self.spec {
            WindowSpec::Count { .. } => last.max_ts,
            WindowSpec::Time { slide_ms, .. } => Some((last.id + 1).saturating_mul(slide_ms as i64)),
        };
        let pane = last.id;
        let window = self.running.as_mut().ok_or_else(|| Error::Internal("window vanished".into()))?;
        entered(Entered { pane, pane_end_ms, full, closed_at, bounds, ring: &self.ring, window })
    }

    /// The window's bounds.
    pub(crate) fn bounds(&self) -> WindowBounds {
        let count = self.ring.iter().map(|p| p.count).sum();
        match self.spec {
            WindowSpec::Count { slide, panes } => {
                let last = self.ring.back().map_or(0, |p| p.id) as u64;
                let end = (last + 1) * slide;
                WindowBounds {
                    // Saturating: a window not yet full (not evaluated) has fewer panes.
                    start_index: Some(end.saturating_sub(slide * panes)),
                    end_index: Some(end),
                    start_ms: self.ring.iter().filter_map(|p| p.min_ts).min(),
                    end_ms: self.ring.iter().filter_map(|p| p.max_ts).max(),
                    count,
                }
            }
            WindowSpec::Time { slide_ms, .. } => WindowBounds {
                start_index: None,
                end_index: None,
                start_ms: self.ring.front().map(|p| p.id * slide_ms as i64),
                end_ms: self.ring.back().map(|p| (p.id + 1) * slide_ms as i64),
                count,
            },
        }
    }

    /// Bytes held by open panes, the ring and the window.
    pub(crate) fn size_bytes(&self) -> usize {
        self.open.values().map(|p| p.data.size_bytes()).sum::<usize>()
            + self.ring.iter().map(|p| p.data.size_bytes()).sum::<usize>()
            + self.running.as_ref().map_or(0, PaneData::size_bytes)
    }

    /// Every pane's data, open and in the ring, then the window (for
    /// checking a restored state against the plan).
    pub(crate) fn all_data(&self) -> impl Iterator<Item = &C> {
        self.open.values().map(|p| &p.data).chain(self.ring.iter().map(|p| &p.data)).chain(self.running.as_ref())
    }

    /// Checks a restored state's own invariants.
    pub(crate) fn check(&self) -> std::result::Result<(), String> {
        if self.ring.len() as u64 > self.panes_per_window() {
            return Err(format!("{} panes in a window of {}", self.ring.len(), self.panes_per_window()));
        }
        if self.ring.is_empty() != self.running.is_none() {
            return Err("the window and its panes disagree".into());
        }
        if self.ring.iter().zip(self.ring.iter().skip(1)).any(|(a, b)| b.id <= a.id) {
            return Err("the window's panes are out of order".into());
        }
        if let (Some(next), Some(&first_open)) = (self.next_pane, self.open.keys().next()) {
            if first_open < next {
                return Err(format!("open pane {first_open} before the next pane {next}"));
            }
        }
        if self.open.iter().any(|(k, p)| *k != p.id) {
            return Err("an open pane is filed under another id".into());
        }
        if let (Some(last), Some(next)) = (self.ring.back(), self.next_pane) {
            if last.id.checked_add(1) != Some(next) {
                return Err(format!("the window's last pane {} is not before the next pane {next}", last.id));
            }
        }
        if let WindowSpec::Count { slide, .. } = self.spec {
            // Count panes are numbered from 0 by the events taken.
            let limit = (self.windowed / slide) as i64;
            if self.open.keys().chain(self.ring.iter().map(|p| &p.id)).any(|&id| id < 0 || id > limit) {
                return Err(format!("a count pane outside 0..={limit}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pane's data for the tests: the multiset of values, kept sorted;
    /// `cap` stands for the exact store's capacity (more values and the
    /// window is "incomplete").
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Values {
        v: Vec<i64>,
        cap: usize,
    }

    impl PaneData for Values {
        fn merge(&mut self, other: &Self) -> Result<()> {
            self.v.extend(&other.v);
            self.v.sort_unstable();
            Ok(())
        }
        fn unmerge(&mut self, other: &Self) -> Result<()> {
            for x in &other.v {
                let i = self.v.iter().position(|y| y == x).ok_or_else(|| Error::Internal(format!("{x} not in window")))?;
                self.v.remove(i);
            }
            Ok(())
        }
        fn incomplete(&self) -> bool {
            self.v.len() > self.cap
        }
        fn size_bytes(&self) -> usize {
            self.v.len() * 8
        }
    }

    /// What each window showed: (last pane, full, bounds, values).
    type Seen = Vec<(i64, bool, WindowBounds, Vec<i64>)>;

    /// Feeds `(ts, value)` events one at a time, as the window stage does.
    struct Driver {
        panes: Panes<Values>,
        seen: Seen,
        late: u64,
        missing: u64,
        fresh_calls: u64,
        recycled: u64,
        cap: usize,
    }

    impl Driver {
        fn new(spec: WindowSpec) -> Self {
            Self { panes: Panes::new(spec), seen: Vec::new(), late: 0, missing: 0, fresh_calls: 0, recycled: 0, cap: usize::MAX }
        }

        fn event(&mut self, ts: Option<i64>, value: i64) {
            let cap = self.cap;
            let (calls, recycled) = (&mut self.fresh_calls, &mut self.recycled);
            let mut fresh = |spare: Option<Values>| {
                *calls += 1;
                *recycled += u64::from(spare.is_some());
                Ok(Values { v: Vec::new(), cap })
            };
            let seen = &mut self.seen;
            let mut entered = |e: Entered<'_, Values>| {
                seen.push((e.pane, e.full, e.bounds, e.window.v.clone()));
                Ok(())
            };
            match self.panes.place(ts) {
                Place::Late => self.late += 1,
                Place::MissingTimestamp => self.missing += 1,
                Place::Pane(id) => {
                    let complete = self.panes.admit(id, ts);
                    self.panes.add(id, 1, ts, None, &mut fresh, |d| d.v.push(value)).unwrap();
                    if let Some(last) = complete {
                        self.panes.complete_through(last, &mut fresh, &mut entered).unwrap();
                    }
                }
            }
        }

        fn finish(&mut self) {
            let Some(last) = self.panes.end_of_input() else { return };
            let cap = self.cap;
            let mut fresh = |_: Option<Values>| Ok(Values { v: Vec::new(), cap });
            let seen = &mut self.seen;
            self.panes
                .complete_through(last, &mut fresh, &mut |e| {
                    seen.push((e.pane, e.full, e.bounds, e.window.v.clone()));
                    Ok(())
                })
                .unwrap();
        }

        fn full_windows(&self) -> Vec<Vec<i64>> {
            self.seen.iter().filter(|s| s.1).map(|s| s.3.clone()).collect()
        }
    }

    #[test]
    fn count_windows_slide_by_a_pane() {
        // Windows of 3 panes of 2 events.
        let mut d = Driver::new(WindowSpec::Count { slide: 2, panes: 3 });
        for x in 0..10 {
            d.event(Some(1_000 + x), x);
        }
        d.finish();
        // Panes complete every 2 events; the first two leave the window short of full.
        assert_eq!(d.seen.iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), [(0, false), (1, false), (2, true), (3, true), (4, true)]);
        assert_eq!(d.full_windows(), [vec![0, 1, 2, 3, 4, 5], vec![2, 3, 4, 5, 6, 7], vec![4, 5, 6, 7, 8, 9]]);
        let b = d.seen[3].2;
        assert_eq!((b.start_index, b.end_index, b.count, b.start_ms, b.end_ms), (Some(2), Some(8), 6, Some(1_002), Some(1_007)));
        // Count windows never drop an event, with or without a timestamp.
        let mut d = Driver::new(WindowSpec::Count { slide: 2, panes: 1 });
        d.event(None, 1);
        d.event(None, 2);
        d.event(Some(5), 3);
        d.finish();
        assert_eq!((d.late, d.missing), (0, 0));
        // An incomplete last pane stays out at the end.
        assert_eq!(d.full_windows(), [vec![1, 2]]);
        assert_eq!(d.seen[0].2.start_ms, None);
    }

    #[test]
    fn time_windows_follow_the_watermark() {
        // Panes of 10 ms, windows of 2 panes, 5 ms lateness.
        let mut d = Driver::new(WindowSpec::Time { slide_ms: 10, panes: 2, lateness_ms: 5 });
        d.event(Some(1), 1);
        d.event(Some(12), 2);
        // The watermark is 7: pane 0 (end 10) is still open.
        assert!(d.seen.is_empty());
        d.event(Some(8), 3); // 8 > watermark 7: not late
        d.event(Some(15), 4); // watermark 10: pane 0 completes
        assert_eq!(d.seen.iter().map(|s| (s.0, s.3.clone())).collect::<Vec<_>>(), [(0, vec![1, 3])]);
        d.event(Some(9), 5); // pane 0 is complete: late
        d.event(Some(3), 6); // likewise
        assert_eq!(d.late, 2);
        d.event(Some(26), 7); // watermark 21: pane 1 completes → window [0, 20)
        d.event(None, 8);
        assert_eq!(d.missing, 1);
        d.finish(); // the rest complete: pane 2
        assert_eq!(d.full_windows(), [vec![1, 2, 3, 4], vec![2, 4, 7]]);
        let b = d.seen[1].2;
        assert_eq!((b.start_ms, b.end_ms, b.count, b.start_index), (Some(0), Some(20), 4, None));
        let b = d.seen[2].2;
        assert_eq!((b.start_ms, b.end_ms, b.count), (Some(10), Some(30), 3));
    }

    #[test]
    fn time_windows_slide_through_empty_panes_and_skip_long_gaps() {
        // Windows of 3 panes of 10 ms, no lateness.
        let mut d = Driver::new(WindowSpec::Time { slide_ms: 10, panes: 3, lateness_ms: 0 });
        d.event(Some(0), 1);
        d.event(Some(10), 2);
        d.event(Some(20), 3);
        d.event(Some(50), 4); // the watermark (50) completes panes 0 to 2; pane 5 is open
        assert_eq!(d.seen.iter().map(|s| s.0).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(d.full_windows(), [vec![1, 2, 3]]);
        d.event(Some(10_050), 5); // completes pane 5: the empty panes 3 and 4 enter first
        assert_eq!(
            d.seen[3..].iter().map(|s| (s.0, s.1, s.3.clone())).collect::<Vec<_>>(),
            [(3, true, vec![2, 3]), (4, true, vec![3]), (5, true, vec![4])]
        );
        let before = d.seen.len();
        // Pane 1 005 completes at the end: the window slides out of pane 5's
        // event (panes 6 and 7), then, instead of walking through a thousand
        // empty windows, the ring is refilled with the empty panes 1 003 and 1 004.
        d.finish();
        let new: Vec<(i64, bool, Vec<i64>)> = d.seen[before..].iter().map(|s| (s.0, s.1, s.3.clone())).collect();
        assert_eq!(new, [(6, true, vec![4]), (7, true, vec![4]), (1_003, false, vec![]), (1_004, false, vec![]), (1_005, true, vec![5])]);
        let last = d.seen.last().unwrap().2;
        assert_eq!((last.start_ms, last.end_ms, last.count), (Some(10_030), Some(10_060), 1));
    }

    #[test]
    fn panes_are_reused_and_an_incomplete_window_is_rebuilt() {
        let mut d = Driver::new(WindowSpec::Count { slide: 1, panes: 2 });
        for x in 0..10 {
            d.event(None, x);
        }
        // One new pane per event; after the first two, the leaving pane is reused.
        assert_eq!(d.fresh_calls, 10);
        assert!(d.recycled >= 7, "{} of 10 panes reused", d.recycled);
        // A window over capacity is rebuilt from its panes rather than unmerged,
        // and holds exactly its panes either way.
        let mut d = Driver::new(WindowSpec::Count { slide: 2, panes: 2 });
        d.cap = 3;
        for x in 0..8 {
            d.event(None, x);
        }
        assert_eq!(d.full_windows(), [vec![0, 1, 2, 3], vec![2, 3, 4, 5], vec![4, 5, 6, 7]]);
    }

    #[test]
    fn the_state_survives_serialization_mid_window() {
        let spec = WindowSpec::Time { slide_ms: 10, panes: 3, lateness_ms: 4 };
        let events: Vec<(i64, i64)> = (0..200).map(|i| ((i * 37) % 23 + i * 2, i)).collect();
        let mut whole = Driver::new(spec);
        for &(t, x) in &events {
            whole.event(Some(t), x);
        }
        whole.finish();
        for cut in [1, 57, 120, 199] {
            let mut first = Driver::new(spec);
            for &(t, x) in &events[..cut] {
                first.event(Some(t), x);
            }
            let json = serde_json::to_string(&first.panes).unwrap();
            let mut second = Driver::new(spec);
            second.panes = serde_json::from_str(&json).unwrap();
            second.panes.check().unwrap();
            second.late = first.late;
            for &(t, x) in &events[cut..] {
                second.event(Some(t), x);
            }
            second.finish();
            let mut seen = first.seen.clone();
            seen.extend(second.seen.iter().cloned());
            assert_eq!(seen, whole.seen, "cut at {cut}");
            assert_eq!(second.late, whole.late);
        }
    }

    #[test]
    fn check_refuses_inconsistent_states() {
        let mut d = Driver::new(WindowSpec::Count { slide: 1, panes: 2 });
        for x in 0..3 {
            d.event(None, x);
        }
        d.panes.check().unwrap();
        let mut bad = d.panes.clone();
        bad.running = None;
        assert!(bad.check().is_err());
        let mut bad = d.panes.clone();
        bad.ring.swap(0, 1);
        assert!(bad.check().is_err());
        let mut bad = d.panes.clone();
        let p = bad.ring[0].clone();
        bad.ring.push_back(p);
        assert!(bad.check().is_err());
    }
}
