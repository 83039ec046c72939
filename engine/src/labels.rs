//! Label events: decoding them, and the label input of a replay.
//!
//! A label is one JSON object (or CSV / Parquet row) with the model, the
//! prediction id it belongs to, the ground truth and its event time, at the
//! paths of the `labels` block. Replay reads the labels file on a thread of
//! its own and hands the window stage each model's labels in file order;
//! the window stage merges them with the model's predictions by event time
//! (a label at the same time as a prediction comes after it), so a replay is
//! deterministic and the label delays in the data are honoured.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use crossbeam_channel::{bounded, Receiver};

use crate::config::QualityTask;
use crate::decode::{DecodedEvent, Decoder, SlotValue};
use crate::model::{task_value, Plan};
use crate::pipeline::DeadLetter;
use crate::quality::{LabelFeed, LabelRecord};
use crate::{Error, Result};
use driftwatch_connectors::table::{self as source, CsvTypes, FileFormat};

/// Labels per chunk handed from the reader thread to the window stage.
const CHUNK: usize = 4096;

/// A decoded label, or why it was refused.
pub type LabelItem = std::result::Result<LabelRecord, DeadLetter>;

/// Decodes label events with the plan's label paths.
#[derive(Debug)]
pub struct LabelDecoder {
    decoder: Decoder,
    /// Per model: its quality task (`None`: the model has no quality).
    tasks: Vec<Option<QualityTask>>,
    by_name: std::collections::HashMap<String, usize>,
    default_model: Option<usize>,
    max_event_bytes: usize,
    event: DecodedEvent<'static>,
    /// The model of the last label decoded, when it names one with `quality`.
    last_model: Option<usize>,
}

impl LabelDecoder {
    /// A decoder for `plan`'s labels; `None` when no model has quality.
    pub fn new(plan: &Plan) -> Result<Option<Self>> {
        let Some(labels) = &plan.labels else { return Ok(None) };
        Ok(Some(Self {
            decoder: Decoder::new(&labels.decoder)?,
            tasks: plan.models.iter().map(|m| m.quality.as_ref().map(|q| q.task)).collect(),
            by_name: plan.by_name.clone(),
            default_model: labels.default_model,
            max_event_bytes: labels.decoder.max_event_bytes,
            event: DecodedEvent::new(),
            last_model: None,
        }))
    }

    /// The model (with `quality`) the last label decoded names, refused or
    /// not; `None` when it names none.
    pub fn last_model(&self) -> Option<usize> {
        self.last_model
    }

    /// Decodes one label event (`line`: its line or row number, or offset).
    pub fn decode(&mut self, bytes: &[u8], line: u64) -> LabelItem {
        self.last_model = None;
        let dead = |reason: &'static str, detail: String| DeadLetter {
            line,
            reason,
            detail,
            payload: bytes[..bytes.len().min(self.max_event_bytes)].to_vec(),
            position: None,
            partially_used: false,
            input: Some("labels"),
        };
        if bytes.len() > self.max_event_bytes {
            return Err(dead("oversize", format!("{} bytes, limit {}", bytes.len(), self.max_event_bytes)));
        }
        let mut ev = std::mem::take(&mut self.event).recycle();
        let mut model = None;
        let result = self.decode_event(bytes, &mut ev, &mut model);
        self.last_model = model;
        self.event = ev.recycle();
        result.map_err(|(reason, detail)| dead(reason, detail))
    }

    fn decode_event<'a>(
        &self,
        bytes: &'a [u8],
        ev: &mut DecodedEvent<'a>,
        last_model: &mut Option<usize>,
    ) -> std::result::Result<LabelRecord, (&'static str, String)> {
        self.decoder.decode(bytes, ev).map_err(|e| (e.reason().as_str(), e.to_string()))?;
        let model = match ev.model.as_deref() {
            Some(name) => *self.by_name.get(name).ok_or_else(|| {
                let shown: String = name.chars().take(64).collect();
                ("unknown_model", format!("model {shown:?} is not configured"))
            })?,
            None => self.default_model.ok_or(("missing_model", "the label has no model field".to_owned()))?,
        };
        let task = self.tasks[model].ok_or_else(|| ("unknown_model", "the label's model has no `quality` configured".to_owned()))?;
        *last_model = Some(model);
        let id = ev.prediction_id.as_deref().ok_or(("missing_prediction_id", "the label has no prediction id".to_owned()))?;
        let ts = ev.timestamp_ms.ok_or(("missing_timestamp", "the label has no event time".to_owned()))?;
        let label = task_value(task, &ev.values[0]).ok_or_else(|| {
            let what = match task {
                QualityTask::BinaryClassification => "a binary class (0/1, 0.0/1.0, false/true)",
                QualityTask::Regression => "a number",
            };
            let found = match &ev.values[0] {
                SlotValue::Missing => "missing".to_owned(),
                SlotValue::Null => "null".to_owned(),
                SlotValue::Number(x) => format!("{x}"),
                SlotValue::Bool(b) => format!("{b}"),
                SlotValue::Text(t) => format!("{:?}", t.chars().take(32).collect::<String>()),
                SlotValue::Other => "an array or object".to_owned(),
            };
            ("invalid_label", format!("the label is {found}, expected {what}"))
        })?;
        Ok(LabelRecord { model, id: id.into(), label, ts })
    }
}

/// Reads past the rest of a line (through its `\n`).
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// How CSV label files are typed: the label and timestamp as numbers cell
/// by cell, the model and the prediction id as text.
fn label_csv_types(plan: &Plan) -> CsvTypes {
    let mut types = CsvTypes::default();
    if let Some(l) = &plan.labels {
        let flat = |p: &Option<Vec<String>>| match p.as_deref() {
            Some([key]) => Some(key.clone()),
            _ => None,
        };
        types.numeric.extend(flat(&l.decoder.slots.first().cloned()));
        types.numeric.extend(flat(&l.decoder.timestamp));
        types.text.extend(flat(&l.decoder.model));
        types.text.extend(flat(&l.decoder.prediction_id));
    }
    types
}

/// The labels of a replay: read and decoded on a thread, handed out per
/// model in file order.
#[derive(Debug)]
pub struct ReplayLabels {
    rx: Option<Receiver<Vec<LabelItem>>>,
    queues: Vec<VecDeque<LabelRecord>>,
    /// Refused labels, in file order, for the caller to write out.
    pub dead: Vec<DeadLetter>,
    /// Label events read.
    pub read: u64,
    reader: Option<std::thread::JoinHandle<Result<()>>>,
}

impl ReplayLabels {
    /// Starts reading `path` (JSONL, CSV or Parquet).
    pub fn start(plan: &Plan, path: &Path) -> Result<Self> {
        let mut decoder =
            LabelDecoder::new(plan)?.ok_or_else(|| Error::Usage("--labels given, but no model has `quality` configured".into()))?;
        let format = FileFormat::from_path(path)?;
        // A wrong path fails now, not after the predictions were replayed.
        std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let types = label_csv_types(plan);
        let path: PathBuf = path.to_owned();
        let (tx, rx) = bounded::<Vec<LabelItem>>(16);
        let reader = std::thread::Builder::new()
            .name("driftwatch-labels".into())
            .spawn(move || -> Result<()> {
                let mut chunk = Vec::with_capacity(CHUNK);
                // False once the window stage stopped taking labels: nothing more to read.
                let send = |item: LabelItem, chunk: &mut Vec<LabelItem>| {
                    chunk.push(item);
                    chunk.len() < CHUNK || tx.send(std::mem::replace(chunk, Vec::with_capacity(CHUNK))).is_ok()
                };
                match format {
                    FileFormat::Json => {
                        let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
                        let mut reader = std::io::BufReader::with_capacity(1 << 16, file);
                        // A line longer than the limit keeps its first bytes (an
                        // `oversize` dead letter) and the rest is read past unkept.
                        let limit = decoder.max_event_bytes as u64 + 1;
                        let mut line = Vec::new();
                        let mut number = 0u64;
                        loop {
                            line.clear();
                            let n = (&mut reader).take(limit).read_until(b'\n', &mut line).map_err(|e| Error::io(&path, e))?;
                            if n == 0 {
                                break;
                            }
                            if n as u64 == limit && line.last() != Some(&b'\n') {
                                skip_line(&mut reader).map_err(|e| Error::io(&path, e))?;
                            }
                            number += 1;
                            if line.iter().all(u8::is_ascii_whitespace) {
                                continue;
                            }
                            let item = decoder.decode(line.trim_ascii_end(), number);
                            if !send(item, &mut chunk) {
                                return Ok(());
                            }
                        }
                    }
                    FileFormat::Csv | FileFormat::Parquet => {
                        let mut number = 0u64;
                        let mut stopped = false;
                        let read = source::for_each_json_row_typed(&path, format, &types, |row: &[u8]| -> Result<()> {
                            number += 1;
                            let item = decoder.decode(row, number);
                            if send(item, &mut chunk) {
                                Ok(())
                            } else {
                                stopped = true;
                                Err(Error::Internal("the window stage stopped taking labels".into()))
                            }
                        });
                        match read {
                            Err(_) if stopped => return Ok(()),
                            r => r.map(|_rows| ())?,
                        }
                    }
                }
                if !chunk.is_empty() {
                    let _ = tx.send(chunk);
                }
                Ok(())
            })
            .map_err(|e| Error::Internal(format!("cannot start the label reader thread: {e}")))?;
        Ok(Self { rx: Some(rx), queues: vec![VecDeque::new(); plan.models.len()], dead: Vec::new(), read: 0, reader: Some(reader) })
    }

    /// Waits for the reader thread and reports its error, if any.
    pub fn finish(&mut self) -> Result<()> {
        self.rx = None;
        match self.reader.take() {
            Some(r) => r.join().map_err(|_| Error::Internal("label reader thread panicked".into()))?,
            None => Ok(()),
        }
    }
}

impl LabelFeed for ReplayLabels {
    fn next_before(&mut self, model: usize, ts: Option<i64>) -> Result<Option<LabelRecord>> {
        loop {
            if let Some(front) = self.queues[model].front() {
                return Ok(if ts.is_none_or(|t| front.ts < t) { self.queues[model].pop_front() } else { None });
            }
            let Some(rx) = &self.rx else { return Ok(None) };
            match rx.recv() {
                Ok(chunk) => {
                    for item in chunk {
                        self.read += 1;
                        match item {
                            Ok(l) => self.queues[l.model].push_back(l),
                            Err(d) => self.dead.push(d),
                        }
                    }
                }
                Err(_) => self.rx = None,
            }
        }
    }
}
