//! A database with a user, the sample script, tasks and numbers, and
//! finished calls to finalize.

use std::collections::BTreeMap;

use sqlx::Row;
use voxdial::dialogue::{Detail, Script, Summary, SAMPLE_SCRIPT};
use voxdial::finalize::status::HangupFacts;
use voxdial::finalize::CallResult;
use voxdial::store::{Store, Task};

pub const USER: &str = "4d99d91c-f5d9-49da-88da-758977cc58a9";

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub store: Store,
    pub group_id: i64,
    /// A tag of the sample script (group-prefixed id) and its name.
    pub tag: (String, String),
}

/// One number of a task.
#[derive(Debug, Clone)]
pub struct Num {
    pub task_id: String,
    pub id: i64,
    pub number: String,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Self::at(None).await
    }

    /// On the database at `url` (SQLite in the temporary directory when
    /// `None`); the directory still holds spools.
    pub async fn at(url: Option<String>) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("voxdial.db").display()));
        let store = Store::open(&url).await.expect("open");
        store.ensure_user(USER, "tenant").await.expect("user");
        let script = Script::from_json(SAMPLE_SCRIPT).expect("script");
        let group_id = store.save_script(USER, &script).await.expect("save");
        let r = sqlx::query(store.sql("SELECT id, name FROM tags WHERE user_id = ? ORDER BY id LIMIT 1"))
            .bind(USER)
            .fetch_one(store.pool())
            .await
            .expect("tag");
        let tag = (r.try_get("id").expect("id"), r.try_get("name").expect("name"));
        Fixture { dir, url, store, group_id, tag }
    }

    /// A task with `n` numbers, each with a `name` variable.
    pub async fn task(&self, n: usize) -> Vec<Num> {
        let task_id = uuid::Uuid::new_v4().to_string();
        self.store
            .create_task(&Task {
                maximumcall: 10,
                call_per_second: 10.0,
                recycle_limit: 1,
                originate_timeout: 30,
                origination_caller_id_number: "02160001234".into(),
                ..Task::new(task_id.clone(), format!("task {task_id}"), USER, self.group_id)
            })
            .await
            .expect("task");
        let rows: Vec<(String, BTreeMap<String, String>)> = (0..n)
            .map(|i| (format!("138{:08}", i), BTreeMap::from([("name".to_string(), format!("客户{i}"))])))
            .collect();
        self.store.import_numbers(&task_id, &rows).await.expect("import");
        sqlx::query(self.store.sql("SELECT id, number FROM autodialer_number WHERE task_id = ? ORDER BY id"))
            .bind(&task_id)
            .fetch_all(self.store.pool())
            .await
            .expect("numbers")
            .iter()
            .map(|r| Num {
                task_id: task_id.clone(),
                id: r.try_get("id").expect("id"),
                number: r.try_get("number").expect("n"),
            })
            .collect()
    }

    pub async fn count(&self, sql: &str, arg: &str) -> i64 {
        self.store.count(sql, arg).await.expect("count")
    }

    /// A finished call of `num`: answered with a two-row transcript, or
    /// refused as busy.
    pub fn call(&self, num: &Num, attempt: i64, answered: bool) -> CallResult {
        let now = chrono::Utc::now().timestamp_millis();
        let detail = |seq: i64, notify: &'static str, q: &str| Detail {
            notify,
            question: q.into(),
            question_index: 0,
            speak_ms: 900,
            play_ms: 3000,
            keyword: (!q.is_empty()).then(|| "可以".to_string()),
            answer_id: Some("u1".into()),
            answer_text: Some("开场白".into()),
            answer_content: Some("您好,我这边是客户经理".into()),
            word_class: Some("16".into()),
            answer_action: None,
            score: 10,
            sequence: seq,
            asr_elapse: Some(120),
            gender: None,
            tags: if seq == 2 { vec![self.tag.0.clone()] } else { vec![] },
            decision_us: Some(50),
            at_ms: now,
            ..Detail::default()
        };
        CallResult {
            uuid: uuid::Uuid::new_v4().to_string(),
            task_id: num.task_id.clone(),
            user_id: USER.into(),
            group_id: self.group_id,
            recycle_limit: 1,
            number_id: num.id,
            number: num.number.clone(),
            attempt,
            caller_number: "02160001234".into(),
            facts: HangupFacts {
                hangup_cause: Some(if answered { "NORMAL_CLEARING" } else { "USER_BUSY" }.into()),
                sip_term_status: Some(if answered { 200 } else { 486 }),
                sip_hangup_disposition: Some("recv_bye".into()),
                answered,
                billsec_ms: if answered { 12_300 } else { 0 },
                duration_ms: 20_000,
                ..HangupFacts::default()
            },
            originated_ms: now - 20_000,
            answered_ms: answered.then_some(now - 12_300),
            hangup_ms: now,
            reconciled: false,
            record_file: answered.then(|| format!("/rec/2025-01-01/{}.{}.10-00-00.x.wav", num.number, self.group_id)),
            dialogue: answered.then(|| {
                (
                    Summary {
                        score: 20,
                        rounds: 1,
                        level_id: None,
                        level_name: Some("A级(有意向)".into()),
                        intention_results: Some(1),
                        tags: vec![],
                        robot_hung_up: false,
                        gender: Some(2),
                    },
                    vec![detail(1, "enter", ""), detail(2, "asrmessage_notify", "可以啊")],
                )
            }),
        }
    }
}
