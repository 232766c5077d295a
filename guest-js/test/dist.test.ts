/**
 * The built artifacts (`npm run build`; `npm test` builds first): the ESM and CJS entry points
 * through the package's `exports` map, the IIFE for `withGlobalTauri` apps, and `instanceof`
 * between them and the sources, as when an app bundles two copies of this package.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

import { clearMocks } from "@tauri-apps/api/mocks";
import { afterEach, beforeAll, describe, expect, it } from "vitest";

import * as source from "../src/index.js";
import { mockCommands, rejectWith, runningStatus } from "./fixtures.js";
import { answer, mockPlugin } from "./ipc.js";

const { PingResponseSchema } = source;

type Api = typeof source;

const packageDir = path.resolve(import.meta.dirname, "..");
const artifacts = ["dist/index.js", "dist/index.cjs", "dist/index.d.ts", "dist/index.d.cts", "api-iife.js"];

beforeAll(() => {
  const missing = artifacts.filter((file) => !existsSync(path.join(packageDir, file)));
  if (missing.length > 0) {
    throw new Error(`missing build output ${missing.join(", ")}: run \`npm run build -w guest-js\` first`);
  }
});

afterEach(() => {
  clearMocks();
  Reflect.deleteProperty(window, "__TAURI__");
  Reflect.deleteProperty(window, "__TAURI_PLUGIN_ANYSYNC__");
});

/** The exports of every built entry point, loaded the way consumers load them. */
async function builds(): Promise<Record<string, Api>> {
  const esmPath = "tauri-plugin-anysync-api";
  const esm = (await import(/* @vite-ignore */ esmPath)) as Api;
  const cjs = createRequire(import.meta.url)("tauri-plugin-anysync-api") as Api;
  return { esm, cjs };
}

describe("package.json", () => {
  const manifest = JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8")) as {
    exports: Record<string, unknown>;
    main: string;
    module: string;
    types: string;
  };

  it("resolves the package name to the built files", () => {
    const require = createRequire(import.meta.url);
    expect(require.resolve("tauri-plugin-anysync-api")).toBe(path.join(packageDir, "dist/index.cjs"));
    expect(manifest.exports["."]).toEqual({
      import: { types: "./dist/index.d.ts", default: "./dist/index.js" },
      require: { types: "./dist/index.d.cts", default: "./dist/index.cjs" },
    });
    for (const file of [manifest.main, manifest.module, manifest.types]) {
      expect(existsSync(path.join(packageDir, file)), file).toBe(true);
    }
  });
});

describe.each(["esm", "cjs"])("the %s build", (format) => {
  it("exports exactly what the sources export", async () => {
    const built = (await builds())[format];
    expect(Object.keys(built ?? {}).sort()).toEqual(Object.keys(source).sort());
  });

  it("invokes the plugin and converts its errors", async () => {
    const built = (await builds())[format];
    if (built === undefined) throw new Error(`no ${format} build`);
    mockCommands((cmd) => (cmd === "plugin:anysync|status" ? runningStatus : rejectWith({ code: "NOT_RUNNING", message: "m" })));
    await expect(built.status()).resolves.toEqual(runningStatus);
    await expect(built.health()).rejects.toMatchObject({ code: "NOT_RUNNING", message: "m" });
  });

  it("shares instanceof with the sources, both ways", async () => {
    const built = (await builds())[format];
    if (built === undefined) throw new Error(`no ${format} build`);
    expect(built.AnysyncError).not.toBe(source.AnysyncError);
    expect(new built.AnysyncError("m", "IO") instanceof source.AnysyncError).toBe(true);
    expect(new source.AnysyncError("m", "IO") instanceof built.AnysyncError).toBe(true);
    expect(source.isAnysyncError(built.AnysyncError.from("anysync.ping not allowed"), "PERMISSION_DENIED")).toBe(true);
  });
});

describe("api-iife.js", () => {
  const script = (): string => readFileSync(path.join(packageDir, "api-iife.js"), "utf8");
  const globals = window as unknown as { __TAURI__?: Record<string, unknown>; __TAURI_PLUGIN_ANYSYNC__?: Api };

  it("defines window.__TAURI_PLUGIN_ANYSYNC__ and window.__TAURI__.anysync with the global API", async () => {
    globals.__TAURI__ = {};
    (0, eval)(script());
    const api = globals.__TAURI_PLUGIN_ANYSYNC__;
    if (api === undefined) throw new Error("the IIFE defined no global");
    expect(globals.__TAURI__.anysync).toBe(api);
    expect(Object.keys(api).sort()).toEqual(Object.keys(source).sort());

    const calls = mockPlugin(() => answer(PingResponseSchema, { message: "hi", handledAtUnixMicros: 1n }));
    await expect(api.ping("hi")).resolves.toMatchObject({ message: "hi", handledAtUnixMicros: 1n });
    expect(calls.map((call) => [call.cmd, call.headers["anysync-method"]])).toEqual([
      ["plugin:anysync|call", "anysync.v1.HealthService/Ping"],
    ]);
    expect(new api.AnysyncError("m") instanceof source.AnysyncError).toBe(true);
  });

  it("does nothing without the global Tauri API, as Tauri's own plugins", () => {
    (0, eval)(script());
    expect(globals.__TAURI_PLUGIN_ANYSYNC__).toBeUndefined();
  });
});
