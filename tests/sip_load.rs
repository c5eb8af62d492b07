//! SIP load run (a benchmark, not a test: `#[ignore]`, run it on purpose):
//! `cargo test --release --test sip_load -- --ignored --nocapture`
//! sipp places `SIP_LOAD_CALLS` calls at `SIP_LOAD_RATE` calls/s, each streaming 2 s of PCMU
//! and hanging up after 3 s, against the SIP service with the test handler (which paces a
//! 16 kHz greeting back). Prints sipp's counts and response times.

#[path = "sip/support.rs"]
mod support;

use support::*;

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn sip_load() {
    let calls = env("SIP_LOAD_CALLS", 500);
    let rate = env("SIP_LOAD_RATE", 50);
    let dir = workdir();
    let mut settings = settings();
    settings.rtp_ports = (30000, 39999);
    let (service, _, mut seen) = start(settings).await;
    let stats = dir.path().join("stats.csv");
    let (ok, log) = sipp(
        dir.path(),
        &scenario("uac_call.xml"),
        service.local_addr(),
        "+15550100",
        &[
            "-m",
            &calls.to_string(),
            "-r",
            &rate.to_string(),
            "-l",
            "5000",
            "-trace_stat",
            "-stf",
            stats.to_str().unwrap(),
            "-fd",
            "1",
        ],
    )
    .await;
    let csv = std::fs::read_to_string(&stats).unwrap_or_default();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(';').collect();
    let last: Vec<&str> = lines.last().unwrap_or_default().split(';').collect();
    for key in [
        "SuccessfulCall(C)",
        "FailedCall(C)",
        "ResponseTime1(C)",
        "ResponseTime1StDev(C)",
    ] {
        if let Some(i) = header.iter().position(|h| *h == key) {
            println!("{key} = {}", last.get(i).unwrap_or(&"?"));
        }
    }
    let mut ended = 0;
    while seen.try_recv().is_ok() {
        ended += 1;
    }
    println!("calls seen by the handler: {ended}; sipp ok: {ok}");
    assert!(ok, "{log}");
}
