//! Where a phone number is and which operator carries it (号码归属地).
//!
//! Three sources, cheapest first:
//! - the operator of a mobile number from its segment ([`segments`], a
//!   table in code);
//! - province and city of a mobile number from its first 7 digits, in the
//!   `mobile_prefixes` table that `voxdial location import` fills from a CSV
//!   ([`import`]);
//! - province and city of a landline from its area code ([`area_codes`],
//!   shipped in the repository).
//!
//! Provinces and cities are rows of `regions` (the seeds' `province` /
//! `city` objects), created by name when first needed. [`LocationTable`]
//! holds all of it in memory, so [`LocationTable::lookup`] is a hash probe;
//! [`LocationCache`] keeps the table current across imports done by other
//! processes (a version row the import bumps).

pub mod area_codes;
pub mod db;
pub mod import;
pub mod segments;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::store::{Store, StoreError};

/// Operator codes as stored in `operator` columns (seed: `operator`,
/// `operator_name`, `mobile_type`; `GET v1/task/number?type=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Operator {
    Unknown = 0,
    /// 中国移动, `yd`.
    Mobile = 1,
    /// 中国联通, `lt`.
    Unicom = 2,
    /// 中国电信, `dx`.
    Telecom = 3,
    /// 中国广电, `gd`.
    Broadnet = 4,
}

impl Operator {
    pub const ALL: [Operator; 4] = [Operator::Mobile, Operator::Unicom, Operator::Telecom, Operator::Broadnet];

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn from_code(c: i64) -> Operator {
        match c {
            1 => Operator::Mobile,
            2 => Operator::Unicom,
            3 => Operator::Telecom,
            4 => Operator::Broadnet,
            _ => Operator::Unknown,
        }
    }

    /// The seeds' `operator_name` / `mobile_type`.
    pub fn name_zh(self) -> &'static str {
        match self {
            Operator::Mobile => "移动",
            Operator::Unicom => "联通",
            Operator::Telecom => "电信",
            Operator::Broadnet => "广电",
            Operator::Unknown => "未知",
        }
    }

    /// The `type` filter's spelling.
    pub fn short(self) -> &'static str {
        match self {
            Operator::Mobile => "yd",
            Operator::Unicom => "lt",
            Operator::Telecom => "dx",
            Operator::Broadnet => "gd",
            Operator::Unknown => "",
        }
    }

    /// `yd` / `lt` / `dx` / `gd`, the Chinese names (with or without 中国),
    /// or the code 1–4.
    pub fn parse(s: &str) -> Option<Operator> {
        let s = s.trim();
        let s = s.strip_prefix("中国").unwrap_or(s);
        Operator::ALL.into_iter().find(|o| {
            s.eq_ignore_ascii_case(o.short()) || s == o.name_zh() || s.parse::<i64>().is_ok_and(|c| c == o.code())
        })
    }
}

/// Where a number is: `regions` ids (0 = unknown) and the operator code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Location {
    pub province_id: i64,
    pub city_id: i64,
    pub operator: i64,
}

impl Location {
    pub fn is_known(&self) -> bool {
        self.province_id != 0 || self.city_id != 0 || self.operator != 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("reading the locations file: {0}")]
    Io(#[from] std::io::Error),
    #[error("could not create regions after {0} attempts (concurrent writers?)")]
    Regions(u32),
}

/// Trim the administrative suffix so `江苏省` and `江苏`, `南京市` and
/// `南京` name one region (the short forms are what the seeds show).
pub fn short_name(name: &str, province: bool) -> String {
    let n = name.trim();
    let suffixes: &[&str] = if province {
        &["壮族自治区", "回族自治区", "维吾尔自治区", "自治区", "特别行政区", "省", "市"]
    } else {
        &["地区", "市"]
    };
    for s in suffixes {
        if let Some(rest) = n.strip_suffix(s) {
            if rest.chars().count() >= 2 {
                return rest.to_string();
            }
        }
    }
    n.to_string()
}

/// The 7-digit prefix of an 11-digit mobile number, as an integer key.
fn prefix_key(number: &str) -> Option<u32> {
    let b = number.as_bytes();
    if b.len() != 11 || b[0] != b'1' || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    number[..7].parse().ok()
}

/// One 7-digit prefix: region ids and operator (0 = take the segment's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PrefixEntry {
    province: u32,
    city: u32,
    operator: u8,
}

/// All location data in memory.
#[derive(Debug, Default)]
pub struct LocationTable {
    prefixes: HashMap<u32, PrefixEntry>,
    /// Area code → (province id, city id or 0 when the code is shared).
    area_codes: HashMap<&'static str, (i64, i64)>,
    /// Region id → (parent id, name).
    regions: HashMap<i64, (Option<i64>, String)>,
    /// What [`LocationCache`] compares to see whether to reload.
    stamp: String,
}

impl LocationTable {
    /// Load from the database, creating the shipped provinces and
    /// area-code cities in `regions` first if they are missing.
    pub async fn load(store: &Store) -> Result<LocationTable, LocationError> {
        Self::load_with(store, true).await
    }

    /// [`Self::load`]; with `create_regions` false it only reads (area
    /// codes whose regions nobody created yet stay unknown until they are).
    async fn load_with(store: &Store, create_regions: bool) -> Result<LocationTable, LocationError> {
        let index =
            if create_regions { db::ensure_shipped_regions(store).await? } else { db::read_regions(store).await? };
        let stamp = db::stamp(store).await?;
        let mut t = LocationTable { stamp, ..LocationTable::default() };
        for (code, province, city) in area_codes::AREA_CODES {
            if t.area_codes.contains_key(code) {
                continue;
            }
            let Some((_, _, only)) = area_codes::area_of(&format!("{code}0000000")) else { continue };
            let p = index.province(province).unwrap_or(0);
            let c = match only {
                Some(_) => index.city(p, city).unwrap_or(0),
                None => 0,
            };
            t.area_codes.insert(code, (p, c));
        }
        t.regions = index.names();
        db::load_prefixes(store, |prefix, province, city, operator| {
            if let Some(k) = prefix_key(&format!("{prefix}0000")) {
                let e = PrefixEntry {
                    province: u32::try_from(province).unwrap_or(0),
                    city: u32::try_from(city).unwrap_or(0),
                    operator: u8::try_from(operator).unwrap_or(0),
                };
                t.prefixes.insert(k, e);
            }
        })
        .await?;
        Ok(t)
    }

    /// Location of a number as stored (already normalized, see
    /// `store::number`): mobile by segment and 7-digit prefix, landline by
    /// area code. `None` when nothing is known.
    pub fn lookup_normalized(&self, number: &str) -> Option<Location> {
        // A mobile number dialled with the trunk 0 (`0138…`) is still mobile.
        let mobile = match number.strip_prefix('0') {
            Some(rest) if rest.len() == 11 && rest.starts_with('1') => rest,
            _ => number,
        };
        if let Some(k) = prefix_key(mobile) {
            let seg = segments::operator_of(mobile).code();
            let loc = match self.prefixes.get(&k) {
                Some(e) => Location {
                    province_id: i64::from(e.province),
                    city_id: i64::from(e.city),
                    operator: if e.operator != 0 { i64::from(e.operator) } else { seg },
                },
                None => Location { operator: seg, ..Location::default() },
            };
            return loc.is_known().then_some(loc);
        }
        let (code, _, _) = area_codes::area_of(number)?;
        let (p, c) = self.area_codes.get(code).copied()?;
        let loc = Location { province_id: p, city_id: c, operator: 0 };
        loc.is_known().then_some(loc)
    }

    /// [`Self::lookup_normalized`] of a raw number (`+86 138-…`).
    pub fn lookup(&self, raw: &str) -> Option<Location> {
        let n = crate::store::normalize_number(raw).ok()?;
        self.lookup_normalized(&n)
    }

    /// Name of a region (`江苏`, `南京`).
    pub fn region_name(&self, id: i64) -> Option<&str> {
        self.regions.get(&id).map(|(_, n)| n.as_str())
    }

    /// Number of 7-digit prefixes held.
    pub fn prefixes(&self) -> usize {
        self.prefixes.len()
    }
}

/// A [`LocationTable`] shared by the API and the finalizer, reloaded when
/// an import (in any process) changed the data.
pub struct LocationCache {
    current: RwLock<Option<(Instant, Arc<LocationTable>)>>,
    reload: tokio::sync::Mutex<()>,
    /// How long a table is used before the version row is checked again.
    pub check_every: Duration,
    /// Create the shipped regions on first load (the API); the finalizer's
    /// cache only reads, so starting it never takes a write lock.
    create_regions: bool,
}

impl Default for LocationCache {
    fn default() -> Self {
        LocationCache::new(Duration::from_secs(5))
    }
}

impl std::fmt::Debug for LocationCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocationCache(..)")
    }
}

impl LocationCache {
    /// An empty cache; the first [`Self::table`] loads it.
    pub fn new(check_every: Duration) -> LocationCache {
        LocationCache {
            current: RwLock::new(None),
            reload: tokio::sync::Mutex::new(()),
            check_every,
            create_regions: true,
        }
    }

    /// A cache that never writes: it uses the regions the API or `voxdial
    /// location import` created and picks them up when their version bumps.
    pub fn read_only() -> LocationCache {
        LocationCache { create_regions: false, ..LocationCache::default() }
    }

    /// A cache loaded now.
    pub async fn load(store: &Store) -> Result<LocationCache, LocationError> {
        let c = LocationCache::default();
        c.table(store).await?;
        Ok(c)
    }

    /// The table as last loaded, without touching the database (`None`
    /// before the first load).
    pub fn current(&self) -> Option<Arc<LocationTable>> {
        let g = self.current.read().unwrap_or_else(|p| p.into_inner());
        g.as_ref().map(|(_, t)| t.clone())
    }

    /// Cheap per call: a read lock and a hash probe. `None` before the
    /// first load or when nothing is known about the number.
    pub fn lookup(&self, raw: &str) -> Option<Location> {
        self.current()?.lookup(raw)
    }

    /// The current table, loading it the first time and reloading it when
    /// `check_every` has passed and the data's version changed.
    pub async fn table(&self, store: &Store) -> Result<Arc<LocationTable>, LocationError> {
        if let Some((at, t)) = self.current.read().unwrap_or_else(|p| p.into_inner()).as_ref() {
            if at.elapsed() < self.check_every {
                return Ok(t.clone());
            }
        }
        self.refresh(store).await
    }

    /// Check the version now and reload if it changed.
    pub async fn refresh(&self, store: &Store) -> Result<Arc<LocationTable>, LocationError> {
        let _one = self.reload.lock().await;
        let old = self.current();
        if let Some(t) = &old {
            if db::stamp(store).await? == t.stamp {
                self.set(t.clone());
                return Ok(t.clone());
            }
        }
        let t = Arc::new(LocationTable::load_with(store, self.create_regions).await?);
        self.set(t.clone());
        Ok(t)
    }

    fn set(&self, t: Arc<LocationTable>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_spellings() {
        for (s, o) in [
            ("yd", Operator::Mobile),
            ("LT", Operator::Unicom),
            ("dx", Operator::Telecom),
            ("gd", Operator::Broadnet),
            ("移动", Operator::Mobile),
            ("中国联通", Operator::Unicom),
            ("电信", Operator::Telecom),
            ("广电", Operator::Broadnet),
            ("3", Operator::Telecom),
        ] {
            assert_eq!(Operator::parse(s), Some(o), "{s}");
        }
        assert_eq!(Operator::parse("xx"), None);
        assert_eq!(Operator::parse("0"), None);
        assert_eq!(Operator::from_code(2).name_zh(), "联通");
        assert_eq!(Operator::from_code(9), Operator::Unknown);
    }

    #[test]
    fn short_names() {
        assert_eq!(short_name("江苏省", true), "江苏");
        assert_eq!(short_name("北京市", true), "北京");
        assert_eq!(short_name("广西壮族自治区", true), "广西");
        assert_eq!(short_name("内蒙古自治区", true), "内蒙古");
        assert_eq!(short_name(" 新疆维吾尔自治区 ", true), "新疆");
        assert_eq!(short_name("南京市", false), "南京");
        assert_eq!(short_name("大兴安岭地区", false), "大兴安岭");
        assert_eq!(short_name("沙市", false), "沙市", "too short to be a suffix");
    }

    fn table() -> LocationTable {
        let mut t = LocationTable::default();
        t.prefixes.insert(1865168, PrefixEntry { province: 3, city: 12, operator: 0 });
        t.prefixes.insert(1380000, PrefixEntry { province: 5, city: 0, operator: 2 });
        t.area_codes.insert("025", (3, 12));
        t.area_codes.insert("0898", (21, 0));
        t.regions.insert(3, (None, "江苏".into()));
        t.regions.insert(12, (Some(3), "南京".into()));
        t
    }

    #[test]
    fn lookups() {
        let t = table();
        let nj = Location { province_id: 3, city_id: 12, operator: 2 };
        assert_eq!(t.lookup("18651683344"), Some(nj));
        assert_eq!(t.lookup("+86 186 5168 3344"), Some(nj));
        assert_eq!(t.lookup("008618651683344"), Some(nj));
        assert_eq!(t.lookup_normalized("018651683344"), Some(nj), "trunk 0 before a mobile number");
        // The file's operator wins over the segment's (a ported prefix).
        assert_eq!(t.lookup("13800001234"), Some(Location { province_id: 5, city_id: 0, operator: 2 }));
        // No prefix row: the segment still gives the operator.
        assert_eq!(t.lookup("18912345678"), Some(Location { province_id: 0, city_id: 0, operator: 3 }));
        assert_eq!(t.lookup("025-8400 1234"), Some(Location { province_id: 3, city_id: 12, operator: 0 }));
        assert_eq!(t.lookup("0898 6666 8888"), Some(Location { province_id: 21, city_id: 0, operator: 0 }));
        assert_eq!(t.lookup("+1 415 555 0100"), None);
        assert_eq!(t.lookup("14012345678"), None, "IoT segment, no prefix row");
        assert_eq!(t.lookup("not a number"), None);
        assert_eq!(t.region_name(12), Some("南京"));
    }
}
