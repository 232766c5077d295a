//! The document store through the plugin, as an app reaches it: the plugin hands the backend its
//! data directory (`dataDir`), every store RPC goes through the generic path with no Rust code of
//! its own, and an acknowledged write survives a SIGKILL of the sidecar.
#![cfg(unix)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use prost::Message;
use tauri_plugin_anysync::proto::{
    CreateSpaceRequest, GetRequest, GetResponse, PutRequest, PutResponse,
};
use tauri_plugin_anysync::{Config, State, Supervisor};

const START: Duration = Duration::from_secs(10);

async fn call<Q: Message, A: Message + Default>(
    supervisor: &Supervisor,
    method: &str,
    request: Q,
) -> A {
    let answer = supervisor
        .call(method, Bytes::from(request.encode_to_vec()), None)
        .await
        .unwrap_or_else(|e| panic!("{method}: {e}"));
    A::decode(answer).unwrap_or_else(|e| panic!("{method} answer: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_through_the_plugin_lands_in_the_data_dir_and_survives_a_kill() {
    let data = scratch();
    let config = Config {
        data_dir: Some(data.path().to_owned()),
        ..fast_config(&real_sidecar())
    };
    let (supervisor, _events) = start(resolve(config));
    state_reached(&supervisor, State::Running, START).await;

    let _: tauri_plugin_anysync::proto::CreateSpaceResponse = call(
        &supervisor,
        "anysync.v1.StoreService/CreateSpace",
        CreateSpaceRequest {
            name: "personal".into(),
        },
    )
    .await;
    let put: PutResponse = call(
        &supervisor,
        "anysync.v1.StoreService/Put",
        PutRequest {
            space: "personal".into(),
            collection: "notes".into(),
            json: r#"{"id":"n1","title":"kept"}"#.into(),
            expected_rev: None,
        },
    )
    .await;
    assert_eq!(put.document.as_ref().map(|d| d.rev), Some(1));
    assert!(
        data.path().join("spaces/personal.sqlite").is_file(),
        "the space is a file under the dataDir the plugin passed"
    );

    // Acknowledged, so it survives the backend dying right after.
    let old = running_pid(&supervisor).await;
    replaced_after(&supervisor, old, libc::SIGKILL).await;
    let got: GetResponse = call(
        &supervisor,
        "anysync.v1.StoreService/Get",
        GetRequest {
            space: "personal".into(),
            collection: "notes".into(),
            id: "n1".into(),
        },
    )
    .await;
    let doc = got.document.expect("the document");
    assert!(doc.json.contains("\"kept\""), "{}", doc.json);
    assert_eq!(doc.rev, 1);
    supervisor.shutdown().await;
}
