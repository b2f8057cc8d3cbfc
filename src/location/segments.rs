//! Operators of mainland China mobile numbers by their segment (号段).
//!
//! Source: the MIIT's segment allocations as published by the operators and
//! summarised on zh.wikipedia.org "中国内地移动终端通讯号段" (2024). Virtual
//! operators (虚拟运营商, MVNOs) ride on one host network, named here; for
//! 170 the host depends on the 4th digit. A 4-digit entry wins over the
//! 3-digit one. Segments not listed (IoT-only 140–144/148, unassigned ones)
//! give [`Operator::Unknown`].

use super::Operator;
use Operator::{Broadnet as GD, Mobile as YD, Telecom as DX, Unicom as LT};

/// What a segment is besides its host network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The operator's own voice/SMS numbers.
    Own,
    /// Data-card / IoT numbers of the operator (they rarely answer calls).
    Data,
    /// A virtual operator on this host network.
    Virtual,
    /// Satellite service of this operator.
    Satellite,
}

/// `(segment, host operator, kind)`: 3- or 4-digit prefixes of 11-digit numbers.
pub const SEGMENTS: &[(&str, Operator, Kind)] = &[
    // 中国移动 (yd)
    ("134", YD, Kind::Own), // 1340–1348; 1349 is satellite, below
    ("135", YD, Kind::Own),
    ("136", YD, Kind::Own),
    ("137", YD, Kind::Own),
    ("138", YD, Kind::Own),
    ("139", YD, Kind::Own),
    ("147", YD, Kind::Data),
    ("150", YD, Kind::Own),
    ("151", YD, Kind::Own),
    ("152", YD, Kind::Own),
    ("157", YD, Kind::Own),
    ("158", YD, Kind::Own),
    ("159", YD, Kind::Own),
    ("165", YD, Kind::Virtual),
    ("172", YD, Kind::Own),
    ("178", YD, Kind::Own),
    ("182", YD, Kind::Own),
    ("183", YD, Kind::Own),
    ("184", YD, Kind::Own),
    ("187", YD, Kind::Own),
    ("188", YD, Kind::Own),
    ("195", YD, Kind::Own),
    ("197", YD, Kind::Own),
    ("198", YD, Kind::Own),
    ("1703", YD, Kind::Virtual),
    ("1705", YD, Kind::Virtual),
    ("1706", YD, Kind::Virtual),
    // 中国联通 (lt)
    ("130", LT, Kind::Own),
    ("131", LT, Kind::Own),
    ("132", LT, Kind::Own),
    ("145", LT, Kind::Data),
    ("146", LT, Kind::Data),
    ("155", LT, Kind::Own),
    ("156", LT, Kind::Own),
    ("166", LT, Kind::Own),
    ("167", LT, Kind::Virtual),
    ("171", LT, Kind::Virtual),
    ("175", LT, Kind::Own),
    ("176", LT, Kind::Own),
    ("185", LT, Kind::Own),
    ("186", LT, Kind::Own),
    ("196", LT, Kind::Own),
    ("1704", LT, Kind::Virtual),
    ("1707", LT, Kind::Virtual),
    ("1708", LT, Kind::Virtual),
    ("1709", LT, Kind::Virtual),
    // 中国电信 (dx)
    ("133", DX, Kind::Own),
    ("149", DX, Kind::Data),
    ("153", DX, Kind::Own),
    ("162", DX, Kind::Virtual),
    ("173", DX, Kind::Own),
    ("177", DX, Kind::Own),
    ("180", DX, Kind::Own),
    ("181", DX, Kind::Own),
    ("189", DX, Kind::Own),
    ("190", DX, Kind::Own),
    ("191", DX, Kind::Own),
    ("193", DX, Kind::Own),
    ("199", DX, Kind::Own),
    ("1700", DX, Kind::Virtual),
    ("1701", DX, Kind::Virtual),
    ("1702", DX, Kind::Virtual),
    ("1740", DX, Kind::Satellite), // 天通 satellite (17400–17405)
    // 中国广电 (gd)
    ("192", GD, Kind::Own),
    // 1349: 中国交通通信 satellite, no mobile network operator.
    ("1349", Operator::Unknown, Kind::Satellite),
];

/// The segment entry of an 11-digit mobile number (longest prefix).
pub fn segment_of(number: &str) -> Option<(Operator, Kind)> {
    if number.len() != 11 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let p4 = &number[..4];
    let p3 = &number[..3];
    SEGMENTS
        .iter()
        .find(|(s, _, _)| *s == p4)
        .or_else(|| SEGMENTS.iter().find(|(s, _, _)| *s == p3))
        .map(|(_, o, k)| (*o, *k))
}

/// The host operator of an 11-digit mobile number; `Unknown` for anything
/// else (landlines, unlisted segments).
pub fn operator_of(number: &str) -> Operator {
    segment_of(number).map_or(Operator::Unknown, |(o, _)| o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_operator_by_segment() {
        for (n, o) in [
            ("13012345678", LT),
            ("13112345678", LT),
            ("13212345678", LT),
            ("14512345678", LT),
            ("15512345678", LT),
            ("15612345678", LT),
            ("16612345678", LT),
            ("17512345678", LT),
            ("17612345678", LT),
            ("18512345678", LT),
            ("18651683344", LT),
            ("13312345678", DX),
            ("14912345678", DX),
            ("15312345678", DX),
            ("17312345678", DX),
            ("17712345678", DX),
            ("18012345678", DX),
            ("18112345678", DX),
            ("18912345678", DX),
            ("19012345678", DX),
            ("19112345678", DX),
            ("19312345678", DX),
            ("19912345678", DX),
            ("13412345678", YD),
            ("13812345678", YD),
            ("13912345678", YD),
            ("14712345678", YD),
            ("15012345678", YD),
            ("15212345678", YD),
            ("15712345678", YD),
            ("15912345678", YD),
            ("17212345678", YD),
            ("17812345678", YD),
            ("18212345678", YD),
            ("18412345678", YD),
            ("18712345678", YD),
            ("18812345678", YD),
            ("19512345678", YD),
            ("19712345678", YD),
            ("19812345678", YD),
            ("19212345678", GD),
        ] {
            assert_eq!(operator_of(n), o, "{n}");
        }
    }

    #[test]
    fn virtual_operators_by_fourth_digit() {
        for (n, o) in [
            ("17001234567", DX),
            ("17011234567", DX),
            ("17021234567", DX),
            ("17031234567", YD),
            ("17051234567", YD),
            ("17061234567", YD),
            ("17041234567", LT),
            ("17071234567", LT),
            ("17081234567", LT),
            ("17091234567", LT),
            ("17112345678", LT),
            ("16212345678", DX),
            ("16512345678", YD),
            ("16712345678", LT),
        ] {
            assert_eq!(segment_of(n), Some((o, Kind::Virtual)), "{n}");
        }
    }

    #[test]
    fn four_digit_entries_win_and_unknowns_stay_unknown() {
        assert_eq!(segment_of("13491234567"), Some((Operator::Unknown, Kind::Satellite)));
        assert_eq!(operator_of("13481234567"), YD);
        assert_eq!(segment_of("17401234567"), Some((DX, Kind::Satellite)));
        assert_eq!(operator_of("17411234567"), Operator::Unknown);
        assert_eq!(operator_of("14012345678"), Operator::Unknown);
        assert_eq!(operator_of("02566668888"), Operator::Unknown);
        assert_eq!(operator_of("1381234567"), Operator::Unknown, "10 digits");
        assert_eq!(operator_of("1381234567a"), Operator::Unknown);
    }

    #[test]
    fn table_has_no_duplicate_segments() {
        let mut seen = std::collections::HashSet::new();
        for (s, _, _) in SEGMENTS {
            assert!(seen.insert(*s), "segment {s} listed twice");
            assert!(s.len() == 3 || s.len() == 4, "{s}");
            assert!(s.starts_with('1'));
        }
    }
}
