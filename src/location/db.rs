//! The location tables: `regions` (provinces and cities by name),
//! `mobile_prefixes` (7-digit prefix → region ids, operator) and the
//! `location_version` row an import bumps so every process reloads.
//!
//! Region ids are allocated as `max(MAX(id) + 1, 1000)` inside one write
//! transaction: two processes creating regions at once collide on the
//! primary key, and the loser re-reads and retries. Ids below 1000 are left
//! to rows made by hand (the seeds show small ids).

use std::collections::HashMap;

use futures::TryStreamExt;
use sqlx::Row;

use super::area_codes::{AREA_CODES, PROVINCES};
use super::LocationError;
use crate::store::{now_str, Backend, Store};

/// First id given to a region created here.
pub const FIRST_REGION_ID: i64 = 1000;
const ATTEMPTS: u32 = 5;

/// Regions by name: provinces by name, cities by (province id, name).
#[derive(Debug, Default, Clone)]
pub struct RegionIndex {
    provinces: HashMap<String, i64>,
    cities: HashMap<(i64, String), i64>,
    rows: HashMap<i64, (Option<i64>, String)>,
    /// Cities without an area code.
    no_area_code: std::collections::HashSet<i64>,
}

impl RegionIndex {
    pub fn province(&self, name: &str) -> Option<i64> {
        self.provinces.get(name).copied()
    }

    pub fn city(&self, province: i64, name: &str) -> Option<i64> {
        self.cities.get(&(province, name.to_string())).copied()
    }

    pub fn names(&self) -> HashMap<i64, (Option<i64>, String)> {
        self.rows.clone()
    }

    fn add(&mut self, id: i64, pid: Option<i64>, name: String) {
        // Several rows of one name: the smallest id wins, on every node.
        let slot = match pid {
            None => self.provinces.entry(name.clone()).or_insert(id),
            Some(p) => self.cities.entry((p, name.clone())).or_insert(id),
        };
        *slot = (*slot).min(id);
        self.rows.insert(id, (pid, name));
    }
}

pub async fn read_regions(store: &Store) -> Result<RegionIndex, LocationError> {
    let rows = sqlx::query("SELECT id, pid, city, area_code FROM regions").fetch_all(store.pool()).await?;
    let mut ix = RegionIndex::default();
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let pid: Option<i64> = r.try_get("pid")?;
        if pid.is_some() && r.try_get::<Option<String>, _>("area_code")?.is_none() {
            ix.no_area_code.insert(id);
        }
        ix.add(id, pid, r.try_get("city")?);
    }
    Ok(ix)
}

/// A region to make sure of: a province, or a city of a province.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Wanted {
    pub province: String,
    pub city: Option<String>,
    pub area_code: Option<String>,
}

/// Make sure every wanted province and city exists; returns the index.
pub async fn ensure_regions(store: &Store, wanted: &[Wanted]) -> Result<RegionIndex, LocationError> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let ix = read_regions(store).await?;
        let missing_p: Vec<&str> = {
            let mut v: Vec<&str> =
                wanted.iter().map(|w| w.province.as_str()).filter(|p| ix.province(p).is_none()).collect();
            v.dedup();
            v
        };
        let missing_c: Vec<&Wanted> = wanted
            .iter()
            .filter(|w| match (&w.city, ix.province(&w.province)) {
                (None, _) => false,
                (Some(c), Some(p)) => ix.city(p, c).is_none(),
                (Some(_), None) => true,
            })
            .collect();
        if missing_p.is_empty() && missing_c.is_empty() {
            return Ok(ix);
        }
        if let Err(e) = create(store, &ix, &missing_p, &missing_c).await {
            tracing::debug!("creating regions collided, retrying: {e}");
            last = Some(e);
        }
    }
    Err(last.unwrap_or(LocationError::Regions(ATTEMPTS)))
}

async fn create(store: &Store, ix: &RegionIndex, provinces: &[&str], cities: &[&Wanted]) -> Result<(), LocationError> {
    let now = now_str();
    let mut tx = store.begin_write().await?;
    let max: Option<i64> = sqlx::query("SELECT MAX(id) AS m FROM regions").fetch_one(&mut *tx).await?.try_get("m")?;
    let mut next = max.map_or(FIRST_REGION_ID, |m| (m + 1).max(FIRST_REGION_ID));
    const INS: &str =
        "INSERT INTO regions (id, pid, city, area_code, post_code, created_at, updated_at) VALUES (?, ?, ?, ?, NULL, ?, ?)";
    let mut new_p: HashMap<&str, i64> = HashMap::new();
    for p in provinces {
        if new_p.contains_key(p) {
            continue;
        }
        sqlx::query(store.sql(INS))
            .bind(next)
            .bind(None::<i64>)
            .bind(*p)
            .bind(None::<String>)
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        new_p.insert(p, next);
        next += 1;
    }
    let mut done = std::collections::HashSet::new();
    for w in cities {
        let Some(city) = &w.city else { continue };
        let Some(pid) = ix.province(&w.province).or_else(|| new_p.get(w.province.as_str()).copied()) else { continue };
        if !done.insert((pid, city.as_str())) {
            continue;
        }
        sqlx::query(store.sql(INS))
            .bind(next)
            .bind(Some(pid))
            .bind(city.as_str())
            .bind(w.area_code.clone())
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        next += 1;
    }
    bump(&mut tx, store).await?;
    tx.commit().await?;
    Ok(())
}

/// The shipped provinces and area-code cities.
pub async fn ensure_shipped_regions(store: &Store) -> Result<RegionIndex, LocationError> {
    let mut wanted: Vec<Wanted> =
        PROVINCES.iter().map(|p| Wanted { province: (*p).into(), city: None, area_code: None }).collect();
    wanted.extend(AREA_CODES.iter().map(|(code, p, c)| Wanted {
        province: (*p).into(),
        city: Some((*c).into()),
        area_code: Some((*code).into()),
    }));
    let ix = ensure_regions(store, &wanted).await?;
    // Cities an import created before the shipped ones existed get their code.
    let missing: Vec<(i64, &str)> = AREA_CODES
        .iter()
        .filter_map(|(code, p, c)| Some((ix.city(ix.province(p)?, c)?, *code)))
        .filter(|(id, _)| ix.no_area_code.contains(id))
        .collect();
    if !missing.is_empty() {
        let mut tx = store.begin_write().await?;
        for (id, code) in missing {
            sqlx::query(store.sql("UPDATE regions SET area_code = ? WHERE id = ? AND area_code IS NULL"))
                .bind(code)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    Ok(ix)
}

async fn bump(tx: &mut sqlx::Transaction<'static, sqlx::Any>, store: &Store) -> Result<(), sqlx::Error> {
    sqlx::query(store.sql("UPDATE location_version SET version = version + 1, updated_at = ? WHERE id = 1"))
        .bind(now_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// What changes whenever the location data does.
pub async fn stamp(store: &Store) -> Result<String, LocationError> {
    let v: i64 = sqlx::query("SELECT version FROM location_version WHERE id = 1")
        .fetch_optional(store.pool())
        .await?
        .map(|r| r.try_get("version"))
        .transpose()?
        .unwrap_or(0);
    let n: i64 = sqlx::query("SELECT COUNT(*) AS n FROM regions").fetch_one(store.pool()).await?.try_get("n")?;
    Ok(format!("{v}/{n}"))
}

/// Stream every prefix row into `f(prefix, province, city, operator)`.
pub async fn load_prefixes(store: &Store, mut f: impl FnMut(&str, i64, i64, i64)) -> Result<(), LocationError> {
    let mut rows =
        sqlx::query("SELECT prefix, province_id, city_id, operator FROM mobile_prefixes").fetch(store.pool());
    while let Some(r) = rows.try_next().await? {
        let prefix: String = r.try_get("prefix")?;
        f(&prefix, r.try_get("province_id")?, r.try_get("city_id")?, r.try_get("operator")?);
    }
    Ok(())
}

/// One `mobile_prefixes` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixRow {
    pub prefix: String,
    pub province_id: i64,
    pub city_id: i64,
    pub operator: i64,
}

/// Insert or replace prefix rows in one statement per call (the caller keeps
/// batches under the backends' parameter limits and free of repeats).
pub async fn upsert_prefixes(store: &Store, rows: &[PrefixRow]) -> Result<(), LocationError> {
    if rows.is_empty() {
        return Ok(());
    }
    let values = vec!["(?, ?, ?, ?, ?)"; rows.len()].join(", ");
    let tail = match store.backend() {
        Backend::MySql => " ON DUPLICATE KEY UPDATE province_id = VALUES(province_id), city_id = VALUES(city_id), operator = VALUES(operator), updated_at = VALUES(updated_at)",
        Backend::Sqlite | Backend::Postgres => " ON CONFLICT (prefix) DO UPDATE SET province_id = excluded.province_id, city_id = excluded.city_id, operator = excluded.operator, updated_at = excluded.updated_at",
    };
    let q = format!(
        "INSERT INTO mobile_prefixes (prefix, province_id, city_id, operator, updated_at) VALUES {values}{tail}"
    );
    let now = now_str();
    let mut query = sqlx::query(store.sql(&q));
    for r in rows {
        query = query.bind(r.prefix.clone()).bind(r.province_id).bind(r.city_id).bind(r.operator).bind(now.clone());
    }
    let mut tx = store.begin_write().await?;
    query.execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Tell every process's [`super::LocationCache`] to reload.
pub async fn bump_version(store: &Store) -> Result<(), LocationError> {
    let mut tx = store.begin_write().await?;
    bump(&mut tx, store).await?;
    tx.commit().await?;
    Ok(())
}
