//! In-process figures for docs/bench-smartivr.md: latency of
//! `Dialogue::handle` (p50/p99/max over a harness-like call) and memory per
//! live dialogue with 5,000 held at once.
//!
//!     cargo run --release --example dialogue_bench

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use voxdial::dialogue::{Dialogue, Input, Script, SAMPLE_SCRIPT};

const TEXTS: [&str; 5] =
    ["房产", "你们是哪里的，卖什么的？", "没有，我不需要买房。", "嗯，好的，可以了解一下。", "我再考虑考虑吧，再见。"];

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4)
}

/// The inputs of one harness call, as the smartivr mapping feeds them.
fn call_inputs() -> Vec<Input> {
    let mut v =
        vec![Input::Enter, Input::PlaybackDone, Input::WaitTimeout, Input::AsrProgress { text: "喂你好".into() }];
    for t in TEXTS {
        v.push(Input::AsrMessage { text: t.into(), speak_ms: 1162, asr_elapse: Some(391), gender: Some(2) });
    }
    v.push(Input::Leave);
    v
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let script = Arc::new(Script::from_json(SAMPLE_SCRIPT)?);
    let vars = HashMap::from([("name".to_string(), "王先生".to_string())]);
    let calls = 20_000;
    let mut ns: Vec<u64> = Vec::with_capacity(calls * 11);
    for _ in 0..calls {
        let mut d = Dialogue::new(script.clone(), vars.clone());
        for i in call_inputs() {
            let t = Instant::now();
            let a = d.handle(i);
            ns.push(t.elapsed().as_nanos() as u64);
            std::hint::black_box(a);
        }
        std::hint::black_box(d.take_details());
    }
    ns.sort_unstable();
    let pct = |p: f64| ns[((ns.len() as f64 * p) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    println!(
        "Dialogue::handle over {} events: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.1} µs",
        ns.len(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );

    for live in [5_000usize, 50_000] {
        let before = rss_kb();
        let mut held = Vec::with_capacity(live);
        for _ in 0..live {
            let mut d = Dialogue::new(script.clone(), vars.clone());
            // Mid-call: the opening, a partial and two answers recorded.
            for i in call_inputs().into_iter().take(6) {
                std::hint::black_box(d.handle(i));
            }
            held.push(d);
        }
        let after = rss_kb();
        println!(
            "{live} live dialogues (mid-call, 5 transcript rows each): RSS +{} KiB = {:.1} KiB per dialogue",
            after - before,
            (after - before) as f64 / live as f64
        );
        drop(held);
    }
    Ok(())
}
