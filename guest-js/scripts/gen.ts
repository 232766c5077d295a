/**
 * `npm run gen -w guest-js` (also run by the root `npm run gen`): regenerates `src/generated/` from
 * the `.proto` source of truth in go-backend/api/proto with ts-proto, types only.
 *
 * The output is deterministic: the directory is emptied first (a removed `.proto` leaves no stale
 * file behind), the inputs are sorted, and the header names the pinned ts-proto and the protoc that
 * produced it, so another version shows up as a diff in `npm run gen:check`.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const protoRoot = path.resolve(packageRoot, "../go-backend/api/proto");
const outDir = path.join(packageRoot, "src/generated");

/**
 * ts-proto options: plain interfaces (no codecs) whose shape is exactly the plugin's serde JSON:
 * int64 as number, enums as their value names (string literals), no optional fields, no
 * `UNRECOGNIZED` member (the plugin never sends one).
 */
const tsProtoOptions = [
  "onlyTypes=true",
  "stringEnums=true",
  "enumsAsLiterals=true",
  "unrecognizedEnum=false",
  "forceLong=number",
  "useOptionals=none",
  "esModuleInterop=true",
  "outputServices=false",
  "importSuffix=.js",
].join(",");

/** The ts-proto plugin of this workspace, wherever npm placed the package. */
function tsProtoPlugin(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve("ts-proto/package.json")), "protoc-gen-ts_proto");
}

/** Every `.proto` under `anysync/`, relative to the proto root, sorted. */
function protoFiles(): string[] {
  return readdirSync(path.join(protoRoot, "anysync"), { recursive: true, encoding: "utf8" })
    .filter((name) => name.endsWith(".proto"))
    .map((name) => path.posix.join("anysync", name.split(path.sep).join("/")))
    .sort();
}

const files = protoFiles();
if (files.length === 0) throw new Error(`gen: no .proto files under ${protoRoot}/anysync`);

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

// protoc runs in the package root; relative paths keep the command line short and readable.
const relative = (to: string): string => path.relative(packageRoot, to) || ".";
const args = [
  `--plugin=protoc-gen-ts_proto=${relative(tsProtoPlugin())}`,
  `--proto_path=${relative(protoRoot)}`,
  `--ts_proto_out=${relative(outDir)}`,
  `--ts_proto_opt=${tsProtoOptions}`,
  ...files,
];
console.log(`$ protoc ${args.join(" ")}`);
const result = spawnSync("protoc", args, { stdio: "inherit", cwd: packageRoot });
if (result.error) {
  throw new Error(
    `gen: cannot run protoc (${result.error.message}); install it, e.g. \`apt-get install protobuf-compiler\``,
  );
}
if (result.status !== 0) {
  throw new Error(`gen: protoc exited with ${String(result.status ?? result.signal)}`);
}
