//! Column widths, checked before writing so every backend behaves the same.
//!
//! PostgreSQL and MySQL enforce `VARCHAR(n)` (in characters) and MySQL's
//! `TEXT` holds 65,535 bytes; SQLite enforces neither. Rather than let one
//! backend refuse, another truncate (MySQL `INSERT IGNORE` turns "data too
//! long" into a warning even in strict mode) and the third accept, the store
//! checks every string it writes against the width in the migrations and
//! refuses the whole write with [`StoreError::TooLong`] naming the column.
//! A NUL character is refused too ([`StoreError::NulChar`]): PostgreSQL
//! cannot store it in text. The widths are listed in docs/schema.md.

use super::StoreError;

/// Width of a `TEXT` column on MySQL, in bytes (the tightest backend).
pub const TEXT_BYTES: usize = 65_535;

/// Widths of the `VARCHAR(n)` columns, in characters.
pub const ID: usize = 64;
pub const SCRIPT_ID: usize = 100;
pub const NAME: usize = 255;
pub const NUMBER: usize = 32;
pub const CALLER: usize = 64;
pub const TIME: usize = 19;
pub const SHORT: usize = 32;
pub const CODE: usize = 64;
pub const NODE: usize = 100;

/// How a column's width is counted.
#[derive(Debug, Clone, Copy)]
pub enum Width {
    /// `VARCHAR(n)`: at most n characters (Unicode scalar values).
    Chars(usize),
    /// MySQL `TEXT`: at most n bytes of UTF-8.
    Bytes(usize),
}

/// Check one value of `table.column`.
pub fn check(table: &'static str, column: &'static str, value: &str, width: Width) -> Result<(), StoreError> {
    if let Some(pos) = value.find('\0') {
        return Err(StoreError::NulChar { table, column, byte: pos });
    }
    let (len, max, unit) = match width {
        Width::Chars(max) => (value.chars().count(), max, "characters"),
        Width::Bytes(max) => (value.len(), max, "bytes"),
    };
    if len > max {
        return Err(StoreError::TooLong { table, column, len, max, unit });
    }
    Ok(())
}

/// [`check`] for an optional value.
pub fn check_opt(
    table: &'static str,
    column: &'static str,
    value: Option<&str>,
    width: Width,
) -> Result<(), StoreError> {
    value.map_or(Ok(()), |v| check(table, column, v, width))
}

/// `VARCHAR(n)` shorthand.
pub const fn chars(n: usize) -> Width {
    Width::Chars(n)
}

/// `TEXT` shorthand.
pub const TEXT: Width = Width::Bytes(TEXT_BYTES);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_characters_not_bytes_for_varchar() {
        // 32 CJK characters are 96 bytes but fit VARCHAR(32).
        let s = "呼".repeat(32);
        assert!(check("t", "c", &s, chars(32)).is_ok());
        let e = check("t", "c", &format!("{s}x"), chars(32)).unwrap_err();
        assert_eq!(e.to_string(), "t.c is too long: 33 characters, at most 32 allowed");
    }

    #[test]
    fn counts_bytes_for_text() {
        let s = "é".repeat(TEXT_BYTES / 2 + 1);
        let e = check("records", "recordfile", &s, TEXT).unwrap_err();
        assert!(e.to_string().contains("records.recordfile is too long: 65536 bytes"), "{e}");
    }

    #[test]
    fn refuses_nul() {
        let e = check("records", "callee", "138\u{0}", chars(NUMBER)).unwrap_err();
        assert_eq!(e.to_string(), "records.callee contains a NUL character at byte 3");
    }
}
