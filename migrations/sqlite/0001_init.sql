-- voxdial schema v1 (SQLite). Column names follow the seeds (docs/schema.md).
-- Times are 'YYYY-MM-DD HH:MM:SS' in the configured time zone, as the seeds show them.
-- Durations: `bill` and `duration` in milliseconds (seed 000), *_ms columns in ms.

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    parent_id TEXT NULL,            -- set for sub-users (seed 001 sub_user_id)
    type INTEGER NOT NULL DEFAULT 4, -- 4 main account, 8 sub account (seed 002)
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    token_sha256 TEXT NOT NULL UNIQUE,
    mask_numbers INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);

CREATE TABLE script_groups (            -- 话术组, seed `group`
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NULL,
    debug INTEGER NOT NULL DEFAULT 0,
    link_word_group_id TEXT NULL,
    tag_scene_id TEXT NULL,
    definition TEXT NOT NULL,           -- the whole script as imported (JSON), versioned by updated_at
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT NULL
);

CREATE TABLE utterances (               -- seed `utterances`
    id TEXT PRIMARY KEY,
    group_id INTEGER NOT NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NULL,
    context_id TEXT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    action TEXT NULL,
    word_class INTEGER NOT NULL DEFAULT 16,
    wait INTEGER NOT NULL DEFAULT 4000,   -- ms
    retry INTEGER NOT NULL DEFAULT 0,
    max_retry INTEGER NOT NULL DEFAULT 0,
    score INTEGER NOT NULL DEFAULT 0,
    play_ms INTEGER NOT NULL DEFAULT -1,
    enquire INTEGER NOT NULL DEFAULT 1,
    identify_type INTEGER NOT NULL DEFAULT 4,
    block_asr INTEGER NOT NULL DEFAULT 0,
    allow_keyword_interrupt INTEGER NOT NULL DEFAULT 0,
    is_jump_back INTEGER NOT NULL DEFAULT 0,
    jump_back_threshold INTEGER NOT NULL DEFAULT -1,
    customer_service_id TEXT NULL,
    background_file_id TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted_at TEXT NULL
);
CREATE INDEX utterances_group ON utterances (group_id);

CREATE TABLE utterance_contents (       -- seed records[].contents
    id TEXT PRIMARY KEY,
    utterance_id TEXT NOT NULL,
    file_id TEXT NULL,
    translate_text TEXT NOT NULL DEFAULT '',
    wav_second REAL NULL,
    sort INTEGER NOT NULL DEFAULT 0,
    status INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX utterance_contents_utterance ON utterance_contents (utterance_id);

CREATE TABLE utterance_branches (
    id TEXT PRIMARY KEY,
    utterance_id TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    keywords TEXT NOT NULL DEFAULT '[]',   -- JSON array
    regexes TEXT NOT NULL DEFAULT '[]',
    negations TEXT NOT NULL DEFAULT '[]',
    is_default INTEGER NOT NULL DEFAULT 0,
    next_utterance_id TEXT NULL,
    score INTEGER NOT NULL DEFAULT 0,
    sort INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX utterance_branches_utterance ON utterance_branches (utterance_id);

CREATE TABLE levels (                   -- 评分等级: score range → name, alias, color
    id TEXT PRIMARY KEY,
    group_id INTEGER NULL,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    alias TEXT NULL,
    color TEXT NULL,
    min_score INTEGER NOT NULL,
    max_score INTEGER NOT NULL,
    intention_results INTEGER NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tag_scenes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tag_groups (               -- 母标签
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    tag_scene_id TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tags (                     -- 子标签
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NULL,
    color TEXT NULL,
    status INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE tag_tag_group (
    tag_id TEXT NOT NULL,
    tag_group_id TEXT NOT NULL,
    PRIMARY KEY (tag_id, tag_group_id)
);

CREATE TABLE taggables (                -- the seeds' `pivot`: a tag on a record, a detail row, an utterance or a branch
    taggable_id TEXT NOT NULL,
    taggable_type TEXT NOT NULL,        -- record | record_detail | utterance | branch
    tag_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (taggable_id, tag_id)
);
CREATE INDEX taggables_tag ON taggables (tag_id, taggable_type);

CREATE TABLE dial_time_groups (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    name TEXT NOT NULL,
    timezone TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    weekdays TEXT NOT NULL DEFAULT '[1,2,3,4,5,6,7]',
    time_ranges TEXT NOT NULL DEFAULT '[["09:00","12:00"],["13:30","20:00"]]',
    exclude_dates TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE autodialer_task (          -- seed info.task
    uuid TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    create_datetime TEXT NOT NULL,
    alter_datetime TEXT NOT NULL,
    start INTEGER NOT NULL DEFAULT 0,          -- 0 paused/stopped, 1 running, 2 finished
    maximumcall INTEGER NOT NULL DEFAULT 1,
    call_per_second REAL NOT NULL DEFAULT 1,
    recycle_limit INTEGER NOT NULL DEFAULT 0,
    random_assignment_number INTEGER NOT NULL DEFAULT 0,
    disable_dial_timegroup TEXT NULL,
    dial_time_id TEXT NULL,
    destination_extension TEXT NOT NULL DEFAULT 'robot',
    destination_dialplan TEXT NOT NULL DEFAULT 'XML',
    destination_context TEXT NOT NULL DEFAULT 'default',
    scheduling_policy_ratio TEXT NULL,
    scheduling_queue TEXT NULL,
    dial_format TEXT NOT NULL DEFAULT '',
    domain TEXT NULL,
    remark TEXT NULL,
    sort INTEGER NOT NULL DEFAULT 0,
    is_top INTEGER NOT NULL DEFAULT 0,
    originate_variables TEXT NOT NULL DEFAULT '',
    _originate_timeout INTEGER NOT NULL DEFAULT 60,   -- seconds
    _origination_caller_id_number TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL,
    group_id INTEGER NOT NULL,
    caller_line_id TEXT NULL,
    customer_service_id TEXT NULL,
    call_notify_url TEXT NULL,
    call_notify_type INTEGER NOT NULL DEFAULT 0,
    call_pause_second INTEGER NOT NULL DEFAULT 0,
    call_stop_notify_url TEXT NULL,
    end_action INTEGER NOT NULL DEFAULT 1,
    task_type INTEGER NOT NULL DEFAULT 1,
    deleted_at TEXT NULL
);

CREATE TABLE autodialer_number (        -- seed GET v1/task/number
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    number TEXT NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,     -- 0–12
    status_str TEXT NOT NULL DEFAULT '等待呼叫',
    callid TEXT NULL,
    calldate TEXT NULL,
    bill INTEGER NOT NULL DEFAULT 0,       -- ms
    duration INTEGER NOT NULL DEFAULT 0,   -- ms
    hangupcause TEXT NULL,
    hangupdate TEXT NULL,
    answerdate TEXT NULL,
    is_blacklist INTEGER NOT NULL DEFAULT 0,
    province_id INTEGER NOT NULL DEFAULT 0,
    city_id INTEGER NOT NULL DEFAULT 0,
    operator INTEGER NOT NULL DEFAULT 0,   -- 1 移动 yd, 2 联通 lt, 3 电信 dx
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL DEFAULT '',
    claimed_by TEXT NULL,
    claim_expires_at TEXT NULL,
    variables TEXT NULL,                   -- JSON object for {$name} in the script
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (task_id, number)
);
CREATE INDEX autodialer_number_task_status ON autodialer_number (task_id, status, next_attempt_at);

CREATE TABLE auto_call_histories (      -- seed call_history: one row per attempt
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    call_id TEXT NOT NULL UNIQUE,
    number_id INTEGER NOT NULL,
    number TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 1,
    call_time TEXT NOT NULL,
    duration INTEGER NOT NULL DEFAULT 0,   -- ms
    hangup_cause TEXT NULL,
    hangup_code TEXT NULL,
    hangup_reason INTEGER NULL,            -- seed 004 detailed code
    bill INTEGER NOT NULL DEFAULT 0,       -- ms
    call_status TEXT NOT NULL DEFAULT '',
    status INTEGER NOT NULL,
    record_file TEXT NULL,
    calling_number TEXT NULL,
    province_id INTEGER NOT NULL DEFAULT 0,
    city_id INTEGER NOT NULL DEFAULT 0,
    operator INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX auto_call_histories_number ON auto_call_histories (number_id);
CREATE INDEX auto_call_histories_task ON auto_call_histories (task_id, call_time);

CREATE TABLE records (                  -- seed 000 record: one per answered call
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    group_id INTEGER NOT NULL,
    number_id INTEGER NULL,
    callid TEXT NOT NULL UNIQUE,
    score INTEGER NOT NULL DEFAULT 0,
    callee TEXT NOT NULL,
    caller_number TEXT NULL,
    duration INTEGER NOT NULL DEFAULT 0,   -- ms
    error_code INTEGER NOT NULL DEFAULT 0,
    gender INTEGER NULL,                   -- 0 unknown, 1 female, 2 male, 3/4 probably
    level_id TEXT NULL,
    level_name TEXT NULL,
    intention_results INTEGER NULL,
    calldate TEXT NOT NULL,
    bill INTEGER NOT NULL DEFAULT 0,       -- ms
    hangupcause TEXT NULL,
    hangupdate TEXT NULL,
    answerdate TEXT NULL,
    recordfile TEXT NULL,
    bridge_callid TEXT NULL,
    bridge_number TEXT NULL,
    bridge_calldate TEXT NULL,
    bridge_answerdate TEXT NULL,
    hangup_disposition INTEGER NULL,       -- 1 robot, 2 customer
    rounds INTEGER NOT NULL DEFAULT 0,
    read_at TEXT NULL,
    province_id INTEGER NOT NULL DEFAULT 0,
    city_id INTEGER NOT NULL DEFAULT 0,
    operator INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX records_task_calldate ON records (task_id, calldate);
CREATE INDEX records_task_score ON records (task_id, score);
CREATE INDEX records_task_bill ON records (task_id, bill);
CREATE INDEX records_task_rounds ON records (task_id, rounds);
CREATE INDEX records_task_callee ON records (task_id, callee);

CREATE TABLE record_details (           -- seed records[]: one row per notify
    id TEXT PRIMARY KEY,
    record_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    notify TEXT NOT NULL,                  -- enter | asrprogress_notify | asrmessage_notify | playback_result | wait_result | leave
    callid TEXT NOT NULL,
    error_code INTEGER NOT NULL DEFAULT 0,
    asrtype TEXT NULL,
    callee TEXT NOT NULL,
    gender INTEGER NULL,
    asr_elapse INTEGER NULL,               -- ms
    record_ms INTEGER NULL,
    volume_gain REAL NULL,
    question TEXT NOT NULL DEFAULT '',
    split_question TEXT NULL,
    question_index INTEGER NOT NULL DEFAULT 0,
    speak_ms INTEGER NOT NULL DEFAULT 0,
    play_ms INTEGER NOT NULL DEFAULT 0,
    keyword TEXT NULL,
    answer_id TEXT NULL,
    answer_text TEXT NULL,
    answer_content TEXT NULL,
    answer_action TEXT NULL,
    word_class TEXT NULL,
    score INTEGER NOT NULL DEFAULT 0,
    sequence INTEGER NOT NULL,
    bridge_status INTEGER NULL,
    voice TEXT NULL,                       -- customer audio of this sentence
    robot_voice TEXT NULL,                 -- JSON array of robot audio paths
    decision_us INTEGER NULL,              -- recognition end → decision, microseconds
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (record_id, sequence)
);

CREATE TABLE blacklists (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id TEXT NOT NULL,
    number TEXT NOT NULL,
    reason TEXT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (user_id, number)
);

CREATE TABLE dial_ledger (              -- written before each originate; reconciled after a crash
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    number_id INTEGER NOT NULL,
    number TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    origination_uuid TEXT NOT NULL UNIQUE,
    node_id TEXT NOT NULL,
    state TEXT NOT NULL,                   -- originating | answered | finalized | failed
    detail TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX dial_ledger_state ON dial_ledger (state, node_id);

CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id TEXT NOT NULL,
    callid TEXT NULL,
    kind TEXT NOT NULL,                    -- call_notify | call_stop_notify
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending', -- pending | delivered | dead
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT NULL,
    created_at TEXT NOT NULL,
    delivered_at TEXT NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);

CREATE TABLE regions (                  -- seed city / province objects
    id INTEGER PRIMARY KEY,
    pid INTEGER NULL,
    city TEXT NOT NULL,
    area_code TEXT NULL,
    post_code TEXT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
