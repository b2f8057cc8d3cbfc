//! The OpenAPI 3.1 document of the REST API, written by hand from one table
//! of routes so it stays short; `GET /openapi.json` serves it and
//! `docs/openapi.json` is a checked-in copy (a test keeps them equal;
//! `voxdial openapi > docs/openapi.json` refreshes it).

use serde_json::{json, Map, Value};

/// `(name, where, type, required, description)`.
type P = (&'static str, &'static str, &'static str, bool, &'static str);

struct Op {
    method: &'static str,
    path: &'static str,
    tag: &'static str,
    summary: &'static str,
    params: &'static [P],
    /// Content type and description of the body, if any.
    body: Option<(&'static str, &'static str)>,
    /// No bearer token needed.
    public: bool,
}

const SUB: P = ("sub_user_id", "query", "string", false, "act for this sub-account of the caller (seed 001)");
const TASK: P = ("task_id", "path", "string", true, "task uuid");

const OPS: &[Op] = &[
    Op { method: "post", path: "/v1/task/query_done_task_phones", tag: "seed-v1", summary: "A task's call records, 15 a page (seed 000). Body (JSON or form): task_id (required), page, id, levels [[min,max),…] score ranges, keyword (callee prefix), bills [min,max] seconds, rounds [min,max], tags [tag id…], start_at / end_at (YYYY-MM-DD HH:MM:SS). Rows carry province_id / city_id / operator and the province / city objects: the record's own, else its number's. Answers {data, total, last_page} without an envelope.", params: &[SUB], body: Some(("application/json", "filters")), public: false },
    Op { method: "get", path: "/v1/task/number", tag: "seed-v1", summary: "A task's numbers with their state (seed 000), in the {code, status, message, data} envelope.", params: &[
        ("task_id", "query", "string", true, "task uuid"),
        ("page", "query", "integer", false, "page, 15 rows each (default 1)"),
        ("status[]", "query", "array", false, "number states 0–12"),
        ("keyword", "query", "string", false, "number prefix"),
        ("type[]", "query", "array", false, "operators (also `type=`): lt 联通, dx 电信, yd 移动, gd 广电, as the import found them from the number's segment (号段)"),
        ("call_history", "query", "integer", false, "1: add every attempt as call_history"),
        SUB,
    ], body: None, public: false },
    Op { method: "get", path: "/v1/record/{record_id}", tag: "seed-v1", summary: "One record in brief (seed 000); sets read_at on first read.", params: &[("record_id", "path", "string", true, "record id"), SUB], body: None, public: false },
    Op { method: "get", path: "/v1/task/record_info/{task_id}/{record_id}", tag: "seed-v1", summary: "The whole call (seed 000): records (every notify row with contents and tags), info.record, info.task with group, mobile_info, main-flow utterances. Sets read_at on first read.", params: &[TASK, ("record_id", "path", "string", true, "record id"), SUB], body: None, public: false },
    Op { method: "get", path: "/agent-api/user/{id}/task/{task_id}/detail/{record_id}", tag: "seed-agent-api", summary: "Call detail (seed 001) in the {code, status, message, data} envelope, with download_voice / voice links. Errors with HTTP 200: 1002 account wrong, 5002 task missing, 5005 record missing.", params: &[("id", "path", "string", true, "the caller's account id"), TASK, ("record_id", "path", "string", true, "record id"), SUB], body: None, public: false },
    Op { method: "get", path: "/agent-api/download-voice", tag: "seed-agent-api", summary: "The audio file a signed key names (links in download_voice / voice).", params: &[("key", "query", "string", true, "signed key")], body: None, public: true },
    Op { method: "get", path: "/v1/tasks", tag: "tasks", summary: "Tasks of the caller (and its sub-accounts).", params: &[SUB], body: None, public: false },
    Op { method: "post", path: "/v1/tasks", tag: "tasks", summary: "Create a task: name and group_id required; maximumcall, call_per_second, recycle_limit, dial_format (with %s), originate_variables, _originate_timeout, _origination_caller_id_number, call_pause_second, sort, is_top, remark, call_notify_url, call_notify_type, call_stop_notify_url, end_action, task_type, dial_time_id, start (0/1). Unknown keys are ignored and listed.", params: &[SUB], body: Some(("application/json", "task fields (seed info.task names)")), public: false },
    Op { method: "get", path: "/v1/tasks/{task_id}", tag: "tasks", summary: "One task.", params: &[TASK, SUB], body: None, public: false },
    Op { method: "put", path: "/v1/tasks/{task_id}", tag: "tasks", summary: "Update the given task fields (same checks as create); a running dialer picks them up within a second.", params: &[TASK, SUB], body: Some(("application/json", "task fields")), public: false },
    Op { method: "delete", path: "/v1/tasks/{task_id}", tag: "tasks", summary: "Delete a task (soft; a running task stops).", params: &[TASK, SUB], body: None, public: false },
    Op { method: "post", path: "/v1/tasks/{task_id}/start", tag: "tasks", summary: "Start dialling (start = 1).", params: &[TASK, SUB], body: None, public: false },
    Op { method: "post", path: "/v1/tasks/{task_id}/pause", tag: "tasks", summary: "Pause (start = 0): no new dials, live calls finish.", params: &[TASK, SUB], body: None, public: false },
    Op { method: "post", path: "/v1/tasks/{task_id}/stop", tag: "tasks", summary: "Stop (start = 2).", params: &[TASK, SUB], body: None, public: false },
    Op { method: "get", path: "/v1/tasks/{task_id}/status", tag: "tasks", summary: "Live progress: total, dialled, in_flight, waiting, done, per-status counts, records, achieved_cps.", params: &[TASK, SUB], body: None, public: false },
    Op { method: "post", path: "/v1/tasks/{task_id}/numbers", tag: "tasks", summary: "Import numbers, streamed: CSV (number[,name,…], optional header row) or JSON (array or NDJSON of numbers or {number, variables}). Numbers are normalized (+86 / 0086, separators, full-width digits; a mobile number has 11 digits) and get province, city and operator from the location table (7-digit prefixes loaded by `voxdial location import`, landline area codes, operator by segment). Reports inserted, duplicates, blacklisted and every rejected row with its line.", params: &[TASK, ("format", "query", "string", false, "csv or json (default: from Content-Type)"), SUB], body: Some(("text/csv", "the numbers")), public: false },
    Op { method: "put", path: "/v1/tasks/{task_id}/dial_time_group", tag: "tasks", summary: "Attach a dial-time group ({dial_time_group_id}; null detaches).", params: &[TASK, SUB], body: Some(("application/json", "{dial_time_group_id}")), public: false },
    Op { method: "get", path: "/v1/tasks/{task_id}/callbacks", tag: "tasks", summary: "Callback delivery log: every webhook attempt of the task, oldest first.", params: &[TASK, SUB], body: None, public: false },
    Op { method: "get", path: "/v1/scripts", tag: "scripts", summary: "Script groups.", params: &[SUB], body: None, public: false },
    Op { method: "post", path: "/v1/scripts", tag: "scripts", summary: "Import a script (dialogue::Script JSON); every validation problem is listed in data.", params: &[SUB], body: Some(("application/json", "the script")), public: false },
    Op { method: "get", path: "/v1/scripts/{group_id}", tag: "scripts", summary: "Export a script as imported.", params: &[("group_id", "path", "integer", true, "script group id"), SUB], body: None, public: false },
    Op { method: "get", path: "/v1/levels", tag: "levels", summary: "Levels (score ranges).", params: &[("group_id", "query", "integer", false, "only this script group's"), SUB], body: None, public: false },
    Op { method: "post", path: "/v1/levels", tag: "levels", summary: "Create a level: name, min_score, max_score, alias, color, group_id, intention_results.", params: &[SUB], body: Some(("application/json", "the level")), public: false },
    Op { method: "delete", path: "/v1/levels/{id}", tag: "levels", summary: "Delete a level.", params: &[("id", "path", "string", true, "level id"), SUB], body: None, public: false },
    Op { method: "get", path: "/v1/tags", tag: "tags", summary: "Tags with their tag groups.", params: &[SUB], body: None, public: false },
    Op { method: "post", path: "/v1/tags", tag: "tags", summary: "Create a tag: name, description, color, tag_group_ids.", params: &[SUB], body: Some(("application/json", "the tag")), public: false },
    Op { method: "delete", path: "/v1/tags/{id}", tag: "tags", summary: "Delete a tag.", params: &[("id", "path", "string", true, "tag id"), SUB], body: None, public: false },
    Op { method: "get", path: "/v1/tag_groups", tag: "tags", summary: "Tag groups.", params: &[SUB], body: None, public: false },
    Op { method: "post", path: "/v1/tag_groups", tag: "tags", summary: "Create a tag group: name, tag_scene_id.", params: &[SUB], body: Some(("application/json", "the tag group")), public: false },
    Op { method: "delete", path: "/v1/tag_groups/{id}", tag: "tags", summary: "Delete a tag group.", params: &[("id", "path", "string", true, "tag group id"), SUB], body: None, public: false },
    Op { method: "get", path: "/v1/blacklist", tag: "blacklist", summary: "The blacklist, 15 a page.", params: &[("page", "query", "integer", false, "page"), SUB], body: None, public: false },
    Op { method: "post", path: "/v1/blacklist", tag: "blacklist", summary: "Blacklist number or numbers (with reason); waiting numbers of the tenant's tasks are skipped from then on.", params: &[SUB], body: Some(("application/json", "{number | numbers, reason}")), public: false },
    Op { method: "delete", path: "/v1/blacklist/{number}", tag: "blacklist", summary: "Remove a number from the blacklist.", params: &[("number", "path", "string", true, "the number"), SUB], body: None, public: false },
    Op { method: "get", path: "/v1/dial_time_groups", tag: "dial-time", summary: "Dial-time groups.", params: &[SUB], body: None, public: false },
    Op { method: "post", path: "/v1/dial_time_groups", tag: "dial-time", summary: "Create a dial-time group: name, timezone, weekdays (1–7), time_ranges [[\"09:00\",\"12:00\"],…], exclude_dates.", params: &[SUB], body: Some(("application/json", "the group")), public: false },
    Op { method: "delete", path: "/v1/dial_time_groups/{id}", tag: "dial-time", summary: "Delete a dial-time group.", params: &[("id", "path", "string", true, "group id"), SUB], body: None, public: false },
    Op { method: "get", path: "/openapi.json", tag: "meta", summary: "This document.", params: &[], body: None, public: true },
    Op { method: "get", path: "/healthz", tag: "meta", summary: "Liveness.", params: &[], body: None, public: true },
];

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let params: Vec<Value> = op
            .params
            .iter()
            .map(|(name, loc, ty, req, desc)| {
                let schema = if *ty == "array" {
                    json!({"type": "array", "items": {"type": "string"}})
                } else {
                    json!({"type": ty})
                };
                json!({"name": name, "in": loc, "required": req, "description": desc, "schema": schema})
            })
            .collect();
        let mut o = json!({
            "tags": [op.tag],
            "summary": op.summary,
            "operationId": format!("{}_{}", op.method, op.path.trim_start_matches('/').replace(['/', '{', '}', '.', '-'], "_")),
            "parameters": params,
            "responses": {
                "200": {"description": "success", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"}
            }
        });
        if let Some(m) = o.as_object_mut() {
            if let Some((ct, desc)) = op.body {
                m.insert(
                    "requestBody".into(),
                    json!({"required": true, "description": desc, "content": {ct: {"schema": {"type": if ct == "text/csv" { "string" } else { "object" }}}}}),
                );
            }
            if op.public {
                m.insert("security".into(), json!([]));
            }
        }
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        if let Some(e) = entry.as_object_mut() {
            e.insert(op.method.to_string(), o);
        }
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "voxdial API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The seeds' record endpoints (same paths, parameters and JSON) plus task management. Authenticate with `Authorization: Bearer TOKEN` (`voxdial token create`). Errors: {code, status: \"error\", message, data, field?}; `message` names the parameter at fault."
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "error envelope", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": {"Error": {"type": "object", "required": ["code", "status", "message", "data"], "properties": {
                "code": {"type": "integer"},
                "status": {"type": "string", "enum": ["error"]},
                "message": {"type": "string"},
                "data": {"type": "array"},
                "field": {"type": "string", "description": "the parameter at fault"}
            }}}
        }
    })
}

/// Pretty text of [`document`], as checked in.
pub fn document_text() -> String {
    let mut s = serde_json::to_string_pretty(&document()).unwrap_or_default();
    s.push('\n');
    s
}
