//! Tabular files (Parquet, CSV, newline-delimited JSON) read through DataFusion.
//!
//! Two uses:
//!
//! * **Reference profiles**: [`read_columns`] runs an optional SQL query over the
//!   file (registered as the table `reference`) and returns the requested columns
//!   as plain vectors, numeric columns as `f64` and categorical ones as text.
//!   [`check_columns`] is the cheap variant used by `driftwatch validate`: it plans
//!   the query and checks the output schema without reading the data.
//! * **Replay input**: [`for_each_json_row`] walks a CSV or Parquet file in file
//!   order and hands each row to the caller as one JSON object, so replayed
//!   events go through the same decoder as JSONL input.
//!
//! ```text
//! file ──▶ DataFusion (SQL, projection) ──▶ Arrow batches ──▶ cast ──▶ TableColumns
//! file ──▶ Parquet reader ──▶ Arrow JSON writer ──▶ one JSON object per row
//! file ──▶ Arrow CSV reader (every column as text) ──▶ each cell typed ──▶ one JSON object per row
//! ```
//!
//! All functions are synchronous; DataFusion runs on a private current-thread
//! tokio runtime, so they must not be called from inside an async context.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::future::Future;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::error::DataFusionError;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::errors::ParquetError;
use datafusion::prelude::{
    Column, CsvReadOptions, DataFrame, Expr, JsonReadOptions, ParquetReadOptions, SQLOptions, SessionConfig, SessionContext,
};
use serde::{Deserialize, Serialize};

/// Numbers name a category only below this magnitude (2^53): there every
/// integer has its own `f64`; from 2^53 on, neighbours share one (2^53 + 1
/// reads as 2^53).
pub const MAX_INTEGER_CATEGORY: f64 = 9_007_199_254_740_992.0;

/// The category a number names, the same for events and references: an
/// integral value of magnitude below 2^53 is its decimal text (`7`, `7.0`
/// and `70e-1` are all `"7"`, `-0` is `"0"`); any other number (`1.5`, `1e300`,
/// infinities, NaN) names none, and the caller refuses it.
pub fn integer_category(x: f64) -> Option<String> {
    if x.fract() == 0.0 && x.abs() < MAX_INTEGER_CATEGORY {
        // Exact: an integer below 2^53 converts to i64 without rounding.
        Some((x as i64).to_string())
    } else {
        None
    }
}

/// Name of the table the reference file is registered as in SQL queries.
pub const TABLE_NAME: &str = "reference";

/// Query used when a [`TableSource`] has no `sql`.
pub const DEFAULT_SQL: &str = "SELECT * FROM reference";

/// Rows DataFusion reads to infer a CSV/JSON schema in [`check_columns`]
/// (DataFusion's own default). [`read_columns`] infers from the whole file so
/// that a column whose first thousand values are integers and later ones
/// decimals does not fail half-way through the read.
const CHECK_INFER_MAX_RECORDS: usize = 1000;

/// Errors reading tabular files.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The file does not exist.
    #[error("file {} not found", .path.display())]
    NotFound {
        /// The path as given.
        path: PathBuf,
    },

    /// The path exists but is not a regular file (a directory, for instance).
    #[error("{} is not a regular file", .path.display())]
    NotAFile {
        /// The path as given.
        path: PathBuf,
    },

    /// The file exists but could not be opened or inspected.
    #[error("cannot access file {}", .path.display())]
    Access {
        /// The path as given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The format could not be inferred from the file name.
    #[error(
        "cannot infer the format of {} from its extension {}; expected .parquet, .csv, \
         .jsonl, .ndjson or .json, or set the format explicitly",
        .path.display(),
        .extension.as_deref().map_or_else(|| "(none)".to_owned(), |e| format!("`.{e}`"))
    )]
    UnsupportedExtension {
        /// The path as given.
        path: PathBuf,
        /// The extension found, if any.
        extension: Option<String>,
    },

    /// The SQL query could not be parsed or planned.
    #[error("invalid SQL over {format} file {}: `{sql}`", .path.display())]
    Sql {
        /// The file the query runs against.
        path: PathBuf,
        /// The file's format.
        format: FileFormat,
        /// The query.
        sql: String,
        /// DataFusion's parse or planning error.
        #[source]
        source: Box<DataFusionError>,
    },

    /// A requested column is not in the (post-SQL) schema.
    #[error(
        "column `{column}` not found in {format} file {}; available columns: {}",
        .path.display(),
        .available.join(", ")
    )]
    ColumnMissing {
        /// The file.
        path: PathBuf,
        /// The file's format.
        format: FileFormat,
        /// The missing column.
        column: String,
        /// Column names present after the SQL query.
        available: Vec<String>,
    },

    /// A requested column has a type that cannot serve the requested kind.
    #[error(
        "column `{column}` in {format} file {} has type {found}, expected {expected}",
        .path.display()
    )]
    IncompatibleType {
        /// The file.
        path: PathBuf,
        /// The file's format.
        format: FileFormat,
        /// The column.
        column: String,
        /// What the column was requested as.
        expected: ColumnKind,
        /// The column's Arrow type after the SQL query.
        found: DataType,
    },

    /// A CSV column requested as numeric holds a cell that is not a number
    /// (so type inference over the whole file read the column as text).
    #[error(
        "column `{column}` in csv file {} is requested as numeric, but row {row} (after the header) \
         holds {value:?}, which is not a number; fix or empty that cell",
        .path.display()
    )]
    NotANumber {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// 1-based row of the first such cell, the header not counted.
        row: u64,
        /// The cell (at most 40 characters of it).
        value: String,
    },

    /// A categorical column of floats or decimals holds a value that is not
    /// an integer of at most 2^53 (the rule events follow too).
    #[error(
        "column `{column}` of {} is requested as categorical, but its row {row} holds {value}, \
         which is not an integer of at most 2^53; categories are strings, booleans and integers",
        .path.display()
    )]
    NotACategory {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// 1-based row of the query's result (for a plain file: the row after the header).
        row: u64,
        /// The value.
        value: f64,
    },

    /// A column passed the type check but converting its values failed.
    #[error("cannot convert column `{column}` of {} to {kind} values", .path.display())]
    Convert {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// The requested kind.
        kind: ColumnKind,
        /// Arrow's cast error.
        #[source]
        source: ArrowError,
    },

    /// Reading or decoding the file (or executing the query over it) failed.
    #[error("failed to read {format} file {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The file's format.
        format: FileFormat,
        /// The underlying error (I/O, Arrow, Parquet and DataFusion errors all
        /// convert losslessly into a `DataFusionError`).
        #[source]
        source: Box<DataFusionError>,
    },

    /// Writing a Parquet file failed.
    #[error("failed to write parquet file {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The Parquet (or I/O) error.
        #[source]
        source: ParquetError,
    },

    /// Columns given to [`batch_from_columns`] do not form a valid batch
    /// (different lengths, duplicate names).
    #[error("invalid record batch")]
    InvalidBatch {
        /// Arrow's error.
        #[source]
        source: ArrowError,
    },

    /// The internal tokio runtime could not be created.
    #[error("cannot start the runtime for reading tabular files")]
    Runtime {
        /// The I/O error from tokio.
        #[source]
        source: io::Error,
    },

    /// A broken invariant: a bug in Driftwatch, not a problem with the input.
    #[error("internal error reading {}: {what}", .path.display())]
    Internal {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        what: &'static str,
    },
}

/// Result type of this module.
pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// A tabular file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma-separated values with a header row.
    Csv,
    /// Newline-delimited JSON: one object per line.
    #[serde(alias = "jsonl", alias = "ndjson")]
    Json,
}

impl FileFormat {
    /// Infers the format from the file extension (case-insensitive):
    /// `.parquet`, `.csv`, and `.jsonl`/`.ndjson`/`.json` (newline-delimited).
    pub fn from_path(path: &Path) -> Result<Self> {
        let extension = path.extension().map(|e| e.to_string_lossy().into_owned());
        match extension.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("parquet") => Ok(Self::Parquet),
            Some("csv") => Ok(Self::Csv),
            Some("jsonl" | "ndjson" | "json") => Ok(Self::Json),
            _ => Err(SourceError::UnsupportedExtension { path: path.to_owned(), extension }),
        }
    }

    /// Lower-case name, as used in messages and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for FileFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file to read, with an optional format override and SQL query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSource {
    /// The file.
    pub path: PathBuf,
    /// The format; inferred from the extension when absent.
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// A query over the table `reference`; [`DEFAULT_SQL`] when absent.
    #[serde(default)]
    pub sql: Option<String>,
}

impl TableSource {
    /// A source reading the whole file, format inferred from its extension.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), format: None, sql: None }
    }

    /// The explicit format, or the one inferred from the extension.
    pub fn resolved_format(&self) -> Result<FileFormat> {
        match self.format {
            Some(format) => Ok(format),
            None => FileFormat::from_path(&self.path),
        }
    }

    /// The query that will run: `sql`, or [`DEFAULT_SQL`].
    pub fn query(&self) -> &str {
        self.sql.as_deref().unwrap_or(DEFAULT_SQL)
    }

    fn describe(&self, format: FileFormat) -> String {
        match &self.sql {
            Some(sql) => format!("{format} file {}, sql: {sql}", self.path.display()),
            None => format!("{format} file {}", self.path.display()),
        }
    }
}

/// How a column will be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    /// Integer, float or decimal values, read as `f64`.
    Numeric,
    /// String, integer or boolean values, read as text.
    Categorical,
}

impl ColumnKind {
    /// Whether a column of Arrow type `data_type` can be read as this kind.
    pub fn accepts(self, data_type: &DataType) -> bool {
        match data_type {
            // An all-null column (JSON inference gives these) is empty either way.
            DataType::Null => true,
            DataType::Dictionary(_, values) => self.accepts(values),
            _ => match self {
                Self::Numeric => data_type.is_numeric(),
                // Floats and decimals too: each value must be integral
                // (checked as it is read, like a number in an event).
                Self::Categorical => {
                    data_type.is_numeric()
                        || matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Boolean)
                }
            },
        }
    }
}

impl fmt::Display for ColumnKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Numeric => "numeric (an integer, float or decimal column)",
            Self::Categorical => "categorical (a string, integer or boolean column)",
        })
    }
}

/// One column to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRequest {
    /// Column name after the SQL query (case-sensitive).
    pub name: String,
    /// How to read it.
    pub kind: ColumnKind,
}

impl ColumnRequest {
    /// A numeric column.
    pub fn numeric(name: impl Into<String>) -> Self {
        Self { name: name.into(), kind: ColumnKind::Numeric }
    }

    /// A categorical column.
    pub fn categorical(name: impl Into<String>) -> Self {
        Self { name: name.into(), kind: ColumnKind::Categorical }
    }
}

/// The values of one column, nulls as `None`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnData {
    /// Numeric values; NaN in the file stays NaN.
    Numeric(Vec<Option<f64>>),
    /// Categorical values rendered as text (`"42"`, `"true"`).
    Categorical(Vec<Option<String>>),
}

impl ColumnData {
    fn empty(kind: ColumnKind) -> Self {
        match kind {
            ColumnKind::Numeric => Self::Numeric(Vec::new()),
            ColumnKind::Categorical => Self::Categorical(Vec::new()),
        }
    }

    /// Number of values, nulls included.
    pub fn len(&self) -> usize {
        match self {
            Self::Numeric(values) => values.len(),
            Self::Categorical(values) => values.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind of this column.
    pub fn kind(&self) -> ColumnKind {
        match self {
            Self::Numeric(_) => ColumnKind::Numeric,
            Self::Categorical(_) => ColumnKind::Categorical,
        }
    }

    /// Converts into an Arrow array (`Float64` or `Utf8`).
    pub fn into_array(self) -> ArrayRef {
        match self {
            Self::Numeric(values) => Arc::new(Float64Array::from(values)),
            Self::Categorical(values) => Arc::new(StringArray::from(values)),
        }
    }
}

/// Columns read by [`read_columns`].
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumns {
    /// Rows returned by the query.
    pub rows: u64,
    /// One entry per requested column, in request order.
    pub columns: Vec<ColumnData>,
    /// Human-readable origin, e.g. `parquet file data/reference.parquet, sql: SELECT …`.
    pub description: String,
}

/// Reads the requested columns of `source` (after its SQL query), in row order.
///
/// Numeric columns are cast to `f64` with Arrow's cast kernel; categorical
/// columns are rendered as text. The whole result is held in memory.
pub fn read_columns(source: &TableSource, request: &[ColumnRequest]) -> Result<TableColumns> {
    check_file(&source.path)?;
    let format = source.resolved_format()?;
    let (rows, batches, positions) = block_on(query_columns(source, format, request))?.map_err(|e| explain_csv_type(e, format))?;

    let mut columns: Vec<ColumnData> = request.iter().map(|r| ColumnData::empty(r.kind)).collect();
    for batch in batches {
        for ((column, request), &position) in columns.iter_mut().zip(request).zip(&positions) {
            append(column, batch.column(position), &source.path, &request.name)?;
        }
    }
    Ok(TableColumns { rows, columns, description: source.describe(format) })
}

/// Checks, without reading the data, that the file exists and that the schema
/// after the SQL query has every requested column with a compatible type.
///
/// CSV and JSON schemas are inferred from the first rows only, so a file can
/// pass this check and still fail in [`read_columns`] if later rows disagree.
pub fn check_columns(source: &TableSource, request: &[ColumnRequest]) -> Result<()> {
    check_file(&source.path)?;
    let format = source.resolved_format()?;
    block_on(check_schema(source, format, request))?.map_err(|e| explain_csv_type(e, format))
}

/// A CSV column requested as numeric that type inference read as text holds
/// a cell that is not a number: names the first one (row and value) instead
/// of only the column's type, when the column is in the file itself (not
/// made by the SQL query).
fn explain_csv_type(error: SourceError, format: FileFormat) -> SourceError {
    let SourceError::IncompatibleType { path, column, expected: ColumnKind::Numeric, found, .. } = &error else {
        return error;
    };
    if format != FileFormat::Csv || !matches!(found, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
        return error;
    }
    match first_non_number(path, column) {
        Some((row, value)) => {
            SourceError::NotANumber { path: path.clone(), column: column.clone(), row, value: value.chars().take(40).collect() }
        }
        None => error,
    }
}

/// The first non-empty cell of CSV column `column` that is not a number, if
/// the file has that column and other cells of it are numbers (a column of
/// text is just of the wrong type; any read error: `None`, the caller keeps
/// its own error).
fn first_non_number(path: &Path, column: &str) -> Option<(u64, String)> {
    use datafusion::arrow::csv::reader::{Format, ReaderBuilder};
    let format = Format::default().with_header(true);
    let (schema, _) = format.infer_schema(File::open(path).ok()?, Some(0)).ok()?;
    let index = schema.fields().iter().position(|f| f.name() == column)?;
    let reader = ReaderBuilder::new(Arc::new(text_schema(&schema)))
        .with_format(format)
        .with_projection(vec![index])
        .build(File::open(path).ok()?)
        .ok()?;
    let (mut row, mut numbers, mut first) = (0u64, false, None);
    for batch in reader {
        let batch = batch.ok()?;
        for cell in batch.column(0).as_string_opt::<i32>()?.iter() {
            row += 1;
            if let Some(cell) = cell.filter(|c| !c.is_empty()) {
                if csv_number(cell).is_some() {
                    numbers = true;
                } else if first.is_none() {
                    first = Some((row, cell.to_owned()));
                }
            }
            if numbers && first.is_some() {
                return first;
            }
        }
    }
    None
}

/// `schema` with every field as nullable `Utf8`.
fn text_schema(schema: &Schema) -> Schema {
    Schema::new(schema.fields().iter().map(|f| Field::new(f.name(), DataType::Utf8, true)).collect::<Vec<_>>())
}

/// How a replay types the cells of CSV columns. A column in neither set keeps
/// the type Arrow infers from the whole file (numbers, booleans, else text),
/// as the reference read through DataFusion does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvTypes {
    /// Columns read cell by cell as numbers: a cell that is a finite number
    /// becomes a JSON number, any other a JSON string (so only its own row's
    /// value is refused, as a wrong type, whatever the other rows hold).
    pub numeric: HashSet<String>,
    /// Columns read as text, whatever their cells look like.
    pub text: HashSet<String>,
}

/// How one CSV column's cells are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CellType {
    Number,
    Bool,
    Text,
}

/// A CSV cell as a number: an integer (`-?digits`), or a decimal the
/// standard library parses (`1.5`, `.5`, `5.`, `1e-3`, `+2`) that is finite;
/// `None` for anything else (`oops`, `NaN`, `inf`, `1e400`, ` 1`).
fn csv_number(cell: &str) -> Option<CsvNumber> {
    let bytes = cell.as_bytes();
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        if let Ok(n) = cell.parse::<i64>() {
            return Some(CsvNumber::Integer(n));
        }
    }
    let plain = bytes.iter().all(|b| matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'));
    if !plain || !bytes.iter().any(u8::is_ascii_digit) {
        return None;
    }
    cell.parse::<f64>().ok().filter(|x| x.is_finite()).map(CsvNumber::Float)
}

/// A CSV cell that is a number.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CsvNumber {
    /// Exact, so that integer ids of any size within `i64` stay exact.
    Integer(i64),
    Float(f64),
}

/// Writes one CSV row as a JSON object (empty cells omitted) into `out`.
fn write_csv_row(out: &mut Vec<u8>, keys: &[Vec<u8>], types: &[CellType], cells: &[Option<&str>]) -> Result<(), serde_json::Error> {
    out.push(b'{');
    let mut first = true;
    for ((key, &ty), cell) in keys.iter().zip(types).zip(cells) {
        let Some(cell) = cell.filter(|c| !c.is_empty()) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(key);
        out.push(b':');
        match ty {
            CellType::Number => match csv_number(cell) {
                Some(CsvNumber::Integer(n)) => serde_json::to_writer(&mut *out, &n)?,
                Some(CsvNumber::Float(x)) => serde_json::to_writer(&mut *out, &x)?,
                None => serde_json::to_writer(&mut *out, cell)?,
            },
            CellType::Bool if cell.eq_ignore_ascii_case("true") => out.extend_from_slice(b"true"),
            CellType::Bool if cell.eq_ignore_ascii_case("false") => out.extend_from_slice(b"false"),
            CellType::Bool | CellType::Text => serde_json::to_writer(&mut *out, cell)?,
        }
    }
    out.push(b'}');
    Ok(())
}

/// Calls `f` with each row of a CSV or Parquet file, in file order, serialized
/// as one JSON object (column name → value; nulls omitted, NaN and infinities
/// written as `null`). Stops at the first error `f` returns.
///
/// For [`FileFormat::Json`] each non-blank line is passed through unchanged.
///
/// CSV column types are inferred from the whole file (one extra pass), as
/// for a reference; see [`for_each_json_row_typed`] to type columns by the
/// configuration instead.
pub fn for_each_json_row<E, F>(path: &Path, format: FileFormat, f: F) -> Result<(), E>
where
    F: FnMut(&[u8]) -> Result<(), E>,
    E: From<SourceError>,
{
    for_each_json_row_typed(path, format, &CsvTypes::default(), f).map(drop)
}

/// [`for_each_json_row`], with the CSV columns of `types` typed as it says
/// rather than by inference: every cell is read as text, then written as a
/// JSON number, boolean or string by its column's type, so that one bad cell
/// (`oops` in a numeric column) is one row's wrong-typed value, not a whole
/// column read as text.
///
/// Returns the number of blank lines skipped: empty CSV lines (`\n` or
/// `\r\n` outside quotes; the CSV reader skips them) or blank and
/// whitespace-only JSONL lines; Parquet has none.
pub fn for_each_json_row_typed<E, F>(path: &Path, format: FileFormat, types: &CsvTypes, mut f: F) -> Result<u64, E>
where
    F: FnMut(&[u8]) -> Result<(), E>,
    E: From<SourceError>,
{
    check_file(path)?;
    let read_error = |error: DataFusionError| SourceError::Read { path: path.to_owned(), format, source: Box::new(error) };
    let open = || File::open(path).map_err(|source| SourceError::Access { path: path.to_owned(), source });
    match format {
        FileFormat::Json => {
            let mut reader = BufReader::new(open()?);
            let mut line = Vec::new();
            let mut blank = 0;
            loop {
                line.clear();
                let read = reader.read_until(b'\n', &mut line).map_err(|error| read_error(error.into()))?;
                if read == 0 {
                    return Ok(blank);
                }
                let row = line.trim_ascii();
                if row.is_empty() {
                    blank += 1;
                } else {
                    f(row)?;
                }
            }
        }
        FileFormat::Csv => {
            use datafusion::arrow::csv::reader::{Format, ReaderBuilder};
            let csv_format = Format::default().with_header(true);
            let mut counted = BlankLines { inner: open()?, blank: 0, line_start: true, quoted: false };
            let (schema, _) = csv_format.infer_schema(&mut counted, None).map_err(|error| read_error(error.into()))?;
            let cell_types: Vec<CellType> = schema
                .fields()
                .iter()
                .map(|field| {
                    let name = field.name();
                    if types.text.contains(name) {
                        CellType::Text
                    } else if types.numeric.contains(name) || field.data_type().is_numeric() {
                        CellType::Number
                    } else if field.data_type() == &DataType::Boolean {
                        CellType::Bool
                    } else {
                        CellType::Text
                    }
                })
                .collect();
            let keys: Vec<Vec<u8>> = schema
                .fields()
                .iter()
                .map(|field| serde_json::to_vec(field.name()))
                .collect::<Result<_, _>>()
                .map_err(|error| read_error(DataFusionError::External(Box::new(error))))?;
            let reader = ReaderBuilder::new(Arc::new(text_schema(&schema)))
                .with_format(csv_format)
                .build(open()?)
                .map_err(|error| read_error(error.into()))?;
            let mut row = Vec::with_capacity(1024);
            for batch in reader {
                let batch = batch.map_err(|error| read_error(error.into()))?;
                let columns = batch
                    .columns()
                    .iter()
                    .map(|c| c.as_string_opt::<i32>())
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| SourceError::Internal { path: path.to_owned(), what: "a CSV column read as text is not Utf8" })?;
                let mut cells: Vec<Option<&str>> = Vec::with_capacity(keys.len());
                for i in 0..batch.num_rows() {
                    cells.clear();
                    cells.extend(columns.iter().map(|c| c.is_valid(i).then(|| c.value(i))));
                    row.clear();
                    write_csv_row(&mut row, &keys, &cell_types, &cells)
                        .map_err(|error| read_error(DataFusionError::External(Box::new(error))))?;
                    f(&row)?;
                }
            }
            Ok(counted.blank)
        }
        FileFormat::Parquet => {
            let reader = ParquetRecordBatchReaderBuilder::try_new(open()?)
                .and_then(|builder| builder.build())
                .map_err(|error| read_error(error.into()))?;
            emit_json_rows(reader, read_error, f).map(|()| 0)
        }
    }
}

/// Counts the empty lines of a CSV file as it is read: a `\n` (after an
/// optional `\r`) right after another, or at the start, outside quotes.
/// The CSV reader skips exactly these.
struct BlankLines<R> {
    inner: R,
    blank: u64,
    /// Nothing but `\r` since the last line break (or the start).
    line_start: bool,
    /// Inside a quoted field (a doubled quote leaves and re-enters it).
    quoted: bool,
}

impl<R: io::Read> io::Read for BlankLines<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            match (self.quoted, b) {
                (true, b'"') => self.quoted = false,
                (true, _) => {}
                (false, b'\n') => {
                    self.blank += u64::from(self.line_start);
                    self.line_start = true;
                }
                (false, b'\r') => {}
                (false, b'"') => {
                    self.quoted = true;
                    self.line_start = false;
                }
                (false, _) => self.line_start = false,
            }
        }
        Ok(n)
    }
}

/// Builds a record batch of `Float64` (numeric) and `Utf8` (categorical)
/// columns, e.g. for [`write_parquet`].
pub fn batch_from_columns(columns: Vec<(String, ColumnData)>) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, data)| {
            let data_type = match data.kind() {
                ColumnKind::Numeric => DataType::Float64,
                ColumnKind::Categorical => DataType::Utf8,
            };
            Field::new(name, data_type, true)
        })
        .collect();
    let arrays = columns.into_iter().map(|(_, data)| data.into_array()).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).map_err(|source| SourceError::InvalidBatch { source })
}

/// Writes `batch` to a new Parquet file at `path` (replacing any existing file).
pub fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let write_error = |source: ParquetError| SourceError::Write { path: path.to_owned(), source };
    let file = File::create(path).map_err(|error| write_error(error.into()))?;
    let mut writer = ArrowWriter::try_new(file, batch.schema(), None).map_err(write_error)?;
    writer.write(batch).map_err(write_error)?;
    writer.close().map_err(write_error)?;
    Ok(())
}

fn check_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) if metadata.is_file() => Ok(()),
        Ok(_) => Err(SourceError::NotAFile { path: path.to_owned() }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Err(SourceError::NotFound { path: path.to_owned() }),
        Err(source) => Err(SourceError::Access { path: path.to_owned(), source }),
    }
}

/// Runs `future` to completion on a private current-thread runtime: callers
/// are synchronous, and one query over one file gains little from more threads.
fn block_on<F: Future>(future: F) -> Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread().build().map_err(|source| SourceError::Runtime { source })?;
    Ok(runtime.block_on(future))
}

fn context() -> SessionContext {
    // One partition: the file is scanned as a single stream, so rows come out
    // in file order (reference profiles and replays rely on it).
    SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1))
}

async fn register(ctx: &SessionContext, path: &Path, format: FileFormat, infer_max_records: usize) -> Result<(), DataFusionError> {
    let table_path = path
        .to_str()
        .ok_or_else(|| DataFusionError::IoError(io::Error::new(io::ErrorKind::InvalidInput, "the path is not valid UTF-8")))?;
    // An empty extension filter: the format is already decided, and DataFusion
    // would otherwise reject e.g. `.jsonl` for JSON or a CSV named `.txt`.
    match format {
        FileFormat::Parquet => ctx.register_parquet(TABLE_NAME, table_path, ParquetReadOptions::new().file_extension("")).await,
        FileFormat::Csv => {
            let options = CsvReadOptions::new().file_extension("").schema_infer_max_records(infer_max_records);
            ctx.register_csv(TABLE_NAME, table_path, options).await
        }
        FileFormat::Json => {
            let options = JsonReadOptions::default().file_extension("").schema_infer_max_records(infer_max_records);
            ctx.register_json(TABLE_NAME, table_path, options).await
        }
    }
}

/// Runs the query and collects the requested columns: the row count, the
/// batches, and for each request the index of its column in the batches
/// (requests naming the same column share one projected column).
async fn query_columns(source: &TableSource, format: FileFormat, request: &[ColumnRequest]) -> Result<(u64, Vec<RecordBatch>, Vec<usize>)> {
    let read_error = |error: DataFusionError| SourceError::Read { path: source.path.clone(), format, source: Box::new(error) };
    let ctx = context();
    register(&ctx, &source.path, format, usize::MAX).await.map_err(read_error)?;
    let df = plan(&ctx, source, format).await?;
    let Projection { exprs, positions } = resolve(&df, source, format, request)?;
    if exprs.is_empty() {
        let rows = df.count().await.map_err(read_error)?;
        return Ok((rows as u64, Vec::new(), positions));
    }
    let batches = df.select(exprs).map_err(read_error)?.collect().await.map_err(read_error)?;
    let rows = batches.iter().map(|batch| batch.num_rows() as u64).sum();
    Ok((rows, batches, positions))
}

async fn check_schema(source: &TableSource, format: FileFormat, request: &[ColumnRequest]) -> Result<()> {
    let ctx = context();
    register(&ctx, &source.path, format, CHECK_INFER_MAX_RECORDS).await.map_err(|error| SourceError::Read {
        path: source.path.clone(),
        format,
        source: Box::new(error),
    })?;
    let df = plan(&ctx, source, format).await?;
    resolve(&df, source, format, request).map(drop)
}

/// Parses and plans the source's query; only read-only queries are allowed.
async fn plan(ctx: &SessionContext, source: &TableSource, format: FileFormat) -> Result<DataFrame> {
    let options = SQLOptions::new().with_allow_ddl(false).with_allow_dml(false).with_allow_statements(false);
    let sql = source.query();
    ctx.sql_with_options(sql, options).await.map_err(|error| SourceError::Sql {
        path: source.path.clone(),
        format,
        sql: sql.to_owned(),
        source: Box::new(error),
    })
}

/// The columns to project and, for each request, its position among them.
#[derive(Debug)]
struct Projection {
    exprs: Vec<Expr>,
    positions: Vec<usize>,
}

fn resolve(df: &DataFrame, source: &TableSource, format: FileFormat, request: &[ColumnRequest]) -> Result<Projection> {
    let schema = df.schema();
    let mut selected: Vec<usize> = Vec::new();
    let mut positions = Vec::with_capacity(request.len());
    for column in request {
        let Some(index) = schema.fields().iter().position(|f| f.name() == &column.name) else {
            return Err(SourceError::ColumnMissing {
                path: source.path.clone(),
                format,
                column: column.name.clone(),
                available: schema.fields().iter().map(|f| f.name().clone()).collect(),
            });
        };
        let data_type = schema.field(index).data_type();
        if !column.kind.accepts(data_type) {
            return Err(SourceError::IncompatibleType {
                path: source.path.clone(),
                format,
                column: column.name.clone(),
                expected: column.kind,
                found: data_type.clone(),
            });
        }
        let position = match selected.iter().position(|&s| s == index) {
            Some(position) => position,
            None => {
                selected.push(index);
                selected.len() - 1
            }
        };
        positions.push(position);
    }
    let exprs = selected.into_iter().map(|index| Expr::Column(Column::from(schema.qualified_field(index)))).collect();
    Ok(Projection { exprs, positions })
}

/// Float and decimal types (a dictionary by its values).
fn is_fractional(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, values) => is_fractional(values),
        _ => data_type.is_floating() || matches!(data_type, DataType::Decimal128(..) | DataType::Decimal256(..)),
    }
}

fn append(out: &mut ColumnData, array: &ArrayRef, path: &Path, column: &str) -> Result<()> {
    let convert_error =
        |kind: ColumnKind, source: ArrowError| SourceError::Convert { path: path.to_owned(), column: column.to_owned(), kind, source };
    let internal = |what: &'static str| SourceError::Internal { path: path.to_owned(), what };
    match out {
        ColumnData::Numeric(values) => {
            let floats = cast(array, &DataType::Float64).map_err(|source| convert_error(ColumnKind::Numeric, source))?;
            let floats = floats.as_primitive_opt::<Float64Type>().ok_or_else(|| internal("cast to Float64 returned another type"))?;
            values.extend(floats.iter());
        }
        ColumnData::Categorical(values) if is_fractional(array.data_type()) => {
            let floats = cast(array, &DataType::Float64).map_err(|source| convert_error(ColumnKind::Categorical, source))?;
            let floats = floats.as_primitive_opt::<Float64Type>().ok_or_else(|| internal("cast to Float64 returned another type"))?;
            for value in floats.iter() {
                let category = match value {
                    // Missing, as `null` is (pandas writes missing integers as NaN).
                    None => None,
                    Some(x) if x.is_nan() => None,
                    Some(x) => Some(integer_category(x).ok_or_else(|| SourceError::NotACategory {
                        path: path.to_owned(),
                        column: column.to_owned(),
                        row: values.len() as u64 + 1,
                        value: x,
                    })?),
                };
                values.push(category);
            }
        }
        ColumnData::Categorical(values) => {
            let strings = cast(array, &DataType::Utf8).map_err(|source| convert_error(ColumnKind::Categorical, source))?;
            let strings = strings.as_string_opt::<i32>().ok_or_else(|| internal("cast to Utf8 returned another type"))?;
            values.extend(strings.iter().map(|value| value.map(str::to_owned)));
        }
    }
    Ok(())
}

fn emit_json_rows<E, F>(
    batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
    read_error: impl Fn(DataFusionError) -> SourceError,
    mut f: F,
) -> Result<(), E>
where
    F: FnMut(&[u8]) -> Result<(), E>,
    E: From<SourceError>,
{
    // One buffer for the whole file: each batch is written as JSON lines, handed
    // out line by line, then cleared. JSON escapes newlines inside strings, so
    // splitting on b'\n' splits exactly at row boundaries.
    let mut writer = LineDelimitedWriter::new(Vec::with_capacity(64 * 1024));
    for batch in batches {
        let batch = batch.map_err(|error| read_error(error.into()))?;
        writer.write(&batch).map_err(|error| read_error(error.into()))?;
        let buffer = writer.get_mut();
        for row in buffer.split(|&byte| byte == b'\n') {
            if !row.is_empty() {
                f(row)?;
            }
        }
        buffer.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use datafusion::arrow::array::{BooleanArray, Int64Array};
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A uniquely named file under the temp dir, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            Self(std::env::temp_dir().join(format!("driftwatch-source-{}-{n}-{name}", std::process::id())))
        }

        fn with_text(name: &str, text: &str) -> Self {
            let file = Self::new(name);
            std::fs::write(&file.0, text).unwrap();
            file
        }

        fn with_batch(name: &str, batch: &RecordBatch) -> Self {
            let file = Self::new(name);
            write_parquet(&file.0, batch).unwrap();
            file
        }

        fn source(&self) -> TableSource {
            TableSource::new(&self.0)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn numeric(values: &[Option<f64>]) -> ColumnData {
        ColumnData::Numeric(values.to_vec())
    }

    fn categorical(values: &[Option<&str>]) -> ColumnData {
        ColumnData::Categorical(values.iter().map(|v| v.map(str::to_owned)).collect())
    }

    #[test]
    fn format_from_path() {
        let cases = [
            ("a.parquet", Some(FileFormat::Parquet)),
            ("a.CSV", Some(FileFormat::Csv)),
            ("a.jsonl", Some(FileFormat::Json)),
            ("a.ndjson", Some(FileFormat::Json)),
            ("dir.v2/a.json", Some(FileFormat::Json)),
            ("a.txt", None),
            ("a", None),
        ];
        for (path, expected) in cases {
            let got = FileFormat::from_path(Path::new(path));
            match expected {
                Some(format) => assert_eq!(got.unwrap(), format, "{path}"),
                None => assert!(matches!(got, Err(SourceError::UnsupportedExtension { .. })), "{path}: {got:?}"),
            }
        }
    }

    #[test]
    fn csv_reference_with_ints_floats_strings_and_nulls() {
        let file = TempFile::with_text("ref.csv", "x,city,n,flag\n1.5,paris,3,true\n,berlin,,false\n2.5,,7,\n");
        let request = [
            ColumnRequest::numeric("x"),
            ColumnRequest::categorical("city"),
            ColumnRequest::numeric("n"),
            ColumnRequest::categorical("n"),
            ColumnRequest::categorical("flag"),
        ];
        let table = read_columns(&file.source(), &request).unwrap();
        assert_eq!(table.rows, 3);
        assert_eq!(
            table.columns,
            vec![
                numeric(&[Some(1.5), None, Some(2.5)]),
                categorical(&[Some("paris"), Some("berlin"), None]),
                numeric(&[Some(3.0), None, Some(7.0)]),
                categorical(&[Some("3"), None, Some("7")]),
                categorical(&[Some("true"), Some("false"), None]),
            ]
        );
        assert_eq!(table.description, format!("csv file {}", file.0.display()));
        check_columns(&file.source(), &request).unwrap();
    }

    #[test]
    fn parquet_reference_with_nan_nulls_ints_and_bools() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("score", DataType::Float64, true),
            Field::new("count", DataType::Int64, true),
            Field::new("segment", DataType::Utf8, true),
            Field::new("active", DataType::Boolean, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Float64Array::from(vec![Some(0.5), Some(f64::NAN), None])),
                Arc::new(Int64Array::from(vec![Some(10), None, Some(-2)])),
                Arc::new(StringArray::from(vec![Some("a"), None, Some("b")])),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ],
        )
        .unwrap();
        let file = TempFile::with_batch("ref.parquet", &batch);
        let request = [
            ColumnRequest::categorical("segment"),
            ColumnRequest::numeric("score"),
            ColumnRequest::numeric("count"),
            ColumnRequest::categorical("count"),
            ColumnRequest::categorical("active"),
        ];
        let table = read_columns(&file.source(), &request).unwrap();
        assert_eq!(table.rows, 3);
        let ColumnData::Numeric(score) = &table.columns[1] else {
            panic!("score is not numeric: {:?}", table.columns[1]);
        };
        assert_eq!(score[0], Some(0.5));
        assert!(score[1].unwrap().is_nan(), "NaN must stay NaN");
        assert_eq!(score[2], None);
        assert_eq!(table.columns[0], categorical(&[Some("a"), None, Some("b")]));
        assert_eq!(table.columns[2], numeric(&[Some(10.0), None, Some(-2.0)]));
        assert_eq!(table.columns[3], categorical(&[Some("10"), None, Some("-2")]));
        assert_eq!(table.columns[4], categorical(&[Some("true"), Some("false"), None]));
        check_columns(&file.source(), &request).unwrap();
    }

    #[test]
    fn jsonl_reference() {
        let file = TempFile::with_text(
            "ref.jsonl",
            "{\"a\": 1, \"b\": \"x\", \"flag\": true}\n\
             {\"a\": 2.5, \"flag\": false}\n\
             {\"a\": null, \"b\": \"y\"}\n",
        );
        let request = [ColumnRequest::numeric("a"), ColumnRequest::categorical("b"), ColumnRequest::categorical("flag")];
        let table = read_columns(&file.source(), &request).unwrap();
        assert_eq!(table.rows, 3);
        assert_eq!(
            table.columns,
            vec![
                numeric(&[Some(1.0), Some(2.5), None]),
                categorical(&[Some("x"), None, Some("y")]),
                categorical(&[Some("true"), Some("false"), None]),
            ]
        );
    }

    #[test]
    fn sql_filter_keeps_order() {
        let mut text = String::from("split,value,label\n");
        for i in 0..100 {
            let split = if i % 3 == 0 { "test" } else { "train" };
            text.push_str(&format!("{split},{i},l{}\n", i % 7));
        }
        let file = TempFile::with_text("split.csv", &text);
        let source = TableSource { sql: Some("SELECT value, label FROM reference WHERE split = 'train'".to_owned()), ..file.source() };
        let table = read_columns(&source, &[ColumnRequest::numeric("value"), ColumnRequest::categorical("label")]).unwrap();
        let expected: Vec<i32> = (0..100).filter(|i| i % 3 != 0).collect();
        assert_eq!(table.rows, expected.len() as u64);
        assert_eq!(table.columns[0], ColumnData::Numeric(expected.iter().map(|&i| Some(f64::from(i))).collect()));
        assert_eq!(table.columns[1], ColumnData::Categorical(expected.iter().map(|i| Some(format!("l{}", i % 7))).collect()));
        assert!(table.description.ends_with(", sql: SELECT value, label FROM reference WHERE split = 'train'"), "{}", table.description);
    }

    #[test]
    fn explicit_format_overrides_extension() {
        let file = TempFile::with_text("data.txt", "v\n1\n2\n");
        assert!(matches!(read_columns(&file.source(), &[ColumnRequest::numeric("v")]), Err(SourceError::UnsupportedExtension { .. })));
        let source = TableSource { format: Some(FileFormat::Csv), ..file.source() };
        let table = read_columns(&source, &[ColumnRequest::numeric("v")]).unwrap();
        assert_eq!(table.columns, vec![numeric(&[Some(1.0), Some(2.0)])]);
    }

    #[test]
    fn empty_request_counts_rows() {
        let file = TempFile::with_text("count.csv", "v\n1\n2\n3\n");
        let table = read_columns(&file.source(), &[]).unwrap();
        assert_eq!(table.rows, 3);
        assert!(table.columns.is_empty());
    }

    #[test]
    fn missing_file() {
        let source = TableSource::new(std::env::temp_dir().join("driftwatch-no-such-file.parquet"));
        let request = [ColumnRequest::numeric("x")];
        for result in [read_columns(&source, &request).map(drop), check_columns(&source, &request)] {
            let error = result.unwrap_err();
            assert!(matches!(error, SourceError::NotFound { .. }), "{error:?}");
            assert!(error.to_string().contains("driftwatch-no-such-file.parquet"), "{error}");
        }
    }

    #[test]
    fn missing_column_lists_available_ones() {
        let file = TempFile::with_text("cols.csv", "alpha,beta\n1,2\n");
        let request = [ColumnRequest::numeric("alpha"), ColumnRequest::numeric("gamma")];
        for result in [read_columns(&file.source(), &request).map(drop), check_columns(&file.source(), &request)] {
            let error = result.unwrap_err();
            let SourceError::ColumnMissing { column, available, .. } = &error else {
                panic!("unexpected error {error:?}");
            };
            assert_eq!(column, "gamma");
            assert_eq!(available, &["alpha", "beta"]);
            let message = error.to_string();
            assert!(message.contains("`gamma`"), "{message}");
            assert!(message.contains("alpha, beta"), "{message}");
            assert!(message.contains("cols.csv"), "{message}");
        }
    }

    #[test]
    fn string_column_requested_as_numeric() {
        let file = TempFile::with_text("types.csv", "name,v\nbob,1\n");
        let request = [ColumnRequest::numeric("name")];
        for result in [read_columns(&file.source(), &request).map(drop), check_columns(&file.source(), &request)] {
            let error = result.unwrap_err();
            let SourceError::IncompatibleType { column, expected, found, .. } = &error else {
                panic!("unexpected error {error:?}");
            };
            assert_eq!(column, "name");
            assert_eq!(*expected, ColumnKind::Numeric);
            assert!(matches!(found, DataType::Utf8 | DataType::Utf8View), "{found}");
            let message = error.to_string();
            assert!(message.contains("`name`") && message.contains("expected numeric"), "{message}");
        }
        let error = check_columns(&file.source(), &[ColumnRequest::numeric("v")]);
        assert!(error.is_ok(), "{error:?}");
    }

    /// Floats as categories follow the events' rule: an integral value is
    /// its integer's text, any other value refuses the reference, named.
    #[test]
    fn float_reference_column_as_categories() {
        let integral = TempFile::with_text("integral.csv", "v\n1.0\n2.0\n-0.0\n3e0\n");
        check_columns(&integral.source(), &[ColumnRequest::categorical("v")]).unwrap();
        let columns = read_columns(&integral.source(), &[ColumnRequest::categorical("v")]).unwrap();
        let ColumnData::Categorical(values) = &columns.columns[0] else {
            panic!("{:?}", columns.columns[0]);
        };
        let shown: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
        assert_eq!(shown, [Some("1"), Some("2"), Some("0"), Some("3")]);

        let float = TempFile::with_text("float.csv", "v\n1.0\n1.5\n");
        check_columns(&float.source(), &[ColumnRequest::categorical("v")]).unwrap();
        let error = read_columns(&float.source(), &[ColumnRequest::categorical("v")]).unwrap_err();
        assert!(matches!(&error, SourceError::NotACategory { column, row: 2, value, .. } if column == "v" && *value == 1.5), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("row 2 holds 1.5") && message.contains("not an integer"), "{message}");
    }

    #[test]
    fn bad_sql() {
        let file = TempFile::with_text("sql.csv", "v\n1\n");
        for sql in ["SELEC v FROM reference", "SELECT nope FROM reference", "SELECT v FROM other_table", "DROP TABLE reference"] {
            let source = TableSource { sql: Some(sql.to_owned()), ..file.source() };
            let error = read_columns(&source, &[ColumnRequest::numeric("v")]).unwrap_err();
            assert!(matches!(error, SourceError::Sql { .. }), "{sql}: {error:?}");
            assert!(error.to_string().contains(sql), "{error}");
            assert!(std::error::Error::source(&error).is_some(), "{sql}: no source");
        }
    }

    #[test]
    fn read_error_on_malformed_file() {
        let file = TempFile::with_text("broken.parquet", "this is not parquet");
        let error = read_columns(&file.source(), &[ColumnRequest::numeric("v")]).unwrap_err();
        assert!(matches!(error, SourceError::Read { .. }), "{error:?}");
        assert!(error.to_string().contains("broken.parquet"), "{error}");
    }

    const ORDER_ROWS: usize = 10_000;

    fn assert_rows_in_order(path: &Path, format: FileFormat) {
        let mut seen = 0usize;
        for_each_json_row(path, format, |row| {
            let value: serde_json::Value = serde_json::from_slice(row).unwrap();
            assert_eq!(value["i"], serde_json::json!(seen as f64), "row {seen}: {value}");
            assert_eq!(value["s"], serde_json::json!(format!("s{seen}")), "row {seen}");
            if seen.is_multiple_of(10) {
                assert!(value.get("v").is_none(), "null omitted: {value}");
            } else {
                assert_eq!(value["v"].as_f64(), Some(seen as f64 / 4.0), "row {seen}: {value}");
            }
            seen += 1;
            Ok::<_, SourceError>(())
        })
        .unwrap();
        assert_eq!(seen, ORDER_ROWS);
    }

    fn order_batch() -> RecordBatch {
        batch_from_columns(vec![
            ("i".to_owned(), ColumnData::Numeric((0..ORDER_ROWS).map(|i| Some(i as f64)).collect())),
            ("v".to_owned(), ColumnData::Numeric((0..ORDER_ROWS).map(|i| (i % 10 != 0).then_some(i as f64 / 4.0)).collect())),
            ("s".to_owned(), ColumnData::Categorical((0..ORDER_ROWS).map(|i| Some(format!("s{i}"))).collect())),
        ])
        .unwrap()
    }

    #[test]
    fn json_rows_in_file_order_parquet() {
        let file = TempFile::with_batch("order.parquet", &order_batch());
        assert_rows_in_order(&file.0, FileFormat::Parquet);

        // The DataFusion path keeps file order too.
        let table = read_columns(&file.source(), &[ColumnRequest::numeric("i")]).unwrap();
        assert_eq!(table.columns[0], ColumnData::Numeric((0..ORDER_ROWS).map(|i| Some(i as f64)).collect()));
    }

    #[test]
    fn json_rows_in_file_order_csv() {
        // Integers are written as `1.0` so the inferred type is float, matching
        // the Parquet file; `v` is empty (null) on every tenth row.
        let mut text = String::from("i,v,s\n");
        for i in 0..ORDER_ROWS {
            let v = if i % 10 == 0 { String::new() } else { format!("{:?}", i as f64 / 4.0) };
            text.push_str(&format!("{:?},{v},s{i}\n", i as f64));
        }
        let file = TempFile::with_text("order.csv", &text);
        assert_rows_in_order(&file.0, FileFormat::Csv);

        let table = read_columns(&file.source(), &[ColumnRequest::categorical("s")]).unwrap();
        assert_eq!(table.columns[0], ColumnData::Categorical((0..ORDER_ROWS).map(|i| Some(format!("s{i}"))).collect()));
    }

    #[test]
    fn json_rows_from_jsonl_pass_through() {
        let file = TempFile::with_text("events.jsonl", "{\"a\":1}\n\n  {\"a\":2}  \r\n{\"a\":3}");
        let mut rows = Vec::new();
        for_each_json_row(&file.0, FileFormat::Json, |row| {
            rows.push(String::from_utf8(row.to_vec()).unwrap());
            Ok::<_, SourceError>(())
        })
        .unwrap();
        assert_eq!(rows, ["{\"a\":1}", "{\"a\":2}", "{\"a\":3}"]);
    }

    #[derive(Debug)]
    enum CallerError {
        Source(SourceError),
        Stop,
    }

    impl From<SourceError> for CallerError {
        fn from(error: SourceError) -> Self {
            Self::Source(error)
        }
    }

    #[test]
    fn json_rows_stop_at_callback_error_and_report_source_errors() {
        let file = TempFile::with_batch("stop.parquet", &order_batch());
        let mut calls = 0;
        let result = for_each_json_row(&file.0, FileFormat::Parquet, |_| {
            calls += 1;
            if calls == 5 {
                Err(CallerError::Stop)
            } else {
                Ok(())
            }
        });
        assert!(matches!(result, Err(CallerError::Stop)), "{result:?}");
        assert_eq!(calls, 5);

        let missing = std::env::temp_dir().join("driftwatch-no-such-replay.csv");
        let result = for_each_json_row(&missing, FileFormat::Csv, |_| Ok::<_, CallerError>(()));
        assert!(matches!(result, Err(CallerError::Source(SourceError::NotFound { .. }))), "{result:?}");
    }
    fn typed_rows(path: &Path, types: &CsvTypes) -> Vec<serde_json::Value> {
        let mut rows = Vec::new();
        for_each_json_row_typed(path, FileFormat::Csv, types, |row| {
            rows.push(serde_json::from_slice(row).unwrap());
            Ok::<_, SourceError>(())
        })
        .unwrap();
        rows
    }

    /// Regression: `oops` in the first row of a numeric column made type
    /// inference read the whole column as text, so every row's value was
    /// refused. A column the configuration reads as numeric is typed cell by
    /// cell: only the bad cell is a string.
    #[test]
    fn one_bad_csv_cell_refuses_only_its_row() {
        let mut text = String::from("model,x,c,id,flag\n");
        text.push_str("007,oops,007,12,true\n");
        for i in 0..5000 {
            text.push_str(&format!("m,{}.5,{},{},{}\n", i, i % 7, i, if i % 2 == 0 { "TRUE" } else { "false" }));
        }
        text.push_str("m,,a,9007199254740993,\n");
        text.push_str("m,1e400,a,1.0,\n");
        let file = TempFile::with_text("typed.csv", &text);
        let types = CsvTypes { numeric: ["x".to_owned()].into(), text: ["model".to_owned()].into() };
        let rows = typed_rows(&file.0, &types);
        assert_eq!(rows.len(), 5003);
        // The configured types: `model` text, `x` a number where it is one.
        assert_eq!(rows[0], serde_json::json!({"model": "007", "x": "oops", "c": "007", "id": 12, "flag": true}));
        assert_eq!(rows[1], serde_json::json!({"model": "m", "x": 0.5, "c": "0", "id": 0, "flag": true}));
        assert_eq!(rows[2]["x"], 1.5);
        assert_eq!(rows[2]["flag"], false);
        let strings = rows.iter().filter(|r| r["x"].is_string()).count();
        assert_eq!(strings, 2, "only `oops` and the out-of-range 1e400 are not numbers");
        // Empty cells are absent; an integer id stays exact.
        assert_eq!(rows[5001], serde_json::json!({"model": "m", "c": "a", "id": 9007199254740993u64}));
        assert_eq!(rows[5002]["x"], "1e400");
        // Without configured types, the inferred ones (x is text then).
        let rows = typed_rows(&file.0, &CsvTypes::default());
        assert_eq!(rows[0]["x"], "oops");
        assert_eq!(rows[1]["x"], "0.5");
        assert_eq!(rows[1]["c"], "0", "c holds `a`: text");
    }

    #[test]
    fn csv_numbers() {
        for (cell, want) in [
            ("0", Some(CsvNumber::Integer(0))),
            ("-12", Some(CsvNumber::Integer(-12))),
            ("007", Some(CsvNumber::Integer(7))),
            ("1.5", Some(CsvNumber::Float(1.5))),
            (".5", Some(CsvNumber::Float(0.5))),
            ("5.", Some(CsvNumber::Float(5.0))),
            ("-1e-3", Some(CsvNumber::Float(-0.001))),
            ("+2", Some(CsvNumber::Float(2.0))),
            ("99999999999999999999", Some(CsvNumber::Float(1e20))),
            ("oops", None),
            ("NaN", None),
            ("inf", None),
            ("-infinity", None),
            ("1e400", None),
            (" 1", None),
            ("1,5", None),
            ("-", None),
            (".", None),
            ("e5", None),
            ("", None),
        ] {
            assert_eq!(csv_number(cell), want, "{cell:?}");
        }
    }

    /// A reference CSV whose numeric column holds one bad cell (type
    /// inference over the whole file reads it as text): refused, naming the
    /// column, the row and the cell, by `validate` and when profiles are built.
    #[test]
    fn a_bad_cell_in_a_numeric_reference_column_is_named() {
        let mut text = String::from("v,w\n");
        for i in 0..3000 {
            text.push_str(&format!("{i}.25,{}\n", if i == 2500 { "oops" } else { "1" }));
        }
        let file = TempFile::with_text("bad-cell.csv", &text);
        let error = read_columns(&file.source(), &[ColumnRequest::numeric("v"), ColumnRequest::numeric("w")]).unwrap_err();
        assert!(
            matches!(&error, SourceError::NotANumber { column, row: 2501, value, .. } if column == "w" && value == "oops"),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(message.contains("`w`") && message.contains("row 2501") && message.contains("\"oops\""), "{message}");
        // Within the first thousand rows, `validate`'s schema check names it too.
        let file = TempFile::with_text("bad-early.csv", "v\n1\n2\nn/a\n4\n");
        let error = check_columns(&file.source(), &[ColumnRequest::numeric("v")]).unwrap_err();
        assert!(matches!(&error, SourceError::NotANumber { row: 3, .. }), "{error:?}");
        // A column the SQL makes (not in the file) keeps the type error.
        let file = TempFile::with_text("bad-sql.csv", "w\n1\noops\n");
        let source = TableSource { sql: Some("SELECT w AS z FROM reference".into()), ..file.source() };
        let error = read_columns(&source, &[ColumnRequest::numeric("z")]).unwrap_err();
        assert!(matches!(&error, SourceError::IncompatibleType { .. }), "{error:?}");
    }
    /// Empty CSV lines are skipped by the CSV reader (rows keep their
    /// numbers) and counted; line breaks inside quotes are no lines.
    #[test]
    fn blank_csv_lines_are_counted() {
        let file = TempFile::with_text("blank.csv", "\nx,c\n1,a\n\n2,\"b\n\n\"\"\"\n\r\n3,c\n\n");
        let mut rows = Vec::new();
        let blank = for_each_json_row_typed(&file.0, FileFormat::Csv, &CsvTypes::default(), |row| {
            rows.push(serde_json::from_slice::<serde_json::Value>(row).unwrap());
            Ok::<_, SourceError>(())
        })
        .unwrap();
        assert_eq!(
            rows,
            [serde_json::json!({"x": 1, "c": "a"}), serde_json::json!({"x": 2, "c": "b\n\n\""}), serde_json::json!({"x": 3, "c": "c"})]
        );
        assert_eq!(blank, 4);
        let file = TempFile::with_text("blank.jsonl", "{}\n\n \t\r\n{}");
        let blank = for_each_json_row_typed(&file.0, FileFormat::Json, &CsvTypes::default(), |_| Ok::<_, SourceError>(())).unwrap();
        assert_eq!(blank, 2);
    }
}
