//! Status and log subscriptions: the status's `seq` grows with every publish (the supervisor on its
//! own, with an `EventSink`), and the `subscribe_status` / `subscribe_logs` / `unsubscribe` commands
//! through Tauri's mock runtime with a real capability and the plugin's real permission manifest,
//! against the real Go sidecar: the current status first, then every change, records as they
//! arrive, until unsubscribed; nothing without the permission.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use tauri::ipc::InvokeResponseBody;
use tauri::test::MockRuntime;
use tauri::{App, WebviewWindow};
use tauri_plugin_anysync::{AnysyncExt, State, Status};

const STATUS_CHANNEL: u32 = 5151;
const LOG_CHANNEL: u32 = 5152;

/// JSON messages sent to each channel id, in order.
type Delivered = Arc<Mutex<BTreeMap<u32, Vec<serde_json::Value>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_seq_grows_with_every_publish_and_the_snapshot_has_the_last() {
    let (supervisor, events) = start(resolve(fast_config(&real_sidecar())));
    let first = state_reached(&supervisor, State::Running, Duration::from_secs(10)).await;
    let restarted = supervisor.restart().await.expect("restart");
    assert!(restarted.seq > first.seq, "{restarted:?} after {first:?}");
    let pid = restarted.pid.expect("pid");
    replaced_after(&supervisor, pid, libc::SIGKILL).await;
    supervisor.shutdown().await;

    let statuses = events.statuses.lock().expect("lock").clone();
    let seqs: Vec<u64> = statuses.iter().map(|s| s.seq).collect();
    // One publish, one step: 1, 2, 3, ... with no gap and no repeat.
    assert_eq!(
        seqs,
        (1..=seqs.len() as u64).collect::<Vec<_>>(),
        "{statuses:#?}"
    );
    assert_eq!(supervisor.status().seq, *seqs.last().expect("statuses"));
    assert_eq!(supervisor.status().state, State::Stopped);
    let states = events.states();
    assert_eq!(states.first(), Some(&State::Starting));
    assert!(states.contains(&State::Restarting), "{states:?}");
}

/// A mock app (see [`mock_app`]) whose JSON channel messages are collected per channel.
fn app(
    permissions: serde_json::Value,
) -> (App<MockRuntime>, WebviewWindow<MockRuntime>, Delivered) {
    let delivered: Delivered = Arc::default();
    let sink = delivered.clone();
    let (app, window) = mock_app(permissions, move |channel, body| {
        if ![STATUS_CHANNEL, LOG_CHANNEL].contains(&channel) {
            return false;
        }
        if let InvokeResponseBody::Json(json) = body {
            let value = serde_json::from_str(json).expect("JSON message");
            sink.lock()
                .expect("lock")
                .entry(channel)
                .or_default()
                .push(value);
        }
        true
    });
    (app, window, delivered)
}

/// A subscription's id, as the command answers it.
fn subscription_id(answer: InvokeResponseBody) -> u64 {
    match answer {
        InvokeResponseBody::Json(json) => json.parse().expect("an id"),
        InvokeResponseBody::Raw(_) => panic!("an id is JSON"),
    }
}

fn messages(delivered: &Delivered, channel: u32) -> Vec<serde_json::Value> {
    delivered
        .lock()
        .expect("lock")
        .get(&channel)
        .cloned()
        .unwrap_or_default()
}

fn statuses(delivered: &Delivered) -> Vec<Status> {
    messages(delivered, STATUS_CHANNEL)
        .into_iter()
        .map(|v| serde_json::from_value(v).expect("a Status"))
        .collect()
}

#[test]
fn subscribe_status_sends_the_current_status_first_then_every_change() {
    let (app, window, delivered) = app(serde_json::json!([
        "anysync:default",
        "anysync:allow-restart"
    ]));
    let before = app.anysync().status();
    let id = subscription_id(
        invoke(
            &window,
            "subscribe_status",
            serde_json::json!({ "onStatus": format!("__CHANNEL__:{STATUS_CHANNEL}") }),
            &[],
        )
        .expect("subscribed"),
    );
    // The current status arrived before the command even answered.
    let first = statuses(&delivered);
    assert_eq!(first.len(), 1, "{first:#?}");
    assert_eq!(first[0], before, "the current status, as status() has it");
    assert_eq!(first[0].state, State::Running);

    invoke(&window, "restart", serde_json::json!({}), &[]).expect("restart");
    wait_for("the running status after the restart", || {
        statuses(&delivered)
            .last()
            .is_some_and(|s| s.state == State::Running && s.seq > before.seq)
    });
    let seen = statuses(&delivered);
    let seqs: Vec<u64> = seen.iter().map(|s| s.seq).collect();
    // Every change, once, in order.
    assert_eq!(
        seqs,
        (before.seq..before.seq + seqs.len() as u64).collect::<Vec<_>>(),
        "{seen:#?}"
    );
    // (A restart publishes `restarting` twice: when the old backend stops and when the new one
    // launches.)
    let mut states: Vec<State> = seen.iter().map(|s| s.state).collect();
    states.dedup();
    assert_eq!(
        states,
        [State::Running, State::Restarting, State::Running],
        "{seen:#?}"
    );
    assert_ne!(
        seen.last().expect("running").pid,
        before.pid,
        "a new backend"
    );

    // After unsubscribing, changes no longer arrive.
    invoke(&window, "unsubscribe", serde_json::json!({ "id": id }), &[]).expect("unsubscribed");
    invoke(&window, "restart", serde_json::json!({}), &[]).expect("restart");
    assert_eq!(statuses(&delivered).len(), seen.len());
    tauri::async_runtime::block_on(app.anysync().shutdown());
}

#[test]
fn subscribe_logs_sends_records_as_they_arrive_until_unsubscribed() {
    let (app, window, delivered) = app(serde_json::json!(["anysync:default"]));
    let id = subscription_id(
        invoke(
            &window,
            "subscribe_logs",
            serde_json::json!({ "onLog": format!("__CHANNEL__:{LOG_CHANNEL}") }),
            &[],
        )
        .expect("subscribed"),
    );
    let last_before = app.anysync().logs().last().map_or(0, |r| r.seq);
    invoke(
        &window,
        "ping",
        serde_json::json!({ "message": "logged" }),
        &[],
    )
    .expect("ping");
    // Go logs the RPC at debug level; it arrives on the channel.
    let is_ping = |r: &serde_json::Value| {
        r["message"] == "rpc" && r["fields"]["method"] == "/anysync.v1.HealthService/Ping"
    };
    wait_for("the ping's log record on the channel", || {
        messages(&delivered, LOG_CHANNEL).iter().any(is_ping)
    });
    let records = messages(&delivered, LOG_CHANNEL);
    let seqs: Vec<u64> = records
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    assert!(
        seqs[0] > last_before,
        "only new records: {seqs:?} after {last_before}"
    );

    invoke(&window, "unsubscribe", serde_json::json!({ "id": id }), &[]).expect("unsubscribed");
    let count = messages(&delivered, LOG_CHANNEL).len();
    invoke(
        &window,
        "ping",
        serde_json::json!({ "message": "not delivered" }),
        &[],
    )
    .expect("ping");
    wait_for("Go's record of the second ping", || {
        app.anysync()
            .logs()
            .iter()
            .filter(|r| {
                r.message == "rpc"
                    && r.fields.get("method").and_then(|m| m.as_str())
                        == Some("/anysync.v1.HealthService/Ping")
            })
            .count()
            >= 2
    });
    assert_eq!(messages(&delivered, LOG_CHANNEL).len(), count);
    tauri::async_runtime::block_on(app.anysync().shutdown());
}

#[test]
fn subscriptions_need_their_permissions() {
    let (app, window, delivered) = app(serde_json::json!(["anysync:allow-status"]));
    for (cmd, arg, channel) in [
        ("subscribe_status", "onStatus", STATUS_CHANNEL),
        ("subscribe_logs", "onLog", LOG_CHANNEL),
    ] {
        let err = invoke(
            &window,
            cmd,
            serde_json::json!({ arg: format!("__CHANNEL__:{channel}") }),
            &[],
        )
        .expect_err(cmd);
        assert!(
            err.to_string().contains("not allowed"),
            "{cmd} without its permission: {err}"
        );
    }
    assert!(delivered.lock().expect("lock").is_empty());
    tauri::async_runtime::block_on(app.anysync().shutdown());
}
