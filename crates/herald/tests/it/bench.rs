//! `herald bench` against `herald serve`: a small run reports every event
//! delivered, with no gap and no duplicate (correctness, not speed).

use crate::herald;
use crate::tail::Hub;

#[test]
fn a_small_run_reports_zero_gaps() {
    let hub = Hub::start();
    let target = format!("{}?match=/bench/{{i}}", hub.url);
    let out = herald()
        .args(["bench", &target, "--subscribers", "20", "--topics", "2"])
        .args(["--rate", "50", "--duration", "1", "--warmup", "0", "--json"])
        .args(["--token", &hub.token])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["established"], 20, "{report}");
    assert_eq!(report["gaps"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert!(report["published"].as_u64().unwrap() >= 20, "{report}");
    // Every subscriber of a topic got every event of that topic.
    assert_eq!(
        report["deliveries"].as_u64().unwrap(),
        report["published"].as_u64().unwrap() * 10,
        "{report}"
    );
}
