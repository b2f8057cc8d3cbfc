//! Shared rig for dialer tests: a simulator, an SQLite store, the sample
//! script and an ESL client, all real.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use voxdial::dialer::compliance::ComplianceConfig;
use voxdial::dialer::{DialerConfig, Progress, TaskRunner};
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::finalize::{Finalizer, RecyclePolicy};
use voxdial::sim::fate::{Fate, FateMix};
use voxdial::sim::{self, SimConfig, SimHandle};
use voxdial::store::{Store, Task};
use voxdial_esl::{ClientConfig, EslClient};

pub const USER: &str = "4d99d91c-f5d9-49da-88da-758977cc58a9";

pub struct Rig {
    pub sim: SimHandle,
    pub store: Store,
    pub esl: EslClient,
    pub dir: tempfile::TempDir,
    pub group: i64,
    pub db_url: String,
    pub lines: Vec<voxdial::dialer::line::LineConfig>,
}

pub fn mix(f: Fate) -> FateMix {
    FateMix { weights: vec![(f, 1)] }
}

impl Rig {
    pub async fn new(mix: FateMix, time_scale: f64) -> Rig {
        Self::with(SimConfig { mix, time_scale, ..SimConfig::default() }).await
    }

    pub async fn with(cfg: SimConfig) -> Rig {
        let dir = tempfile::tempdir().expect("tmp");
        let sim = sim::start(cfg, "127.0.0.1:0").await.expect("sim");
        let db_url = format!("sqlite://{}/t.db", dir.path().display());
        let store = Store::open(&db_url).await.expect("db");
        store.ensure_user(USER, "test").await.expect("user");
        let group = store.save_script(USER, &Script::from_json(SAMPLE_SCRIPT).expect("script")).await.expect("save");
        let mut ccfg = ClientConfig::new(sim.addr().to_string(), "ClueCon");
        ccfg.events = vec!["ALL".into()];
        let esl = EslClient::connect(ccfg).await.expect("esl");
        Rig { sim, store, esl, dir, group, db_url, lines: vec![] }
    }

    pub fn numbers(&self, n: usize, offset: usize) -> Vec<String> {
        (offset..offset + n).map(|i| format!("139{i:08}")).collect()
    }

    pub async fn task(&self, numbers: &[String], maximumcall: i64, cps: f64, recycle_limit: i64) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        self.store
            .create_task(&Task {
                maximumcall,
                call_per_second: cps,
                recycle_limit,
                originate_timeout: 5,
                origination_caller_id_number: "02160001234".into(),
                ..Task::new(id.clone(), "test", USER, self.group)
            })
            .await
            .expect("task");
        let rows: Vec<(String, BTreeMap<String, String>)> =
            numbers.iter().map(|n| (n.clone(), BTreeMap::new())).collect();
        self.store.import_numbers(&id, &rows).await.expect("import");
        id
    }

    pub fn runner(
        &self,
        compliance: ComplianceConfig,
        recycle: RecyclePolicy,
    ) -> (TaskRunner, CancellationToken, Arc<Progress>) {
        let cancel = CancellationToken::new();
        let finalizer = Finalizer::start(self.store.clone(), Default::default(), recycle, cancel.clone());
        let progress = Arc::new(Progress::default());
        let runner = TaskRunner {
            store: self.store.clone(),
            esl: self.esl.clone(),
            finalizer,
            cfg: DialerConfig {
                recordings_root: self.dir.path().join("rec").display().to_string(),
                ..DialerConfig::default()
            }
            .into(),
            compliance: compliance.into(),
            dial_gate: Arc::new(Default::default()),
            default_gateway: "voxdial-sim".into(),
            lines: voxdial::dialer::line::Lines::start(&self.lines),
            progress: progress.clone(),
            cancel: cancel.clone(),
            cluster: None,
            module_calls: Default::default(),
        };
        (runner, cancel, progress)
    }

    /// Originates the simulator received for `number`.
    pub fn dials_of(&self, number: &str) -> usize {
        self.sim.originate_log().iter().filter(|r| r.number == number).count()
    }
}

pub fn no_limits() -> ComplianceConfig {
    ComplianceConfig { limits: vec![], ..ComplianceConfig::default() }
}

pub fn no_recycle() -> RecyclePolicy {
    RecyclePolicy { statuses: vec![], interval_secs: 1 }
}
