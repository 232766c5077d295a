import { defineConfig } from "tsup";

/** The name of the global the IIFE defines, as Tauri's own plugins name theirs. */
const iifeGlobal = "__TAURI_PLUGIN_ANYSYNC__";

export default defineConfig([
  {
    // The npm package: ESM `dist/index.js`, CJS `dist/index.cjs`, types `dist/index.d.ts` (+ `.d.cts`).
    entry: { index: "src/index.ts" },
    format: ["esm", "cjs"],
    outDir: "dist",
    dts: true,
    tsconfig: "tsconfig.build.json",
    target: "es2021",
    platform: "browser",
    clean: true,
    treeshake: true,
  },
  {
    // `api-iife.js` at the package root: a script for apps with `app.withGlobalTauri`, the way
    // tauri-apps/plugins-workspace builds theirs (rollup there): `@tauri-apps/api` bundled in,
    // minified, defining `window.__TAURI_PLUGIN_ANYSYNC__` and `window.__TAURI__.anysync` when
    // the global Tauri API is present. The plugin crate can ship it with
    // `tauri_plugin::Builder::global_api_script_path("./guest-js/api-iife.js")`.
    entry: { "api-iife": "src/index.ts" },
    format: ["iife"],
    globalName: iifeGlobal,
    outDir: ".",
    outExtension: () => ({ js: ".js" }),
    tsconfig: "tsconfig.build.json",
    target: "es2021",
    platform: "browser",
    noExternal: [/.*/],
    minify: true,
    clean: false,
    banner: { js: "if ('__TAURI__' in window) {" },
    footer: { js: `Object.defineProperty(window.__TAURI__, 'anysync', { value: ${iifeGlobal} }) }` },
  },
]);
