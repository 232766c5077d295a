const COMMANDS: &[&str] = &["ping", "health", "status", "restart", "logs"];

fn main() {
    // The IIFE build of guest-js, so apps with `withGlobalTauri` get `window.__TAURI__.anysync`.
    tauri_plugin::Builder::new(COMMANDS)
        .global_api_script_path("./guest-js/api-iife.js")
        .build();
    // Published to the app's build script as DEP_TAURI_PLUGIN_ANYSYNC_GO_BACKEND_DIR, where
    // tauri-plugin-anysync-build finds the Go sources of the sidecar.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!(
        "cargo:go_backend_dir={}",
        std::path::Path::new(&manifest_dir)
            .join("go-backend")
            .display()
    );
}
