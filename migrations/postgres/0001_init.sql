-- voxdial schema v1 (PostgreSQL). Same tables, columns and indexes as
-- migrations/sqlite/0001_init.sql; see docs/schema.md for units and seeds.
-- Integers and flags are BIGINT (the store reads them as i64), REAL is
-- DOUBLE PRECISION, times are 'YYYY-MM-DD HH:MM:SS' strings (VARCHAR(19) COLLATE "C")
-- exactly as on SQLite, so every query runs unchanged on all backends.
-- VARCHAR widths are the same as in the MySQL migration; the store checks
-- them before writing (src/store/limits.rs), so no backend truncates.
-- VARCHAR columns use COLLATE "C": byte order, like SQLite's BINARY and
-- MySQL's utf8mb4_bin, so ORDER BY and comparisons agree across backends,
-- and index comparisons of ids and times skip the locale (strcoll).

CREATE TABLE users (
    id VARCHAR(64) COLLATE "C" PRIMARY KEY,
    parent_id VARCHAR(64) COLLATE "C" NULL,
    type BIGINT NOT NULL DEFAULT 4,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);

CREATE TABLE api_tokens (
    id BIGSERIAL PRIMARY KEY,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL DEFAULT '',
    token_sha256 VARCHAR(64) COLLATE "C" NOT NULL UNIQUE,
    mask_numbers BIGINT NOT NULL DEFAULT 0,
    created_at VARCHAR(19) COLLATE "C" NOT NULL
);

CREATE TABLE script_groups (
    id BIGSERIAL PRIMARY KEY,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    description TEXT NULL,
    debug BIGINT NOT NULL DEFAULT 0,
    link_word_group_id VARCHAR(100) COLLATE "C" NULL,
    tag_scene_id VARCHAR(100) COLLATE "C" NULL,
    definition TEXT NOT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL,
    deleted_at VARCHAR(19) COLLATE "C" NULL
);

CREATE TABLE utterances (
    id VARCHAR(100) COLLATE "C" PRIMARY KEY,
    group_id BIGINT NOT NULL,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    description TEXT NULL,
    context_id VARCHAR(100) COLLATE "C" NULL,
    priority BIGINT NOT NULL DEFAULT 0,
    action VARCHAR(64) COLLATE "C" NULL,
    word_class BIGINT NOT NULL DEFAULT 16,
    wait BIGINT NOT NULL DEFAULT 4000,
    retry BIGINT NOT NULL DEFAULT 0,
    max_retry BIGINT NOT NULL DEFAULT 0,
    score BIGINT NOT NULL DEFAULT 0,
    play_ms BIGINT NOT NULL DEFAULT -1,
    enquire BIGINT NOT NULL DEFAULT 1,
    identify_type BIGINT NOT NULL DEFAULT 4,
    block_asr BIGINT NOT NULL DEFAULT 0,
    allow_keyword_interrupt BIGINT NOT NULL DEFAULT 0,
    is_jump_back BIGINT NOT NULL DEFAULT 0,
    jump_back_threshold BIGINT NOT NULL DEFAULT -1,
    customer_service_id VARCHAR(100) COLLATE "C" NULL,
    background_file_id VARCHAR(100) COLLATE "C" NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL,
    deleted_at VARCHAR(19) COLLATE "C" NULL
);
CREATE INDEX utterances_group ON utterances (group_id);

CREATE TABLE utterance_contents (
    id VARCHAR(100) COLLATE "C" PRIMARY KEY,
    utterance_id VARCHAR(100) COLLATE "C" NOT NULL,
    file_id VARCHAR(255) COLLATE "C" NULL,
    translate_text TEXT NOT NULL DEFAULT '',
    wav_second DOUBLE PRECISION NULL,
    sort BIGINT NOT NULL DEFAULT 0,
    status BIGINT NOT NULL DEFAULT 1
);
CREATE INDEX utterance_contents_utterance ON utterance_contents (utterance_id);

CREATE TABLE utterance_branches (
    id VARCHAR(100) COLLATE "C" PRIMARY KEY,
    utterance_id VARCHAR(100) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL DEFAULT '',
    keywords TEXT NOT NULL DEFAULT '[]',
    regexes TEXT NOT NULL DEFAULT '[]',
    negations TEXT NOT NULL DEFAULT '[]',
    is_default BIGINT NOT NULL DEFAULT 0,
    next_utterance_id VARCHAR(100) COLLATE "C" NULL,
    score BIGINT NOT NULL DEFAULT 0,
    sort BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX utterance_branches_utterance ON utterance_branches (utterance_id);

CREATE TABLE levels (
    id VARCHAR(100) COLLATE "C" PRIMARY KEY,
    group_id BIGINT NULL,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    alias VARCHAR(255) COLLATE "C" NULL,
    color VARCHAR(32) COLLATE "C" NULL,
    min_score BIGINT NOT NULL,
    max_score BIGINT NOT NULL,
    intention_results BIGINT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);

CREATE TABLE tag_scenes (
    id VARCHAR(100) COLLATE "C" PRIMARY KEY,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);

CREATE TABLE tag_groups (
    id VARCHAR(100) COLLATE "C" PRIMARY KEY,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    tag_scene_id VARCHAR(100) COLLATE "C" NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);

CREATE TABLE tags (
    id VARCHAR(100) COLLATE "C" PRIMARY KEY,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    description TEXT NULL,
    color VARCHAR(32) COLLATE "C" NULL,
    status BIGINT NOT NULL DEFAULT 1,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);

CREATE TABLE tag_tag_group (
    tag_id VARCHAR(100) COLLATE "C" NOT NULL,
    tag_group_id VARCHAR(100) COLLATE "C" NOT NULL,
    PRIMARY KEY (tag_id, tag_group_id)
);

CREATE TABLE taggables (
    taggable_id VARCHAR(100) COLLATE "C" NOT NULL,
    taggable_type VARCHAR(32) COLLATE "C" NOT NULL,
    tag_id VARCHAR(100) COLLATE "C" NOT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL,
    PRIMARY KEY (taggable_id, tag_id)
);
CREATE INDEX taggables_tag ON taggables (tag_id, taggable_type);

CREATE TABLE dial_time_groups (
    id VARCHAR(100) COLLATE "C" PRIMARY KEY,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    timezone VARCHAR(64) COLLATE "C" NOT NULL DEFAULT 'Asia/Shanghai',
    weekdays VARCHAR(255) COLLATE "C" NOT NULL DEFAULT '[1,2,3,4,5,6,7]',
    time_ranges TEXT NOT NULL DEFAULT '[["09:00","12:00"],["13:30","20:00"]]',
    exclude_dates TEXT NOT NULL DEFAULT '[]',
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);

CREATE TABLE autodialer_task (
    uuid VARCHAR(64) COLLATE "C" PRIMARY KEY,
    name VARCHAR(255) COLLATE "C" NOT NULL,
    create_datetime VARCHAR(19) COLLATE "C" NOT NULL,
    alter_datetime VARCHAR(19) COLLATE "C" NOT NULL,
    start BIGINT NOT NULL DEFAULT 0,
    maximumcall BIGINT NOT NULL DEFAULT 1,
    call_per_second DOUBLE PRECISION NOT NULL DEFAULT 1,
    recycle_limit BIGINT NOT NULL DEFAULT 0,
    random_assignment_number BIGINT NOT NULL DEFAULT 0,
    disable_dial_timegroup VARCHAR(64) COLLATE "C" NULL,
    dial_time_id VARCHAR(100) COLLATE "C" NULL,
    destination_extension VARCHAR(255) COLLATE "C" NOT NULL DEFAULT 'robot',
    destination_dialplan VARCHAR(64) COLLATE "C" NOT NULL DEFAULT 'XML',
    destination_context VARCHAR(255) COLLATE "C" NOT NULL DEFAULT 'default',
    scheduling_policy_ratio VARCHAR(255) COLLATE "C" NULL,
    scheduling_queue VARCHAR(255) COLLATE "C" NULL,
    dial_format TEXT NOT NULL DEFAULT '',
    domain VARCHAR(255) COLLATE "C" NULL,
    remark TEXT NULL,
    sort BIGINT NOT NULL DEFAULT 0,
    is_top BIGINT NOT NULL DEFAULT 0,
    originate_variables TEXT NOT NULL DEFAULT '',
    _originate_timeout BIGINT NOT NULL DEFAULT 60,
    _origination_caller_id_number VARCHAR(64) COLLATE "C" NOT NULL DEFAULT '',
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    group_id BIGINT NOT NULL,
    caller_line_id VARCHAR(100) COLLATE "C" NULL,
    customer_service_id VARCHAR(100) COLLATE "C" NULL,
    call_notify_url TEXT NULL,
    call_notify_type BIGINT NOT NULL DEFAULT 0,
    call_pause_second BIGINT NOT NULL DEFAULT 0,
    call_stop_notify_url TEXT NULL,
    end_action BIGINT NOT NULL DEFAULT 1,
    task_type BIGINT NOT NULL DEFAULT 1,
    deleted_at VARCHAR(19) COLLATE "C" NULL
);

CREATE TABLE autodialer_number (
    id BIGSERIAL PRIMARY KEY,
    task_id VARCHAR(64) COLLATE "C" NOT NULL,
    number VARCHAR(32) COLLATE "C" NOT NULL,
    status BIGINT NOT NULL DEFAULT 0,
    status_str VARCHAR(64) COLLATE "C" NOT NULL DEFAULT '等待呼叫',
    callid VARCHAR(64) COLLATE "C" NULL,
    calldate VARCHAR(19) COLLATE "C" NULL,
    bill BIGINT NOT NULL DEFAULT 0,
    duration BIGINT NOT NULL DEFAULT 0,
    hangupcause VARCHAR(64) COLLATE "C" NULL,
    hangupdate VARCHAR(19) COLLATE "C" NULL,
    answerdate VARCHAR(19) COLLATE "C" NULL,
    is_blacklist BIGINT NOT NULL DEFAULT 0,
    province_id BIGINT NOT NULL DEFAULT 0,
    city_id BIGINT NOT NULL DEFAULT 0,
    operator BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at VARCHAR(19) COLLATE "C" NOT NULL DEFAULT '',
    claimed_by VARCHAR(100) COLLATE "C" NULL,
    claim_expires_at VARCHAR(19) COLLATE "C" NULL,
    variables TEXT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL,
    UNIQUE (task_id, number)
);
CREATE INDEX autodialer_number_task_status ON autodialer_number (task_id, status, next_attempt_at);

CREATE TABLE auto_call_histories (
    id BIGSERIAL PRIMARY KEY,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    task_id VARCHAR(64) COLLATE "C" NOT NULL,
    call_id VARCHAR(64) COLLATE "C" NOT NULL UNIQUE,
    number_id BIGINT NOT NULL,
    number VARCHAR(32) COLLATE "C" NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 1,
    call_time VARCHAR(19) COLLATE "C" NOT NULL,
    duration BIGINT NOT NULL DEFAULT 0,
    hangup_cause VARCHAR(64) COLLATE "C" NULL,
    hangup_code VARCHAR(64) COLLATE "C" NULL,
    hangup_reason BIGINT NULL,
    bill BIGINT NOT NULL DEFAULT 0,
    call_status VARCHAR(64) COLLATE "C" NOT NULL DEFAULT '',
    status BIGINT NOT NULL,
    record_file TEXT NULL,
    calling_number VARCHAR(64) COLLATE "C" NULL,
    province_id BIGINT NOT NULL DEFAULT 0,
    city_id BIGINT NOT NULL DEFAULT 0,
    operator BIGINT NOT NULL DEFAULT 0,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);
CREATE INDEX auto_call_histories_number ON auto_call_histories (number_id);
CREATE INDEX auto_call_histories_task ON auto_call_histories (task_id, call_time);

CREATE TABLE records (
    id VARCHAR(64) COLLATE "C" PRIMARY KEY,
    task_id VARCHAR(64) COLLATE "C" NOT NULL,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    group_id BIGINT NOT NULL,
    number_id BIGINT NULL,
    callid VARCHAR(64) COLLATE "C" NOT NULL UNIQUE,
    score BIGINT NOT NULL DEFAULT 0,
    callee VARCHAR(32) COLLATE "C" NOT NULL,
    caller_number VARCHAR(64) COLLATE "C" NULL,
    duration BIGINT NOT NULL DEFAULT 0,
    error_code BIGINT NOT NULL DEFAULT 0,
    gender BIGINT NULL,
    level_id VARCHAR(100) COLLATE "C" NULL,
    level_name VARCHAR(255) COLLATE "C" NULL,
    intention_results BIGINT NULL,
    calldate VARCHAR(19) COLLATE "C" NOT NULL,
    bill BIGINT NOT NULL DEFAULT 0,
    hangupcause VARCHAR(64) COLLATE "C" NULL,
    hangupdate VARCHAR(19) COLLATE "C" NULL,
    answerdate VARCHAR(19) COLLATE "C" NULL,
    recordfile TEXT NULL,
    bridge_callid VARCHAR(64) COLLATE "C" NULL,
    bridge_number VARCHAR(64) COLLATE "C" NULL,
    bridge_calldate VARCHAR(19) COLLATE "C" NULL,
    bridge_answerdate VARCHAR(19) COLLATE "C" NULL,
    hangup_disposition BIGINT NULL,
    rounds BIGINT NOT NULL DEFAULT 0,
    read_at VARCHAR(19) COLLATE "C" NULL,
    province_id BIGINT NOT NULL DEFAULT 0,
    city_id BIGINT NOT NULL DEFAULT 0,
    operator BIGINT NOT NULL DEFAULT 0,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);
CREATE INDEX records_task_calldate ON records (task_id, calldate);
CREATE INDEX records_task_score ON records (task_id, score);
CREATE INDEX records_task_bill ON records (task_id, bill);
CREATE INDEX records_task_rounds ON records (task_id, rounds);
CREATE INDEX records_task_callee ON records (task_id, callee);

CREATE TABLE record_details (
    id VARCHAR(64) COLLATE "C" PRIMARY KEY,
    record_id VARCHAR(64) COLLATE "C" NOT NULL,
    task_id VARCHAR(64) COLLATE "C" NOT NULL,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    notify VARCHAR(32) COLLATE "C" NOT NULL,
    callid VARCHAR(64) COLLATE "C" NOT NULL,
    error_code BIGINT NOT NULL DEFAULT 0,
    asrtype VARCHAR(32) COLLATE "C" NULL,
    callee VARCHAR(32) COLLATE "C" NOT NULL,
    gender BIGINT NULL,
    asr_elapse BIGINT NULL,
    record_ms BIGINT NULL,
    volume_gain DOUBLE PRECISION NULL,
    question TEXT NOT NULL DEFAULT '',
    split_question TEXT NULL,
    question_index BIGINT NOT NULL DEFAULT 0,
    speak_ms BIGINT NOT NULL DEFAULT 0,
    play_ms BIGINT NOT NULL DEFAULT 0,
    keyword TEXT NULL,
    answer_id VARCHAR(100) COLLATE "C" NULL,
    answer_text TEXT NULL,
    answer_content TEXT NULL,
    answer_action VARCHAR(64) COLLATE "C" NULL,
    word_class VARCHAR(32) COLLATE "C" NULL,
    score BIGINT NOT NULL DEFAULT 0,
    sequence BIGINT NOT NULL,
    bridge_status BIGINT NULL,
    voice TEXT NULL,
    robot_voice TEXT NULL,
    decision_us BIGINT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL,
    UNIQUE (record_id, sequence)
);

CREATE TABLE blacklists (
    id BIGSERIAL PRIMARY KEY,
    user_id VARCHAR(64) COLLATE "C" NOT NULL,
    number VARCHAR(32) COLLATE "C" NOT NULL,
    reason TEXT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    UNIQUE (user_id, number)
);

CREATE TABLE dial_ledger (
    id BIGSERIAL PRIMARY KEY,
    task_id VARCHAR(64) COLLATE "C" NOT NULL,
    number_id BIGINT NOT NULL,
    number VARCHAR(32) COLLATE "C" NOT NULL,
    attempt BIGINT NOT NULL,
    origination_uuid VARCHAR(64) COLLATE "C" NOT NULL UNIQUE,
    node_id VARCHAR(100) COLLATE "C" NOT NULL,
    state VARCHAR(32) COLLATE "C" NOT NULL,
    detail TEXT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);
CREATE INDEX dial_ledger_state ON dial_ledger (state, node_id);

CREATE TABLE webhook_outbox (
    id BIGSERIAL PRIMARY KEY,
    task_id VARCHAR(64) COLLATE "C" NOT NULL,
    callid VARCHAR(64) COLLATE "C" NULL,
    kind VARCHAR(32) COLLATE "C" NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    idempotency_key VARCHAR(191) COLLATE "C" NOT NULL UNIQUE,
    state VARCHAR(32) COLLATE "C" NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at VARCHAR(19) COLLATE "C" NOT NULL,
    last_error TEXT NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    delivered_at VARCHAR(19) COLLATE "C" NULL
);
CREATE INDEX webhook_outbox_due ON webhook_outbox (state, next_attempt_at);

CREATE TABLE regions (
    id BIGINT PRIMARY KEY,
    pid BIGINT NULL,
    city VARCHAR(255) COLLATE "C" NOT NULL,
    area_code VARCHAR(16) COLLATE "C" NULL,
    post_code VARCHAR(16) COLLATE "C" NULL,
    created_at VARCHAR(19) COLLATE "C" NOT NULL,
    updated_at VARCHAR(19) COLLATE "C" NOT NULL
);
