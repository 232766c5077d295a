//! The example app plus one command of its own, for `npm run bench` (bench/README.md): built only
//! with `--features bench`, so the app authors copy from (`src/lib.rs`) stays as it is.
//!
//! `bench_stream` is baseline S0 of the stream benchmarks (below).
//!
//! `bench_noop` is baseline B1: an async Tauri command that never leaves Rust. It answers with the
//! wall-clock time it ran at (microseconds since the Unix epoch), as the Go backend's ping does, so
//! the page's back-to-back calls can be timed from their arrival times with microsecond resolution.

// Prevents an additional console window on Windows in release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::time::{SystemTime, UNIX_EPOCH};

/// Does nothing but report when it ran (microseconds since the Unix epoch).
#[tauri::command]
async fn bench_noop() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
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
    tauri::Builder::default()
        .plugin(tauri_plugin_anysync::init())
        .invoke_handler(tauri::generate_handler![bench_noop, bench_stream])
        .run(tauri::generate_context!())
        .expect("error while running tauri application");
}
