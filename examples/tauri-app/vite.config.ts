import { defineConfig } from "vite";

// Tauri serves `dist/` from the app binary (`tauri build`) or loads this dev server (`tauri dev`).
export default defineConfig({
  clearScreen: false,
  server: {
    port: 1420,
    strictPort: true,
    watch: { ignored: ["**/src-tauri/**"] },
  },
  envPrefix: ["VITE_", "TAURI_ENV_"],
  build: {
    // WebKitGTK 2.4x+, WKWebView (macOS 12+) and WebView2 all run ES2022.
    target: "es2022",
    minify: process.env.TAURI_ENV_DEBUG ? false : "esbuild",
    sourcemap: Boolean(process.env.TAURI_ENV_DEBUG),
  },
});
