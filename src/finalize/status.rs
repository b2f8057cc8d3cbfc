//! Hangup facts to number status.
//!
//! Turns what FreeSWITCH reported about a finished (or refused) call into the
//! 0–12 number status of the task's number list, the detailed seed-004
//! `hangup_reason`, the `call_status` string and the SIP `hangup_code` of the
//! call history. The table and the decision order are documented in
//! `docs/status-mapping.md`; the sources are `hangup-causes.md` and the ESL
//! fixtures.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Number status 0–12 of seed 000.
///
/// Serialized as its integer code (the seed stores and filters by the code);
/// deserializes from the code or from [`NumberStatus::name_en`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum NumberStatus {
    Waiting = 0,
    Success = 1,
    LineFault = 2,
    Rejected = 3,
    NoAnswer = 4,
    EmptyNumber = 5,
    PoweredOff = 6,
    Suspended = 7,
    Busy = 8,
    CallInRestricted = 9,
    Arrears = 10,
    Blacklist = 11,
    CallLoss = 12,
}

impl NumberStatus {
    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::all().into_iter().find(|s| s.code() == code)
    }

    /// The seed's `status_str`. Seed 000 spells 8 as "占线、用户正忙" in
    /// `status_str` (the parameter list writes "占线/用户正忙"); 4 uses the same
    /// "、" by analogy (not attested).
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Waiting => "等待呼叫",
            Self::Success => "呼叫成功",
            Self::LineFault => "线路故障",
            Self::Rejected => "拒接",
            Self::NoAnswer => "无应答、无人接听",
            Self::EmptyNumber => "空号",
            Self::PoweredOff => "关机",
            Self::Suspended => "停机",
            Self::Busy => "占线、用户正忙",
            Self::CallInRestricted => "呼入限制",
            Self::Arrears => "欠费",
            Self::Blacklist => "黑名单",
            Self::CallLoss => "呼损",
        }
    }

    /// Stable English identifier (logs, config).
    pub fn name_en(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Success => "success",
            Self::LineFault => "line_fault",
            Self::Rejected => "rejected",
            Self::NoAnswer => "no_answer",
            Self::EmptyNumber => "empty_number",
            Self::PoweredOff => "powered_off",
            Self::Suspended => "suspended",
            Self::Busy => "busy",
            Self::CallInRestricted => "call_in_restricted",
            Self::Arrears => "arrears",
            Self::Blacklist => "blacklist",
            Self::CallLoss => "call_loss",
        }
    }

    pub fn all() -> [NumberStatus; 13] {
        use NumberStatus::*;
        [
            Waiting,
            Success,
            LineFault,
            Rejected,
            NoAnswer,
            EmptyNumber,
            PoweredOff,
            Suspended,
            Busy,
            CallInRestricted,
            Arrears,
            Blacklist,
            CallLoss,
        ]
    }

    /// Everything but `Waiting` is the result of a call attempt.
    pub fn is_final(self) -> bool {
        self != Self::Waiting
    }

    /// Default seed-000 `call_status` when no announcement named a finer one.
    /// The vocabulary is the da2 alias list of hangup-causes.md §4 ("answer"
    /// and "busy now" are attested in seed 000).
    pub fn default_call_status(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Success => "answer",
            Self::LineFault => "line fault",
            Self::Rejected => "not convenient",
            Self::NoAnswer => "not answer",
            Self::EmptyNumber => "does not exist",
            Self::PoweredOff => "power off",
            Self::Suspended => "out of service",
            Self::Busy => "busy now",
            Self::CallInRestricted => "barring of incoming",
            Self::Arrears => "defaulting",
            Self::Blacklist => "blacklist",
            Self::CallLoss => "call loss",
        }
    }

    /// Default seed-004 `hangup_reason` for a status decided by cause or SIP
    /// code. None for success and for our own losses (no 004 code fits).
    pub fn default_hangup_reason(self) -> Option<i64> {
        match self {
            Self::Waiting | Self::Success | Self::CallLoss => None,
            Self::LineFault => Some(450),
            Self::Rejected => Some(441),
            Self::NoAnswer => Some(434),
            Self::EmptyNumber => Some(430),
            Self::PoweredOff => Some(431),
            Self::Suspended => Some(432),
            Self::Busy => Some(437),
            Self::CallInRestricted => Some(451),
            Self::Arrears => Some(447),
            Self::Blacklist => Some(452),
        }
    }

    fn from_name(s: &str) -> Option<Self> {
        let t = s.trim();
        if let Ok(n) = t.parse::<i64>() {
            return Self::from_code(n);
        }
        Self::all()
            .into_iter()
            .find(|st| st.name_en().eq_ignore_ascii_case(t) || st.name_zh() == t || format!("{st:?}") == t)
    }
}

impl fmt::Display for NumberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name_en())
    }
}

impl Serialize for NumberStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.code())
    }
}

impl<'de> Deserialize<'de> for NumberStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = NumberStatus;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number status code 0-12 or its name")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<NumberStatus, E> {
                NumberStatus::from_code(v).ok_or_else(|| E::custom(format!("number status {v} is not in 0-12")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<NumberStatus, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(NumberStatus::from_code)
                    .ok_or_else(|| E::custom(format!("number status {v} is not in 0-12")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<NumberStatus, E> {
                NumberStatus::from_name(v).ok_or_else(|| E::custom(format!("unknown number status {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// What FreeSWITCH told us about how a call ended. All optional: an originate
/// refused before any channel existed has only `originate_error`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HangupFacts {
    /// `Hangup-Cause` / `variable_hangup_cause`, e.g. "USER_BUSY".
    pub hangup_cause: Option<String>,
    /// `variable_hangup_cause_q850`; 16 for FreeSWITCH-internal causes, so
    /// informational only.
    pub q850: Option<u16>,
    /// `variable_sip_term_status` ("-" or absent → None).
    pub sip_term_status: Option<u16>,
    /// `variable_sip_invite_failure_status` (487 after our CANCEL).
    pub sip_invite_failure_status: Option<u16>,
    pub sip_invite_failure_phrase: Option<String>,
    /// recv_bye / send_bye / recv_refuse / send_cancel / recv_cancel / send_refuse.
    pub sip_hangup_disposition: Option<String>,
    /// The CAUSE of a "-ERR CAUSE" originate reply.
    pub originate_error: Option<String>,
    /// CHANNEL_ANSWER seen / `variable_answer_epoch` > 0.
    pub answered: bool,
    /// `variable_billmsec`.
    pub billsec_ms: i64,
    /// `variable_mduration`.
    pub duration_ms: i64,
    /// CHANNEL_PROGRESS_MEDIA seen / `variable_progress_media_epoch` > 0.
    pub early_media: bool,
    /// Recognized carrier announcement (early-media ASR), e.g. "您拨打的号码是空号".
    pub announcement_text: Option<String>,
}

/// A variable that FreeSWITCH writes as "-" when it has no value.
fn present(v: Option<std::borrow::Cow<'_, str>>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty() && s != "-")
}

fn num<T: std::str::FromStr>(v: Option<std::borrow::Cow<'_, str>>) -> Option<T> {
    present(v).and_then(|s| s.parse().ok())
}

impl HangupFacts {
    /// Read from a CHANNEL_HANGUP_COMPLETE (or CHANNEL_HANGUP) event.
    ///
    /// Timing variables only exist on CHANNEL_HANGUP_COMPLETE; on
    /// CHANNEL_HANGUP they read 0. `answered`/`early_media` also look at the
    /// `Caller-Channel-*-Time` headers, which every channel event carries.
    pub fn from_event(ev: &voxdial_esl::Event) -> Self {
        let hangup_cause = present(ev.header("Hangup-Cause")).or_else(|| present(ev.var("hangup_cause")));
        let billsec_ms = num::<i64>(ev.var("billmsec"))
            .or_else(|| num::<i64>(ev.var("billsec")).map(|s| s.saturating_mul(1000)))
            .unwrap_or(0);
        let duration_ms = num::<i64>(ev.var("mduration"))
            .or_else(|| num::<i64>(ev.var("duration")).map(|s| s.saturating_mul(1000)))
            .unwrap_or(0);
        let positive = |v: Option<i64>| v.is_some_and(|n| n > 0);
        let answered = positive(num(ev.var("answer_epoch")))
            || positive(num(ev.header("Caller-Channel-Answered-Time")))
            || billsec_ms > 0;
        let early_media = positive(num(ev.var("progress_media_epoch")))
            || positive(num(ev.header("Caller-Channel-Progress-Media-Time")));
        HangupFacts {
            hangup_cause,
            q850: num(ev.var("hangup_cause_q850")),
            sip_term_status: num(ev.var("sip_term_status")),
            sip_invite_failure_status: num(ev.var("sip_invite_failure_status")),
            sip_invite_failure_phrase: present(ev.var("sip_invite_failure_phrase")),
            sip_hangup_disposition: present(ev.var("sip_hangup_disposition")),
            originate_error: None,
            answered,
            billsec_ms,
            duration_ms,
            early_media,
            announcement_text: None,
        }
    }

    /// Parse an originate / BACKGROUND_JOB reply body: "-ERR USER_BUSY\n" →
    /// Some("USER_BUSY"); "+OK <uuid>" → None. Only the first word after
    /// `-ERR` is kept, since that is the cause name the table is keyed on.
    pub fn originate_error_of(reply: &str) -> Option<String> {
        let rest = reply.trim_start().strip_prefix("-ERR")?;
        let cause = rest.split_whitespace().next()?;
        Some(cause.to_string())
    }

    /// The cause name to classify by: the channel's, else the originate reply's.
    fn cause(&self) -> Option<&str> {
        self.hangup_cause.as_deref().or(self.originate_error.as_deref())
    }

    /// The final SIP response: `sip_term_status`, else the INVITE failure status.
    fn sip(&self) -> Option<u16> {
        self.sip_term_status.or(self.sip_invite_failure_status)
    }

    /// True when no channel ever existed: only the originate reply is known.
    fn no_channel(&self) -> bool {
        self.hangup_cause.is_none()
            && self.sip_hangup_disposition.is_none()
            && self.sip_term_status.is_none()
            && self.sip_invite_failure_status.is_none()
            && !self.answered
            && !self.early_media
            && self.duration_ms == 0
    }
}

/// Who hung up, seed 000 `hangup_disposition`: 1 robot (us), 2 customer.
/// None when no SIP dialog ended (originate refused locally).
pub fn hangup_disposition(facts: &HangupFacts) -> Option<i64> {
    match facts.sip_hangup_disposition.as_deref()? {
        "send_bye" | "send_cancel" | "send_refuse" => Some(1),
        "recv_bye" | "recv_cancel" | "recv_refuse" => Some(2),
        _ => None,
    }
}

/// The classification of one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub status: NumberStatus,
    /// Seed 004 code (430–505) where one applies.
    pub hangup_reason: Option<i64>,
    /// Seed 000 `call_history.call_status`: "answer", "busy now", ...
    pub call_status: String,
    /// SIP code as string ("486"); "200" when answered.
    pub hangup_code: Option<String>,
    /// Which rule decided, for logs and the docs table.
    pub rule: String,
}

/// Configurable overrides: checked before the built-in table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusRules {
    /// Cause name → status, e.g. "NORMAL_TEMPORARY_FAILURE" → LineFault.
    #[serde(default)]
    pub by_cause: BTreeMap<String, NumberStatus>,
    /// SIP status → status. TOML keys are strings, so "404" is accepted too.
    #[serde(default, deserialize_with = "de_sip_map")]
    pub by_sip: BTreeMap<u16, NumberStatus>,
    /// Extra keyword → status, checked before the built-in phrases.
    #[serde(default)]
    pub announcements: Vec<(String, NumberStatus)>,
}

/// TOML (and JSON) map keys are strings; parse them as SIP codes.
fn de_sip_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<u16, NumberStatus>, D::Error> {
    let raw = BTreeMap::<String, NumberStatus>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| {
            k.trim()
                .parse::<u16>()
                .map(|k| (k, v))
                .map_err(|_| serde::de::Error::custom(format!("by_sip key {k:?} is not a SIP status code")))
        })
        .collect()
}

/// One group of carrier announcement keywords (hangup-causes.md §4).
#[derive(Debug, Clone, Copy)]
pub struct PhraseGroup {
    /// Short name used in `rule` ("announcement:<label>").
    pub label: &'static str,
    pub keywords: &'static [&'static str],
    pub status: NumberStatus,
    /// da2 alias, used as `call_status`.
    pub call_status: &'static str,
    /// Seed 004 `hangup_reason`.
    pub hangup_reason: Option<i64>,
}

const fn pg(
    label: &'static str,
    keywords: &'static [&'static str],
    status: NumberStatus,
    call_status: &'static str,
    hangup_reason: Option<i64>,
) -> PhraseGroup {
    PhraseGroup { label, keywords, status, call_status, hangup_reason }
}

use NumberStatus as S;

/// Built-in announcement groups, in match order: first group with a keyword
/// in the text wins. Specific words come first; 关机 precedes 无法接通 so the
/// combined "无法接通…已关机" reads as powered off; 欠费 precedes 停机
/// ("已欠费停机" names the reason); line/network busy precedes the callee
/// busy words (they share 忙); `稍后再拨` is last because it is appended to
/// most other announcements.
pub const PHRASE_GROUPS: &[PhraseGroup] = &[
    pg("空号", &["空号", "不存在", "查无此号", "没有这个号码"], S::EmptyNumber, "does not exist", Some(430)),
    pg("改号", &["改号", "新号码", "号码已变更"], S::EmptyNumber, "number change", Some(430)),
    pg("欠费", &["欠费", "余额不足"], S::Arrears, "defaulting", Some(447)),
    pg("停机", &["停机"], S::Suspended, "out of service", Some(432)),
    pg("暂停服务", &["暂停服务", "暂停使用"], S::Suspended, "not in service", Some(438)),
    pg("已过期", &["已过期"], S::Suspended, "expired", Some(436)),
    pg("关机", &["关机"], S::PoweredOff, "power off", Some(431)),
    pg("呼入限制", &["呼入限制", "限制呼入"], S::CallInRestricted, "barring of incoming", Some(451)),
    pg("号码有误", &["拨号方式不正确", "号码有误", "请核对后再拨"], S::LineFault, "not a local number", Some(435)),
    pg("网络忙", &["网络忙", "系统忙"], S::LineFault, "line is busy", Some(448)),
    pg("线路故障", &["线路故障", "线路不能呼出", "线路忙"], S::LineFault, "line fault", Some(450)),
    pg("正在通话", &["正在通话", "通话中"], S::Busy, "busy now", Some(433)),
    pg("用户正忙", &["用户正忙", "正忙", "占线"], S::Busy, "busy now", Some(437)),
    pg("拒接", &["拒接", "拒绝接听", "暂不方便接听", "不方便接听"], S::Rejected, "not convenient", Some(441)),
    pg("来电提醒", &["来电提醒", "通信助理", "秘书", "语音信箱", "请留言"], S::NoAnswer, "call reminder", Some(440)),
    pg("呼叫转移", &["呼叫转移", "转移失败"], S::NoAnswer, "forwarded", Some(445)),
    pg("不在服务区", &["不在服务区"], S::NoAnswer, "is not reachable", Some(454)),
    pg("无法接通", &["无法接通"], S::NoAnswer, "is not reachable", None),
    pg("无人接听", &["无人接听", "无应答", "暂时无人", "无法接听"], S::NoAnswer, "not answer", Some(434)),
    pg("稍后再拨", &["稍后再拨", "请稍后"], S::NoAnswer, "redial later", Some(449)),
];

/// ASR output may carry spaces and punctuation between characters.
fn normalize(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace() && !c.is_ascii_punctuation()).collect()
}

/// The built-in phrase group matching `text`, if any.
pub fn match_announcement(text: &str) -> Option<&'static PhraseGroup> {
    let t = normalize(text);
    if t.is_empty() {
        return None;
    }
    PHRASE_GROUPS.iter().find(|g| g.keywords.iter().any(|k| t.contains(k)))
}

/// "您的…欠费/余额不足" is about OUR caller line (the callee is "您拨打的…"),
/// so it is a line fault, not the callee's arrears (hangup-causes.md §4).
fn is_own_line_arrears(text: &str) -> bool {
    let t = normalize(text);
    let about_callee = ["您拨打", "您所拨", "您呼叫", "您所呼叫"].iter().any(|k| t.contains(k));
    !about_callee && t.contains("您的") && (t.contains("欠费") || t.contains("余额不足"))
}

/// Built-in cause table (hangup-causes.md §2): cause name → number status.
pub const CAUSE_TABLE: &[(&str, NumberStatus)] = &[
    ("UNALLOCATED_NUMBER", S::EmptyNumber),
    ("NO_ROUTE_TRANSIT_NET", S::EmptyNumber),
    ("NO_ROUTE_DESTINATION", S::EmptyNumber),
    ("NUMBER_CHANGED", S::EmptyNumber),
    ("INVALID_NUMBER_FORMAT", S::EmptyNumber),
    ("DOES_NOT_EXIST_ANYWHERE", S::EmptyNumber),
    ("USER_BUSY", S::Busy),
    ("BUSY_EVERYWHERE", S::Busy),
    ("NO_USER_RESPONSE", S::NoAnswer),
    ("NO_ANSWER", S::NoAnswer),
    ("ORIGINATOR_CANCEL", S::NoAnswer),
    ("ALLOTTED_TIMEOUT", S::NoAnswer),
    // Unanswered NORMAL_CLEARING: we ended a ringing / early-media call.
    ("NORMAL_CLEARING", S::NoAnswer),
    ("SUBSCRIBER_ABSENT", S::PoweredOff),
    ("CALL_REJECTED", S::Rejected),
    ("UNWANTED", S::Rejected),
    ("DECLINE", S::Rejected),
    ("REJECT_ALL", S::Rejected),
    ("INCOMING_CALL_BARRED", S::CallInRestricted),
    ("OUTGOING_CALL_BARRED", S::LineFault),
    ("NORMAL_TEMPORARY_FAILURE", S::LineFault),
    ("NETWORK_OUT_OF_ORDER", S::LineFault),
    ("DESTINATION_OUT_OF_ORDER", S::LineFault),
    ("NORMAL_CIRCUIT_CONGESTION", S::LineFault),
    ("SWITCH_CONGESTION", S::LineFault),
    ("REQUESTED_CHAN_UNAVAIL", S::LineFault),
    ("RECOVERY_ON_TIMER_EXPIRE", S::LineFault),
    ("EXCHANGE_ROUTING_ERROR", S::LineFault),
    ("SERVICE_UNAVAILABLE", S::LineFault),
    ("SERVICE_NOT_IMPLEMENTED", S::LineFault),
    ("INCOMPATIBLE_DESTINATION", S::LineFault),
    ("NOT_ACCEPTABLE", S::LineFault),
    ("INTERWORKING", S::LineFault),
    ("NORMAL_UNSPECIFIED", S::LineFault),
    ("PROGRESS_TIMEOUT", S::LineFault),
    ("FACILITY_REJECTED", S::LineFault),
    ("BEARERCAPABILITY_NOTAUTH", S::LineFault),
    ("BEARERCAPABILITY_NOTAVAIL", S::LineFault),
    ("BEARERCAPABILITY_NOTIMPL", S::LineFault),
    ("NO_IDENTITY", S::LineFault),
    ("BAD_IDENTITY_INFO", S::LineFault),
    ("UNSUPPORTED_CERTIFICATE", S::LineFault),
    ("INVALID_IDENTITY", S::LineFault),
    // Our side: nothing reached the carrier, or we tore the call down.
    ("MEDIA_TIMEOUT", S::CallLoss),
    ("GATEWAY_DOWN", S::CallLoss),
    ("INVALID_GATEWAY", S::CallLoss),
    ("INVALID_PROFILE", S::CallLoss),
    ("INVALID_URL", S::CallLoss),
    ("CHAN_NOT_IMPLEMENTED", S::CallLoss),
    ("USER_NOT_REGISTERED", S::CallLoss),
    ("SYSTEM_SHUTDOWN", S::CallLoss),
    ("MANAGER_REQUEST", S::CallLoss),
    ("LOSE_RACE", S::CallLoss),
];

/// The built-in status for a cause name (no SIP refinement).
pub fn cause_status(cause: &str) -> Option<NumberStatus> {
    let c = cause.trim();
    CAUSE_TABLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(c)).map(|(_, s)| *s)
}

/// Built-in SIP fallback (hangup-causes.md §2, "SIP→" column), used when no
/// cause name is known. Any other failure status maps like
/// NORMAL_UNSPECIFIED (line fault).
pub fn sip_status(code: u16) -> Option<NumberStatus> {
    Some(match code {
        404 | 410 | 484 | 485 | 604 => S::EmptyNumber,
        486 | 600 => S::Busy,
        480 | 487 => S::NoAnswer,
        603 | 607 | 608 => S::Rejected,
        400..=699 => S::LineFault,
        _ => return None,
    })
}

fn outcome(status: NumberStatus, facts: &HangupFacts, rule: String) -> Outcome {
    Outcome {
        status,
        hangup_reason: status.default_hangup_reason(),
        call_status: status.default_call_status().to_string(),
        hangup_code: facts.sip().map(|c| c.to_string()),
        rule,
    }
}

/// Configured cause, then SIP overrides.
fn override_of(facts: &HangupFacts, rules: &StatusRules) -> Option<(NumberStatus, String)> {
    if let Some(c) = facts.cause() {
        let c = c.trim();
        if let Some((name, st)) = rules.by_cause.iter().find(|(k, _)| k.trim().eq_ignore_ascii_case(c)) {
            return Some((*st, format!("override:cause:{name}")));
        }
    }
    for code in [facts.sip_term_status, facts.sip_invite_failure_status].into_iter().flatten() {
        if let Some(st) = rules.by_sip.get(&code) {
            return Some((*st, format!("override:sip:{code}")));
        }
    }
    None
}

/// Classify a finished call. Decision order (see docs/status-mapping.md):
/// 1. answered → Success, unless a cause/SIP override names another status;
/// 2. recognized announcement (configured keywords, then built-in groups);
/// 3. configured overrides by cause, then by SIP code;
/// 4. cause name (channel's Hangup-Cause, else the originate `-ERR`) via the
///    built-in table, with CALL_REJECTED split by SIP code and
///    DESTINATION_OUT_OF_ORDER without a channel treated as call loss;
/// 5. SIP code table;
/// 6. anything else → LineFault.
pub fn classify(facts: &HangupFacts, rules: &StatusRules) -> Outcome {
    // 1. Answered.
    if facts.answered || facts.billsec_ms > 0 {
        let (status, rule) = override_of(facts, rules).unwrap_or((S::Success, "answered".to_string()));
        let mut o = outcome(status, facts, rule);
        if status == S::Success {
            o.hangup_reason = None;
            o.call_status = S::Success.default_call_status().to_string();
        }
        o.hangup_code = Some("200".to_string());
        return o;
    }

    // 2. Announcement.
    if let Some(text) = facts.announcement_text.as_deref() {
        let t = normalize(text);
        if let Some((kw, st)) = rules.announcements.iter().find(|(k, _)| {
            let k = normalize(k);
            !k.is_empty() && t.contains(&k)
        }) {
            return outcome(*st, facts, format!("override:announcement:{kw}"));
        }
        if let Some(g) = match_announcement(text) {
            if g.status == S::Arrears && is_own_line_arrears(text) {
                let mut o = outcome(S::LineFault, facts, "announcement:欠费(主叫)".to_string());
                o.hangup_reason = Some(447);
                o.call_status = "line fault".to_string();
                return o;
            }
            return Outcome {
                status: g.status,
                hangup_reason: g.hangup_reason,
                call_status: g.call_status.to_string(),
                hangup_code: facts.sip().map(|c| c.to_string()),
                rule: format!("announcement:{}", g.label),
            };
        }
    }

    // 3. Configured overrides.
    if let Some((st, rule)) = override_of(facts, rules) {
        return outcome(st, facts, rule);
    }

    // 4. Cause name.
    if let Some(cause) = facts.cause() {
        let cause = cause.trim().to_ascii_uppercase();
        if cause == "CALL_REJECTED" {
            // 401/402/403/407 are trunk auth or caller-ID refusals: our line.
            if let Some(code @ (401 | 402 | 403 | 407)) = facts.sip() {
                return outcome(S::LineFault, facts, format!("cause:CALL_REJECTED+sip:{code}"));
            }
        }
        if cause == "DESTINATION_OUT_OF_ORDER" && facts.no_channel() {
            // Local failure to create the session (max-sessions, sps,
            // paused, shutdown): the number was never dialed.
            return outcome(S::CallLoss, facts, "cause:DESTINATION_OUT_OF_ORDER(no channel)".to_string());
        }
        if let Some(st) = cause_status(&cause) {
            return outcome(st, facts, format!("cause:{cause}"));
        }
    }

    // 5. SIP code.
    if let Some(code) = facts.sip() {
        if let Some(st) = sip_status(code) {
            return outcome(st, facts, format!("sip:{code}"));
        }
    }

    // 6. Unknown.
    outcome(S::LineFault, facts, "default".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cause(c: &str) -> HangupFacts {
        HangupFacts {
            hangup_cause: Some(c.into()),
            sip_hangup_disposition: Some("recv_refuse".into()),
            ..Default::default()
        }
    }

    fn sip(code: u16) -> HangupFacts {
        HangupFacts { sip_term_status: Some(code), ..Default::default() }
    }

    fn heard(text: &str) -> HangupFacts {
        HangupFacts {
            hangup_cause: Some("NORMAL_CLEARING".into()),
            early_media: true,
            announcement_text: Some(text.into()),
            ..Default::default()
        }
    }

    fn st(f: &HangupFacts) -> NumberStatus {
        classify(f, &StatusRules::default()).status
    }

    #[test]
    fn codes_names_roundtrip() {
        for (i, s) in NumberStatus::all().into_iter().enumerate() {
            assert_eq!(s.code(), i as i64);
            assert_eq!(NumberStatus::from_code(i as i64), Some(s));
            assert_eq!(NumberStatus::from_name(s.name_en()), Some(s));
            assert_eq!(s.is_final(), s != NumberStatus::Waiting);
        }
        assert_eq!(NumberStatus::from_code(13), None);
        assert_eq!(NumberStatus::from_code(-1), None);
        assert_eq!(NumberStatus::Success.name_zh(), "呼叫成功");
        assert_eq!(NumberStatus::Busy.name_zh(), "占线、用户正忙");
        assert_eq!(NumberStatus::CallLoss.name_zh(), "呼损");
        assert_eq!(NumberStatus::Busy.name_en(), "busy");
    }

    #[test]
    fn serializes_as_integer() {
        assert_eq!(serde_json::to_string(&NumberStatus::Busy).expect("test input is valid"), "8");
        assert_eq!(serde_json::from_str::<NumberStatus>("12").expect("test input is valid"), NumberStatus::CallLoss);
        assert_eq!(
            serde_json::from_str::<NumberStatus>("\"line_fault\"").expect("test input is valid"),
            NumberStatus::LineFault
        );
        assert!(serde_json::from_str::<NumberStatus>("13").is_err());
        assert!(serde_json::from_str::<NumberStatus>("\"nope\"").is_err());
        let o = classify(&cause("USER_BUSY"), &StatusRules::default());
        let v = serde_json::to_value(&o).expect("test input is valid");
        assert_eq!(v["status"], 8);
    }

    /// Every row of hangup-causes.md §2 (and the "rarely seen" list), written
    /// out independently of CAUSE_TABLE.
    const EXPECTED: &[(&str, NumberStatus)] = &[
        ("UNALLOCATED_NUMBER", S::EmptyNumber),
        ("NO_ROUTE_TRANSIT_NET", S::EmptyNumber),
        ("NO_ROUTE_DESTINATION", S::EmptyNumber),
        ("NUMBER_CHANGED", S::EmptyNumber),
        ("INVALID_NUMBER_FORMAT", S::EmptyNumber),
        ("USER_BUSY", S::Busy),
        ("NO_USER_RESPONSE", S::NoAnswer),
        ("NO_ANSWER", S::NoAnswer),
        ("SUBSCRIBER_ABSENT", S::PoweredOff),
        ("CALL_REJECTED", S::Rejected),
        ("UNWANTED", S::Rejected),
        ("INCOMING_CALL_BARRED", S::CallInRestricted),
        ("OUTGOING_CALL_BARRED", S::LineFault),
        ("ORIGINATOR_CANCEL", S::NoAnswer),
        ("NORMAL_TEMPORARY_FAILURE", S::LineFault),
        ("NETWORK_OUT_OF_ORDER", S::LineFault),
        ("DESTINATION_OUT_OF_ORDER", S::LineFault),
        ("NORMAL_CIRCUIT_CONGESTION", S::LineFault),
        ("SWITCH_CONGESTION", S::LineFault),
        ("REQUESTED_CHAN_UNAVAIL", S::LineFault),
        ("RECOVERY_ON_TIMER_EXPIRE", S::LineFault),
        ("EXCHANGE_ROUTING_ERROR", S::LineFault),
        ("SERVICE_UNAVAILABLE", S::LineFault),
        ("SERVICE_NOT_IMPLEMENTED", S::LineFault),
        ("INCOMPATIBLE_DESTINATION", S::LineFault),
        ("INTERWORKING", S::LineFault),
        ("NORMAL_UNSPECIFIED", S::LineFault),
        ("PROGRESS_TIMEOUT", S::LineFault),
        ("ALLOTTED_TIMEOUT", S::NoAnswer),
        ("MEDIA_TIMEOUT", S::CallLoss),
        ("GATEWAY_DOWN", S::CallLoss),
        ("INVALID_GATEWAY", S::CallLoss),
        ("INVALID_PROFILE", S::CallLoss),
        ("INVALID_URL", S::CallLoss),
        ("NO_IDENTITY", S::LineFault),
        ("BAD_IDENTITY_INFO", S::LineFault),
        ("UNSUPPORTED_CERTIFICATE", S::LineFault),
        ("INVALID_IDENTITY", S::LineFault),
        ("CHAN_NOT_IMPLEMENTED", S::CallLoss),
        ("FACILITY_REJECTED", S::LineFault),
        ("BEARERCAPABILITY_NOTAUTH", S::LineFault),
        ("BEARERCAPABILITY_NOTAVAIL", S::LineFault),
        ("BEARERCAPABILITY_NOTIMPL", S::LineFault),
        ("SYSTEM_SHUTDOWN", S::CallLoss),
        ("LOSE_RACE", S::CallLoss),
        ("MANAGER_REQUEST", S::CallLoss),
        ("USER_NOT_REGISTERED", S::CallLoss),
        ("BUSY_EVERYWHERE", S::Busy),
        ("DECLINE", S::Rejected),
        ("REJECT_ALL", S::Rejected),
        ("DOES_NOT_EXIST_ANYWHERE", S::EmptyNumber),
        ("NOT_ACCEPTABLE", S::LineFault),
        ("NORMAL_CLEARING", S::NoAnswer),
    ];

    #[test]
    fn every_cause_row() {
        for (c, want) in EXPECTED {
            let o = classify(&cause(c), &StatusRules::default());
            assert_eq!(o.status, *want, "{c}");
            assert_eq!(o.rule, format!("cause:{c}"), "{c}");
            assert_eq!(o.hangup_reason, want.default_hangup_reason(), "{c}");
            // Same answer when only the originate reply is known (no channel),
            // except the session-limit case below.
            if *c != "DESTINATION_OUT_OF_ORDER" {
                let f = HangupFacts { originate_error: Some((*c).into()), ..Default::default() };
                assert_eq!(st(&f), *want, "-ERR {c}");
            }
        }
        // No table row is left untested.
        for (c, _) in CAUSE_TABLE {
            assert!(EXPECTED.iter().any(|(e, _)| e == c), "{c} not in EXPECTED");
        }
        assert_eq!(cause_status("user_busy"), Some(S::Busy));
    }

    #[test]
    fn call_rejected_split_by_sip() {
        for code in [401u16, 402, 403, 407] {
            let f = HangupFacts { sip_term_status: Some(code), ..cause("CALL_REJECTED") };
            let o = classify(&f, &StatusRules::default());
            assert_eq!(o.status, S::LineFault, "{code}");
            assert_eq!(o.rule, format!("cause:CALL_REJECTED+sip:{code}"));
        }
        for code in [603u16, 608] {
            let f = HangupFacts { sip_term_status: Some(code), ..cause("CALL_REJECTED") };
            assert_eq!(st(&f), S::Rejected, "{code}");
        }
    }

    #[test]
    fn destination_out_of_order_with_and_without_channel() {
        let refused = HangupFacts { originate_error: Some("DESTINATION_OUT_OF_ORDER".into()), ..Default::default() };
        let o = classify(&refused, &StatusRules::default());
        assert_eq!(o.status, S::CallLoss);
        assert_eq!(o.rule, "cause:DESTINATION_OUT_OF_ORDER(no channel)");
        assert_eq!(o.hangup_code, None);
        assert_eq!(o.hangup_reason, None);
        // Far end sent Reason: Q.850;cause=27 on a real dialog.
        let far = HangupFacts { sip_term_status: Some(502), q850: Some(27), ..cause("DESTINATION_OUT_OF_ORDER") };
        assert_eq!(st(&far), S::LineFault);
    }

    #[test]
    fn manager_request_answered_or_not() {
        let mut f = HangupFacts {
            hangup_cause: Some("MANAGER_REQUEST".into()),
            sip_hangup_disposition: Some("send_bye".into()),
            ..Default::default()
        };
        assert_eq!(st(&f), S::CallLoss);
        f.answered = true;
        f.billsec_ms = 1200;
        let o = classify(&f, &StatusRules::default());
        assert_eq!(o.status, S::Success);
        assert_eq!(o.rule, "answered");
        assert_eq!(o.call_status, "answer");
        assert_eq!(o.hangup_code.as_deref(), Some("200"));
        assert_eq!(o.hangup_reason, None);
    }

    #[test]
    fn billsec_alone_means_answered() {
        let f = HangupFacts { billsec_ms: 10, hangup_cause: Some("NORMAL_CLEARING".into()), ..Default::default() };
        assert_eq!(st(&f), S::Success);
    }

    #[test]
    fn sip_table() {
        let rows: &[(u16, NumberStatus)] = &[
            (404, S::EmptyNumber),
            (410, S::EmptyNumber),
            (484, S::EmptyNumber),
            (485, S::EmptyNumber),
            (604, S::EmptyNumber),
            (486, S::Busy),
            (600, S::Busy),
            (480, S::NoAnswer),
            (487, S::NoAnswer),
            (603, S::Rejected),
            (607, S::Rejected),
            (608, S::Rejected),
            (400, S::LineFault),
            (401, S::LineFault),
            (402, S::LineFault),
            (403, S::LineFault),
            (405, S::LineFault),
            (406, S::LineFault),
            (407, S::LineFault),
            (408, S::LineFault),
            (413, S::LineFault),
            (415, S::LineFault),
            (428, S::LineFault),
            (481, S::LineFault),
            (482, S::LineFault),
            (483, S::LineFault),
            (488, S::LineFault),
            (500, S::LineFault),
            (501, S::LineFault),
            (502, S::LineFault),
            (503, S::LineFault),
            (504, S::LineFault),
            (505, S::LineFault),
            (606, S::LineFault),
            (699, S::LineFault),
        ];
        for (code, want) in rows {
            let o = classify(&sip(*code), &StatusRules::default());
            assert_eq!(o.status, *want, "{code}");
            assert_eq!(o.rule, format!("sip:{code}"));
            assert_eq!(o.hangup_code, Some(code.to_string()));
        }
        // The INVITE failure status is used when sip_term_status is absent.
        let f = HangupFacts { sip_invite_failure_status: Some(486), ..Default::default() };
        assert_eq!(st(&f), S::Busy);
        // Not a failure status: default.
        let o = classify(&sip(183), &StatusRules::default());
        assert_eq!((o.status, o.rule.as_str()), (S::LineFault, "default"));
        let o = classify(&HangupFacts::default(), &StatusRules::default());
        assert_eq!((o.status, o.rule.as_str(), o.hangup_code), (S::LineFault, "default", None));
        // Unknown cause name falls through to the SIP code.
        let f = HangupFacts { sip_term_status: Some(404), ..cause("SOMETHING_NEW") };
        assert_eq!(classify(&f, &StatusRules::default()).rule, "sip:404");
    }

    #[test]
    fn every_announcement_group() {
        // (text, status, label, call_status, 004 code)
        let rows: &[(&str, NumberStatus, &str, &str, Option<i64>)] = &[
            ("您拨打的号码是空号，请查证后再拨", S::EmptyNumber, "空号", "does not exist", Some(430)),
            ("您拨打的号码不存在", S::EmptyNumber, "空号", "does not exist", Some(430)),
            ("查无此号", S::EmptyNumber, "空号", "does not exist", Some(430)),
            ("对不起，没有这个号码", S::EmptyNumber, "空号", "does not exist", Some(430)),
            ("您拨打的用户已改号，新号码是", S::EmptyNumber, "改号", "number change", Some(430)),
            ("号码已变更", S::EmptyNumber, "改号", "number change", Some(430)),
            ("您拨打的电话已关机", S::PoweredOff, "关机", "power off", Some(431)),
            ("您拨打的电话已停机", S::Suspended, "停机", "out of service", Some(432)),
            ("您拨打的电话暂停服务", S::Suspended, "暂停服务", "not in service", Some(438)),
            ("该号码暂停使用", S::Suspended, "暂停服务", "not in service", Some(438)),
            ("您拨打的号码已过期", S::Suspended, "已过期", "expired", Some(436)),
            ("您拨打的用户已欠费", S::Arrears, "欠费", "defaulting", Some(447)),
            ("您拨打的电话余额不足", S::Arrears, "欠费", "defaulting", Some(447)),
            ("您拨打的电话已欠费停机", S::Arrears, "欠费", "defaulting", Some(447)),
            ("您拨打的用户已设置呼入限制", S::CallInRestricted, "呼入限制", "barring of incoming", Some(451)),
            ("该用户限制呼入", S::CallInRestricted, "呼入限制", "barring of incoming", Some(451)),
            ("您的拨号方式不正确", S::LineFault, "号码有误", "not a local number", Some(435)),
            ("您拨打的号码有误，请核对后再拨", S::LineFault, "号码有误", "not a local number", Some(435)),
            ("网络忙，请稍后再拨", S::LineFault, "网络忙", "line is busy", Some(448)),
            ("系统忙", S::LineFault, "网络忙", "line is busy", Some(448)),
            ("线路故障", S::LineFault, "线路故障", "line fault", Some(450)),
            ("本线路不能呼出", S::LineFault, "线路故障", "line fault", Some(450)),
            ("您拨打的电话正在通话中，请稍后再拨", S::Busy, "正在通话", "busy now", Some(433)),
            ("您拨打的用户正忙，请稍后再拨", S::Busy, "用户正忙", "busy now", Some(437)),
            ("占线", S::Busy, "用户正忙", "busy now", Some(437)),
            ("用户拒接", S::Rejected, "拒接", "not convenient", Some(441)),
            ("您拨打的用户暂不方便接听", S::Rejected, "拒接", "not convenient", Some(441)),
            ("您好，我是机主的通信助理，请留言", S::NoAnswer, "来电提醒", "call reminder", Some(440)),
            ("来电提醒已开通", S::NoAnswer, "来电提醒", "call reminder", Some(440)),
            ("您的电话将转入语音信箱", S::NoAnswer, "来电提醒", "call reminder", Some(440)),
            ("呼叫转移失败", S::NoAnswer, "呼叫转移", "forwarded", Some(445)),
            ("您拨打的电话不在服务区", S::NoAnswer, "不在服务区", "is not reachable", Some(454)),
            ("您拨打的电话暂时无法接通，请稍后再拨", S::NoAnswer, "无法接通", "is not reachable", None),
            ("您拨打的电话暂时无人接听", S::NoAnswer, "无人接听", "not answer", Some(434)),
            ("无应答", S::NoAnswer, "无人接听", "not answer", Some(434)),
            ("您拨打的电话暂时无法接听", S::NoAnswer, "无人接听", "not answer", Some(434)),
            ("请稍后再拨", S::NoAnswer, "稍后再拨", "redial later", Some(449)),
            ("请稍后", S::NoAnswer, "稍后再拨", "redial later", Some(449)),
            // Combined phrases.
            ("您拨打的电话无法接通或已关机", S::PoweredOff, "关机", "power off", Some(431)),
            ("您拨打的电话已关机，请稍后再拨", S::PoweredOff, "关机", "power off", Some(431)),
            ("您拨打的电话是空号 请稍后再拨", S::EmptyNumber, "空号", "does not exist", Some(430)),
            // ASR spacing and punctuation.
            ("您 拨 打 的 电 话 已 停 机 。", S::Suspended, "停机", "out of service", Some(432)),
        ];
        for (text, status, label, cs, reason) in rows {
            let o = classify(&heard(text), &StatusRules::default());
            assert_eq!(o.status, *status, "{text}");
            assert_eq!(o.rule, format!("announcement:{label}"), "{text}");
            assert_eq!(o.call_status, *cs, "{text}");
            assert_eq!(o.hangup_reason, *reason, "{text}");
        }
        // Each built-in group is exercised above.
        for g in PHRASE_GROUPS {
            assert!(rows.iter().any(|r| r.2 == g.label), "group {} untested", g.label);
        }
    }

    #[test]
    fn own_line_arrears_is_line_fault() {
        let o = classify(&heard("对不起，您的话费余额不足，请充值"), &StatusRules::default());
        assert_eq!(o.status, S::LineFault);
        assert_eq!(o.rule, "announcement:欠费(主叫)");
        // "您拨打的…" is the callee, even with a "您的" elsewhere.
        let o = classify(&heard("您拨打的用户已欠费，您的来电将以短信通知"), &StatusRules::default());
        assert_eq!(o.status, S::Arrears);
    }

    #[test]
    fn announcement_beats_cause_but_not_answer() {
        // Early media with a phrase, then a 480: the phrase decides.
        let f = HangupFacts {
            sip_term_status: Some(480),
            announcement_text: Some("您拨打的号码是空号".into()),
            ..cause("NO_USER_RESPONSE")
        };
        let o = classify(&f, &StatusRules::default());
        assert_eq!(o.status, S::EmptyNumber);
        assert_eq!(o.hangup_code.as_deref(), Some("480"));
        // Answered calls are successes whatever the ASR heard.
        let f = HangupFacts { answered: true, billsec_ms: 5000, ..heard("空号") };
        assert_eq!(st(&f), S::Success);
        // Unrecognized text: the cause decides.
        let f = HangupFacts { announcement_text: Some("hello".into()), ..cause("USER_BUSY") };
        assert_eq!(classify(&f, &StatusRules::default()).rule, "cause:USER_BUSY");
    }

    #[test]
    fn overrides() {
        let mut rules = StatusRules::default();
        rules.by_cause.insert("NORMAL_TEMPORARY_FAILURE".into(), S::CallLoss);
        rules.by_sip.insert(480, S::PoweredOff);
        rules.announcements.push(("彩铃".into(), S::NoAnswer));
        rules.announcements.push(("稍后再拨".into(), S::Busy));

        let f = HangupFacts { sip_term_status: Some(503), ..cause("NORMAL_TEMPORARY_FAILURE") };
        let o = classify(&f, &rules);
        assert_eq!((o.status, o.rule.as_str()), (S::CallLoss, "override:cause:NORMAL_TEMPORARY_FAILURE"));
        // Cause override beats SIP override.
        let f = HangupFacts { sip_term_status: Some(480), ..cause("NORMAL_TEMPORARY_FAILURE") };
        assert_eq!(classify(&f, &rules).status, S::CallLoss);
        // SIP override beats the built-in cause table.
        let f = HangupFacts { sip_term_status: Some(480), ..cause("NO_USER_RESPONSE") };
        let o = classify(&f, &rules);
        assert_eq!((o.status, o.rule.as_str()), (S::PoweredOff, "override:sip:480"));
        assert_eq!(o.hangup_reason, Some(431));
        // Configured phrases are checked before built-ins.
        let o = classify(&heard("您拨打的用户正忙，请稍后再拨"), &rules);
        assert_eq!((o.status, o.rule.as_str()), (S::Busy, "override:announcement:稍后再拨"));
        let o = classify(&heard("这是一段彩铃"), &rules);
        assert_eq!(o.status, S::NoAnswer);
        // Built-in phrase beats a cause override (announcement is step 2).
        let f = HangupFacts { announcement_text: Some("已关机".into()), ..cause("NORMAL_TEMPORARY_FAILURE") };
        assert_eq!(classify(&f, &rules).status, S::PoweredOff);
        // Overrides apply to answered calls too.
        let mut rules = StatusRules::default();
        rules.by_cause.insert("MANAGER_REQUEST".into(), S::CallLoss);
        let f = HangupFacts { answered: true, billsec_ms: 1000, ..cause("MANAGER_REQUEST") };
        let o = classify(&f, &rules);
        assert_eq!((o.status, o.hangup_code.as_deref()), (S::CallLoss, Some("200")));
        // Case-insensitive cause keys.
        let mut rules = StatusRules::default();
        rules.by_cause.insert("user_busy".into(), S::NoAnswer);
        assert_eq!(classify(&cause("USER_BUSY"), &rules).status, S::NoAnswer);
    }

    #[test]
    fn rules_from_toml() {
        #[derive(Deserialize)]
        struct Cfg {
            status_rules: StatusRules,
        }
        let cfg: Cfg = toml::from_str(
            r#"
            [status_rules]
            announcements = [["彩铃", 4], ["亲情号", "busy"]]
            [status_rules.by_cause]
            NORMAL_TEMPORARY_FAILURE = 12
            [status_rules.by_sip]
            404 = 7
            "#,
        )
        .expect("test input is valid");
        let r = cfg.status_rules;
        assert_eq!(r.by_cause.get("NORMAL_TEMPORARY_FAILURE"), Some(&S::CallLoss));
        assert_eq!(r.by_sip.get(&404), Some(&S::Suspended));
        assert_eq!(r.announcements, vec![("彩铃".to_string(), S::NoAnswer), ("亲情号".to_string(), S::Busy)]);
        let empty: Cfg = toml::from_str("[status_rules]\n").expect("test input is valid");
        assert!(empty.status_rules.by_sip.is_empty());
        assert!(toml::from_str::<Cfg>("[status_rules.by_sip]\nabc = 1\n").is_err());
        assert!(toml::from_str::<Cfg>("[status_rules.by_cause]\nX = 13\n").is_err());
        // JSON round trip.
        let json = serde_json::to_string(&r).expect("test input is valid");
        let back: StatusRules = serde_json::from_str(&json).expect("test input is valid");
        assert_eq!(back.by_sip, r.by_sip);
    }

    /// The TOML example in docs/status-mapping.md parses and means what it says.
    #[test]
    fn docs_toml_example() {
        #[derive(Deserialize)]
        struct Cfg {
            status_rules: StatusRules,
        }
        let doc = include_str!("../../docs/status-mapping.md");
        let start = doc.find("```toml\n").expect("toml block in docs") + "```toml\n".len();
        let len = doc[start..].find("```").expect("closed toml block");
        let cfg: Cfg = toml::from_str(&doc[start..start + len]).expect("docs example parses");
        let r = cfg.status_rules;
        assert_eq!(r.by_cause.get("NORMAL_TEMPORARY_FAILURE"), Some(&S::CallLoss));
        assert_eq!(r.by_sip.get(&404), Some(&S::Suspended));
        assert_eq!(r.announcements.len(), 2);
    }

    #[test]
    fn disposition() {
        let d =
            |s: &str| hangup_disposition(&HangupFacts { sip_hangup_disposition: Some(s.into()), ..Default::default() });
        assert_eq!(d("send_bye"), Some(1));
        assert_eq!(d("send_cancel"), Some(1));
        assert_eq!(d("send_refuse"), Some(1));
        assert_eq!(d("recv_bye"), Some(2));
        assert_eq!(d("recv_cancel"), Some(2));
        assert_eq!(d("recv_refuse"), Some(2));
        assert_eq!(d("other"), None);
        assert_eq!(hangup_disposition(&HangupFacts::default()), None);
    }

    #[test]
    fn originate_reply() {
        assert_eq!(HangupFacts::originate_error_of("-ERR USER_BUSY\n").as_deref(), Some("USER_BUSY"));
        assert_eq!(HangupFacts::originate_error_of("-ERR INVALID_GATEWAY").as_deref(), Some("INVALID_GATEWAY"));
        assert_eq!(HangupFacts::originate_error_of("+OK 5ca1ab1e-0000-4000-8000-00000000000a\n"), None);
        assert_eq!(HangupFacts::originate_error_of("-USAGE: <call url>"), None);
        assert_eq!(HangupFacts::originate_error_of("-ERR\n"), None);
        assert_eq!(HangupFacts::originate_error_of(""), None);
    }

    #[test]
    fn facts_from_plain_event() {
        let ev = voxdial_esl::Event::parse_plain(bytes::Bytes::from_static(
            b"Event-Name: CHANNEL_HANGUP_COMPLETE\nHangup-Cause: USER_BUSY\n\
              Caller-Channel-Answered-Time: 0\nCaller-Channel-Progress-Media-Time: 0\n\
              variable_hangup_cause_q850: 17\nvariable_sip_term_status: 486\n\
              variable_sip_invite_failure_status: 486\nvariable_sip_invite_failure_phrase: Busy%20Here\n\
              variable_sip_hangup_disposition: recv_refuse\nvariable_answer_epoch: 0\n\
              variable_billmsec: 0\nvariable_mduration: 412\n\n",
        ))
        .expect("test input is valid");
        let f = HangupFacts::from_event(&ev);
        assert_eq!(f.hangup_cause.as_deref(), Some("USER_BUSY"));
        assert_eq!(f.q850, Some(17));
        assert_eq!(f.sip_term_status, Some(486));
        assert_eq!(f.sip_invite_failure_phrase.as_deref(), Some("Busy Here"));
        assert_eq!(f.duration_ms, 412);
        assert!(!f.answered && !f.early_media);

        // "-" means absent; second-resolution fallbacks.
        let ev = voxdial_esl::Event::parse_plain(bytes::Bytes::from_static(
            b"Event-Name: CHANNEL_HANGUP_COMPLETE\nvariable_hangup_cause: NORMAL_CLEARING\n\
              variable_sip_term_status: -\nvariable_sip_invite_failure_status: -\n\
              variable_answer_epoch: 1795252587\nvariable_billsec: 4\nvariable_duration: 5\n\n",
        ))
        .expect("test input is valid");
        let f = HangupFacts::from_event(&ev);
        assert_eq!(f.hangup_cause.as_deref(), Some("NORMAL_CLEARING"));
        assert_eq!((f.sip_term_status, f.sip_invite_failure_status), (None, None));
        assert_eq!((f.billsec_ms, f.duration_ms), (4000, 5000));
        assert!(f.answered);
    }
}
