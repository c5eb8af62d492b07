//! The SIP endpoint against sipp, a real SIP peer, over real sockets.

#[path = "sip/support.rs"]
mod support;

use std::time::Duration;

use boltcall::telephony::HangupReason;
use boltcall::telephony::OutboundCall;
use boltcall::telephony::sip::service::OutboundStatus;
use support::*;

async fn next_call(rx: &mut tokio::sync::mpsc::UnboundedReceiver<CallSeen>) -> CallSeen {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the call reached the handler and ended")
        .expect("handler alive")
}

#[tokio::test]
async fn inbound_call_carries_caller_audio_and_ends_on_bye() {
    let dir = workdir();
    for transport in ["u1", "t1"] {
        let (service, _, mut calls) = start(settings()).await;
        let (ok, log) = sipp(
            dir.path(),
            &scenario("uac_call.xml"),
            service.local_addr(),
            "+15550100",
            &["-t", transport],
        )
        .await;
        assert!(ok, "sipp over {transport}: {log}");
        let call = next_call(&mut calls).await;
        assert_eq!(call.info.to, "+15550100");
        assert_eq!(call.info.from, "+15550001");
        assert_eq!(call.hangup, Some(HangupReason::Remote));
        // Two seconds of tone arrive as ~100 frames of 16 kHz audio.
        assert!(call.loud_frames >= 80, "{transport}: {call:?}");
    }
}

#[tokio::test]
async fn agent_hangup_sends_bye() {
    let dir = workdir();
    let (service, _, mut calls) = start(settings()).await;
    let (ok, log) = sipp(
        dir.path(),
        &scenario("uac_agent_hangup.xml"),
        service.local_addr(),
        "+15550200",
        &[],
    )
    .await;
    assert!(ok, "{log}");
    assert_eq!(
        next_call(&mut calls).await.hangup,
        Some(HangupReason::Local)
    );
}

#[tokio::test]
async fn cancel_before_answer_gets_487() {
    let dir = workdir();
    let (service, _, _calls) = start(settings()).await;
    let (ok, log) = sipp(
        dir.path(),
        &scenario("uac_cancel.xml"),
        service.local_addr(),
        "+15550300",
        &[],
    )
    .await;
    assert!(ok, "{log}");
}

#[tokio::test]
async fn offer_without_common_codec_gets_488() {
    let dir = workdir();
    let (service, _, _calls) = start(settings()).await;
    let (ok, log) = sipp(
        dir.path(),
        &scenario("uac_bad_sdp.xml"),
        service.local_addr(),
        "+15550100",
        &[],
    )
    .await;
    assert!(ok, "{log}");
}

async fn refused(
    settings: boltcall::telephony::sip::service::SipSettings,
    number: &str,
    code: u16,
) {
    let dir = workdir();
    let template = std::fs::read_to_string(scenario("uac_refused.xml")).unwrap();
    let path = dir.path().join(format!("refused-{code}.xml"));
    std::fs::write(&path, template.replace("[expect]", &code.to_string())).unwrap();
    let (service, _, _calls) = start(settings).await;
    let (ok, log) = sipp(dir.path(), &path, service.local_addr(), number, &[]).await;
    assert!(ok, "expected {code} for {number}: {log}");
}

#[tokio::test]
async fn unknown_numbers_paused_agents_and_strangers_are_refused() {
    refused(settings(), "+15559999", 404).await;
    refused(settings(), "+15550480", 480).await;
    let mut strict = settings();
    strict.allowlist = vec!["192.0.2.0/24".parse().unwrap()];
    refused(strict, "+15550100", 403).await;
}

#[tokio::test]
async fn digest_challenge_then_call() {
    let dir = workdir();
    let mut settings = settings();
    settings.users = vec![("trunk".into(), "s3cret".into())];
    let (service, _, mut calls) = start(settings).await;
    let (ok, log) = sipp(
        dir.path(),
        &scenario("uac_digest.xml"),
        service.local_addr(),
        "+15550100",
        &[],
    )
    .await;
    assert!(ok, "{log}");
    assert_eq!(
        next_call(&mut calls).await.hangup,
        Some(HangupReason::Remote)
    );
}

fn outbound_call(id: &str) -> OutboundCall {
    OutboundCall {
        call_id: id.into(),
        workspace_id: "ws".into(),
        live: true,
        agent_id: "agent_1".into(),
        from: "+15550100".into(),
        to: "+15550999".into(),
        context: None,
        permit: None,
        machine_detection: Default::default(),
    }
}

/// sipp plays the callee behind the trunk; the engine dials it.
async fn outbound(
    scenario_name: &str,
    call_id: &str,
) -> (
    bool,
    String,
    std::sync::Arc<TestHandler>,
    tokio::sync::mpsc::UnboundedReceiver<CallSeen>,
) {
    let dir = workdir();
    let trunk_port = free_port();
    let mut settings = settings();
    settings.trunk = Some(format!("127.0.0.1:{trunk_port}").parse().unwrap());
    let (service, handler, calls) = start(settings).await;
    let media_port = free_port();
    let mut cmd = tokio::process::Command::new("sipp");
    cmd.current_dir(dir.path())
        .arg("-sf")
        .arg(scenario(scenario_name))
        .args([
            "-m",
            "1",
            "-i",
            "127.0.0.1",
            "-nostdin",
            "-timeout",
            "30s",
            "-timeout_error",
        ])
        .args([
            "-p",
            &trunk_port.to_string(),
            "-mp",
            &media_port.to_string(),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().expect("sipp is installed (Debian sip-tester)");
    // Give the UAS a moment to bind before the INVITE goes out (Timer A would cover it too).
    tokio::time::sleep(Duration::from_millis(300)).await;
    use boltcall::telephony::Dialer;
    service.dialer().dial(outbound_call(call_id));
    let output = child.wait_with_output().await.unwrap();
    let log = String::from_utf8_lossy(&output.stderr).to_string();
    (output.status.success(), log, handler, calls)
}

#[tokio::test]
async fn outbound_call_is_answered_carries_audio_and_hangs_up() {
    let (ok, log, handler, mut calls) = outbound("uas_answer.xml", "call_out1").await;
    assert!(ok, "{log}");
    let call = next_call(&mut calls).await;
    assert_eq!(call.hangup, Some(HangupReason::Local));
    assert!(
        call.loud_frames >= 40,
        "callee audio reached the agent: {call:?}"
    );
    assert_eq!(
        handler.outbound.lock().unwrap().clone(),
        vec![OutboundStatus::Ringing]
    );
}

#[tokio::test]
async fn busy_callee_is_reported_busy() {
    let (ok, log, handler, _calls) = outbound("uas_busy.xml", "call_out2").await;
    assert!(ok, "{log}");
    // The 486 arrived before sipp saw our ACK and exited.
    assert_eq!(
        handler.outbound.lock().unwrap().clone(),
        vec![OutboundStatus::Failed {
            status: "busy",
            sip_code: 486
        }]
    );
}
