//! `voxdial location import`: a CSV of `prefix,province,city[,operator]`
//! (7-digit mobile prefix; an optional header row), streamed: a parser
//! thread hands rows over a bounded channel, rows are written 500 to a
//! statement, and every rejected line is reported with its number and the
//! problem, as the number import does.

use std::collections::HashMap;
use std::io::Read;

use serde::Serialize;
use tokio::sync::mpsc;

use super::db::{self, PrefixRow, RegionIndex, Wanted};
use super::{short_name, LocationError, Operator};
use crate::api::import::{RowError, MAX_LISTED};
use crate::store::Store;

/// Rows per statement (5 parameters each: well under every backend's limit).
const BATCH: usize = 500;
/// Longest province or city name accepted.
const MAX_NAME: usize = 64;

/// What a location import did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LocationReport {
    /// Data rows read (header excluded).
    pub rows: u64,
    /// Prefixes written (a prefix given twice is written twice, last wins).
    pub imported: u64,
    /// Rows rejected, listed in `errors`.
    pub invalid: u64,
    pub errors: Vec<RowError>,
    /// Provinces and cities that were not in `regions` yet.
    pub regions_created: u64,
    /// `errors` was cut at [`MAX_LISTED`].
    pub truncated: bool,
}

/// One valid line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub prefix: String,
    pub province: String,
    pub city: Option<String>,
    pub operator: Option<Operator>,
}

enum Item {
    Row(Line),
    Bad { line: u64, problem: String },
}

/// Check one CSV record (`fields` trimmed).
pub fn parse_line(fields: &[&str]) -> Result<Line, String> {
    if !(3..=4).contains(&fields.len()) {
        return Err(format!("expected 3 or 4 columns (prefix, province, city[, operator]), got {}", fields.len()));
    }
    let prefix = fields[0];
    let b = prefix.as_bytes();
    if b.len() != 7 || b[0] != b'1' || !(b'3'..=b'9').contains(&b[1]) || !b.iter().all(u8::is_ascii_digit) {
        return Err(format!(
            "prefix: must be the first 7 digits of a mobile number (1[3-9] and 5 digits), got {prefix:?}"
        ));
    }
    let province = short_name(fields[1], true);
    if province.is_empty() {
        return Err("province: is empty".into());
    }
    if province.chars().count() > MAX_NAME {
        return Err(format!("province: longer than {MAX_NAME} characters"));
    }
    let city = Some(short_name(fields[2], false)).filter(|c| !c.is_empty());
    if city.as_ref().is_some_and(|c| c.chars().count() > MAX_NAME) {
        return Err(format!("city: longer than {MAX_NAME} characters"));
    }
    let operator = match fields.get(3).copied().filter(|o| !o.is_empty()) {
        None => None,
        Some(o) => Some(
            Operator::parse(o)
                .ok_or_else(|| format!("operator: unknown {o:?}; use yd, lt, dx, gd or 移动, 联通, 电信, 广电"))?,
        ),
    };
    Ok(Line { prefix: prefix.to_string(), province, city, operator })
}

fn parse_csv<R: Read>(r: R, tx: &mpsc::Sender<Item>) -> std::io::Result<()> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).trim(csv::Trim::All).from_reader(r);
    let mut rec = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line = rdr.position().line();
        let item = match rdr.read_record(&mut rec) {
            Ok(false) => return Ok(()),
            Err(e) => {
                if let csv::ErrorKind::Io(_) = e.kind() {
                    return Err(std::io::Error::other(e.to_string()));
                }
                let line = e.position().map_or(line, |p| p.line());
                Item::Bad { line, problem: format!("not valid CSV: {e}") }
            }
            Ok(true) => {
                let line = rec.position().map_or(line, |p| p.line());
                let fields: Vec<&str> = rec.iter().map(|f| f.trim_start_matches('\u{feff}')).collect();
                if fields.iter().all(|f| f.is_empty()) || fields.first().is_some_and(|f| f.starts_with('#')) {
                    continue;
                }
                // A header names the columns: its first field has no digit.
                let header = first && !fields[0].bytes().any(|b| b.is_ascii_digit());
                first = false;
                if header {
                    continue;
                }
                match parse_line(&fields) {
                    Ok(l) => Item::Row(l),
                    Err(problem) => Item::Bad { line, problem },
                }
            }
        };
        if tx.blocking_send(item).is_err() {
            return Ok(());
        }
    }
}

/// Import a locations CSV from `reader` into `mobile_prefixes`, creating
/// the provinces and cities it names; bumps the version so running
/// processes reload.
pub async fn import<R>(store: &Store, reader: R) -> Result<LocationReport, LocationError>
where
    R: tokio::io::AsyncRead + Send + Unpin + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Item>(4 * BATCH);
    let bridge = tokio_util::io::SyncIoBridge::new(reader);
    let parser = tokio::task::spawn_blocking(move || parse_csv(bridge, &tx));
    let mut report = LocationReport::default();
    // The shipped regions first, so the file's cities are the ones that
    // carry their area codes.
    let before = db::ensure_regions(store, &[]).await?.names().len();
    let mut ix = db::ensure_shipped_regions(store).await?;
    let mut batch: Vec<Line> = Vec::with_capacity(BATCH);
    while let Some(item) = rx.recv().await {
        report.rows += 1;
        match item {
            Item::Bad { line, problem } => {
                report.invalid += 1;
                if report.errors.len() < MAX_LISTED {
                    report.errors.push(RowError { line, problem });
                } else {
                    report.truncated = true;
                }
            }
            Item::Row(l) => {
                batch.push(l);
                if batch.len() >= BATCH {
                    ix = flush(store, ix, &mut batch, &mut report).await?;
                }
            }
        }
    }
    ix = flush(store, ix, &mut batch, &mut report).await?;
    report.regions_created = ix.names().len().saturating_sub(before) as u64;
    db::bump_version(store).await?;
    match parser.await {
        Ok(Ok(())) => Ok(report),
        Ok(Err(e)) => Err(LocationError::Io(e)),
        Err(e) => Err(LocationError::Io(std::io::Error::other(e.to_string()))),
    }
}

async fn flush(
    store: &Store,
    mut ix: RegionIndex,
    batch: &mut Vec<Line>,
    report: &mut LocationReport,
) -> Result<RegionIndex, LocationError> {
    if batch.is_empty() {
        return Ok(ix);
    }
    let missing: Vec<Wanted> = batch
        .iter()
        .filter(|l| match ix.province(&l.province) {
            None => true,
            Some(p) => l.city.as_ref().is_some_and(|c| ix.city(p, c).is_none()),
        })
        .map(|l| Wanted { province: l.province.clone(), city: l.city.clone(), area_code: None })
        .collect();
    if !missing.is_empty() {
        ix = db::ensure_regions(store, &missing).await?;
    }
    // One row per prefix per statement (PostgreSQL refuses to update a row
    // twice in one upsert); the last line of the batch wins, as it would
    // row by row.
    let mut by_prefix: HashMap<String, PrefixRow> = HashMap::with_capacity(batch.len());
    for l in batch.drain(..) {
        let province_id = ix.province(&l.province).unwrap_or(0);
        let city_id = l.city.as_deref().and_then(|c| ix.city(province_id, c)).unwrap_or(0);
        let operator = l.operator.map_or(0, Operator::code);
        report.imported += 1;
        by_prefix.insert(l.prefix.clone(), PrefixRow { prefix: l.prefix, province_id, city_id, operator });
    }
    let rows: Vec<PrefixRow> = by_prefix.into_values().collect();
    db::upsert_prefixes(store, &rows).await?;
    Ok(ix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_naming_the_column() {
        let l = parse_line(&["1865168", "江苏省", "南京市", "联通"]).unwrap();
        assert_eq!(
            l,
            Line {
                prefix: "1865168".into(),
                province: "江苏".into(),
                city: Some("南京".into()),
                operator: Some(Operator::Unicom)
            }
        );
        assert_eq!(parse_line(&["1865168", "江苏", "", ""]).unwrap().city, None);
        assert_eq!(parse_line(&["1865168", "江苏", "南京"]).unwrap().operator, None);
        let e = |f: &[&str]| parse_line(f).unwrap_err();
        assert!(e(&["186516", "江苏", "南京"]).starts_with("prefix: "), "{}", e(&["186516", "江苏", "南京"]));
        assert!(e(&["1265168", "江苏", "南京"]).starts_with("prefix: "));
        assert!(e(&["18651x8", "江苏", "南京"]).starts_with("prefix: "));
        assert_eq!(e(&["1865168", "", "南京"]), "province: is empty");
        assert!(e(&["1865168", "江苏", "南京", "xx"]).starts_with("operator: unknown \"xx\""));
        assert!(e(&["1865168", "江苏"]).starts_with("expected 3 or 4 columns"));
        let long = "长".repeat(65);
        assert!(e(&["1865168", "江苏", &long]).starts_with("city: longer"));
    }
}
