fn main() {
    // The example's own Go backend (examples/tauri-app/backend: the plugin's built-in services plus
    // example.v1.CounterService, on the plugin's public `backend` package), built for this target
    // into binaries/anysync-backend-<target-triple> first: tauri_build checks that every
    // bundle.externalBin exists.
    tauri_plugin_anysync_build::Builder::new()
        .go_dir("../backend")
        .package(".")
        .build();
    tauri_build::build();
}
