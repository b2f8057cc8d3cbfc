//! Every call captured in `tests/fixtures/esl/` classified end to end:
//! wire bytes → `EslCodec` frames → `Event` → `HangupFacts` → `classify`.
//!
//! A call is identified by its `origination_uuid`. Its facts come from its
//! CHANNEL_HANGUP_COMPLETE, the answered / early-media flags also from its
//! earlier events (CHANNEL_ANSWER, CHANNEL_PROGRESS_MEDIA), and the originate
//! error from the BACKGROUND_JOB whose `Job-Command-Arg` names the uuid (or,
//! for a synchronous `api originate`, from the `api/response`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use voxdial::finalize::status::{classify, hangup_disposition, HangupFacts, NumberStatus, StatusRules};
use voxdial_esl::{ContentType, EslCodec, Event, Frame};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/esl")
}

fn frames(name: &str) -> Vec<Frame> {
    let data = std::fs::read(fixture_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::from(&data[..]);
    let mut out = Vec::new();
    while let Some(f) = codec.decode(&mut buf).unwrap_or_else(|e| panic!("{name}: {e}")) {
        out.push(f);
    }
    assert!(codec.decode_eof(&mut buf).unwrap_or_else(|e| panic!("{name}: {e}")).is_none(), "{name}: trailing bytes");
    out
}

/// `origination_uuid=<uuid>` inside an originate argument string.
fn origination_uuid(arg: &str) -> Option<String> {
    let start = arg.find("origination_uuid=")? + "origination_uuid=".len();
    let rest = &arg[start..];
    let end = rest.find([',', '}', ' ']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

#[derive(Debug, Default)]
struct Call {
    hangup_complete: Option<HangupFacts>,
    saw_answer: bool,
    saw_progress_media: bool,
    originate_reply: Option<String>,
}

impl Call {
    fn facts(&self) -> HangupFacts {
        let mut f = self.hangup_complete.clone().unwrap_or_default();
        f.answered |= self.saw_answer;
        f.early_media |= self.saw_progress_media;
        f.originate_error = self.originate_reply.as_deref().and_then(HangupFacts::originate_error_of);
        f
    }
}

/// Every call in one capture, keyed by uuid.
fn calls(name: &str) -> BTreeMap<String, Call> {
    let mut calls: BTreeMap<String, Call> = BTreeMap::new();
    let frames = frames(name);
    // A synchronous `api originate` answers in an api/response; pair it with
    // the uuid of the originate command in the .cmds file.
    let cmds = std::fs::read_to_string(fixture_dir().join(name.replace(".esl", ".cmds"))).unwrap_or_default();
    let api_originates: Vec<String> =
        cmds.lines().filter(|l| l.starts_with("api originate ")).filter_map(origination_uuid).collect();
    if !api_originates.is_empty() {
        let replies: Vec<String> = frames
            .iter()
            .filter(|f| f.content_type == ContentType::ApiResponse)
            .map(|f| String::from_utf8_lossy(&f.body).into_owned())
            .filter(|b| b.starts_with("+OK") || b.starts_with("-ERR"))
            .collect();
        assert_eq!(replies.len(), api_originates.len(), "{name}: one api/response per api originate");
        for (uuid, reply) in api_originates.into_iter().zip(replies) {
            calls.entry(uuid).or_default().originate_reply = Some(reply);
        }
    }
    for frame in &frames {
        let Some(ev) = Event::from_frame(frame).unwrap_or_else(|e| panic!("{name}: {e}")) else { continue };
        let event_name = ev.name().map(|n| n.into_owned()).unwrap_or_default();
        if event_name == "BACKGROUND_JOB" {
            let arg = ev.header("Job-Command-Arg").map(|a| a.into_owned()).unwrap_or_default();
            if let Some(uuid) = origination_uuid(&arg) {
                calls.entry(uuid).or_default().originate_reply = ev.body_text().map(|b| b.into_owned());
            }
            continue;
        }
        let Some(uuid) = ev.unique_id().map(|u| u.into_owned()) else { continue };
        match event_name.as_str() {
            "CHANNEL_ANSWER" => calls.entry(uuid).or_default().saw_answer = true,
            "CHANNEL_PROGRESS_MEDIA" => calls.entry(uuid).or_default().saw_progress_media = true,
            "CHANNEL_HANGUP_COMPLETE" => {
                let c = calls.entry(uuid).or_default();
                assert!(c.hangup_complete.is_none(), "{name}: two CHANNEL_HANGUP_COMPLETE");
                c.hangup_complete = Some(HangupFacts::from_event(&ev));
            }
            _ => {}
        }
    }
    calls
}

struct Expect {
    file: &'static str,
    /// Last two hex digits of `5ca1ab1e-0000-4000-8000-0000000000NN`.
    uuid: &'static str,
    status: NumberStatus,
    rule: &'static str,
    hangup_reason: Option<i64>,
    disposition: Option<i64>,
    hangup_code: Option<&'static str>,
    duration_ms: i64,
    billsec_ms: i64,
    early_media: bool,
}

#[allow(clippy::too_many_arguments)] // one row of the EXPECTED table
const fn e(
    file: &'static str,
    uuid: &'static str,
    status: NumberStatus,
    rule: &'static str,
    hangup_reason: Option<i64>,
    disposition: Option<i64>,
    hangup_code: Option<&'static str>,
    duration_ms: i64,
    billsec_ms: i64,
    early_media: bool,
) -> Expect {
    Expect { file, uuid, status, rule, hangup_reason, disposition, hangup_code, duration_ms, billsec_ms, early_media }
}

use NumberStatus as S;

const ROBOT: Option<i64> = Some(1);
const CUSTOMER: Option<i64> = Some(2);
const NO_CH: &str = "cause:DESTINATION_OUT_OF_ORDER(no channel)";

#[rustfmt::skip]
const EXPECTED: &[Expect] = &[
    e("answered-plain.esl",                     "0a", S::Success,     "answered",                       None,      CUSTOMER, Some("200"), 7020, 6000, false),
    e("answered-json.esl",                      "a2", S::Success,     "answered",                       None,      CUSTOMER, Some("200"), 7019, 6019, false),
    e("busy-486-plain.esl",                     "0b", S::Busy,        "cause:USER_BUSY",                Some(437), CUSTOMER, Some("486"), 321,  0,    false),
    e("not-found-404-plain.esl",                "0c", S::EmptyNumber, "cause:UNALLOCATED_NUMBER",       Some(430), CUSTOMER, Some("404"), 299,  0,    false),
    e("unavailable-480-plain.esl",              "0d", S::NoAnswer,    "cause:NO_USER_RESPONSE",         Some(434), CUSTOMER, Some("480"), 300,  0,    false),
    e("decline-603-plain.esl",                  "0e", S::Rejected,    "cause:CALL_REJECTED",            Some(441), CUSTOMER, Some("603"), 300,  0,    false),
    e("no-answer-timeout-plain.esl",            "0f", S::NoAnswer,    "cause:NO_ANSWER",                Some(434), ROBOT,    Some("487"), 7740, 0,    false),
    e("service-unavailable-503-plain.esl",      "10", S::LineFault,   "cause:NORMAL_TEMPORARY_FAILURE", Some(450), CUSTOMER, Some("503"), 300,  0,    false),
    e("answered-uuid-kill-plain.esl",           "11", S::Success,     "answered",                       None,      ROBOT,    Some("200"), 5019, 4019, false),
    e("early-media-404-plain.esl",              "20", S::EmptyNumber, "cause:UNALLOCATED_NUMBER",       Some(430), CUSTOMER, Some("404"), 3239, 0,    true),
    e("early-media-480-plain.esl",              "21", S::NoAnswer,    "cause:NO_USER_RESPONSE",         Some(434), CUSTOMER, Some("480"), 3240, 0,    true),
    e("answered-uuid-break-transfer-plain.esl", "22", S::Success,     "answered",                       None,      ROBOT,    Some("200"), 4220, 3220, false),
    e("sendevent-custom-plain.esl",             "23", S::Success,     "answered",                       None,      ROBOT,    Some("200"), 3600, 2600, false),
    e("hupall-and-show-channels-plain.esl",     "24", S::Success,     "answered",                       None,      ROBOT,    Some("200"), 2061, 1041, false),
    e("hupall-and-show-channels-plain.esl",     "25", S::Success,     "answered",                       None,      ROBOT,    Some("200"), 2061, 1041, false),
    e("originate-session-limit.esl",            "26", S::Success,     "answered",                       None,      ROBOT,    Some("200"), 2040, 1020, false),
    e("originate-session-limit.esl",            "27", S::CallLoss,    NO_CH,                            None,      None,     None,        0,    0,    false),
    e("originate-session-limit.esl",            "28", S::CallLoss,    NO_CH,                            None,      None,     None,        0,    0,    false),
    e("detected-speech-plain.esl",              "29", S::Success,     "answered",                       None,      ROBOT,    Some("200"), 6119, 5600, false),
    e("api-originate-bad-gateway.esl",          "ee", S::CallLoss,    "cause:INVALID_GATEWAY",          None,      None,     None,        0,    0,    false),
];

fn full_uuid(suffix: &str) -> String {
    format!("5ca1ab1e-0000-4000-8000-0000000000{suffix}")
}

#[test]
fn every_fixture_call_is_classified() {
    let mut files: Vec<String> = std::fs::read_dir(fixture_dir())
        .unwrap_or_else(|e| panic!("fixture dir: {e}"))
        .filter_map(|d| d.ok())
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".esl"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "fixtures missing: {files:?}");

    let mut checked = 0;
    for file in &files {
        for (uuid, call) in calls(file) {
            let want = EXPECTED
                .iter()
                .find(|x| x.file == file && full_uuid(x.uuid) == uuid)
                .unwrap_or_else(|| panic!("{file}: call {uuid} has no expectation; add one to EXPECTED"));
            let facts = call.facts();
            let o = classify(&facts, &StatusRules::default());
            let ctx = format!("{file} {uuid}: {facts:?} -> {o:?}");
            assert_eq!(o.status, want.status, "status, {ctx}");
            assert_eq!(o.rule, want.rule, "rule, {ctx}");
            assert_eq!(o.hangup_reason, want.hangup_reason, "hangup_reason, {ctx}");
            assert_eq!(o.hangup_code.as_deref(), want.hangup_code, "hangup_code, {ctx}");
            assert_eq!(o.call_status, want.status.default_call_status(), "call_status, {ctx}");
            assert_eq!(hangup_disposition(&facts), want.disposition, "disposition, {ctx}");
            assert_eq!(facts.duration_ms, want.duration_ms, "duration_ms, {ctx}");
            assert_eq!(facts.billsec_ms, want.billsec_ms, "billsec_ms, {ctx}");
            assert_eq!(facts.early_media, want.early_media, "early_media, {ctx}");
            // The flags read from CHANNEL_HANGUP_COMPLETE alone agree with the
            // earlier events, so a finalizer that only keeps the last event
            // classifies the same way.
            if let Some(hc) = &call.hangup_complete {
                assert_eq!(hc.answered, facts.answered, "answered from HANGUP_COMPLETE alone, {ctx}");
                assert_eq!(hc.early_media, facts.early_media, "early media from HANGUP_COMPLETE alone, {ctx}");
                // Failed calls have the same cause in the -ERR reply as on the channel.
                if let Some(err) = &facts.originate_error {
                    assert_eq!(Some(err), hc.hangup_cause.as_ref(), "{ctx}");
                }
            } else {
                assert!(facts.originate_error.is_some(), "no channel and no -ERR, {ctx}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, EXPECTED.len(), "every expectation matched a captured call");
}

/// Facts of the one call in `file`.
fn only_call(file: &str) -> HangupFacts {
    let calls = calls(file);
    assert_eq!(calls.len(), 1, "{file}");
    calls.into_values().map(|c| c.facts()).next().unwrap_or_default()
}

#[test]
fn fixture_facts_in_detail() {
    let busy = only_call("busy-486-plain.esl");
    assert_eq!(busy.hangup_cause.as_deref(), Some("USER_BUSY"));
    assert_eq!(busy.q850, Some(17));
    assert_eq!(busy.sip_term_status, Some(486));
    assert_eq!(busy.sip_invite_failure_status, Some(486));
    assert_eq!(busy.sip_invite_failure_phrase.as_deref(), Some("Busy Here"));
    assert_eq!(busy.originate_error.as_deref(), Some("USER_BUSY"));
    assert!(!busy.answered);

    let na = only_call("no-answer-timeout-plain.esl");
    assert_eq!(na.sip_term_status, None, "'-' reads as absent");
    assert_eq!(na.sip_invite_failure_status, Some(487));
    assert_eq!(na.sip_hangup_disposition.as_deref(), Some("send_cancel"));

    let kill = only_call("answered-uuid-kill-plain.esl");
    assert!(kill.answered);
    assert_eq!(kill.sip_term_status, None);
    assert_eq!(kill.originate_error, None, "+OK is not an error");

    // An early-media 480 refined by a recognized announcement.
    let mut em = only_call("early-media-480-plain.esl");
    assert_eq!(em.originate_error, None, "originate succeeded on early media");
    em.announcement_text = Some("您拨打的电话已关机".into());
    let o = classify(&em, &StatusRules::default());
    assert_eq!(
        (o.status, o.rule.as_str(), o.hangup_code.as_deref()),
        (S::PoweredOff, "announcement:关机", Some("480"))
    );

    // A configured override re-maps a captured cause.
    let mut rules = StatusRules::default();
    rules.by_cause.insert("NORMAL_TEMPORARY_FAILURE".into(), S::CallLoss);
    let o = classify(&only_call("service-unavailable-503-plain.esl"), &rules);
    assert_eq!((o.status, o.rule.as_str()), (S::CallLoss, "override:cause:NORMAL_TEMPORARY_FAILURE"));
}
