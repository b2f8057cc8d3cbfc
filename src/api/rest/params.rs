//! Request parameters: collected from the query string and the body (JSON or
//! form), then validated into the store's filters. The operator CLI builds the
//! same [`Params`] from its flags, so both reject the same input with the same
//! messages, each naming the parameter.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use super::{ApiErr, PER_PAGE};
use crate::location::Operator;
use crate::store::api::{NumberFilter, RecordFilter};

/// Parameters by name; repeated and `name[]` keys become arrays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(pub Map<String, Value>);

impl Params {
    /// Parse `a=1&b[]=2&b[]=3` (also PHP's `b[0]=2`).
    pub fn from_query(q: &str) -> Params {
        let mut m = Map::new();
        for (k, v) in form_urlencoded::parse(q.as_bytes()) {
            let (key, is_list) = match k.find('[') {
                Some(i) if k.ends_with(']') => (k[..i].to_string(), true),
                _ => (k.to_string(), false),
            };
            let v = Value::String(v.into_owned());
            match m.get_mut(&key) {
                Some(Value::Array(a)) => a.push(v),
                Some(prev) => {
                    let p = prev.take();
                    *prev = Value::Array(vec![p, v]);
                }
                None => {
                    m.insert(key, if is_list { Value::Array(vec![v]) } else { v });
                }
            }
        }
        Params(m)
    }

    /// Merge a request body: JSON object, or a form.
    pub fn merge_body(&mut self, content_type: Option<&str>, body: &[u8]) -> Result<(), ApiErr> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let ct = content_type.unwrap_or("").to_ascii_lowercase();
        if ct.contains("x-www-form-urlencoded") {
            let text = std::str::from_utf8(body).map_err(|_| ApiErr::param("body", "form body is not UTF-8"))?;
            self.0.extend(Params::from_query(text).0);
            return Ok(());
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => {
                self.0.extend(o);
                Ok(())
            }
            Ok(_) => Err(ApiErr::param("body", "must be a JSON object")),
            Err(e) => Err(ApiErr::param("body", format!("not valid JSON: {e}"))),
        }
    }

    pub fn get(&self, k: &str) -> Option<&Value> {
        self.0.get(k).filter(|v| !v.is_null() && v.as_str() != Some(""))
    }

    pub fn insert(&mut self, k: &str, v: Value) {
        self.0.insert(k.to_string(), v);
    }

    /// A string; numbers are taken as their text.
    pub fn string(&self, k: &str) -> Result<Option<String>, ApiErr> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(ApiErr::param(k, "must be a string")),
        }
    }

    pub fn required_string(&self, k: &str) -> Result<String, ApiErr> {
        self.string(k)?.filter(|s| !s.is_empty()).ok_or_else(|| ApiErr::param(k, "is required"))
    }

    /// An integer; numeric strings are accepted.
    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiErr> {
        match self.get(k) {
            None => Ok(None),
            Some(v) => as_int(v).map(Some).ok_or_else(|| ApiErr::param(k, format!("must be an integer, got {v}"))),
        }
    }

    pub fn int_in(&self, k: &str, lo: i64, hi: i64) -> Result<Option<i64>, ApiErr> {
        match self.int(k)? {
            Some(v) if v < lo || v > hi => Err(ApiErr::param(k, format!("must be between {lo} and {hi}, got {v}"))),
            v => Ok(v),
        }
    }

    /// `0/1`, `true/false`.
    pub fn flag(&self, k: &str) -> Result<bool, ApiErr> {
        match self.get(k) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => match as_int(v) {
                Some(0) => Ok(false),
                Some(1) => Ok(true),
                _ => match v.as_str() {
                    Some("true") => Ok(true),
                    Some("false") => Ok(false),
                    _ => Err(ApiErr::param(k, format!("must be 0 or 1, got {v}"))),
                },
            },
        }
    }

    /// A list: a JSON array, a JSON text of one, or comma-separated text.
    pub fn list(&self, k: &str) -> Result<Vec<Value>, ApiErr> {
        match self.get(k) {
            None => Ok(vec![]),
            Some(Value::Array(a)) => Ok(a.iter().map(unjson).collect()),
            Some(Value::String(s)) => {
                let s = s.trim();
                if s.starts_with('[') {
                    match serde_json::from_str::<Value>(s) {
                        Ok(Value::Array(a)) => Ok(a),
                        _ => Err(ApiErr::param(k, format!("not a valid JSON array: {s}"))),
                    }
                } else {
                    Ok(s.split(',').map(|x| Value::String(x.trim().to_string())).filter(|v| v != "").collect())
                }
            }
            Some(v @ Value::Number(_)) => Ok(vec![v.clone()]),
            Some(v) => Err(ApiErr::param(k, format!("must be an array, got {v}"))),
        }
    }

    pub fn int_list(&self, k: &str) -> Result<Vec<i64>, ApiErr> {
        self.list(k)?
            .iter()
            .map(|v| as_int(v).ok_or_else(|| ApiErr::param(k, format!("every item must be an integer, got {v}"))))
            .collect()
    }

    pub fn string_list(&self, k: &str) -> Result<Vec<String>, ApiErr> {
        self.list(k)?
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.trim().to_string()),
                Value::Number(n) => Ok(n.to_string()),
                _ => Err(ApiErr::param(k, format!("every item must be a string, got {v}"))),
            })
            .collect()
    }

    /// `[min, max]` of non-negative integers.
    pub fn range(&self, k: &str) -> Result<Option<(i64, i64)>, ApiErr> {
        let l = self.int_list(k)?;
        match l.as_slice() {
            [] => Ok(None),
            [a, b] if *a >= 0 && a <= b => Ok(Some((*a, *b))),
            [a, b] => Err(ApiErr::param(k, format!("needs 0 ≤ min ≤ max, got [{a}, {b}]"))),
            _ => Err(ApiErr::param(k, "must be [min, max]")),
        }
    }

    /// A time `YYYY-MM-DD HH:MM:SS` (or a bare date: its first or last second).
    pub fn datetime(&self, k: &str, end_of_day: bool) -> Result<Option<String>, ApiErr> {
        let Some(s) = self.string(k)? else { return Ok(None) };
        let s = s.replace('T', " ");
        if let Ok(t) = NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S") {
            return Ok(Some(t.format("%Y-%m-%d %H:%M:%S").to_string()));
        }
        if let Ok(t) = NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M") {
            return Ok(Some(t.format("%Y-%m-%d %H:%M:00").to_string()));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
            let time = if end_of_day { "23:59:59" } else { "00:00:00" };
            return Ok(Some(format!("{} {time}", d.format("%Y-%m-%d"))));
        }
        Err(ApiErr::param(k, format!("must be YYYY-MM-DD HH:MM:SS, got {s:?}")))
    }

    /// `page`, 1 when absent.
    pub fn page(&self) -> Result<i64, ApiErr> {
        Ok(self.int_in("page", 1, 1_000_000_000)?.unwrap_or(1))
    }
}

fn as_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Items of a query-string list may themselves be JSON (`levels[]=[0,100]`).
fn unjson(v: &Value) -> Value {
    match v {
        Value::String(s) if s.trim_start().starts_with('[') => serde_json::from_str(s).unwrap_or_else(|_| v.clone()),
        _ => v.clone(),
    }
}

/// A task id as clients send it: non-empty, no longer than the column.
pub fn task_id(p: &Params) -> Result<String, ApiErr> {
    let t = p.required_string("task_id")?;
    if t.len() > 64 {
        return Err(ApiErr::param("task_id", "longer than 64 characters"));
    }
    Ok(t)
}

/// Validate the filters of `POST v1/task/query_done_task_phones`.
pub fn record_filter(p: &Params) -> Result<RecordFilter, ApiErr> {
    let mut levels = Vec::new();
    for (i, v) in p.list("levels")?.iter().enumerate() {
        let pair: Vec<i64> = match v {
            Value::Array(a) => a.iter().filter_map(as_int).collect(),
            _ => vec![],
        };
        match pair.as_slice() {
            [a, b] if a <= b => levels.push((*a, *b)),
            _ => return Err(ApiErr::param("levels", format!("item {i} must be a score range [min, max], got {v}"))),
        }
    }
    let keyword = p.string("keyword")?.filter(|k| !k.is_empty());
    if let Some(k) = &keyword {
        if k.len() > 32 {
            return Err(ApiErr::param("keyword", "longer than 32 characters"));
        }
    }
    let start_at = p.datetime("start_at", false)?;
    let end_at = p.datetime("end_at", true)?;
    if let (Some(a), Some(b)) = (&start_at, &end_at) {
        if a > b {
            return Err(ApiErr::param("end_at", format!("is before start_at ({b} < {a})")));
        }
    }
    let tags = p.string_list("tags")?;
    if tags.len() > 100 {
        return Err(ApiErr::param("tags", "at most 100 tag ids"));
    }
    Ok(RecordFilter {
        task_id: task_id(p)?,
        page: p.page()?,
        per_page: PER_PAGE,
        id: p.string("id")?.filter(|s| !s.is_empty()),
        levels,
        keyword,
        // Seconds in the query, milliseconds in the table; a bound of N s
        // takes every call shorter than N+1 s.
        bill_ms: p.range("bills")?.map(|(a, b)| (a.saturating_mul(1000), b.saturating_add(1).saturating_mul(1000))),
        rounds: p.range("rounds")?.map(|(a, b)| (a, b.saturating_add(1))),
        tags,
        start_at,
        end_at,
    })
}

/// Operator code of a `type` value: lt 联通, dx 电信, yd 移动, gd 广电.
pub fn operator_code(s: &str) -> Option<i64> {
    Operator::ALL.into_iter().find(|o| o.short().eq_ignore_ascii_case(s.trim())).map(Operator::code)
}

/// Validate the filters of `GET v1/task/number`.
pub fn number_filter(p: &Params) -> Result<NumberFilter, ApiErr> {
    let status = p.int_list("status")?;
    if let Some(s) = status.iter().find(|s| !(0..=12).contains(*s)) {
        return Err(ApiErr::param("status", format!("must be 0–12, got {s}")));
    }
    let mut operators = Vec::new();
    for t in p.string_list("type")? {
        operators.push(operator_code(&t).ok_or_else(|| {
            ApiErr::param("type", format!("must be lt (联通), dx (电信), yd (移动) or gd (广电), got {t:?}"))
        })?);
    }
    let keyword = p.string("keyword")?.filter(|k| !k.is_empty());
    if keyword.as_ref().is_some_and(|k| k.len() > 32) {
        return Err(ApiErr::param("keyword", "longer than 32 characters"));
    }
    Ok(NumberFilter {
        task_id: task_id(p)?,
        page: p.page()?,
        per_page: PER_PAGE,
        status,
        keyword,
        operators,
        call_history: p.flag("call_history")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Params {
        Params(v.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn record_filter_converts_and_names_fields() {
        let f = record_filter(&params(json!({
            "task_id": "t", "page": "2", "levels": [[0, 100], [100, 500]], "bills": [0, 200],
            "rounds": [1, 5], "tags": ["a"], "start_at": "2019-05-23", "end_at": "2019-05-23 23:59:59"
        })))
        .unwrap();
        assert_eq!(f.page, 2);
        assert_eq!(f.levels, vec![(0, 100), (100, 500)]);
        assert_eq!(f.bill_ms, Some((0, 201_000)));
        assert_eq!(f.rounds, Some((1, 6)));
        assert_eq!(f.start_at.as_deref(), Some("2019-05-23 00:00:00"));
        for (body, field) in [
            (json!({}), "task_id"),
            (json!({"task_id": "t", "page": 0}), "page"),
            (json!({"task_id": "t", "levels": [[5]]}), "levels"),
            (json!({"task_id": "t", "bills": [5, 1]}), "bills"),
            (json!({"task_id": "t", "rounds": "x"}), "rounds"),
            (json!({"task_id": "t", "start_at": "yesterday"}), "start_at"),
            (json!({"task_id": "t", "tags": {}}), "tags"),
        ] {
            let e = record_filter(&params(body)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some(field), "{}", e.message);
            assert!(e.message.starts_with(field), "{}", e.message);
        }
    }

    #[test]
    fn query_lists() {
        let p = Params::from_query("task_id=t&status[]=0&status[]=1&type[]=lt&type[]=yd&call_history=1");
        let f = number_filter(&p).unwrap();
        assert_eq!(f.status, vec![0, 1]);
        assert_eq!(f.operators, vec![2, 1]);
        assert!(f.call_history);
        let e = number_filter(&Params::from_query("task_id=t&type=xx")).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("type"));
        let p = Params::from_query("task_id=t&levels[]=[0,100]&levels[]=[100,500]");
        assert_eq!(record_filter(&p).unwrap().levels, vec![(0, 100), (100, 500)]);
    }
}
