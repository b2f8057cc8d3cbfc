//! Number location end to end: `voxdial location import` (per-line errors,
//! regions by name), number import filling province / city / operator,
//! `GET v1/task/number?type=`, records falling back to their number's
//! location, landlines by area code, and the cache reloading after an
//! import by another process. SQLite, PostgreSQL and MariaDB.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_rig;

use std::path::Path;
use std::process::Command;

use api_rig::{backends, call, raw, Env};
use serde_json::{json, Value};
use voxdial::location::{import, LocationCache, LocationTable};
use voxdial::store::call::RecordWrite;
use voxdial::store::{CallWrite, Store};

fn sample() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/locations-sample.csv")
}

async fn import_sample(store: &Store) -> import::LocationReport {
    let f = tokio::fs::File::open(sample()).await.unwrap();
    import::import(store, f).await.unwrap()
}

async fn region_name(store: &Store, id: i64) -> Option<String> {
    sqlx::query(store.sql("SELECT city FROM regions WHERE id = ?"))
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .unwrap()
        .map(|r| sqlx::Row::try_get(&r, "city").unwrap())
}

/// (province, city, operator) stored on a task's number.
async fn stored(store: &Store, task: &str, number: &str) -> (Option<String>, Option<String>, i64) {
    let r = sqlx::query(
        store.sql("SELECT province_id, city_id, operator FROM autodialer_number WHERE task_id = ? AND number = ?"),
    )
    .bind(task)
    .bind(number)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let p: i64 = sqlx::Row::try_get(&r, "province_id").unwrap();
    let c: i64 = sqlx::Row::try_get(&r, "city_id").unwrap();
    (region_name(store, p).await, region_name(store, c).await, sqlx::Row::try_get(&r, "operator").unwrap())
}

async fn for_each_backend<F, Fut>(f: F)
where
    F: Fn(Env) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    for url in backends(dir.path()).await {
        eprintln!("backend {}", url.split(':').next().unwrap_or(""));
        f(api_rig::env(&url, dir.path()).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_import_reports_each_bad_line_and_creates_regions_by_name() {
    for_each_backend(|e| async move {
        let report = import_sample(&e.store).await;
        assert_eq!((report.rows, report.imported, report.invalid), (20, 20, 0), "{report:?}");
        let bad = "prefix,province,city\n1865168,江苏,南京\n186516,江苏,南京\n1865170,,南京\n1865171,江苏,南京,xx\n1865172,江苏\n";
        let path = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(path.path(), bad).unwrap();
        let r = import::import(&e.store, tokio::fs::File::open(path.path()).await.unwrap()).await.unwrap();
        assert_eq!((r.rows, r.imported, r.invalid), (5, 1, 4), "{r:?}");
        let lines: Vec<(u64, &str)> = r.errors.iter().map(|x| (x.line, x.problem.split(':').next().unwrap())).collect();
        assert_eq!(
            lines,
            vec![(3, "prefix"), (4, "province"), (5, "operator"), (6, "expected 3 or 4 columns (prefix, province, city[, operator]), got 2")]
        );
        let t = LocationTable::load(&e.store).await.unwrap();
        // 江苏省 / 苏州市 in the file name the shipped 江苏 / 苏州.
        let sz = t.lookup("15612349999").unwrap();
        assert_eq!((t.region_name(sz.province_id), t.region_name(sz.city_id), sz.operator), (Some("江苏"), Some("苏州"), 2));
        let nn = t.lookup("+86 186 1234 0000").unwrap();
        assert_eq!((t.region_name(nn.province_id), t.region_name(nn.city_id)), (Some("广西"), Some("南宁")));
        // No operator in the file: the segment's (185 联通); 广电 by the file.
        assert_eq!(t.lookup("18512340000").unwrap().operator, 2);
        assert_eq!(t.lookup("19212340000").unwrap().operator, 4);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_numbers_carry_their_location_and_filter_by_operator() {
    for_each_backend(|e| async move {
        import_sample(&e.store).await;
        let (a, addr) = (&e.a, e.addr);
        let tok = Some(a.token.as_str());
        let csv = "number,name\n+86 186 5168 0001,张\n13900000002,李\n18912340003,王\n025-8400 1234,赵\n0898-66668888,钱\n19212340004,孙\n";
        let (st, body) =
            raw(addr, "POST", &format!("/v1/tasks/{}/numbers", a.task), tok, Some("text/csv"), csv.as_bytes()).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((st, v["data"]["inserted"].clone()), (200, json!(6)), "{v}");
        let s = |n: &'static str| stored(&e.store, &a.task, n);
        assert_eq!(s("18651680001").await, (Some("江苏".into()), Some("南京".into()), 2));
        // A prefix the table lacks: only the segment's operator.
        assert_eq!(s("13900000002").await, (None, None, 1));
        assert_eq!(s("18912340003").await, (Some("浙江".into()), Some("杭州".into()), 3));
        // Landlines by area code; 0898 is all of 海南, so no city.
        assert_eq!(s("02584001234").await, (Some("江苏".into()), Some("南京".into()), 0));
        assert_eq!(s("089866668888").await, (Some("海南".into()), None, 0));
        assert_eq!(s("19212340004").await, (Some("河南".into()), Some("郑州".into()), 4));

        let numbers = |ty: &'static str| {
            let path = format!("/v1/task/number?task_id={}&{ty}", a.task);
            async move {
                let (st, v) = call(addr, "GET", &path, tok, None).await;
                assert_eq!(st, 200, "{v}");
                let mut n: Vec<String> =
                    v["data"]["data"].as_array().unwrap().iter().map(|r| r["number"].as_str().unwrap().into()).collect();
                n.sort();
                (n, v)
            }
        };
        let (dx, v) = numbers("type[]=dx").await;
        assert_eq!(dx, vec!["18912340003"]);
        let row = &v["data"]["data"][0];
        assert_eq!((row["pro"].as_str(), row["city"].as_str(), row["mobile_type"].as_str()), (Some("浙江"), Some("杭州"), Some("电信")));
        assert_eq!(row["area_code"], "0571", "the shipped city carries its area code");
        let (yd, _) = numbers("type=yd").await;
        assert!(yd.contains(&"13900000002".to_string()) && !yd.contains(&"18912340003".to_string()), "{yd:?}");
        let (lt_gd, _) = numbers("type[]=lt&type[]=gd").await;
        assert!(lt_gd.contains(&"18651680001".to_string()) && lt_gd.contains(&"19212340004".to_string()), "{lt_gd:?}");
        assert!(!lt_gd.contains(&"18912340003".to_string()));
        let (st, v) = call(addr, "GET", &format!("/v1/task/number?task_id={}&type=xx", a.task), tok, None).await;
        assert_eq!((st, v["field"].as_str()), (400, Some("type")), "{v}");
        assert!(v["message"].as_str().unwrap().starts_with("type: "), "{v}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_without_a_location_show_their_numbers() {
    for_each_backend(|e| async move {
        import_sample(&e.store).await;
        let (a, addr) = (&e.a, e.addr);
        let tok = Some(a.token.as_str());
        let csv = "18651690007\n";
        let (st, _) =
            raw(addr, "POST", &format!("/v1/tasks/{}/numbers", a.task), tok, Some("text/csv"), csv.as_bytes()).await;
        assert_eq!(st, 200);
        let number_id: i64 = sqlx::Row::try_get(
            &sqlx::query(e.store.sql("SELECT id FROM autodialer_number WHERE task_id = ? AND number = '18651690007'"))
                .bind(&a.task)
                .fetch_one(e.store.pool())
                .await
                .unwrap(),
            "id",
        )
        .unwrap();
        // A call written with no location on its record.
        let record = uuid::Uuid::new_v4().to_string();
        e.store
            .write_call(&CallWrite {
                callid: uuid::Uuid::new_v4().to_string(),
                task_id: a.task.clone(),
                user_id: a.user.clone(),
                group_id: a.group,
                number_id,
                number: "18651690007".into(),
                attempt: 1,
                status: 1,
                status_str: "呼叫成功".into(),
                call_status: "answer".into(),
                calldate: "2030-01-01 10:00:00".into(),
                answerdate: Some("2030-01-01 10:00:05".into()),
                hangupdate: "2030-01-01 10:00:40".into(),
                bill_ms: 35_000,
                duration_ms: 40_000,
                record: Some(RecordWrite { id: record.clone(), ..RecordWrite::default() }),
                ..CallWrite::default()
            })
            .await
            .unwrap();
        let (st, list) =
            call(addr, "POST", "/v1/task/query_done_task_phones", tok, Some(json!({"task_id": a.task, "id": record})))
                .await;
        assert_eq!(st, 200, "{list}");
        let row = &list["data"][0];
        assert_eq!(
            (row["province"]["city"].as_str(), row["city"]["city"].as_str()),
            (Some("江苏"), Some("南京")),
            "{row}"
        );
        assert_eq!((row["operator"].as_i64(), row["operator_name"].as_str()), (Some(2), Some("联通")));
        let (_, brief) = call(addr, "GET", &format!("/v1/record/{record}"), tok, None).await;
        assert_eq!(brief["data"]["operator"], 2, "{brief}");
        let (_, info) = call(addr, "GET", &format!("/v1/task/record_info/{}/{record}", a.task), tok, None).await;
        assert_eq!(info["mobile_info"], json!({"mobile_type": "联通", "province": "江苏", "city": "南京"}));
        let (_, agent) =
            call(addr, "GET", &format!("/agent-api/user/{}/task/{}/detail/{record}", a.user, a.task), tok, None).await;
        assert_eq!(agent["data"]["mobile_info"]["city"], "南京", "{agent}");
        let p = agent["data"]["info"]["record"]["province_id"].as_i64().unwrap();
        assert_eq!(region_name(&e.store, p).await.as_deref(), Some("江苏"));
        // The rig's own record keeps the location written on it.
        let (_, mine) = call(addr, "GET", &format!("/v1/record/{}", a.record), tok, None).await;
        assert_eq!((mine["data"]["province_id"].as_i64(), mine["data"]["city_id"].as_i64()), (Some(3), Some(12)));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_reloads_after_an_import_by_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("loc.db");
    let url = format!("sqlite://{}", db.display());
    let store = Store::open(&url).await.unwrap();
    let cache = LocationCache::new(std::time::Duration::ZERO);
    assert_eq!(cache.lookup("18651683344"), None, "nothing before the first load");
    let t = cache.table(&store).await.unwrap();
    assert_eq!(t.prefixes(), 0);
    // Before any import the segment still names the operator, and landlines
    // their province and city.
    assert_eq!(cache.lookup("18651683344").map(|l| (l.province_id, l.operator)), Some((0, 2)));
    let bj = cache.lookup("010-88888888").unwrap();
    assert_eq!((t.region_name(bj.province_id), t.region_name(bj.city_id)), (Some("北京"), Some("北京")));

    let cfg = dir.path().join("voxdial.toml");
    std::fs::write(&cfg, format!("[database]\nurl = \"{url}\"\n")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxdial"))
        .args(["location", "import", "--config", cfg.to_str().unwrap(), sample().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("20 imported · 0 rejected"), "{out:?}");
    let t = cache.table(&store).await.unwrap();
    assert_eq!(t.prefixes(), 20);
    let nj = cache.lookup("18651683344").unwrap();
    assert_eq!(
        (t.region_name(nj.province_id), t.region_name(nj.city_id), nj.operator),
        (Some("江苏"), Some("南京"), 2)
    );

    // Bad lines are named with the file and line, as the number import does.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "1865168,江苏,南京\n12,江苏,南京\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxdial"))
        .args(["location", "import", "--config", cfg.to_str().unwrap(), bad.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.csv:2: prefix: "), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_voxdial"))
        .args(["location", "lookup", "--config", cfg.to_str().unwrap(), "--json", "+8618651683344"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["province"].as_str(), v["city"].as_str(), v["type"].as_str()),
        (Some("江苏"), Some("南京"), Some("lt"))
    );
}
