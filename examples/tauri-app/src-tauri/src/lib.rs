//! The example app: the plugin is one line; everything else is Tauri's template.

/// Runs the app.
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    tauri::Builder::default()
        .plugin(tauri_plugin_opener::init())
        .plugin(tauri_plugin_anysync::init())
        .run(tauri::generate_context!())
        .expect("error while running tauri application");
}
