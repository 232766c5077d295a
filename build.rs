const COMMANDS: &[&str] = &["ping", "health", "status", "restart", "logs"];

fn main() {
    tauri_plugin::Builder::new(COMMANDS).build();
}
