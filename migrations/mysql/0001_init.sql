-- voxdial schema v1 (MySQL 8.0.13+ / MariaDB 10.5+). Same tables, columns and
-- indexes as migrations/sqlite/0001_init.sql; see docs/schema.md for units.
-- Integers and flags are BIGINT (the store reads them as i64), REAL is DOUBLE,
-- times are 'YYYY-MM-DD HH:MM:SS' strings (VARCHAR(19)) exactly as on SQLite.
-- utf8mb4 with the binary collation: every character of Unicode is stored,
-- and comparisons, UNIQUE keys and ORDER BY are case- and accent-sensitive
-- like on SQLite and PostgreSQL. Indexed strings are VARCHAR(n); the widths
-- match the PostgreSQL migration and the store checks them before writing
-- (src/store/limits.rs); connections run with STRICT_ALL_TABLES, so nothing
-- is ever silently truncated. TEXT defaults use the expression form ('').

CREATE TABLE users (
    id VARCHAR(64) PRIMARY KEY,
    parent_id VARCHAR(64) NULL,
    type BIGINT NOT NULL DEFAULT 4,
    name VARCHAR(255) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE api_tokens (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL DEFAULT '',
    token_sha256 VARCHAR(64) NOT NULL UNIQUE,
    mask_numbers BIGINT NOT NULL DEFAULT 0,
    created_at VARCHAR(19) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE script_groups (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    description TEXT NULL,
    debug BIGINT NOT NULL DEFAULT 0,
    link_word_group_id VARCHAR(100) NULL,
    tag_scene_id VARCHAR(100) NULL,
    definition MEDIUMTEXT NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    deleted_at VARCHAR(19) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE utterances (
    id VARCHAR(100) PRIMARY KEY,
    group_id BIGINT NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    description TEXT NULL,
    context_id VARCHAR(100) NULL,
    priority BIGINT NOT NULL DEFAULT 0,
    action VARCHAR(64) NULL,
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
    customer_service_id VARCHAR(100) NULL,
    background_file_id VARCHAR(100) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    deleted_at VARCHAR(19) NULL,
    KEY utterances_group (group_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE utterance_contents (
    id VARCHAR(100) PRIMARY KEY,
    utterance_id VARCHAR(100) NOT NULL,
    file_id VARCHAR(255) NULL,
    translate_text TEXT NOT NULL DEFAULT (''),
    wav_second DOUBLE NULL,
    sort BIGINT NOT NULL DEFAULT 0,
    status BIGINT NOT NULL DEFAULT 1,
    KEY utterance_contents_utterance (utterance_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE utterance_branches (
    id VARCHAR(100) PRIMARY KEY,
    utterance_id VARCHAR(100) NOT NULL,
    name VARCHAR(255) NOT NULL DEFAULT '',
    keywords TEXT NOT NULL DEFAULT ('[]'),
    regexes TEXT NOT NULL DEFAULT ('[]'),
    negations TEXT NOT NULL DEFAULT ('[]'),
    is_default BIGINT NOT NULL DEFAULT 0,
    next_utterance_id VARCHAR(100) NULL,
    score BIGINT NOT NULL DEFAULT 0,
    sort BIGINT NOT NULL DEFAULT 0,
    KEY utterance_branches_utterance (utterance_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE levels (
    id VARCHAR(100) PRIMARY KEY,
    group_id BIGINT NULL,
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    alias VARCHAR(255) NULL,
    color VARCHAR(32) NULL,
    min_score BIGINT NOT NULL,
    max_score BIGINT NOT NULL,
    intention_results BIGINT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tag_scenes (
    id VARCHAR(100) PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tag_groups (
    id VARCHAR(100) PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    tag_scene_id VARCHAR(100) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tags (
    id VARCHAR(100) PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    description TEXT NULL,
    color VARCHAR(32) NULL,
    status BIGINT NOT NULL DEFAULT 1,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE tag_tag_group (
    tag_id VARCHAR(100) NOT NULL,
    tag_group_id VARCHAR(100) NOT NULL,
    PRIMARY KEY (tag_id, tag_group_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE taggables (
    taggable_id VARCHAR(100) NOT NULL,
    taggable_type VARCHAR(32) NOT NULL,
    tag_id VARCHAR(100) NOT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    PRIMARY KEY (taggable_id, tag_id),
    KEY taggables_tag (tag_id, taggable_type)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE dial_time_groups (
    id VARCHAR(100) PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    name VARCHAR(255) NOT NULL,
    timezone VARCHAR(64) NOT NULL DEFAULT 'Asia/Shanghai',
    weekdays VARCHAR(255) NOT NULL DEFAULT '[1,2,3,4,5,6,7]',
    time_ranges TEXT NOT NULL DEFAULT ('[["09:00","12:00"],["13:30","20:00"]]'),
    exclude_dates TEXT NOT NULL DEFAULT ('[]'),
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE autodialer_task (
    uuid VARCHAR(64) PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    create_datetime VARCHAR(19) NOT NULL,
    alter_datetime VARCHAR(19) NOT NULL,
    start BIGINT NOT NULL DEFAULT 0,
    maximumcall BIGINT NOT NULL DEFAULT 1,
    call_per_second DOUBLE NOT NULL DEFAULT 1,
    recycle_limit BIGINT NOT NULL DEFAULT 0,
    random_assignment_number BIGINT NOT NULL DEFAULT 0,
    disable_dial_timegroup VARCHAR(64) NULL,
    dial_time_id VARCHAR(100) NULL,
    destination_extension VARCHAR(255) NOT NULL DEFAULT 'robot',
    destination_dialplan VARCHAR(64) NOT NULL DEFAULT 'XML',
    destination_context VARCHAR(255) NOT NULL DEFAULT 'default',
    scheduling_policy_ratio VARCHAR(255) NULL,
    scheduling_queue VARCHAR(255) NULL,
    dial_format TEXT NOT NULL DEFAULT (''),
    domain VARCHAR(255) NULL,
    remark TEXT NULL,
    sort BIGINT NOT NULL DEFAULT 0,
    is_top BIGINT NOT NULL DEFAULT 0,
    originate_variables TEXT NOT NULL DEFAULT (''),
    _originate_timeout BIGINT NOT NULL DEFAULT 60,
    _origination_caller_id_number VARCHAR(64) NOT NULL DEFAULT '',
    user_id VARCHAR(64) NOT NULL,
    group_id BIGINT NOT NULL,
    caller_line_id VARCHAR(100) NULL,
    customer_service_id VARCHAR(100) NULL,
    call_notify_url TEXT NULL,
    call_notify_type BIGINT NOT NULL DEFAULT 0,
    call_pause_second BIGINT NOT NULL DEFAULT 0,
    call_stop_notify_url TEXT NULL,
    end_action BIGINT NOT NULL DEFAULT 1,
    task_type BIGINT NOT NULL DEFAULT 1,
    deleted_at VARCHAR(19) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE autodialer_number (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    task_id VARCHAR(64) NOT NULL,
    number VARCHAR(32) NOT NULL,
    status BIGINT NOT NULL DEFAULT 0,
    status_str VARCHAR(64) NOT NULL DEFAULT '等待呼叫',
    callid VARCHAR(64) NULL,
    calldate VARCHAR(19) NULL,
    bill BIGINT NOT NULL DEFAULT 0,
    duration BIGINT NOT NULL DEFAULT 0,
    hangupcause VARCHAR(64) NULL,
    hangupdate VARCHAR(19) NULL,
    answerdate VARCHAR(19) NULL,
    is_blacklist BIGINT NOT NULL DEFAULT 0,
    province_id BIGINT NOT NULL DEFAULT 0,
    city_id BIGINT NOT NULL DEFAULT 0,
    operator BIGINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at VARCHAR(19) NOT NULL DEFAULT '',
    claimed_by VARCHAR(100) NULL,
    claim_expires_at VARCHAR(19) NULL,
    variables TEXT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    UNIQUE (task_id, number),
    KEY autodialer_number_task_status (task_id, status, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE auto_call_histories (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    task_id VARCHAR(64) NOT NULL,
    call_id VARCHAR(64) NOT NULL UNIQUE,
    number_id BIGINT NOT NULL,
    number VARCHAR(32) NOT NULL,
    attempt BIGINT NOT NULL DEFAULT 1,
    call_time VARCHAR(19) NOT NULL,
    duration BIGINT NOT NULL DEFAULT 0,
    hangup_cause VARCHAR(64) NULL,
    hangup_code VARCHAR(64) NULL,
    hangup_reason BIGINT NULL,
    bill BIGINT NOT NULL DEFAULT 0,
    call_status VARCHAR(64) NOT NULL DEFAULT '',
    status BIGINT NOT NULL,
    record_file TEXT NULL,
    calling_number VARCHAR(64) NULL,
    province_id BIGINT NOT NULL DEFAULT 0,
    city_id BIGINT NOT NULL DEFAULT 0,
    operator BIGINT NOT NULL DEFAULT 0,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    KEY auto_call_histories_number (number_id),
    KEY auto_call_histories_task (task_id, call_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE records (
    id VARCHAR(64) PRIMARY KEY,
    task_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    group_id BIGINT NOT NULL,
    number_id BIGINT NULL,
    callid VARCHAR(64) NOT NULL UNIQUE,
    score BIGINT NOT NULL DEFAULT 0,
    callee VARCHAR(32) NOT NULL,
    caller_number VARCHAR(64) NULL,
    duration BIGINT NOT NULL DEFAULT 0,
    error_code BIGINT NOT NULL DEFAULT 0,
    gender BIGINT NULL,
    level_id VARCHAR(100) NULL,
    level_name VARCHAR(255) NULL,
    intention_results BIGINT NULL,
    calldate VARCHAR(19) NOT NULL,
    bill BIGINT NOT NULL DEFAULT 0,
    hangupcause VARCHAR(64) NULL,
    hangupdate VARCHAR(19) NULL,
    answerdate VARCHAR(19) NULL,
    recordfile TEXT NULL,
    bridge_callid VARCHAR(64) NULL,
    bridge_number VARCHAR(64) NULL,
    bridge_calldate VARCHAR(19) NULL,
    bridge_answerdate VARCHAR(19) NULL,
    hangup_disposition BIGINT NULL,
    rounds BIGINT NOT NULL DEFAULT 0,
    read_at VARCHAR(19) NULL,
    province_id BIGINT NOT NULL DEFAULT 0,
    city_id BIGINT NOT NULL DEFAULT 0,
    operator BIGINT NOT NULL DEFAULT 0,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    KEY records_task_calldate (task_id, calldate),
    KEY records_task_score (task_id, score),
    KEY records_task_bill (task_id, bill),
    KEY records_task_rounds (task_id, rounds),
    KEY records_task_callee (task_id, callee)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE record_details (
    id VARCHAR(64) PRIMARY KEY,
    record_id VARCHAR(64) NOT NULL,
    task_id VARCHAR(64) NOT NULL,
    user_id VARCHAR(64) NOT NULL,
    notify VARCHAR(32) NOT NULL,
    callid VARCHAR(64) NOT NULL,
    error_code BIGINT NOT NULL DEFAULT 0,
    asrtype VARCHAR(32) NULL,
    callee VARCHAR(32) NOT NULL,
    gender BIGINT NULL,
    asr_elapse BIGINT NULL,
    record_ms BIGINT NULL,
    volume_gain DOUBLE NULL,
    question TEXT NOT NULL DEFAULT (''),
    split_question TEXT NULL,
    question_index BIGINT NOT NULL DEFAULT 0,
    speak_ms BIGINT NOT NULL DEFAULT 0,
    play_ms BIGINT NOT NULL DEFAULT 0,
    keyword TEXT NULL,
    answer_id VARCHAR(100) NULL,
    answer_text TEXT NULL,
    answer_content TEXT NULL,
    answer_action VARCHAR(64) NULL,
    word_class VARCHAR(32) NULL,
    score BIGINT NOT NULL DEFAULT 0,
    sequence BIGINT NOT NULL,
    bridge_status BIGINT NULL,
    voice TEXT NULL,
    robot_voice TEXT NULL,
    decision_us BIGINT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    UNIQUE (record_id, sequence)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE blacklists (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    user_id VARCHAR(64) NOT NULL,
    number VARCHAR(32) NOT NULL,
    reason TEXT NULL,
    created_at VARCHAR(19) NOT NULL,
    UNIQUE (user_id, number)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE dial_ledger (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    task_id VARCHAR(64) NOT NULL,
    number_id BIGINT NOT NULL,
    number VARCHAR(32) NOT NULL,
    attempt BIGINT NOT NULL,
    origination_uuid VARCHAR(64) NOT NULL UNIQUE,
    node_id VARCHAR(100) NOT NULL,
    state VARCHAR(32) NOT NULL,
    detail TEXT NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL,
    KEY dial_ledger_state (state, node_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE webhook_outbox (
    id BIGINT AUTO_INCREMENT PRIMARY KEY,
    task_id VARCHAR(64) NOT NULL,
    callid VARCHAR(64) NULL,
    kind VARCHAR(32) NOT NULL,
    url TEXT NOT NULL,
    payload MEDIUMTEXT NOT NULL,
    idempotency_key VARCHAR(191) NOT NULL UNIQUE,
    state VARCHAR(32) NOT NULL DEFAULT 'pending',
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at VARCHAR(19) NOT NULL,
    last_error TEXT NULL,
    created_at VARCHAR(19) NOT NULL,
    delivered_at VARCHAR(19) NULL,
    KEY webhook_outbox_due (state, next_attempt_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE regions (
    id BIGINT PRIMARY KEY,
    pid BIGINT NULL,
    city VARCHAR(255) NOT NULL,
    area_code VARCHAR(16) NULL,
    post_code VARCHAR(16) NULL,
    created_at VARCHAR(19) NOT NULL,
    updated_at VARCHAR(19) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
