//! Phone number normalization for imports (the rule is in docs/schema.md,
//! "Phone numbers").
//!
//! 1. Full-width characters (`０`–`９`, `＋`, `－`, `（`, `）`, the ideographic
//!    space) count as their ASCII forms.
//! 2. Separators are dropped: any whitespace, `-`, `(`, `)`.
//! 3. A `+` is allowed only as the first character that is not a separator;
//!    anything else that is not a digit is refused, naming the character and
//!    its 1-based position in the raw input.
//! 4. China's country code goes: `+86`, `0086` or a bare `86` followed by an
//!    11-digit mobile number (`1[3-9]` + 9 digits, so 13 digits with the bare
//!    `86`) leaves the 11-digit mobile number; `+86`/`0086` followed by a
//!    landline number (area code without its trunk 0) gives the domestic
//!    form with the leading `0`. Other `+` numbers stay `+` and digits.
//! 5. The result has 3 to 20 digits; numbers outside that are refused.
//! 6. A domestic number beginning `1[3-9]` is a mobile number and must have
//!    11 digits (service numbers are `1[0-2]…`: 110, 10086, 12345).
//!
//! The API's and the CLI's number import, the blacklist endpoints and the
//! location lookup all use this one rule.

use std::collections::HashMap;

use sqlx::Row;

use super::limits::{self, chars, check, check_opt};
use super::{now_str, Backend, Store, StoreError};

/// Why a raw number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("phone number is empty")]
    Empty,
    #[error("phone number {raw:?}: invalid character {ch:?} at position {pos}")]
    BadChar { raw: String, ch: char, pos: usize },
    #[error("phone number {raw:?}: '+' at position {pos} is only allowed at the start")]
    MisplacedPlus { raw: String, pos: usize },
    #[error("phone number {raw:?} has {digits} digits; between {min} and {max} are allowed")]
    BadLength { raw: String, digits: usize, min: usize, max: usize },
    #[error("phone number {raw:?}: a mobile number (1[3-9]…) has 11 digits, this has {digits}")]
    MobileLength { raw: String, digits: usize },
}

/// Fewest digits accepted (short service numbers such as 110 or 10086).
pub const MIN_DIGITS: usize = 3;
/// Most digits accepted (E.164 allows 15; room for extensions' prefixes).
pub const MAX_DIGITS: usize = 20;

fn ascii_form(c: char) -> char {
    match c {
        '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
        '＋' => '+',
        '－' | '‐' | '‑' | '–' | '—' => '-',
        '（' => '(',
        '）' => ')',
        _ => c,
    }
}

fn is_mobile(d: &str) -> bool {
    d.len() == 11 && looks_mobile(d)
}

/// Begins like a mobile number: `1[3-9]`.
fn looks_mobile(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() >= 2 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1])
}

/// What follows China's country code: a mobile number as is (rule 6 then
/// checks its length), a landline with its trunk 0 put back.
fn after_country_code(rest: &str) -> Option<String> {
    if looks_mobile(rest) {
        Some(rest.to_string())
    } else if !rest.is_empty() && !rest.starts_with('0') {
        Some(format!("0{rest}"))
    } else {
        None
    }
}

/// Normalize a raw phone number by the rule above.
pub fn normalize_number(raw: &str) -> Result<String, NumberError> {
    let mut digits = String::with_capacity(raw.len());
    let mut plus = false;
    for (i, c) in raw.chars().enumerate() {
        let pos = i + 1;
        let c = ascii_form(c);
        if c.is_whitespace() || matches!(c, '-' | '(' | ')') {
            continue;
        }
        if c == '+' {
            if plus || !digits.is_empty() {
                return Err(NumberError::MisplacedPlus { raw: raw.to_string(), pos });
            }
            plus = true;
            continue;
        }
        if !c.is_ascii_digit() {
            return Err(NumberError::BadChar { raw: raw.to_string(), ch: c, pos });
        }
        digits.push(c);
    }
    if digits.is_empty() {
        return Err(NumberError::Empty);
    }
    let out = if plus {
        digits.strip_prefix("86").and_then(after_country_code).unwrap_or_else(|| format!("+{digits}"))
    } else if let Some(rest) = digits.strip_prefix("0086") {
        after_country_code(rest).unwrap_or(digits)
    } else {
        match digits.strip_prefix("86") {
            Some(rest) if is_mobile(rest) => rest.to_string(),
            _ => digits,
        }
    };
    let n = out.trim_start_matches('+').len();
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&n) {
        return Err(NumberError::BadLength { raw: raw.to_string(), digits: n, min: MIN_DIGITS, max: MAX_DIGITS });
    }
    if looks_mobile(&out) && out.len() != 11 {
        return Err(NumberError::MobileLength { raw: raw.to_string(), digits: n });
    }
    Ok(out)
}

/// One imported number, normalized, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNumber {
    /// Line of the upload it came from (reported back for duplicates).
    pub line: u64,
    pub number: String,
    pub location: crate::location::Location,
    pub blacklisted: bool,
    /// Script variables as a JSON object.
    pub variables: Option<String>,
}

/// Rows per multi-row number INSERT: 10 parameters each, well under
/// SQLite's 32,766 and PostgreSQL's 65,535.
const NUMBERS_PER_STATEMENT: usize = 500;

fn bind_number<'q>(
    q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    task_id: &'q str,
    r: &'q NewNumber,
    now: &'q str,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    q.bind(task_id)
        .bind(r.number.as_str())
        .bind(r.location.province_id)
        .bind(r.location.city_id)
        .bind(r.location.operator)
        .bind(i64::from(r.blacklisted))
        .bind(r.variables.as_deref())
        .bind("")
        .bind(now)
        .bind(now)
}

impl Store {
    /// Insert one batch of imported numbers in one transaction, with their
    /// province, city and operator; returns the lines that were duplicates
    /// (already in the task).
    pub async fn insert_numbers(&self, task_id: &str, rows: &[NewNumber]) -> Result<Vec<u64>, StoreError> {
        for r in rows {
            check("autodialer_number", "number", &r.number, chars(limits::NUMBER))?;
            check_opt("autodialer_number", "variables", r.variables.as_deref(), limits::TEXT)?;
        }
        let now = now_str();
        let cols = "task_id, number, province_id, city_id, operator, is_blacklist, variables, next_attempt_at, created_at, updated_at";
        let mut dups = Vec::new();
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::MySql {
            // MySQL has no INSERT … RETURNING: one statement per row, a
            // duplicate seen in its affected-row count.
            let q = format!("INSERT IGNORE INTO autodialer_number ({cols}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            for r in rows {
                let done = bind_number(sqlx::query(self.sql(&q)), task_id, r, &now).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    dups.push(r.line);
                }
            }
        } else {
            // Multi-row statements returning the numbers they inserted: one
            // round trip per chunk instead of one per number (a thread
            // hand-off each on SQLite). A number returned is the first of its
            // rows in the chunk, as with one statement per row in order.
            for chunk in rows.chunks(NUMBERS_PER_STATEMENT) {
                let q = format!(
                    "{} INTO autodialer_number ({cols}) VALUES {}{} RETURNING number",
                    self.insert_ignore(),
                    vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", "),
                    self.on_conflict_nothing()
                );
                let mut query = sqlx::query(self.sql(&q));
                for r in chunk {
                    query = bind_number(query, task_id, r, &now);
                }
                let mut inserted = std::collections::HashSet::new();
                for row in query.fetch_all(&mut *tx).await? {
                    inserted.insert(row.try_get::<String, _>(0)?);
                }
                for r in chunk {
                    if !inserted.remove(&r.number) {
                        dups.push(r.line);
                    }
                }
            }
        }
        tx.commit().await?;
        Ok(dups)
    }

    /// Province, city and operator stored on numbers, by number id (only
    /// numbers with something known).
    pub async fn number_locations(
        &self,
        number_ids: &[i64],
    ) -> Result<HashMap<i64, crate::location::Location>, StoreError> {
        let mut out = HashMap::new();
        let ids: Vec<i64> = number_ids.iter().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        if ids.is_empty() {
            return Ok(out);
        }
        let q = format!(
            "SELECT id, province_id, city_id, operator FROM autodialer_number WHERE id IN ({})",
            vec!["?"; ids.len()].join(", ")
        );
        let mut query = sqlx::query(self.sql(&q));
        for id in &ids {
            query = query.bind(*id);
        }
        for r in query.fetch_all(self.pool()).await? {
            let loc = crate::location::Location {
                province_id: r.try_get("province_id")?,
                city_id: r.try_get("city_id")?,
                operator: r.try_get("operator")?,
            };
            if loc.is_known() {
                out.insert(r.try_get("id")?, loc);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_separated_forms() {
        assert_eq!(normalize_number("18651683344").unwrap(), "18651683344");
        assert_eq!(normalize_number(" 186-5168-3344 ").unwrap(), "18651683344");
        assert_eq!(normalize_number("(186) 5168 3344").unwrap(), "18651683344");
        assert_eq!(normalize_number("186\t5168\u{3000}3344").unwrap(), "18651683344");
        assert_eq!(normalize_number("010-8888 8888").unwrap(), "01088888888");
    }

    #[test]
    fn country_code_is_stripped_from_mobile_numbers() {
        for raw in
            ["+8618651683344", "+86 186 5168 3344", "008618651683344", "8618651683344", "＋８６ １８６５１６８３３４４"]
        {
            assert_eq!(normalize_number(raw).unwrap(), "18651683344", "{raw}");
        }
    }

    #[test]
    fn country_code_before_a_landline_gives_the_domestic_form() {
        assert_eq!(normalize_number("+86 10 8888 8888").unwrap(), "01088888888");
        assert_eq!(normalize_number("0086-21-66668888").unwrap(), "02166668888");
    }

    #[test]
    fn bare_86_is_only_a_country_code_before_a_mobile_number() {
        // 86 + 8 digits is not a 13-digit mobile form: left alone.
        assert_eq!(normalize_number("8612345678").unwrap(), "8612345678");
        // 86 followed by something that is not a mobile number stays.
        assert_eq!(normalize_number("8602088888888").unwrap(), "8602088888888");
    }

    #[test]
    fn other_international_numbers_keep_their_plus() {
        assert_eq!(normalize_number("+1 (415) 555-0100").unwrap(), "+14155550100");
    }

    #[test]
    fn full_width_digits_become_ascii() {
        assert_eq!(normalize_number("１３８００１３８０００").unwrap(), "13800138000");
    }

    #[test]
    fn junk_is_refused_naming_character_and_position() {
        let e = normalize_number("138a0013800").unwrap_err();
        assert_eq!(e, NumberError::BadChar { raw: "138a0013800".into(), ch: 'a', pos: 4 });
        assert_eq!(e.to_string(), "phone number \"138a0013800\": invalid character 'a' at position 4");
        let e = normalize_number("１３８＃").unwrap_err();
        assert!(matches!(e, NumberError::BadChar { ch: '＃', pos: 4, .. }), "{e:?}");
        let e = normalize_number("138.0013.8000").unwrap_err();
        assert!(matches!(e, NumberError::BadChar { ch: '.', pos: 4, .. }), "{e:?}");
    }

    #[test]
    fn plus_only_at_the_start() {
        assert!(matches!(normalize_number("138+00138000"), Err(NumberError::MisplacedPlus { pos: 4, .. })));
        assert!(matches!(normalize_number("++8613800138000"), Err(NumberError::MisplacedPlus { pos: 2, .. })));
    }

    #[test]
    fn empty_and_lengths() {
        assert_eq!(normalize_number(""), Err(NumberError::Empty));
        assert_eq!(normalize_number(" - ( ) "), Err(NumberError::Empty));
        assert!(matches!(normalize_number("12"), Err(NumberError::BadLength { digits: 2, .. })));
        assert!(matches!(normalize_number(&"1".repeat(21)), Err(NumberError::BadLength { digits: 21, .. })));
        assert_eq!(normalize_number("110").unwrap(), "110");
    }

    #[test]
    fn mobile_numbers_have_eleven_digits() {
        let e = normalize_number("135").unwrap_err();
        assert_eq!(e, NumberError::MobileLength { raw: "135".into(), digits: 3 });
        assert!(e.to_string().contains("11 digits"), "{e}");
        assert!(matches!(normalize_number("1381234567"), Err(NumberError::MobileLength { digits: 10, .. })));
        assert!(matches!(normalize_number("+86 138123456789"), Err(NumberError::MobileLength { digits: 12, .. })));
        for ok in ["10086", "12345", "110", "95588", "+13800138000"] {
            assert!(normalize_number(ok).is_ok(), "{ok}");
        }
    }
}
