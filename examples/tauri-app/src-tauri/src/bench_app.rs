//! The example app plus one command of its own, for `npm run bench` (bench/README.md): built only
//! with `--features bench`, so the app authors copy from (`src/lib.rs`) stays as it is.
//!
//! `bench_stream` is baseline S0 of the stream benchmarks (below); `bench_rust_pings` is A2, V2's
//! Rust -> Go leg timed inside the app.
//!
//! For the store benchmarks (bench/store.ts) it also registers the two baselines,
//! `@tauri-apps/plugin-sql` (SQLite) and `@tauri-apps/plugin-store`, with a capability for them that
//! only this binary adds (`bench/capability.json`); `ANYSYNC_BENCH_DATA_DIR` puts the backend's
//! spaces in the run's scratch directory; `bench_store_writes` is the Rust-side writer of the
//! live-query latency benchmark.
//!
//! `bench_noop` is baseline B1: an async Tauri command that never leaves Rust. It answers with the
//! wall-clock time it ran at (microseconds since the Unix epoch), as the Go backend's ping does, so
//! the page's back-to-back calls can be timed from their arrival times with microsecond resolution.

// Prevents an additional console window on Windows in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tauri::Manager;
use tauri_plugin_anysync::proto::store_service_client::StoreServiceClient;
use tauri_plugin_anysync::proto::PutRequest;
use tauri_plugin_anysync::AnysyncExt;

/// Microseconds since the Unix epoch: the clock every stamp of the benchmarks is on.
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// Does nothing but report when it ran (microseconds since the Unix epoch).
#[tauri::command]
async fn bench_noop() -> u64 {
    now_micros()
}

/// The live-query latency benchmark's writer: `count` puts into `space`/`collection` from Rust,
/// one every `interval_ms`, through the generated tonic client on `app.anysync().channel()` (as a
/// Rust app writes). Each document carries `sentAt`, the clock just before its put, so the page's
/// watch loop can tell how long the change took to reach it.
#[tauri::command]
async fn bench_store_writes(
    app: tauri::AppHandle,
    space: String,
    collection: String,
    count: u32,
    interval_ms: u64,
) -> Result<(), String> {
    let mut client = StoreServiceClient::new(app.anysync().channel());
    let mut tick = tokio::time::interval(Duration::from_millis(interval_ms.max(1)));
    for i in 0..count {
        tick.tick().await;
        let request = PutRequest {
            space: space.clone(),
            collection: collection.clone(),
            json: format!(r#"{{"id":"w{i:07}","sentAt":{}}}"#, now_micros()),
            expected_rev: None,
        };
        client
            .put(request)
            .await
            .map_err(|e| format!("put {i}: {e}"))?;
    }
    Ok(())
}

/// In-app V1: `count` pings from Rust inside the app, on Tauri's runtime, each timed (µs): the
/// Rust -> Go leg of V2 without the webview's IPC around it. `idle` says what happens between two
/// pings: nothing (`"none"`, back-to-back, A2), a 1 ms timer sleep that lets the runtime's workers
/// and the sidecar's threads go idle, as they do between two calls from the page (`"sleep"`, A2I),
/// or 1 ms of spinning on this worker, so only the sidecar goes idle (`"spin"`, A2S).
#[tauri::command]
async fn bench_rust_pings(
    app: tauri::AppHandle,
    count: u32,
    idle: Option<String>,
) -> Result<Vec<u64>, String> {
    let anysync = app.anysync();
    let idle = idle.unwrap_or_default();
    let mut samples = Vec::with_capacity(count as usize);
    for _ in 0..count {
        match idle.as_str() {
            "sleep" => tokio::time::sleep(Duration::from_millis(1)).await,
            "spin" => {
                let until = std::time::Instant::now() + Duration::from_millis(1);
                while std::time::Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
            _ => {}
        }
        let started = std::time::Instant::now();
        anysync
            .ping("x".repeat(16))
            .await
            .map_err(|e| e.to_string())?;
        samples.push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    }
    Ok(samples)
}

/// Baseline S0 for the stream benchmarks: Rust alone sends `count` messages of `size` bytes over a
/// Channel, one raw payload each, as fast as the channel takes them: the Tauri floor under the
/// plugin's stream path, which adds gRPC, Go and credit on top.
#[tauri::command]
async fn bench_stream(
    on_message: tauri::ipc::Channel<tauri::ipc::InvokeResponseBody>,
    count: u32,
    size: u32,
) -> Result<(), String> {
    let payload = vec![0x5a_u8; size as usize];
    for _ in 0..count {
        on_message
            .send(tauri::ipc::InvokeResponseBody::Raw(payload.clone()))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() {
    // The default message bound an app gets (the example's tauri.conf.json lowers it to 64 KiB for
    // its oversized-ping test): a batch of 10 000 documents is about 1.3 MB.
    let mut anysync = tauri_plugin_anysync::Builder::new().env(
        [("ANYSYNC_MAX_MESSAGE_BYTES".to_owned(), "4194304".to_owned())]
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>(),
    );
    if let Some(dir) = std::env::var_os("ANYSYNC_BENCH_DATA_DIR") {
        anysync = anysync.data_dir(dir);
    }
    tauri::Builder::default()
        .plugin(anysync.build())
        .plugin(tauri_plugin_sql::Builder::new().build())
        .plugin(tauri_plugin_store::Builder::new().build())
        .setup(|app| {
            app.add_capability(include_str!("../bench/capability.json"))?;
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            bench_noop,
            bench_rust_pings,
            bench_stream,
            bench_store_writes
        ])
        .run(tauri::generate_context!())
        .expect("error while running tauri application");
}
