//! The IPC commands themselves (`call`, `stream`, `credit`, `cancel`), through Tauri's mock
//! runtime with real capabilities and the plugin's real permission manifest, against the real Go
//! sidecar: the method scope (deny wins; nothing denied reaches Go), raw bodies and responses, and
//! stream frames on a `Channel`.
#![cfg(unix)]

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use prost::Message as _;
use tauri::ipc::{InvokeBody, InvokeResponseBody};
use tauri::test::MockRuntime;
use tauri::{App, WebviewWindow};
use tauri_plugin_anysync::proto::{PingRequest, PingResponse};
use tauri_plugin_anysync::{parse_frames, AnysyncExt, Frame};

const CHANNEL: u32 = 4242;

type Delivered = Arc<Mutex<Vec<Vec<u8>>>>;

/// A mock app (see [`mock_app`]) whose channel payloads sent to [`CHANNEL`] are collected.
fn app(
    permissions: serde_json::Value,
) -> (App<MockRuntime>, WebviewWindow<MockRuntime>, Delivered) {
    let delivered: Delivered = Arc::default();
    let sink = delivered.clone();
    let (app, window) = mock_app(permissions, move |channel, body| {
        if channel != CHANNEL {
            return false;
        }
        if let InvokeResponseBody::Raw(bytes) = body {
            sink.lock().expect("lock").push(bytes.clone());
        }
        true
    });
    (app, window, delivered)
}

fn call(
    window: &WebviewWindow<MockRuntime>,
    method: &str,
    body: Vec<u8>,
) -> Result<Vec<u8>, serde_json::Value> {
    match invoke(
        window,
        "call",
        InvokeBody::Raw(body),
        &[("anysync-method", method.to_owned())],
    )? {
        InvokeResponseBody::Raw(bytes) => Ok(bytes),
        InvokeResponseBody::Json(json) => panic!("call answered JSON, not bytes: {json}"),
    }
}

/// How many "rpc" debug records Go wrote for `path` so far.
fn rpc_records(app: &App<MockRuntime>, path: &str) -> usize {
    app.anysync()
        .logs()
        .iter()
        .filter(|r| {
            r.message == "rpc" && r.fields.get("method").and_then(|m| m.as_str()) == Some(path)
        })
        .count()
}

#[test]
fn the_method_scope_refuses_before_anything_reaches_go() {
    let (app, window, _) = app(serde_json::json!([
        "anysync:default",
        { "identifier": "anysync:allow-call", "deny": [{ "method": "anysync.v1.HealthService/Ping" }] },
    ]));

    // Positive control: Go logs every Ping it handles (the typed command is outside the scope).
    let ping = |message: &str| {
        PingRequest {
            message: message.into(),
        }
        .encode_to_vec()
    };
    invoke(
        &window,
        "ping",
        InvokeBody::Json(serde_json::json!({ "message": "typed" })),
        &[],
    )
    .expect("typed ping");
    wait_for("Go's record of the typed ping", || {
        rpc_records(&app, "/anysync.v1.HealthService/Ping") == 1
    });

    // Denied although anysync:default allows anysync.v1.HealthService/*: deny wins.
    let err = call(&window, "anysync.v1.HealthService/Ping", ping("denied")).expect_err("denied");
    assert_eq!(err["code"], "PERMISSION_DENIED", "{err}");
    assert_eq!(
        err["details"]["deniedBy"], "anysync.v1.HealthService/Ping",
        "{err}"
    );

    // Not granted at all: the message names the capability entry to add.
    let err = call(&window, "example.v1.CounterService/Add", Vec::new()).expect_err("not granted");
    assert_eq!(err["code"], "PERMISSION_DENIED", "{err}");
    let message = err["message"].as_str().expect("message");
    assert!(
        message.contains(r#"{ "identifier": "anysync:allow-call", "allow": [{ "method": "example.v1.CounterService/Add" }] }"#),
        "{message}"
    );

    // A bad name is INVALID_ARGUMENT, before the scope is consulted.
    let err = call(&window, "not/a/method", Vec::new()).expect_err("bad name");
    assert_eq!(err["code"], "INVALID_ARGUMENT", "{err}");
    let err = invoke(&window, "call", InvokeBody::Raw(Vec::new()), &[]).expect_err("no method");
    assert_eq!(err["code"], "INVALID_ARGUMENT", "{err}");

    // Allowed by the default set: answered, as raw bytes.
    let answer = call(&window, "grpc.health.v1.Health/Check", Vec::new()).expect("allowed");
    assert_eq!(answer, vec![0x08, 0x01], "status SERVING");
    wait_for("Go's record of the allowed call", || {
        rpc_records(&app, "/grpc.health.v1.Health/Check") >= 1
    });
    // Go's log is in order: it recorded a later call, and still only the one Ping.
    assert_eq!(rpc_records(&app, "/anysync.v1.HealthService/Ping"), 1);
    assert_eq!(rpc_records(&app, "/example.v1.CounterService/Add"), 0);
    tauri::async_runtime::block_on(app.anysync().shutdown());
}

#[test]
fn granted_methods_go_through_call_and_stream() {
    let (app, window, delivered) = app(serde_json::json!([
        "anysync:default",
        { "identifier": "anysync:allow-call", "allow": [{ "method": "example.v1.*" }] },
    ]));

    let request = PingRequest {
        message: "raw".into(),
    }
    .encode_to_vec();
    let answer = call(&window, "anysync.v1.HealthService/Ping", request).expect("ping");
    assert_eq!(
        PingResponse::decode(answer.as_slice())
            .expect("decodes")
            .message,
        "raw"
    );
    // Granted by the app's scope, unknown to this backend: Go's answer, not a permission error.
    let err =
        call(&window, "example.v1.CounterService/Add", Vec::new()).expect_err("unimplemented");
    assert_eq!(err["code"], "UNIMPLEMENTED", "{err}");

    let stream_headers = |id: &str, credit: &str, channel: String| {
        vec![
            ("anysync-method", "grpc.health.v1.Health/Watch".to_owned()),
            ("anysync-call-id", id.to_owned()),
            ("anysync-credit", credit.to_owned()),
            ("anysync-channel", channel),
        ]
    };
    for (headers, why) in [
        (
            stream_headers("s1", "0", format!("__CHANNEL__:{CHANNEL}")),
            "credit 0",
        ),
        (stream_headers("s1", "8", "nope".into()), "bad channel"),
        (
            stream_headers("bad id!", "8", format!("__CHANNEL__:{CHANNEL}")),
            "bad id",
        ),
    ] {
        let err = invoke(&window, "stream", InvokeBody::Raw(Vec::new()), &headers).expect_err(why);
        assert_eq!(err["code"], "INVALID_ARGUMENT", "{why}: {err}");
    }

    invoke(
        &window,
        "stream",
        InvokeBody::Raw(Vec::new()),
        &stream_headers("s1", "8", format!("__CHANNEL__:{CHANNEL}")),
    )
    .expect("stream registered");
    let frames = || -> Vec<Vec<u8>> {
        delivered
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|p| {
                parse_frames(p)
                    .expect("frames")
                    .into_iter()
                    .map(|f| match f {
                        Frame::Message(m) => [&[0u8][..], m].concat(),
                        Frame::End(None) => vec![1],
                        Frame::End(Some(e)) => [&[1u8][..], e.code.as_bytes()].concat(),
                    })
            })
            .collect()
    };
    wait_for("the first Watch status on the channel", || {
        !frames().is_empty()
    });
    assert_eq!(frames()[0], vec![0, 0x08, 0x01], "one message: SERVING");

    // The id is in use while the stream is open.
    let err = invoke(
        &window,
        "stream",
        InvokeBody::Raw(Vec::new()),
        &stream_headers("s1", "8", format!("__CHANNEL__:{CHANNEL}")),
    )
    .expect_err("duplicate id");
    assert_eq!(err["code"], "INVALID_ARGUMENT", "{err}");

    invoke(
        &window,
        "credit",
        InvokeBody::Json(serde_json::json!({ "id": "s1", "n": 3 })),
        &[],
    )
    .expect("credit");
    let err = invoke(
        &window,
        "credit",
        InvokeBody::Json(serde_json::json!({ "id": "s1", "n": 0 })),
        &[],
    )
    .expect_err("credit out of range");
    assert_eq!(err["code"], "INVALID_ARGUMENT", "{err}");
    invoke(
        &window,
        "cancel",
        InvokeBody::Json(serde_json::json!({ "id": "unknown" })),
        &[],
    )
    .expect("unknown ids are ignored");
    invoke(
        &window,
        "cancel",
        InvokeBody::Json(serde_json::json!({ "id": "s1" })),
        &[],
    )
    .expect("cancel");
    wait_for("the CANCELLED end frame", || {
        frames().last().is_some_and(|f| f[0] == 1)
    });
    assert_eq!(
        frames().last().expect("end"),
        &[&[1u8][..], b"CANCELLED"].concat()
    );
    tauri::async_runtime::block_on(app.anysync().shutdown());
}

#[test]
fn status_and_logs_answer_as_async_commands() {
    let (app, window, _) = app(serde_json::json!(["anysync:default"]));
    let json = |answer: InvokeResponseBody| -> serde_json::Value {
        match answer {
            InvokeResponseBody::Json(text) => serde_json::from_str(&text).expect("json"),
            InvokeResponseBody::Raw(_) => panic!("JSON expected"),
        }
    };
    let status = json(
        invoke(
            &window,
            "status",
            InvokeBody::Json(serde_json::json!({})),
            &[],
        )
        .expect("status"),
    );
    assert_eq!(status["state"], "running", "{status}");
    wait_for("a backend log record", || !app.anysync().logs().is_empty());
    let logs = json(
        invoke(
            &window,
            "logs",
            InvokeBody::Json(serde_json::json!({})),
            &[],
        )
        .expect("logs"),
    );
    assert!(
        logs.as_array().is_some_and(|records| !records.is_empty()),
        "{logs}"
    );
    tauri::async_runtime::block_on(app.anysync().shutdown());
}
