//! File sources: a JSONL file cut into lines, or a CSV or Parquet file read
//! row by row (through Arrow), each event numbered by its line or row.
//! They are bounded (the input ends) and can seek to a line or row.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::source::{Batch, Feed, Position, Source, SourceHandle, SourceStats};
use crate::table::{self, CsvTypes, FileFormat, SourceError};
use crate::{Error, Result};

/// A file of events: JSONL (one event per line), CSV or Parquet (one per row).
#[derive(Debug)]
pub struct FileSource {
    path: PathBuf,
    format: FileFormat,
    /// How CSV columns are typed (the others are inferred).
    types: CsvTypes,
    /// Lines (rows) up to this one were applied before: read past them.
    skip_through: u64,
    handle: Arc<FileHandle>,
}

impl FileSource {
    /// Opens `path`, its format from the extension (`.jsonl`, `.ndjson`,
    /// `.json`, `.csv`, `.parquet`); `types` says which CSV columns hold
    /// numbers and which text. A missing or unreadable file fails now.
    pub fn open(path: &Path, types: CsvTypes) -> Result<Self> {
        let format = FileFormat::from_path(path)?;
        std::fs::File::open(path).map_err(|source| Error::File { path: path.to_owned(), source })?;
        let handle = Arc::new(FileHandle { stream: path.display().to_string(), applied: AtomicI64::new(0) });
        Ok(Self { path: path.to_owned(), format, types, skip_through: 0, handle })
    }

    /// The file's format.
    pub fn format(&self) -> FileFormat {
        self.format
    }
}

impl Source for FileSource {
    fn name(&self) -> String {
        format!("{} file {}", self.format, self.path.display())
    }

    fn bounded(&self) -> bool {
        true
    }

    fn handle(&self) -> Arc<dyn SourceHandle> {
        Arc::clone(&self.handle) as Arc<dyn SourceHandle>
    }

    fn seek(&mut self, positions: &[Position]) -> Result<()> {
        for p in positions.iter().filter(|p| p.stream == self.handle.stream) {
            if p.partition != 0 || p.offset < 0 {
                return Err(Error::Config {
                    field: "seek",
                    message: format!(
                        "{}: a file's position is line (row) 1 or more in partition 0, not {}:{}",
                        p.stream, p.partition, p.offset
                    ),
                });
            }
            self.skip_through = p.offset as u64;
            self.handle.applied.store(p.offset, Ordering::Release);
        }
        Ok(())
    }

    fn run(self: Box<Self>, feed: &mut Feed<'_>) -> Result<SourceStats> {
        let Lines { blank, .. } = match self.format {
            FileFormat::Json => {
                let file = std::fs::File::open(&self.path).map_err(|source| Error::File { path: self.path.clone(), source })?;
                cut_lines(file, &self.path, feed, READ_BYTES, self.skip_through)?
            }
            FileFormat::Csv | FileFormat::Parquet => read_rows(&self.path, self.format, &self.types, feed, self.skip_through)?,
        };
        Ok(SourceStats { blank_lines: blank })
    }
}

/// A file source's handle: the last applied line (row).
#[derive(Debug)]
struct FileHandle {
    stream: String,
    applied: AtomicI64,
}

impl SourceHandle for FileHandle {
    fn applied(&self, positions: &[(u32, i64)]) {
        if let Some(&(_, line)) = positions.iter().max_by_key(|p| p.1) {
            self.applied.fetch_max(line, Ordering::AcqRel);
        }
    }

    fn stream(&self, _slot: u32) -> Option<(String, i32)> {
        Some((self.stream.clone(), 0))
    }

    fn positions(&self) -> Vec<Position> {
        match self.applied.load(Ordering::Acquire) {
            0 => Vec::new(),
            line => vec![Position { stream: self.stream.clone(), partition: 0, offset: line }],
        }
    }

    fn lag(&self) -> Option<i64> {
        None
    }

    fn ready(&self) -> std::result::Result<(), String> {
        Ok(())
    }
}

/// The pipeline stopped taking batches (not an error of the file).
#[derive(Debug)]
enum RowsError {
    Stopped,
    Table(SourceError),
}

impl From<SourceError> for RowsError {
    fn from(e: SourceError) -> Self {
        Self::Table(e)
    }
}

/// Reads a CSV or Parquet file row by row (each row one JSON object, CSV
/// cells typed by `types`) into batches; rows up to `skip_through` are read past.
fn read_rows(path: &Path, format: FileFormat, types: &CsvTypes, feed: &mut Feed<'_>, skip_through: u64) -> Result<Lines> {
    let (batch_events, max) = (feed.batch_events(), feed.max_event_bytes());
    let mut rows = 0u64;
    let mut batch = feed.batch();
    let read = table::for_each_json_row_typed(path, format, types, |row: &[u8]| -> std::result::Result<(), RowsError> {
        rows += 1;
        if rows <= skip_through {
            return Ok(());
        }
        batch.push_row(row, rows, max);
        if batch.len() >= batch_events {
            let full = std::mem::replace(&mut batch, feed.batch());
            if !feed.send(full) {
                return Err(RowsError::Stopped);
            }
        }
        Ok(())
    });
    let blank = match read {
        Ok(blank) => blank,
        Err(RowsError::Stopped) => return Ok(Lines { lines: rows, blank: 0 }),
        Err(RowsError::Table(e)) => return Err(e.into()),
    };
    if !batch.is_empty() {
        feed.send(batch);
    }
    // Rows are numbered as rows: the CSV reader skips empty lines.
    Ok(Lines { lines: rows + blank, blank })
}

/// The least and the most bytes the JSONL reader asks for in one read.
const READ_BYTES: (usize, usize) = (4 << 10, 4 << 20);

/// Bytes between a batch's events that the reader leaves before it compacts.
const GAP_BYTES: usize = 64 << 10;

/// Cuts `input` into lines and the lines into batches of `batch_events`
/// (lines up to `skip_through` are read past: a seek),
/// events, reading straight into each batch's buffer: an event's bytes are
/// not copied in user space, except the input a batch's last read held past
/// its last event (part of a line, or a few lines when the read overshot),
/// which moves to the next batch, and the rare compaction below. Each read
/// asks for what the rest of the batch needs at the last batch's input bytes
/// per event (plus a thirty-second, within `reads`), so the carried rest
/// stays small.
///
/// Lines end at `\n`, a trailing `\r` is dropped, and blank (empty or
/// whitespace-only) lines are counted, apart, and for line numbers, but are
/// not events. A line over `max` bytes keeps its
/// first `max + 1` bytes while the rest is read and dropped; it becomes an
/// oversize event cut at `max`. Bytes between a batch's events (line breaks,
/// blank lines, the dropped rest of an oversize line) are compacted away once
/// they outweigh the events (and [`GAP_BYTES`]), so a batch holds at most
/// about `batch_events × max` bytes plus one read, whatever the input.
pub(crate) fn cut_lines(mut input: impl Read, path: &Path, feed: &mut Feed<'_>, reads: (usize, usize), skip_through: u64) -> Result<Lines> {
    let (batch_events, max) = (feed.batch_events(), feed.max_event_bytes());
    let limit = max.saturating_add(1);
    let (mut lines, mut blank) = (0u64, 0u64);
    let mut batch = feed.batch();
    // `batch.data[start..batch.filled]` is input not cut into lines yet, of
    // which `start..pos` holds no line break: the line in progress, after
    // whose first `limit` bytes `skipped` more were dropped.
    let (mut start, mut pos, mut skipped) = (0usize, 0usize, 0usize);
    // `kept`: bytes of the batch's events; `taken`: input bytes of its lines
    // (without dropped ones); `mean`: input bytes per event of the last batch.
    let (mut kept, mut taken, mut mean) = (0usize, 0usize, 64usize);
    loop {
        while batch.len() < batch_events {
            let Some(i) = memchr::memchr(b'\n', &batch.data[pos..batch.filled]) else { break };
            let end = pos + i;
            lines += 1;
            if lines > skip_through {
                match end_line(&mut batch, start, end, skipped, max, lines) {
                    Some(bytes) => kept += bytes,
                    None => blank += 1,
                }
            }
            taken += end + 1 - start;
            (start, pos, skipped) = (end + 1, end + 1, 0);
        }
        if batch.len() >= batch_events {
            // Full (`pos == start`): the rest of the input goes to the next batch.
            mean = taken / batch.len() + 1;
            let mut next = feed.batch();
            next.append(&batch.data[start..batch.filled]);
            batch.filled = start;
            (start, pos, kept, taken) = (0, 0, 0, 0);
            if !feed.send(std::mem::replace(&mut batch, next)) {
                return Ok(Lines { lines, blank });
            }
            continue;
        }
        // Everything read is cut: `start..filled` is the line in progress.
        if batch.filled - start > limit {
            skipped += batch.filled - start - limit;
            batch.filled = start + limit;
        }
        if start - kept > kept.max(GAP_BYTES) {
            start = batch.compact(start);
        }
        pos = batch.filled;
        let want = (batch_events - batch.len() + batch_events / 32 + 2).saturating_mul(mean).clamp(reads.0, reads.1);
        match input.read(batch.room(want)) {
            Ok(0) => break,
            Ok(n) => batch.filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(Error::File { path: path.to_owned(), source }),
        }
    }
    if batch.filled > start || skipped > 0 {
        lines += 1;
        let end = batch.filled;
        if lines > skip_through && end_line(&mut batch, start, end, skipped, max, lines).is_none() {
            blank += 1;
        }
    }
    if !batch.is_empty() {
        feed.send(batch);
    }
    Ok(Lines { lines, blank })
}

/// What the reader read: lines (or rows) in all, and how many were blank.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    pub(crate) lines: u64,
    pub(crate) blank: u64,
}

/// Ends line `number`, `batch.data[start..end]` and `skipped` bytes dropped
/// after it: a blank line is left out, an oversize one is cut at `max` and
/// marked. Returns the bytes the batch keeps of it, `None` for a blank line.
fn end_line(batch: &mut Batch, start: usize, end: usize, skipped: usize, max: usize, number: u64) -> Option<usize> {
    let total = end - start + skipped;
    let mut stop = end;
    if stop > start && batch.data[stop - 1] == b'\r' {
        stop -= 1;
    }
    if total <= max && batch.data[start..stop].iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    if total > max {
        batch.oversize.push((batch.len(), total));
        stop = stop.min(start + max);
    }
    batch.add(start, stop, number);
    Some(stop - start)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::source::{BatchPool, Progress};
    use std::collections::HashMap;
    use std::sync::atomic::AtomicBool;

    /// Hands out at most a pseudo-random number of bytes per read.
    struct Trickle<'a> {
        rest: &'a [u8],
        state: u64,
        most: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            let n = (1 + self.state as usize % self.most).min(buf.len()).min(self.rest.len());
            buf[..n].copy_from_slice(&self.rest[..n]);
            self.rest = &self.rest[n..];
            Ok(n)
        }
    }

    /// (line number, bytes, original length if oversize) of an event.
    type Event = (u64, Vec<u8>, Option<usize>);

    /// The events and the number of blank lines, by
    /// the rules `cut_lines` documents, written the plain way.
    fn expected(input: &[u8], max: usize) -> (Vec<Event>, u64) {
        let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
        if parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        let (mut out, mut blank) = (Vec::new(), 0);
        for (i, part) in parts.into_iter().enumerate() {
            let total = part.len();
            let line = part.strip_suffix(b"\r").unwrap_or(part);
            if total <= max && line.iter().all(u8::is_ascii_whitespace) {
                blank += 1;
                continue;
            }
            let cut = &line[..line.len().min(max)];
            out.push((i as u64 + 1, cut.to_vec(), (total > max).then_some(total)));
        }
        (out, blank)
    }

    /// Runs `cut_lines` with batches recycled through the pool (so stale
    /// bytes of earlier batches are in the buffers), returning the events,
    /// the line count, and the largest buffer a batch had.
    fn cut(input: &[u8], max: usize, events: usize, reads: (usize, usize), seed: u64, most: usize) -> (Vec<Event>, Lines, usize) {
        cut_from(input, max, events, reads, seed, most, 0)
    }

    /// [`cut`], reading past the lines up to `skip_through`.
    fn cut_from(
        input: &[u8],
        max: usize,
        events: usize,
        reads: (usize, usize),
        seed: u64,
        most: usize,
        skip_through: u64,
    ) -> (Vec<Event>, Lines, usize) {
        let pool = BatchPool::new(4, events);
        let mut got = Vec::new();
        let (mut biggest, mut last_was_short) = (0usize, false);
        let reader = Trickle { rest: input, state: seed | 1, most };
        let (stop, progress) = (AtomicBool::new(false), Progress::default());
        let mut emit = |b: Batch| {
            assert!(!b.is_empty(), "no empty batch is sent");
            assert!(b.len() <= events, "{} events in a batch of {events}", b.len());
            assert!(!last_was_short, "only the last batch is short");
            last_was_short = b.len() < events;
            biggest = biggest.max(b.data.len());
            let oversize: HashMap<usize, usize> = b.oversize.iter().copied().collect();
            for i in 0..b.len() {
                got.push((b.numbers[i], b.event(i).to_vec(), oversize.get(&i).copied()));
            }
            pool.give(b);
            true
        };
        let mut feed = Feed::new(&pool, max, &stop, &progress, &mut emit);
        let lines = cut_lines(reader, Path::new("test"), &mut feed, reads, skip_through).unwrap();
        (got, lines, biggest)
    }

    #[test]
    fn lines_are_cut_as_documented_whatever_the_reads() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize
        };
        for case in 0..400 {
            let max = 1 + next() % 40;
            let mut input = Vec::new();
            for _ in 0..next() % 200 {
                let len = match next() % 10 {
                    0 => 0,
                    1 => max + next() % (3 * max),
                    _ => next() % (max + 2),
                };
                for _ in 0..len {
                    input.push(*[b'a', b'{', b'}', b' ', b'\t', b'\r', b'\n', b'x'].get(next() % 12).unwrap_or(&b'q'));
                }
                if next() % 8 != 0 {
                    input.extend_from_slice(if next() % 4 == 0 { b"\r\n" } else { b"\n" });
                }
            }
            let events = 1 + next() % 9;
            let reads = (1 + next() % 32, 32 + next() % 256);
            let (got, lines, _) = cut(&input, max, events, reads, case as u64, 1 + next() % 300);
            let (want, blank) = expected(&input, max);
            assert_eq!(got, want, "case {case}: {:?}", String::from_utf8_lossy(&input));
            let breaks = input.iter().filter(|&&b| b == b'\n').count() as u64;
            let unterminated = u64::from(!input.is_empty() && input.last() != Some(&b'\n'));
            assert_eq!(lines.lines, breaks + unterminated, "case {case}");
            assert_eq!(lines.blank, blank, "case {case}");
            assert_eq!(lines.lines - lines.blank, got.len() as u64, "case {case}: every line is an event or blank");
        }
    }

    #[test]
    fn a_batch_stays_bounded_on_blank_and_oversize_lines() {
        let (max, events, reads) = (100, 4, (64, 4096));
        let mut input = vec![b'\n'; 1 << 20];
        for _ in 0..20 {
            input.extend(std::iter::repeat_n(b'x', 50_000));
            input.push(b'\n');
        }
        input.extend_from_slice(b"{}\n");
        let (got, lines, biggest) = cut(&input, max, events, reads, 7, 1 << 16);
        assert_eq!(got.len(), 21);
        assert_eq!(got[0], ((1 << 20) + 1, vec![b'x'; 100], Some(50_000)));
        assert_eq!(got[20].1, b"{}");
        assert_eq!(lines, Lines { lines: (1 << 20) + 21, blank: 1 << 20 });
        // Events of at most `max` bytes, the gaps compacted once they
        // outweigh them and `GAP_BYTES`, one read and one line in progress.
        assert!(biggest <= 2 * events * (max + 1) + GAP_BYTES + 2 * reads.1 + max + 1, "{biggest} bytes");
    }

    /// Regression: blank and whitespace-only lines (also `\r` alone and an
    /// unterminated last one) were counted as events read; they are counted
    /// apart, and line numbers still count them.
    #[test]
    fn blank_lines_are_counted_apart_from_events() {
        let input = b"\n{\"a\":1}\n \t \n\r\n{\"a\":2}\r\n\n   ";
        for most in [1, 3, 64] {
            let (got, lines, _) = cut(input, 100, 2, (1, 64), 3, most);
            assert_eq!(lines, Lines { lines: 7, blank: 5 }, "reads of at most {most}");
            let numbers: Vec<u64> = got.iter().map(|e| e.0).collect();
            assert_eq!(numbers, [2, 5]);
        }
    }

    /// A seek reads past the lines up to its position: what follows is what
    /// an uninterrupted read gives after them, numbered as in the file.
    #[test]
    fn a_seek_reads_past_the_lines_up_to_it() {
        let input = b"{\"a\":1}\n\n{\"a\":2}\n{\"a\":3}\n   \n{\"a\":4}";
        let (all, _, _) = cut(input, 100, 2, (1, 64), 3, 5);
        for skip in 0..=7u64 {
            let (got, lines, _) = cut_from(input, 100, 2, (1, 64), 3, 5, skip);
            let want: Vec<Event> = all.iter().filter(|e| e.0 > skip).cloned().collect();
            assert_eq!(got, want, "skip through {skip}");
            assert_eq!(lines.lines, 6, "every line is still counted");
            assert_eq!(lines.blank, [2u64, 5].iter().filter(|&&b| b > skip).count() as u64, "blank lines after the position");
        }
    }

    /// A file source resumes after its position, and its handle reports the last applied line.
    #[test]
    fn a_file_source_seeks_and_reports_applied_lines() {
        let dir = std::env::temp_dir().join(format!("driftwatch-file-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n").unwrap();
        let mut source = FileSource::open(&path, CsvTypes::default()).unwrap();
        let stream = path.display().to_string();
        source.seek(&[Position { stream: stream.clone(), partition: 0, offset: 1 }]).unwrap();
        let handle = source.handle();
        assert_eq!(handle.positions(), [Position { stream: stream.clone(), partition: 0, offset: 1 }]);
        let (pool, stop, progress) = (BatchPool::new(2, 10), AtomicBool::new(false), Progress::default());
        let mut got = Vec::new();
        let mut emit = |b: Batch| {
            got.extend((0..b.len()).map(|i| (b.number(i), b.event(i).to_vec())));
            handle.applied(&b.positions());
            true
        };
        let mut feed = Feed::new(&pool, 1000, &stop, &progress, &mut emit);
        let stats = Box::new(source).run(&mut feed).unwrap();
        assert_eq!(stats, SourceStats { blank_lines: 0 });
        assert_eq!(got, [(2, b"{\"a\":2}".to_vec()), (3, b"{\"a\":3}".to_vec())]);
        assert_eq!(handle.positions(), [Position { stream, partition: 0, offset: 3 }]);
        let bad = FileSource::open(&path, CsvTypes::default()).unwrap().seek(&[Position {
            stream: path.display().to_string(),
            partition: 2,
            offset: 1,
        }]);
        assert!(bad.unwrap_err().to_string().contains("partition 0"));
        assert!(FileSource::open(&dir.join("missing.jsonl"), CsvTypes::default()).unwrap_err().to_string().contains("missing.jsonl"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
