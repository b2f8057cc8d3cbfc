//! The simulator's wire renderer against the real FreeSWITCH captures in
//! `tests/fixtures/esl/`: each scenario is replayed with `sim::wire` and
//! compared event by event (order, header names and their order) with the
//! fixture's events for the same call.
//!
//! For the scenarios below the header NAME lists match the captures exactly,
//! order included (duplicates too: `Hangup-Cause` twice on HANGUP_COMPLETE,
//! the doubled block of PRIVATE_COMMAND). Values differ by design: uuids,
//! timestamps, sequence numbers, SIP tags, ports, RTP counters. Not rendered
//! by any `Phase` (so not compared): the detect_speech start/stop events
//! (CHANNEL_EXECUTE detect_speech, MEDIA_BUG_* detect_speech, PRIVATE_COMMAND
//! of `sendmsg`, DETECTED_SPEECH `closed`).

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use voxdial::sim::wire::{self, Channel, Format, Hangup, Phase, Renderer};
use voxdial_esl::{ContentType, EslCodec, Event, Frame};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/esl");

fn decode_all(data: &[u8]) -> Vec<Frame> {
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::from(data);
    let mut out = Vec::new();
    while let Some(f) = codec.decode(&mut buf).expect("frame decodes") {
        out.push(f);
    }
    assert!(buf.is_empty(), "trailing bytes after last frame: {:?}", String::from_utf8_lossy(&buf));
    out
}

fn events(data: &[u8]) -> Vec<Event> {
    decode_all(data).iter().filter_map(|f| Event::from_frame(f).expect("event decodes")).collect()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture exists")
}

/// `NAME` or `NAME(app)` for CHANNEL_EXECUTE*, `NAME(state)` for CHANNEL_STATE.
fn label(e: &Event) -> String {
    let name =
        e.name().map(|s| s.into_owned()).unwrap_or_else(|| format!("CUSTOM {}", e.subclass().unwrap_or_default()));
    match name.as_str() {
        "CHANNEL_EXECUTE" | "CHANNEL_EXECUTE_COMPLETE" => {
            format!("{name}({})", e.header("Application").unwrap_or_default())
        }
        "CHANNEL_STATE" => format!("{name}({})", e.header("Channel-State").unwrap_or_default()),
        "CHANNEL_CALLSTATE" => format!("{name}({})", e.header("Channel-Call-State").unwrap_or_default()),
        _ => name,
    }
}

fn names(e: &Event) -> Vec<String> {
    e.headers().into_iter().map(|(k, _)| k).collect()
}

fn call_events(all: Vec<Event>, uuid: &str) -> Vec<Event> {
    all.into_iter().filter(|e| e.unique_id().as_deref() == Some(uuid) && e.name().is_some()).collect()
}

struct Scenario {
    file: &'static str,
    uuid: &'static str,
    dialed: &'static str,
    extra_vars: &'static [(&'static str, &'static str)],
    steps: Vec<Step>,
}

enum Step {
    Phase(Phase),
    SetVar(&'static str, &'static str),
    Hangup(Hangup),
}

fn hangup(cause: &str, q850: u16, term: Option<u16>, failure: Option<(u16, &str)>, disposition: &str) -> Step {
    Step::Hangup(Hangup {
        cause: cause.into(),
        q850,
        sip_term_status: term,
        sip_invite_failure: failure.map(|(c, p)| (c, p.to_string())),
        disposition: disposition.into(),
    })
}

fn record_path(dialed: &str, uuid: &str) -> String {
    format!("/usr/local/freeswitch/recordings/2026-11-21/{dialed}.{uuid}.wav")
}

fn new_channel(sc: &Scenario) -> Channel {
    let mut variables = vec![
        ("origination_uuid".to_string(), sc.uuid.to_string()),
        ("originate_timeout".to_string(), "8".to_string()),
        ("origination_caller_id_number".to_string(), "300708".to_string()),
    ];
    variables.extend(sc.extra_vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Channel {
        uuid: sc.uuid.into(),
        dialed: sc.dialed.into(),
        caller_id_number: "300708".into(),
        gateway: "sipp".into(),
        context: "default".into(),
        extension: "robot".into(),
        variables,
        ..Default::default()
    }
}

/// Render a scenario; returns the bytes and the final channel.
fn render(sc: &Scenario, fmt: Format, wants: &dyn Fn(&str, Option<&str>) -> bool) -> (BytesMut, Channel) {
    let r = Renderer::new("100191c2-b06c-4bcb-8699-db473910b9e2");
    let mut ch = new_channel(sc);
    let mut out = BytesMut::new();
    let mut clock = 1_795_250_987_439_004i64;
    for step in &sc.steps {
        match step {
            Step::Phase(p) => {
                // Deterministic timestamps one second apart.
                clock += 1_000_000;
                match p {
                    Phase::Ringing => ch.progress_us = clock,
                    Phase::EarlyMedia => ch.progress_media_us = clock,
                    Phase::Answer => ch.answered_us = clock,
                    Phase::Hangup => ch.hangup_us = clock,
                    Phase::Originate => ch.created_us = clock,
                    _ => {}
                }
                r.phase(fmt, p, &mut ch, wants, &mut out);
            }
            Step::SetVar(k, v) => ch.set_var(k, v),
            Step::Hangup(h) => ch.hangup = Some(h.clone()),
        }
    }
    (out, ch)
}

fn all(_: &str, _: Option<&str>) -> bool {
    true
}

fn robot(sc_dialed: &str, uuid: &str) -> Step {
    Step::Phase(Phase::RobotDialplan { record_path: record_path(sc_dialed, uuid) })
}

fn p(phase: Phase) -> Step {
    Step::Phase(phase)
}

fn refuse(
    file: &'static str,
    uuid: &'static str,
    dialed: &'static str,
    cause: &str,
    q850: u16,
    code: u16,
    phrase: &str,
) -> Scenario {
    Scenario {
        file,
        uuid,
        dialed,
        extra_vars: &[],
        steps: vec![
            p(Phase::Originate),
            hangup(cause, q850, Some(code), Some((code, phrase)), "recv_refuse"),
            p(Phase::Hangup),
            p(Phase::HangupComplete),
        ],
    }
}

fn scenarios() -> Vec<Scenario> {
    let tone3 = "tone_stream://%(500,500,440);loops=3";
    let tone5 = "tone_stream://%(2000,0,440);loops=5";
    let early = |file, uuid, dialed, cause: &str, q850, code, phrase: &str| Scenario {
        file,
        uuid,
        dialed,
        extra_vars: &[("sip_route_uri", "sip:127.0.0.1:5091")],
        steps: vec![
            p(Phase::Originate),
            p(Phase::EarlyMedia),
            robot(dialed, uuid),
            hangup(cause, q850, Some(code), Some((code, phrase)), "recv_refuse"),
            p(Phase::Hangup),
            p(Phase::HangupComplete),
        ],
    };
    vec![
        Scenario {
            file: "answered-plain.esl",
            uuid: "5ca1ab1e-0000-4000-8000-00000000000a",
            dialed: "18651683344",
            extra_vars: &[],
            steps: vec![
                p(Phase::Originate),
                p(Phase::Ringing),
                p(Phase::Answer),
                robot("18651683344", "5ca1ab1e-0000-4000-8000-00000000000a"),
                p(Phase::PlaybackStart { file: tone3.into() }),
                p(Phase::PlaybackStop { file: tone3.into(), broken: false }),
                hangup("NORMAL_CLEARING", 16, Some(200), None, "recv_bye"),
                p(Phase::Hangup),
                p(Phase::HangupComplete),
            ],
        },
        refuse(
            "busy-486-plain.esl",
            "5ca1ab1e-0000-4000-8000-00000000000b",
            "18651680486",
            "USER_BUSY",
            17,
            486,
            "Busy Here",
        ),
        refuse(
            "not-found-404-plain.esl",
            "5ca1ab1e-0000-4000-8000-00000000000c",
            "18651680404",
            "UNALLOCATED_NUMBER",
            1,
            404,
            "Not Found",
        ),
        refuse(
            "unavailable-480-plain.esl",
            "5ca1ab1e-0000-4000-8000-00000000000d",
            "18651680480",
            "NO_USER_RESPONSE",
            18,
            480,
            "Temporarily Unavailable",
        ),
        refuse(
            "decline-603-plain.esl",
            "5ca1ab1e-0000-4000-8000-00000000000e",
            "18651680603",
            "CALL_REJECTED",
            21,
            603,
            "Decline",
        ),
        refuse(
            "service-unavailable-503-plain.esl",
            "5ca1ab1e-0000-4000-8000-000000000010",
            "18651680503",
            "NORMAL_TEMPORARY_FAILURE",
            41,
            503,
            "Service Unavailable",
        ),
        Scenario {
            file: "no-answer-timeout-plain.esl",
            uuid: "5ca1ab1e-0000-4000-8000-00000000000f",
            dialed: "18651680408",
            extra_vars: &[],
            steps: vec![
                p(Phase::Originate),
                p(Phase::Ringing),
                hangup("NO_ANSWER", 19, None, Some((487, "CANCEL")), "send_cancel"),
                p(Phase::Hangup),
                p(Phase::HangupComplete),
            ],
        },
        Scenario {
            file: "answered-uuid-kill-plain.esl",
            uuid: "5ca1ab1e-0000-4000-8000-000000000011",
            dialed: "18651683345",
            extra_vars: &[],
            steps: vec![
                p(Phase::Originate),
                p(Phase::Ringing),
                p(Phase::Answer),
                robot("18651683345", "5ca1ab1e-0000-4000-8000-000000000011"),
                hangup("NORMAL_CLEARING", 16, None, None, "send_bye"),
                p(Phase::Hangup),
                p(Phase::HangupComplete),
            ],
        },
        early(
            "early-media-404-plain.esl",
            "5ca1ab1e-0000-4000-8000-000000000020",
            "18651680404",
            "UNALLOCATED_NUMBER",
            1,
            404,
            "Not Found",
        ),
        early(
            "early-media-480-plain.esl",
            "5ca1ab1e-0000-4000-8000-000000000021",
            "18651680480",
            "NO_USER_RESPONSE",
            18,
            480,
            "Temporarily Unavailable",
        ),
        Scenario {
            file: "answered-uuid-break-transfer-plain.esl",
            uuid: "5ca1ab1e-0000-4000-8000-000000000022",
            dialed: "18651683345",
            extra_vars: &[],
            steps: vec![
                p(Phase::Originate),
                p(Phase::Ringing),
                p(Phase::Answer),
                robot("18651683345", "5ca1ab1e-0000-4000-8000-000000000022"),
                p(Phase::PlaybackStart { file: tone5.into() }),
                p(Phase::PlaybackStop { file: tone5.into(), broken: true }),
                Step::SetVar("voxdial_test", "1"),
                p(Phase::TransferPark),
                hangup("NORMAL_CLEARING", 16, None, None, "send_bye"),
                p(Phase::Hangup),
                p(Phase::HangupComplete),
            ],
        },
    ]
}

/// Compare two events' header names; returns a description of the first difference.
fn diff_names(want: &[String], got: &[String]) -> Option<String> {
    if want == got {
        return None;
    }
    let missing: Vec<_> = want.iter().filter(|n| !got.contains(n)).collect();
    let extra: Vec<_> = got.iter().filter(|n| !want.contains(n)).collect();
    let first = want.iter().zip(got).position(|(a, b)| a != b).unwrap_or(want.len().min(got.len()));
    Some(format!(
        "missing {missing:?}, extra {extra:?}, first order difference at #{first}: want {:?} got {:?}",
        want.get(first),
        got.get(first)
    ))
}

fn compare(sc: &Scenario, fmt: Format, fixture_file: &str, uuid: &str) -> Vec<String> {
    let want = call_events(events(&fixture(fixture_file)), uuid);
    let (bytes, _) = render(sc, fmt, &all);
    let got = call_events(events(&bytes), sc.uuid);
    let wl: Vec<String> = want.iter().map(label).collect();
    let gl: Vec<String> = got.iter().map(label).collect();
    let mut problems = Vec::new();
    if wl != gl {
        problems.push(format!("{fixture_file}: event order differs:\n want {wl:?}\n  got {gl:?}"));
        return problems;
    }
    for (i, (w, g)) in want.iter().zip(&got).enumerate() {
        if let Some(d) = diff_names(&names(w), &names(g)) {
            problems.push(format!("{fixture_file}: event #{i} {}: {d}", wl[i]));
        }
    }
    problems
}

#[test]
fn call_scenarios_match_fixtures_event_by_event() {
    let mut problems = Vec::new();
    for sc in scenarios() {
        problems.extend(compare(&sc, Format::Plain, sc.file, sc.uuid));
    }
    assert!(problems.is_empty(), "{} differences:\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn json_answered_call_matches_fixture() {
    let sc = scenarios().into_iter().next().expect("answered scenario");
    let sc = Scenario { uuid: "5ca1ab1e-0000-4000-8000-0000000000a2", ..sc };
    let sc = Scenario {
        steps: sc
            .steps
            .into_iter()
            .map(|s| match s {
                Step::Phase(Phase::RobotDialplan { .. }) => {
                    robot("18651683344", "5ca1ab1e-0000-4000-8000-0000000000a2")
                }
                other => other,
            })
            .collect(),
        ..sc
    };
    let problems = compare(&sc, Format::Json, "answered-json.esl", "5ca1ab1e-0000-4000-8000-0000000000a2");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // Every JSON value is a string, and the frame is compact JSON.
    let (bytes, _) = render(&sc, Format::Json, &all);
    for f in decode_all(&bytes) {
        assert_eq!(f.content_type, ContentType::EventJson);
        let v: serde_json::Value = serde_json::from_slice(&f.body).expect("json");
        for (_, val) in v.as_object().expect("object") {
            assert!(val.is_string());
        }
        assert!(!f.body.windows(3).any(|w| w == b"\": "), "compact JSON like FreeSWITCH's cJSON");
    }
}

fn scenario(file: &str) -> Scenario {
    scenarios().into_iter().find(|s| s.file == file).expect("scenario")
}

/// Every frame decodes and every Content-Length (outer and inner) is exact:
/// the codec rejects a short body and `Event::parse_plain` an inner length
/// beyond the body; here we also check nothing is left over.
#[test]
fn rendered_frames_have_exact_content_lengths() {
    for sc in scenarios() {
        for fmt in [Format::Plain, Format::Json] {
            let (bytes, _) = render(&sc, fmt, &all);
            for f in decode_all(&bytes) {
                let outer: usize = f.headers.get("Content-Length").expect("outer length").parse().expect("number");
                assert_eq!(outer, f.body.len());
                let ev = Event::from_frame(&f).expect("decodes").expect("is an event");
                if fmt == Format::Plain {
                    let text = f.body.as_ref();
                    let body_len = ev.body().map_or(0, |b| b.len());
                    let head_end = text.windows(2).position(|w| w == b"\n\n").expect("blank line") + 2;
                    assert_eq!(head_end + body_len, text.len(), "inner Content-Length covers the rest");
                }
            }
        }
    }
}

#[test]
fn hangup_cause_and_sip_outcome() {
    for sc in scenarios() {
        let (bytes, ch) = render(&sc, Format::Plain, &all);
        let h = ch.hangup.clone().expect("scenario hangs up");
        let evs = call_events(events(&bytes), sc.uuid);
        let hc = evs.iter().find(|e| e.name().as_deref() == Some("CHANNEL_HANGUP_COMPLETE")).expect("HANGUP_COMPLETE");
        assert_eq!(hc.header("Hangup-Cause").as_deref(), Some(h.cause.as_str()), "{}", sc.file);
        assert_eq!(hc.var("hangup_cause_q850").as_deref(), Some(h.q850.to_string().as_str()));
        assert_eq!(hc.var("sip_hangup_disposition").as_deref(), Some(h.disposition.as_str()));
        // FreeSWITCH ended the call (CANCEL, uuid_kill BYE): no sip_term_status anywhere.
        let term: Vec<_> = evs.iter().filter_map(|e| e.var("sip_term_status").map(|v| v.into_owned())).collect();
        match h.sip_term_status {
            None => assert!(term.is_empty(), "{}: sip_term_status {term:?}", sc.file),
            Some(code) => {
                let hangup = evs.iter().find(|e| e.name().as_deref() == Some("CHANNEL_HANGUP")).expect("HANGUP");
                assert_eq!(hangup.var("sip_term_status").as_deref(), Some(code.to_string().as_str()), "{}", sc.file);
            }
        }
        if let Some((code, phrase)) = &h.sip_invite_failure {
            assert_eq!(hc.var("sip_invite_failure_status").as_deref(), Some(code.to_string().as_str()));
            assert_eq!(hc.var("sip_invite_failure_phrase").as_deref(), Some(phrase.as_str()));
        }
    }
}

#[test]
fn timing_variables_only_on_hangup_complete_and_destroy() {
    let timing = [
        "duration",
        "billsec",
        "mduration",
        "billmsec",
        "progresssec",
        "answersec",
        "waitsec",
        "uduration",
        "flow_billsec",
    ];
    let sc = scenario("answered-plain.esl");
    let (bytes, ch) = render(&sc, Format::Plain, &all);
    for e in call_events(events(&bytes), sc.uuid) {
        let name = e.name().unwrap_or_default().into_owned();
        let carries = name == "CHANNEL_HANGUP_COMPLETE" || name == "CHANNEL_DESTROY";
        for t in timing {
            assert_eq!(e.var(t).is_some(), carries, "{name} variable_{t}");
        }
        assert_eq!(e.var("hangup_cause_q850").is_some(), carries, "{name} q850");
        if carries {
            // Renderer clock: created, +1 s ringing, +1 s answer, …, hangup 6 s after creation.
            let dur = (ch.hangup_us - ch.created_us) / 1_000_000;
            let bill = (ch.hangup_us - ch.answered_us) / 1_000_000;
            assert_eq!(e.var("duration").as_deref(), Some(dur.to_string().as_str()));
            assert_eq!(e.var("billsec").as_deref(), Some(bill.to_string().as_str()));
            assert_eq!(e.var("answersec").as_deref(), Some("2"));
            assert_eq!(e.var("mduration").as_deref(), Some((dur * 1000).to_string().as_str()));
        }
    }
}

#[test]
fn call_update_swaps_caller_profile_and_recording_path_shows_up() {
    let sc = scenario("answered-uuid-kill-plain.esl");
    let (bytes, ch) = render(&sc, Format::Plain, &all);
    let path = record_path(sc.dialed, sc.uuid);
    assert_eq!(ch.record_path.as_deref(), Some(path.as_str()));
    assert!(ch.swapped);
    let evs = call_events(events(&bytes), sc.uuid);
    let before = evs.iter().find(|e| e.name().as_deref() == Some("CHANNEL_ANSWER")).expect("answer");
    assert_eq!(before.header("Caller-Caller-ID-Number").as_deref(), Some("300708"));
    assert_eq!(before.header("Caller-Destination-Number").as_deref(), Some(sc.dialed));
    let upd = evs.iter().find(|e| e.name().as_deref() == Some("CALL_UPDATE")).expect("CALL_UPDATE");
    assert_eq!(upd.header("Caller-Caller-ID-Number").as_deref(), Some(sc.dialed));
    assert_eq!(upd.header("Caller-Callee-ID-Number").as_deref(), Some("300708"));
    assert_eq!(upd.header("Caller-Destination-Number").as_deref(), Some("robot"));
    assert_eq!(upd.header("Caller-Profile-Index").as_deref(), Some("2"));
    let stop = evs.iter().find(|e| e.name().as_deref() == Some("RECORD_STOP")).expect("RECORD_STOP");
    assert_eq!(stop.header("Record-File-Path").as_deref(), Some(path.as_str()));
    assert_eq!(stop.header("Record-Completion-Cause").as_deref(), Some("success-silence"));
    let bug = evs.iter().find(|e| e.name().as_deref() == Some("MEDIA_BUG_STOP")).expect("MEDIA_BUG_STOP");
    assert_eq!(bug.header("Media-Bug-Target").as_deref(), Some(path.as_str()));
}

#[test]
fn early_media_facts() {
    let sc = scenario("early-media-404-plain.esl");
    let (bytes, _) = render(&sc, Format::Plain, &all);
    let evs = call_events(events(&bytes), sc.uuid);
    assert!(evs.iter().all(|e| e.name().as_deref() != Some("CHANNEL_ANSWER")));
    let pm = &evs[6];
    assert_eq!(pm.name().as_deref(), Some("CHANNEL_PROGRESS_MEDIA"));
    assert_eq!(pm.header("Answer-State").as_deref(), Some("early"));
    assert_eq!(pm.var("endpoint_disposition").as_deref(), Some("EARLY MEDIA"));
    let hc = evs.iter().find(|e| e.name().as_deref() == Some("CHANNEL_HANGUP_COMPLETE")).expect("HC");
    assert_eq!(hc.var("answer_epoch").as_deref(), Some("0"));
    assert_eq!(hc.var("billsec").as_deref(), Some("0"));
    assert!(hc.var("progress_media_stamp").is_some());
    assert_ne!(hc.header("Caller-Channel-Progress-Media-Time").as_deref(), Some("0"));
}

#[test]
fn playback_break_and_transfer() {
    let sc = scenario("answered-uuid-break-transfer-plain.esl");
    let (bytes, ch) = render(&sc, Format::Plain, &all);
    let evs = call_events(events(&bytes), sc.uuid);
    let stop = evs.iter().find(|e| e.name().as_deref() == Some("PLAYBACK_STOP")).expect("stop");
    assert_eq!(stop.header("Playback-Status").as_deref(), Some("break"));
    let done = evs.iter().find(|e| label(e) == "CHANNEL_EXECUTE_COMPLETE(playback)").expect("complete");
    assert_eq!(done.header("Application-Response").as_deref(), Some("FILE PLAYED"));
    assert_eq!(ch.profile_index, 3);
    let park = evs.iter().filter(|e| e.name().as_deref() == Some("CHANNEL_PARK")).nth(1).expect("second park");
    assert_eq!(park.header("Caller-Dialplan").as_deref(), Some("inline"));
    assert!(park.var("transfer_source").is_some_and(|t| t.ends_with("bl_xfer:park/default/inline")));
    assert_eq!(park.var("voxdial_test").as_deref(), Some("1"));
}

/// `wants` filters per event and a filtered phase still advances the channel.
#[test]
fn subscription_filter() {
    let sc = scenario("answered-plain.esl");
    let only = |n: &str, _: Option<&str>| n == "CHANNEL_HANGUP_COMPLETE" || n == "CHANNEL_ANSWER";
    let (bytes, ch) = render(&sc, Format::Plain, &only);
    let got: Vec<String> = events(&bytes).iter().map(label).collect();
    assert_eq!(got, ["CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"]);
    assert!(ch.var("billsec").is_some());
}

fn fixture_event(file: &str, pred: impl Fn(&Event) -> bool) -> Event {
    events(&fixture(file)).into_iter().find(|e| pred(e)).expect("fixture has the event")
}

#[test]
fn non_channel_events_match_fixtures() {
    let r = Renderer::new("100191c2-b06c-4bcb-8699-db473910b9e2");
    let arg = "{origination_uuid=x,originate_timeout=8}sofia/gateway/sipp/1 robot XML default";
    for fmt in [Format::Plain, Format::Json] {
        let (file, pick_ok) = match fmt {
            Format::Plain => ("answered-plain.esl", "busy-486-plain.esl"),
            Format::Json => ("answered-json.esl", "answered-json.esl"),
        };
        let bg = events(&r.background_job(fmt, "j1", "originate", arg, "-ERR USER_BUSY\n")).remove(0);
        let want = fixture_event(pick_ok, |e| e.name().as_deref() == Some("BACKGROUND_JOB"));
        assert_eq!(diff_names(&names(&want), &names(&bg)), None, "BACKGROUND_JOB {fmt:?}");
        assert_eq!(bg.body_text().as_deref(), Some("-ERR USER_BUSY\n"));
        assert_eq!(bg.header("Job-Command-Arg").as_deref(), Some(arg));
        let api = events(&r.api_event(fmt, "originate", arg)).remove(0);
        let want = fixture_event(file, |e| e.name().as_deref() == Some("API"));
        assert_eq!(diff_names(&names(&want), &names(&api)), None, "API {fmt:?}");
        let hb = events(&r.heartbeat(fmt, 3, 40)).remove(0);
        let want =
            fixture_event(if fmt == Format::Plain { "idle-heartbeat-plain.esl" } else { "answered-json.esl" }, |e| {
                e.name().as_deref() == Some("HEARTBEAT")
            });
        assert_eq!(diff_names(&names(&want), &names(&hb)), None, "HEARTBEAT {fmt:?}");
        assert_eq!(hb.header("Session-Count").as_deref(), Some("3"));
    }
    // The raw plain encoding of the originate argument, as in the capture.
    let raw = r.api_event(Format::Plain, "originate", "{a=b}x y");
    assert!(String::from_utf8_lossy(&raw).contains("API-Command-Argument: %7Ba%3Db%7Dx%20y\n"));
}

#[test]
fn sendevent_custom_shapes_match_fixture() {
    let file = "sendevent-custom-plain.esl";
    let fx: Vec<Event> = events(&fixture(file)).into_iter().filter(|e| e.subclass().is_some()).collect();
    let r = Renderer::new("8da372e9-d9b0-4d18-b6d0-82898b4c57e4");
    // Fired at once (no Unique-ID).
    let fired = events(&r.custom_event(
        Format::Plain,
        "voxdial::asr",
        &[
            ("Command", "sendevent CUSTOM"),
            ("ASR-Text", "请稍后再打来"),
            ("Speech-Type", "begin-speaking"),
            ("Event-UUID", "e1"),
        ],
        None,
        None,
    ))
    .remove(0);
    let want = fx.iter().find(|e| e.name().is_some()).expect("fired shape");
    assert_eq!(diff_names(&names(want), &names(&fired)), None);
    assert_eq!(fired.header("ASR-Text").as_deref(), Some("请稍后再打来"));
    // Queued to a live session: channel headers, Unique-ID and Content-Length twice.
    let sc = scenario("answered-uuid-kill-plain.esl");
    let mut ch = new_channel(&sc);
    let r2 = Renderer::new("x");
    let mut sink = BytesMut::new();
    for ph in [
        Phase::Originate,
        Phase::Ringing,
        Phase::Answer,
        Phase::RobotDialplan { record_path: record_path(sc.dialed, sc.uuid) },
    ] {
        r2.phase(Format::Plain, &ph, &mut ch, &all, &mut sink);
    }
    let body = "请稍后再打来\n";
    let len = body.len().to_string();
    let queued = events(&r.custom_event(
        Format::Plain,
        "voxdial::asr",
        &[
            ("Command", "sendevent CUSTOM"),
            ("Unique-ID", sc.uuid),
            ("ASR-Text", "请稍后再打来"),
            ("Speech-Type", "detected-speech"),
            ("Content-Length", &len),
            ("Event-UUID", "e2"),
        ],
        Some(&ch),
        Some(body),
    ))
    .remove(0);
    let want = fx.iter().rfind(|e| e.name().is_none()).expect("queued shape");
    assert_eq!(diff_names(&names(want), &names(&queued)), None);
    assert_eq!(queued.body_text().as_deref(), Some(body));
    assert!(queued.name().is_none());
}

#[test]
fn detected_speech_shapes_match_fixture() {
    let fx: Vec<Event> = events(&fixture("detected-speech-plain.esl"))
        .into_iter()
        .filter(|e| e.name().as_deref() == Some("DETECTED_SPEECH"))
        .collect();
    let sc = scenario("answered-uuid-kill-plain.esl");
    let mut ch = new_channel(&sc);
    let r = Renderer::new("x");
    let mut out = BytesMut::new();
    for ph in [
        Phase::Originate,
        Phase::Ringing,
        Phase::Answer,
        Phase::RobotDialplan { record_path: record_path(sc.dialed, sc.uuid) },
    ] {
        r.phase(Format::Plain, &ph, &mut ch, &|_, _| false, &mut out);
    }
    assert!(out.is_empty(), "nothing subscribed, nothing rendered");
    r.phase(Format::Plain, &Phase::SpeechBegin, &mut ch, &all, &mut out);
    r.phase(
        Format::Plain,
        &Phase::SpeechDetected { text: "yes i am interested".into(), confidence: 100 },
        &mut ch,
        &all,
        &mut out,
    );
    let got = events(&out);
    assert_eq!(got.len(), 2);
    for (w, g) in fx.iter().zip(&got) {
        assert_eq!(w.header("Speech-Type"), g.header("Speech-Type"));
        assert_eq!(diff_names(&names(w), &names(g)), None);
    }
    assert_eq!(got[1].body(), fx[1].body(), "NLSML body byte for byte");
}

#[test]
fn outer_frames_match_fixtures() {
    assert_eq!(&wire::auth_request()[..], b"Content-Type: auth/request\n\n");
    let auth_ok = fixture("auth-ok.esl");
    let goodbye = wire::disconnect_notice(wire::GOODBYE);
    assert_eq!(wire::GOODBYE.len(), 67);
    assert!(auth_ok.ends_with(&goodbye), "disconnect notice byte for byte");
    let bye = wire::command_reply("+OK bye", &[]);
    assert!(auth_ok.windows(bye.len()).any(|w| w == &bye[..]));
    let job = wire::command_reply(
        "+OK Job-UUID: aef79cf8-ec4d-4d7f-90e1-924c4211319d",
        &[("Job-UUID", "aef79cf8-ec4d-4d7f-90e1-924c4211319d")],
    );
    let answered = fixture("answered-plain.esl");
    assert!(answered.windows(job.len()).any(|w| w == &job[..]));
    let api = wire::api_response("+OK Message sent\n");
    assert!(answered.windows(api.len()).any(|w| w == &api[..]));
}

/// Render speed: `cargo test --release --test sim_wire_headers -- --ignored --nocapture render_speed`.
#[test]
#[ignore = "benchmark"]
fn render_speed() {
    for fmt in [Format::Plain, Format::Json] {
        let sc = scenario("answered-plain.esl");
        let start = std::time::Instant::now();
        let per_call = call_events(events(&render(&sc, fmt, &all).0), sc.uuid).len() as u64;
        let (mut calls, mut bytes) = (0u64, 0usize);
        while start.elapsed().as_secs_f64() < 2.0 {
            let (out, _) = render(&sc, fmt, &all);
            bytes += out.len();
            calls += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{fmt:?}: {:.0} calls/s, {:.0} events/s ({per_call} events per call), {:.1} MB/s",
            calls as f64 / secs,
            (calls * per_call) as f64 / secs,
            bytes as f64 / secs / 1e6
        );
    }
}
