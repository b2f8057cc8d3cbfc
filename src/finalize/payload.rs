//! Callback payloads, one builder per `call_notify_type`:
//!
//! | type | format | sent for |
//! |---|---|---|
//! | 1 | seed 000/001 record detail: `records[]` + `info.record` + `info.task` | answered calls |
//! | 2 (and 0, the column default) | seed 002 success callback: `count`, `data[]` | answered calls |
//! | 3 | seed 003 call record, camelCase, `calledResult` 1/2 | every attempt |
//!
//! Builders are pure: the finalizer freezes the payload when the call is
//! written, so a retry months later sends the same bytes the first attempt
//! sent (and the signature over them stays valid).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::store::outbox::{NewEvent, NotifyContext};
use crate::store::{CallWrite, DetailWrite};

use super::recordings::VoiceLinks;

/// Outbox `kind` of a per-call callback (`call_notify_url`).
pub const KIND_CALL: &str = "call_notify";
/// Outbox `kind` of a task-stopped notice (`call_stop_notify_url`).
pub const KIND_STOP: &str = "call_stop_notify";

/// The payload format a task asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyFormat {
    RecordDetail,
    SuccessCallback,
    CallRecord,
}

impl NotifyFormat {
    /// `call_notify_type` → format; unknown types send nothing.
    pub fn from_type(t: i64) -> Option<NotifyFormat> {
        match t {
            1 => Some(Self::RecordDetail),
            0 | 2 => Some(Self::SuccessCallback),
            3 => Some(Self::CallRecord),
            _ => None,
        }
    }
}

fn secs(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000)
}

fn gender_str(g: Option<i64>) -> &'static str {
    match g {
        Some(1) => "女",
        Some(2) => "男",
        Some(3) => "疑似女",
        Some(4) => "疑似男",
        _ => "未知",
    }
}

fn tag_list(tags: &[String], ctx: &NotifyContext, id_key: &str) -> Vec<Value> {
    tags.iter().map(|t| json!({ id_key: t, "name": ctx.tag_names.get(t).cloned().unwrap_or_default() })).collect()
}

/// The callback events of one written call (empty when the task has no
/// `call_notify_url`, an unknown type, or a format that skips this call).
pub fn call_events(
    c: &CallWrite,
    ctx: &NotifyContext,
    vars: &BTreeMap<String, String>,
    links: &VoiceLinks,
    now_unix: i64,
) -> Vec<NewEvent> {
    let Some(url) = ctx.call_notify_url.clone() else { return vec![] };
    let Some(format) = NotifyFormat::from_type(ctx.call_notify_type) else { return vec![] };
    let voice_url = links.voice_url(c.recordfile.as_deref(), now_unix);
    let payload = match format {
        NotifyFormat::RecordDetail => record_detail(c, ctx, voice_url.as_deref()),
        NotifyFormat::SuccessCallback => success_callback(c, ctx, vars, voice_url.as_deref()),
        NotifyFormat::CallRecord => Some(call_record(c, ctx, vars, voice_url.as_deref())),
    };
    payload
        .map(|p| NewEvent {
            idempotency_key: format!("{KIND_CALL}:{}", c.callid),
            task_id: c.task_id.clone(),
            callid: Some(c.callid.clone()),
            kind: KIND_CALL.to_string(),
            url,
            payload: p.to_string(),
        })
        .into_iter()
        .collect()
}

/// Seed 002: `{count, data: [..]}` for an answered call.
pub fn success_callback(
    c: &CallWrite,
    ctx: &NotifyContext,
    vars: &BTreeMap<String, String>,
    voice_url: Option<&str>,
) -> Option<Value> {
    let r = c.record.as_ref()?;
    let extra: Map<String, Value> = vars
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "name" | "email" | "company"))
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Some(json!({
        "count": 1,
        "data": [{
            "calldate": c.calldate,
            "answerdate": c.answerdate,
            "bill": secs(c.bill_ms),
            "duration": secs(c.duration_ms),
            "callid": c.callid,
            "record_id": r.id,
            "customer_id": null,
            "master_user_id": ctx.master_user_id,
            "user_id": c.user_id,
            "type": ctx.user_type,
            "intention_results": r.intention_results,
            "rounds": r.rounds,
            "score": r.score,
            "number_data": {
                "number": c.number,
                "hangupdate": c.hangupdate,
                "province": null,
                "city": null,
                "operator": null,
            },
            "group": { "id": c.group_id, "name": ctx.group_name },
            "task": { "id": c.task_id, "name": ctx.task.name },
            "user": { "id": c.user_id, "name": ctx.user_name },
            "level": { "level_id": r.level_id, "level_name": r.level_name },
            "tags": tag_list(&r.tags, ctx, "tag_id"),
            "customer_data": {
                "name": vars.get("name").cloned().unwrap_or_else(|| "未知".into()),
                "email": vars.get("email"),
                "company": vars.get("company"),
                "extra": if extra.is_empty() { Value::Null } else { Value::Object(extra) },
            },
            "voice_url": voice_url,
        }]
    }))
}

fn detail_row(c: &CallWrite, record_id: &str, d: &DetailWrite, ctx: &NotifyContext) -> Value {
    json!({
        // Detail ids are assigned by the write itself; the API's record
        // detail has them.
        "id": null,
        "record_id": record_id,
        "task_id": c.task_id,
        "notify": d.notify,
        "callid": c.callid,
        "error_code": 0,
        "asrtype": d.asrtype,
        "callee": c.number,
        "gender": d.gender,
        "asr_elapse": d.asr_elapse,
        "record_ms": null,
        "volume_gain": null,
        "question": d.question,
        "split_question": null,
        "question_index": d.question_index,
        "speak_ms": d.speak_ms,
        "play_ms": d.play_ms,
        "keyword": d.keyword,
        "answer_id": d.answer_id,
        "answer_text": d.answer_text,
        "answer_content": d.answer_content,
        "word_class": d.word_class,
        "answer_action": d.answer_action,
        "score": d.score,
        "sequence": d.sequence,
        "created_at": d.created_at,
        "updated_at": d.created_at,
        "bridge_status": d.bridge_status,
        "user_id": c.user_id,
        "tags": tag_list(&d.tags, ctx, "id"),
        "download_voice": [],
        "voice": "",
    })
}

/// Seed 000/001 record detail: `{records, user_id, info: {record, task}}`.
pub fn record_detail(c: &CallWrite, ctx: &NotifyContext, voice_url: Option<&str>) -> Option<Value> {
    let r = c.record.as_ref()?;
    let level = r.level_id.as_ref().map(|id| {
        let (name, alias, color) = ctx.levels.get(id).cloned().unwrap_or_default();
        json!({ "id": id, "name": name, "alias": alias, "color": color })
    });
    let mut task = serde_json::to_value(&ctx.task).unwrap_or_else(|_| json!({}));
    if let Value::Object(t) = &mut task {
        t.insert("call_notify_url".into(), json!(ctx.call_notify_url));
        t.insert("call_notify_type".into(), json!(ctx.call_notify_type));
        t.insert("call_stop_notify_url".into(), json!(ctx.call_stop_notify_url));
        t.insert("group".into(), json!({ "id": c.group_id, "name": ctx.group_name }));
    }
    Some(json!({
        "records": r.details.iter().map(|d| detail_row(c, &r.id, d, ctx)).collect::<Vec<_>>(),
        "user_id": c.user_id,
        "info": {
            "record": {
                "id": r.id,
                "task_id": c.task_id,
                "group_id": c.group_id,
                "callid": c.callid,
                "score": r.score,
                "callee": c.number,
                "caller_number": c.caller_number,
                "duration": c.duration_ms,
                "error_code": 0,
                "gender": r.gender,
                "level_id": r.level_id,
                "calldate": c.calldate,
                "bill": c.bill_ms,
                "hangupcause": c.hangupcause,
                "hangupdate": c.hangupdate,
                "answerdate": c.answerdate,
                "recordfile": c.recordfile,
                "bridge_callid": null,
                "bridge_number": null,
                "bridge_calldate": null,
                "bridge_answerdate": null,
                "hangup_disposition": c.hangup_disposition,
                "rounds": r.rounds,
                "level_name": r.level_name,
                "intention_results": r.intention_results,
                "user_id": c.user_id,
                "level": level,
                "gender_str": gender_str(r.gender),
                "hangup_disposition_str": match c.hangup_disposition { Some(1) => "AI", Some(2) => "客户", _ => "" },
                "tags": tag_list(&r.tags, ctx, "id"),
                "voice_url": voice_url,
            },
            "task": task,
        }
    }))
}

/// Seed 003's `dialogueContentList` from the detail rows: the customer's
/// words (role 2) before the robot's answer (role 1); in-progress ASR rows
/// are left out as the seeds' UI does.
fn dialogue_contents(c: &CallWrite, details: &[DetailWrite]) -> (Vec<Value>, i64, i64) {
    let mut out = Vec::new();
    let (mut user_turns, mut effective) = (0, 0);
    let entry = |role: i64, d: &DetailWrite, content: &str, match_type: Value, result: &str, name: &str| {
        json!({
            "callId": c.callid,
            "instanceId": 1,
            "robotId": c.group_id,
            "robotDefId": c.group_id,
            "dialogueRole": role,
            "dialogueStartTime": d.created_at,
            "dialogueContent": content,
            "dialogueRecordUrl": null,
            "matchType": match_type,
            "matchResult": result,
            "matchName": name,
        })
    };
    for d in details.iter().filter(|d| d.notify != "asrprogress_notify") {
        if !d.question.is_empty() {
            user_turns += 1;
            // 2: an answer branch matched; 10: nothing matched.
            let (mt, result) = match &d.keyword {
                Some(k) => {
                    effective += 1;
                    (json!(2), k.as_str())
                }
                None => (json!(10), ""),
            };
            out.push(entry(2, d, &d.question, mt, result, d.answer_text.as_deref().unwrap_or("")));
        }
        if let Some(a) = d.answer_content.as_deref().filter(|a| !a.is_empty()) {
            out.push(entry(1, d, a, Value::Null, "", ""));
        }
    }
    (out, user_turns, effective)
}

/// Seed 003 call record (camelCase), for any attempt.
pub fn call_record(
    c: &CallWrite,
    ctx: &NotifyContext,
    vars: &BTreeMap<String, String>,
    voice_url: Option<&str>,
) -> Value {
    let answered = c.answerdate.is_some();
    let r = c.record.as_ref();
    let tags: Vec<String> = r
        .map(|r| r.tags.iter().map(|t| ctx.tag_names.get(t).cloned().unwrap_or_else(|| t.clone())).collect())
        .unwrap_or_default();
    let (contents, user_turns, effective) = r.map(|r| dialogue_contents(c, &r.details)).unwrap_or_default();
    let level_key = r.and_then(|r| r.level_id.clone());
    let level_name = r.and_then(|r| r.level_name.clone());
    let instances: Vec<Value> = r
        .map(|r| {
            vec![json!({
                "callId": c.callid,
                "instanceId": 1,
                "robotId": c.group_id,
                "robotDefId": c.group_id,
                "robotName": ctx.group_name,
                "dialogueStartTime": c.answerdate,
                "dialogueEndTime": c.hangupdate,
                "dialogueDuration": secs(c.bill_ms),
                "dialogueRecordUrl": voice_url,
                "dialogueRound": r.rounds,
                "intentionLabelKey": level_key,
                "intentionLabelName": level_name,
                "labelInfoList": tags.iter().map(|t| json!({ "name": t })).collect::<Vec<_>>(),
                "dialogueContentList": contents,
            })]
        })
        .unwrap_or_default();
    // hangupBy: 1 customer, 3 system, 4 IVR (the robot), 5 external line.
    let hangup_by = match c.hangup_disposition {
        Some(2) => 1,
        Some(1) => 4,
        _ if answered => 3,
        _ => 5,
    };
    let gender = match r.and_then(|r| r.gender) {
        Some(1) | Some(3) => "female",
        Some(2) | Some(4) => "male",
        _ => "unknown",
    };
    // Two halves: one json! of this size exceeds the macro recursion limit.
    let mut head = json!({
        "callId": c.callid,
        "workflow": 4,
        "fromNumber": c.caller_number.clone().unwrap_or_default(),
        "toNumber": c.number,
        "relayNumber": null,
        "callStartTime": c.calldate,
        "callEndTime": c.hangupdate,
        "callDuration": secs(c.duration_ms),
        "callRecordUrl": voice_url,
        "customerProvince": null,
        "customerCity": null,
        "routerId": null,
        "routerName": null,
        "transferAgentFlag": 0,
        "agentId": null,
        "agentName": null,
        "queueId": null,
        "queueName": null,
        "robotNames": ctx.group_name.iter().collect::<Vec<_>>(),
        "labelInfos": tags,
        "variables": vars.iter().map(|(k, v)| json!({ "variableName": k, "variableValue": v })).collect::<Vec<_>>(),
        "instances": instances,
        "intentionLabelKey": level_key,
        "intentionLabelName": level_name,
        "allRecordUrl": voice_url.iter().map(|u| json!({ "recordUrl": u, "recordType": "ivr" })).collect::<Vec<_>>(),
    });
    let tail = json!({
        "adTaskId": c.task_id,
        "adTaskName": ctx.task.name,
        "contactDetailRel": {
            "name": vars.get("name"),
            "mobile": c.number,
            "companyName": vars.get("company"),
            "remark": vars.get("remark"),
            "variates": vars.iter().map(|(k, v)| json!({ "key": k, "type": "text", "value": v })).collect::<Vec<_>>(),
        },
        "callResult": null,
        "calledResult": if answered { 2 } else { 1 },
        "agentCallDuration": 0,
        "hangupCause": if answered { Value::Null } else { json!(c.status_str) },
        "hangupBy": hangup_by,
        "customerNumber": c.number,
        "remark": "",
        "taskContactBatchName": null,
        "userAnsweredFlag": i64::from(user_turns > 0),
        "userAnsweredCount": user_turns,
        "userAnsweredEffectiveCount": effective,
        "isFinalCall": i64::from(c.redial_in_secs.is_none()),
        "gender": gender,
        // Not in seed 003: voxdial's own number status (0–12) and its name.
        "status": c.status,
        "statusStr": c.status_str,
    });
    if let (Value::Object(h), Value::Object(t)) = (&mut head, tail) {
        h.extend(t);
    }
    head
}

/// The `call_stop_notify_url` event of a task that stopped (`reason`:
/// `completed` or `paused`); `None` without a URL.
pub fn stop_event(
    ctx: &NotifyContext,
    reason: &str,
    statuses: &BTreeMap<i64, i64>,
    event_id: &str,
) -> Option<NewEvent> {
    let url = ctx.call_stop_notify_url.clone()?;
    let payload = json!({
        "task_id": ctx.task.uuid,
        "name": ctx.task.name,
        "user_id": ctx.task.user_id,
        "reason": reason,
        "stopped_at": crate::store::now_str(),
        "total": statuses.values().sum::<i64>(),
        "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
    });
    Some(NewEvent {
        idempotency_key: format!("{KIND_STOP}:{}:{event_id}", ctx.task.uuid),
        task_id: ctx.task.uuid.clone(),
        callid: None,
        kind: KIND_STOP.to_string(),
        url,
        payload: payload.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::call::RecordWrite;
    use crate::store::Task;

    fn ctx(url: Option<&str>, t: i64) -> NotifyContext {
        NotifyContext {
            task: Task { ..Task::new("t1", "任务", "u1", 7) },
            call_notify_url: url.map(str::to_string),
            call_notify_type: t,
            call_stop_notify_url: Some("http://h/stop".into()),
            group_name: Some("话术".into()),
            user_name: Some("租户".into()),
            user_type: 4,
            master_user_id: "u1".into(),
            tag_names: BTreeMap::from([("7:t".to_string(), "有意向".to_string())]),
            levels: BTreeMap::from([(
                "7:l".to_string(),
                ("A级".to_string(), Some("有意向".to_string()), Some("#f00".to_string())),
            )]),
        }
    }

    fn call(answered: bool) -> CallWrite {
        let d = |seq: i64, q: &str| DetailWrite {
            notify: if q.is_empty() { "enter" } else { "asrmessage_notify" }.into(),
            question: q.into(),
            keyword: (!q.is_empty()).then(|| "好".into()),
            answer_content: Some("您好".into()),
            sequence: seq,
            created_at: "2025-01-01 10:00:01".into(),
            ..DetailWrite::default()
        };
        CallWrite {
            callid: "c1".into(),
            task_id: "t1".into(),
            user_id: "u1".into(),
            group_id: 7,
            number_id: 1,
            number: "13800000000".into(),
            attempt: 1,
            status: if answered { 1 } else { 8 },
            status_str: if answered { "呼叫成功" } else { "占线、用户正忙" }.into(),
            calldate: "2025-01-01 10:00:00".into(),
            answerdate: answered.then(|| "2025-01-01 10:00:05".into()),
            hangupdate: "2025-01-01 10:00:49".into(),
            bill_ms: if answered { 43_400 } else { 0 },
            duration_ms: 49_000,
            caller_number: Some("021".into()),
            recordfile: answered.then(|| "/r/2025-01-01/13800000000.7.10-00-00.c1.wav".into()),
            hangup_disposition: answered.then_some(2),
            record: answered.then(|| RecordWrite {
                id: "r1".into(),
                score: 20,
                level_id: Some("7:l".into()),
                level_name: Some("A级(有意向)".into()),
                intention_results: Some(1),
                rounds: 1,
                gender: Some(2),
                tags: vec!["7:t".into()],
                details: vec![d(1, ""), d(2, "好的")],
            }),
            ..CallWrite::default()
        }
    }

    fn keys(v: &Value) -> Vec<String> {
        v.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
    }

    fn assert_has(v: &Value, want: &[&str]) {
        let have = keys(v);
        let missing: Vec<&&str> = want.iter().filter(|k| !have.iter().any(|h| h == *k)).collect();
        assert!(missing.is_empty(), "missing {missing:?} in {have:?}");
    }

    #[test]
    fn types_map_to_formats() {
        assert_eq!(NotifyFormat::from_type(0), Some(NotifyFormat::SuccessCallback));
        assert_eq!(NotifyFormat::from_type(1), Some(NotifyFormat::RecordDetail));
        assert_eq!(NotifyFormat::from_type(2), Some(NotifyFormat::SuccessCallback));
        assert_eq!(NotifyFormat::from_type(3), Some(NotifyFormat::CallRecord));
        assert_eq!(NotifyFormat::from_type(9), None);
        let links = VoiceLinks::default();
        let vars = BTreeMap::new();
        assert!(call_events(&call(true), &ctx(None, 2), &vars, &links, 0).is_empty(), "no URL, no event");
        assert!(call_events(&call(false), &ctx(Some("http://h"), 2), &vars, &links, 0).is_empty(), "2: answered only");
        assert!(call_events(&call(false), &ctx(Some("http://h"), 1), &vars, &links, 0).is_empty(), "1: answered only");
        let ev = call_events(&call(false), &ctx(Some("http://h"), 3), &vars, &links, 0);
        assert_eq!(ev.len(), 1, "3: every attempt");
        assert_eq!(ev[0].idempotency_key, "call_notify:c1");
    }

    #[test]
    fn success_callback_has_seed_002_fields() {
        let vars = BTreeMap::from([("name".to_string(), "王先生".to_string()), ("vip".to_string(), "1".to_string())]);
        let v = success_callback(&call(true), &ctx(None, 2), &vars, Some("http://h/v?key=k")).expect("answered");
        assert_eq!(v["count"], 1);
        let d = &v["data"][0];
        assert_has(
            d,
            &[
                "calldate",
                "answerdate",
                "bill",
                "duration",
                "callid",
                "customer_id",
                "master_user_id",
                "user_id",
                "type",
                "intention_results",
                "rounds",
                "score",
                "number_data",
                "group",
                "task",
                "user",
                "level",
                "tags",
                "customer_data",
                "voice_url",
            ],
        );
        assert_has(&d["number_data"], &["number", "hangupdate", "province", "city", "operator"]);
        assert_has(&d["customer_data"], &["name", "email", "company", "extra"]);
        assert_eq!((d["bill"].as_i64(), d["duration"].as_i64()), (Some(43), Some(49)), "seconds, as seed 002");
        assert_eq!(d["tags"][0], json!({ "tag_id": "7:t", "name": "有意向" }));
        assert_eq!(d["customer_data"]["name"], "王先生");
        assert_eq!(d["customer_data"]["extra"], json!({ "vip": "1" }));
        assert_eq!(d["level"], json!({ "level_id": "7:l", "level_name": "A级(有意向)" }));
    }

    #[test]
    fn record_detail_has_seed_000_001_fields() {
        let v = record_detail(&call(true), &ctx(Some("http://h"), 1), None).expect("answered");
        let rec = &v["info"]["record"];
        assert_has(
            rec,
            &[
                "id",
                "task_id",
                "group_id",
                "callid",
                "score",
                "callee",
                "caller_number",
                "duration",
                "error_code",
                "gender",
                "level_id",
                "calldate",
                "bill",
                "hangupcause",
                "hangupdate",
                "answerdate",
                "recordfile",
                "bridge_callid",
                "bridge_number",
                "bridge_calldate",
                "bridge_answerdate",
                "hangup_disposition",
                "rounds",
                "level_name",
                "intention_results",
                "level",
                "gender_str",
                "hangup_disposition_str",
            ],
        );
        assert_eq!(rec["bill"], 43_400, "ms, as seed 000");
        assert_eq!(rec["level"], json!({ "id": "7:l", "name": "A级", "alias": "有意向", "color": "#f00" }));
        assert_eq!((rec["gender_str"].as_str(), rec["hangup_disposition_str"].as_str()), (Some("男"), Some("客户")));
        assert_has(
            &v["records"][1],
            &[
                "id",
                "record_id",
                "task_id",
                "notify",
                "callid",
                "error_code",
                "asrtype",
                "callee",
                "gender",
                "asr_elapse",
                "record_ms",
                "volume_gain",
                "question",
                "split_question",
                "question_index",
                "speak_ms",
                "play_ms",
                "keyword",
                "answer_id",
                "answer_text",
                "answer_content",
                "word_class",
                "answer_action",
                "score",
                "sequence",
                "created_at",
                "updated_at",
                "bridge_status",
                "user_id",
                "tags",
                "download_voice",
                "voice",
            ],
        );
        let task = &v["info"]["task"];
        assert_has(
            task,
            &[
                "uuid",
                "name",
                "_originate_timeout",
                "call_notify_url",
                "call_notify_type",
                "call_stop_notify_url",
                "group",
            ],
        );
    }

    #[test]
    fn call_record_has_seed_003_fields() {
        let vars = BTreeMap::from([("name".to_string(), "zmh".to_string())]);
        let v = call_record(&call(true), &ctx(None, 3), &vars, Some("http://h/v"));
        assert_has(
            &v,
            &[
                "callId",
                "workflow",
                "fromNumber",
                "toNumber",
                "relayNumber",
                "callStartTime",
                "callEndTime",
                "callDuration",
                "callRecordUrl",
                "customerProvince",
                "customerCity",
                "routerId",
                "routerName",
                "transferAgentFlag",
                "agentId",
                "agentName",
                "queueId",
                "queueName",
                "robotNames",
                "labelInfos",
                "variables",
                "instances",
                "intentionLabelKey",
                "intentionLabelName",
                "allRecordUrl",
                "adTaskId",
                "adTaskName",
                "contactDetailRel",
                "callResult",
                "calledResult",
                "agentCallDuration",
                "hangupCause",
                "hangupBy",
                "customerNumber",
                "remark",
                "taskContactBatchName",
                "userAnsweredFlag",
                "userAnsweredCount",
                "userAnsweredEffectiveCount",
                "isFinalCall",
                "gender",
            ],
        );
        assert_eq!(
            (v["calledResult"].as_i64(), v["hangupBy"].as_i64(), v["gender"].as_str()),
            (Some(2), Some(1), Some("male"))
        );
        let inst = &v["instances"][0];
        assert_has(
            inst,
            &[
                "callId",
                "instanceId",
                "robotId",
                "robotDefId",
                "robotName",
                "dialogueStartTime",
                "dialogueEndTime",
                "dialogueDuration",
                "dialogueRecordUrl",
                "dialogueRound",
                "intentionLabelKey",
                "intentionLabelName",
                "labelInfoList",
                "dialogueContentList",
            ],
        );
        let turns = inst["dialogueContentList"].as_array().expect("turns");
        let roles: Vec<i64> = turns.iter().filter_map(|t| t["dialogueRole"].as_i64()).collect();
        assert_eq!(roles, vec![1, 2, 1], "robot opening, customer, robot answer");
        assert_has(
            &turns[1],
            &[
                "callId",
                "instanceId",
                "robotId",
                "robotDefId",
                "dialogueRole",
                "dialogueStartTime",
                "dialogueContent",
                "dialogueRecordUrl",
                "matchType",
                "matchResult",
                "matchName",
            ],
        );
        assert_eq!(turns[1]["matchType"], 2);
        assert_eq!(v["labelInfos"], json!(["有意向"]));
        assert_eq!(v["contactDetailRel"]["variates"], json!([{ "key": "name", "type": "text", "value": "zmh" }]));

        let busy = call_record(&call(false), &ctx(None, 3), &BTreeMap::new(), None);
        assert_eq!((busy["calledResult"].as_i64(), busy["hangupBy"].as_i64()), (Some(1), Some(5)));
        assert_eq!(busy["hangupCause"], "占线、用户正忙");
        assert_eq!(busy["instances"], json!([]));
    }

    #[test]
    fn stop_event_needs_a_url() {
        let c = ctx(None, 2);
        let counts = BTreeMap::from([(1, 3), (8, 2)]);
        let ev = stop_event(&c, "completed", &counts, "e1").expect("url set");
        assert_eq!(ev.idempotency_key, "call_stop_notify:t1:e1");
        let v: Value = serde_json::from_str(&ev.payload).expect("json");
        assert_eq!((v["total"].as_i64(), v["statuses"]["8"].as_i64()), (Some(5), Some(2)));
        let mut none = ctx(None, 2);
        none.call_stop_notify_url = None;
        assert!(stop_event(&none, "paused", &counts, "e2").is_none());
    }
}
