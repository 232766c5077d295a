//! The example app plus one command of its own, for `npm run bench` (bench/README.md): built only
//! with `--features bench`, so the app authors copy from (`src/lib.rs`) stays as it is.
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

fn main() {
    tauri::Builder::default()
        .plugin(tauri_plugin_anysync::init())
        .invoke_handler(tauri::generate_handler![bench_noop])
        .run(tauri::generate_context!())
        .expect("error while running tauri application");
}
