//! The seeds' record endpoints with their exact paths, parameters and JSON
//! shapes. Each shape is a fixed key list per endpoint (the seeds differ:
//! seed 001's record has no `recordfile`, seed 000's `info.record` no
//! `read_at`), filled from one full row map.

use std::path::Path;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

use super::params::{number_filter, record_filter, Params};
use super::{json_response, mask_numbers, ok, ApiErr, ApiResult, Caller, RestState};
use crate::finalize::status::NumberStatus;
use crate::location::{Location, Operator};
use crate::store::api::{last_page, start_str, Scope};
use crate::store::Store;

type Obj = Map<String, Value>;

const LIST_ROW: &[&str] = &[
    "tags",
    "tag_groups",
    "operator_name",
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
    "created_at",
    "updated_at",
    "rounds",
    "level_name",
    "bredge_number",
    "read_at",
    "province_id",
    "city_id",
    "operator",
    "level",
    "gender_str",
    "hangup_disposition_str",
    "city",
    "province",
];
const BRIEF_RECORD: &[&str] = &[
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
    "created_at",
    "updated_at",
    "rounds",
    "level_name",
    "bredge_number",
    "read_at",
    "province_id",
    "city_id",
    "operator",
    "gender_str",
    "hangup_disposition_str",
];
const INFO_RECORD_000: &[&str] = &[
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
    "created_at",
    "updated_at",
    "rounds",
    "level_name",
    "bredge_number",
    "gender_str",
    "hangup_disposition_str",
    "level",
    "crm_number",
];
const INFO_RECORD_001: &[&str] = &[
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
    "bridge_callid",
    "bridge_number",
    "bridge_calldate",
    "bridge_answerdate",
    "hangup_disposition",
    "created_at",
    "updated_at",
    "rounds",
    "level_name",
    "read_at",
    "province_id",
    "city_id",
    "operator",
    "customer_id",
    "user_id",
    "processed_at",
    "number_created_at",
    "intention_results",
    "level",
    "gender_str",
    "hangup_disposition_str",
    "crm_customer",
];
const DETAIL_000: &[&str] = &[
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
    "question_index",
    "speak_ms",
    "play_ms",
    "keyword",
    "answer_id",
    "answer_text",
    "word_class",
    "score",
    "sequence",
    "created_at",
    "updated_at",
    "bridge_status",
    "answer_content",
    "contents",
    "tags",
];
const DETAIL_001: &[&str] = &[
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
    "playback_after_action",
    "upstream_answer_action",
    "upstream_answer_content",
    "upstream_answer_text",
    "upstream_answer_id",
    "score",
    "sequence",
    "created_at",
    "updated_at",
    "bridge_status",
    "user_id",
    "is_regular",
    "expression",
    "extra",
    "contents",
    "tags",
    "outbound_collection_record",
    "download_voice",
    "voice",
];
const CONTENT_000: &[&str] = &["id", "file_id", "sort", "status", "translate_text", "wav_second"];
const CONTENT_001: &[&str] = &["id", "file_id", "sort", "status", "translate_text"];
const TAG: &[&str] = &["id", "name", "description", "color", "user_id", "status", "created_at", "updated_at", "pivot"];
const TASK_000: &[&str] = &[
    "uuid",
    "name",
    "create_datetime",
    "alter_datetime",
    "start",
    "maximumcall",
    "call_per_second",
    "recycle_limit",
    "random_assignment_number",
    "disable_dial_timegroup",
    "destination_extension",
    "destination_dialplan",
    "destination_context",
    "scheduling_policy_ratio",
    "scheduling_queue",
    "dial_format",
    "domain",
    "remark",
    "sort",
    "originate_variables",
    "_originate_timeout",
    "_origination_caller_id_number",
    "user_id",
    "caller_line_id",
    "customer_service_id",
    "call_notify_url",
    "call_notify_type",
    "start_str",
    "group_str",
    "progress_bar",
    "group",
];
const TASK_001: &[&str] = &[
    "uuid",
    "name",
    "create_datetime",
    "alter_datetime",
    "start",
    "enable",
    "maximumcall",
    "call_per_second",
    "recycle_limit",
    "random_assignment_number",
    "disable_dial_timegroup",
    "dial_time_id",
    "destination_extension",
    "destination_dialplan",
    "destination_context",
    "scheduling_policy_ratio",
    "scheduling_queue",
    "dial_format",
    "domain",
    "remark",
    "sort",
    "originate_variables",
    "_originate_timeout",
    "_origination_caller_id_number",
    "user_id",
    "caller_line_id",
    "auto_recycle_rule_id",
    "clue_configuration_id",
    "deleted_at",
    "call_notify_url",
    "call_notify_type",
    "call_pause_second",
    "call_stop_notify_url",
    "call_notify_fail_stop",
    "bridge_group_id",
    "is_test",
    "is_top",
    "empty_seat_stop",
    "background_file_id",
    "background_file_name",
    "end_action",
    "task_type",
    "line_callee",
    "cache_number_count",
    "group",
];
const GROUP_000: &[&str] = &[
    "id",
    "name",
    "user_id",
    "debug",
    "deleted_at",
    "created_at",
    "updated_at",
    "link_word_group_id",
    "tag_scene_id",
    "default",
];
const GROUP_001: &[&str] = &[
    "id",
    "name",
    "user_id",
    "category_id",
    "debug",
    "deleted_at",
    "created_at",
    "updated_at",
    "link_word_group_id",
    "tag_scene_id",
    "exclusive_asr",
    "exclusive_tts",
    "priority_matching",
    "is_top",
    "nlp_threshold",
    "order_matching",
    "sort",
    "usable",
    "inner",
    "is_sync",
    "speed",
    "volume",
    "is_lock",
    "default",
];
const UTTER_000: &[&str] = &[
    "id",
    "name",
    "description",
    "group_id",
    "user_id",
    "context_id",
    "priority",
    "action",
    "word_class",
    "wait",
    "retry",
    "max_retry",
    "score",
    "play_ms",
    "enquire",
    "customer_service_id",
    "identify_type",
    "deleted_at",
    "created_at",
    "updated_at",
    "background_file_id",
    "block_asr",
    "word_class_str",
    "action_str",
];
const UTTER_001: &[&str] = &[
    "id",
    "name",
    "description",
    "group_id",
    "user_id",
    "context_id",
    "priority",
    "action",
    "word_class",
    "wait",
    "retry",
    "max_retry",
    "score",
    "play_ms",
    "enquire",
    "identify_type",
    "is_node",
    "node_label_id",
    "root_word_class",
    "depth",
    "deleted_at",
    "created_at",
    "updated_at",
    "background_file_id",
    "record_next_text",
    "block_asr",
    "is_regular",
    "top",
    "left",
    "hide",
    "allow_keyword_interrupt",
    "break_category_id",
    "bridge_group_id",
    "is_jump_back",
    "jump_back_threshold",
    "action_normal_id",
    "is_blacklisted",
    "blacklist_group_id",
    "collect_type",
    "match_type",
    "word_class_str",
    "action_str",
];
const NUMBER_ROW: &[&str] = &[
    "number",
    "city",
    "pro",
    "mobile_type",
    "area_code",
    "post_code",
    "id",
    "status_str",
    "callid",
    "calldate",
    "bill",
    "duration",
    "hangupcause",
    "hangupdate",
    "answerdate",
    "is_blacklist",
    "status",
];
const HISTORY_ROW: &[&str] = &[
    "id",
    "user_id",
    "task_id",
    "call_id",
    "number_id",
    "number",
    "call_time",
    "duration",
    "hangup_cause",
    "hangup_code",
    "bill",
    "call_status",
    "status",
    "record_file",
    "calling_number",
    "province_id",
    "city_id",
    "operator",
    "created_at",
    "updated_at",
    "status_str",
];

/// The keys of `m` named in `keys`, missing ones as null.
fn pick(m: &Obj, keys: &[&str]) -> Value {
    let mut o = Map::new();
    for k in keys {
        o.insert((*k).to_string(), m.get(*k).cloned().unwrap_or(Value::Null));
    }
    Value::Object(o)
}

fn set(m: &mut Obj, k: &str, v: Value) {
    m.insert(k.to_string(), v);
}

fn s<'a>(m: &'a Obj, k: &str) -> Option<&'a str> {
    m.get(k).and_then(Value::as_str)
}

fn i(m: &Obj, k: &str) -> Option<i64> {
    m.get(k).and_then(Value::as_i64)
}

fn boolify(m: &mut Obj, k: &str) {
    let b = match m.get(k) {
        Some(Value::Bool(b)) => *b,
        Some(v) => v.as_i64().unwrap_or(0) != 0,
        None => false,
    };
    set(m, k, Value::Bool(b));
}

/// 性别: 0 未知, 1 女, 2 男, 3 疑似女, 4 疑似男.
pub fn gender_str(g: Option<i64>) -> &'static str {
    match g {
        Some(1) => "女",
        Some(2) => "男",
        Some(3) => "疑似女",
        Some(4) => "疑似男",
        _ => "未知",
    }
}

/// Who hung up: 1 the robot, 2 the callee.
pub fn hangup_disposition_str(d: Option<i64>) -> &'static str {
    match d {
        Some(1) => "AI",
        Some(2) => "客户",
        _ => "未知",
    }
}

/// 运营商: 1 移动, 2 联通, 3 电信, 4 广电.
pub fn operator_name(o: Option<i64>) -> &'static str {
    Operator::from_code(o.unwrap_or(0)).name_zh()
}

fn status_name(code: i64) -> &'static str {
    NumberStatus::from_code(code).map_or("未知", |s| s.name_zh())
}

/// Finish a response: mask numbers for tokens that ask for it.
fn respond(caller: &Caller, status: StatusCode, mut v: Value) -> Response {
    if caller.0.mask_numbers {
        mask_numbers(&mut v);
    }
    json_response(status, &v)
}

fn respond_ok(caller: &Caller, message: &str, mut data: Value) -> Response {
    if caller.0.mask_numbers {
        mask_numbers(&mut data);
    }
    ok(message, data)
}

/// Parameters of a request: query string, then the body on top.
fn request_params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Params, ApiErr> {
    let mut p = Params::from_query(query.unwrap_or(""));
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    p.merge_body(ct, body)?;
    Ok(p)
}

/// Province, city and operator of records that have none of their own
/// (written before the location data existed, or by an older finalizer):
/// their number's, as the number import stored them.
async fn fill_locations(store: &Store, rows: &mut [Obj]) -> Result<(), ApiErr> {
    let unknown = |r: &Obj| ["province_id", "city_id", "operator"].iter().all(|k| i(r, k).unwrap_or(0) == 0);
    let ids: Vec<i64> = rows.iter().filter(|r| unknown(r)).filter_map(|r| i(r, "number_id")).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let from_numbers = store.number_locations(&ids).await?;
    for r in rows.iter_mut().filter(|r| unknown(r)) {
        let Some(Location { province_id, city_id, operator }) =
            i(r, "number_id").and_then(|n| from_numbers.get(&n).copied())
        else {
            continue;
        };
        set(r, "province_id", Value::from(province_id));
        set(r, "city_id", Value::from(city_id));
        set(r, "operator", Value::from(operator));
    }
    Ok(())
}

/// Full record maps: location, level, region and display fields added.
async fn enrich_records(store: &Store, rows: &mut [Obj]) -> Result<(), ApiErr> {
    fill_locations(store, rows).await?;
    let level_ids: Vec<String> = rows.iter().filter_map(|r| s(r, "level_id").map(String::from)).collect();
    let levels = store.levels_by_id(&level_ids).await?;
    let region_ids: Vec<i64> =
        rows.iter().flat_map(|r| [i(r, "city_id").unwrap_or(0), i(r, "province_id").unwrap_or(0)]).collect();
    let regions = store.regions_by_id(&region_ids).await?;
    for r in rows.iter_mut() {
        let level = s(r, "level_id").and_then(|l| levels.get(l)).map(|l| pick(l, &["id", "name", "alias", "color"]));
        set(r, "level", level.unwrap_or(Value::Null));
        let g = i(r, "gender");
        set(r, "gender_str", Value::from(gender_str(g)));
        set(r, "hangup_disposition_str", Value::from(hangup_disposition_str(i(r, "hangup_disposition"))));
        set(r, "operator_name", Value::from(operator_name(i(r, "operator"))));
        set(r, "bredge_number", Value::Null);
        for (k, id) in [("city", i(r, "city_id")), ("province", i(r, "province_id"))] {
            let v = id.and_then(|id| regions.get(&id)).map(|m| Value::Object(m.clone()));
            set(r, k, v.unwrap_or(Value::Null));
        }
        set(r, "crm_number", Value::Null);
        set(r, "crm_customer", Value::Null);
        set(r, "customer_id", Value::Null);
        set(r, "processed_at", Value::Null);
    }
    Ok(())
}

/// `mobile_info` of a record from its region and operator.
async fn mobile_info(store: &Store, rec: &Obj) -> Result<Value, ApiErr> {
    let ids = [i(rec, "city_id").unwrap_or(0), i(rec, "province_id").unwrap_or(0)];
    let regions = store.regions_by_id(&ids).await?;
    let name = |id: i64| regions.get(&id).and_then(|m| s(m, "city")).unwrap_or("").to_string();
    Ok(json!({
        "mobile_type": operator_name(i(rec, "operator")),
        "province": name(ids[1]),
        "city": name(ids[0]),
    }))
}

// ------------------------------------------------------------ seed 000 list

/// `POST v1/task/query_done_task_phones`: a task's records, 15 a page.
pub async fn query_done_task_phones(
    State(st): State<RestState>,
    caller: Caller,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let p = request_params(q.as_deref(), &headers, &body)?;
    let scope = caller.scope(&st, p.string("sub_user_id")?.as_deref()).await?;
    let f = record_filter(&p)?;
    let store = st.store();
    if store.task_in_scope(&f.task_id, &scope).await?.is_none() {
        return Err(ApiErr::not_found(format!("task {}", f.task_id)));
    }
    let (data, total) = record_rows(store, &f).await?;
    Ok(respond(
        &caller,
        StatusCode::OK,
        json!({"data": data, "total": total, "last_page": last_page(total, f.per_page)}),
    ))
}

/// One page of records in the shape of the seed 000 list (shared with
/// `voxdial records query|export`).
pub async fn record_rows(store: &Store, f: &crate::store::api::RecordFilter) -> Result<(Vec<Value>, i64), ApiErr> {
    let (mut rows, total) = store.query_records(f).await?;
    enrich_records(store, &mut rows).await?;
    let ids: Vec<String> = rows.iter().filter_map(|r| s(r, "id").map(String::from)).collect();
    let tags = store.tags_of(&ids).await?;
    let data: Vec<Value> = rows
        .iter_mut()
        .map(|r| {
            let ts = s(r, "id").and_then(|id| tags.get(id)).cloned().unwrap_or_default();
            let groups: Vec<Value> = ts
                .iter()
                .flat_map(|t| t.get("tag_groups").and_then(Value::as_array).cloned().unwrap_or_default())
                .collect();
            let tag_vals: Vec<Value> = ts
                .iter()
                .map(|t| {
                    let mut v = pick(t, TAG);
                    if let Some(o) = v.as_object_mut() {
                        o.insert("tag_groups".into(), t.get("tag_groups").cloned().unwrap_or(Value::Array(vec![])));
                    }
                    v
                })
                .collect();
            set(r, "tags", Value::Array(tag_vals));
            set(r, "tag_groups", Value::Array(groups));
            pick(r, LIST_ROW)
        })
        .collect();
    Ok((data, total))
}

// ------------------------------------------------------------ seed 000 numbers

/// `GET v1/task/number`: a task's numbers with their state, optionally
/// every attempt (`call_history=1`).
pub async fn task_numbers(State(st): State<RestState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let scope = caller.scope(&st, p.string("sub_user_id")?.as_deref()).await?;
    let f = number_filter(&p)?;
    let store = st.store();
    if store.task_in_scope(&f.task_id, &scope).await?.is_none() {
        return Err(ApiErr::not_found(format!("task {}", f.task_id)));
    }
    let (mut rows, total) = store.query_numbers(&f).await?;
    let region_ids: Vec<i64> =
        rows.iter().flat_map(|r| [i(r, "city_id").unwrap_or(0), i(r, "province_id").unwrap_or(0)]).collect();
    let regions = store.regions_by_id(&region_ids).await?;
    let histories = if f.call_history {
        let ids: Vec<i64> = rows.iter().filter_map(|r| i(r, "id")).collect();
        Some(store.call_histories(&ids).await?)
    } else {
        None
    };
    let data: Vec<Value> = rows
        .iter_mut()
        .map(|r| {
            let city = i(r, "city_id").and_then(|c| regions.get(&c)).cloned();
            let pro = i(r, "province_id").and_then(|c| regions.get(&c)).cloned();
            set(r, "city", city.as_ref().and_then(|c| c.get("city").cloned()).unwrap_or(Value::Null));
            set(r, "pro", pro.as_ref().and_then(|c| c.get("city").cloned()).unwrap_or(Value::Null));
            set(r, "area_code", city.as_ref().and_then(|c| c.get("area_code").cloned()).unwrap_or(Value::Null));
            set(r, "post_code", city.as_ref().and_then(|c| c.get("post_code").cloned()).unwrap_or(Value::Null));
            set(r, "mobile_type", Value::from(operator_name(i(r, "operator"))));
            boolify(r, "is_blacklist");
            let mut v = pick(r, NUMBER_ROW);
            if let (Some(h), Some(o)) = (&histories, v.as_object_mut()) {
                let rows = i(r, "id").and_then(|id| h.get(&id)).cloned().unwrap_or_default();
                let hist: Vec<Value> = rows
                    .into_iter()
                    .map(|mut x| {
                        let st = status_name(i(&x, "status").unwrap_or(-1));
                        set(&mut x, "status_str", Value::from(st));
                        pick(&x, HISTORY_ROW)
                    })
                    .collect();
                o.insert("call_history".into(), Value::Array(hist));
            }
            v
        })
        .collect();
    Ok(respond_ok(
        &caller,
        "获取号码列表成功",
        json!({"data": data, "total": total, "last_page": last_page(total, f.per_page)}),
    ))
}

// ------------------------------------------------------------ seed 000 record

/// `GET v1/record/{record_id}`: one record in brief (also finds its task).
pub async fn record_brief(
    State(st): State<RestState>,
    caller: Caller,
    UrlPath(record_id): UrlPath<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let scope = caller.scope(&st, p.string("sub_user_id")?.as_deref()).await?;
    let store = st.store();
    let Some(rec) = store.record_in_scope(&record_id, None, &scope).await? else {
        return Err(ApiErr::not_found(format!("record {record_id}")));
    };
    let mut rows = vec![read(store, rec).await?];
    enrich_records(store, &mut rows).await?;
    Ok(respond_ok(&caller, "获取任务信息成功", pick(&rows[0], BRIEF_RECORD)))
}

/// Reading a record sets its `read_at` (first read wins).
async fn read(store: &Store, mut rec: Obj) -> Result<Obj, ApiErr> {
    if rec.get("read_at").is_none_or(Value::is_null) {
        let id = s(&rec, "id").unwrap_or_default().to_string();
        let now = store.mark_read(&id).await?;
        set(&mut rec, "read_at", Value::from(now.clone()));
        set(&mut rec, "updated_at", Value::from(now));
    }
    Ok(rec)
}

/// Which seed's record-detail shape to build.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// Seed 000 `GET /v1/task/record_info`.
    V1,
    /// Seed 001 agent-api detail.
    Agent,
}

/// The whole detail of a record, both seeds' shapes.
async fn detail(st: &RestState, task: Obj, rec: Obj, flavor: Flavor) -> Result<Obj, ApiErr> {
    let store = st.store();
    let mut rows = vec![read(store, rec).await?];
    enrich_records(store, &mut rows).await?;
    let mut rec = rows.remove(0);
    let record_id = s(&rec, "id").unwrap_or_default().to_string();
    if let Some(nid) = i(&rec, "number_id") {
        let (_, created) = number_created(store, nid).await?;
        set(&mut rec, "number_created_at", created);
    }
    // Detail rows with their contents and tags.
    let mut details = store.record_details(&record_id).await?;
    let answer_ids: Vec<String> = details.iter().filter_map(|d| s(d, "answer_id").map(String::from)).collect();
    let contents = store.contents_of(&answer_ids).await?;
    let detail_ids: Vec<String> = details.iter().filter_map(|d| s(d, "id").map(String::from)).collect();
    let tags = store.tags_of(&detail_ids).await?;
    let (detail_keys, content_keys) = match flavor {
        Flavor::V1 => (DETAIL_000, CONTENT_000),
        Flavor::Agent => (DETAIL_001, CONTENT_001),
    };
    let records: Vec<Value> = details
        .iter_mut()
        .map(|d| {
            let cs: Vec<Value> = s(d, "answer_id")
                .and_then(|a| contents.get(a))
                .map(|v| {
                    v.iter()
                        .map(|c| {
                            let mut c = c.clone();
                            boolify(&mut c, "status");
                            pick(&c, content_keys)
                        })
                        .collect()
                })
                .unwrap_or_default();
            set(d, "contents", Value::Array(cs));
            let ts: Vec<Value> = s(d, "id")
                .and_then(|id| tags.get(id))
                .map(|v| {
                    v.iter()
                        .map(|t| {
                            let mut x = pick(t, TAG);
                            if let Some(o) = x.as_object_mut() {
                                o.insert(
                                    "tag_group".into(),
                                    t.get("tag_groups").cloned().unwrap_or(Value::Array(vec![])),
                                );
                            }
                            x
                        })
                        .collect()
                })
                .unwrap_or_default();
            set(d, "tags", Value::Array(ts));
            if flavor == Flavor::Agent {
                let robot: Vec<String> =
                    s(d, "robot_voice").and_then(|j| serde_json::from_str(j).ok()).unwrap_or_default();
                let urls: Vec<Value> = robot.iter().map(|p| json!([st.voice_url(p)])).collect();
                let voice = s(d, "voice").filter(|v| !v.is_empty()).map(|p| st.voice_url(p)).unwrap_or_default();
                set(d, "download_voice", Value::Array(urls));
                set(d, "voice", Value::from(voice));
                set(d, "playback_after_action", Value::from(0));
                set(d, "is_regular", Value::from(0));
            }
            pick(d, detail_keys)
        })
        .collect();
    // The task with its script group and progress.
    let mut task = task;
    let group_id = i(&task, "group_id").unwrap_or(0);
    let mut group = store.script_group_row(group_id).await?.unwrap_or_default();
    boolify(&mut group, "debug");
    set(&mut group, "default", Value::Bool(false));
    for (k, v) in [
        ("category_id", Value::Null),
        ("exclusive_asr", Value::from("")),
        ("exclusive_tts", Value::from("")),
        ("priority_matching", Value::from(0)),
        ("is_top", Value::from(0)),
        ("nlp_threshold", Value::from(60)),
        ("order_matching", Value::from(0)),
        ("sort", Value::from(0)),
        ("usable", Value::from(1)),
        ("inner", Value::from(0)),
        ("is_sync", Value::from(0)),
        ("speed", Value::from(50)),
        ("volume", Value::from(50)),
        ("is_lock", Value::from(0)),
    ] {
        set(&mut group, k, v);
    }
    let task_id = s(&task, "uuid").unwrap_or_default().to_string();
    let start = i(&task, "start").unwrap_or(0);
    set(&mut task, "start_str", Value::from(start_str(start)));
    set(&mut task, "enable", Value::Bool(start == 1));
    set(&mut task, "group_str", group.get("name").cloned().unwrap_or(Value::Null));
    let (total, progress) = store.task_number_progress(&task_id).await?;
    let percent = if total > 0 { progress * 100 / total } else { 0 };
    set(&mut task, "progress_bar", json!({"total": total, "progress": progress, "percent": percent}));
    for (k, v) in [
        ("auto_recycle_rule_id", Value::Null),
        ("clue_configuration_id", Value::Null),
        ("call_notify_fail_stop", Value::from(0)),
        ("bridge_group_id", Value::Null),
        ("is_test", Value::Bool(false)),
        ("empty_seat_stop", Value::from(0)),
        ("background_file_id", Value::Null),
        ("background_file_name", Value::Null),
        ("line_callee", Value::from("")),
        ("cache_number_count", Value::from(0)),
    ] {
        set(&mut task, k, v);
    }
    let (task_keys, group_keys, utter_keys, record_keys) = match flavor {
        Flavor::V1 => (TASK_000, GROUP_000, UTTER_000, INFO_RECORD_000),
        Flavor::Agent => (TASK_001, GROUP_001, UTTER_001, INFO_RECORD_001),
    };
    set(&mut task, "group", pick(&group, group_keys));
    let utterances: Vec<Value> = store
        .main_flow_utterances(group_id)
        .await?
        .into_iter()
        .map(|mut u| {
            boolify(&mut u, "enquire");
            boolify(&mut u, "allow_keyword_interrupt");
            let wc = i(&u, "word_class").unwrap_or(0);
            set(&mut u, "word_class_str", Value::from(if wc == 16 { "主流程" } else { "" }));
            let action = match s(&u, "action") {
                Some("hangup") => "挂机",
                Some("transfer") => "转人工",
                _ => "",
            };
            set(&mut u, "action_str", Value::from(action));
            for (k, v) in [
                ("is_node", Value::from(0)),
                ("root_word_class", Value::from(wc)),
                ("depth", Value::from(1)),
                ("is_regular", Value::from(0)),
                ("hide", Value::Bool(false)),
                ("break_category_id", Value::from(0)),
                ("is_blacklisted", Value::from(0)),
                ("collect_type", Value::from(0)),
                ("match_type", Value::from(0)),
            ] {
                set(&mut u, k, v);
            }
            pick(&u, utter_keys)
        })
        .collect();
    let mut out = Map::new();
    out.insert("records".into(), Value::Array(records));
    if flavor == Flavor::V1 {
        out.insert("is_intervene_bridge".into(), Value::Bool(false));
        out.insert("is_intervene_hangup".into(), Value::Bool(false));
        out.insert("intervene_number".into(), Value::Array(vec![]));
    }
    out.insert("is_crm_exists".into(), Value::Bool(false));
    if flavor == Flavor::Agent {
        out.insert("user_id".into(), task.get("user_id").cloned().unwrap_or(Value::Null));
        out.insert("callee".into(), rec.get("callee").cloned().unwrap_or(Value::Null));
    }
    out.insert("mobile_info".into(), mobile_info(store, &rec).await?);
    out.insert("info".into(), json!({"record": pick(&rec, record_keys), "task": pick(&task, task_keys)}));
    out.insert("utterances".into(), Value::Array(utterances));
    Ok(out)
}

async fn number_created(store: &Store, number_id: i64) -> Result<(i64, Value), ApiErr> {
    let r = sqlx::query(store.sql("SELECT created_at FROM autodialer_number WHERE id = ?"))
        .bind(number_id)
        .fetch_optional(store.pool())
        .await
        .map_err(crate::store::StoreError::from)?;
    let v =
        r.and_then(|r| sqlx::Row::try_get::<String, _>(&r, "created_at").ok()).map(Value::from).unwrap_or(Value::Null);
    Ok((number_id, v))
}

/// `GET /v1/task/record_info/{task_id}/{record_id}`: the whole call.
pub async fn record_info(
    State(st): State<RestState>,
    caller: Caller,
    UrlPath((task_id, record_id)): UrlPath<(String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let scope = caller.scope(&st, p.string("sub_user_id")?.as_deref()).await?;
    let (task, rec) = task_and_record(st.store(), &scope, &task_id, &record_id).await?;
    let (Some(task), Some(rec)) = (task, rec) else {
        return Err(ApiErr::not_found(format!("record {record_id} of task {task_id}")));
    };
    let out = detail(&st, task, rec, Flavor::V1).await?;
    Ok(respond(&caller, StatusCode::OK, Value::Object(out)))
}

async fn task_and_record(
    store: &Store,
    scope: &Scope,
    task_id: &str,
    record_id: &str,
) -> Result<(Option<Obj>, Option<Obj>), ApiErr> {
    let Some(task) = store.task_in_scope(task_id, scope).await? else { return Ok((None, None)) };
    let rec = store.record_in_scope(record_id, Some(task_id), scope).await?;
    Ok((Some(task), rec))
}

// ------------------------------------------------------------ seed 001

/// `GET /agent-api/user/{id}/task/{task_id}/detail/{record_id}`: the call
/// detail in the `{code, status, message, data}` envelope; errors 1002
/// (account wrong), 5002 (task missing), 5005 (record missing) with HTTP 200.
pub async fn agent_detail(
    State(st): State<RestState>,
    caller: Caller,
    UrlPath((user_id, task_id, record_id)): UrlPath<(String, String, String)>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let user_wrong = || ApiErr::seed(1002, "【user】参数错误,未找到对应云节点");
    if user_id != caller.0.user_id {
        return Err(user_wrong());
    }
    let sub = p.string("sub_user_id")?;
    let scope = st.store().scope_of(&caller.0, sub.as_deref()).await?.ok_or_else(user_wrong)?;
    let (task, rec) = task_and_record(st.store(), &scope, &task_id, &record_id).await?;
    let Some(task) = task else { return Err(ApiErr::seed(5002, "任务不存在")) };
    let Some(rec) = rec else { return Err(ApiErr::seed(5005, "该任务下的该通通话记录不存在")) };
    let out = detail(&st, task, rec, Flavor::Agent).await?;
    let mut data = Value::Object(out);
    if caller.0.mask_numbers {
        mask_numbers(&mut data);
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"code": 200, "status": "success", "message": "查看通话记录详情成功", "data": data}),
    ))
}

/// `GET /agent-api/download-voice?key=…`: the file a signed key names.
pub async fn download_voice(State(st): State<RestState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::from_query(q.as_deref().unwrap_or(""));
    let key = p.required_string("key")?;
    let path = st.voice().verify(&key).map_err(|e| ApiErr::new(StatusCode::FORBIDDEN, format!("key: {e}")))?;
    let canon = tokio::fs::canonicalize(&path).await.map_err(|_| ApiErr::not_found("voice file"))?;
    let allowed = st.voice_roots().iter().filter_map(|r| std::fs::canonicalize(r).ok()).any(|r| canon.starts_with(&r));
    if !allowed {
        return Err(ApiErr::new(StatusCode::FORBIDDEN, "key: file is outside the recording directories"));
    }
    let file = tokio::fs::File::open(&canon).await.map_err(|_| ApiErr::not_found("voice file"))?;
    let ct = match Path::new(&canon).extension().and_then(|e| e.to_str()) {
        Some("wav") => "audio/wav",
        Some("mp3") => "audio/mpeg",
        _ => "application/octet-stream",
    };
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok(([(header::CONTENT_TYPE, ct)], body).into_response())
}
