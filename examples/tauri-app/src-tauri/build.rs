fn main() {
    // Builds go-backend for this target into binaries/anysync-backend-<target-triple> first:
    // tauri_build checks that every bundle.externalBin exists.
    tauri_plugin_anysync_build::build_sidecar();
    tauri_build::build();
}
