//! Number import, streamed: a parser thread reads CSV or JSON from any byte
//! stream (an HTTP body, a file) and hands rows over a bounded channel to a
//! writer that inserts 500 at a time, so a million-row file never sits in
//! memory. Every rejected row is reported with its line and the problem;
//! duplicates and blacklisted numbers are counted and their lines listed.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::Value;
use tokio::io::AsyncRead;
use tokio::sync::mpsc;

use crate::location::LocationTable;
use crate::store::number::NewNumber;
use crate::store::{limits, normalize_number, Store, StoreError};

/// Rows per insert transaction.
const BATCH: usize = 500;
/// At most this many problems / duplicate lines / blacklisted lines are listed
/// (all are counted).
pub const MAX_LISTED: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading the upload: {0}")]
    Io(#[from] std::io::Error),
    #[error("parser stopped unexpectedly")]
    Parser,
}

/// Input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `number[,name,…]`, optional header row naming the columns.
    Csv,
    /// A JSON array, or one JSON value per line (NDJSON); each value a number
    /// string or an object with `number` and variables.
    Json,
}

impl Format {
    /// From a content type or file name; CSV unless it says JSON.
    pub fn guess(hint: &str) -> Format {
        let h = hint.to_ascii_lowercase();
        if h.contains("json") {
            Format::Json
        } else {
            Format::Csv
        }
    }
}

/// One rejected row.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub problem: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ImportReport {
    /// Data rows read (header excluded).
    pub rows: u64,
    pub inserted: u64,
    /// Numbers already in the task (or twice in the file).
    pub duplicates: u64,
    /// Inserted but on the tenant's blacklist: they end as status 11 undialled.
    pub blacklisted: u64,
    /// Rows rejected, listed in `errors`.
    pub invalid: u64,
    pub errors: Vec<RowError>,
    pub duplicate_lines: Vec<u64>,
    pub blacklisted_lines: Vec<u64>,
    /// Some lists were cut at [`MAX_LISTED`].
    pub truncated: bool,
}

impl ImportReport {
    fn error(&mut self, line: u64, problem: String) {
        self.invalid += 1;
        if self.errors.len() < MAX_LISTED {
            self.errors.push(RowError { line, problem });
        } else {
            self.truncated = true;
        }
    }
}

enum Item {
    Row { line: u64, raw: String, vars: BTreeMap<String, String> },
    Bad { line: u64, problem: String },
}

/// Import into `task_id` (the caller checked it is the tenant's) from
/// `reader`. `tenant` names the blacklist family. Numbers are normalized by
/// [`normalize_number`] (the one rule, in `store::number`) and get their
/// province, city and operator from `locations`.
pub async fn import<R>(
    store: &Store,
    locations: &LocationTable,
    task_id: &str,
    tenant: &str,
    reader: R,
    format: Format,
) -> Result<ImportReport, ImportError>
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Item>(4 * BATCH);
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    let parser = tokio::task::spawn_blocking(move || match format {
        Format::Csv => parse_csv(bridge, &tx),
        Format::Json => parse_json(bridge, &tx),
    });
    let mut report = ImportReport::default();
    let mut batch: Vec<(u64, String, BTreeMap<String, String>)> = Vec::with_capacity(BATCH);
    while let Some(item) = rx.recv().await {
        match item {
            Item::Bad { line, problem } => {
                report.rows += 1;
                report.error(line, problem);
            }
            Item::Row { line, raw, vars } => {
                report.rows += 1;
                match normalize_number(&raw) {
                    Ok(n) => batch.push((line, n, vars)),
                    Err(p) => report.error(line, p.to_string()),
                }
                if batch.len() >= BATCH {
                    flush(store, locations, task_id, tenant, &mut batch, &mut report).await?;
                }
            }
        }
    }
    flush(store, locations, task_id, tenant, &mut batch, &mut report).await?;
    match parser.await {
        Ok(Ok(())) => Ok(report),
        Ok(Err(e)) => Err(ImportError::Io(e)),
        Err(_) => Err(ImportError::Parser),
    }
}

async fn flush(
    store: &Store,
    locations: &LocationTable,
    task_id: &str,
    tenant: &str,
    batch: &mut Vec<(u64, String, BTreeMap<String, String>)>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    if batch.is_empty() {
        return Ok(());
    }
    let numbers: Vec<String> = batch.iter().map(|(_, n, _)| n.clone()).collect();
    let black = store.blacklisted_among(tenant, &numbers).await?;
    let mut rows: Vec<NewNumber> = Vec::with_capacity(batch.len());
    for (line, number, vars) in batch.drain(..) {
        let variables = if vars.is_empty() { None } else { serde_json::to_string(&vars).ok() };
        if variables.as_ref().is_some_and(|v| v.len() > limits::TEXT_BYTES) {
            report.error(
                line,
                format!(
                    "variables: {} bytes as JSON, at most {} allowed",
                    variables.map_or(0, |v| v.len()),
                    limits::TEXT_BYTES
                ),
            );
            continue;
        }
        let location = locations.lookup_normalized(&number).unwrap_or_default();
        rows.push(NewNumber { line, blacklisted: black.contains(&number), number, location, variables });
    }
    let dups = store.insert_numbers(task_id, &rows).await?;
    let dup_set: std::collections::HashSet<u64> = dups.iter().copied().collect();
    for r in &rows {
        if dup_set.contains(&r.line) {
            report.duplicates += 1;
            push_capped(&mut report.duplicate_lines, r.line, &mut report.truncated);
        } else {
            report.inserted += 1;
            if r.blacklisted {
                report.blacklisted += 1;
                push_capped(&mut report.blacklisted_lines, r.line, &mut report.truncated);
            }
        }
    }
    Ok(())
}

fn push_capped(v: &mut Vec<u64>, x: u64, truncated: &mut bool) {
    if v.len() < MAX_LISTED {
        v.push(x);
    } else {
        *truncated = true;
    }
}

const NUMBER_HEADERS: &[&str] = &["number", "phone", "mobile", "callee", "号码", "手机号", "电话"];

fn parse_csv<R: Read>(r: R, tx: &mpsc::Sender<Item>) -> std::io::Result<()> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(r);
    let mut header: Option<Vec<String>> = None;
    let mut number_col = 0usize;
    let mut first = true;
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_record(&mut rec) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(std::io::Error::other(e.to_string()));
                }
                if tx.blocking_send(Item::Bad { line, problem: format!("not valid CSV: {e}") }).is_err() {
                    return Ok(());
                }
                continue;
            }
        }
        let line = rec.position().map_or(line, |p| p.line());
        let first_field = rec.get(0).unwrap_or("").trim_start_matches('\u{feff}').to_string();
        if first {
            first = false;
            let cols: Vec<String> = rec.iter().map(|c| c.trim_start_matches('\u{feff}').to_ascii_lowercase()).collect();
            if let Some(i) = cols.iter().position(|c| NUMBER_HEADERS.contains(&c.as_str())) {
                number_col = i;
                header = Some(cols);
                continue;
            }
        }
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let raw = if number_col == 0 { first_field } else { rec.get(number_col).unwrap_or("").to_string() };
        let mut vars = BTreeMap::new();
        for (i, v) in rec.iter().enumerate() {
            if i == number_col || v.is_empty() {
                continue;
            }
            let name = match &header {
                Some(h) => h.get(i).cloned().unwrap_or_else(|| format!("col{}", i + 1)),
                None if i == 1 => "name".to_string(),
                None => format!("col{}", i + 1),
            };
            vars.insert(name, v.to_string());
        }
        if tx.blocking_send(Item::Row { line, raw, vars }).is_err() {
            return Ok(());
        }
    }
}

/// Counts newlines read through it, so JSON items can be reported by line.
struct LineCounter<R> {
    inner: R,
    lines: Arc<AtomicU64>,
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let nl = buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        self.lines.fetch_add(nl, Ordering::Relaxed);
        Ok(n)
    }
}

fn item_of(v: Value, line: u64) -> Item {
    let bad = |problem: String| Item::Bad { line, problem };
    match v {
        Value::String(s) => Item::Row { line, raw: s, vars: BTreeMap::new() },
        Value::Number(n) => Item::Row { line, raw: n.to_string(), vars: BTreeMap::new() },
        Value::Object(mut o) => {
            let key = ["number", "phone", "mobile", "callee"].into_iter().find(|k| o.contains_key(*k));
            let Some(key) = key else { return bad("object has no \"number\"".into()) };
            let raw = match o.remove(key) {
                Some(Value::String(s)) => s,
                Some(Value::Number(n)) => n.to_string(),
                other => return bad(format!("\"{key}\" must be a string, got {}", other.unwrap_or(Value::Null))),
            };
            let mut vars = BTreeMap::new();
            let nested = match o.remove("variables") {
                Some(Value::Object(v)) => v,
                Some(Value::Null) | None => serde_json::Map::new(),
                Some(other) => return bad(format!("\"variables\" must be an object, got {other}")),
            };
            for (k, v) in o.into_iter().chain(nested) {
                match v {
                    Value::String(s) => {
                        vars.insert(k, s);
                    }
                    Value::Number(n) => {
                        vars.insert(k, n.to_string());
                    }
                    Value::Bool(b) => {
                        vars.insert(k, b.to_string());
                    }
                    Value::Null => {}
                    other => return bad(format!("variable {k:?} must be text, got {other}")),
                }
            }
            Item::Row { line, raw, vars }
        }
        other => bad(format!("item must be a number or an object with \"number\", got {other}")),
    }
}

fn parse_json<R: Read>(r: R, tx: &mpsc::Sender<Item>) -> std::io::Result<()> {
    let lines = Arc::new(AtomicU64::new(0));
    // Counted above the buffer: serde_json reads byte by byte, so the count
    // is the line of the byte being parsed.
    let mut reader = LineCounter { inner: std::io::BufReader::new(r), lines: lines.clone() };
    // Peek the first significant byte: `[` is one array, anything else NDJSON.
    let mut first = None;
    let mut prefix = Vec::new();
    let mut byte = [0u8; 1];
    while reader.read(&mut byte)? == 1 {
        prefix.push(byte[0]);
        if !byte[0].is_ascii_whitespace() && byte[0] != 0xef && byte[0] != 0xbb && byte[0] != 0xbf {
            first = Some(byte[0]);
            break;
        }
    }
    let Some(first) = first else { return Ok(()) };
    let line_now = |lines: &AtomicU64| lines.load(Ordering::Relaxed) + 1;
    let bom_free: Vec<u8> = prefix.into_iter().filter(|b| !matches!(b, 0xef | 0xbb | 0xbf)).collect();
    let chained = std::io::Cursor::new(bom_free).chain(reader);
    let mut de = serde_json::Deserializer::from_reader(chained);
    if first == b'[' {
        let seed = ArraySeed { tx, lines: lines.clone() };
        if let Err(e) = seed.deserialize(&mut de) {
            if !e.to_string().contains("receiver dropped") {
                let _ = tx.blocking_send(Item::Bad { line: e.line() as u64, problem: format!("not valid JSON: {e}") });
            }
        }
        return Ok(());
    }
    for v in de.into_iter::<Value>() {
        match v {
            Ok(v) => {
                if tx.blocking_send(item_of(v, line_now(&lines))).is_err() {
                    return Ok(());
                }
            }
            Err(e) => {
                let _ = tx.blocking_send(Item::Bad { line: e.line() as u64, problem: format!("not valid JSON: {e}") });
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Visits a JSON array one element at a time.
struct ArraySeed<'a> {
    tx: &'a mpsc::Sender<Item>,
    lines: Arc<AtomicU64>,
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of numbers")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            let line = self.lines.load(Ordering::Relaxed) + 1;
            if self.tx.blocking_send(item_of(v, line)).is_err() {
                return Err(serde::de::Error::custom("receiver dropped"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_hint() {
        assert_eq!(Format::guess("application/json"), Format::Json);
        assert_eq!(Format::guess("numbers.NDJSON"), Format::Json);
        assert_eq!(Format::guess("text/csv"), Format::Csv);
        assert_eq!(Format::guess(""), Format::Csv);
    }
}
